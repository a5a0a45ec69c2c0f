//! Global mode: the rules with `mode: global | both` are asked of a rate-limit service over
//! Envoy's `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, so one limit holds
//! across every Envoy. One call per request carries one descriptor per applying rule:
//! `generic_key` = the rule's name, then one entry per key part (`remote_address`, the header's
//! name, `path`). A missing key value is sent as an empty value under `on_missing_key:
//! fallback` (one shared counter, as locally) and leaves the rule out under `skip`.
//!
//! The service's answer maps onto the local limit's 429: statuses give the quota fields
//! (`current_limit`, `limit_remaining`, `duration_until_reset`); a service that sends no
//! statuses (Limitador) still refuses, with `Retry-After: 1`. Its `response_headers_to_add`
//! go on the 429 or the admitted response, `request_headers_to_add` on the upstream request.
//! A failure (dispatch error, non-OK gRPC status, timeout, undecodable or UNKNOWN answer)
//! applies `on_failure`.

use crate::config::{MissingKey, Rule};
use crate::global_config::{FailurePolicy, GlobalConfig, Mode};
use crate::headers::{fields, retry_after_s, Quota};
use crate::keys::{client_address, KeyPart};
use crate::limiter::{Limiter, Refusal, Verdict};
use crate::metrics::FILTER;
use crate::rls::{
    Descriptor, Entry, RateLimitRequest, RateLimitResponse, UInt64Value, CODE_OK, CODE_OVER_LIMIT,
    METHOD, SERVICE,
};
use prost::Message;
use std::time::Duration;
use wasmgate_shared::config::header_name;
use wasmgate_shared::metrics::BatchedCounter;
use wasmgate_shared::{Host, LocalReply, RequestView};

pub const GRPC_OK: u32 = 0;
pub const GRPC_DEADLINE_EXCEEDED: u32 = 4;
/// The descriptor entry that names the rule (the key of Envoy's `generic_key` action).
pub const RULE_ENTRY_KEY: &str = "generic_key";

/// Every outcome of a call to the service, and what the failure policy did.
pub struct GlobalMetrics {
    pub ok: BatchedCounter,
    pub over_limit: BatchedCounter,
    pub timeout: BatchedCounter,
    pub error: BatchedCounter,
    pub bad_response: BatchedCounter,
    pub dispatch_failed: BatchedCounter,
    pub failure_allowed: BatchedCounter,
    pub failure_denied: BatchedCounter,
    pub failure_local: BatchedCounter,
}

impl GlobalMetrics {
    fn define(host: &(impl Host + ?Sized)) -> Self {
        let counter = |name: &str| BatchedCounter::new(host, FILTER, name);
        Self {
            ok: counter("global_ok"),
            over_limit: counter("global_over_limit"),
            timeout: counter("global_timeout"),
            error: counter("global_error"),
            bad_response: counter("global_bad_response"),
            dispatch_failed: counter("global_dispatch_failed"),
            failure_allowed: counter("global_failure_allowed"),
            failure_denied: counter("global_failure_denied"),
            failure_local: counter("global_failure_local"),
        }
    }

    /// Hands every pending count to the host (batched like the rule counters, see metrics.rs).
    pub fn flush(&self, host: &(impl Host + ?Sized)) {
        for c in [
            &self.ok,
            &self.over_limit,
            &self.timeout,
            &self.error,
            &self.bad_response,
            &self.dispatch_failed,
            &self.failure_allowed,
            &self.failure_denied,
            &self.failure_local,
        ] {
            c.flush(host);
        }
    }
}

pub struct Global {
    pub config: GlobalConfig,
    pub metrics: GlobalMetrics,
}

/// The request may go on: response fields (ours and the service's) and upstream headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    pub fields: Vec<(&'static str, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Allowed),
    Limit(Refusal),
}

impl From<Verdict> for Decision {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Allow(fields) => Decision::Allow(Allowed {
                fields,
                ..Allowed::default()
            }),
            Verdict::Limit(reply) => Decision::Limit(reply),
        }
    }
}

/// Why a call gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Dispatch,
    Timeout,
    Status(u32),
    BadResponse,
}

/// What the service sent back: gRPC `status` and, for OK, the response `message`, `waited`
/// after the call was sent.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u32,
    pub message: Option<&'a [u8]>,
    pub waited: Duration,
}

impl Global {
    pub fn define(host: &(impl Host + ?Sized), config: GlobalConfig) -> Self {
        Self {
            config,
            metrics: GlobalMetrics::define(host),
        }
    }

