use super::*;
use crate::config::RawTracingConfig;
use wasmgate_shared::config::parse;
use wasmgate_shared::host::FakeHost;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
const B3_TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const B3_SPAN: &str = "e457b5a2e4d86bd1";

fn config(json: &str) -> TracingConfig {
    parse::<RawTracingConfig>(Some(json.as_bytes()))
        .and_then(RawTracingConfig::compile)
        .unwrap()
}

/// Runs the filter's request path on a fake host carrying `headers`.
fn run_on(host: &FakeHost, json: &str, headers: &[(&str, &str)]) -> Plan {
    host.reset_stream();
    for (name, value) in headers {
        host.add_request_header(name, value);
    }
    let mut request = wasmgate_shared::RequestView::unjudged(host.request_headers());
    let plan = plan(&config(json), request.headers(), host);
    apply_request(&plan, &mut request, host);
    plan
}

fn run(json: &str, headers: &[(&str, &str)]) -> (Plan, FakeHost) {
    let host = FakeHost::new();
    let plan = run_on(&host, json, headers);
    (plan, host)
}

fn header(host: &FakeHost, name: &str) -> Option<String> {
    let values = host.request_header_values(name);
    assert!(values.len() <= 1, "{name} sent twice: {values:?}");
    values.into_iter().next()
}

/// The upstream traceparent split into (trace id, span id, flags).
fn sent_traceparent(host: &FakeHost) -> (String, String, String) {
    let value = header(host, TRACEPARENT).expect("traceparent sent");
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00");
    assert!(
        traceparent::parse(&value).is_some(),
        "sent an invalid traceparent {value}"
    );
    (parts[1].into(), parts[2].into(), parts[3].into())
}

#[test]
fn valid_traceparent_is_continued_with_a_new_span_and_its_flags() {
    for flags in ["01", "00"] {
        let incoming = format!("00-{TRACE}-{SPAN}-{flags}");
        let (plan, host) = run(
            "{}",
            &[(TRACEPARENT, &incoming), (TRACESTATE, "rojo=1,congo=2")],
        );
        let (trace, span, sent_flags) = sent_traceparent(&host);
        assert_eq!(plan.origin, Origin::Continued);
        assert!(!plan.invalid_incoming);
        assert_eq!(trace, TRACE);
        assert_ne!(
            span, SPAN,
            "the gateway sends its own span id as the parent"
        );
        assert_eq!(sent_flags, flags);
        assert_eq!(header(&host, TRACESTATE).as_deref(), Some("rojo=1,congo=2"));
        assert_eq!(plan.context.parent_span_id, hex::decode(SPAN));
        assert_eq!(
            host.property(&[TRACE_ID_PROPERTY]),
            Some(TRACE.as_bytes().to_vec())
        );
    }
}

#[test]
fn higher_version_traceparent_is_continued_as_version_00() {
    let incoming = format!("cc-{TRACE}-{SPAN}-01-future");
    let (plan, host) = run("{}", &[(TRACEPARENT, &incoming)]);
    assert_eq!(plan.origin, Origin::Continued);
    assert_eq!(sent_traceparent(&host).0, TRACE);
}

#[test]
fn no_context_starts_a_sampled_trace_with_a_request_id() {
    let (plan, host) = run("{}", &[]);
    let (trace, span, flags) = sent_traceparent(&host);
    assert_eq!(plan.origin, Origin::Started);
    assert!(!plan.invalid_incoming);
    // Sampled, and random (W3C Level 2): the gateway's trace ids are random.
    assert_eq!((trace.len(), span.len(), flags.as_str()), (32, 16, "03"));
    assert_eq!(plan.trace_id, trace);
    assert_eq!(header(&host, TRACESTATE), None);
    let id = header(&host, "x-request-id").expect("request id generated");
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'4');
}

#[test]
fn invalid_traceparent_starts_a_new_trace_and_drops_tracestate() {
    let bad = [
        format!("00-{}-{SPAN}-01", TRACE.to_ascii_uppercase()),
        format!("00-{}-{SPAN}-01", "0".repeat(32)),
        format!("00-{TRACE}-{}-01", "0".repeat(16)),
        format!("ff-{TRACE}-{SPAN}-01"),
        format!("00-{TRACE}-{SPAN}-1"),
        format!("00-{TRACE}-{SPAN}-xx"),
        "garbage".to_string(),
    ];
    for value in bad {
        let (plan, host) = run("{}", &[(TRACEPARENT, &value), (TRACESTATE, "rojo=1")]);
        let (trace, _, _) = sent_traceparent(&host);
        assert_eq!(plan.origin, Origin::Started, "{value}");
        assert!(plan.invalid_incoming, "{value}");
        assert_ne!(trace, TRACE);
        assert_eq!(header(&host, TRACESTATE), None, "{value}");
    }
}

