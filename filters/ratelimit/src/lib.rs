//! wasmgate ratelimit filter: proxy-wasm wiring only; the logic lives in plain modules.
//! `on_configure` compiles the rules and creates their buckets in shared data; each request is
//! one [`Plugin::on_request`], and, for global rules, one [`Plugin::on_response`].

pub mod bucket;
pub mod config;
pub mod global;
pub mod global_config;
pub mod headers;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod plugin;
pub mod rls;
mod siphash;
pub mod table;

use config::RawRatelimitConfig;
use global::Allowed;
use plugin::{Pending, Plugin, Step};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use std::time::Duration;
use wasmgate_shared::host::ProxyWasmHost;
use wasmgate_shared::Host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RatelimitRoot::default()) });
}}

#[derive(Default)]
struct RatelimitRoot {
    plugin: Option<Rc<Plugin>>,
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
        if let Some(old) = &self.plugin {
            old.flush_metrics(&ProxyWasmHost);
        }
        self.plugin = Some(Rc::new(Plugin::configure(&ProxyWasmHost, config)));
        // Request counters are batched and reach Envoy on the tick, at most ~1 s late.
        self.set_tick_period(Duration::from_secs(1));
        true
    }

    fn on_tick(&mut self) {
        if let Some(plugin) = &self.plugin {
            plugin.flush_metrics(&ProxyWasmHost);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let plugin = self.plugin.clone()?;
        Some(Box::new(RatelimitStream {
            plugin,
            pending: None,
            allowed: Allowed::default(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct RatelimitStream {
    plugin: Rc<Plugin>,
    /// The rate-limit service call this paused request waits for.
    pending: Option<Pending>,
    /// Response fields for an admitted request (`on_allowed`, the service's headers).
    allowed: Allowed,
}

impl RatelimitStream {
    /// Acts on a step; `true` if the request goes on now.
    fn apply(&mut self, step: Step) -> bool {
        match step {
            Step::Continue(allowed) => {
                for (name, value) in &allowed.request_headers {
                    ProxyWasmHost.set_request_header(name, Some(value));
                }
                self.allowed = allowed;
                true
            }
            Step::Reply(reply) => {
                ProxyWasmHost.send_local_reply(&reply);
                false
            }
            Step::Wait(pending) => {
                self.pending = Some(pending);
                false
            }
        }
    }
}

impl Context for RatelimitStream {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let Some(pending) = self.pending.take_if(|p| p.token == token_id) else {
            return;
        };
        let step = self
            .plugin
            .on_response(&ProxyWasmHost, pending, status_code, response_size);
        if self.apply(step) {
            self.resume_http_request();
        }
    }
}

impl HttpContext for RatelimitStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let step = self.plugin.on_request(&ProxyWasmHost);
        if self.apply(step) {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in self.allowed.fields.drain(..) {
            ProxyWasmHost.set_response_header(name, Some(&value));
        }
        for (name, value) in self.allowed.response_headers.drain(..) {
            ProxyWasmHost.set_response_header(&name, Some(&value));
        }
        Action::Continue
    }
}
