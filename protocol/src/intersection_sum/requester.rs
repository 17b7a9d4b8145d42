use std::collections::HashSet;

use curve25519_dalek::ristretto::RistrettoPoint;
use rand::seq::SliceRandom;
use rand_core::{CryptoRng, RngCore};

use super::dlog::DlogTable;
use super::elgamal::{
    Ciphertext, Encryptor, SecretShare, decode_ciphertexts, joint_key, verify_key,
};
use super::messages::chunked;
use super::{Counter, EncryptedRow, InputError, LIMB_BITS, Message, Session, check_announced};
use crate::group::{BlindingKey, EncodedPoint, decode_all, decode_point, hash_all, map_chunks};
use crate::{Error, IdSet, Progress, Step};

/// What the requester learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsumOutput {
    /// The number of rows the responder announced.
    pub peer_set_size: u64,
    /// `|X ∩ Y|`, from matching (exact).
    pub cardinality: u64,
    /// Per category, in category order.
    pub categories: Vec<CategorySum>,
}

/// One category's part of the result.
///
/// With offsets from the responder ([`super::LimbOffsets`]) each slot sum
/// carries its offset: the count grows by the count slot's, and the sum by
/// each limb slot's offset times `2^(16·k)`. With one category the count is
/// the exact cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategorySum {
    /// Matched rows in this category.
    pub count: u64,
    /// The sum of their values.
    pub sum: u128,
}

/// The party that asks for the intersection-sum.
#[derive(Debug)]
pub struct Requester;

impl Requester {
    /// Blinds the requester's ids in a random order and returns the first
    /// state and the opening messages.
    pub fn start<R: CryptoRng + RngCore>(
        session: Session,
        ids: &IdSet,
        rng: &mut R,
    ) -> Result<(ExpectResponderHello, Vec<Message>), InputError> {
        session.check(ids.len())?;
        let key = BlindingKey::random(rng);
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.shuffle(rng);
        let hashed = hash_all(&session.tag(), order.iter().filter_map(|&i| ids.get(i)));
        let blinded = key.blind_batch(&hashed);
        let secret = SecretShare::random(rng);
        let public = secret.public();
        let mut send = vec![Message::RequesterHello {
            set_size: ids.len() as u64,
            elgamal_key: public.compress().to_bytes(),
            key_proof: secret.prove(&session.tag(), super::REQUESTER_ROLE, rng),
        }];
        send.extend(chunked(
            blinded,
            session.chunk_points(),
            Message::RequesterBlinded,
        ));
        let state = ExpectResponderHello {
            session,
            key,
            secret,
            public,
            own_set_size: ids.len() as u64,
        };
        Ok((state, send))
    }
}

/// Waiting for the responder's set size and ElGamal share.
pub struct ExpectResponderHello {
    session: Session,
    key: BlindingKey,
    secret: SecretShare,
    public: RistrettoPoint,
    own_set_size: u64,
}

/// Waiting for our own elements raised to the responder's key, `H(x)^ab`,
/// in an order we cannot relate to ours.
pub struct ExpectDoubleBlinded {
    matching: Matching,
    counter: Counter,
}

/// Waiting for the responder's encrypted rows.
pub struct ExpectResponderRows {
    matching: Matching,
    counter: Counter,
}

/// Waiting for the responder's share of the decryption of each sum.
pub struct ExpectPartialDecryptions {
    session: Session,
    secret: SecretShare,
    /// The sums as sent, after re-randomisation.
    sums: Vec<Ciphertext>,
    peer_set_size: u64,
    matched: u64,
}

/// What the middle states carry: keys, our double-blinded elements, and
/// the running sum of the matched rows' ciphertexts.
struct Matching {
    session: Session,
    key: BlindingKey,
    secret: SecretShare,
    encryptor: Encryptor,
    peer_set_size: u64,
    own_elements: HashSet<EncodedPoint>,
    sums: Vec<Ciphertext>,
    matched: u64,
}

/// Any state of the requester, for drivers that hold one generically.
#[derive(Debug)]
pub enum RequesterState {
    /// See [`ExpectResponderHello`].
    ExpectResponderHello(ExpectResponderHello),
    /// See [`ExpectDoubleBlinded`].
    ExpectDoubleBlinded(ExpectDoubleBlinded),
    /// See [`ExpectResponderRows`].
    ExpectResponderRows(ExpectResponderRows),
    /// See [`ExpectPartialDecryptions`].
    ExpectPartialDecryptions(ExpectPartialDecryptions),
}

/// One requester transition.
pub type RequesterStep = Step<RequesterState, IsumOutput, Message>;

impl RequesterState {
    /// Feeds one message from the responder. `rng` re-randomises the sums;
    /// `table` solves the decrypted sums at the last step.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
        table: &DlogTable,
    ) -> Result<RequesterStep, Error> {
        match self {
            Self::ExpectResponderHello(s) => s.handle(message, rng),
            Self::ExpectDoubleBlinded(s) => s.handle(message, rng),
            Self::ExpectResponderRows(s) => s.handle(message, rng),
            Self::ExpectPartialDecryptions(s) => s.handle(message, table),
        }
    }
}

