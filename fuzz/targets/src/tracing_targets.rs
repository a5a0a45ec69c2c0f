//! The trace context a client sends: `traceparent`, `tracestate`, `b3`, `x-b3-*`,
//! `x-request-id`, each parser alone and the whole per-request plan on a FakeHost.

use crate::{assert_valid_field, request_headers, Input, Seed};
use wasmgate_shared::config::parse;
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::{Host, RequestView};
use wasmgate_tracing::b3::{self, MultiHeaders, B3};
use wasmgate_tracing::config::{Format, RawTracingConfig, TracingConfig, W3cLevel};
use wasmgate_tracing::context::{is_zero, ParentContext, Sampling, TraceContext};
use wasmgate_tracing::propagation::{self, Origin, TRACEPARENT, TRACESTATE};
use wasmgate_tracing::{hex, request_id, traceparent, tracestate};

/// The gateway's context for a parent, as the plan builds it.
fn child_of(p: &ParentContext) -> TraceContext {
    TraceContext {
        trace_id: p.trace_id,
        short_trace_id: p.short_trace_id,
        span_id: p.span_id,
        parent_span_id: None,
        sampled: p.sampling.decided().unwrap_or(false),
        debug: p.sampling == Sampling::Debug,
        random: p.random,
    }
}

fn check_parent(p: &ParentContext) {
    assert!(!is_zero(&p.trace_id), "zero trace id accepted");
    assert!(!is_zero(&p.span_id), "zero span id accepted");
}

/// Layout: which parser, then its header values as fields.
///
/// An accepted id is never all zeros, and the context it gives, written back in the same
/// format, reads back to the same ids. A sanitized `tracestate` is within the spec's limits
/// (32 members, 512 characters), a valid header value, and sanitizing it again changes
/// nothing. An accepted request id is a safe header value; generated UUIDs are accepted.
pub fn trace_headers(data: &[u8]) {
    let mut input = Input::new(data);
    match input.byte() % 5 {
        0 => {
            let value = input.rest_text();
            if let Some(p) = traceparent::parse(&value) {
                check_parent(&p);
                let written = traceparent::format(&child_of(&p));
                assert_valid_field(TRACEPARENT, &written, "traceparent");
                let again = traceparent::parse(&written).expect("own traceparent parses");
                assert_eq!((again.trace_id, again.span_id), (p.trace_id, p.span_id));
            }
        }
        1 => {
            let level = if input.bool() {
                W3cLevel::One
            } else {
                W3cLevel::Two
            };
            let text = input.rest_text();
            let values: Vec<&str> = text.split('\n').collect();
            if let Some(state) = tracestate::sanitize(values.iter().copied(), level) {
                assert!(!state.is_empty());
                assert!(state.len() <= tracestate::MAX_LEN, "{} chars", state.len());
                assert!(state.split(',').count() <= tracestate::MAX_MEMBERS);
                assert_valid_field(TRACESTATE, &state, "tracestate");
                assert_eq!(
                    tracestate::sanitize([state.as_str()], level).as_deref(),
                    Some(state.as_str()),
                    "sanitizing twice changes the list"
                );
            }
        }
        2 => {
            let value = input.rest_text();
            if let Some(B3::Context(p)) = b3::parse_single(&value) {
                check_parent(&p);
                let written = b3::format_single(&child_of(&p));
                assert_valid_field(b3::SINGLE, &written, "b3");
                match b3::parse_single(&written) {
                    Some(B3::Context(again)) => {
                        assert_eq!((again.trace_id, again.span_id), (p.trace_id, p.span_id));
                    }
                    other => panic!("own b3 {written:?} reads as {other:?}"),
                }
            }
        }
        3 => {
            let fields: Vec<String> = (0..5).map(|_| input.text()).collect();
            let present = |i: usize| fields.get(i).filter(|f| !f.is_empty()).map(String::as_str);
            let multi = MultiHeaders {
                trace_id: present(0),
                span_id: present(1),
                parent_span_id: present(2),
                sampled: present(3),
                flags: present(4),
            };
            if let Some(B3::Context(p)) = b3::parse_multi(&multi) {
                check_parent(&p);
                let written = b3::format_multi(&child_of(&p));
                for (name, value) in &written {
                    assert_valid_field(name, value, "x-b3-*");
                }
                let get = |n: &str| {
                    written
                        .iter()
                        .find(|(name, _)| *name == n)
                        .map(|(_, v)| v.as_str())
                };
                let again = MultiHeaders {
                    trace_id: get(b3::TRACE_ID),
                    span_id: get(b3::SPAN_ID),
                    parent_span_id: get(b3::PARENT_SPAN_ID),
                    sampled: get(b3::SAMPLED),
                    flags: get(b3::FLAGS),
                };
                match b3::parse_multi(&again) {
                    Some(B3::Context(again)) => {
                        assert_eq!((again.trace_id, again.span_id), (p.trace_id, p.span_id));
                    }
                    other => panic!("own x-b3-* {written:?} read as {other:?}"),
                }
            }
        }
        _ => {
            let value = input.field();
            let text = String::from_utf8_lossy(value);
            if request_id::is_acceptable(&text) {
                assert!(text.len() <= request_id::MAX_LEN);
                assert_valid_field("x-request-id", &text, "request id");
            }
            let mut random = [0u8; 16];
            for (dst, src) in random.iter_mut().zip(input.rest()) {
                *dst = *src;
            }
            let uuid = request_id::uuid_v4(random);
            assert_eq!(uuid.len(), 36);
            assert!(request_id::is_acceptable(&uuid), "{uuid}");
            if let Some(bytes) = hex::decode::<16>(&text) {
                assert_eq!(hex::encode(&bytes), text);
            }
        }
    }
}

