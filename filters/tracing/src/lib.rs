//! wasmgate tracing filter: proxy-wasm wiring only; the logic lives in plain modules.
//! Every request leaves with one consistent trace context (W3C and/or B3) and a request id.

pub mod b3;
pub mod config;
pub mod context;
pub mod hex;
pub mod metrics;
pub mod propagation;
pub mod request_id;
pub mod sampling;
pub mod traceparent;
pub mod tracestate;

use config::{RawTracingConfig, TracingConfig};
use metrics::TracingMetrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use std::time::Duration;
use wasmgate_shared::host::ProxyWasmHost;
use wasmgate_shared::Host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TracingRoot::default()) });
}}

#[derive(Default)]
struct TracingRoot {
    config: Option<Rc<TracingConfig>>,
    /// Shared with every stream; flushed to the host on each tick.
    metrics: Option<Rc<TracingMetrics>>,
}

impl Context for TracingRoot {}

impl RootContext for TracingRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration();
        self.config =
            wasmgate_shared::config::load("tracing", bytes.as_deref(), |raw: RawTracingConfig| {
                raw.compile()
            })
            .map(Rc::new);
        if self.metrics.is_none() {
            self.metrics = Some(Rc::new(TracingMetrics::define(&ProxyWasmHost)));
        }
        // Counters reach Envoy on the tick: at most ~1 s late, no metric host call per request.
        self.set_tick_period(Duration::from_secs(1));
        self.config.is_some()
    }

    fn on_tick(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.flush(&ProxyWasmHost);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TracingStream {
            config: self.config.clone()?,
            metrics: self.metrics.clone()?,
            response_headers: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct TracingStream {
    config: Rc<TracingConfig>,
    metrics: Rc<TracingMetrics>,
    /// Filled on the request, sent on the response.
    response_headers: Vec<(String, String)>,
}

impl Context for TracingStream {}

impl HttpContext for TracingStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let host = ProxyWasmHost;
        let plan = propagation::plan(&self.config, &host.request_headers(), &host);
        propagation::apply_request(&plan, &host);
        self.metrics.record(&plan);
        self.response_headers = plan.response_headers;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        propagation::apply_response(&self.response_headers, &ProxyWasmHost);
        Action::Continue
    }
}
