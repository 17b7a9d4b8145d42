use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand::seq::SliceRandom;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::elgamal::{Encryptor, SecretShare, decode_ciphertexts, joint_key, verify_key};
use super::messages::chunked;
use super::{
    Counter, EncryptedRow, InputError, LimbOffsets, Message, Session, ValuedIds, check_announced,
};
use crate::group::{BlindingKey, EncodedPoint, decode_all, decode_point, hash_all};
use crate::{Error, Progress, Step};

/// What the responder learns: only the size of the requester's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderOutput {
    /// The number of distinct ids the requester used.
    pub peer_set_size: u64,
}

/// The party that holds the valued rows and answers the request.
#[derive(Debug)]
pub struct Responder;

/// The responder's rows in the order it will send them (shuffled at
/// start): blinded ids, and the plaintext of every slot.
struct Rows {
    blinded_ids: Vec<EncodedPoint>,
    /// `slots` plaintexts per row, row after row.
    plaintexts: Vec<u64>,
}

impl Drop for Rows {
    fn drop(&mut self) {
        self.plaintexts.zeroize();
    }
}

impl Responder {
    /// Checks the rows and offsets, blinds the ids (in a random order, so
    /// positions say nothing) and returns the first state and the hello.
    ///
    /// `offsets` are added to the decrypted slot sums (see [`LimbOffsets`]);
    /// pass [`LimbOffsets::none`] for exact sums.
    pub fn start<R: CryptoRng + RngCore>(
        session: Session,
        rows: &ValuedIds,
        offsets: LimbOffsets,
        rng: &mut R,
    ) -> Result<(ExpectRequesterHello, Vec<Message>), InputError> {
        session.check(rows.len())?;
        rows.check(&session.layout)?;
        let offsets = Zeroizing::new(offsets.resolve(&session)?);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.shuffle(rng);
        let key = BlindingKey::random(rng);
        let hashed = hash_all(
            &session.tag(),
            order.iter().filter_map(|&i| rows.ids.get(i)),
        );
        let mut plaintexts = Vec::with_capacity(rows.len() * session.layout.slots());
        for &i in &order {
            plaintexts.extend(
                session
                    .layout
                    .plaintexts(rows.values[i], rows.categories[i]),
            );
        }
        order.zeroize();
        let rows = Rows {
            blinded_ids: key.blind_batch(&hashed),
            plaintexts,
        };
        let secret = SecretShare::random(rng);
        let public = secret.public();
        let hello = Message::ResponderHello {
            set_size: rows.blinded_ids.len() as u64,
            elgamal_key: public.compress().to_bytes(),
            key_proof: secret.prove(&session.tag(), super::RESPONDER_ROLE, rng),
        };
        let state = ExpectRequesterHello {
            session,
            key,
            secret,
            public,
            rows,
            offsets,
        };
        Ok((state, vec![hello]))
    }
}

/// Waiting for the requester's set size and ElGamal share.
pub struct ExpectRequesterHello {
    session: Session,
    key: BlindingKey,
    secret: SecretShare,
    public: RistrettoPoint,
    rows: Rows,
    offsets: Zeroizing<Vec<u64>>,
}

/// Waiting for the requester's blinded ids `H(x)^a`.
pub struct ExpectRequesterBlinded {
    session: Session,
    key: BlindingKey,
    secret: SecretShare,
    encryptor: Encryptor,
    rows: Rows,
    offsets: Zeroizing<Vec<u64>>,
    counter: Counter,
    /// `H(x)^ab`, held back until all have arrived so they can be shuffled
    /// before the requester sees any.
    held_back: Vec<EncodedPoint>,
}

/// Waiting for the requester's sum of each slot.
pub struct ExpectSumCiphertexts {
    session: Session,
    secret: SecretShare,
    offsets: Zeroizing<Vec<u64>>,
    peer_set_size: u64,
}

/// Any state of the responder, for drivers that hold one generically.
#[derive(Debug)]
pub enum ResponderState {
    /// See [`ExpectRequesterHello`].
    ExpectRequesterHello(ExpectRequesterHello),
    /// See [`ExpectRequesterBlinded`].
    ExpectRequesterBlinded(ExpectRequesterBlinded),
    /// See [`ExpectSumCiphertexts`].
    ExpectSumCiphertexts(ExpectSumCiphertexts),
}

/// One responder transition.
pub type ResponderStep = Step<ResponderState, ResponderOutput, Message>;

impl ResponderState {
    /// Feeds one message from the requester. `rng` shuffles and encrypts.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        match self {
            Self::ExpectRequesterHello(s) => s.handle(message, rng),
            Self::ExpectRequesterBlinded(s) => s.handle(message, rng),
            Self::ExpectSumCiphertexts(s) => s.handle(message),
        }
    }
}

impl From<ExpectRequesterHello> for ResponderState {
    fn from(state: ExpectRequesterHello) -> Self {
        Self::ExpectRequesterHello(state)
    }
}

