use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand_core::{CryptoRng, RngCore};

use super::messages::chunked;
use super::{ElementCounter, Message, Mode, Padding, Session, check_announced};
use crate::group::{BlindingKey, EncodedPoint, decode_all, hash_all};
use crate::{Error, IdSet, Progress, Step};

/// What the requester learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsiOutput {
    /// The number of elements the responder announced: its distinct ids,
    /// plus its dummies when it pads the count (see [`Padding`]).
    pub peer_set_size: u64,
    /// The intersection, or its size.
    pub result: PsiResult,
}

/// The requester's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsiResult {
    /// Positions in the requester's [`IdSet`] of the ids in the intersection,
    /// ascending.
    Members(Vec<usize>),
    /// The size of the intersection.
    Cardinality(u64),
}

impl PsiResult {
    /// The size of the intersection, whichever mode ran.
    pub fn size(&self) -> u64 {
        match self {
            Self::Members(members) => members.len() as u64,
            Self::Cardinality(size) => *size,
        }
    }
}

/// The party that asks for the intersection.
#[derive(Debug)]
pub struct Requester;

impl Requester {
    /// Blinds the requester's ids and returns the first state and the
    /// messages that open the protocol.
    pub fn start<R: CryptoRng + RngCore>(
        session: Session,
        ids: &IdSet,
        rng: &mut R,
    ) -> (ExpectResponderHello, Vec<Message>) {
        let key = BlindingKey::random(rng);
        // The responder sees our elements in a random order, and in membership
        // mode returns them in that order; `order` maps them back to our ids.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.shuffle(rng);
        let tag = session.tag();
        let hashed = hash_all(&tag, order.iter().filter_map(|&i| ids.get(i)));
        let blinded = key.blind_batch(&hashed);
        let key_commitment = match session.padding() {
            Padding::None => None,
            _ => Some(key.commitment()),
        };
        let mut send = vec![Message::RequesterHello {
            set_size: ids.len() as u64,
            key_commitment,
        }];
        send.extend(chunked(
            blinded,
            session.chunk_points(),
            Message::RequesterBlinded,
        ));
        let state = ExpectResponderHello {
            session,
            key,
            order,
        };
        (state, send)
    }
}

/// Waiting for the responder to announce its set size.
pub struct ExpectResponderHello {
    session: Session,
    key: BlindingKey,
    order: Vec<usize>,
}

/// Waiting for the responder's blinded ids `H(y)^b`.
pub struct ExpectResponderBlinded {
    session: Session,
    key: BlindingKey,
    order: Vec<usize>,
    /// Our elements plus the responder's dummies, checked against overflow.
    expected_back: u64,
    peer_set_size: u64,
    counter: ElementCounter,
    peer_elements: HashSet<EncodedPoint>,
}

/// Waiting for our own elements raised to the responder's key, `H(x)^ab`.
pub struct ExpectDoubleBlinded {
    session: Session,
    order: Vec<usize>,
    peer_set_size: u64,
    counter: ElementCounter,
    peer_elements: HashSet<EncodedPoint>,
    members: Vec<usize>,
    matched: u64,
}

/// Any state of the requester, for drivers that hold one generically.
#[derive(Debug)]
pub enum RequesterState {
    /// See [`ExpectResponderHello`].
    ExpectResponderHello(ExpectResponderHello),
    /// See [`ExpectResponderBlinded`].
    ExpectResponderBlinded(ExpectResponderBlinded),
    /// See [`ExpectDoubleBlinded`].
    ExpectDoubleBlinded(ExpectDoubleBlinded),
}

/// One requester transition.
pub type RequesterStep = Step<RequesterState, PsiOutput, Message>;

impl RequesterState {
    /// Feeds one message from the responder.
    pub fn handle(self, message: Message) -> Result<RequesterStep, Error> {
        match self {
            Self::ExpectResponderHello(s) => s.handle(message),
            Self::ExpectResponderBlinded(s) => s.handle(message),
            Self::ExpectDoubleBlinded(s) => s.handle(message),
        }
    }
}

impl From<ExpectResponderHello> for RequesterState {
    fn from(state: ExpectResponderHello) -> Self {
        Self::ExpectResponderHello(state)
    }
}

fn continue_with(state: RequesterState) -> Result<RequesterStep, Error> {
    Ok(Step {
        next: Progress::Continue(state),
        send: Vec::new(),
    })
}

impl ExpectResponderHello {
    /// Accepts the responder's hello.
    pub fn handle(self, message: Message) -> Result<RequesterStep, Error> {
        let Message::ResponderHello { set_size } = message else {
            return Err(Error::UnexpectedMessage {
                expected: "ResponderHello",
                received: message.kind(),
            });
        };
        check_announced(set_size, &self.session)?;
        let expected_back = expected_double_blinded(&self.session, self.order.len(), set_size)?;
        let next = ExpectResponderBlinded {
            session: self.session,
            key: self.key,
            order: self.order,
            expected_back,
            peer_set_size: set_size,
            counter: ElementCounter::new(set_size),
            peer_elements: HashSet::new(),
        };
        if set_size == 0 {
            return Ok(next.finish_peer_elements());
        }
        continue_with(RequesterState::ExpectResponderBlinded(next))
    }
}

