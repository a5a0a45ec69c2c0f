//! The token bucket: exact integer refill arithmetic and the fixed 24-byte slot encoding that
//! lives in one shared-data value per bucket. No host calls here: time comes in as nanoseconds.
//!
//! Refill is lazy and exact. `stamp_ns` is the instant up to which refill has been credited; a
//! refill credits `floor(elapsed × refill / period)` whole tokens and advances the stamp by the
//! time those tokens cost, rounded *up*, so fractional credit is never invented. Over any window
//! [a, b] the tokens handed out are therefore at most `capacity + floor(refill × (b − a) / period)`.

/// A clock step backwards larger than this re-bases the stamp (refill resumes from the new
/// time); smaller steps, such as two workers reading the clock a few microseconds apart,
/// credit nothing until the clock passes the stamp again.
pub const CLOCK_STEP_BACK_RESET_NS: u64 = 60 * 1_000_000_000;

/// Bytes of an encoded [`SlotState`].
pub const SLOT_BYTES: usize = 24;

/// A checked limit: `capacity` tokens at most, `refill` tokens added per `period_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    capacity: u64,
    refill: u64,
    period_ns: u64,
    /// Time for an empty bucket to become full (saturating): beyond it no arithmetic is needed.
    full_after_ns: u64,
}

/// One bucket as stored: who last used the slot, whole tokens, and the refill stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotState {
    /// Fingerprint of the key that last took a token here; 0 = never used.
    pub owner: u64,
    pub tokens: u64,
    pub stamp_ns: u64,
}

impl Limit {
    /// `None` if any value is 0 (the config compile step reports which).
    pub fn new(capacity: u64, refill: u64, period_ns: u64) -> Option<Self> {
        if capacity == 0 || refill == 0 || period_ns == 0 {
            return None;
        }
        let full_after_ns = ceil_div(u128::from(capacity) * u128::from(period_ns), refill);
        Some(Self {
            capacity,
            refill,
            period_ns,
            full_after_ns: u64::try_from(full_after_ns).unwrap_or(u64::MAX),
        })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn refill_amount(&self) -> u64 {
        self.refill
    }

    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// Nanoseconds an empty bucket needs to fill up.
    pub fn full_after_ns(&self) -> u64 {
        self.full_after_ns
    }

    /// A bucket nobody has used yet: full, stamped `now_ns`.
    pub fn fresh(&self, now_ns: u64) -> SlotState {
        SlotState {
            owner: 0,
            tokens: self.capacity,
            stamp_ns: now_ns,
        }
    }

    /// The state at `now_ns` after crediting refill since the stamp.
    pub fn refill(&self, state: SlotState, now_ns: u64) -> SlotState {
        let mut s = state;
        if s.tokens > self.capacity {
            // Only a value written under another configuration can hold more.
            s.tokens = self.capacity;
        }
        if now_ns <= s.stamp_ns {
            if s.stamp_ns - now_ns > CLOCK_STEP_BACK_RESET_NS {
                s.stamp_ns = now_ns;
            }
            return s;
        }
        let elapsed = now_ns - s.stamp_ns;
        if s.tokens == self.capacity || elapsed >= self.full_after_ns {
            s.tokens = self.capacity;
            s.stamp_ns = now_ns;
            return s;
        }
        let added = mul_div_floor(elapsed, self.refill, self.period_ns);
        if added == 0 {
            return s;
        }
        if added >= self.capacity - s.tokens {
            s.tokens = self.capacity;
            s.stamp_ns = now_ns;
        } else {
            s.tokens += added;
            // ceil(added × period / refill) ≤ elapsed, because added ≤ elapsed × refill / period.
            s.stamp_ns += mul_div_ceil(added, self.period_ns, self.refill);
        }
        s
    }

    /// Nanoseconds from `now_ns` until a refilled `state` holds at least `need` tokens
    /// (0 if it already does; `u64::MAX` if it never can).
    pub fn wait_ns(&self, state: &SlotState, now_ns: u64, need: u64) -> u64 {
        if state.tokens >= need {
            return 0;
        }
        if need > self.capacity {
            return u64::MAX;
        }
        let deficit = need - state.tokens;
        let ready_at = u128::from(state.stamp_ns)
            + ceil_div(
                u128::from(deficit) * u128::from(self.period_ns),
                self.refill,
            );
        u64::try_from(ready_at.saturating_sub(u128::from(now_ns))).unwrap_or(u64::MAX)
    }
}

impl SlotState {
    pub fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut out = [0u8; SLOT_BYTES];
        for (chunk, v) in out
            .chunks_exact_mut(8)
            .zip([self.owner, self.tokens, self.stamp_ns])
        {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// `None` for anything that is not exactly one encoded slot.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; SLOT_BYTES] = bytes.try_into().ok()?;
        let mut words = bytes
            .chunks_exact(8)
            .map(|c| c.try_into().map(u64::from_le_bytes).unwrap_or(0));
        Some(Self {
            owner: words.next()?,
            tokens: words.next()?,
            stamp_ns: words.next()?,
        })
    }
}

fn ceil_div(n: u128, d: u64) -> u128 {
    let d = u128::from(d.max(1));
    n / d + u128::from(!n.is_multiple_of(d))
}

/// `floor(a × b / d)`, in u64 when the product fits (the common case) and u128 otherwise.
fn mul_div_floor(a: u64, b: u64, d: u64) -> u64 {
    let d = d.max(1);
    match a.checked_mul(b) {
        Some(p) => p / d,
        None => u64::try_from(u128::from(a) * u128::from(b) / u128::from(d)).unwrap_or(u64::MAX),
    }
}

/// `ceil(a × b / d)`, saturating.
fn mul_div_ceil(a: u64, b: u64, d: u64) -> u64 {
    u64::try_from(ceil_div(u128::from(a) * u128::from(b), d)).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "bucket_tests.rs"]
mod tests;
