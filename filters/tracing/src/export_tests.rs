//! Span export through `FakeHost`: one span per sampled request, with the ids the upstream
//! saw; batches on the tick; a bounded queue; failures counted, never retried.

use crate::otlp::{self, ExportTraceServiceRequest, Value};
use crate::traceparent;
use crate::Tracing;
use prost::Message;
use std::time::Duration;
use wasmgate_shared::host::{FakeHost, HttpCall};
use wasmgate_shared::{Host, Policy, RequestView};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn tracing(host: &FakeHost, json: &str) -> Tracing {
    Tracing::configure(host, Some(json.as_bytes())).unwrap()
}

const EXPORT: &str = r#"{"export":{"cluster":"otel","batch_max_spans":2,"queue_max_spans":3}}"#;

/// One request through the policy to the end of its stream: `status` as Envoy logs it.
fn serve(t: &Tracing, host: &FakeHost, path: &str, headers: &[(&str, &str)], status: u64) {
    host.reset_stream();
    let mut all = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", "api.example.com:8443"),
        (":scheme", "https"),
    ];
    all.extend_from_slice(headers);
    let mut request = RequestView::unjudged(
        all.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut stream = t.new_stream(1);
    t.on_request(host, &mut request, &mut stream);
    host.advance(Duration::from_millis(3));
    host.set_property(&["response", "code"], &status.to_le_bytes());
    t.on_log(host, &request, &mut stream);
}

fn exported(call: &HttpCall) -> Vec<otlp::Span> {
    let body = call.body.as_deref().unwrap_or_default();
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    request
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

fn attribute(span: &otlp::Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

fn text(s: &str) -> Option<Value> {
    Some(Value::StringValue(s.to_string()))
}

fn tick_after(t: &Tracing, host: &FakeHost, ms: u64) {
    host.advance(Duration::from_millis(ms));
    t.on_tick(host);
}

#[test]
fn a_continued_request_becomes_one_server_span_with_the_ids_sent_upstream() {
    let host = FakeHost::new();
    let t = tracing(&host, EXPORT);
    let parent = format!("00-{TRACE}-{SPAN}-01");
    serve(
        &t,
        &host,
        "/a/../b/%7Esam?token=secret",
        &[("traceparent", &parent), ("tracestate", "k=v")],
        201,
    );
    let sent = traceparent::parse(&host.request_header("traceparent").unwrap()).unwrap();
    assert!(
        host.calls().is_empty(),
        "nothing leaves on the request path"
    );
    tick_after(&t, &host, 1000);

    let calls = host.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.cluster, "otel");
    for header in [
        (":method", "POST"),
        (":path", "/v1/traces"),
        (":authority", "otel"),
        ("content-type", "application/x-protobuf"),
    ] {
        assert!(
            call.headers.contains(&(header.0.into(), header.1.into())),
            "{header:?}"
        );
    }
    assert_eq!(call.timeout, Duration::from_secs(5));
    let spans = exported(call);
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.trace_id, sent.trace_id);
    assert_eq!(
        span.span_id, sent.span_id,
        "the span is the upstream's parent"
    );
    assert_eq!(hex(&span.parent_span_id), SPAN);
    assert_eq!(hex(&span.trace_id), TRACE);
    assert_eq!(span.trace_state, "k=v");
    assert_eq!(span.name, "GET");
    assert_eq!(span.kind, otlp::SPAN_KIND_SERVER);
    assert_eq!(
        span.end_time_unix_nano - span.start_time_unix_nano,
        3_000_000
    );
    assert_eq!(
        span.flags,
        0x01 | otlp::FLAGS_HAS_IS_REMOTE | otlp::FLAGS_IS_REMOTE
    );
    assert_eq!(attribute(span, "http.request.method"), text("GET"));
    assert_eq!(
        attribute(span, "url.path"),
        text("/b/~sam"),
        "canonical, no query"
    );
    assert_eq!(attribute(span, "url.scheme"), text("https"));
    assert_eq!(attribute(span, "server.address"), text("api.example.com"));
    assert_eq!(
        attribute(span, "http.response.status_code"),
        Some(Value::IntValue(201))
    );
    assert_eq!(span.status, None);
    let resource = &otlp_request(call).resource_spans[0]
        .resource
        .clone()
        .unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"
        && kv.value.as_ref().and_then(|v| v.value.clone()) == text("wasmgate")));

    host.set_call_response(&[(":status", "200")], Some(b""));
    t.on_http_call_response(&host, call.token, 0);
    t.on_tick(&host);
    assert_eq!(host.metric("wasmgate_tracing_spans_exported"), Some(1));
    assert_eq!(host.metric("wasmgate_tracing_spans_dropped"), Some(0));
}

