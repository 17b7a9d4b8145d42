use rand::seq::SliceRandom;
use rand_core::{CryptoRng, RngCore};

use super::messages::chunked;
use super::{ElementCounter, Message, Mode, Session, check_announced};
use crate::group::{BlindingKey, EncodedPoint, decode_point, hash_to_group};
use crate::{Error, IdSet, Progress, Step};

/// What the responder learns: only the size of the requester's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderOutput {
    /// The number of distinct ids the requester used.
    pub peer_set_size: u64,
}

/// The party that holds the other set and answers the request.
#[derive(Debug)]
pub struct Responder;

impl Responder {
    /// Blinds the responder's ids (in a random order, so their positions say
    /// nothing) and returns the first state and the opening messages.
    pub fn start<R: CryptoRng + RngCore>(
        session: Session,
        ids: &IdSet,
        rng: &mut R,
    ) -> (ExpectRequesterHello, Vec<Message>) {
        let key = BlindingKey::random(rng);
        let tag = session.tag();
        let mut hashed: Vec<_> = ids.iter().map(|id| hash_to_group(&tag, id)).collect();
        hashed.shuffle(rng);
        let blinded = key.blind_batch(&hashed);
        let mut send = vec![Message::ResponderHello {
            set_size: ids.len() as u64,
        }];
        send.extend(chunked(
            blinded,
            session.chunk_points(),
            Message::ResponderBlinded,
        ));
        (ExpectRequesterHello { session, key }, send)
    }
}

/// Waiting for the requester to announce its set size.
pub struct ExpectRequesterHello {
    session: Session,
    key: BlindingKey,
}

/// Waiting for the requester's blinded elements `H(x)^a`.
pub struct ExpectRequesterBlinded {
    session: Session,
    key: BlindingKey,
    counter: ElementCounter,
    /// In cardinality mode, `H(x)^ab` held back until all have arrived, so
    /// they can be shuffled before the requester sees any.
    held_back: Vec<EncodedPoint>,
}

/// Any state of the responder, for drivers that hold one generically.
#[derive(Debug)]
pub enum ResponderState {
    /// See [`ExpectRequesterHello`].
    ExpectRequesterHello(ExpectRequesterHello),
    /// See [`ExpectRequesterBlinded`].
    ExpectRequesterBlinded(ExpectRequesterBlinded),
}

/// One responder transition.
pub type ResponderStep = Step<ResponderState, ResponderOutput, Message>;

impl ResponderState {
    /// Feeds one message from the requester. `rng` is used for the final
    /// shuffle in cardinality mode.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        match self {
            Self::ExpectRequesterHello(s) => s.handle(message),
            Self::ExpectRequesterBlinded(s) => s.handle(message, rng),
        }
    }
}

impl From<ExpectRequesterHello> for ResponderState {
    fn from(state: ExpectRequesterHello) -> Self {
        Self::ExpectRequesterHello(state)
    }
}

impl ExpectRequesterHello {
    /// Accepts the requester's hello.
    pub fn handle(self, message: Message) -> Result<ResponderStep, Error> {
        let Message::RequesterHello { set_size } = message else {
            return Err(Error::UnexpectedMessage {
                expected: "RequesterHello",
                received: message.kind(),
            });
        };
        check_announced(set_size, &self.session)?;
        if set_size == 0 {
            return Ok(Step {
                next: Progress::Done(ResponderOutput { peer_set_size: 0 }),
                send: Vec::new(),
            });
        }
        let next = ExpectRequesterBlinded {
            session: self.session,
            key: self.key,
            counter: ElementCounter::new(set_size),
            held_back: Vec::new(),
        };
        Ok(Step {
            next: Progress::Continue(ResponderState::ExpectRequesterBlinded(next)),
            send: Vec::new(),
        })
    }
}

impl ExpectRequesterBlinded {
    /// Accepts a chunk of the requester's elements and raises them to our key.
    pub fn handle<R: CryptoRng + RngCore>(
        mut self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        let Message::RequesterBlinded(points) = message else {
            return Err(Error::UnexpectedMessage {
                expected: "RequesterBlinded",
                received: message.kind(),
            });
        };
        let first = self.counter.accept_chunk(points.len())?;
        let decoded = points
            .iter()
            .zip(first..)
            .map(|(bytes, index)| decode_point(bytes, index))
            .collect::<Result<Vec<_>, _>>()?;
        let double_blinded = self.key.blind_batch(&decoded);
        let mut send = Vec::new();
        match self.session.mode {
            // Order preserved: the requester maps answers back to its ids.
            Mode::Membership => send.push(Message::DoubleBlinded(double_blinded)),
            Mode::Cardinality => self.held_back.extend(double_blinded),
        }
        if !self.counter.is_complete() {
            return Ok(Step {
                next: Progress::Continue(ResponderState::ExpectRequesterBlinded(self)),
                send,
            });
        }
        let peer_set_size = self.counter.announced;
        if self.session.mode == Mode::Cardinality {
            let mut held_back = std::mem::take(&mut self.held_back);
            held_back.shuffle(rng);
            send.extend(chunked(
                held_back,
                self.session.chunk_points(),
                Message::DoubleBlinded,
            ));
        }
        Ok(Step {
            next: Progress::Done(ResponderOutput { peer_set_size }),
            send,
        })
    }
}

impl std::fmt::Debug for ExpectRequesterHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpectRequesterHello(redacted)")
    }
}

impl std::fmt::Debug for ExpectRequesterBlinded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExpectRequesterBlinded({:?}, redacted)", self.counter)
    }
}
