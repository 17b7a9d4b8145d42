use rand::seq::SliceRandom;
use rand_core::{CryptoRng, RngCore};

use super::messages::chunked;
use super::{Expected, Matching, Message, Session, blind_twice, to_record_order};
use crate::group::{BlindingKey, EncodedPoint, decode_all, hash_all};
use crate::{Error, IdSet, Progress, Step};

/// The party that answers the job. It never compares the sets; it learns the
/// intersection size from the requester's [`Message::Differences`].
#[derive(Debug)]
pub struct Responder;

/// One responder transition; the output is the responder's [`Matching`].
pub type ResponderStep = Step<ResponderState, Matching, Message>;

impl Responder {
    /// Draws the job's keys, blinds the responder's ids in a random order,
    /// and returns the first state and the opening messages.
    ///
    /// The random order matters: the requester learns which positions of
    /// this list are in the intersection.
    pub fn start<R: CryptoRng + RngCore>(
        session: Session,
        ids: &IdSet,
        rng: &mut R,
    ) -> (ExpectRequesterHello, Vec<Message>) {
        let match_key = BlindingKey::random(rng);
        let uid_key = BlindingKey::random(rng);
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.shuffle(rng);
        let hashed = hash_all(&session.tag(), order.iter().filter_map(|&i| ids.get(i)));
        let blinded = match_key.blind_batch(&hashed);
        let mut send = vec![Message::ResponderHello {
            set_size: ids.len() as u64,
        }];
        send.extend(chunked(
            blinded,
            session.chunk_points(),
            Message::ResponderBlinded,
        ));
        let state = ExpectRequesterHello {
            session,
            match_key,
            uid_key,
            order,
        };
        (state, send)
    }
}

/// What every state after the requester's hello carries.
struct Run {
    session: Session,
    uid_key: BlindingKey,
    /// `order[i]` is the record whose element we sent `i`-th.
    order: Vec<usize>,
    peer_set_size: u64,
}

/// Waiting for the requester to announce its set size.
pub struct ExpectRequesterHello {
    session: Session,
    match_key: BlindingKey,
    uid_key: BlindingKey,
    order: Vec<usize>,
}

/// Waiting for the requester's blinded ids `H(x)^a`.
pub struct ExpectRequesterBlinded {
    run: Run,
    match_key: BlindingKey,
    expected: Expected,
    /// `H(x)^(a·b)`, held back until all have arrived so they can be
    /// shuffled before the requester sees any.
    held_back: Vec<EncodedPoint>,
}

/// Waiting for our partial UIDs `H(y)^(a·b·a')`, in our sending order.
pub struct ExpectResponderPartialUids {
    run: Run,
    expected: Expected,
    own_uids: Vec<EncodedPoint>,
}

/// Waiting for the requester's counts of unmatched ids.
pub struct ExpectDifferences {
    run: Run,
    /// Our UIDs, one per record.
    own_uids: Vec<EncodedPoint>,
}

/// Waiting for the responder-only elements `H(y)^(a·b)`, to raise to `b'`.
pub struct ExpectResponderOnly {
    run: Run,
    expected: Expected,
    requester_only: u64,
    own_uids: Vec<EncodedPoint>,
}

/// Waiting for the requester-only partial UIDs `H(x)^(a·b·a')`.
pub struct ExpectRequesterOnlyPartialUids {
    run: Run,
    expected: Expected,
    own_uids: Vec<EncodedPoint>,
    requester_only_uids: Vec<EncodedPoint>,
}

/// Any state of the responder, for drivers that hold one generically.
#[derive(Debug)]
pub enum ResponderState {
    /// See [`ExpectRequesterHello`].
    ExpectRequesterHello(ExpectRequesterHello),
    /// See [`ExpectRequesterBlinded`].
    ExpectRequesterBlinded(ExpectRequesterBlinded),
    /// See [`ExpectResponderPartialUids`].
    ExpectResponderPartialUids(ExpectResponderPartialUids),
    /// See [`ExpectDifferences`].
    ExpectDifferences(ExpectDifferences),
    /// See [`ExpectResponderOnly`].
    ExpectResponderOnly(ExpectResponderOnly),
    /// See [`ExpectRequesterOnlyPartialUids`].
    ExpectRequesterOnlyPartialUids(ExpectRequesterOnlyPartialUids),
}