    /// The encoded `RateLimitRequest` for the global rules that apply, with their indices
    /// (descriptor `i` is rule `rules[i]`); `None` when no global rule applies.
    pub fn request(
        &self,
        limiter: &Limiter,
        host: &(impl Host + ?Sized),
        request: &RequestView,
    ) -> Option<(Vec<u8>, Vec<usize>)> {
        let hops = limiter.config.xff_trusted_hops;
        let mut rules = Vec::new();
        let mut descriptors = Vec::new();
        let mut hits = 0;
        for (i, rule) in limiter.config.rules.iter().enumerate() {
            if !rule.mode.is_global() || !rule.matcher.matches(request) {
                continue;
            }
            let Some(mut d) = descriptor(rule, host, request, hops) else {
                continue;
            };
            if descriptors.is_empty() {
                hits = rule.cost;
            } else if rule.cost != hits {
                d.hits_addend = Some(UInt64Value { value: rule.cost });
            }
            descriptors.push(d);
            rules.push(i);
        }
        if descriptors.is_empty() {
            return None;
        }
        let message = RateLimitRequest {
            domain: self.config.domain.clone(),
            descriptors,
            hits_addend: u32::try_from(hits).unwrap_or(u32::MAX),
        };
        Some((message.encode_to_vec(), rules))
    }

    /// Sends the call; `Err` is a dispatch failure, already counted.
    pub fn dispatch(&self, host: &(impl Host + ?Sized), message: &[u8]) -> Result<u32, Failure> {
        let c = &self.config;
        host.dispatch_grpc_call(&c.cluster, SERVICE, METHOD, message, c.timeout)
            .map_err(|e| {
                log::warn!("wasmgate ratelimit: {}", e.0);
                self.metrics.dispatch_failed.inc();
                Failure::Dispatch
            })
    }

    /// Decides from the service's answer to the call for `rules`. Envoy ends a call that runs
    /// out of time with a non-OK status (not always DEADLINE_EXCEEDED), so one that came at
    /// the timeout is one.
    pub fn decide(
        &self,
        limiter: &Limiter,
        host: &(impl Host + ?Sized),
        request: &RequestView,
        rules: &[usize],
        answer: Answer<'_>,
    ) -> Decision {
        let Answer {
            status,
            message,
            waited,
        } = answer;
        let response = match (status, message) {
            (GRPC_OK, Some(bytes)) => RateLimitResponse::decode(bytes).ok(),
            (GRPC_OK, None) => RateLimitResponse::decode(&[][..]).ok(),
            (GRPC_DEADLINE_EXCEEDED, _) => {
                return self.fail(limiter, host, request, Failure::Timeout)
            }
            // Envoy's timers may fire a little early: the last 5% of the time counts.
            (_, _) if waited >= self.config.timeout - self.config.timeout / 20 => {
                return self.fail(limiter, host, request, Failure::Timeout)
            }
            (other, _) => return self.fail(limiter, host, request, Failure::Status(other)),
        };
        let Some(response) = response else {
            return self.fail(limiter, host, request, Failure::BadResponse);
        };
        match response.overall_code {
            CODE_OK => {
                self.metrics.ok.inc();
                for &i in rules {
                    let rule = limiter.config.rules.get(i);
                    if let (Some(m), Some(Mode::Global)) =
                        (limiter.metrics.rules.get(i), rule.map(|r| r.mode))
                    {
                        m.allowed.inc();
                    }
                }
                Decision::Allow(allowed(limiter, rules, &response))
            }
            CODE_OVER_LIMIT => {
                self.metrics.over_limit.inc();
                over_limit(limiter, rules, &response)
            }
            _ => self.fail(limiter, host, request, Failure::BadResponse),
        }
    }

    /// Counts the failure and applies `on_failure`.
    pub fn fail(
        &self,
        limiter: &Limiter,
        host: &(impl Host + ?Sized),
        request: &RequestView,
        why: Failure,
    ) -> Decision {
        match why {
            Failure::Dispatch => {} // counted where it happened
            Failure::Timeout => self.metrics.timeout.inc(),
            Failure::Status(_) => self.metrics.error.inc(),
            Failure::BadResponse => self.metrics.bad_response.inc(),
        }
        match self.config.on_failure {
            FailurePolicy::Allow => {
                self.metrics.failure_allowed.inc();
                Decision::Allow(Allowed::default())
            }
            FailurePolicy::Deny => {
                self.metrics.failure_denied.inc();
                Decision::Limit(
                    LocalReply::new(
                        503,
                        "ratelimit_unavailable",
                        "The rate-limit service is unavailable; retry shortly.",
                    )
                    .with_header("retry-after", "1")
                    .into(),
                )
            }
            FailurePolicy::Local => {
                self.metrics.failure_local.inc();
                // `both` rules were charged locally already; only `global` ones fall back.
                limiter
                    .decide_where(host, request, |rule| rule.mode == Mode::Global)
                    .into()
            }
        }
    }
}

fn descriptor(
    rule: &Rule,
    host: &(impl Host + ?Sized),
    request: &RequestView,
    hops: u32,
) -> Option<Descriptor> {
    let mut entries = Vec::with_capacity(rule.key.len() + 1);
    entries.push(Entry {
        key: RULE_ENTRY_KEY.to_string(),
        value: rule.name.clone(),
    });
    for part in &rule.key {
        let (key, value) = match part {
            KeyPart::Client => ("remote_address", client_address(host, request, hops)),
            KeyPart::Header(name) => (name.as_str(), request.header(name).map(str::to_string)),
            KeyPart::Path => ("path", Some(request.path.clone()).filter(|p| !p.is_empty())),
            KeyPart::Identity => (
                "identity",
                request.identity.as_ref().and_then(|i| i.name.clone()),
            ),
            KeyPart::Claim(claim) => (
                claim.as_str(),
                request.identity.as_ref().and_then(|i| i.claim(claim)),
            ),
        };
        let value = match value {
            Some(v) => v,
            None if rule.on_missing_key == MissingKey::Skip => return None,
            None => String::new(),
        };
        entries.push(Entry {
            key: key.to_string(),
            value,
        });
    }
    Some(Descriptor {
        entries,
        hits_addend: None,
    })
}

