//! One request's path through the filter: the local buckets first (rules with `mode: local |
//! both`), then, when a global rule applies, a call to the rate-limit service whose answer
//! (or failure) finishes the decision. [`Plugin`] is the ratelimit policy of `ratelimit.wasm`
//! and of the gateway's `pre_auth` and `ratelimit` stages.

use crate::config::{RatelimitConfig, RawRatelimitConfig};
use crate::global::{Allowed, Answer, Decision, Global};
use crate::limiter::{Limiter, Refusal, Verdict};
use std::time::SystemTime;
use wasmgate_shared::span_notes::NoteValue;
use wasmgate_shared::{config, ConfigError, Flow, Host, Policy, RequestView};

/// What a refusal and a service call leave on the gateway's span (docs/tracing.md).
const REASON: &str = "wasmgate.ratelimit.reason";
const RULE: &str = "wasmgate.ratelimit.rule";
/// Event: the rate-limit service answered (or failed); `wasmgate.wait_ms` says after how long.
const SERVICE_CALL: &str = "wasmgate.ratelimit.service_call";
const WAIT_MS: &str = "wasmgate.wait_ms";
const GRPC_STATUS: &str = "rpc.grpc.status_code";

pub struct Plugin {
    pub limiter: Limiter,
    pub global: Option<Global>,
}

/// A call to the service in flight for a paused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub token: u32,
    /// When the call was sent.
    pub sent: SystemTime,
    /// Descriptor `i` of the call is rule `rules[i]`.
    pub rules: Vec<usize>,
    /// What the local buckets add to the response if the request goes on.
    pub local_fields: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Continue(Allowed),
    Reply(Refusal),
    /// Pause until the service answers the call.
    Wait(Pending),
}

/// What a request keeps: the call it waits for, then the fields its response gets.
#[derive(Debug, Default)]
pub struct RatelimitStream {
    pub pending: Option<Pending>,
    pub allowed: Allowed,
}

impl Plugin {
    pub fn configure(host: &(impl Host + ?Sized), mut config: RatelimitConfig) -> Self {
        let global = config.global.take().map(|g| Global::define(host, g));
        Self {
            limiter: Limiter::configure(host, config),
            global,
        }
    }

    /// Compiles a configuration; `identity` says whether a verified identity will be there
    /// (the gateway's `ratelimit` stage), without which identity keys are refused.
    pub fn compile(
        host: &(impl Host + ?Sized),
        raw: RawRatelimitConfig,
        identity: bool,
    ) -> Result<Self, ConfigError> {
        let config = raw.compile()?;
        if let (false, Some(field)) = (identity, config.identity_key()) {
            return Err(ConfigError::new(
                field,
                "identity and claim keys need the gateway module's authn stage before them",
            ));
        }
        Ok(Self::configure(host, config))
    }

    /// Hands the batched counters to the host; the root context calls it on every tick.
    pub fn flush_metrics(&self, host: &(impl Host + ?Sized)) {
        self.limiter.metrics.flush(host);
        if let Some(global) = &self.global {
            global.metrics.flush(host);
        }
    }

    pub fn decide(&self, host: &(impl Host + ?Sized), request: &mut RequestView) -> Step {
        if let Err(refusal) = request.judge(&self.limiter.config.paths) {
            self.limiter.metrics.path_refused.inc();
            return Step::Reply(refusal.reply().into());
        }
        // The upstream serves what the rules judged, whatever this request's outcome.
        request.forward_canonical_path(host);
        let local_fields = match self.limiter.decide(host, request) {
            Verdict::Allow(fields) => fields,
            Verdict::Limit(refusal) => return Step::Reply(refusal),
        };
        let Some(global) = &self.global else {
            return Step::Continue(Allowed {
                fields: local_fields,
                ..Allowed::default()
            });
        };
        let Some((message, rules)) = global.request(&self.limiter, host, request) else {
            return Step::Continue(Allowed {
                fields: local_fields,
                ..Allowed::default()
            });
        };
        match global.dispatch(host, &message) {
            Ok(token) => Step::Wait(Pending {
                token,
                sent: host.now(),
                rules,
                local_fields,
            }),
            Err(failure) => finish(
                global.fail(&self.limiter, host, request, failure),
                local_fields,
            ),
        }
    }

