//! Secure sum: `n` parties each hold a vector of `L` ring elements; the
//! job's recipients learn the element-wise totals and nobody learns anything
//! else.
//!
//! ```text
//! every party i:   split each input into n shares; send share j to party j
//!                  ──► InputShares{L shares} to each other party
//! every party j:   add the n shares it holds (its own and n-1 received):
//!                  its share of each total
//!                  ──► TotalShares{L shares} to each recipient
//! each recipient:  add the n shares of each total: the totals
//! ```
//!
//! Two rounds, `2·(n-1)·L` ring elements sent per party at most. Messages
//! from different parties may arrive in any order (a fast party's
//! `TotalShares` may come before a slow party's `InputShares`); each is
//! checked for its sender and length, and a second one from a sender aborts.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::ring::{Ring, split};
use super::{Addressed, PartyIndex, Roster};
use crate::{Error, Progress, Step};

/// A message of the secure sum.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "R: Ring")]
pub enum SumMessage<R: Ring> {
    /// The sender's shares of its own inputs, for the receiver.
    InputShares(#[serde(with = "super::ring::fixed_width")] Vec<R>),
    /// The sender's shares of the totals, for a recipient.
    TotalShares(#[serde(with = "super::ring::fixed_width")] Vec<R>),
}

impl<R: Ring> SumMessage<R> {
    fn name(&self) -> &'static str {
        match self {
            Self::InputShares(_) => "InputShares",
            Self::TotalShares(_) => "TotalShares",
        }
    }
}

// Shares are uniform on their own, but a share and the sender's identity
// together are half a secret: never print them.
impl<R: Ring> std::fmt::Debug for SumMessage<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (Self::InputShares(v) | Self::TotalShares(v)) = self;
        write!(f, "{}(<{} shares redacted>)", self.name(), v.len())
    }
}

/// The result of a step: the crate's [`Step`], with messages addressed to
/// a party. `Done` means this party's part is over (the totals if it is a
/// recipient); its last messages must still be sent.
pub type SumStep<R> = Step<ExpectShares<R>, SumOutput<R>, Addressed<SumMessage<R>>>;

fn step<R: Ring>(
    next: Progress<ExpectShares<R>, SumOutput<R>>,
    send: Vec<Addressed<SumMessage<R>>>,
) -> SumStep<R> {
    Step { next, send }
}

/// What a party ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumOutput<R: Ring> {
    /// A recipient: the totals, in input order.
    Totals(Vec<R>),
    /// Not a recipient: nothing.
    NotARecipient,
}

/// Starts a secure sum.
pub struct SecureSum;

impl SecureSum {
    /// Shares `inputs` among the roster's parties. Every party must call this
    /// with the same roster and the same number of inputs.
    pub fn start<R: Ring, G: CryptoRng + RngCore>(
        roster: Roster,
        inputs: &[R],
        rng: &mut G,
    ) -> SumStep<R> {
        let n = roster.parties();
        // shares_for[j] holds the shares destined for party j.
        let mut shares_for: Vec<Zeroizing<Vec<R>>> = (0..n)
            .map(|_| Zeroizing::new(Vec::with_capacity(inputs.len())))
            .collect();
        for &input in inputs {
            let mut shares = split(input, n, rng);
            for (j, share) in shares.iter().enumerate() {
                shares_for[j].push(*share);
            }
            shares.zeroize();
        }
        let me = roster.me();
        let mut messages = Vec::with_capacity(n - 1);
        let mut own = Zeroizing::new(Vec::new());
        for (j, shares) in shares_for.into_iter().enumerate() {
            if j == me.0 {
                own = shares;
            } else {
                messages.push(Addressed {
                    to: PartyIndex(j),
                    message: SumMessage::InputShares(shares.to_vec()),
                });
            }
        }
        let state = ExpectShares {
            roster,
            values: inputs.len(),
            total_share: own,
            inputs_from: vec![false; n],
            totals: None,
            totals_from: vec![false; n],
            early_totals: Vec::new(),
        };
        state.after_progress(messages)
    }
}