/// The service's headers that are valid HTTP fields: a token name (so never a pseudo-header
/// such as `:path`, which would send the request elsewhere than the rules judged) and a value
/// without a control byte but HTAB (a CR or LF would split the field on an HTTP/1 hop).
/// Anything else is dropped.
fn pairs(headers: &[crate::rls::HeaderValue]) -> Vec<(String, String)> {
    let value_ok = |v: &str| !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
    headers
        .iter()
        .filter_map(|h| Some((h.key.to_ascii_lowercase(), h.text()?.to_string())))
        .filter(|(k, v)| header_name("", k).is_ok() && value_ok(v))
        .collect()
}

/// Rule `i`'s quota as the service reported it, when it did.
fn quota<'a>(rule: &'a Rule, status: Option<&crate::rls::DescriptorStatus>) -> Option<Quota<'a>> {
    let status = status?;
    let limit = status.current_limit.as_ref()?;
    let reset_s = status.duration_until_reset.map_or(0, |d| d.ceil_seconds());
    Some(Quota {
        name: &rule.name,
        capacity: u64::from(limit.requests_per_unit),
        window_s: limit.unit_seconds()?,
        remaining: u64::from(status.limit_remaining),
        reset_s,
    })
}

fn allowed(limiter: &Limiter, rules: &[usize], response: &RateLimitResponse) -> Allowed {
    let headers = limiter.config.headers;
    let mut fields_out = Vec::new();
    if headers.on_allowed {
        let quotas: Vec<Quota<'_>> = rules
            .iter()
            .enumerate()
            .filter_map(|(d, &i)| {
                let rule = limiter.config.rules.get(i).filter(|r| !r.shadow)?;
                quota(rule, response.statuses.get(d))
            })
            .collect();
        let headline = quotas
            .iter()
            .enumerate()
            .min_by_key(|(_, q)| q.remaining)
            .map_or(0, |(n, _)| n);
        fields_out = fields(headers.style, &quotas, headline);
    }
    Allowed {
        fields: fields_out,
        response_headers: pairs(&response.response_headers_to_add),
        request_headers: pairs(&response.request_headers_to_add),
    }
}

fn over_limit(limiter: &Limiter, rules: &[usize], response: &RateLimitResponse) -> Decision {
    // Without per-descriptor statuses the refusal is every rule's.
    let refused = |d: usize| {
        response
            .statuses
            .get(d)
            .is_none_or(|s| s.code == CODE_OVER_LIMIT)
    };
    let mut enforced = false;
    // The headline rule when the service gave quotas, else the first refusing one.
    let mut refusing_rule = None;
    let mut quotas = Vec::new();
    let mut headline = (0, 0);
    for (d, &i) in rules.iter().enumerate() {
        let (Some(rule), Some(m)) = (limiter.config.rules.get(i), limiter.metrics.rules.get(i))
        else {
            continue;
        };
        let status = response.statuses.get(d);
        if !refused(d) {
            continue;
        }
        if rule.shadow {
            m.shadow_limited.inc();
            continue;
        }
        if !enforced {
            refusing_rule = Some(rule.name.clone());
        }
        enforced = true;
        m.limited.inc();
        if let Some(q) = quota(rule, status) {
            if quotas.is_empty() || q.reset_s > headline.1 {
                headline = (quotas.len(), q.reset_s);
                refusing_rule = Some(rule.name.clone());
            }
            quotas.push(q);
        }
    }
    if !enforced {
        return Decision::Allow(allowed(limiter, rules, response));
    }
    // The service's `duration_until_reset` is each item's `t` and Retry-After is read off
    // those same values, so it is never earlier than any of them (draft §6).
    let retry = retry_after_s(quotas.iter().map(|q| q.reset_s));
    let mut reply = LocalReply::new(
        429,
        "rate_limited",
        "Too many requests; retry after the time in Retry-After.",
    )
    .with_header("retry-after", retry.to_string());
    for (name, value) in fields(limiter.config.headers.style, &quotas, headline.0) {
        reply = reply.with_header(name, value);
    }
    // The service's fields replace ours of the same name.
    for (name, value) in pairs(&response.response_headers_to_add) {
        reply.headers.retain(|(n, _)| *n != name);
        reply = reply.with_header(name, value);
    }
    Decision::Limit(Refusal {
        reply,
        rule: refusing_rule,
    })
}

#[cfg(test)]
#[path = "global_tests.rs"]
mod tests;
