//! Rate-limit response fields: draft-ietf-httpapi-ratelimit-headers (`RateLimit-Policy`,
//! `RateLimit`) and the common `X-RateLimit-*` trio, plus `Retry-After` on refusals.
//!
//! A token bucket maps onto a quota policy as: quota `q` = capacity, window `w` = seconds an
//! empty bucket takes to fill; `r` = tokens left, `t` = seconds until the next token is back.
//! draft-ietf-httpapi-ratelimit-headers-10 defines `t` as the time until "additional quota"
//! is made available (§4.1.2), not until all of it is, and wants `Retry-After` never earlier
//! than `t` (§6). Both are read off [`seconds_until`]: a refused bucket holds fewer tokens than
//! the request's cost, so the wait for its next one (`t`) never exceeds the wait for `cost`
//! (`Retry-After`).

use crate::bucket::{Limit, SlotState};
use crate::config::HeaderStyle;
use std::fmt::Write;

/// One enforcing rule's view of the request, for the response fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota<'a> {
    pub name: &'a str,
    pub capacity: u64,
    pub window_s: u64,
    pub remaining: u64,
    pub reset_s: u64,
}

/// Whole seconds, rounded up (a client waiting the rounded-down value would be refused).
pub fn ceil_seconds(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

/// Whole seconds until a bucket in `state` holds `tokens`: the one clock behind both `t` and
/// `Retry-After`, so they round alike.
pub fn seconds_until(limit: &Limit, state: &SlotState, now_ns: u64, tokens: u64) -> u64 {
    ceil_seconds(limit.wait_ns(state, now_ns, tokens))
}

/// A bucket's `t`: seconds until it holds one token more than it does. A full bucket has none
/// coming, hence 0.
pub fn bucket_reset_s(limit: &Limit, state: &SlotState, now_ns: u64) -> u64 {
    if state.tokens >= limit.capacity() {
        return 0;
    }
    seconds_until(limit, state, now_ns, state.tokens.saturating_add(1))
}

/// A refusal's `Retry-After`: the longest of the refusing rules' waits, at least 1 s (a 0
/// would invite an immediate retry).
pub fn retry_after_s(waits_s: impl IntoIterator<Item = u64>) -> u64 {
    waits_s.into_iter().fold(1, u64::max)
}

/// The response fields for `quotas` (on a refusal only the refusing rules'). `headline` picks the
/// rule the single-valued `X-RateLimit-*` fields describe.
pub fn fields(
    style: HeaderStyle,
    quotas: &[Quota<'_>],
    headline: usize,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if quotas.is_empty() {
        return out;
    }
    if matches!(style, HeaderStyle::Ietf | HeaderStyle::Both) {
        let mut policy = String::with_capacity(32 * quotas.len());
        let mut state = String::with_capacity(32 * quotas.len());
        for (i, q) in quotas.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(
                policy,
                "{sep}\"{}\";q={};w={}",
                q.name, q.capacity, q.window_s
            );
            let _ = write!(
                state,
                "{sep}\"{}\";r={};t={}",
                q.name, q.remaining, q.reset_s
            );
        }
        out.push(("ratelimit-policy", policy));
        out.push(("ratelimit", state));
    }
    if matches!(style, HeaderStyle::XRatelimit | HeaderStyle::Both) {
        if let Some(q) = quotas.get(headline).or(quotas.first()) {
            out.push(("x-ratelimit-limit", q.capacity.to_string()));
            out.push(("x-ratelimit-remaining", q.remaining.to_string()));
            out.push(("x-ratelimit-reset", q.reset_s.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(name: &str, remaining: u64) -> Quota<'_> {
        Quota {
            name,
            capacity: 100,
            window_s: 60,
            remaining,
            reset_s: 3,
        }
    }

    #[test]
    fn ietf_lists_every_rule_and_x_ratelimit_the_headline() {
        let quotas = [quota("per-client", 0), quota("global", 42)];
        let got = fields(HeaderStyle::Both, &quotas, 0);
        assert_eq!(
            got,
            vec![
                (
                    "ratelimit-policy",
                    "\"per-client\";q=100;w=60, \"global\";q=100;w=60".to_string()
                ),
                (
                    "ratelimit",
                    "\"per-client\";r=0;t=3, \"global\";r=42;t=3".to_string()
                ),
                ("x-ratelimit-limit", "100".to_string()),
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", "3".to_string()),
            ]
        );
    }

    #[test]
    fn styles_select_fields() {
        let quotas = [quota("a", 1)];
        let names = |style| -> Vec<&str> {
            fields(style, &quotas, 0)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(names(HeaderStyle::Ietf), ["ratelimit-policy", "ratelimit"]);
        assert_eq!(
            names(HeaderStyle::XRatelimit),
            [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset"
            ]
        );
        assert!(names(HeaderStyle::None).is_empty());
    }

    /// 5 per minute: one token every 12 s.
    fn five_per_minute() -> Limit {
        Limit::new(5, 5, 60_000_000_000).unwrap()
    }

    fn bucket(tokens: u64, stamp_ns: u64) -> SlotState {
        SlotState {
            owner: 0,
            tokens,
            stamp_ns,
        }
    }

    #[test]
    fn t_counts_to_the_next_token_not_to_a_full_bucket() {
        let limit = five_per_minute();
        let s = 1_000_000_000;
        assert_eq!(bucket_reset_s(&limit, &bucket(0, 0), 0), 12);
        assert_eq!(bucket_reset_s(&limit, &bucket(3, 0), 5 * s), 7);
        // Less than a second to go still reads 1: a client waiting 0 would be refused.
        assert_eq!(bucket_reset_s(&limit, &bucket(0, 0), 11 * s + 1), 1);
        assert_eq!(bucket_reset_s(&limit, &bucket(5, 0), 0), 0);
    }

    #[test]
    fn a_refused_buckets_t_never_passes_its_retry_after() {
        let limit = Limit::new(6, 6, 60_000_000_000).unwrap();
        for tokens in 0..6 {
            for now_ms in [0, 3_000, 9_999, 10_000, 59_001] {
                let now = now_ms * 1_000_000;
                let state = limit.refill(bucket(tokens, 0), now);
                for cost in state.tokens + 1..=6 {
                    let wait = seconds_until(&limit, &state, now, cost);
                    let t = bucket_reset_s(&limit, &state, now);
                    assert!(t <= retry_after_s([wait]), "{tokens} {now_ms} {cost}");
                    if cost == state.tokens + 1 {
                        assert_eq!(t, retry_after_s([wait]));
                    }
                }
            }
        }
    }

    #[test]
    fn retry_after_is_the_longest_wait_and_at_least_one_second() {
        assert_eq!(retry_after_s([]), 1);
        assert_eq!(retry_after_s([0]), 1);
        assert_eq!(retry_after_s([12, 40, 7]), 40);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_seconds(0), 0);
        assert_eq!(ceil_seconds(1), 1);
        assert_eq!(ceil_seconds(1_000_000_000), 1);
        assert_eq!(ceil_seconds(1_000_000_001), 2);
    }
}
