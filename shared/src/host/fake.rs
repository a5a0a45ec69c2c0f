//! [`FakeHost`]: an in-memory [`Host`] for native unit tests, built in one line
//! (`FakeHost::new().with_request_header(":path", "/")`). Its [`SharedStore`] can be handed to a
//! second `FakeHost` to simulate two Envoy worker threads on one shared-data store, and can be
//! told to interleave a foreign write before the next compare-and-swap.

use super::{Host, HostError, MetricKind, SharedDataError};
use crate::reply::LocalReply;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs before every write, with the key being written.
type WriteHook = Box<dyn FnMut(&str)>;
type Interleave = Box<dyn FnMut(&mut HashMap<String, (Vec<u8>, u32)>)>;
/// Headers and body of the callout response the filter reads next.
type CallResponse = (Vec<(String, String)>, Option<Vec<u8>>);

#[derive(Default)]
struct StoreInner {
    values: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    before_write: Vec<Interleave>,
    before_each_write: Option<WriteHook>,
    reads: u64,
    writes: u64,
    cas_mismatches: u64,
}

/// Shared data as Envoy keeps it: values with a CAS token that changes on every write.
#[derive(Clone, Default)]
pub struct SharedStore(Rc<RefCell<StoreInner>>);

impl SharedStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the raw map right before the next write, as another worker would.
    pub fn before_next_write(&self, f: impl FnMut(&mut HashMap<String, (Vec<u8>, u32)>) + 'static) {
        self.0.borrow_mut().before_write.push(Box::new(f));
    }

    /// Runs `f(key)` before every write through a host until [`SharedStore::clear_write_hook`]:
    /// a busy worker racing this one. `f` may use this store's `get` and `write`.
    pub fn before_each_write(&self, f: impl FnMut(&str) + 'static) {
        self.0.borrow_mut().before_each_write = Some(Box::new(f));
    }

    pub fn clear_write_hook(&self) {
        self.0.borrow_mut().before_each_write = None;
    }

    /// Reads through a host so far.
    pub fn reads(&self) -> u64 {
        self.0.borrow().reads
    }

    /// Writes `value` as a foreign worker would (bumps the CAS token).
    pub fn write(&self, key: &str, value: &[u8]) {
        let mut inner = self.0.borrow_mut();
        inner.next_cas += 1;
        let cas = inner.next_cas;
        inner.values.insert(key.to_string(), (value.to_vec(), cas));
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().values.get(key).map(|(v, _)| v.clone())
    }

    pub fn len(&self) -> usize {
        self.0.borrow().values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Successful writes so far.
    pub fn writes(&self) -> u64 {
        self.0.borrow().writes
    }

    /// Writes refused with `CasMismatch` so far.
    pub fn cas_mismatches(&self) -> u64 {
        self.0.borrow().cas_mismatches
    }

    fn read(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.0.borrow_mut().reads += 1;
        match self.0.borrow().values.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn compare_and_set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        // The hook runs with the store unborrowed, so it can read and write it.
        let each = self.0.borrow_mut().before_each_write.take();
        if let Some(mut hook) = each {
            hook(key);
            let mut inner = self.0.borrow_mut();
            if inner.before_each_write.is_none() {
                inner.before_each_write = Some(hook);
            }
        }
        let hooks: Vec<Interleave> = std::mem::take(&mut self.0.borrow_mut().before_write);
        for mut hook in hooks {
            let mut inner = self.0.borrow_mut();
            hook(&mut inner.values);
            // A foreign write always bumps the token, as Envoy does.
            inner.next_cas += 1;
            let next = inner.next_cas;
            for entry in inner.values.values_mut() {
                entry.1 = entry.1.max(next);
            }
        }
        let mut inner = self.0.borrow_mut();
        let current = inner.values.get(key).map(|(_, c)| *c);
        // As Envoy: a CAS of 0/None always writes, and so does any CAS on a missing key (creating
        // a key is not atomic in Envoy); otherwise the token must equal the current one.
        if let (Some(expected), Some(actual)) = (cas, current) {
            if expected != 0 && expected != actual {
                inner.cas_mismatches += 1;
                return Err(SharedDataError::CasMismatch);
            }
        }
        inner.next_cas += 1;
        let next = inner.next_cas;
        inner.values.insert(key.to_string(), (value.to_vec(), next));
        inner.writes += 1;
        Ok(())
    }
}

