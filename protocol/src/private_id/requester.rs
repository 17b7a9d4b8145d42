use rand::seq::SliceRandom;
use rand_core::{CryptoRng, RngCore};

use super::messages::chunked;
use super::{Expected, Matching, Message, Session, blind_twice, refuse_repeats, to_record_order};
use crate::group::{BlindingKey, EncodedPoint, decode_all, hash_all};
use crate::{Error, IdSet, Progress, Step};

/// The party that starts the job. It compares the two blinded sets, so it
/// learns the intersection size first, and tells the responder the counts.
#[derive(Debug)]
pub struct Requester;

/// One requester transition; the output is the requester's [`Matching`].
pub type RequesterStep = Step<RequesterState, Matching, Message>;

impl Requester {
    /// Draws the job's keys, blinds the requester's ids in a random order,
    /// and returns the first state and the messages that open the protocol.
    pub fn start<R: CryptoRng + RngCore>(
        session: Session,
        ids: &IdSet,
        rng: &mut R,
    ) -> (ExpectResponderHello, Vec<Message>) {
        let match_key = BlindingKey::random(rng);
        let uid_key = BlindingKey::random(rng);
        // The responder returns our partial UIDs in the order we send; `order`
        // maps them back to our records.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.shuffle(rng);
        let hashed = hash_all(&session.tag(), order.iter().filter_map(|&i| ids.get(i)));
        let blinded = match_key.blind_batch(&hashed);
        let mut send = vec![Message::RequesterHello {
            set_size: ids.len() as u64,
        }];
        send.extend(chunked(
            blinded,
            session.chunk_points(),
            Message::RequesterBlinded,
        ));
        let state = ExpectResponderHello {
            session,
            match_key,
            uid_key,
            order,
        };
        (state, send)
    }
}

/// What every state after the responder's hello carries.
struct Run {
    session: Session,
    uid_key: BlindingKey,
    /// `order[i]` is the record whose element we sent `i`-th.
    order: Vec<usize>,
    peer_set_size: u64,
}

/// Waiting for the responder to announce its set size.
pub struct ExpectResponderHello {
    session: Session,
    match_key: BlindingKey,
    uid_key: BlindingKey,
    order: Vec<usize>,
}

/// Waiting for the responder's blinded ids `H(y)^b`.
pub struct ExpectResponderBlinded {
    run: Run,
    match_key: BlindingKey,
    expected: Expected,
    /// `H(y)^(a·b)`, in the responder's order.
    responder_matchable: Vec<EncodedPoint>,
}

/// Waiting for our partial UIDs `H(x)^(a·b·b')`, in our sending order.
pub struct ExpectRequesterPartialUids {
    run: Run,
    expected: Expected,
    responder_matchable: Vec<EncodedPoint>,
    /// Our UIDs, in our sending order.
    own_uids: Vec<EncodedPoint>,
}

/// Waiting for our ids' `H(x)^(a·b)`, shuffled by the responder.
pub struct ExpectRequesterShuffled {
    run: Run,
    expected: Expected,
    responder_matchable: Vec<EncodedPoint>,
    /// Our UIDs, one per record.
    own_uids: Vec<EncodedPoint>,
    requester_matchable: Vec<EncodedPoint>,
}

/// Waiting for the responder-only elements raised to `b'`.
pub struct ExpectResponderOnlyPartialUids {
    run: Run,
    expected: Expected,
    own_uids: Vec<EncodedPoint>,
    responder_only_uids: Vec<EncodedPoint>,
}

/// Any state of the requester, for drivers that hold one generically.
#[derive(Debug)]
pub enum RequesterState {
    /// See [`ExpectResponderHello`].
    ExpectResponderHello(ExpectResponderHello),
    /// See [`ExpectResponderBlinded`].
    ExpectResponderBlinded(ExpectResponderBlinded),
    /// See [`ExpectRequesterPartialUids`].
    ExpectRequesterPartialUids(ExpectRequesterPartialUids),
    /// See [`ExpectRequesterShuffled`].
    ExpectRequesterShuffled(ExpectRequesterShuffled),
    /// See [`ExpectResponderOnlyPartialUids`].
    ExpectResponderOnlyPartialUids(ExpectResponderOnlyPartialUids),
}

