//! [`Policy`]: one filter's behaviour against [`Host`], with no proxy-wasm in it. The glue in
//! [`crate::module`] turns any policy into a Proxy-Wasm module; the gateway module composes
//! several policies over one request view.
//!
//! A stream's life: `on_request` once, then, if it paused, either `on_grpc_call_response`
//! (callouts the stream made) or `on_wake` (after a root event named it), until the flow is
//! no longer `Pause`; `on_response` for the upstream's or the local reply's headers;
//! `on_log` once the last byte went out (or the stream was reset); `on_stream_end` when Envoy
//! drops it.

use crate::config::ConfigError;
use crate::flow::Flow;
use crate::host::Host;
use crate::request::RequestView;
use std::time::Duration;

pub trait Policy: Sized + 'static {
    /// The module's name in log lines: `wasmgate <NAME>: …`.
    const NAME: &'static str;
    /// What a request keeps between callbacks.
    type Stream;

    /// Parses and compiles the plugin configuration; the error's field is the full path to
    /// print (so a gateway section prefixes its name).
    fn configure(host: &(impl Host + ?Sized), bytes: Option<&[u8]>) -> Result<Self, ConfigError>;

    /// How often the root context ticks.
    fn tick_period(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Called once, when the configuration is dropped: replaced (by the same root context or,
    /// after an ECDS / `WasmPlugin` change, by a new one) and no stream uses it any more. What
    /// it batches must go out here.
    fn retire(&self, _host: &(impl Host + ?Sized)) {}

    fn new_stream(&self, context_id: u32) -> Self::Stream;

    fn on_request(
        &self,
        host: &(impl Host + ?Sized),
        request: &mut RequestView,
        stream: &mut Self::Stream,
    ) -> Flow;

    /// The response headers (of the upstream or of a local reply).
    fn on_response(&self, _host: &(impl Host + ?Sized), _stream: &mut Self::Stream) {}

    /// The stream is complete (Envoy's access-log moment): its response, local or upstream, is
    /// sent. `request` is the view with every stage's writes and notes.
    fn on_log(
        &self,
        _host: &(impl Host + ?Sized),
        _request: &RequestView,
        _stream: &mut Self::Stream,
    ) {
    }

    /// Periodic work; returns the paused streams that can go on now.
    fn on_tick(&self, _host: &(impl Host + ?Sized)) -> Vec<u32> {
        Vec::new()
    }

    /// The answer to an HTTP callout the root made; returns the paused streams it settles.
    fn on_http_call_response(
        &self,
        _host: &(impl Host + ?Sized),
        _token: u32,
        _body_size: usize,
    ) -> Vec<u32> {
        Vec::new()
    }

    /// A paused stream named by `on_tick` or `on_http_call_response`, made current again.
    fn on_wake(
        &self,
        _host: &(impl Host + ?Sized),
        _request: &mut RequestView,
        _stream: &mut Self::Stream,
    ) -> Flow {
        Flow::Continue
    }

    /// The answer to a gRPC callout this stream made.
    fn on_grpc_call_response(
        &self,
        _host: &(impl Host + ?Sized),
        _request: &mut RequestView,
        _stream: &mut Self::Stream,
        _token: u32,
        _status: u32,
        _size: usize,
    ) -> Flow {
        Flow::Pause
    }

    /// The gRPC call a paused stream waits for, if any. The glue needs it for calls made
    /// during `on_wake`: proxy-wasm delivers their answers to the root context.
    fn awaited_call(&self, _stream: &Self::Stream) -> Option<u32> {
        None
    }

    /// The stream is gone: forget what was kept for it outside `Self::Stream`.
    fn on_stream_end(&self, _stream: &mut Self::Stream) {}
}