impl ExpectRequesterHello {
    /// Accepts the requester's hello and forms the joint key.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<ResponderStep, Error> {
        let Message::RequesterHello {
            set_size,
            elgamal_key,
            key_proof,
        } = message
        else {
            return Err(Error::UnexpectedMessage {
                expected: "RequesterHello",
                received: message.kind(),
            });
        };
        check_announced(set_size, &self.session)?;
        let peer_key = decode_point(&elgamal_key, 0)?;
        verify_key(
            &self.session.tag(),
            super::REQUESTER_ROLE,
            &peer_key,
            &key_proof,
        )?;
        let joint = joint_key(&self.public, &peer_key)?;
        let next = ExpectRequesterBlinded {
            session: self.session,
            key: self.key,
            secret: self.secret,
            encryptor: Encryptor::new(&joint),
            rows: self.rows,
            offsets: self.offsets,
            counter: Counter::new(set_size),
            held_back: Vec::new(),
        };
        if set_size == 0 {
            return Ok(next.finish(rng));
        }
        Ok(Step {
            next: Progress::Continue(ResponderState::ExpectRequesterBlinded(next)),
            send: Vec::new(),
        })
    }
}

impl ExpectRequesterBlinded {
    /// Accepts a chunk of the requester's elements and raises them to our
    /// key; after the last, sends them shuffled, then the encrypted rows.
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
        let first = self.counter.accept_chunk(points.len(), points.len())?;
        let decoded = decode_all(&points, first)?;
        self.held_back.extend(self.key.blind_batch(&decoded));
        if !self.counter.is_complete() {
            return Ok(Step {
                next: Progress::Continue(ResponderState::ExpectRequesterBlinded(self)),
                send: Vec::new(),
            });
        }
        Ok(self.finish(rng))
    }

    /// Sends `H(x)^ab` shuffled, then the rows, and waits for the sums.
    fn finish<R: CryptoRng + RngCore>(mut self, rng: &mut R) -> ResponderStep {
        let mut held_back = std::mem::take(&mut self.held_back);
        held_back.shuffle(rng);
        let mut send: Vec<Message> = chunked(
            held_back,
            self.session.chunk_points(),
            Message::DoubleBlinded,
        )
        .collect();
        let slots = self.session.layout.slots();
        let chunk_rows = self.session.chunk_rows();
        // Encrypted a chunk at a time, so only one chunk's randomness is
        // held at once.
        for (ids, plaintexts) in self
            .rows
            .blinded_ids
            .chunks(chunk_rows)
            .zip(self.rows.plaintexts.chunks(chunk_rows * slots))
        {
            let ciphertexts = self.encryptor.encrypt_batch(plaintexts, rng);
            let rows = ids
                .iter()
                .zip(ciphertexts.chunks(slots))
                .map(|(id, cts)| EncryptedRow {
                    blinded_id: *id,
                    ciphertexts: cts.to_vec(),
                })
                .collect();
            send.push(Message::ResponderRows(rows));
        }
        let next = ExpectSumCiphertexts {
            session: self.session,
            secret: self.secret,
            offsets: self.offsets,
            peer_set_size: self.counter.announced,
        };
        // The blinding key and the rows' plaintexts are dropped (and
        // zeroized) here: nothing left needs them.
        Step {
            next: Progress::Continue(ResponderState::ExpectSumCiphertexts(next)),
            send,
        }
    }
}

impl ExpectSumCiphertexts {
    /// Returns our share of the decryption of each slot's sum, with the
    /// slot's offset folded in: `x2·C1 − offset·G`.
    pub fn handle(self, message: Message) -> Result<ResponderStep, Error> {
        let Message::SumCiphertexts(sums) = message else {
            return Err(Error::UnexpectedMessage {
                expected: "SumCiphertexts",
                received: message.kind(),
            });
        };
        let slots = self.session.layout.slots();
        if sums.len() != slots {
            return Err(Error::WrongCiphertextCount {
                what: "sum ciphertexts",
                expected: slots,
                found: sums.len(),
            });
        }
        let sums = decode_ciphertexts(&sums, 0)?;
        let shares: Vec<EncodedPoint> = sums
            .iter()
            .zip(self.offsets.iter())
            .map(|(sum, &offset)| {
                let share =
                    self.secret.partial(&sum.c1) - RistrettoPoint::mul_base(&Scalar::from(offset));
                share.compress().to_bytes()
            })
            .collect();
        Ok(Step {
            next: Progress::Done(ResponderOutput {
                peer_set_size: self.peer_set_size,
            }),
            send: vec![Message::PartialDecryptions(shares)],
        })
    }
}

// The states hold secret keys, the rows and the offsets: their Debug says
// where the run is and nothing more.
macro_rules! redacted_debug {
    ($($state:ident),*) => {$(
        impl std::fmt::Debug for $state {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($state), "(redacted)"))
            }
        }
    )*};
}
redacted_debug!(
    ExpectRequesterHello,
    ExpectRequesterBlinded,
    ExpectSumCiphertexts
);