impl From<ExpectResponderHello> for RequesterState {
    fn from(state: ExpectResponderHello) -> Self {
        Self::ExpectResponderHello(state)
    }
}

fn continue_with(state: RequesterState, send: Vec<Message>) -> Result<RequesterStep, Error> {
    Ok(Step {
        next: Progress::Continue(state),
        send,
    })
}

impl ExpectResponderHello {
    /// Accepts the responder's hello and forms the joint key.
    pub fn handle<R: CryptoRng + RngCore>(
        self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let Message::ResponderHello {
            set_size,
            elgamal_key,
            key_proof,
        } = message
        else {
            return Err(Error::UnexpectedMessage {
                expected: "ResponderHello",
                received: message.kind(),
            });
        };
        check_announced(set_size, &self.session)?;
        let peer_key = decode_point(&elgamal_key, 0)?;
        verify_key(
            &self.session.tag(),
            super::RESPONDER_ROLE,
            &peer_key,
            &key_proof,
        )?;
        let joint = joint_key(&self.public, &peer_key)?;
        let slots = self.session.layout.slots();
        let matching = Matching {
            session: self.session,
            key: self.key,
            secret: self.secret,
            encryptor: Encryptor::new(&joint),
            peer_set_size: set_size,
            own_elements: HashSet::new(),
            sums: vec![Ciphertext::zero_sum(); slots],
            matched: 0,
        };
        if self.own_set_size == 0 {
            return matching.expect_rows(rng);
        }
        let next = ExpectDoubleBlinded {
            matching,
            counter: Counter::new(self.own_set_size),
        };
        continue_with(RequesterState::ExpectDoubleBlinded(next), Vec::new())
    }
}

impl ExpectDoubleBlinded {
    /// Accepts a chunk of our elements raised to the responder's key.
    pub fn handle<R: CryptoRng + RngCore>(
        mut self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let Message::DoubleBlinded(points) = message else {
            return Err(Error::UnexpectedMessage {
                expected: "DoubleBlinded",
                received: message.kind(),
            });
        };
        let first = self.counter.accept_chunk(points.len(), points.len())?;
        // Matching compares encodings, but every element must still be a
        // canonical encoding of a point.
        decode_all(&points, first)?;
        self.matching.own_elements.extend(points);
        if self.counter.is_complete() {
            return self.matching.expect_rows(rng);
        }
        continue_with(RequesterState::ExpectDoubleBlinded(self), Vec::new())
    }
}

impl Matching {
    /// Moves on to the rows, or straight to the sums when there are none.
    fn expect_rows<R: CryptoRng + RngCore>(self, rng: &mut R) -> Result<RequesterStep, Error> {
        if self.peer_set_size == 0 {
            return Ok(self.send_sums(rng));
        }
        let counter = Counter::new(self.peer_set_size);
        let next = ExpectResponderRows {
            matching: self,
            counter,
        };
        continue_with(RequesterState::ExpectResponderRows(next), Vec::new())
    }

    /// Re-randomises each sum with a fresh encryption of 0, so the
    /// responder, which knows every row's randomness, cannot tell which
    /// rows went into it; sends them.
    fn send_sums<R: CryptoRng + RngCore>(mut self, rng: &mut R) -> RequesterStep {
        for sum in &mut self.sums {
            sum.add(&self.encryptor.zero(rng));
        }
        let encoded = self.sums.iter().map(Ciphertext::encode).collect();
        let next = ExpectPartialDecryptions {
            session: self.session,
            secret: self.secret,
            sums: self.sums,
            peer_set_size: self.peer_set_size,
            matched: self.matched,
        };
        // The blinding key and our elements are dropped here.
        Step {
            next: Progress::Continue(RequesterState::ExpectPartialDecryptions(next)),
            send: vec![Message::SumCiphertexts(encoded)],
        }
    }

    /// Matches a chunk of rows (starting at row `first`) against our
    /// elements and adds the matched rows' ciphertexts into the sums.
    fn add_rows(&mut self, rows: &[EncryptedRow], first: u64) -> Result<(), Error> {
        let slots = self.session.layout.slots();
        let points_per_row = 1 + 2 * slots as u64;
        let mut ids = Vec::with_capacity(rows.len());
        for (row, index) in rows.iter().zip(first..) {
            ids.push(decode_point(&row.blinded_id, index * points_per_row)?);
        }
        let rows_ciphertexts: Vec<Vec<Ciphertext>> = rows
            .iter()
            .zip(first..)
            .map(|(row, index)| decode_ciphertexts(&row.ciphertexts, index * points_per_row + 1))
            .collect::<Result<_, _>>()?;
        let double_blinded = self.key.blind_batch(&ids);
        for (element, ciphertexts) in double_blinded.iter().zip(&rows_ciphertexts) {
            if self.own_elements.contains(element) {
                self.matched += 1;
                for (sum, ciphertext) in self.sums.iter_mut().zip(ciphertexts) {
                    sum.add(ciphertext);
                }
            }
        }
        Ok(())
    }
}

