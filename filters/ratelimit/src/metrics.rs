//! The filter's metrics, defined once per configuration in the root context. Envoy adds up
//! what every worker reports under one name, so counters and gauges are per Envoy.

use crate::config::RatelimitConfig;
use wasmgate_shared::metrics::Metric;
use wasmgate_shared::Host;

pub const FILTER: &str = "ratelimit";

pub struct RuleMetrics {
    /// Requests the rule applied to that were let through.
    pub allowed: Metric,
    /// Requests the rule refused (enforcing rules only).
    pub limited: Metric,
    /// Requests a shadow rule would have refused.
    pub shadow_limited: Metric,
    /// Slots of the rule's table that some key has taken a token from (≤ budget + 1).
    pub keys_in_use: Metric,
    /// Takes from a slot last used by another key (the table is smaller than the key space).
    pub slot_collisions: Metric,
}

pub struct Metrics {
    pub rules: Vec<RuleMetrics>,
    /// Decisions redone because another worker wrote a bucket first.
    pub cas_retries: Metric,
    /// Requests refused because every retry hit a conflict.
    pub cas_exhausted: Metric,
}

impl Metrics {
    pub fn define(host: &(impl Host + ?Sized), config: &RatelimitConfig) -> Self {
        let rules = config
            .rules
            .iter()
            .map(|rule| {
                let name = |what: &str| format!("rule_{}_{what}", rule.name);
                RuleMetrics {
                    allowed: Metric::counter(host, FILTER, &name("allowed")),
                    limited: Metric::counter(host, FILTER, &name("limited")),
                    shadow_limited: Metric::counter(host, FILTER, &name("shadow_limited")),
                    keys_in_use: Metric::gauge(host, FILTER, &name("keys_in_use")),
                    slot_collisions: Metric::counter(host, FILTER, &name("slot_collisions")),
                }
            })
            .collect();
        Self {
            rules,
            cas_retries: Metric::counter(host, FILTER, "cas_retries"),
            cas_exhausted: Metric::counter(host, FILTER, "cas_exhausted"),
        }
    }
}
