use super::*;

const SEC: u64 = 1_000_000_000;

fn limit(capacity: u64, refill: u64, period_ns: u64) -> Limit {
    Limit::new(capacity, refill, period_ns).unwrap()
}

fn take(limit: &Limit, state: SlotState, now: u64, cost: u64) -> (bool, SlotState) {
    let mut s = limit.refill(state, now);
    if s.tokens >= cost {
        s.tokens -= cost;
        (true, s)
    } else {
        (false, s)
    }
}

#[test]
fn zero_values_are_not_a_limit() {
    assert!(Limit::new(0, 1, 1).is_none());
    assert!(Limit::new(1, 0, 1).is_none());
    assert!(Limit::new(1, 1, 0).is_none());
}

#[test]
fn refill_credits_whole_tokens_at_exact_boundaries() {
    // 10 tokens per second: one token every 100 ms.
    let l = limit(10, 10, SEC);
    let empty = SlotState {
        owner: 0,
        tokens: 0,
        stamp_ns: 1_000 * SEC,
    };
    let cases = [
        ("no time", 0, 0),
        ("one ns short of a token", 100_000_000 - 1, 0),
        ("exactly one token", 100_000_000, 1),
        ("just past three", 300_000_001, 3),
        ("exactly full", SEC, 10),
        ("long idle caps at capacity", 3600 * SEC, 10),
    ];
    for (name, elapsed, tokens) in cases {
        let s = l.refill(empty, empty.stamp_ns + elapsed);
        assert_eq!(s.tokens, tokens, "{name}");
    }
}

#[test]
fn fractional_credit_is_kept_not_lost_or_invented() {
    // 4 tokens per second, refilled every 300 ms for 12 s: the 0.2 tokens left over at each
    // step add up, giving exactly 4 × 12 = 48.
    let l = limit(100, 4, SEC);
    let mut s = SlotState {
        owner: 0,
        tokens: 0,
        stamp_ns: 0,
    };
    for step in 1..=40u64 {
        s = l.refill(s, step * 300_000_000);
    }
    assert_eq!(s.tokens, 48);
}

#[test]
fn a_period_not_divisible_by_refill_rounds_in_the_buckets_favour() {
    // 3 tokens per second: each token costs 333 333 333.3 ns, charged as 333 333 334 ns.
    let l = limit(100, 3, SEC);
    let mut s = SlotState {
        owner: 0,
        tokens: 0,
        stamp_ns: 0,
    };
    for step in 1..=40u64 {
        s = l.refill(s, step * 250_000_000);
        // Never more than the exact rate allows, and the stamp never passes the clock.
        assert!(u128::from(s.tokens) <= u128::from(step) * 250_000_000 * 3 / u128::from(SEC));
        assert!(s.stamp_ns <= step * 250_000_000);
    }
    assert_eq!(
        s.tokens, 29,
        "30 after 10 s exactly, minus the 30 ns rounding"
    );
    assert_eq!(l.refill(s, 10 * SEC + 30).tokens, 30);
}

#[test]
fn cost_above_one_needs_that_many_tokens() {
    let l = limit(5, 1, SEC);
    let s = l.fresh(0);
    let (ok, s) = take(&l, s, 0, 3);
    assert!(ok);
    assert_eq!(s.tokens, 2);
    let (ok, s) = take(&l, s, 0, 3);
    assert!(!ok, "two tokens are not enough for cost 3");
    assert_eq!(l.wait_ns(&s, 0, 3), SEC);
    let (ok, s) = take(&l, s, SEC, 3);
    assert!(ok);
    assert_eq!(s.tokens, 0);
}

