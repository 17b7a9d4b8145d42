use rand::seq::SliceRandom;
use rand_core::{CryptoRng, RngCore};

use super::messages::chunked;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use subtle::{ConditionallySelectable, ConstantTimeLess};
use zeroize::Zeroize;

use super::{ElementCounter, Message, Mode, Padding, Session, check_announced};
use crate::group::{BlindingKey, EncodedPoint, decode_all, decode_point, hash_all, map_chunks};
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
        let dummies = Dummies::new(session.padding(), rng);
        // Size dummies go through exactly the path of a real id, so the time
        // this takes depends on |Y| + size dummies (public, announced) and
        // not on how it splits.
        let size_ids = dummies.size_ids.iter().map(|id| id.as_slice());
        let all_ids = ids.iter().chain(size_ids);
        let hashed = hash_all(&tag, all_ids);
        let mut blinded = key.blind_batch(&hashed);
        blinded.extend(dummies.own_list_elements());
        blinded.shuffle(rng);
        let mut send = vec![Message::ResponderHello {
            set_size: blinded.len() as u64,
        }];
        send.extend(chunked(
            blinded,
            session.chunk_points(),
            Message::ResponderBlinded,
        ));
        (
            ExpectRequesterHello {
                session,
                key,
                dummies,
            },
            send,
        )
    }
}

/// Waiting for the requester to announce its set size.
pub struct ExpectRequesterHello {
    session: Session,
    key: BlindingKey,
    dummies: Dummies,
}

/// The responder's padding dummies.
///
/// Every dummy costs the same work whether it matches or not, so the time
/// the responder takes says nothing of the secret number that match: each
/// draws two scalars `r` and `s`, puts `r·G` in our list, and returns `t·A`
/// among the double-blinded elements, where `t` is `r` for a matching dummy
/// (so that `(r·G)^a = r·A` matches) and `s` for an unmatched one (so `s·A`
/// is a uniformly random element, unrelated to anything in our list). `t` is
/// chosen with a constant-time select, not a branch.
struct Dummies {
    /// `r` per dummy.
    own: Vec<Scalar>,
    /// `t` per dummy.
    returned: Vec<Scalar>,
    /// The size dummies: random 32-byte ids, so no requester id matches one
    /// except with negligible probability.
    size_ids: Vec<[u8; 32]>,
}

impl Dummies {
    fn new<R: CryptoRng + RngCore>(padding: Padding, rng: &mut R) -> Self {
        let (matching, total, size_dummies) = match padding {
            Padding::Responder { matching, total } => (matching.min(total), total, 0),
            Padding::ResponderWithSize {
                matching,
                total,
                size_dummies,
            } => (matching.min(total), total, size_dummies),
            Padding::None | Padding::Requester { .. } => (0, 0, 0),
        };
        let (own, returned) = (0..total)
            .map(|i| {
                let r = Scalar::random(rng);
                let s = Scalar::random(rng);
                (r, Scalar::conditional_select(&s, &r, i.ct_lt(&matching)))
            })
            .unzip();
        let size_ids = (0..size_dummies)
            .map(|_| {
                let mut id = [0u8; 32];
                rng.fill_bytes(&mut id);
                id
            })
            .collect();
        Self {
            own,
            returned,
            size_ids,
        }
    }

    /// For our blinded list: `r·G` per dummy.
    fn own_list_elements(&self) -> Vec<EncodedPoint> {
        encode_multiples(&self.own, RistrettoPoint::mul_base)
    }

    /// For the double-blinded list: `t·A` per dummy, where `A` is the
    /// requester's key commitment.
    fn returned_elements(&self, commitment: &RistrettoPoint) -> Vec<EncodedPoint> {
        encode_multiples(&self.returned, |half| half * commitment)
    }

    fn total(&self) -> u64 {
        self.own.len() as u64
    }
}

/// Encodes `k·P` for each scalar `k`, where `multiple(k)` computes `k·P`:
/// computes `(k/2)·P` and lets `double_and_compress_batch` double and encode
/// the batch with one shared inversion, as [`BlindingKey::blind_batch`] does.
fn encode_multiples(
    scalars: &[Scalar],
    multiple: impl Fn(&Scalar) -> RistrettoPoint + Sync + Send,
) -> Vec<EncodedPoint> {
    let half = Scalar::from(2u8).invert();
    map_chunks(scalars, 256, |chunk| {
        let halves: Vec<RistrettoPoint> = chunk.iter().map(|k| multiple(&(k * half))).collect();
        RistrettoPoint::double_and_compress_batch(&halves)
            .into_iter()
            .map(|c| c.to_bytes())
            .collect::<Vec<_>>()
    })
    .concat()
}

impl Drop for Dummies {
    fn drop(&mut self) {
        self.own.zeroize();
        self.returned.zeroize();
        self.size_ids.zeroize();
    }
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
            Self::ExpectRequesterHello(s) => s.handle(message, rng),
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
    /// Accepts the requester's hello. `rng` shuffles what goes back, when
    /// that is all sent at once.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        let Message::RequesterHello {
            set_size,
            key_commitment,
        } = message
        else {
            return Err(Error::UnexpectedMessage {
                expected: "RequesterHello",
                received: message.kind(),
            });
        };
        check_announced(set_size, &self.session)?;
        // With padding, the dummies join the double-blinded elements, which
        // are held back and shuffled together at the end.
        let held_back = if self.dummies.total() > 0 {
            let commitment = key_commitment.ok_or(Error::UnexpectedMessage {
                expected: "RequesterHello with a key commitment",
                received: "RequesterHello without one",
            })?;
            let commitment = decode_point(&commitment, 0)?;
            self.dummies.returned_elements(&commitment)
        } else {
            Vec::new()
        };
        let next = ExpectRequesterBlinded {
            session: self.session,
            key: self.key,
            counter: ElementCounter::new(set_size),
            held_back,
        };
        if set_size == 0 {
            return Ok(next.finish(Vec::new(), rng));
        }
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
        let decoded = decode_all(&points, first)?;
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
        Ok(self.finish(send, rng))
    }

    /// Sends what was held back, shuffled, and ends.
    fn finish<R: CryptoRng + RngCore>(
        mut self,
        mut send: Vec<Message>,
        rng: &mut R,
    ) -> ResponderStep {
        let mut held_back = std::mem::take(&mut self.held_back);
        held_back.shuffle(rng);
        send.extend(chunked(
            held_back,
            self.session.chunk_points(),
            Message::DoubleBlinded,
        ));
        Step {
            next: Progress::Done(ResponderOutput {
                peer_set_size: self.counter.announced,
            }),
            send,
        }
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