/// An HTTP or gRPC call a filter dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
    /// `Some((service, method))` for gRPC calls.
    pub grpc: Option<(String, String)>,
}

#[derive(Default)]
struct Metric {
    kind: Option<MetricKind>,
    name: String,
    value: i64,
}

/// The in-memory host. Clock starts at 2026-01-01T00:00:00Z; randomness is a seeded
/// xorshift so tests are repeatable (override with `with_seed`).
pub struct FakeHost {
    request_headers: RefCell<Vec<(String, String)>>,
    response_headers: RefCell<Vec<(String, String)>>,
    properties: RefCell<HashMap<Vec<String>, Vec<u8>>>,
    shared: SharedStore,
    time: Cell<SystemTime>,
    rng: Cell<u64>,
    metrics: RefCell<Vec<Metric>>,
    reply: RefCell<Option<LocalReply>>,
    calls: RefCell<Vec<HttpCall>>,
    call_fails: Cell<bool>,
    call_response: RefCell<CallResponse>,
    current_stream: Cell<Option<u32>>,
    gone_streams: RefCell<Vec<u32>>,
    resumed: RefCell<Vec<u32>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self {
            request_headers: RefCell::default(),
            response_headers: RefCell::default(),
            properties: RefCell::default(),
            shared: SharedStore::new(),
            time: Cell::new(UNIX_EPOCH + Duration::from_secs(1_767_225_600)),
            rng: Cell::new(0x9E37_79B9_7F4A_7C15),
            metrics: RefCell::default(),
            reply: RefCell::default(),
            calls: RefCell::default(),
            call_fails: Cell::new(false),
            call_response: RefCell::default(),
            current_stream: Cell::new(None),
            gone_streams: RefCell::default(),
            resumed: RefCell::default(),
        }
    }
}

fn lower(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn set_in(map: &RefCell<Vec<(String, String)>>, name: &str, value: Option<&str>) {
    let name = lower(name);
    let mut map = map.borrow_mut();
    map.retain(|(k, _)| *k != name);
    if let Some(v) = value {
        map.push((name, v.to_string()));
    }
}

fn get_in(map: &RefCell<Vec<(String, String)>>, name: &str) -> Option<String> {
    let name = lower(name);
    map.borrow()
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.clone())
}

impl FakeHost {
    pub fn new() -> Self {
        Self::default()
    }

    // --- builders ---
    pub fn with_request_header(self, name: &str, value: &str) -> Self {
        self.add_request_header(name, value);
        self
    }

    /// `:method`, `:path`, `:authority` in one go.
    pub fn with_request(self, method: &str, path: &str, authority: &str) -> Self {
        self.with_request_header(":method", method)
            .with_request_header(":path", path)
            .with_request_header(":authority", authority)
    }

    pub fn with_response_header(self, name: &str, value: &str) -> Self {
        self.add_response_header(name, value);
        self
    }

    pub fn with_property(self, path: &[&str], value: &[u8]) -> Self {
        self.set_property(path, value);
        self
    }

    /// Shares `store` with other fake hosts: each one is a worker thread of the same Envoy.
    pub fn with_shared_store(mut self, store: SharedStore) -> Self {
        self.shared = store;
        self
    }

    pub fn with_time(self, time: SystemTime) -> Self {
        self.time.set(time);
        self
    }

    pub fn with_seed(self, seed: u64) -> Self {
        self.rng.set(seed | 1);
        self
    }

    /// Makes every dispatched call fail as Envoy does for an unknown cluster.
    pub fn with_failing_calls(self) -> Self {
        self.call_fails.set(true);
        self
    }

    // --- test controls ---
    pub fn set_time(&self, time: SystemTime) {
        self.time.set(time);
    }

    pub fn advance(&self, by: Duration) {
        self.time.set(self.time.get() + by);
    }

