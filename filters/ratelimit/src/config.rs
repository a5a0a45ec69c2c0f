//! The ratelimit plugin configuration: serde shape (every field documented in
//! docs/ratelimit.md with its default), then a checked compile step into [`RatelimitConfig`].

use crate::bucket::Limit;
use crate::global_config::{GlobalConfig, Mode, RawGlobal};
use crate::keys::{KeyPart, RawKeyPart};
use crate::metrics::{rule_metric_names, FILTER};
use crate::siphash::sip13;
use serde::Deserialize;
use wasmgate_shared::canonical::PathPolicy;
use wasmgate_shared::matching::{RequestMatch, RequestMatcher};
use wasmgate_shared::metrics::shared_metric;
use wasmgate_shared::ConfigError;

pub const DEFAULT_PERIOD_MS: u64 = 1_000;
pub const DEFAULT_BUDGET: u32 = 4_096;
pub const MAX_BUDGET: u32 = 1_000_000;
/// Slots across all rules: bounds the shared data one configuration can ever create.
pub const MAX_TOTAL_SLOTS: u64 = 2_000_000;
pub const MAX_RULES: usize = 64;
pub const MAX_TRUSTED_HOPS: u32 = 16;
const MAX_CAPACITY: u64 = 1_000_000_000_000;
const MAX_PERIOD_MS: u64 = 366 * 24 * 3600 * 1000;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawRatelimitConfig {
    /// The JSON Schema of this configuration (`docs/schemas/`), for editors; ignored.
    #[serde(rename = "$schema")]
    pub schema: Option<String>,
    pub rules: Vec<RawRule>,
    /// 0: the client is the connection's source address; N ≥ 1: the N-th `x-forwarded-for`
    /// entry from the right.
    pub xff_trusted_hops: u32,
    pub rate_limit_headers: RawHeaders,
    /// The rate-limit service for rules with `mode: global | both`; absent = none.
    pub global: Option<RawGlobal>,
    /// How ambiguous request paths are read (`docs/security.md`); default: refused.
    pub paths: PathPolicy,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    #[serde(default, rename = "match")]
    pub matches: RequestMatch,
    #[serde(default)]
    pub key: Vec<RawKeyPart>,
    pub capacity: u64,
    /// Tokens added per period; default: `capacity`.
    #[serde(default)]
    pub refill: Option<u64>,
    #[serde(default = "default_period_ms")]
    pub period_ms: u64,
    #[serde(default = "default_cost")]
    pub cost: u64,
    /// Slots for a keyed rule; default [`DEFAULT_BUDGET`].
    #[serde(default)]
    pub budget: Option<u32>,
    #[serde(default)]
    pub on_missing_key: MissingKey,
    #[serde(default)]
    pub shadow: bool,
    #[serde(default)]
    pub mode: Mode,
}

fn default_period_ms() -> u64 {
    DEFAULT_PERIOD_MS
}

fn default_cost() -> u64 {
    1
}

/// What a request without the key's value (no such header) does.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MissingKey {
    /// All such requests share one extra bucket of the rule: omitting the header is no way
    /// around the limit.
    #[default]
    Fallback,
    /// The rule does not apply to the request.
    Skip,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RawHeaders {
    pub style: HeaderStyle,
    /// Also add the headers to responses the limit let through.
    pub on_allowed: bool,
}

