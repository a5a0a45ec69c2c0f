//! Rate-limit response fields: draft-ietf-httpapi-ratelimit-headers (`RateLimit-Policy`,
//! `RateLimit`) and the common `X-RateLimit-*` trio, plus `Retry-After` on refusals.
//!
//! A token bucket maps onto a quota policy as: quota `q` = capacity, window `w` = seconds an
//! empty bucket takes to fill; `r` = tokens left, `t` = seconds until the bucket is full again.

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

/// The response fields for `quotas` (all enforcing rules that applied). `headline` picks the
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

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_seconds(0), 0);
        assert_eq!(ceil_seconds(1), 1);
        assert_eq!(ceil_seconds(1_000_000_000), 1);
        assert_eq!(ceil_seconds(1_000_000_001), 2);
    }
}
