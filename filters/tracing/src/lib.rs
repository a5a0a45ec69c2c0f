//! wasmgate tracing filter: proxy-wasm wiring only; the logic lives in plain modules.

mod config;

use config::{RawTracingConfig, TracingConfig};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TracingRoot::default()) });
}}

#[derive(Default)]
struct TracingRoot {
    config: Option<Rc<TracingConfig>>,
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
        self.config.is_some()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(TracingStream { _config: config }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct TracingStream {
    _config: Rc<TracingConfig>,
}

impl Context for TracingStream {}

impl HttpContext for TracingStream {}
