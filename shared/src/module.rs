//! The one Proxy-Wasm glue of every wasmgate module: any [`Policy`] becomes a root context
//! and stream contexts. A module crate is one line:
//! `proxy_wasm::main! {{ wasmgate_shared::module::install::<Policy>(); }}`.
//!
//! The glue owns what a paused stream needs to go on (its request view and policy state), so a
//! root event (a tick, a JWKS answer) can finish a stream the policy names.
//!
//! A stream woken by a root event may pause again on a gRPC call (the gateway's rate-limit
//! service after authn's key wait). The SDK files that call under the root context, whatever
//! the effective context, so its answer reaches [`Root`]; the root hands it to the stream.

use crate::flow::Flow;
use crate::host::ProxyWasmHost;
use crate::policy::Policy;
use crate::request::RequestView;
use crate::Host;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Deref;
use std::rc::Rc;

/// Registers `P` as the module's root context; call it from `proxy_wasm::main!`.
pub fn install<P: Policy>() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root::<P> {
            policy: None,
            paused: Rc::default(),
            calls: Rc::default(),
        })
    });
}

/// The policy of one configuration, shared by its root context and the streams it started, and
/// retired when the last of them lets go. A change through ECDS or a `WasmPlugin` starts a new
/// root context in the same VM; Envoy deletes the old one once its streams have ended, without
/// a `proxy_on_done` (the modules do not export it: scripts/prune_exports.py). Retiring on drop
/// sends what the policy batched since its last tick (counters, spans) instead of losing it.
struct Live<P: Policy>(P);

impl<P: Policy> Deref for Live<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}

impl<P: Policy> Drop for Live<P> {
    fn drop(&mut self) {
        self.0.retire(&ProxyWasmHost);
        log::info!(
            "wasmgate {}: configuration retired (replaced, or Envoy is stopping)",
            P::NAME
        );
    }
}

/// One request as the policy sees it between callbacks.
struct Exchange<S> {
    request: RequestView,
    stream: S,
}

type Shared<S> = Rc<RefCell<Exchange<S>>>;
/// Paused streams by context id, for root events that let them go on.
type Paused<S> = Rc<RefCell<HashMap<u32, Shared<S>>>>;
/// gRPC calls made by streams during a wake: call token → stream context id.
type RootCalls = Rc<RefCell<HashMap<u32, u32>>>;

struct Root<P: Policy> {
    policy: Option<Rc<Live<P>>>,
    paused: Paused<P::Stream>,
    calls: RootCalls,
}

impl<P: Policy> Root<P> {
    /// Finishes each named stream that is still paused, on its own stream context.
    fn wake(&mut self, ids: Vec<u32>) {
        for id in ids {
            self.on_stream(id, |policy, host, request, stream| {
                policy.on_wake(host, request, stream)
            });
        }
    }

    /// Runs `step` on paused stream `id` made current, and acts on its flow.
    fn on_stream(
        &mut self,
        id: u32,
        step: impl FnOnce(&P, &ProxyWasmHost, &mut RequestView, &mut P::Stream) -> Flow,
    ) {
        let Some(policy) = self.policy.clone() else {
            return;
        };
        let host = ProxyWasmHost;
        let Some(exchange) = self.paused.borrow().get(&id).cloned() else {
            return;
        };
        if !host.enter_stream(id) {
            self.paused.borrow_mut().remove(&id);
            return; // the stream is gone
        }
        let Ok(mut ex) = exchange.try_borrow_mut() else {
            return;
        };
        let Exchange { request, stream } = &mut *ex;
        let flow = step(&policy, &host, request, stream);
        if resumed(&host, flow) {
            self.paused.borrow_mut().remove(&id);
        } else if let Some(token) = policy.awaited_call(stream) {
            self.calls.borrow_mut().insert(token, id);
        }
    }
}