impl ResponderState {
    /// Feeds one message from the requester. `rng` shuffles the requester's
    /// matchable elements before they are sent.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        match self {
            Self::ExpectRequesterHello(s) => s.handle(message, rng),
            Self::ExpectRequesterBlinded(s) => s.handle(message, rng),
            Self::ExpectResponderPartialUids(s) => s.handle(message),
            Self::ExpectDifferences(s) => s.handle(message),
            Self::ExpectResponderOnly(s) => s.handle(message),
            Self::ExpectRequesterOnlyPartialUids(s) => s.handle(message),
        }
    }
}

impl From<ExpectRequesterHello> for ResponderState {
    fn from(state: ExpectRequesterHello) -> Self {
        Self::ExpectRequesterHello(state)
    }
}

fn proceed(state: ResponderState, send: Vec<Message>) -> Result<ResponderStep, Error> {
    Ok(Step {
        next: Progress::Continue(state),
        send,
    })
}

fn unexpected(expected: &'static str, received: &Message) -> Error {
    Error::UnexpectedMessage {
        expected,
        received: received.kind(),
    }
}

impl ExpectRequesterHello {
    /// Accepts the requester's hello.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        let Message::RequesterHello { set_size } = message else {
            return Err(unexpected("RequesterHello", &message));
        };
        self.session.check_announced(set_size)?;
        let next = ExpectRequesterBlinded {
            run: Run {
                session: self.session,
                uid_key: self.uid_key,
                order: self.order,
                peer_set_size: set_size,
            },
            match_key: self.match_key,
            expected: Expected::new(set_size),
            held_back: Vec::new(),
        };
        if next.expected.is_complete() {
            return Ok(next.finish(Vec::new(), rng));
        }
        proceed(ResponderState::ExpectRequesterBlinded(next), Vec::new())
    }
}

