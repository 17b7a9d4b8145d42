//! Distributed noise: each party adds its own noise to what it shares, so
//! the opened total is noisy and no party, recipient included, ever sees it
//! without noise.
//!
//! **Construction.** Every party adds an independent draw of the discrete
//! Laplace distribution with parameter `epsilon / sensitivity` (sampled
//! exactly, [`crate::dp::discrete_laplace`]) to each statistic it shares.
//! The total then carries `n` such draws. Any one honest party's draw alone
//! makes the total `epsilon`-differentially private with respect to a change
//! of one record by at most `sensitivity`, and a coalition of the other
//! `n - 1` parties (recipients included) knows at most its own draws, so the
//! guarantee holds against any such coalition.
//!
//! The price is accuracy: the total's noise has `n` times the variance of
//! one draw. The alternative that adds up to exactly one discrete Laplace
//! draw, each party adding the difference of two Pólya(1/n, α) variables
//! (Goryczka, Xiong and Sunderam, "Secure Multiparty Aggregation with
//! Differential Privacy: A Comparative Study", EDBT/ICDT workshops 2013),
//! gives `n` times less variance but protects only against coalitions that
//! do not remove their own shares, and its Pólya draws need a real-valued
//! Gamma sampler, which floating point makes unsafe (Mironov 2012). Unseen
//! takes the exact sampler and the coalition-proof guarantee; the accuracy
//! cost is written in the results (`noise_draws`).

use rand_core::{CryptoRng, RngCore};

use crate::dp::{DpError, Epsilon, discrete_laplace};

/// One party's noise for one statistic, in the statistic's units:
/// discrete Laplace with parameter `epsilon / sensitivity`, where
/// `sensitivity` is the most one record can change the statistic.
pub fn noise_share<G: CryptoRng + RngCore>(
    epsilon: Epsilon,
    sensitivity: u64,
    rng: &mut G,
) -> Result<i128, DpError> {
    let den = epsilon
        .den()
        .checked_mul(sensitivity.max(1))
        .ok_or(DpError::EpsilonOutOfRange {
            num: epsilon.num(),
            den: epsilon.den(),
        })?;
    let scaled = Epsilon::new(epsilon.num(), den)?;
    Ok(i128::from(discrete_laplace(scaled, rng)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn noise_scales_with_the_sensitivity() {
        // E|Z| of discrete Laplace with parameter t is about 1/t for small t:
        // ten times the sensitivity gives about ten times the spread.
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let epsilon = Epsilon::new(1, 1).expect("epsilon");
        let mean_abs = |sensitivity: u64, rng: &mut ChaCha20Rng| {
            let draws = 20_000;
            let total: i128 = (0..draws)
                .map(|_| noise_share(epsilon, sensitivity, rng).expect("draw").abs())
                .sum();
            total as f64 / f64::from(draws)
        };
        let one = mean_abs(10, &mut rng);
        let ten = mean_abs(100, &mut rng);
        assert!((8.0..12.0).contains(&one), "{one}");
        assert!((80.0..120.0).contains(&ten), "{ten}");
    }

    #[test]
    fn a_sensitivity_past_the_range_is_an_error_not_a_wrap() {
        let epsilon = Epsilon::new(1, u64::MAX / 2).expect("epsilon");
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        assert!(noise_share(epsilon, 4, &mut rng).is_err());
    }
}