/// Waiting for the other parties' shares (of inputs, and of totals if this
/// party is a recipient).
pub struct ExpectShares<R: Ring> {
    roster: Roster,
    values: usize,
    /// This party's share of each total, summed as input shares arrive.
    total_share: Zeroizing<Vec<R>>,
    inputs_from: Vec<bool>,
    /// A recipient's running totals, once its own share of them is known.
    totals: Option<Zeroizing<Vec<R>>>,
    totals_from: Vec<bool>,
    /// Shares of totals that came before this party could add its own.
    early_totals: Vec<Zeroizing<Vec<R>>>,
}

impl<R: Ring> std::fmt::Debug for ExpectShares<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectShares")
            .field("me", &self.roster.me())
            .field("parties", &self.roster.parties())
            .field("values", &self.values)
            .field("shares", &"<redacted>")
            .finish()
    }
}

impl<R: Ring> ExpectShares<R> {
    /// Takes one message from party `from`.
    pub fn handle(mut self, from: PartyIndex, message: SumMessage<R>) -> Result<SumStep<R>, Error> {
        let me = self.roster.me();
        let wrong = |problem| Error::WrongParty {
            from: from.0,
            problem,
        };
        if from.0 >= self.roster.parties() {
            return Err(wrong("it is not a party to this job"));
        }
        if from == me {
            return Err(wrong("it is this party itself"));
        }
        let (of_inputs, shares) = match message {
            SumMessage::InputShares(shares) => (true, Zeroizing::new(shares)),
            SumMessage::TotalShares(shares) => (false, Zeroizing::new(shares)),
        };
        if shares.len() != self.values {
            return Err(Error::WrongShareCount {
                from: from.0,
                expected: self.values,
                found: shares.len(),
            });
        }
        if of_inputs {
            if std::mem::replace(&mut self.inputs_from[from.0], true) {
                return Err(wrong("it sent its input shares twice"));
            }
            add_into(&mut self.total_share, &shares);
        } else {
            {
                if !self.roster.is_recipient(me) {
                    return Err(wrong("this party is not a recipient of the totals"));
                }
                if std::mem::replace(&mut self.totals_from[from.0], true) {
                    return Err(wrong("it sent its shares of the totals twice"));
                }
                match &mut self.totals {
                    Some(totals) => add_into(totals, &shares),
                    None => self.early_totals.push(shares),
                }
            }
        }
        Ok(self.after_progress(Vec::new()))
    }

    fn inputs_complete(&self) -> bool {
        let me = self.roster.me().0;
        self.inputs_from
            .iter()
            .enumerate()
            .all(|(j, &seen)| seen || j == me)
    }

    /// Moves on as far as the shares held allow.
    fn after_progress(mut self, mut messages: Vec<Addressed<SumMessage<R>>>) -> SumStep<R> {
        let me = self.roster.me();
        if self.totals.is_none() && self.inputs_complete() {
            // This party's share of each total is final: send it on.
            for recipient in self.roster.recipients() {
                if recipient != me {
                    messages.push(Addressed {
                        to: recipient,
                        message: SumMessage::TotalShares(self.total_share.to_vec()),
                    });
                }
            }
            if !self.roster.is_recipient(me) {
                return step(Progress::Done(SumOutput::NotARecipient), messages);
            }
            let mut totals = Zeroizing::new(self.total_share.to_vec());
            for early in self.early_totals.drain(..) {
                add_into(&mut totals, &early);
            }
            self.totals = Some(totals);
        }
        let all_totals = self
            .totals_from
            .iter()
            .enumerate()
            .all(|(j, &seen)| seen || j == me.0);
        match self.totals.take() {
            Some(totals) if all_totals => {
                step(Progress::Done(SumOutput::Totals(totals.to_vec())), messages)
            }
            totals => {
                self.totals = totals;
                step(Progress::Continue(self), messages)
            }
        }
    }
}

fn add_into<R: Ring>(sum: &mut [R], shares: &[R]) {
    for (s, &x) in sum.iter_mut().zip(shares) {
        *s = s.add(x);
    }
}
