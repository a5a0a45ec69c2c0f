//! wasmgate authn filter: proxy-wasm wiring only; the logic lives in plain modules.
//! The root context owns the worker's state (remote keys, token cache, paused requests) and
//! drives remote JWKS refreshes from `on_tick`; streams decide with [`authn::Request`].

mod algorithm;
mod apikey;
mod authn;
mod authz;
mod cache;
mod claims;
mod config;
mod denial;
mod fast;
mod jwks;
mod metrics;
mod remote;
mod source;
mod state;
#[cfg(test)]
mod testkit;
mod token;
mod verifier;

use authn::{Outcome, Request};
use config::{AuthnConfig, RawAuthnConfig};
use metrics::AuthnMetrics;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use state::{Waiter, WorkerState};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use wasmgate_shared::host::{unix_millis, ProxyWasmHost};
use wasmgate_shared::Host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AuthnRoot::default()) });
}}

/// Everything a stream needs, shared with the root context of the same worker.
struct Worker {
    config: AuthnConfig,
    metrics: AuthnMetrics,
    state: RefCell<WorkerState>,
}

impl Worker {
    /// Decides the current stream's request; `may_wait` lets it wait for keys still loading.
    fn decide(&self, host: &ProxyWasmHost, may_wait: bool) -> Outcome {
        let mut state = self.state.borrow_mut();
        Request {
            config: &self.config,
            state: &mut state,
            metrics: &self.metrics,
            host,
            may_wait,
        }
        .decide()
    }
}

#[derive(Default)]
struct AuthnRoot {
    worker: Option<Rc<Worker>>,
    /// Our JWKS fetches in flight: call token → provider index.
    fetches: HashMap<u32, usize>,
}

impl Context for AuthnRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let (Some(w), Some(p)) = (self.worker.clone(), self.fetches.remove(&token)) else {
            return;
        };
        let host = ProxyWasmHost;
        let status = host
            .http_call_response_headers()
            .into_iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        let body = host.http_call_response_body(body_size).unwrap_or_default();
        let (Some(provider), Some(Some(remote))) = (
            w.config.providers.get(p),
            w.state.borrow_mut().remote.get_mut(p).map(Option::take),
        ) else {
            return;
        };
        let mut remote = remote;
        if let Some(cfg) = &provider.remote {
            let now = unix_millis(host.now());
            let result = remote.on_response(
                &host,
                cfg,
                &provider.algorithms,
                status.map(|s| (s, body)),
                now,
            );
            record_fetch(&w, p, &remote, result.installed, result.failed);
        }
        if let Some(slot) = w.state.borrow_mut().remote.get_mut(p) {
            *slot = Some(remote);
        }
        settle_waiters(&w);
    }
}

/// Fetch metrics and the keys-loaded gauge.
fn record_fetch(w: &Worker, p: usize, remote: &remote::RemoteState, installed: bool, failed: bool) {
    let host = ProxyWasmHost;
    if let Some(m) = w.metrics.providers.get(p) {
        if installed {
            m.jwks_fetch_success.inc(&host);
        }
        if failed {
            m.jwks_fetch_failure.inc(&host);
        }
        let inline = w
            .config
            .providers
            .get(p)
            .map_or(0, |pr| pr.inline_keys.key_count());
        let loaded = inline + remote.keys.as_ref().map_or(0, jwks::KeySet::key_count);
        m.keys_loaded.record(&host, loaded as u64);
    }
}

/// Decides every paused request that can be decided now, on its own stream: proxy-wasm lets
/// the root context act on a stream by making it the effective context.
fn settle_waiters(w: &Worker) {
    let host = ProxyWasmHost;
    let ready: Vec<Waiter> = w
        .state
        .borrow_mut()
        .take_ready_waiters(unix_millis(host.now()));
    for waiter in ready {
        if !host.enter_stream(waiter.context_id) {
            continue; // the stream is gone
        }
        match w.decide(&host, false) {
            Outcome::Allow => {
                host.resume_request();
            }
            Outcome::Deny(d) => host.send_local_reply(&d.reply(&w.config.realm)),
            Outcome::InvalidPath(refusal) => host.send_local_reply(&refusal.reply()),
            Outcome::Wait { .. } => {
                host.send_local_reply(&denial::Denial::KeysUnavailable.reply(&w.config.realm))
            }
        }
    }
}

impl RootContext for AuthnRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration();
        let Some(config) =
            wasmgate_shared::config::load("authn", bytes.as_deref(), |raw: RawAuthnConfig| {
                raw.compile()
            })
        else {
            return false;
        };
        let host = ProxyWasmHost;
        let mut seed = [0u8; 8];
        host.random_bytes(&mut seed);
        let metrics = AuthnMetrics::define(&host, &config);
        for (p, m) in config.providers.iter().zip(&metrics.providers) {
            m.keys_loaded
                .record(&host, p.inline_keys.key_count() as u64);
        }
        // Ticks flush metrics; with remote JWKS they also poll shared keys and settle paused
        // requests, which wants a short period.
        let remote = config.providers.iter().any(|p| p.remote.is_some());
        self.set_tick_period(Duration::from_millis(if remote { 100 } else { 1000 }));
        let state = RefCell::new(WorkerState::new(&config, u64::from_le_bytes(seed)));
        self.worker = Some(Rc::new(Worker {
            config,
            metrics,
            state,
        }));
        true
    }

    fn on_tick(&mut self) {
        let Some(w) = self.worker.clone() else { return };
        let host = ProxyWasmHost;
        w.metrics.flush(&host);
        let now = unix_millis(host.now());
        for (p, provider) in w.config.providers.iter().enumerate() {
            let Some(cfg) = &provider.remote else {
                continue;
            };
            let mut state = w.state.borrow_mut();
            let Some(Some(remote)) = state.remote.get_mut(p) else {
                continue;
            };
            let result = remote.poll(&host, cfg, &provider.algorithms, now);
            if let Some(token) = result.dispatched {
                self.fetches.insert(token, p);
            }
            if result.installed || result.failed {
                let remote = &*remote;
                record_fetch(&w, p, remote, false, result.failed);
            }
        }
        settle_waiters(&w);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let worker = self.worker.clone()?;
        Some(Box::new(AuthnStream { worker, context_id }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct AuthnStream {
    worker: Rc<Worker>,
    context_id: u32,
}

impl Context for AuthnStream {}

impl HttpContext for AuthnStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let w = &self.worker;
        let host = ProxyWasmHost;
        match w.decide(&host, true) {
            Outcome::Allow => Action::Continue,
            Outcome::Deny(d) => {
                host.send_local_reply(&d.reply(&w.config.realm));
                Action::Pause
            }
            Outcome::InvalidPath(refusal) => {
                host.send_local_reply(&refusal.reply());
                Action::Pause
            }
            Outcome::Wait {
                provider,
                reason,
                deadline_ms,
            } => {
                let mut state = w.state.borrow_mut();
                let generation = state.generation(provider);
                state.waiters.push(Waiter {
                    context_id: self.context_id,
                    provider,
                    reason,
                    generation,
                    deadline_ms,
                });
                Action::Pause
            }
        }
    }
}

impl Drop for AuthnStream {
    fn drop(&mut self) {
        if let Ok(mut state) = self.worker.state.try_borrow_mut() {
            state.waiters.retain(|w| w.context_id != self.context_id);
        }
    }
}
