//! One request's path through the filter: the local buckets first (rules with `mode: local |
//! both`), then, when a global rule applies, a call to the rate-limit service whose answer
//! (or failure) finishes the decision.

use crate::config::RatelimitConfig;
use crate::global::{Allowed, Answer, Decision, Global};
use crate::limiter::{Limiter, Verdict};
use std::time::SystemTime;
use wasmgate_shared::{Host, LocalReply, RequestView};

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
    /// The request as judged, for the local fallback if the call fails.
    pub request: RequestView,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Continue(Allowed),
    Reply(LocalReply),
    /// Pause until the service answers the call.
    Wait(Pending),
}

impl Plugin {
    pub fn configure(host: &(impl Host + ?Sized), mut config: RatelimitConfig) -> Self {
        let global = config.global.take().map(|g| Global::define(host, g));
        Self {
            limiter: Limiter::configure(host, config),
            global,
        }
    }

    /// Hands the batched counters to the host; the root context calls it on every tick.
    pub fn flush_metrics(&self, host: &(impl Host + ?Sized)) {
        self.limiter.metrics.flush(host);
        if let Some(global) = &self.global {
            global.metrics.flush(host);
        }
    }

    pub fn on_request(&self, host: &(impl Host + ?Sized)) -> Step {
        let request = match RequestView::read(host, &self.limiter.config.paths) {
            Ok(request) => request,
            Err(refusal) => {
                self.limiter.metrics.path_refused.inc();
                return Step::Reply(refusal.reply());
            }
        };
        // The upstream serves what the rules judged, whatever this request's outcome.
        request.forward_canonical_path(host);
        let local_fields = match self.limiter.decide(host, &request) {
            Verdict::Allow(fields) => fields,
            Verdict::Limit(reply) => return Step::Reply(reply),
        };
        let Some(global) = &self.global else {
            return Step::Continue(Allowed {
                fields: local_fields,
                ..Allowed::default()
            });
        };
        let Some((message, rules)) = global.request(&self.limiter, host, &request) else {
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
                request,
            }),
            Err(failure) => finish(
                global.fail(&self.limiter, host, &request, failure),
                local_fields,
            ),
        }
    }

    /// The service answered `pending` with gRPC `status` (0 = OK) and a `size`-byte message.
    pub fn on_response(
        &self,
        host: &(impl Host + ?Sized),
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
        let decision = global.decide(
            &self.limiter,
            host,
            &pending.request,
            &pending.rules,
            answer,
        );
        finish(decision, pending.local_fields)
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
        Decision::Limit(reply) => Step::Reply(reply),
    }
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
