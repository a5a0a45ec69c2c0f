//! wasmgate authn filter: proxy-wasm wiring only; the logic lives in plain modules.

mod config;
pub mod fast;

use config::{AuthnConfig, RawAuthnConfig};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AuthnRoot::default()) });
}}

#[derive(Default)]
struct AuthnRoot {
    config: Option<Rc<AuthnConfig>>,
}

impl Context for AuthnRoot {}

impl RootContext for AuthnRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration();
        self.config =
            wasmgate_shared::config::load("authn", bytes.as_deref(), |raw: RawAuthnConfig| {
                raw.compile()
            })
            .map(Rc::new);
        self.config.is_some()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(AuthnStream { _config: config }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AuthnStream {
    _config: Rc<AuthnConfig>,
}

impl Context for AuthnStream {}

impl HttpContext for AuthnStream {}