#[test]
fn repeated_traceparent_is_invalid() {
    let one = format!("00-{TRACE}-{SPAN}-01");
    let (plan, host) = run("{}", &[(TRACEPARENT, &one), (TRACEPARENT, &one)]);
    assert_eq!(plan.origin, Origin::Started);
    assert!(plan.invalid_incoming);
    assert_ne!(sent_traceparent(&host).0, TRACE);
}

#[test]
fn repeated_tracestate_headers_are_one_list_and_bad_ones_are_dropped() {
    let parent = format!("00-{TRACE}-{SPAN}-01");
    let (_, host) = run(
        "{}",
        &[
            (TRACEPARENT, &parent),
            (TRACESTATE, "a=1"),
            (TRACESTATE, "b=2"),
        ],
    );
    assert_eq!(header(&host, TRACESTATE).as_deref(), Some("a=1,b=2"));
    let (plan, host) = run("{}", &[(TRACEPARENT, &parent), (TRACESTATE, "a=1,A=2")]);
    assert_eq!(
        plan.origin,
        Origin::Continued,
        "a bad tracestate does not break the trace"
    );
    assert_eq!(header(&host, TRACESTATE), None);
    // A duplicated key: Level 2 keeps the first, Level 1 drops the list.
    let duplicated = [(TRACEPARENT, parent.as_str()), (TRACESTATE, "a=1,b=2,a=3")];
    let (_, host) = run("{}", &duplicated);
    assert_eq!(header(&host, TRACESTATE).as_deref(), Some("a=1,b=2"));
    let (_, host) = run(r#"{"w3c_level":1}"#, &duplicated);
    assert_eq!(header(&host, TRACESTATE), None);
}

#[test]
fn random_flag_is_set_on_started_traces_and_carried_on_continued_ones() {
    let flags = |json: &str, headers: &[(&str, &str)]| {
        let (_, host) = run(json, headers);
        sent_traceparent(&host).2
    };
    let with = |f: &str| format!("00-{TRACE}-{SPAN}-{f}");
    assert_eq!(flags("{}", &[]), "03");
    assert_eq!(flags("{}", &[(TRACEPARENT, &with("03"))]), "03");
    assert_eq!(flags("{}", &[(TRACEPARENT, &with("01"))]), "01");
    assert_eq!(flags("{}", &[(TRACEPARENT, &with("02"))]), "02");
    // Unknown flags are not passed on.
    assert_eq!(flags("{}", &[(TRACEPARENT, &with("ff"))]), "03");
    // B3 says nothing about randomness.
    let b3 = format!("{B3_TRACE}-{B3_SPAN}-1");
    assert_eq!(flags("{}", &[(b3::SINGLE, &b3)]), "01");
    // An untrusted caller's trace is replaced by one of ours.
    let edge = r#"{"trust_incoming":false}"#;
    assert_eq!(flags(edge, &[(TRACEPARENT, &with("01"))]), "03");
    // Level 1 sends only the sampled flag.
    assert_eq!(flags(r#"{"w3c_level":1}"#, &[]), "01");
    assert_eq!(
        flags(r#"{"w3c_level":1}"#, &[(TRACEPARENT, &with("03"))]),
        "01"
    );
}

#[test]
fn b3_single_in_becomes_w3c_out_and_b3_is_removed() {
    let incoming = format!("{B3_TRACE}-{B3_SPAN}-1");
    let (plan, host) = run("{}", &[(b3::SINGLE, &incoming)]);
    assert_eq!(plan.origin, Origin::Continued);
    assert_eq!(sent_traceparent(&host).0, B3_TRACE);
    assert_eq!(header(&host, b3::SINGLE), None);
}

#[test]
fn b3_multi_64_bit_in_is_padded_for_w3c() {
    let (plan, host) = run(
        "{}",
        &[
            ("X-B3-TraceId", "64fe8b2a57d3eff7"),
            ("X-B3-SpanId", B3_SPAN),
            ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"),
            ("X-B3-Sampled", "0"),
        ],
    );
    assert_eq!(plan.origin, Origin::Continued);
    let (trace, _, flags) = sent_traceparent(&host);
    assert_eq!(trace, "000000000000000064fe8b2a57d3eff7");
    assert_eq!(flags, "00");
    for name in b3::MULTI {
        assert_eq!(header(&host, name), None, "{name} left upstream");
    }
}

#[test]
fn all_formats_out_carry_one_consistent_context() {
    let incoming = format!("00-{TRACE}-{SPAN}-01");
    let json = r#"{"inject":["w3c","b3","b3multi"]}"#;
    let (_, host) = run(
        json,
        &[
            (TRACEPARENT, &incoming),
            ("x-b3-flags", "1"),
            ("x-b3-sampled", "0"),
        ],
    );
    let (trace, span, _) = sent_traceparent(&host);
    assert_eq!(
        header(&host, b3::SINGLE),
        Some(format!("{trace}-{span}-1-{SPAN}"))
    );
    assert_eq!(header(&host, b3::TRACE_ID).as_deref(), Some(TRACE));
    assert_eq!(header(&host, b3::SPAN_ID), Some(span));
    assert_eq!(header(&host, b3::PARENT_SPAN_ID).as_deref(), Some(SPAN));
    assert_eq!(header(&host, b3::SAMPLED).as_deref(), Some("1"));
    assert_eq!(
        header(&host, b3::FLAGS),
        None,
        "the stale incoming debug flag is removed"
    );
}

#[test]
fn b3_out_keeps_a_64_bit_trace_id_and_debug() {
    let json = r#"{"inject":["b3multi","b3"]}"#;
    let incoming = format!("64fe8b2a57d3eff7-{B3_SPAN}-d");
    let (plan, host) = run(json, &[(b3::SINGLE, &incoming), (TRACEPARENT, "junk")]);
    assert_eq!(plan.origin, Origin::Continued);
    assert!(plan.invalid_incoming, "the junk traceparent is counted");
    assert_eq!(
        header(&host, TRACEPARENT),
        None,
        "w3c not injected: stale header removed"
    );
    let span = hex::encode(&plan.context.span_id);
    assert_eq!(
        header(&host, b3::SINGLE),
        Some(format!("64fe8b2a57d3eff7-{span}-d-{B3_SPAN}"))
    );
    assert_eq!(
        header(&host, b3::TRACE_ID).as_deref(),
        Some("64fe8b2a57d3eff7")
    );
    assert_eq!(header(&host, b3::FLAGS).as_deref(), Some("1"));
    assert_eq!(header(&host, b3::SAMPLED), None);
}

#[test]
fn extract_order_decides_which_context_wins() {
    let w3c = format!("00-{TRACE}-{SPAN}-01");
    let b3 = format!("{B3_TRACE}-{B3_SPAN}-1");
    let headers = [(TRACEPARENT, w3c.as_str()), (b3::SINGLE, b3.as_str())];
    let (_, host) = run("{}", &headers);
    assert_eq!(sent_traceparent(&host).0, TRACE);
    let (_, host) = run(r#"{"extract":["b3","w3c"]}"#, &headers);
    assert_eq!(sent_traceparent(&host).0, B3_TRACE);
    // A format not extracted is not read, but still not left stale upstream.
    let (plan, host) = run(r#"{"extract":["w3c"]}"#, &[(b3::SINGLE, b3.as_str())]);
    assert_eq!(plan.origin, Origin::Started);
    assert_eq!(header(&host, b3::SINGLE), None);
}

#[test]
fn b3_sampling_only_starts_a_trace_with_that_decision() {
    for (value, sampled) in [("0", false), ("1", true), ("d", true)] {
        let (plan, host) = run(r#"{"sampling_ratio":0.5}"#, &[(b3::SINGLE, value)]);
        assert_eq!(plan.origin, Origin::Started);
        assert!(!plan.invalid_incoming);
        assert_eq!(plan.context.sampled, sampled, "b3: {value}");
        assert_eq!(sent_traceparent(&host).2, if sampled { "03" } else { "02" });
    }
}

#[test]
fn sampling_ratio_applies_to_new_and_undecided_traces_only() {
    let (plan, _) = run(r#"{"sampling_ratio":0}"#, &[]);
    assert!(!plan.context.sampled);
    let decided = format!("00-{TRACE}-{SPAN}-01");
    let (plan, _) = run(r#"{"sampling_ratio":0}"#, &[(TRACEPARENT, &decided)]);
    assert!(plan.context.sampled, "the caller's decision is kept");
    let undecided = format!("{B3_TRACE}-{B3_SPAN}");
    for ratio in ["0", "1"] {
        let (plan, _) = run(
            &format!(r#"{{"sampling_ratio":{ratio}}}"#),
            &[(b3::SINGLE, &undecided)],
        );
        assert_eq!(plan.context.sampled, ratio == "1");
    }
}

#[test]
fn untrusted_edge_starts_a_new_trace_and_keeps_the_client_id_aside() {
    let json = r#"{"trust_incoming":false,"client_trace_id_header":"x-client-trace-id"}"#;
    let incoming = format!("00-{TRACE}-{SPAN}-01");
    let (plan, host) = run(
        json,
        &[
            (TRACEPARENT, &incoming),
            (TRACESTATE, "rojo=1"),
            ("x-request-id", "client-chosen"),
            ("x-client-trace-id", "forged"),
            ("b3", "1"),
        ],
    );
    assert_eq!(plan.origin, Origin::Started);
    assert_ne!(sent_traceparent(&host).0, TRACE);
    assert_eq!(header(&host, TRACESTATE), None);
    assert_eq!(header(&host, "x-client-trace-id").as_deref(), Some(TRACE));
    assert_ne!(
        header(&host, "x-request-id").as_deref(),
        Some("client-chosen")
    );
    assert_eq!(header(&host, b3::SINGLE), None);

    // Garbage or nothing from the client: the forged header is removed, not passed on.
    let (_, host) = run(
        json,
        &[("x-client-trace-id", "forged"), (TRACEPARENT, "junk")],
    );
    assert_eq!(header(&host, "x-client-trace-id"), None);
}

#[test]
fn untrusted_edge_ignores_client_sampling_decisions() {
    let json = r#"{"trust_incoming":false,"sampling_ratio":0}"#;
    let (plan, _) = run(json, &[(b3::SINGLE, "d")]);
    assert!(!plan.context.sampled && !plan.context.debug);
}

#[test]
fn request_id_is_kept_when_valid_and_replaced_otherwise() {
    let (plan, host) = run("{}", &[("x-request-id", "abc-123")]);
    assert_eq!(header(&host, "x-request-id").as_deref(), Some("abc-123"));
    assert!(
        !plan
            .request_headers
            .iter()
            .any(|(n, _)| n == "x-request-id"),
        "no needless edit"
    );
    for bad in ["", "has space", "<script>", &"x".repeat(200)] {
        let (_, host) = run("{}", &[("x-request-id", bad)]);
        let id = header(&host, "x-request-id").unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36);
    }
    // Two ids at once (found by the tracing_plan fuzz target): one new id replaces both.
    let (_, host) = run("{}", &[("x-request-id", "a-1"), ("x-request-id", "b-2")]);
    let ids = host.request_header_values("x-request-id");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].len(), 36);
    let (_, host) = run(r#"{"request_id_header":"x-correlation-id"}"#, &[]);
    assert!(header(&host, "x-correlation-id").is_some());
    assert_eq!(header(&host, "x-request-id"), None);
}

#[test]
fn response_headers_carry_trace_and_request_ids() {
    let json = r#"{"response":{"traceresponse":true,"trace_id_header":"x-trace-id","request_id_header":"x-request-id"}}"#;
    let incoming = format!("00-{TRACE}-{SPAN}-01");
    let (plan, host) = run(json, &[(TRACEPARENT, &incoming), ("x-request-id", "r-1")]);
    let (_, span, _) = sent_traceparent(&host);
    assert_eq!(
        plan.response_headers,
        vec![
            (TRACERESPONSE.to_string(), format!("00-{TRACE}-{span}-01")),
            ("x-trace-id".to_string(), TRACE.to_string()),
            ("x-request-id".to_string(), "r-1".to_string()),
        ]
    );
    apply_response(&plan.response_headers, &host);
    assert_eq!(host.response_header("x-trace-id").as_deref(), Some(TRACE));
    let (plan, _) = run("{}", &[]);
    assert!(
        plan.response_headers.is_empty(),
        "nothing is sent back by default"
    );
}

#[test]
fn ids_differ_across_requests_and_workers() {
    let mut seen = std::collections::HashSet::new();
    for seed in [1, 2] {
        let worker = FakeHost::new().with_seed(seed);
        for _ in 0..500 {
            let plan = run_on(&worker, "{}", &[]);
            assert!(!is_zero(&plan.context.trace_id) && !is_zero(&plan.context.span_id));
            assert!(seen.insert(plan.trace_id.clone()), "trace id repeated");
            assert!(
                seen.insert(hex::encode(&plan.context.span_id)),
                "span id repeated"
            );
        }
    }
}

#[test]
fn metrics_count_outcomes() {
    let host = FakeHost::new();
    let metrics = crate::metrics::TracingMetrics::define(&host);
    let valid = format!("00-{TRACE}-{SPAN}-00");
    for headers in [
        vec![],
        vec![(TRACEPARENT, valid.as_str())],
        vec![(TRACEPARENT, "bad")],
    ] {
        let plan = run_on(&host, r#"{"sampling_ratio":1}"#, &headers);
        metrics.record(&plan);
    }
    assert_eq!(host.metric("wasmgate_tracing_traces_started"), Some(0));
    metrics.flush(&host);
    assert_eq!(host.metric("wasmgate_tracing_traces_started"), Some(2));
    assert_eq!(host.metric("wasmgate_tracing_traces_continued"), Some(1));
    assert_eq!(host.metric("wasmgate_tracing_incoming_invalid"), Some(1));
    assert_eq!(host.metric("wasmgate_tracing_traces_sampled"), Some(2));
}

/// Fuzz-style: many random and mutated header values through every parser and the whole
/// decision; nothing panics, and whatever is sent upstream is valid.
#[test]
fn parsing_never_panics_and_output_stays_valid() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds = [
        format!("00-{TRACE}-{SPAN}-01"),
        format!("cc-{TRACE}-{SPAN}-01-x"),
        format!("{B3_TRACE}-{B3_SPAN}-1-{SPAN}"),
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".to_string(),
    ];
    let alphabet = b"0123456789abcdefABCDEF-_=,@ \t\x00\xff\xc3\xa9dxz1";
    let config = config(r#"{"inject":["w3c","b3","b3multi"]}"#);
    let host = FakeHost::new();
    for round in 0..30_000 {
        let mut bytes: Vec<u8> = match next() % 3 {
            0 => (0..next() % 80)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect(),
            1 => (0..next() % 80).map(|_| next() as u8).collect(),
            _ => seeds[round % seeds.len()].clone().into_bytes(),
        };
        for _ in 0..next() % 4 {
            if bytes.is_empty() {
                break;
            }
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 3 {
                0 => bytes[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, next() as u8),
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(parent) = traceparent::parse(&text) {
            assert!(
                !is_zero(&parent.trace_id) && !is_zero(&parent.span_id),
                "{text:?}"
            );
        }
        let _ = b3::parse_single(&text);
        let _ = tracestate::sanitize([text.as_str()], W3cLevel::Two);
        let _ = request_id::is_acceptable(&text);
        let multi = MultiHeaders {
            trace_id: Some(&text),
            span_id: Some(&text),
            sampled: Some(&text),
            ..Default::default()
        };
        let _ = b3::parse_multi(&multi);

        let headers: Vec<(String, String)> = [
            TRACEPARENT,
            TRACESTATE,
            b3::SINGLE,
            b3::SAMPLED,
            "x-request-id",
        ]
        .iter()
        .filter(|_| next() % 2 == 0)
        .map(|name| (name.to_string(), text.clone()))
        .collect();
        let plan = plan(&config, &headers, &host);
        for (name, value) in &plan.request_headers {
            match (name.as_str(), value) {
                (TRACEPARENT, Some(v)) => assert!(traceparent::parse(v).is_some(), "{v}"),
                (b3::SINGLE, Some(v)) => {
                    assert!(matches!(b3::parse_single(v), Some(B3::Context(_))), "{v}")
                }
                (TRACESTATE, Some(v)) => {
                    assert_eq!(
                        tracestate::sanitize([v.as_str()], W3cLevel::Two).as_ref(),
                        Some(v)
                    )
                }
                ("x-request-id", Some(v)) => assert!(request_id::is_acceptable(v)),
                _ => {}
            }
        }
    }
}

#[test]
fn an_all_zero_random_draw_never_becomes_an_id() {
    let host = FakeHost::new();
    assert!(!is_zero(&nonzero::<16>(&[0; 16], &host)));
    assert!(!is_zero(&nonzero::<8>(&[0; 8], &host)));
    assert_eq!(
        nonzero::<2>(&[0, 7], &host),
        [0, 7],
        "a non-zero draw is kept as it is"
    );
}
