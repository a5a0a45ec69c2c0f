//! Span export in real Envoy (two workers) to a real OTLP/HTTP receiver that decodes with the
//! official OpenTelemetry messages: `envoy-config/tracing.yaml` (the tracing module alone) and
//! `envoy-config/gateway.yaml` (the gateway module, whose spans carry authn's and the rate
//! limits' decisions). The receiver stands where those configs expect a collector
//! (127.0.0.1:4318).

use serde_json::json;
use std::collections::HashSet;
use wasmgate_tests::otlp::ReceivedSpan;
use wasmgate_tests::rls::free_port;
use wasmgate_tests::{eventually, Client, Gateway, OtlpReceiver, Response};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const COLLECTOR_PORT: u16 = 4318;

/// The upstream's parent span id: the gateway's span.
fn upstream_parent(r: &Response) -> String {
    let value = r
        .upstream_header("traceparent")
        .unwrap_or_else(|| panic!("no traceparent upstream: {}", r.body));
    value.split('-').nth(2).unwrap_or_default().to_string()
}

fn span_named_by(spans: &[ReceivedSpan], span_id: &str) -> ReceivedSpan {
    spans
        .iter()
        .find(|s| s.span_id() == span_id)
        .cloned()
        .unwrap_or_else(|| panic!("no span {span_id} among {} received", spans.len()))
}

