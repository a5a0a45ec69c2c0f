//! Every metric the filter moves, defined once in the root context (names are
//! `wasmgate_authn_<name>`; rule and provider names come from the configuration).

use crate::config::AuthnConfig;
use crate::denial::Denial;
use wasmgate_shared::metrics::Metric;
use wasmgate_shared::Host;

const FILTER: &str = "authn";

pub struct ProviderMetrics {
    pub allowed: Metric,
    pub denied: Metric,
    pub jwks_fetch_success: Metric,
    pub jwks_fetch_failure: Metric,
    pub keys_loaded: Metric,
}

pub struct RuleMetrics {
    pub allowed: Metric,
    pub denied: Metric,
}

pub struct AuthnMetrics {
    pub allowed: Metric,
    /// Indexed like [`Denial::ALL`].
    pub denied: Vec<Metric>,
    pub cache_hits: Metric,
    pub cache_misses: Metric,
    pub api_key_allowed: Metric,
    pub api_key_denied: Metric,
    pub providers: Vec<ProviderMetrics>,
    /// Indexed like `config.rules`, then the default rule last.
    pub rules: Vec<RuleMetrics>,
}

impl AuthnMetrics {
    pub fn define(host: &(impl Host + ?Sized), config: &AuthnConfig) -> Self {
        let counter = |name: &str| Metric::counter(host, FILTER, name);
        Self {
            allowed: counter("allowed"),
            denied: Denial::ALL
                .iter()
                .map(|d| counter(&format!("denied_{}", d.reason())))
                .collect(),
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
                    jwks_fetch_success: counter(&format!("provider_{}_jwks_fetch_success", p.name)),
                    jwks_fetch_failure: counter(&format!("provider_{}_jwks_fetch_failure", p.name)),
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

    pub fn denied(&self, host: &(impl Host + ?Sized), denial: Denial) {
        if let Some(i) = Denial::ALL.iter().position(|d| *d == denial) {
            if let Some(m) = self.denied.get(i) {
                m.inc(host);
            }
        }
    }
}
