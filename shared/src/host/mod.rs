//! The thin host abstraction filters are written against. [`ProxyWasmHost`] is its one
//! implementation over proxy-wasm; [`FakeHost`] is the in-memory one native tests use.
//!
//! Every method takes `&self`: proxy-wasm host calls act on the "current" context, and the fake
//! keeps its state in cells, so filter code can hold `&dyn Host` or `&impl Host` freely.

mod fake;
mod proxy_wasm;
mod random_pool;

pub use self::proxy_wasm::ProxyWasmHost;
pub use fake::{FakeHost, HttpCall, SharedStore};

use crate::reply::LocalReply;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a shared-data write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedDataError {
    /// Another worker wrote the key after our read: read again and retry.
    CasMismatch,
    /// The host refused for another reason (for example the key space is exhausted).
    Failed,
}

/// The kinds of metric `define_metric` creates; the names follow [`crate::metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// A failed host call that filters report instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

pub trait Host {
    // --- request/response headers of the current HTTP stream ---
    fn request_header(&self, name: &str) -> Option<String>;
    fn request_headers(&self) -> Vec<(String, String)>;
    /// Replaces every value of `name`; `None` removes the header.
    fn set_request_header(&self, name: &str, value: Option<&str>);
    fn add_request_header(&self, name: &str, value: &str);
    fn response_header(&self, name: &str) -> Option<String>;
    fn set_response_header(&self, name: &str, value: Option<&str>);
    fn add_response_header(&self, name: &str, value: &str);

    // --- Envoy attributes (`source.address`, `xds.route_name`, …) and filter state ---
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    fn set_property(&self, path: &[&str], value: &[u8]);

    // --- shared data: one store per VM id, seen by every worker thread ---
    /// The value and its CAS token; `(None, None)` when the key was never written.
    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes `value`; with `cas = Some(token)` fails with `CasMismatch` if another write
    /// happened since the read that returned `token`.
    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError>;

    // --- time, randomness ---
    fn now(&self) -> SystemTime;
    fn random_bytes(&self, buf: &mut [u8]);

    // --- metrics ---
    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment_metric(&self, id: u32, delta: i64);
    fn record_metric(&self, id: u32, value: u64);

    // --- streams decided later (from a callout response or a tick) ---
    /// Makes the stream with `context_id` current, so the header and reply calls that follow
    /// act on it; false if that stream is gone.
    fn enter_stream(&self, context_id: u32) -> bool;
    /// Lets the current (paused) request go on to the next filter.
    fn resume_request(&self);

    // --- replies and callouts ---
    /// Ends the stream with `reply`; the filter then returns `Action::Pause`.
    fn send_local_reply(&self, reply: &LocalReply);
    /// Starts an HTTP call to Envoy cluster `cluster`; the answer arrives in
    /// `on_http_call_response` with the returned token.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError>;
    /// Starts a unary gRPC call through Envoy cluster `cluster`.
    fn dispatch_grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, HostError>;
    /// Headers of the HTTP call response being delivered right now.
    fn http_call_response_headers(&self) -> Vec<(String, String)>;
    /// Body of the HTTP call response being delivered right now.
    fn http_call_response_body(&self, size: usize) -> Option<Vec<u8>>;
    /// Message of the gRPC call response being delivered right now.
    fn grpc_call_response_message(&self, size: usize) -> Option<Vec<u8>>;
}

/// Milliseconds since the Unix epoch; 0 for a clock before 1970.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch; 0 for a clock before 1970.
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