pub fn trace_headers_seeds() -> Vec<Vec<u8>> {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    vec![
        Seed::new().byte(0).rest(tp),
        Seed::new()
            .byte(0)
            .rest("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-extra"),
        Seed::new()
            .byte(0)
            .rest("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        Seed::new()
            .byte(1)
            .byte(0)
            .rest("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE\nfoo@bar=1"),
        Seed::new().byte(1).byte(1).rest("a=1,a=2, b=3 ,,"),
        Seed::new()
            .byte(2)
            .rest("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"),
        Seed::new()
            .byte(2)
            .rest("e457b5a2e4d86bd1-e457b5a2e4d86bd1-d"),
        Seed::new().byte(2).rest("0"),
        Seed::new()
            .byte(3)
            .field("80f198ee56343ba864fe8b2a57d3eff7")
            .field("e457b5a2e4d86bd1")
            .field("05e3ac9a4f6e3b90")
            .field("1")
            .field("")
            .build(),
        Seed::new()
            .byte(3)
            .field("")
            .field("")
            .field("")
            .field("")
            .field("1")
            .build(),
        Seed::new()
            .byte(4)
            .field("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
            .rest([7; 16]),
    ]
}

/// Configurations the plan target runs under: the default and ones that exercise every
/// format, untrusted callers, Level 1 and the response headers.
const PLAN_CONFIGS: [&str; 4] = [
    "{}",
    r#"{"extract": ["b3", "w3c", "b3multi"], "inject": ["w3c", "b3", "b3multi"],
        "response": {"traceresponse": true, "trace_id_header": "x-trace-id",
                     "request_id_header": "x-request-id"}}"#,
    r#"{"trust_incoming": false, "client_trace_id_header": "x-client-trace-id",
        "inject": ["b3"]}"#,
    r#"{"w3c_level": 1, "extract": ["b3multi", "w3c"], "inject": ["b3multi"],
        "sampling_ratio": 0.5, "request_id_header": "x-correlation-id"}"#,
];

fn plan_config(index: u8) -> TracingConfig {
    let json = PLAN_CONFIGS[usize::from(index) % PLAN_CONFIGS.len()];
    parse::<RawTracingConfig>(Some(json.as_bytes()))
        .and_then(RawTracingConfig::compile)
        .expect("plan configuration")
}

