//! Bounded waits for what Envoy reports a little later: counters the filters flush on a 1 s
//! tick, a fetch that completes. The bound only stops a broken test; it is not a timing claim.

use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(20);

/// Waits until `f` holds.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `value()` is `expected`, and says what it was if it never is.
pub fn wait_for(what: &str, expected: f64, value: impl Fn() -> f64) {
    let deadline = Instant::now() + BOUND;
    loop {
        let v = value();
        if v == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} is {v}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
