//! The requester's check of a noisy release's terms.

use unseen_protocol::dp;
use unseen_protocol::ecdh_psi::Padding;

use crate::jobs::JobError;
use crate::manifest::NoiseTerms;

/// The padding a noisy release's terms describe, checked: the offset and the
/// number of dummies must be exactly what the stated epsilon and delta give,
/// so a hostile responder can neither inflate the work we do nor skew the
/// estimate we print.
pub(crate) fn requester_padding(noise: &NoiseTerms) -> Result<Padding, JobError> {
    let bad = |why: String| {
        JobError::BadReleaseTerms(format!(
            "epsilon {} millionths, delta {} billionths, offset {}, {} dummies: {why}",
            noise.epsilon_micros, noise.delta_nanos, noise.offset, noise.total
        ))
    };
    let epsilon = dp::Epsilon::from_micros(noise.epsilon_micros).map_err(|e| bad(e.to_string()))?;
    let params = dp::ReleaseParams::new(epsilon, noise.delta_nanos, 1_000_000_000)
        .map_err(|e| bad(e.to_string()))?;
    if (params.count_offset, params.count_total) != (noise.offset, noise.total) {
        return Err(bad(format!(
            "do not match: those epsilon and delta give offset {} and {} dummies",
            params.count_offset, params.count_total
        )));
    }
    Ok(Padding::for_requester(&params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn honest(epsilon_micros: u64, delta_nanos: u64) -> NoiseTerms {
        let epsilon = dp::Epsilon::from_micros(epsilon_micros).expect("epsilon");
        let params = dp::ReleaseParams::new(epsilon, delta_nanos, 1_000_000_000).expect("params");
        NoiseTerms {
            epsilon_micros,
            delta_nanos,
            offset: params.count_offset,
            total: params.count_total,
        }
    }

    #[test]
    fn honest_terms_give_the_requester_padding() {
        let terms = honest(100_000, 1);
        assert_eq!(terms.offset, 429);
        assert_eq!(
            requester_padding(&terms).expect("usable"),
            Padding::Requester {
                offset: 429,
                total: terms.total
            }
        );
    }

    /// A hostile responder inflates the dummies we must read, or skews the
    /// offset we subtract, or states an epsilon no grant can have.
    #[test]
    fn terms_that_do_not_follow_from_epsilon_and_delta_are_refused() {
        let good = honest(100_000, 1);
        let forged = [
            NoiseTerms {
                total: u64::MAX,
                ..good
            },
            NoiseTerms {
                total: good.total + 2,
                ..good
            },
            NoiseTerms {
                offset: good.offset - 1,
                ..good
            },
            NoiseTerms {
                offset: good.total + 1,
                ..good
            },
            NoiseTerms {
                epsilon_micros: 0,
                ..good
            },
            NoiseTerms {
                delta_nanos: 0,
                ..good
            },
            NoiseTerms {
                delta_nanos: 1_000_000_000,
                ..good
            },
        ];
        for terms in forged {
            let err = requester_padding(&terms).expect_err("forged terms accepted");
            assert!(matches!(err, JobError::BadReleaseTerms(_)), "{err}");
        }
    }
}
