//! The tracing policy: every request leaves with one consistent trace context (W3C and/or B3)
//! and a request id; the response gets the configured trace and request id headers.

use crate::config::{RawTracingConfig, TracingConfig};
use crate::metrics::TracingMetrics;
use crate::propagation;
use wasmgate_shared::{config, ConfigError, Flow, Host, Policy, RequestView};

pub struct Tracing {
    config: TracingConfig,
    metrics: TracingMetrics,
}

/// The response headers a request's trace context asks for, sent on whatever reply it gets.
pub type TraceReply = Vec<(String, String)>;

impl Tracing {
    pub fn compile(
        host: &(impl Host + ?Sized),
        raw: RawTracingConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            config: raw.compile()?,
            metrics: TracingMetrics::define(host),
        })
    }
}

impl Policy for Tracing {
    const NAME: &'static str = "tracing";
    type Stream = TraceReply;

    fn configure(host: &(impl Host + ?Sized), bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        config::parse(bytes)
            .and_then(|raw| Self::compile(host, raw))
            .map_err(|e| e.within(Self::NAME))
    }

    fn new_stream(&self, _context_id: u32) -> TraceReply {
        Vec::new()
    }

    fn on_request(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut TraceReply,
    ) -> Flow {
        let plan = propagation::plan(&self.config, request.headers(), host);
        propagation::apply_request(&plan, request, host);
        self.metrics.record(&plan);
        *stream = plan.response_headers;
        Flow::Continue
    }

    fn on_response(&self, host: &(impl Host + ?Sized), stream: &mut TraceReply) {
        propagation::apply_response(stream, host);
    }

    /// Counters reach Envoy on the tick: at most ~1 s late, no metric host call per request.
    fn on_tick(&self, host: &(impl Host + ?Sized)) -> Vec<u32> {
        self.metrics.flush(host);
        Vec::new()
    }

    fn retire(&self, host: &(impl Host + ?Sized)) {
        self.metrics.flush(host);
    }
}
