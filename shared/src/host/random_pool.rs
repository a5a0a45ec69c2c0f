//! Random bytes drawn from the host a block at a time. Each `random_get` host call costs
//! several microseconds in Envoy however few bytes it returns (measured in
//! docs/benchmarks.md), and tracing needs 40 bytes per request. The bytes are still the
//! host's CSPRNG output, only fetched in bulk; each is handed out once.

const BLOCK: usize = 4096;

pub struct RandomPool {
    block: [u8; BLOCK],
    used: usize,
}

impl Default for RandomPool {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomPool {
    pub const fn new() -> Self {
        Self {
            block: [0; BLOCK],
            used: BLOCK,
        }
    }

    /// Fills `buf`, calling `source` to refill the whole block when it runs out.
    pub fn fill(&mut self, buf: &mut [u8], mut source: impl FnMut(&mut [u8])) {
        for chunk in buf.chunks_mut(BLOCK) {
            if self.used + chunk.len() > BLOCK {
                source(&mut self.block);
                self.used = 0;
            }
            let end = self.used + chunk.len();
            if let Some(src) = self.block.get_mut(self.used..end) {
                chunk.copy_from_slice(src);
                // Never hand out the same bytes twice.
                src.fill(0);
            }
            self.used = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that writes a counter, so every byte position is distinguishable.
    fn counting() -> impl FnMut(&mut [u8]) {
        let mut n: u32 = 0;
        move |block| {
            for chunk in block.chunks_mut(4) {
                n += 1;
                chunk.copy_from_slice(&n.to_le_bytes()[..chunk.len()]);
            }
        }
    }

    #[test]
    fn one_source_call_serves_many_small_draws() {
        let mut pool = RandomPool::new();
        let mut calls = 0;
        let mut source = counting();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..102 {
            let mut ids = [0u8; 40];
            pool.fill(&mut ids, |b| {
                calls += 1;
                source(b)
            });
            assert!(seen.insert(ids), "a draw repeated");
        }
        assert_eq!(calls, 1, "102 draws of 40 bytes fit one 4 KiB block");
        let mut ids = [0u8; 40];
        pool.fill(&mut ids, |b| {
            calls += 1;
            source(b)
        });
        assert_eq!(calls, 2);
        assert!(seen.insert(ids));
    }

    #[test]
    fn draws_larger_than_a_block_are_filled_whole() {
        let mut pool = RandomPool::new();
        let mut big = vec![0u8; 10_000];
        pool.fill(&mut big, counting());
        assert!(big.chunks(4).all(|c| c.iter().any(|b| *b != 0)));
    }
}