impl RequesterState {
    /// Feeds one message from the responder. `rng` shuffles the lists the
    /// requester sends after comparing.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        match self {
            Self::ExpectResponderHello(s) => s.handle(message, rng),
            Self::ExpectResponderBlinded(s) => s.handle(message, rng),
            Self::ExpectRequesterPartialUids(s) => s.handle(message, rng),
            Self::ExpectRequesterShuffled(s) => s.handle(message, rng),
            Self::ExpectResponderOnlyPartialUids(s) => s.handle(message),
        }
    }
}

impl From<ExpectResponderHello> for RequesterState {
    fn from(state: ExpectResponderHello) -> Self {
        Self::ExpectResponderHello(state)
    }
}

fn proceed(state: RequesterState, send: Vec<Message>) -> Result<RequesterStep, Error> {
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

impl ExpectResponderHello {
    /// Accepts the responder's hello.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let Message::ResponderHello { set_size } = message else {
            return Err(unexpected("ResponderHello", &message));
        };
        self.session.check_announced(set_size)?;
        let next = ExpectResponderBlinded {
            run: Run {
                session: self.session,
                uid_key: self.uid_key,
                order: self.order,
                peer_set_size: set_size,
            },
            match_key: self.match_key,
            expected: Expected::new(set_size),
            responder_matchable: Vec::new(),
        };
        if next.expected.is_complete() {
            return next.finish(Vec::new(), rng);
        }
        proceed(RequesterState::ExpectResponderBlinded(next), Vec::new())
    }
}