fn otlp_request(call: &HttpCall) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(call.body.as_deref().unwrap_or_default()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    crate::hex::encode(bytes)
}

#[test]
fn a_started_trace_has_no_parent_and_a_5xx_is_an_error() {
    let host = FakeHost::new();
    let t = tracing(&host, EXPORT);
    serve(&t, &host, "/x", &[], 503);
    tick_after(&t, &host, 1000);
    let span = &exported(&host.calls()[0])[0];
    assert!(span.parent_span_id.is_empty());
    assert_eq!(
        span.flags,
        0x03 | otlp::FLAGS_HAS_IS_REMOTE,
        "sampled, random, local root"
    );
    assert_eq!(
        span.status.as_ref().map(|s| s.code),
        Some(otlp::STATUS_CODE_ERROR)
    );
    assert_eq!(attribute(span, "error.type"), text("503"));
}

#[test]
fn unsampled_requests_and_no_export_leave_no_span() {
    let host = FakeHost::new();
    let t = tracing(&host, EXPORT);
    serve(
        &t,
        &host,
        "/",
        &[("traceparent", &format!("00-{TRACE}-{SPAN}-00"))],
        200,
    );
    tick_after(&t, &host, 1000);
    assert!(host.calls().is_empty());

    let t = tracing(&host, "{}");
    serve(&t, &host, "/", &[], 200);
    tick_after(&t, &host, 1000);
    assert!(host.calls().is_empty());
}

#[test]
fn spans_leave_in_batches_on_the_tick_and_a_full_queue_drops() {
    let host = FakeHost::new();
    let t = tracing(&host, EXPORT);
    serve(&t, &host, "/1", &[], 200);
    t.on_tick(&host);
    assert!(host.calls().is_empty(), "one span waits for the interval");
    for path in ["/2", "/3", "/4", "/5"] {
        serve(&t, &host, path, &[], 200);
    }
    // The queue holds 3: spans 4 and 5 are dropped. A full batch leaves at once.
    t.on_tick(&host);
    assert_eq!(host.calls().len(), 1);
    assert_eq!(exported(&host.calls()[0]).len(), 2);
    tick_after(&t, &host, 1000);
    assert_eq!(host.calls().len(), 2);
    assert_eq!(exported(&host.calls()[1]).len(), 1);
    assert_eq!(host.metric("wasmgate_tracing_spans_dropped"), Some(2));
}

#[test]
fn failed_exports_count_their_spans_as_dropped_and_are_not_retried() {
    let host = FakeHost::new();
    let t = tracing(&host, EXPORT);
    for status in [Some("503"), None] {
        serve(&t, &host, "/", &[], 200);
        tick_after(&t, &host, 1000);
        let call = host.calls().last().cloned().unwrap();
        let headers: Vec<(&str, &str)> = status.map(|s| vec![(":status", s)]).unwrap_or_default();
        host.set_call_response(&headers, None);
        t.on_http_call_response(&host, call.token, 0);
    }
    tick_after(&t, &host, 1000);
    assert_eq!(host.calls().len(), 2, "no retry");
    assert_eq!(host.metric("wasmgate_tracing_exports_failed"), Some(2));
    assert_eq!(host.metric("wasmgate_tracing_spans_dropped"), Some(2));

    // A partial success names the spans the collector refused.
    serve(&t, &host, "/", &[], 200);
    serve(&t, &host, "/", &[], 200);
    t.on_tick(&host);
    let call = host.calls().last().cloned().unwrap();
    let answer = otlp::ExportTraceServiceResponse {
        partial_success: Some(otlp::ExportTracePartialSuccess {
            rejected_spans: 1,
            error_message: "too old".into(),
        }),
    }
    .encode_to_vec();
    host.set_call_response(&[(":status", "200")], Some(&answer));
    t.on_http_call_response(&host, call.token, answer.len());
    t.on_tick(&host);
    assert_eq!(host.metric("wasmgate_tracing_spans_exported"), Some(1));
    assert_eq!(host.metric("wasmgate_tracing_spans_dropped"), Some(3));

    // An unknown cluster fails at dispatch.
    let failing = FakeHost::new().with_failing_calls();
    let t = tracing(&failing, EXPORT);
    serve(&t, &failing, "/", &[], 200);
    tick_after(&t, &failing, 1000);
    assert_eq!(failing.metric("wasmgate_tracing_exports_failed"), Some(1));
    assert_eq!(failing.metric("wasmgate_tracing_spans_dropped"), Some(1));
}

