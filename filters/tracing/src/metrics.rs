//! The filter's counters, defined once in the root context. They are batched: a request only
//! bumps a local count, and the root context's tick ([`TracingMetrics::flush`], every second)
//! hands the totals to the host, so a request makes no metric host calls.

use crate::propagation::{Origin, Plan};
use wasmgate_shared::metrics::BatchedCounter;
use wasmgate_shared::Host;

#[derive(Debug)]
pub struct TracingMetrics {
    continued: BatchedCounter,
    started: BatchedCounter,
    invalid_incoming: BatchedCounter,
    sampled: BatchedCounter,
}

impl TracingMetrics {
    /// `wasmgate_tracing_traces_continued`, `_traces_started`, `_incoming_invalid`,
    /// `_traces_sampled`.
    pub fn define(host: &(impl Host + ?Sized)) -> Self {
        Self {
            continued: BatchedCounter::new(host, "tracing", "traces_continued"),
            started: BatchedCounter::new(host, "tracing", "traces_started"),
            invalid_incoming: BatchedCounter::new(host, "tracing", "incoming_invalid"),
            sampled: BatchedCounter::new(host, "tracing", "traces_sampled"),
        }
    }

    /// Counts one request's outcome locally (no host call).
    pub fn record(&self, plan: &Plan) {
        match plan.origin {
            Origin::Continued => self.continued.inc(),
            Origin::Started => self.started.inc(),
        }
        if plan.invalid_incoming {
            self.invalid_incoming.inc();
        }
        if plan.context.sampled {
            self.sampled.inc();
        }
    }

    /// Hands every pending count to the host.
    pub fn flush(&self, host: &(impl Host + ?Sized)) {
        for c in [
            &self.continued,
            &self.started,
            &self.invalid_incoming,
            &self.sampled,
        ] {
            c.flush(host);
        }
    }
}