    /// The service answered `pending` with gRPC `status` (0 = OK) and a `size`-byte message.
    pub fn answer(
        &self,
        host: &(impl Host + ?Sized),
        request: &RequestView,
        pending: Pending,
        status: u32,
        size: usize,
    ) -> Step {
        let Some(global) = &self.global else {
            return finish(Decision::Allow(Allowed::default()), pending.local_fields);
        };
        let message = if status == 0 && size > 0 {
            host.grpc_call_response_message(size)
        } else {
            None
        };
        let waited = host.now().duration_since(pending.sent).unwrap_or_default();
        let answer = Answer {
            status,
            message: message.as_deref(),
            waited,
        };
        let decision = global.decide(&self.limiter, host, request, &pending.rules, answer);
        finish(decision, pending.local_fields)
    }

    /// Acts on a step for the stream: headers the service asked for go upstream now, the
    /// response fields wait for the response; a refusal is noted for the span.
    pub fn flow(
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut RatelimitStream,
        step: Step,
    ) -> Flow {
        match step {
            Step::Continue(allowed) => {
                for (name, value) in &allowed.request_headers {
                    request.set_header(host, name, Some(value));
                }
                stream.allowed = allowed;
                Flow::Continue
            }
            Step::Reply(Refusal { reply, rule }) => {
                request.notes.attribute(REASON, reply.error.as_str());
                if let Some(rule) = rule {
                    request.notes.attribute(RULE, rule);
                }
                Flow::Reply(reply)
            }
            Step::Wait(pending) => {
                stream.pending = Some(pending);
                Flow::Pause
            }
        }
    }
}

/// The local fields go first, so the service's view of the same field wins.
fn finish(decision: Decision, local_fields: Vec<(&'static str, String)>) -> Step {
    match decision {
        Decision::Allow(mut allowed) => {
            let mut fields = local_fields;
            fields.append(&mut allowed.fields);
            allowed.fields = fields;
            Step::Continue(allowed)
        }
        Decision::Limit(refusal) => Step::Reply(refusal),
    }
}

impl Policy for Plugin {
    const NAME: &'static str = "ratelimit";
    type Stream = RatelimitStream;

    fn configure(host: &(impl Host + ?Sized), bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        config::parse(bytes)
            .and_then(|raw| Self::compile(host, raw, false))
            .map_err(|e| e.within(Self::NAME))
    }

    fn new_stream(&self, _context_id: u32) -> RatelimitStream {
        RatelimitStream::default()
    }

    fn on_request(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut RatelimitStream,
    ) -> Flow {
        let step = self.decide(host, request);
        Self::flow(host, request, stream, step)
    }

    fn on_grpc_call_response(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut RatelimitStream,
        token: u32,
        status: u32,
        size: usize,
    ) -> Flow {
        let Some(pending) = stream.pending.take_if(|p| p.token == token) else {
            return Flow::Pause;
        };
        // The event's attributes are a heap allocation: only for a span that is exported.
        if request.notes.is_recording() {
            let now = host.now();
            let waited = now
                .duration_since(pending.sent)
                .unwrap_or_default()
                .as_millis();
            let attributes = vec![
                (
                    WAIT_MS,
                    NoteValue::Int(i64::try_from(waited).unwrap_or(i64::MAX)),
                ),
                (GRPC_STATUS, NoteValue::Int(i64::from(status))),
            ];
            request.notes.event(SERVICE_CALL, now, attributes);
        }
        let step = self.answer(host, request, pending, status, size);
        Self::flow(host, request, stream, step)
    }

    fn awaited_call(&self, stream: &RatelimitStream) -> Option<u32> {
        stream.pending.as_ref().map(|p| p.token)
    }

    fn on_response(&self, host: &(impl Host + ?Sized), stream: &mut RatelimitStream) {
        for (name, value) in stream.allowed.fields.drain(..) {
            host.set_response_header(name, Some(&value));
        }
        for (name, value) in stream.allowed.response_headers.drain(..) {
            host.set_response_header(&name, Some(&value));
        }
    }

    /// Request counters are batched and reach Envoy on the tick, at most ~1 s late.
    fn on_tick(&self, host: &(impl Host + ?Sized)) -> Vec<u32> {
        self.flush_metrics(host);
        Vec::new()
    }

    fn retire(&self, host: &(impl Host + ?Sized)) {
        self.flush_metrics(host);
    }
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