    /// Goes back in time (for clock-skew tests).
    pub fn rewind(&self, by: Duration) {
        self.time.set(self.time.get() - by);
    }

    pub fn shared_store(&self) -> SharedStore {
        self.shared.clone()
    }

    /// The response the next `http_call_response_*` / `grpc_call_response_message` read returns.
    pub fn set_call_response(&self, headers: &[(&str, &str)], body: Option<&[u8]>) {
        *self.call_response.borrow_mut() = (
            headers
                .iter()
                .map(|(k, v)| (lower(k), v.to_string()))
                .collect(),
            body.map(<[u8]>::to_vec),
        );
    }

    /// Starts a new request on the same host: clears headers and the local reply,
    /// keeps shared data, metrics, time and calls.
    pub fn reset_stream(&self) {
        self.request_headers.borrow_mut().clear();
        self.response_headers.borrow_mut().clear();
        self.reply.borrow_mut().take();
    }

    /// Marks a stream as ended by the client: `enter_stream` on it fails from now on.
    pub fn end_stream(&self, context_id: u32) {
        self.gone_streams.borrow_mut().push(context_id);
    }

    // --- inspection ---
    /// The streams resumed so far, by context id (0 = no stream entered), in order.
    pub fn resumed_streams(&self) -> Vec<u32> {
        self.resumed.borrow().clone()
    }

    pub fn local_reply(&self) -> Option<LocalReply> {
        self.reply.borrow().clone()
    }

    pub fn request_header_values(&self, name: &str) -> Vec<String> {
        let name = lower(name);
        self.request_headers
            .borrow()
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every response header set so far, in order.
    pub fn response_headers(&self) -> Vec<(String, String)> {
        self.response_headers.borrow().clone()
    }

    pub fn calls(&self) -> Vec<HttpCall> {
        self.calls.borrow().clone()
    }

    /// A metric's current value by full name; `None` if it was never defined.
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.metrics
            .borrow()
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }

    /// Every defined metric name with its kind.
    pub fn metric_names(&self) -> Vec<(MetricKind, String)> {
        self.metrics
            .borrow()
            .iter()
            .filter_map(|m| m.kind.map(|k| (k, m.name.clone())))
            .collect()
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }
}

impl Host for FakeHost {
    fn request_header(&self, name: &str) -> Option<String> {
        get_in(&self.request_headers, name)
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        self.request_headers.borrow().clone()
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        set_in(&self.request_headers, name, value);
    }

    fn add_request_header(&self, name: &str, value: &str) {
        self.request_headers
            .borrow_mut()
            .push((lower(name), value.to_string()));
    }

    fn response_header(&self, name: &str) -> Option<String> {
        get_in(&self.response_headers, name)
    }

    fn set_response_header(&self, name: &str, value: Option<&str>) {
        set_in(&self.response_headers, name, value);
    }

    fn add_response_header(&self, name: &str, value: &str) {
        self.response_headers
            .borrow_mut()
            .push((lower(name), value.to_string()));
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.properties.borrow().get(&key).cloned()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) {
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.properties.borrow_mut().insert(key, value.to_vec());
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.shared.read(key)
    }

    fn set_shared_data(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        self.shared.compare_and_set(key, value, cas)
    }