impl ExpectResponderBlinded {
    /// Accepts a chunk of `H(y)^b`: keeps `H(y)^(a·b)` to compare, and sends
    /// `H(y)^(a·b·a')` back in the same order.
    pub fn handle<R: CryptoRng + RngCore>(
        mut self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let Message::ResponderBlinded(points) = message else {
            return Err(unexpected("ResponderBlinded", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        let (matchable, partial_uids) = blind_twice(&self.match_key, &self.run.uid_key, &decoded);
        self.responder_matchable.extend(matchable);
        let send: Vec<Message> = chunked(
            partial_uids,
            self.run.session.chunk_points(),
            Message::ResponderPartialUids,
        )
        .collect();
        if self.expected.is_complete() {
            return self.finish(send, rng);
        }
        proceed(RequesterState::ExpectResponderBlinded(self), send)
    }

    /// The match key is dropped (and zeroized) here: nothing left needs it.
    fn finish<R: CryptoRng + RngCore>(
        self,
        send: Vec<Message>,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let own_records = self.run.order.len() as u64;
        let next = ExpectRequesterPartialUids {
            run: self.run,
            expected: Expected::new(own_records),
            responder_matchable: self.responder_matchable,
            own_uids: Vec::new(),
        };
        if next.expected.is_complete() {
            return next.finish(send, rng);
        }
        proceed(RequesterState::ExpectRequesterPartialUids(next), send)
    }
}

impl ExpectRequesterPartialUids {
    /// Accepts a chunk of our partial UIDs and adds our UID key.
    pub fn handle<R: CryptoRng + RngCore>(
        mut self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let Message::RequesterPartialUids(points) = message else {
            return Err(unexpected("RequesterPartialUids", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        self.own_uids.extend(self.run.uid_key.blind_batch(&decoded));
        if self.expected.is_complete() {
            return self.finish(Vec::new(), rng);
        }
        proceed(RequesterState::ExpectRequesterPartialUids(self), Vec::new())
    }

    fn finish<R: CryptoRng + RngCore>(
        self,
        send: Vec<Message>,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let own_uids = to_record_order(&self.run.order, self.own_uids);
        let own_records = own_uids.len() as u64;
        let next = ExpectRequesterShuffled {
            run: self.run,
            expected: Expected::new(own_records),
            responder_matchable: self.responder_matchable,
            own_uids,
            requester_matchable: Vec::new(),
        };
        if next.expected.is_complete() {
            return next.compare(send, rng);
        }
        proceed(RequesterState::ExpectRequesterShuffled(next), send)
    }
}

impl ExpectRequesterShuffled {
    /// Accepts a chunk of our ids' `H(x)^(a·b)`, in the responder's shuffled
    /// order; after the last, compares the two sets.
    pub fn handle<R: CryptoRng + RngCore>(
        mut self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let Message::RequesterShuffled(points) = message else {
            return Err(unexpected("RequesterShuffled", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        // Matching compares encodings, but every element must still be a
        // canonical encoding of a non-identity point.
        decode_all(&points, first)?;
        self.requester_matchable.extend(points);
        if self.expected.is_complete() {
            return self.compare(Vec::new(), rng);
        }
        proceed(RequesterState::ExpectRequesterShuffled(self), Vec::new())
    }

    /// Splits both sets into the ids the other side lacks, and sends them,
    /// freshly shuffled, with their counts. The requester sees which
    /// positions of the responder's shuffled list match, and nothing ties
    /// those positions to its records.
    fn compare<R: CryptoRng + RngCore>(
        self,
        mut send: Vec<Message>,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let mut sorted_requester = self.requester_matchable.clone();
        sorted_requester.sort_unstable();
        refuse_repeats(&sorted_requester, "RequesterShuffled")?;
        let mut sorted_responder = self.responder_matchable.clone();
        sorted_responder.sort_unstable();
        refuse_repeats(&sorted_responder, "ResponderBlinded")?;
        let mut requester_only: Vec<EncodedPoint> = self
            .requester_matchable
            .into_iter()
            .filter(|e| sorted_responder.binary_search(e).is_err())
            .collect();
        let mut responder_only: Vec<EncodedPoint> = self
            .responder_matchable
            .into_iter()
            .filter(|e| sorted_requester.binary_search(e).is_err())
            .collect();
        requester_only.shuffle(rng);
        responder_only.shuffle(rng);
        let requester_only_partial = self
            .run
            .uid_key
            .blind_batch(&decode_all(&requester_only, 0)?);
        send.push(Message::Differences {
            requester_only: requester_only.len() as u64,
            responder_only: responder_only.len() as u64,
        });
        let chunk = self.run.session.chunk_points();
        let expected = Expected::new(responder_only.len() as u64);
        send.extend(chunked(responder_only, chunk, Message::ResponderOnly));
        send.extend(chunked(
            requester_only_partial,
            chunk,
            Message::RequesterOnlyPartialUids,
        ));
        let next = ExpectResponderOnlyPartialUids {
            run: self.run,
            expected,
            own_uids: self.own_uids,
            responder_only_uids: Vec::new(),
        };
        if next.expected.is_complete() {
            return Ok(Step {
                next: Progress::Done(next.output()?),
                send,
            });
        }
        proceed(RequesterState::ExpectResponderOnlyPartialUids(next), send)
    }
}

impl ExpectResponderOnlyPartialUids {
    /// Accepts a chunk of the responder-only elements raised to `b'`, and
    /// adds our UID key: these are the union's rows we hold no record for.
    pub fn handle(mut self, message: Message) -> Result<RequesterStep, Error> {
        let Message::ResponderOnlyPartialUids(points) = message else {
            return Err(unexpected("ResponderOnlyPartialUids", &message));
        };
        let first = self.expected.accept_chunk(points.len())?;
        let decoded = decode_all(&points, first)?;
        self.responder_only_uids
            .extend(self.run.uid_key.blind_batch(&decoded));
        if self.expected.is_complete() {
            return Ok(Step {
                next: Progress::Done(self.output()?),
                send: Vec::new(),
            });
        }
        proceed(
            RequesterState::ExpectResponderOnlyPartialUids(self),
            Vec::new(),
        )
    }

    fn output(self) -> Result<Matching, Error> {
        Matching::assemble(
            self.own_uids,
            self.responder_only_uids,
            self.run.peer_set_size,
        )
    }
}

// The states hold secret keys and permutations: their Debug output says
// where the run is and nothing more.
impl std::fmt::Debug for ExpectResponderHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ExpectResponderHello({} own ids, redacted)",
            self.order.len()
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
    ExpectResponderBlinded,
    ExpectRequesterPartialUids,
    ExpectRequesterShuffled,
    ExpectResponderOnlyPartialUids
);