impl ExpectResponderRows {
    /// Accepts a chunk of the responder's rows.
    pub fn handle<R: CryptoRng + RngCore>(
        mut self,
        message: Message,
        rng: &mut R,
    ) -> Result<RequesterStep, Error> {
        let Message::ResponderRows(rows) = message else {
            return Err(Error::UnexpectedMessage {
                expected: "ResponderRows",
                received: message.kind(),
            });
        };
        let slots = self.matching.session.layout.slots();
        if let Some(row) = rows.iter().find(|r| r.ciphertexts.len() != slots) {
            return Err(Error::WrongCiphertextCount {
                what: "ciphertexts in a row",
                expected: slots,
                found: row.ciphertexts.len(),
            });
        }
        let points = rows.len().saturating_mul(1 + 2 * slots);
        let first = self.counter.accept_chunk(rows.len(), points)?;
        self.matching.add_rows(&rows, first)?;
        if self.counter.is_complete() {
            return Ok(self.matching.send_sums(rng));
        }
        continue_with(RequesterState::ExpectResponderRows(self), Vec::new())
    }
}

impl ExpectPartialDecryptions {
    /// Finishes the decryption of each sum and solves it for the value.
    pub fn handle(self, message: Message, table: &DlogTable) -> Result<RequesterStep, Error> {
        let Message::PartialDecryptions(shares) = message else {
            return Err(Error::UnexpectedMessage {
                expected: "PartialDecryptions",
                received: message.kind(),
            });
        };
        if shares.len() != self.sums.len() {
            return Err(Error::WrongCiphertextCount {
                what: "decryption shares",
                expected: self.sums.len(),
                found: shares.len(),
            });
        }
        let shares = decode_all(&shares, 0)?;
        // m·G = C2 − x1·C1 − (x2·C1 − offset·G), for m the slot sum plus
        // its offset.
        let plaintexts: Vec<RistrettoPoint> = self
            .sums
            .iter()
            .zip(&shares)
            .map(|(sum, share)| sum.c2 - self.secret.partial(&sum.c1) - share)
            .collect();
        let categories = self.solve(&plaintexts, table)?;
        Ok(Step {
            next: Progress::Done(IsumOutput {
                peer_set_size: self.peer_set_size,
                cardinality: self.matched,
                categories,
            }),
            send: Vec::new(),
        })
    }

    /// Solves the counts first (each at most the cardinality plus the
    /// largest offset), then each limb, whose sum is at most its
    /// category's count times `2^16 − 1`, plus the largest offset.
    fn solve(
        &self,
        plaintexts: &[RistrettoPoint],
        table: &DlogTable,
    ) -> Result<Vec<CategorySum>, Error> {
        let layout = self.session.layout;
        let per_category = layout.slots_per_category();
        let offset = self.session.max_limb_offset;
        let counts: Vec<u64> = if layout.has_count_slot() {
            let count_slots: Vec<(RistrettoPoint, u64)> = plaintexts
                .iter()
                .step_by(per_category)
                .map(|&p| (p, self.matched + offset))
                .collect();
            solve_all(&count_slots, table)?
        } else {
            vec![self.matched]
        };
        let first_limb = usize::from(layout.has_count_slot());
        let limb_max = (1u64 << LIMB_BITS) - 1;
        let limb_slots: Vec<(RistrettoPoint, u64)> = plaintexts
            .chunks(per_category)
            .zip(&counts)
            .flat_map(|(slots, &count)| {
                let bound = count.saturating_mul(limb_max).saturating_add(offset);
                slots[first_limb..].iter().map(move |&p| (p, bound))
            })
            .collect();
        let limbs = solve_all(&limb_slots, table)?;
        Ok(counts
            .iter()
            .zip(limbs.chunks(usize::from(layout.value_limbs)))
            .map(|(&count, limbs)| CategorySum {
                count,
                sum: limbs
                    .iter()
                    .zip(0u32..)
                    .map(|(&limb, k)| u128::from(limb) << (LIMB_BITS * k))
                    .sum(),
            })
            .collect())
    }
}

/// Solves each slot's point under its bound, slots in parallel.
fn solve_all(slots: &[(RistrettoPoint, u64)], table: &DlogTable) -> Result<Vec<u64>, Error> {
    map_chunks(slots, 1, |slot| table.solve(&slot[0].0, slot[0].1))
        .into_iter()
        .collect()
}

// The states hold secret keys and our elements: their Debug says where
// the run is and nothing more.
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
    ExpectResponderHello,
    ExpectDoubleBlinded,
    ExpectResponderRows,
    ExpectPartialDecryptions
);