impl Default for RawHeaders {
    fn default() -> Self {
        Self {
            style: HeaderStyle::Both,
            on_allowed: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HeaderStyle {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    Ietf,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
    XRatelimit,
    Both,
    None,
}

/// A checked rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub matcher: RequestMatcher,
    pub key: Vec<KeyPart>,
    pub limit: Limit,
    pub cost: u64,
    /// Slots for keyed values; 0 for a constant-key rule (it has only the fallback slot).
    pub budget: u32,
    pub on_missing_key: MissingKey,
    pub shadow: bool,
    pub mode: Mode,
    /// Shared-data key prefix: changes whenever the bucket's definition changes, so state
    /// written under an older configuration is never read as this rule's.
    pub namespace: String,
    /// The key of the constant / fallback slot, built once (the common case per request).
    pub fallback_key: String,
}

impl Rule {
    /// Slots the rule owns: `budget` for key values plus one (the constant / fallback bucket).
    pub fn slot_count(&self) -> u32 {
        self.budget + 1
    }

    /// The slot shared by every request of a constant-key rule, and by requests whose key
    /// value is missing under `on_missing_key: fallback`.
    pub fn fallback_slot(&self) -> u32 {
        self.budget
    }

    /// The shared-data key of one slot: `wasmgate.ratelimit.<definition hash>.<slot>`.
    pub fn slot_key(&self, slot: u32) -> String {
        format!("{}{slot}", self.namespace)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub style: HeaderStyle,
    pub on_allowed: bool,
}

#[derive(Debug)]
pub struct RatelimitConfig {
    pub rules: Vec<Rule>,
    pub xff_trusted_hops: u32,
    pub headers: Headers,
    pub global: Option<GlobalConfig>,
    pub paths: PathPolicy,
}

impl RatelimitConfig {
    /// The first key part that needs a verified identity, as a field path: such a rule can
    /// only run after the gateway module's authn.
    pub fn identity_key(&self) -> Option<String> {
        self.rules.iter().enumerate().find_map(|(i, rule)| {
            let k = rule.key.iter().position(KeyPart::needs_identity)?;
            Some(format!("rules[{i}].key[{k}].source"))
        })
    }
}

impl RawRatelimitConfig {
    pub fn compile(self) -> Result<RatelimitConfig, ConfigError> {
        if self.rules.len() > MAX_RULES {
            return Err(ConfigError::new(
                "rules",
                format!("at most {MAX_RULES} rules"),
            ));
        }
        if self.xff_trusted_hops > MAX_TRUSTED_HOPS {
            return Err(ConfigError::new(
                "xff_trusted_hops",
                format!("must be at most {MAX_TRUSTED_HOPS}"),
            ));
        }
        let global = match self.global {
            Some(raw) => Some(raw.compile().map_err(|e| e.within("global"))?),
            None => None,
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(self.rules.len());
        let mut total_slots = 0u64;
        for (i, raw) in self.rules.into_iter().enumerate() {
            let at = format!("rules[{i}]");
            let rule = raw.compile().map_err(|e| e.within(&at))?;
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "duplicate rule name",
                ));
            }
            if rule.mode.is_global() && global.is_none() {
                return Err(ConfigError::new(
                    format!("{at}.mode"),
                    "global and both need the top-level `global` section (the rate-limit service)",
                ));
            }
            total_slots += u64::from(rule.slot_count());
            if total_slots > MAX_TOTAL_SLOTS {
                return Err(ConfigError::new(
                    format!("{at}.budget"),
                    format!("the rules' budgets add up to more than {MAX_TOTAL_SLOTS} slots"),
                ));
            }
            rules.push(rule);
        }
        let metrics: Vec<_> = rules.iter().map(|r| rule_metric_names(&r.name)).collect();
        let metrics: Vec<&[String]> = metrics.iter().map(|m| m.as_slice()).collect();
        if let Some((earlier, later, metric)) = shared_metric(FILTER, &metrics) {
            return Err(ConfigError::new(
                format!("rules[{later}].name"),
                format!(
                    "shares the metric {metric} with rules[{earlier}] `{}`: their counts would merge",
                    rules.get(earlier).map_or("", |r| r.name.as_str())
                ),
            ));
        }
        Ok(RatelimitConfig {
            rules,
            xff_trusted_hops: self.xff_trusted_hops,
            headers: Headers {
                style: self.rate_limit_headers.style,
                on_allowed: self.rate_limit_headers.on_allowed,
            },
            global,
            paths: self.paths,
        })
    }
}

impl RawRule {
    fn compile(self) -> Result<Rule, ConfigError> {
        wasmgate_shared::config::name("name", &self.name)?;
        let matcher = self.matches.compile().map_err(|e| e.within("match"))?;
        let mut key = Vec::with_capacity(self.key.len());
        for (i, part) in self.key.into_iter().enumerate() {
            key.push(part.compile().map_err(|e| e.within(&format!("key[{i}]")))?);
        }
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(ConfigError::new(
                "capacity",
                format!("must be between 1 and {MAX_CAPACITY}"),
            ));
        }
        let refill = self.refill.unwrap_or(self.capacity);
        if refill == 0 || refill > MAX_CAPACITY {
            return Err(ConfigError::new(
                "refill",
                format!("must be between 1 and {MAX_CAPACITY}"),
            ));
        }
        if self.period_ms == 0 || self.period_ms > MAX_PERIOD_MS {
            return Err(ConfigError::new(
                "period_ms",
                format!("must be between 1 and {MAX_PERIOD_MS} (366 days)"),
            ));
        }
        if self.cost == 0 || self.cost > self.capacity {
            return Err(ConfigError::new(
                "cost",
                "must be between 1 and capacity (a larger cost could never be admitted)",
            ));
        }
        let budget = match (key.is_empty(), self.budget) {
            (true, None) => 0,
            (true, Some(_)) => {
                return Err(ConfigError::new(
                    "budget",
                    "only a rule with a key has a budget (a constant key is one bucket)",
                ))
            }
            (false, b) => b.unwrap_or(DEFAULT_BUDGET),
        };
        if !key.is_empty() && (budget == 0 || budget > MAX_BUDGET) {
            return Err(ConfigError::new(
                "budget",
                format!("must be between 1 and {MAX_BUDGET}"),
            ));
        }
        let limit = Limit::new(self.capacity, refill, self.period_ms * 1_000_000)
            .ok_or_else(|| ConfigError::new("capacity", "must be > 0"))?;
        // Everything that defines the buckets' meaning; not match, shadow or headers.
        let definition = format!(
            "v1|{}|{}|{}|{}|{:?}|{}|{:?}",
            self.name, self.capacity, refill, self.period_ms, key, budget, self.on_missing_key
        );
        let namespace = format!(
            "wasmgate.ratelimit.{:016x}.",
            sip13((0, 0), definition.as_bytes())
        );
        Ok(Rule {
            name: self.name,
            matcher,
            key,
            limit,
            cost: self.cost,
            budget,
            on_missing_key: self.on_missing_key,
            shadow: self.shadow,
            mode: self.mode,
            fallback_key: format!("{namespace}{budget}"),
            namespace,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