#[test]
fn at_most_four_batches_are_in_flight() {
    let host = FakeHost::new();
    let json = r#"{"export":{"cluster":"otel","batch_max_spans":1,"queue_max_spans":10}}"#;
    let t = tracing(&host, json);
    for _ in 0..6 {
        serve(&t, &host, "/", &[], 200);
    }
    t.on_tick(&host);
    assert_eq!(host.calls().len(), crate::export::MAX_IN_FLIGHT);
    host.set_call_response(&[(":status", "200")], None);
    t.on_http_call_response(&host, host.calls()[0].token, 0);
    t.on_tick(&host);
    assert_eq!(host.calls().len(), crate::export::MAX_IN_FLIGHT + 1);
}

#[test]
fn the_stages_notes_and_configured_claims_become_attributes_and_events() {
    use wasmgate_shared::span_notes::NoteValue;
    let host = FakeHost::new();
    let json = r#"{"export":{"cluster":"otel","claims":["tenant"]}}"#;
    let t = tracing(&host, json);
    let mut request = RequestView::unjudged(vec![
        (":method".into(), "BREW".into()),
        (":path".into(), "/pot".into()),
    ]);
    let mut stream = t.new_stream(1);
    t.on_request(&host, &mut request, &mut stream);
    request.notes.attribute("wasmgate.authn.outcome", "allowed");
    request.notes.event(
        "wasmgate.authn.keys_wait",
        host.now(),
        vec![("wasmgate.wait_ms", NoteValue::Int(40))],
    );
    let claims = serde_json::json!({"sub": "alice", "tenant": "acme"});
    request.identity = Some(wasmgate_shared::Identity {
        name: Some("alice".into()),
        claims: std::rc::Rc::new(claims.as_object().cloned().unwrap()),
    });
    t.on_log(&host, &request, &mut stream);
    tick_after(&t, &host, 1000);
    let span = &exported(&host.calls()[0])[0];
    assert_eq!(span.name, "HTTP");
    assert_eq!(attribute(span, "http.request.method"), text("_OTHER"));
    assert_eq!(
        attribute(span, "http.request.method_original"),
        text("BREW")
    );
    assert_eq!(attribute(span, "wasmgate.authn.outcome"), text("allowed"));
    assert_eq!(attribute(span, "wasmgate.authn.claim.tenant"), text("acme"));
    assert!(
        span.attributes
            .iter()
            .all(|kv| kv.value.as_ref().and_then(|v| v.value.clone()) != text("alice")),
        "sub is not configured"
    );
    assert_eq!(
        attribute(span, "http.response.status_code"),
        None,
        "no response code logged"
    );
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "wasmgate.authn.keys_wait");
}

#[test]
fn the_status_of_response_headers_that_passed_needs_no_property_read() {
    let host = FakeHost::new().with_response_header(":status", "204");
    let t = tracing(&host, EXPORT);
    let mut request = RequestView::unjudged(vec![(":method".into(), "GET".into())]);
    let mut stream = t.new_stream(1);
    t.on_request(&host, &mut request, &mut stream);
    t.on_response(&host, &mut stream);
    host.set_property(&["response", "code"], &500u64.to_le_bytes());
    t.on_log(&host, &request, &mut stream);
    tick_after(&t, &host, 1000);
    let span = &exported(&host.calls()[0])[0];
    assert_eq!(
        attribute(span, "http.response.status_code"),
        Some(Value::IntValue(204))
    );
}