#[test]
fn tracing_exports_one_span_per_sampled_request_with_the_ids_the_upstream_saw() {
    let collector = OtlpReceiver::start(0);
    let gw = Gateway::builder("tracing.yaml")
        .concurrency(2)
        .port(COLLECTOR_PORT, collector.port())
        .start();

    let continued = format!("00-{TRACE}-{SPAN}-01");
    let r = gw.get(
        "/orders/../items/%7E1?secret=1",
        &[("traceparent", &continued), ("tracestate", "rojo=1")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let continued_span = upstream_parent(&r);
    let unsampled = format!("00-{TRACE}-{SPAN}-00");
    assert_eq!(gw.get("/", &[("traceparent", &unsampled)]).status, 200);
    // New connections spread the started traces over both workers.
    let started: Vec<String> = (0..20)
        .map(|i| {
            let r = Client::new().get(&gw.url(&format!("/n/{i}")), &[]);
            assert_eq!(r.status, 200, "{}", r.body);
            upstream_parent(&r)
        })
        .collect();

    let spans = collector.wait_for_spans(21);
    assert_eq!(
        spans.len(),
        21,
        "one span per sampled request, none for the unsampled"
    );
    let ids: HashSet<String> = spans.iter().map(ReceivedSpan::span_id).collect();
    assert_eq!(ids.len(), 21);
    for id in &started {
        let span = span_named_by(&spans, id);
        assert!(
            span.parent_span_id().is_empty(),
            "a started trace's span is a root"
        );
        assert_eq!(span.span.flags & 0xff, 0x03, "sampled and random");
    }

    let span = span_named_by(&spans, &continued_span);
    assert_eq!(span.trace_id(), TRACE);
    assert_eq!(
        span.parent_span_id(),
        SPAN,
        "the caller's span is the parent"
    );
    assert_eq!(span.span.trace_state, "rojo=1");
    assert_eq!(span.span.name, "GET");
    assert_eq!(span.span.kind, 2, "SPAN_KIND_SERVER");
    assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
    assert!(span.span.start_time_unix_nano > 1_700_000_000_000_000_000);
    assert_eq!(
        span.attribute("http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(span.attribute("url.path").as_deref(), Some("/items/~1"));
    assert_eq!(
        span.attribute("server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        span.attribute("http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        span.resource_attribute("service.name").as_deref(),
        Some("wasmgate")
    );

    // Batched: fewer posts than spans, each to /v1/traces as binary protobuf.
    let posts = collector.posts();
    assert!(posts.len() < 21, "{} posts for 21 spans", posts.len());
    for post in &posts {
        assert_eq!(post.path, "/v1/traces");
        assert_eq!(post.content_type.as_deref(), Some("application/x-protobuf"));
    }
    eventually("spans_exported reaches 21", || {
        gw.prometheus_metric("wasmgate_tracing_spans_exported") == Some(21.0)
    });
    assert_eq!(
        gw.prometheus_metric("wasmgate_tracing_spans_dropped"),
        Some(0.0)
    );
}

#[test]
fn tracing_export_to_a_collector_that_is_down_or_refuses_costs_requests_nothing() {
    let down = free_port();
    let gw = Gateway::builder("tracing.yaml")
        .concurrency(2)
        .port(COLLECTOR_PORT, down)
        .start();
    for i in 0..10 {
        let r = Client::new().get(&gw.url(&format!("/{i}")), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.upstream_header("traceparent").is_some());
    }
    eventually("the 10 spans are counted as dropped", || {
        gw.prometheus_metric("wasmgate_tracing_spans_dropped") == Some(10.0)
    });
    assert!(gw.prometheus_metric("wasmgate_tracing_exports_failed") >= Some(1.0));
    assert_eq!(
        gw.prometheus_metric("wasmgate_tracing_spans_exported"),
        Some(0.0)
    );

    // A collector that answers 503: the batch is dropped, not retried.
    let collector = OtlpReceiver::start(0);
    collector.answer_with(503);
    let gw = Gateway::builder("tracing.yaml")
        .port(COLLECTOR_PORT, collector.port())
        .start();
    assert_eq!(gw.get("/", &[]).status, 200);
    eventually("the refused span is counted as dropped", || {
        gw.prometheus_metric("wasmgate_tracing_spans_dropped") == Some(1.0)
    });
    assert_eq!(collector.posts().len(), 1, "no retry");
}

#[test]
fn tracing_exports_nothing_at_sampling_ratio_zero() {
    let collector = OtlpReceiver::start(0);
    let gw = Gateway::builder("tracing.yaml")
        .port(COLLECTOR_PORT, collector.port())
        .plugin_config(
            "tracing",
            json!({"sampling_ratio": 0.0, "export": {"cluster": "otel_collector", "batch_interval_ms": 100}}),
        )
        .start();
    for _ in 0..5 {
        assert_eq!(gw.get("/", &[]).status, 200);
    }
    // The one sampled request after them is the only span.
    let sampled = format!("00-{TRACE}-{SPAN}-01");
    let r = gw.get("/", &[("traceparent", &sampled)]);
    let spans = collector.wait_for_spans(1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(collector.spans().len(), 1);
    assert_eq!(spans[0].span_id(), upstream_parent(&r));
}

#[test]
fn gateway_spans_carry_the_refusals_and_what_authn_decided() {
    let collector = OtlpReceiver::start(0);
    let gw = Gateway::builder("gateway.yaml")
        .concurrency(2)
        .port(COLLECTOR_PORT, collector.port())
        .start();
    let client = Client::new();
    let refused = client.get(&gw.url("/orders"), &[]);
    assert_eq!(refused.status, 401, "{}", refused.body);
    // The demo's API key (envoy-config/gateway.yaml, consumer demo-ci).
    let allowed = client.get(&gw.url("/orders"), &[("x-api-key", "demo-api-key")]);
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let public = client.get(&gw.url("/public/x"), &[]);
    assert_eq!(public.status, 200, "{}", public.body);
    // per-client allows 5 per 10 s: the 6th request from this client is refused.
    let mut limited = None;
    let mut sent = 3;
    for _ in 0..6 {
        let r = client.get(&gw.url("/public/y"), &[]);
        sent += 1;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("a 429 from per-client");

    let traced = |r: &Response| {
        r.header("traceresponse")
            .and_then(|t| t.split('-').nth(2))
            .unwrap_or_else(|| panic!("no traceresponse on {}", r.status))
            .to_string()
    };
    let spans = collector.wait_for_spans(sent);
    let span = span_named_by(&spans, &traced(&refused));
    assert_eq!(
        span.attribute("http.response.status_code").as_deref(),
        Some("401")
    );
    assert_eq!(
        span.attribute("wasmgate.authn.outcome").as_deref(),
        Some("denied")
    );
    assert_eq!(
        span.attribute("wasmgate.authn.reason").as_deref(),
        Some("missing_credential")
    );
    assert!(
        span.span.status.is_none() || span.span.status.as_ref().map(|s| s.code) == Some(0),
        "4xx is not a server error"
    );

    let span = span_named_by(&spans, &traced(&allowed));
    assert_eq!(
        span.attribute("wasmgate.authn.outcome").as_deref(),
        Some("allowed")
    );
    assert_eq!(
        span.attribute("wasmgate.authn.consumer").as_deref(),
        Some("demo-ci")
    );
    let span = span_named_by(&spans, &traced(&public));
    assert_eq!(
        span.attribute("wasmgate.authn.outcome").as_deref(),
        Some("public")
    );
    let span = span_named_by(&spans, &traced(&limited));
    assert_eq!(
        span.attribute("http.response.status_code").as_deref(),
        Some("429")
    );
    assert_eq!(
        span.attribute("wasmgate.ratelimit.rule").as_deref(),
        Some("per-client")
    );
    assert_eq!(
        span.attribute("wasmgate.ratelimit.reason").as_deref(),
        Some("rate_limited")
    );
    assert_eq!(span.attribute("url.path").as_deref(), Some("/public/y"));
    // No token or claim value rides on a span unless configured.
    assert!(spans
        .iter()
        .all(|s| s.attribute("wasmgate.authn.claim.sub").is_none()));
}