#[test]
fn clock_going_backwards_credits_nothing() {
    let l = limit(10, 10, SEC);
    let s = SlotState {
        owner: 0,
        tokens: 2,
        stamp_ns: 100 * SEC,
    };
    let back = l.refill(s, 99 * SEC);
    assert_eq!(back, s, "a small step back changes nothing");
    // Back at the stamp and 100 ms later: only the time after the stamp counts.
    assert_eq!(l.refill(back, 100 * SEC).tokens, 2);
    assert_eq!(l.refill(back, 100 * SEC + 100_000_000).tokens, 3);
}

#[test]
fn a_large_clock_step_back_rebases_without_credit() {
    let l = limit(10, 10, SEC);
    let s = SlotState {
        owner: 0,
        tokens: 2,
        stamp_ns: 1_000 * SEC,
    };
    let now = 1_000 * SEC - CLOCK_STEP_BACK_RESET_NS - 1;
    let rebased = l.refill(s, now);
    assert_eq!(rebased.tokens, 2);
    assert_eq!(rebased.stamp_ns, now);
    assert_eq!(l.refill(rebased, now + 100_000_000).tokens, 3);
}

#[test]
fn wait_is_time_until_enough_tokens() {
    let l = limit(10, 10, SEC);
    let s = SlotState {
        owner: 0,
        tokens: 0,
        stamp_ns: 0,
    };
    assert_eq!(l.wait_ns(&s, 0, 1), 100_000_000);
    assert_eq!(l.wait_ns(&s, 40_000_000, 1), 60_000_000);
    assert_eq!(l.wait_ns(&s, 0, 10), SEC);
    assert_eq!(l.wait_ns(&s, 0, 11), u64::MAX);
    // After waiting that long, refill really has the tokens.
    let w = l.wait_ns(&s, 12_345, 7);
    assert!(l.refill(s, 12_345 + w).tokens >= 7);
    assert!(l.refill(s, 12_345 + w - 1).tokens < 7);
}

#[test]
fn huge_limits_do_not_overflow() {
    let year = 365 * 24 * 3600 * SEC;
    let l = limit(1_000_000_000_000, 7, year);
    let s = SlotState {
        owner: 0,
        tokens: 0,
        stamp_ns: 0,
    };
    assert_eq!(l.refill(s, year).tokens, 7);
    assert_eq!(l.full_after_ns(), u64::MAX);
}

#[test]
fn slot_round_trips_and_rejects_other_lengths() {
    let s = SlotState {
        owner: 0xDEAD_BEEF,
        tokens: 42,
        stamp_ns: u64::MAX - 1,
    };
    assert_eq!(SlotState::decode(&s.encode()), Some(s));
    assert_eq!(SlotState::decode(&[0u8; 23]), None);
    assert_eq!(SlotState::decode(b""), None);
}

#[test]
fn never_admits_more_than_capacity_plus_refill_over_any_window() {
    // Irregular arrivals with cost 1 and 2; check every window [i, j] of arrival times.
    let l = limit(7, 3, 700_000_000);
    let mut s = l.fresh(0);
    let mut rng = 0x0123_4567_89AB_CDEF_u64;
    let mut t = 0u64;
    let mut log: Vec<(u64, u64)> = Vec::new(); // (time, tokens admitted)
    for _ in 0..3000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        t += rng % 90_000_000;
        let cost = 1 + rng % 2;
        let (ok, next) = take(&l, s, t, cost);
        s = next;
        if ok {
            log.push((t, cost));
        }
    }
    for i in 0..log.len() {
        let mut sum = 0u64;
        for j in i..log.len() {
            sum += log[j].1;
            let elapsed = u128::from(log[j].0 - log[i].0);
            let bound = 7 + (elapsed * 3 / 700_000_000) as u64;
            assert!(sum <= bound, "window {i}..{j}: {sum} > {bound}");
        }
    }
    // And it is not far below: the long-run admitted rate matches the refill rate.
    let total: u64 = log.iter().map(|e| e.1).sum();
    let ideal = 7 + u128::from(t) * 3 / 700_000_000;
    assert!(total as u128 + 3 >= ideal, "{total} vs {ideal}");
}