/// Acts on the flow of a stream that was paused; `false` if it stays paused.
fn resumed(host: &ProxyWasmHost, flow: Flow) -> bool {
    match flow {
        Flow::Continue => host.resume_request(),
        Flow::Reply(reply) => host.send_local_reply(&reply),
        Flow::Pause => return false,
    }
    true
}

impl<P: Policy> Context for Root<P> {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let Some(id) = self.calls.borrow_mut().remove(&token) else {
            return;
        };
        self.on_stream(id, |policy, host, request, stream| {
            policy.on_grpc_call_response(host, request, stream, token, status, size)
        });
    }

    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let Some(policy) = self.policy.clone() else {
            return;
        };
        let ids = policy.on_http_call_response(&ProxyWasmHost, token, body_size);
        self.wake(ids);
    }
}

impl<P: Policy> RootContext for Root<P> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration();
        let host = ProxyWasmHost;
        match P::configure(&host, bytes.as_deref()) {
            Ok(policy) => {
                self.set_tick_period(policy.tick_period());
                // The one replaced is retired once its paused streams are done with it too.
                self.policy = Some(Rc::new(Live(policy)));
                true
            }
            Err(err) => {
                log::error!("wasmgate {}: invalid plugin configuration: {err}", P::NAME);
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(policy) = self.policy.clone() else {
            return;
        };
        let ids = policy.on_tick(&ProxyWasmHost);
        self.wake(ids);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(StreamContext::<P> {
            id: context_id,
            policy: self.policy.clone()?,
            paused: Rc::clone(&self.paused),
            calls: Rc::clone(&self.calls),
            exchange: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct StreamContext<P: Policy> {
    id: u32,
    policy: Rc<Live<P>>,
    paused: Paused<P::Stream>,
    calls: RootCalls,
    exchange: Option<Shared<P::Stream>>,
}

impl<P: Policy> Context for StreamContext<P> {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let Some(exchange) = &self.exchange else {
            return;
        };
        let Ok(mut ex) = exchange.try_borrow_mut() else {
            return;
        };
        let host = ProxyWasmHost;
        let Exchange { request, stream } = &mut *ex;
        let flow = self
            .policy
            .on_grpc_call_response(&host, request, stream, token, status, size);
        if resumed(&host, flow) {
            self.paused.borrow_mut().remove(&self.id);
        }
    }
}

impl<P: Policy> HttpContext for StreamContext<P> {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let host = ProxyWasmHost;
        let mut request = RequestView::unjudged(host.request_headers());
        let mut stream = self.policy.new_stream(self.id);
        let flow = self.policy.on_request(&host, &mut request, &mut stream);
        let exchange = Rc::new(RefCell::new(Exchange { request, stream }));
        self.exchange = Some(Rc::clone(&exchange));
        match flow {
            Flow::Continue => Action::Continue,
            Flow::Reply(reply) => {
                host.send_local_reply(&reply);
                Action::Pause
            }
            Flow::Pause => {
                self.paused.borrow_mut().insert(self.id, exchange);
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if let Some(Ok(mut ex)) = self.exchange.as_ref().map(|e| e.try_borrow_mut()) {
            self.policy.on_response(&ProxyWasmHost, &mut ex.stream);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(Ok(mut ex)) = self.exchange.as_ref().map(|e| e.try_borrow_mut()) {
            let Exchange { request, stream } = &mut *ex;
            self.policy.on_log(&ProxyWasmHost, request, stream);
        }
    }
}

impl<P: Policy> Drop for StreamContext<P> {
    fn drop(&mut self) {
        if let Ok(mut paused) = self.paused.try_borrow_mut() {
            paused.remove(&self.id);
        }
        // The stream is gone: an answer to a call it made has nowhere to go.
        if let Ok(mut calls) = self.calls.try_borrow_mut() {
            calls.retain(|_, stream| *stream != self.id);
        }
        if let Some(Ok(mut ex)) = self.exchange.as_ref().map(|e| e.try_borrow_mut()) {
            self.policy.on_stream_end(&mut ex.stream);
        }
    }
}