impl ExpectResponderBlinded {
    /// Accepts a chunk of the responder's blinded ids.
    pub fn handle(mut self, message: Message) -> Result<RequesterStep, Error> {
        let Message::ResponderBlinded(points) = message else {
            return Err(Error::UnexpectedMessage {
                expected: "ResponderBlinded",
                received: message.kind(),
            });
        };
        let first = self.counter.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        self.peer_elements.extend(self.key.blind_batch(&decoded));
        if self.counter.is_complete() {
            return Ok(self.finish_peer_elements());
        }
        continue_with(RequesterState::ExpectResponderBlinded(self))
    }

    fn finish_peer_elements(self) -> RequesterStep {
        let own_size = self.expected_back;
        let next = ExpectDoubleBlinded {
            session: self.session,
            order: self.order,
            peer_set_size: self.peer_set_size,
            counter: ElementCounter::new(own_size),
            peer_elements: self.peer_elements,
            members: Vec::new(),
            matched: 0,
        };
        // The key is dropped (and zeroized) here: nothing left needs it.
        if own_size == 0 {
            return Step {
                next: Progress::Done(next.output()),
                send: Vec::new(),
            };
        }
        Step {
            next: Progress::Continue(RequesterState::ExpectDoubleBlinded(next)),
            send: Vec::new(),
        }
    }
}

/// How many double-blinded elements the responder must return: ours, plus
/// the dummies its node told us to expect.
///
/// The noise terms come from the responder's node, so they are peer input:
/// they are checked here, before anything uses them, against each other and
/// against the size the responder announced (its dummies are part of its
/// list, which also bounds how many elements it can make us read).
fn expected_double_blinded(
    session: &Session,
    own_ids: usize,
    announced: u64,
) -> Result<u64, Error> {
    let Padding::Requester { offset, total } = session.padding() else {
        return Ok(own_ids as u64);
    };
    let refuse = |problem| Error::BadNoiseTerms {
        offset,
        total,
        announced,
        problem,
    };
    if offset > total {
        return Err(refuse(
            "the offset is above the number of dummies that could carry it",
        ));
    }
    if total > announced {
        return Err(refuse(
            "more dummies than the elements the peer announced in all",
        ));
    }
    (own_ids as u64)
        .checked_add(total)
        .ok_or(refuse("our set size plus the dummies would overflow"))
}

impl ExpectDoubleBlinded {
    /// Accepts a chunk of our elements raised to the responder's key.
    pub fn handle(mut self, message: Message) -> Result<RequesterStep, Error> {
        let Message::DoubleBlinded(points) = message else {
            return Err(Error::UnexpectedMessage {
                expected: "DoubleBlinded",
                received: message.kind(),
            });
        };
        let first = self.counter.accept_chunk(points.len())?;
        // Every element must decode canonically, even though matching
        // compares encodings.
        decode_all(&points, first)?;
        for (bytes, index) in points.iter().zip(first..) {
            if self.peer_elements.contains(bytes) {
                self.matched += 1;
                if self.session.mode == Mode::Membership {
                    // Without padding `index` < own set size (the counter checks).
                    if let Some(&member) = self.order.get(index as usize) {
                        self.members.push(member);
                    }
                }
            }
        }
        if self.counter.is_complete() {
            return Ok(Step {
                next: Progress::Done(self.output()),
                send: Vec::new(),
            });
        }
        continue_with(RequesterState::ExpectDoubleBlinded(self))
    }

    fn output(mut self) -> PsiOutput {
        let result = match self.session.mode {
            Mode::Membership => {
                self.members.sort_unstable();
                PsiResult::Members(std::mem::take(&mut self.members))
            }
            // The noisy count can fall below zero; releasing 0 then is
            // post-processing and costs no privacy.
            Mode::Cardinality => match self.session.padding() {
                Padding::Requester { offset, .. } => {
                    PsiResult::Cardinality(self.matched.saturating_sub(offset))
                }
                _ => PsiResult::Cardinality(self.matched),
            },
        };
        PsiOutput {
            peer_set_size: self.peer_set_size,
            result,
        }
    }
}

// The states hold the secret key, the secret permutation and the peer's
// elements: their Debug output says where the run is and nothing more.
macro_rules! redacted_debug {
    ($($state:ident),*) => {$(
        impl std::fmt::Debug for $state {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($state), "({} own ids, redacted)"), self.order.len())
            }
        }
    )*};
}
redacted_debug!(
    ExpectResponderHello,
    ExpectResponderBlinded,
    ExpectDoubleBlinded
);