impl ExpectRequesterBlinded {
    /// Accepts a chunk of `H(x)^a`: returns `H(x)^(a·b·b')` in the same
    /// order at once, and holds `H(x)^(a·b)` back to shuffle.
    pub fn handle<R: CryptoRng + RngCore>(
        mut self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        let Message::RequesterBlinded(points) = message else {
            return Err(unexpected("RequesterBlinded", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        let (matchable, partial_uids) = blind_twice(&self.match_key, &self.run.uid_key, &decoded);
        self.held_back.extend(matchable);
        let send: Vec<Message> = chunked(
            partial_uids,
            self.run.session.chunk_points(),
            Message::RequesterPartialUids,
        )
        .collect();
        if self.expected.is_complete() {
            return Ok(self.finish(send, rng));
        }
        proceed(ResponderState::ExpectRequesterBlinded(self), send)
    }

    /// Sends the held-back elements, shuffled. The match key is dropped (and
    /// zeroized) here.
    fn finish<R: CryptoRng + RngCore>(
        mut self,
        mut send: Vec<Message>,
        rng: &mut R,
    ) -> ResponderStep {
        let mut held_back = std::mem::take(&mut self.held_back);
        held_back.shuffle(rng);
        send.extend(chunked(
            held_back,
            self.run.session.chunk_points(),
            Message::RequesterShuffled,
        ));
        let own_records = self.run.order.len() as u64;
        let next = ExpectResponderPartialUids {
            run: self.run,
            expected: Expected::new(own_records),
            own_uids: Vec::new(),
        };
        if next.expected.is_complete() {
            return Step {
                next: Progress::Continue(next.finish()),
                send,
            };
        }
        Step {
            next: Progress::Continue(ResponderState::ExpectResponderPartialUids(next)),
            send,
        }
    }
}

impl ExpectResponderPartialUids {
    /// Accepts a chunk of our partial UIDs and adds our UID key.
    pub fn handle(mut self, message: Message) -> Result<ResponderStep, Error> {
        let Message::ResponderPartialUids(points) = message else {
            return Err(unexpected("ResponderPartialUids", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        self.own_uids.extend(self.run.uid_key.blind_batch(&decoded));
        if self.expected.is_complete() {
            return proceed(self.finish(), Vec::new());
        }
        proceed(ResponderState::ExpectResponderPartialUids(self), Vec::new())
    }

    fn finish(self) -> ResponderState {
        ResponderState::ExpectDifferences(ExpectDifferences {
            own_uids: to_record_order(&self.run.order, self.own_uids),
            run: self.run,
        })
    }
}

impl ExpectDifferences {
    /// Accepts the counts of unmatched ids, after checking that the two set
    /// sizes can give them.
    pub fn handle(self, message: Message) -> Result<ResponderStep, Error> {
        let Message::Differences {
            requester_only,
            responder_only,
        } = message
        else {
            return Err(unexpected("Differences", &message));
        };
        let refuse = |problem| Error::BadDifferences {
            requester_only,
            responder_only,
            problem,
        };
        let requester_size = self.run.peer_set_size;
        let own_size = self.own_uids.len() as u64;
        let common_by_requester = requester_size.checked_sub(requester_only).ok_or(refuse(
            "more requester-only ids than the requester announced",
        ))?;
        let common_by_responder = own_size
            .checked_sub(responder_only)
            .ok_or(refuse("more responder-only ids than we hold"))?;
        if common_by_requester != common_by_responder {
            return Err(refuse("the two counts give different intersection sizes"));
        }
        ExpectResponderOnly {
            run: self.run,
            expected: Expected::new(responder_only),
            requester_only,
            own_uids: self.own_uids,
        }
        .begin()
    }
}

impl ExpectResponderOnly {
    fn begin(self) -> Result<ResponderStep, Error> {
        if self.expected.is_complete() {
            return self.finish(Vec::new());
        }
        proceed(ResponderState::ExpectResponderOnly(self), Vec::new())
    }

    /// Accepts a chunk of responder-only `H(y)^(a·b)` and returns it raised
    /// to `b'`, in the same order.
    pub fn handle(mut self, message: Message) -> Result<ResponderStep, Error> {
        let Message::ResponderOnly(points) = message else {
            return Err(unexpected("ResponderOnly", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        let send = chunked(
            self.run.uid_key.blind_batch(&decoded),
            self.run.session.chunk_points(),
            Message::ResponderOnlyPartialUids,
        )
        .collect();
        if self.expected.is_complete() {
            return self.finish(send);
        }
        proceed(ResponderState::ExpectResponderOnly(self), send)
    }

    fn finish(self, send: Vec<Message>) -> Result<ResponderStep, Error> {
        let next = ExpectRequesterOnlyPartialUids {
            run: self.run,
            expected: Expected::new(self.requester_only),
            own_uids: self.own_uids,
            requester_only_uids: Vec::new(),
        };
        if next.expected.is_complete() {
            return Ok(Step {
                next: Progress::Done(next.output()?),
                send,
            });
        }
        proceed(ResponderState::ExpectRequesterOnlyPartialUids(next), send)
    }
}

impl ExpectRequesterOnlyPartialUids {
    /// Accepts a chunk of requester-only partial UIDs and adds our UID key:
    /// these are the union's rows we hold no record for.
    pub fn handle(mut self, message: Message) -> Result<ResponderStep, Error> {
        let Message::RequesterOnlyPartialUids(points) = message else {
            return Err(unexpected("RequesterOnlyPartialUids", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        self.requester_only_uids
            .extend(self.run.uid_key.blind_batch(&decoded));
        if self.expected.is_complete() {
            return Ok(Step {
                next: Progress::Done(self.output()?),
                send: Vec::new(),
            });
        }
        proceed(
            ResponderState::ExpectRequesterOnlyPartialUids(self),
            Vec::new(),
        )
    }

    fn output(self) -> Result<Matching, Error> {
        Matching::assemble(
            self.own_uids,
            self.requester_only_uids,
            self.run.peer_set_size,
        )
    }
}

// The states hold secret keys and permutations: their Debug output says
// where the run is and nothing more.
impl std::fmt::Debug for ExpectRequesterHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ExpectRequesterHello({} own ids, redacted)",
            self.order.len()
        )
    }
}

impl std::fmt::Debug for ExpectDifferences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ExpectDifferences({} own ids, redacted)",
            self.run.order.len()
        )
    }
}

macro_rules! redacted_debug {
    ($($state:ident),*) => {$(
        impl std::fmt::Debug for $state {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    concat!(stringify!($state), "({:?}, {} own ids, redacted)"),
                    self.expected,
                    self.run.order.len()
                )
            }
        }
    )*};
}
redacted_debug!(
    ExpectRequesterBlinded,
    ExpectResponderPartialUids,
    ExpectResponderOnly,
    ExpectRequesterOnlyPartialUids
);