    fn now(&self) -> SystemTime {
        self.time.get()
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_random().to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(bytes) {
                *dst = src;
            }
        }
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let mut metrics = self.metrics.borrow_mut();
        if let Some(pos) = metrics.iter().position(|m| m.name == name) {
            return u32::try_from(pos).ok();
        }
        metrics.push(Metric {
            kind: Some(kind),
            name: name.to_string(),
            value: 0,
        });
        u32::try_from(metrics.len() - 1).ok()
    }

    fn increment_metric(&self, id: u32, delta: i64) {
        if let Some(m) = self.metrics.borrow_mut().get_mut(id as usize) {
            m.value += delta;
        }
    }

    fn record_metric(&self, id: u32, value: u64) {
        if let Some(m) = self.metrics.borrow_mut().get_mut(id as usize) {
            m.value = i64::try_from(value).unwrap_or(i64::MAX);
        }
    }

    fn enter_stream(&self, context_id: u32) -> bool {
        self.current_stream.set(Some(context_id));
        !self.gone_streams.borrow().contains(&context_id)
    }

    fn resume_request(&self) {
        self.resumed
            .borrow_mut()
            .push(self.current_stream.get().unwrap_or(0));
    }

    fn send_local_reply(&self, reply: &LocalReply) {
        *self.reply.borrow_mut() = Some(reply.clone());
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        self.record_call(cluster, headers, body, timeout, None)
    }

    fn dispatch_grpc_call(
        &self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        let grpc = Some((service.to_string(), method.to_string()));
        self.record_call(cluster, &[], Some(message), timeout, grpc)
    }

    fn http_call_response_headers(&self) -> Vec<(String, String)> {
        self.call_response.borrow().0.clone()
    }

    fn http_call_response_body(&self, size: usize) -> Option<Vec<u8>> {
        let body = self.call_response.borrow().1.clone()?;
        Some(body.into_iter().take(size).collect())
    }

    fn grpc_call_response_message(&self, size: usize) -> Option<Vec<u8>> {
        self.http_call_response_body(size)
    }
}

impl FakeHost {
    fn record_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
        grpc: Option<(String, String)>,
    ) -> Result<u32, HostError> {
        if self.call_fails.get() {
            return Err(HostError(format!("unknown cluster {cluster}")));
        }
        let mut calls = self.calls.borrow_mut();
        let token = u32::try_from(calls.len() + 1).unwrap_or(u32::MAX);
        calls.push(HttpCall {
            token,
            cluster: cluster.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.map(<[u8]>::to_vec),
            timeout,
            grpc,
        });
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_replaceable() {
        let host = FakeHost::new().with_request_header("X-Id", "1");
        assert_eq!(host.request_header("x-id").as_deref(), Some("1"));
        host.add_request_header("x-id", "2");
        assert_eq!(host.request_header_values("x-id"), vec!["1", "2"]);
        host.set_request_header("x-id", None);
        assert_eq!(host.request_header("x-id"), None);
    }

    #[test]
    fn cas_conflict_between_two_workers() {
        let store = SharedStore::new();
        let a = FakeHost::new().with_shared_store(store.clone());
        let b = FakeHost::new().with_shared_store(store.clone());
        assert_eq!(a.set_shared_data("k", b"1", None), Ok(()));
        let (_, cas_a) = a.shared_data("k");
        let (_, cas_b) = b.shared_data("k");
        assert_eq!(b.set_shared_data("k", b"2", cas_b), Ok(()));
        assert_eq!(
            a.set_shared_data("k", b"3", cas_a),
            Err(SharedDataError::CasMismatch)
        );
        assert_eq!(store.get("k").as_deref(), Some(&b"2"[..]));
        assert_eq!(store.cas_mismatches(), 1);
    }

    #[test]
    fn interleaved_foreign_write_breaks_the_next_cas() {
        let host = FakeHost::new();
        host.set_shared_data("k", b"1", None).unwrap();
        let (_, cas) = host.shared_data("k");
        host.shared_store().before_next_write(|map| {
            map.insert("k".into(), (b"9".to_vec(), 0));
        });
        assert_eq!(
            host.set_shared_data("k", b"2", cas),
            Err(SharedDataError::CasMismatch)
        );
        let (value, cas) = host.shared_data("k");
        assert_eq!(value.as_deref(), Some(&b"9"[..]));
        assert_eq!(host.set_shared_data("k", b"3", cas), Ok(()));
    }

    #[test]
    fn randomness_differs_between_draws_and_seeds() {
        let host = FakeHost::new();
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        host.random_bytes(&mut a);
        host.random_bytes(&mut b);
        assert_ne!(a, b);
        let other = FakeHost::new().with_seed(7);
        let mut c = [0u8; 16];
        other.random_bytes(&mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn metrics_are_defined_once_and_move() {
        let host = FakeHost::new();
        let id = host.define_metric(MetricKind::Counter, "c").unwrap();
        assert_eq!(host.define_metric(MetricKind::Counter, "c"), Some(id));
        host.increment_metric(id, 2);
        assert_eq!(host.metric("c"), Some(2));
    }
}
