//! The filter's counters, defined once in the root context.

use crate::propagation::{Origin, Plan};
use wasmgate_shared::metrics::Metric;
use wasmgate_shared::Host;

#[derive(Debug, Clone, Copy)]
pub struct TracingMetrics {
    continued: Metric,
    started: Metric,
    invalid_incoming: Metric,
    sampled: Metric,
}

impl TracingMetrics {
    /// `wasmgate_tracing_traces_continued`, `_traces_started`, `_incoming_invalid`,
    /// `_traces_sampled`.
    pub fn define(host: &impl Host) -> Self {
        Self {
            continued: Metric::counter(host, "tracing", "traces_continued"),
            started: Metric::counter(host, "tracing", "traces_started"),
            invalid_incoming: Metric::counter(host, "tracing", "incoming_invalid"),
            sampled: Metric::counter(host, "tracing", "traces_sampled"),
        }
    }

    pub fn record(&self, plan: &Plan, host: &impl Host) {
        match plan.origin {
            Origin::Continued => self.continued.inc(host),
            Origin::Started => self.started.inc(host),
        }
        if plan.invalid_incoming {
            self.invalid_incoming.inc(host);
        }
        if plan.context.sampled {
            self.sampled.inc(host);
        }
    }
}
