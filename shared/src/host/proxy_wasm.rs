//! [`Host`] over the proxy-wasm ABI: the only place wasmgate calls `proxy_wasm::hostcalls`.
//! A host call that fails is logged at debug level and turned into "absent", never a panic.

use super::random_pool::RandomPool;
use super::{Host, HostError, MetricKind, SharedDataError};
use crate::reply::LocalReply;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};
use std::time::{Duration, SystemTime};

thread_local! {
    // The VM is single-threaded; one pool per VM.
    static RANDOM_POOL: std::cell::RefCell<RandomPool> = const { std::cell::RefCell::new(RandomPool::new()) };
}

/// Zero-sized: the host knows which context is current.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProxyWasmHost;

fn ok_or_log<T>(what: &str, result: Result<T, Status>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(status) => {
            log::debug!("host call {what} failed: {status:?}");
            None
        }
    }
}

// Header values may hold any byte (HTTP allows obs-text such as Latin-1), and the SDK's
// `get_map` / `get_map_value` unwrap a UTF-8 conversion: one such header from a client would
// panic and kill the VM for every later request on that worker. So values are read as bytes
// and converted lossily. (Names are tokens, which Envoy's codecs already enforce.)
fn header_value(map: MapType, name: &str) -> Option<String> {
    ok_or_log("get_map_value", hostcalls::get_map_value_bytes(map, name))
        .flatten()
        .map(|bytes| String::from_utf8(bytes).unwrap_or_else(|e| lossy(e.as_bytes())))
}

fn header_map(map: MapType) -> Vec<(String, String)> {
    ok_or_log("get_map", hostcalls::get_map_bytes(map))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, bytes)| {
            let value = String::from_utf8(bytes).unwrap_or_else(|e| lossy(e.as_bytes()));
            (name, value)
        })
        .collect()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Host for ProxyWasmHost {
    fn request_header(&self, name: &str) -> Option<String> {
        header_value(MapType::HttpRequestHeaders, name)
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        header_map(MapType::HttpRequestHeaders)
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        ok_or_log(
            "set_map_value",
            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value),
        );
    }

    fn add_request_header(&self, name: &str, value: &str) {
        ok_or_log(
            "add_map_value",
            hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value),
        );
    }

    fn response_header(&self, name: &str) -> Option<String> {
        header_value(MapType::HttpResponseHeaders, name)
    }

    fn set_response_header(&self, name: &str, value: Option<&str>) {
        ok_or_log(
            "set_map_value",
            hostcalls::set_map_value(MapType::HttpResponseHeaders, name, value),
        );
    }

    fn add_response_header(&self, name: &str, value: &str) {
        ok_or_log(
            "add_map_value",
            hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value),
        );
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        ok_or_log("get_property", hostcalls::get_property(path.to_vec())).flatten()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) {
        ok_or_log(
            "set_property",
            hostcalls::set_property(path.to_vec(), Some(value)),
        );
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        ok_or_log("get_shared_data", hostcalls::get_shared_data(key)).unwrap_or((None, None))
    }

    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SharedDataError::CasMismatch),
            Err(status) => {
                log::debug!("host call set_shared_data failed: {status:?}");
                Err(SharedDataError::Failed)
            }
        }
    }

    fn now(&self) -> SystemTime {
        ok_or_log("get_current_time", hostcalls::get_current_time())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        RANDOM_POOL.with(|pool| {
            pool.borrow_mut().fill(buf, |block| {
                // WASI `random_get`, which Envoy serves from its CSPRNG.
                if getrandom::fill(block).is_err() {
                    log::warn!("random_get failed; using the clock as entropy");
                    let seed = super::unix_nanos(self.now());
                    for (i, b) in block.iter_mut().enumerate() {
                        *b = (seed.rotate_left((i % 64) as u32) as u8) ^ (i as u8);
                    }
                }
            })
        });
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        ok_or_log("define_metric", hostcalls::define_metric(kind, name))
    }

    fn increment_metric(&self, id: u32, delta: i64) {
        ok_or_log("increment_metric", hostcalls::increment_metric(id, delta));
    }

    fn record_metric(&self, id: u32, value: u64) {
        ok_or_log("record_metric", hostcalls::record_metric(id, value));
    }

    fn enter_stream(&self, context_id: u32) -> bool {
        hostcalls::set_effective_context(context_id).is_ok()
    }

    fn resume_request(&self) {
        ok_or_log("resume_http_request", hostcalls::resume_http_request());
    }

    fn send_local_reply(&self, reply: &LocalReply) {
        let body = reply.body();
        ok_or_log(
            "send_http_response",
            hostcalls::send_http_response(
                u32::from(reply.status),
                reply.all_headers().collect(),
                Some(&body),
            ),
        );
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, Vec::new(), timeout)
            .map_err(|status| HostError(format!("dispatch_http_call to {cluster}: {status:?}")))
    }

    fn dispatch_grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        hostcalls::dispatch_grpc_call(cluster, service, method, Vec::new(), Some(message), timeout)
            .map_err(|status| HostError(format!("dispatch_grpc_call to {cluster}: {status:?}")))
    }

    fn http_call_response_headers(&self) -> Vec<(String, String)> {
        header_map(MapType::HttpCallResponseHeaders)
    }

    fn http_call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        ok_or_log(
            "get_buffer",
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size),
        )
        .flatten()
    }

    fn grpc_call_response_message(&self, size: usize) -> Option<Vec<u8>> {
        ok_or_log(
            "get_buffer",
            hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, size),
        )
        .flatten()
    }
}
