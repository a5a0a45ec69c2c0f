//! Configuration of the global mode: which rate-limit service to ask, and what to do when it
//! cannot answer. Every field is documented in docs/ratelimit-global.md with its default.

use serde::Deserialize;
use std::time::Duration;
use wasmgate_shared::ConfigError;

pub const DEFAULT_CLUSTER: &str = "ratelimit_service";
pub const DEFAULT_DOMAIN: &str = "wasmgate";
pub const DEFAULT_TIMEOUT_MS: u64 = 100;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// Where a rule is decided.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// This Envoy's shared-data bucket only.
    #[default]
    Local,
    /// The rate-limit service; the rule's bucket is the fallback under `on_failure: local`.
    Global,
    /// The local bucket first (a cheap pre-filter), then the service.
    Both,
}

impl Mode {
    /// Decided by the local bucket on every request.
    pub fn is_local(self) -> bool {
        matches!(self, Mode::Local | Mode::Both)
    }

    /// Sent to the rate-limit service.
    pub fn is_global(self) -> bool {
        matches!(self, Mode::Global | Mode::Both)
    }
}

/// What a request does when the service is unreachable, too slow or answers with an error.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Let it through.
    Allow,
    /// Refuse it (503 `ratelimit_unavailable`).
    Deny,
    /// Decide the `global` rules with their local buckets, so each Envoy keeps a limit.
    #[default]
    Local,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawGlobal {
    /// The Envoy cluster (HTTP/2) of the rate-limit service.
    pub cluster: String,
    /// `RateLimitRequest.domain`: the service's namespace for these limits.
    pub domain: String,
    pub timeout_ms: u64,
    pub on_failure: FailurePolicy,
}

impl Default for RawGlobal {
    fn default() -> Self {
        Self {
            cluster: DEFAULT_CLUSTER.to_string(),
            domain: DEFAULT_DOMAIN.to_string(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            on_failure: FailurePolicy::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConfig {
    pub cluster: String,
    pub domain: String,
    pub timeout: Duration,
    pub on_failure: FailurePolicy,
}

impl RawGlobal {
    pub fn compile(self) -> Result<GlobalConfig, ConfigError> {
        if self.cluster.is_empty() {
            return Err(ConfigError::new("cluster", "must not be empty"));
        }
        if self.domain.is_empty() {
            return Err(ConfigError::new("domain", "must not be empty"));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigError::new(
                "timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        Ok(GlobalConfig {
            cluster: self.cluster,
            domain: self.domain,
            timeout: Duration::from_millis(self.timeout_ms),
            on_failure: self.on_failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{RatelimitConfig, RawRatelimitConfig};
    use crate::global_config::*;
    use wasmgate_shared::config::parse;

    fn compile(json: &str) -> Result<RatelimitConfig, ConfigError> {
        parse::<RawRatelimitConfig>(Some(json.as_bytes())).and_then(RawRatelimitConfig::compile)
    }

    #[test]
    fn empty_global_section_is_the_documented_defaults() {
        let c = compile(r#"{"global":{}}"#).unwrap();
        assert_eq!(
            c.global,
            Some(GlobalConfig {
                cluster: "ratelimit_service".into(),
                domain: "wasmgate".into(),
                timeout: Duration::from_millis(100),
                on_failure: FailurePolicy::Local,
            })
        );
        assert!(compile("{}").unwrap().global.is_none());
    }

    #[test]
    fn rules_are_local_unless_told() {
        let c = compile(r#"{"rules":[{"name":"r","capacity":1}]}"#).unwrap();
        assert_eq!(c.rules[0].mode, Mode::Local);
    }

    #[test]
    fn each_rejection_names_its_field() {
        let cases = [
            (
                r#"{"rules":[{"name":"r","capacity":1,"mode":"global"}]}"#,
                "rules[0].mode: global and both need the top-level `global` section (the rate-limit service)",
            ),
            (
                r#"{"rules":[{"name":"r","capacity":1,"mode":"both"}]}"#,
                "rules[0].mode: global and both need the top-level `global` section (the rate-limit service)",
            ),
            (r#"{"global":{"cluster":""}}"#, "global.cluster: must not be empty"),
            (r#"{"global":{"domain":""}}"#, "global.domain: must not be empty"),
            (
                r#"{"global":{"timeout_ms":0}}"#,
                "global.timeout_ms: must be between 1 and 60000",
            ),
            (
                r#"{"global":{"timeout_ms":60001}}"#,
                "global.timeout_ms: must be between 1 and 60000",
            ),
        ];
        for (json, want) in cases {
            let got = compile(json).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(want), "{json}");
        }
    }

    #[test]
    fn unknown_fields_and_values_are_rejected() {
        assert!(compile(r#"{"global":{"clustr":"x"}}"#).is_err());
        assert!(compile(r#"{"global":{"on_failure":"maybe"}}"#).is_err());
        assert!(compile(r#"{"rules":[{"name":"r","capacity":1,"mode":"remote"}]}"#).is_err());
    }
}
