//! The gateway's own span: opened when a sampled request arrives (its ids are the ones the
//! upstream sees as parent), finished when Envoy logs the stream, as an OTLP span with the
//! HTTP server attributes of OpenTelemetry's semantic conventions and what the stages noted.

use crate::context::{SpanId, TraceContext, TraceId};
use crate::otlp::{self, KeyValue};
use crate::traceparent;
use wasmgate_shared::canonical::{canonical_path, PathPolicy};
use wasmgate_shared::span_notes::NoteValue;
use wasmgate_shared::RequestView;

/// The methods semantic conventions name; any other is `_OTHER` (its text goes to
/// `http.request.method_original`), so span names stay a small set.
const KNOWN_METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// What a sampled request keeps of its span until the stream completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSpan {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    trace_flags: u8,
    trace_state: Option<String>,
    start_unix_nanos: u64,
    /// `:status` of the response headers, when they passed this filter.
    pub status: Option<u16>,
}

impl OpenSpan {
    pub fn start(context: &TraceContext, trace_state: Option<String>, unix_nanos: u64) -> Self {
        Self {
            trace_id: context.trace_id,
            span_id: context.span_id,
            parent_span_id: context.parent_span_id,
            trace_flags: traceparent::flags(context),
            trace_state,
            start_unix_nanos: unix_nanos,
            status: None,
        }
    }

    /// The finished span. `status` is the response code the client got (`None` when the stream
    /// ended without a response); `claims` the configured claims to copy from the identity.
    pub fn finish(
        self,
        request: &RequestView,
        status: Option<u16>,
        end_unix_nanos: u64,
        claims: &[String],
    ) -> otlp::Span {
        let mut attributes = Vec::with_capacity(8 + request.notes.attributes().len());
        let method = request.method.as_str();
        let name = if KNOWN_METHODS.contains(&method) {
            attributes.push(KeyValue::text("http.request.method", method));
            method
        } else {
            attributes.push(KeyValue::text("http.request.method", "_OTHER"));
            attributes.push(KeyValue::text("http.request.method_original", method));
            "HTTP"
        };
        attributes.push(KeyValue::text("url.path", url_path(request)));
        if let Some(scheme) = request.header(":scheme") {
            attributes.push(KeyValue::text("url.scheme", scheme));
        }
        attributes.push(KeyValue::text("server.address", request.host.as_str()));
        let mut span_status = None;
        if let Some(code) = status {
            attributes.push(KeyValue::int("http.response.status_code", i64::from(code)));
            // A server span is an error on 5xx only: 4xx is the client's mistake.
            if code >= 500 {
                attributes.push(KeyValue::text("error.type", code.to_string()));
                span_status = Some(otlp::Status {
                    message: String::new(),
                    code: otlp::STATUS_CODE_ERROR,
                });
            }
        }
        attributes.extend(request.notes.attributes().iter().map(note));
        if let Some(identity) = &request.identity {
            for claim in claims {
                if let Some(value) = identity.claim(claim) {
                    attributes.push(KeyValue::text(
                        format!("wasmgate.authn.claim.{claim}"),
                        value,
                    ));
                }
            }
        }
        let events = request
            .notes
            .events()
            .iter()
            .map(|e| otlp::Event {
                time_unix_nano: e.unix_nanos,
                name: e.name.to_string(),
                attributes: e.attributes.iter().map(note).collect(),
            })
            .collect();
        let remote = if self.parent_span_id.is_some() {
            otlp::FLAGS_IS_REMOTE
        } else {
            0
        };
        otlp::Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            trace_state: self.trace_state.unwrap_or_default(),
            parent_span_id: self.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
            name: name.to_string(),
            kind: otlp::SPAN_KIND_SERVER,
            start_time_unix_nano: self.start_unix_nanos,
            end_time_unix_nano: end_unix_nanos.max(self.start_unix_nanos),
            attributes,
            events,
            status: span_status,
            flags: u32::from(self.trace_flags) | otlp::FLAGS_HAS_IS_REMOTE | remote,
        }
    }
}

/// The path the stages judged, or the default canonical form of the received one (the
/// standalone tracing module judges nothing); the received path when it has none. No query:
/// it may carry credentials.
fn url_path(request: &RequestView) -> String {
    if !request.path.is_empty() {
        return request.path.clone();
    }
    let received = request.raw_path.split('?').next().unwrap_or_default();
    canonical_path(received, &PathPolicy::default()).unwrap_or_else(|_| received.to_string())
}

fn note((key, value): &(&'static str, NoteValue)) -> KeyValue {
    match value {
        NoteValue::Text(text) => KeyValue::text(*key, text.as_str()),
        NoteValue::Int(n) => KeyValue::int(*key, *n),
    }
}
