//! Opening shared values to the job's recipients.
//!
//! ```text
//! every party:     ──► Opening{its shares} to each recipient other than itself
//! each recipient:  adds the n shares of each value: the values
//! ```
//!
//! One round. [`crate::sharing::SecureSum`] would open them too, but it
//! first re-shares every input (a round and `(n − 1)·L` elements per party
//! more), which values that are already shared do not need. A recipient
//! sees every party's share of the opened values; they are uniform subject
//! to adding up to the values, so they say nothing more.

use zeroize::Zeroizing;

use super::messages::BeaverMessage;
use super::multiply::{add_into, check_sender};
use crate::sharing::{Addressed, PartyIndex, Ring, Roster, SumOutput};
use crate::{Error, Progress, Step};

/// The result of a step of an opening: the values at a recipient, nothing
/// elsewhere.
pub type OpenStep<R> = Step<ExpectOpenings<R>, SumOutput<R>, Addressed<BeaverMessage<R>>>;

/// Starts an opening.
pub struct Open;

impl Open {
    /// Sends this party's `shares` to every recipient but itself. A party
    /// that is not a recipient is done at once.
    pub fn start<R: Ring>(roster: Roster, shares: Zeroizing<Vec<R>>) -> OpenStep<R> {
        let me = roster.me();
        let send = roster
            .recipients()
            .filter(|&r| r != me)
            .map(|to| Addressed {
                to,
                message: BeaverMessage::Opening(shares.to_vec()),
            })
            .collect();
        if !roster.is_recipient(me) {
            return Step {
                next: Progress::Done(SumOutput::NotARecipient),
                send,
            };
        }
        let mut heard = vec![false; roster.parties()];
        heard[me.0] = true;
        let state = ExpectOpenings {
            roster,
            values: shares,
            heard,
        };
        Step {
            next: state.progress(),
            send,
        }
    }
}

/// A recipient waiting for the other parties' shares.
pub struct ExpectOpenings<R: Ring> {
    roster: Roster,
    /// The running sums of the shares received so far.
    values: Zeroizing<Vec<R>>,
    heard: Vec<bool>,
}

impl<R: Ring> std::fmt::Debug for ExpectOpenings<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpectOpenings")
            .field("me", &self.roster.me())
            .field("parties", &self.roster.parties())
            .field("values", &self.values.len())
            .field("shares", &"<redacted>")
            .finish()
    }
}

impl<R: Ring> ExpectOpenings<R> {
    /// Takes one message from party `from`.
    pub fn handle(
        mut self,
        from: PartyIndex,
        message: BeaverMessage<R>,
    ) -> Result<OpenStep<R>, Error> {
        let shares = checked_opening(&self.roster, self.values.len(), from, message)?;
        if std::mem::replace(&mut self.heard[from.0], true) {
            return Err(Error::WrongParty {
                from: from.0,
                problem: "it sent its shares of the opened values twice",
            });
        }
        add_into(&mut self.values, &shares);
        Ok(Step {
            next: self.progress(),
            send: Vec::new(),
        })
    }

    fn progress(self) -> Progress<Self, SumOutput<R>> {
        if self.heard.iter().all(|&h| h) {
            Progress::Done(SumOutput::Totals(self.values.to_vec()))
        } else {
            Progress::Continue(self)
        }
    }
}

/// The shares in an `Opening` from `from`, once the sender, this party's
/// role and the length are checked.
pub(super) fn checked_opening<R: Ring>(
    roster: &Roster,
    values: usize,
    from: PartyIndex,
    message: BeaverMessage<R>,
) -> Result<Zeroizing<Vec<R>>, Error> {
    check_sender(roster, from)?;
    let shares = match message {
        BeaverMessage::Opening(shares) => Zeroizing::new(shares),
        other => {
            return Err(Error::UnexpectedMessage {
                expected: "Opening",
                received: other.kind(),
            });
        }
    };
    if !roster.is_recipient(roster.me()) {
        return Err(Error::WrongParty {
            from: from.0,
            problem: "this party is not a recipient of the opened values",
        });
    }
    if shares.len() != values {
        return Err(Error::WrongShareCount {
            from: from.0,
            expected: values,
            found: shares.len(),
        });
    }
    Ok(shares)
}

/// Feeds openings that arrived before this party's own shares were known
/// (held by the caller, one per party at most) to its fresh opening.
pub(super) fn open_with_early<R: Ring>(
    mut step: OpenStep<R>,
    early: Vec<Option<Zeroizing<Vec<R>>>>,
) -> Result<OpenStep<R>, Error> {
    for (from, shares) in early.into_iter().enumerate() {
        let Some(shares) = shares else { continue };
        let Progress::Continue(open) = step.next else {
            // Only a recipient holds openings, and it is done only when it
            // has every party's; a held one means it is not done yet.
            return Err(Error::WrongParty {
                from,
                problem: "this party is not a recipient of the opened values",
            });
        };
        let more = open.handle(PartyIndex(from), BeaverMessage::Opening(shares.to_vec()))?;
        step = Step {
            next: more.next,
            send: step.send,
        };
    }
    Ok(step)
}
