//! wasmgate ratelimit filter: proxy-wasm wiring only; the logic lives in plain modules.
//! `on_configure` compiles the rules and creates their buckets in shared data; each request is
//! one [`Limiter::decide`].

pub mod bucket;
pub mod config;
pub mod headers;
pub mod keys;
pub mod limiter;
pub mod metrics;
mod siphash;
pub mod table;

use config::RawRatelimitConfig;
use limiter::{Limiter, Verdict};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use wasmgate_shared::host::ProxyWasmHost;
use wasmgate_shared::Host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RatelimitRoot::default()) });
}}

#[derive(Default)]
struct RatelimitRoot {
    limiter: Option<Rc<Limiter>>,
}

impl Context for RatelimitRoot {}

impl RootContext for RatelimitRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration();
        let Some(config) = wasmgate_shared::config::load(
            "ratelimit",
            bytes.as_deref(),
            |raw: RawRatelimitConfig| raw.compile(),
        ) else {
            return false;
        };
        self.limiter = Some(Rc::new(Limiter::configure(&ProxyWasmHost, config)));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let limiter = self.limiter.clone()?;
        Some(Box::new(RatelimitStream {
            limiter,
            response_fields: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct RatelimitStream {
    limiter: Rc<Limiter>,
    /// Rate-limit fields for an admitted request's response (`on_allowed`).
    response_fields: Vec<(&'static str, String)>,
}

impl Context for RatelimitStream {}

impl HttpContext for RatelimitStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        match self.limiter.decide(&ProxyWasmHost) {
            Verdict::Allow(fields) => {
                self.response_fields = fields;
                Action::Continue
            }
            Verdict::Limit(reply) => {
                ProxyWasmHost.send_local_reply(&reply);
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in self.response_fields.drain(..) {
            ProxyWasmHost.set_response_header(name, Some(&value));
        }
        Action::Continue
    }
}
