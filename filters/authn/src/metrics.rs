//! Every metric the filter moves, defined once in the root context (names are
//! `wasmgate_authn_<name>`; rule and provider names come from the configuration). Request-path
//! counters are batched and reach the host on [`AuthnMetrics::flush`] (every tick): on a cache
//! hit, a host call per increment would cost more than the rest of the filter's work.

use crate::config::AuthnConfig;
use crate::denial::Denial;
use wasmgate_shared::metrics::{BatchedCounter, Metric};
use wasmgate_shared::Host;

const FILTER: &str = "authn";

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
                .map(|p| ProviderMetrics {
                    allowed: counter(&format!("provider_{}_allowed", p.name)),
                    denied: counter(&format!("provider_{}_denied", p.name)),
                    jwks_fetch_success: Metric::counter(
                        host,
                        FILTER,
                        &format!("provider_{}_jwks_fetch_success", p.name),
                    ),
                    jwks_fetch_failure: Metric::counter(
                        host,
                        FILTER,
                        &format!("provider_{}_jwks_fetch_failure", p.name),
                    ),
                    keys_loaded: Metric::gauge(
                        host,
                        FILTER,
                        &format!("provider_{}_keys_loaded", p.name),
                    ),
                })
                .collect(),
            rules: config
                .rules
                .iter()
                .chain(std::iter::once(&config.default_rule))
                .map(|r| RuleMetrics {
                    allowed: counter(&format!("rule_{}_allowed", r.name)),
                    denied: counter(&format!("rule_{}_denied", r.name)),
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
