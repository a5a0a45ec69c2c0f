//! The filter's metrics, defined once per configuration in the root context. Envoy adds up
//! what every worker reports under one name, so counters and gauges are per Envoy. Request-path
//! counters are batched: a request bumps a local count and the root context's tick
//! ([`Metrics::flush`], every second) hands the totals to the host, so they reach Envoy at most
//! about a second late and a request makes no metric host call. `keys_in_use` moves only when a
//! slot is first taken, so it stays a direct gauge.

use crate::config::RatelimitConfig;
use wasmgate_shared::metrics::{BatchedCounter, Metric};
use wasmgate_shared::Host;

pub const FILTER: &str = "ratelimit";

/// What every rule counts, each as `rule_<name>_<what>`.
const RULE_COUNTS: [&str; 5] = [
    "allowed",
    "limited",
    "shadow_limited",
    "keys_in_use",
    "slot_collisions",
];

/// A rule's metric names, which configuration checks against the other rules' names.
pub fn rule_metric_names(rule: &str) -> [String; 5] {
    RULE_COUNTS.map(|what| format!("rule_{rule}_{what}"))
}

pub struct RuleMetrics {
    /// Requests the rule applied to that were let through.
    pub allowed: BatchedCounter,
    /// Requests the rule refused (enforcing rules only).
    pub limited: BatchedCounter,
    /// Requests a shadow rule would have refused.
    pub shadow_limited: BatchedCounter,
    /// Slots of the rule's table that some key has taken a token from (≤ budget + 1).
    pub keys_in_use: Metric,
    /// Takes from a slot last used by another key (the table is smaller than the key space).
    pub slot_collisions: BatchedCounter,
}

pub struct Metrics {
    pub rules: Vec<RuleMetrics>,
    /// Decisions redone because another worker wrote a bucket first.
    pub cas_retries: BatchedCounter,
    /// Requests refused because every retry hit a conflict.
    pub cas_exhausted: BatchedCounter,
    /// Requests refused with 400 because their path has no canonical form.
    pub path_refused: BatchedCounter,
}

impl Metrics {
    pub fn define(host: &(impl Host + ?Sized), config: &RatelimitConfig) -> Self {
        let rules = config
            .rules
            .iter()
            .map(|rule| {
                let [allowed, limited, shadow_limited, keys_in_use, slot_collisions] =
                    rule_metric_names(&rule.name);
                RuleMetrics {
                    allowed: BatchedCounter::new(host, FILTER, &allowed),
                    limited: BatchedCounter::new(host, FILTER, &limited),
                    shadow_limited: BatchedCounter::new(host, FILTER, &shadow_limited),
                    keys_in_use: Metric::gauge(host, FILTER, &keys_in_use),
                    slot_collisions: BatchedCounter::new(host, FILTER, &slot_collisions),
                }
            })
            .collect();
        Self {
            rules,
            cas_retries: BatchedCounter::new(host, FILTER, "cas_retries"),
            cas_exhausted: BatchedCounter::new(host, FILTER, "cas_exhausted"),
            path_refused: BatchedCounter::new(host, FILTER, "path_refused"),
        }
    }

    /// Hands every pending count to the host.
    pub fn flush(&self, host: &(impl Host + ?Sized)) {
        let rules = self.rules.iter().flat_map(|m| {
            [
                &m.allowed,
                &m.limited,
                &m.shadow_limited,
                &m.slot_collisions,
            ]
        });
        for c in rules.chain([&self.cas_retries, &self.cas_exhausted, &self.path_refused]) {
            c.flush(host);
        }
    }
}
