//! A real OTLP/HTTP trace receiver on 127.0.0.1 for the span export tests. Each POST to
//! `/v1/traces` is decoded with the `opentelemetry-proto` crate (messages generated from the
//! official OpenTelemetry .proto files), so the module's own message definitions are checked
//! against the specification's, not against themselves.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One decoded span with the resource attributes of the batch it came in.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub span: Span,
    pub resource: Vec<KeyValue>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }

    pub fn resource_attribute(&self, key: &str) -> Option<String> {
        attribute(&self.resource, key)
    }

    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

/// An attribute's value as text (integers in decimal), whatever its kind.
pub fn attribute(list: &[KeyValue], key: &str) -> Option<String> {
    let value = list.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(n) => Some(n.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One export request as it arrived.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub content_type: Option<String>,
    pub spans: usize,
}

pub struct OtlpReceiver {
    server: Arc<tiny_http::Server>,
    port: u16,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    posts: Arc<Mutex<Vec<Post>>>,
    status: Arc<AtomicU16>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Listens on `port` (0 = any free port) and answers 200 with an empty
    /// `ExportTraceServiceResponse` until told otherwise.
    pub fn start(port: u16) -> Self {
        let (server, port) = crate::server::listen(port);
        let spans = Arc::new(Mutex::new(Vec::new()));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, spans, posts, status, stopping) = (
                server.clone(),
                spans.clone(),
                posts.clone(),
                status.clone(),
                stopping.clone(),
            );
            std::thread::spawn(move || {
                while let Ok(mut request) = server.recv() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let mut body = Vec::new();
                    let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
                    let content_type = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("content-type"))
                        .map(|h| h.value.as_str().to_string());
                    let decoded = ExportTraceServiceRequest::decode(body.as_slice())
                        .unwrap_or_else(|e| panic!("undecodable OTLP body: {e}"));
                    let mut received = Vec::new();
                    for rs in decoded.resource_spans {
                        let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                            received.push(ReceivedSpan {
                                span,
                                resource: resource.clone(),
                            });
                        }
                    }
                    if let Ok(mut all) = posts.lock() {
                        all.push(Post {
                            path: request.url().to_string(),
                            content_type,
                            spans: received.len(),
                        });
                    }
                    let code = status.load(Ordering::SeqCst);
                    if code == 200 {
                        if let Ok(mut all) = spans.lock() {
                            all.extend(received);
                        }
                    }
                    let response = tiny_http::Response::from_data(Vec::new())
                        .with_status_code(code)
                        .with_header(
                            tiny_http::Header::from_bytes("content-type", "application/x-protobuf")
                                .unwrap_or_else(|()| panic!("static header")),
                        );
                    let _ = request.respond(response);
                }
            })
        };
        Self {
            server,
            port,
            spans,
            posts,
            status,
            stopping,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The status later exports get (a collector that refuses them: 503).
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Every span accepted so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Waits until at least `n` spans arrived, and returns all of them.
    pub fn wait_for_spans(&self, n: usize) -> Vec<ReceivedSpan> {
        crate::eventually(&format!("{n} spans at the OTLP receiver"), || {
            self.spans().len() >= n
        });
        self.spans()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
