//! Head sampling for traces the gateway starts (or that arrive without a decision), derived
//! from the trace id alone so that every gateway, on every worker, decides the same way.

use crate::context::TraceId;

/// The low 56 bits of a trace id are its random part (W3C Level 2's "random" flag promise;
/// also true of ids this gateway makes), so they are compared to `ratio · 2^56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// Sampled when the low 56 bits are below this; `2^56` samples everything.
    threshold: u64,
}

const RANGE: u64 = 1 << 56;

impl Sampler {
    /// `ratio` must be in `[0, 1]` (the config compile step checks it); values outside are
    /// clamped.
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        // Rounds down; the error is below 2^-52 of the ratio.
        let threshold = (ratio * RANGE as f64) as u64;
        Self {
            threshold: threshold.min(RANGE),
        }
    }

    pub fn sampled(&self, trace_id: &TraceId) -> bool {
        let (_, low) = trace_id.split_at(8);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(low);
        (u64::from_be_bytes(bytes) & (RANGE - 1)) < self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> impl Iterator<Item = TraceId> {
        // A splitmix64 sequence: ids spread like real random ones.
        let mut state = 0x0123_4567_89ab_cdefu64;
        (0..n).map(move |_| {
            let mut id = [0u8; 16];
            for half in id.chunks_mut(8) {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                half.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
            }
            id
        })
    }

    #[test]
    fn ratio_holds_over_many_ids() {
        for ratio in [0.01, 0.1, 0.25, 0.5, 0.9] {
            let sampler = Sampler::new(ratio);
            let n = 100_000;
            let hits = ids(n).filter(|id| sampler.sampled(id)).count();
            let observed = hits as f64 / n as f64;
            // Binomial standard deviation ≤ 0.0016 at n = 1e5; 5 sigma is 0.008.
            assert!(
                (observed - ratio).abs() < 0.008,
                "ratio {ratio}: observed {observed}"
            );
        }
    }

    #[test]
    fn zero_and_one_are_exact() {
        let never = Sampler::new(0.0);
        let always = Sampler::new(1.0);
        let max = [0xff; 16];
        assert!(always.sampled(&max));
        assert!(!never.sampled(&[0; 16]));
        assert!(ids(10_000).all(|id| always.sampled(&id) && !never.sampled(&id)));
    }

    #[test]
    fn decision_depends_only_on_the_trace_id() {
        let (a, b) = (Sampler::new(0.3), Sampler::new(0.3));
        assert!(ids(1_000).all(|id| a.sampled(&id) == b.sampled(&id)));
        // The high byte of the low half is not part of the random 56 bits.
        let mut id = [0u8; 16];
        id[15] = 1;
        let mut with_high = id;
        with_high[8] = 0xff;
        assert_eq!(a.sampled(&id), a.sampled(&with_high));
    }
}
