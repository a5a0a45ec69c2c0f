//! Every metric the filter moves, defined once in the root context (names are
//! `wasmgate_authn_<name>`; rule and provider names come from the configuration). Request-path
//! counters are batched and reach the host on [`AuthnMetrics::flush`] (every tick): on a cache
//! hit, a host call per increment would cost more than the rest of the filter's work.

use crate::config::AuthnConfig;
use crate::denial::Denial;
use wasmgate_shared::metrics::{BatchedCounter, Metric};
use wasmgate_shared::Host;

pub const FILTER: &str = "authn";

pub struct ProviderMetrics {
    pub allowed: BatchedCounter,
    pub denied: BatchedCounter,
    pub jwks_fetch_success: Metric,
    pub jwks_fetch_failure: Metric,
    pub keys_loaded: Metric,
}

pub struct RuleMetrics {
    pub allowed: BatchedCounter,
    pub denied: BatchedCounter,
}

pub struct AuthnMetrics {
    pub allowed: BatchedCounter,
    /// Indexed like [`Denial::ALL`].
    pub denied: Vec<BatchedCounter>,
    /// Requests refused with 400 because their path has no canonical form.
    pub path_refused: BatchedCounter,
    pub cache_hits: BatchedCounter,
    pub cache_misses: BatchedCounter,
    pub api_key_allowed: BatchedCounter,
    pub api_key_denied: BatchedCounter,
    pub providers: Vec<ProviderMetrics>,
    /// Indexed like `config.rules`, then the default rule last.
    pub rules: Vec<RuleMetrics>,
}

/// A provider's metric names, which configuration checks against the other providers'.
pub fn provider_metric_names(provider: &str) -> [String; 5] {
    [
        "allowed",
        "denied",
        "jwks_fetch_success",
        "jwks_fetch_failure",
        "keys_loaded",
    ]
    .map(|what| format!("provider_{provider}_{what}"))
}

/// A rule's metric names, which configuration checks against the other rules'.
pub fn rule_metric_names(rule: &str) -> [String; 2] {
    ["allowed", "denied"].map(|what| format!("rule_{rule}_{what}"))
}

impl AuthnMetrics {
    pub fn define(host: &(impl Host + ?Sized), config: &AuthnConfig) -> Self {
        let counter = |name: &str| BatchedCounter::new(host, FILTER, name);
        Self {
            allowed: counter("allowed"),
            denied: Denial::ALL
                .iter()
                .map(|d| counter(&format!("denied_{}", d.reason())))
                .collect(),
            path_refused: counter("path_refused"),
            cache_hits: counter("cache_hits"),
            cache_misses: counter("cache_misses"),
            api_key_allowed: counter("api_key_allowed"),
            api_key_denied: counter("api_key_denied"),
            providers: config
                .providers
                .iter()
                .map(|p| {
                    let [allowed, denied, fetch_success, fetch_failure, keys_loaded] =
                        provider_metric_names(&p.name);
                    ProviderMetrics {
                        allowed: counter(&allowed),
                        denied: counter(&denied),
                        jwks_fetch_success: Metric::counter(host, FILTER, &fetch_success),
                        jwks_fetch_failure: Metric::counter(host, FILTER, &fetch_failure),
                        keys_loaded: Metric::gauge(host, FILTER, &keys_loaded),
                    }
                })
                .collect(),
            rules: config
                .rules
                .iter()
                .chain(std::iter::once(&config.default_rule))
                .map(|r| {
                    let [allowed, denied] = rule_metric_names(&r.name);
                    RuleMetrics {
                        allowed: counter(&allowed),
                        denied: counter(&denied),
                    }
                })
                .collect(),
        }
    }

    pub fn denied(&self, denial: Denial) {
        if let Some(i) = Denial::ALL.iter().position(|d| *d == denial) {
            if let Some(m) = self.denied.get(i) {
                m.inc();
            }
        }
    }

    /// Hands every pending increment to the host.
    pub fn flush(&self, host: &(impl Host + ?Sized)) {
        let singles = [
            &self.allowed,
            &self.path_refused,
            &self.cache_hits,
            &self.cache_misses,
            &self.api_key_allowed,
            &self.api_key_denied,
        ];
        let providers = self.providers.iter().flat_map(|p| [&p.allowed, &p.denied]);
        let rules = self.rules.iter().flat_map(|r| [&r.allowed, &r.denied]);
        for c in singles
            .into_iter()
            .chain(&self.denied)
            .chain(providers)
            .chain(rules)
        {
            c.flush(host);
        }
    }
}