/// Layout: configuration, randomness seed (u32), then the request headers.
///
/// Whatever the client sent, exactly the injected formats go upstream, each once, valid, and
/// all carrying the plan's trace and span ids; formats not injected are removed; `tracestate`
/// goes only next to a `traceparent`; the request id header is there once and acceptable; an
/// untrusted client never continues its trace; ids are never zero; the response headers are
/// valid fields.
pub fn tracing_plan(data: &[u8]) {
    let mut input = Input::new(data);
    let config = plan_config(input.byte());
    let seed = u64::from(input.u32());
    let headers = request_headers(&input.rest_text());
    let host = FakeHost::new().with_seed(seed);
    for (k, v) in &headers {
        host.add_request_header(k, v);
    }
    let mut request = RequestView::unjudged(host.request_headers());
    let plan = propagation::plan(&config, request.headers(), &host);
    propagation::apply_request(&plan, &mut request, &host);
    propagation::apply_response(&plan.response_headers, &host);

    let ctx = &plan.context;
    assert!(!is_zero(&ctx.trace_id) && !is_zero(&ctx.span_id), "zero id");
    assert_eq!(plan.trace_id, hex::encode(&ctx.trace_id));
    if !config.trust_incoming {
        assert_eq!(plan.origin, Origin::Started, "an untrusted trace continued");
    }
    for (name, value) in plan.request_headers.iter() {
        if let Some(value) = value {
            assert_valid_field(name, value, "upstream");
        }
    }
    for (name, value) in host.response_headers() {
        assert_valid_field(&name, &value, "response");
    }
    let once = |name: &str| -> Option<String> {
        let values = host.request_header_values(name);
        assert!(values.len() <= 1, "{name} sent {} times", values.len());
        values.into_iter().next()
    };
    let traceparent = once(TRACEPARENT);
    match (&traceparent, config.injects(Format::W3c)) {
        (Some(tp), true) => {
            let p = traceparent::parse(tp).expect("own traceparent");
            assert_eq!((p.trace_id, p.span_id), (ctx.trace_id, ctx.span_id));
        }
        (None, true) => panic!("traceparent not injected"),
        (Some(tp), false) => panic!("traceparent {tp:?} left upstream"),
        (None, false) => {}
    }
    if let Some(state) = once(TRACESTATE) {
        assert!(traceparent.is_some(), "tracestate without traceparent");
        assert_valid_field(TRACESTATE, &state, "tracestate");
    }
    match (once(b3::SINGLE), config.injects(Format::B3)) {
        (Some(v), true) => match b3::parse_single(&v) {
            Some(B3::Context(p)) => {
                assert_eq!(p.span_id, ctx.span_id);
                assert_eq!(hex::encode(&p.trace_id), plan.trace_id);
            }
            other => panic!("own b3 {v:?} reads as {other:?}"),
        },
        (None, true) => panic!("b3 not injected"),
        (Some(v), false) => panic!("b3 {v:?} left upstream"),
        (None, false) => {}
    }
    for name in b3::MULTI {
        let value = once(name);
        if !config.injects(Format::B3multi) {
            assert_eq!(value, None, "{name} left upstream");
        }
    }
    // A client's repeated request id is kept as it came (the plan reads the first value).
    let ids = host.request_header_values(&config.request_id_header);
    let id = ids.first().expect("request id sent");
    assert!(request_id::is_acceptable(id), "request id {id:?}");
}

pub fn tracing_plan_seeds() -> Vec<Vec<u8>> {
    let tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let b3 = "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";
    let multi = "x-b3-traceid: 463ac35c9f6413ad\nx-b3-spanid: a2fb4a1d1a96d312\nx-b3-sampled: 1";
    let mut seeds = Vec::new();
    for config in 0..PLAN_CONFIGS.len() as u8 {
        for headers in [
            tp.to_string(),
            format!("{tp}\ntracestate: rojo=1,congo=2\nx-request-id: abc"),
            format!("{tp}\n{tp}"),
            format!("{b3}\n{multi}\nx-client-trace-id: x"),
            "x-b3-sampled: 0\nx-request-id: bad id".to_string(),
            "tracestate: a=1".to_string(),
        ] {
            seeds.push(Seed::new().byte(config).u32(7).rest(headers));
        }
    }
    seeds
}
