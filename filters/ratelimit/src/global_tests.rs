use super::*;
use crate::config::RawRatelimitConfig;
use crate::plugin::{Pending, Plugin, Step};
use crate::rls::{DescriptorStatus, HeaderValue, ProtoDuration, RateLimit, CODE_UNKNOWN};
use std::time::Duration;
use wasmgate_shared::config::parse;
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::RequestView;

/// The fake host's current request, as the glue hands it to the policy.
fn current(host: &FakeHost) -> RequestView {
    RequestView::unjudged(host.request_headers())
}

const GLOBAL: &str = r#""global":{"cluster":"rls","domain":"api","timeout_ms":250"#;

fn plugin(host: &FakeHost, json: &str) -> Plugin {
    let config = parse::<RawRatelimitConfig>(Some(json.as_bytes()))
        .and_then(RawRatelimitConfig::compile)
        .unwrap();
    Plugin::configure(host, config)
}

/// One per-API-key global rule (fallback bucket of 2 per 60 s) with `policy` on failure.
fn keyed(policy: &str) -> String {
    format!(
        r#"{{{GLOBAL},"on_failure":"{policy}"}},"rules":[{{"name":"per-key","mode":"global",
        "capacity":2,"period_ms":60000,"key":[{{"source":"header","name":"x-api-key"}}]}}]}}"#
    )
}

fn request(host: &FakeHost, headers: &[(&str, &str)]) {
    host.reset_stream();
    host.add_request_header(":method", "GET");
    host.add_request_header(":path", "/items?page=2");
    host.add_request_header(":authority", "gw");
    for (k, v) in headers {
        host.add_request_header(k, v);
    }
    host.set_property(&["source", "address"], b"10.1.2.3:4000");
}

fn wait(step: Step) -> Pending {
    match step {
        Step::Wait(p) => p,
        other => panic!("expected a call to the service, got {other:?}"),
    }
}

/// The last call's decoded `RateLimitRequest`.
fn sent(host: &FakeHost) -> RateLimitRequest {
    let call = host.calls().pop().unwrap();
    RateLimitRequest::decode(call.body.unwrap().as_slice()).unwrap()
}

fn entries(d: &Descriptor) -> Vec<(&str, &str)> {
    d.entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect()
}

/// Delivers `response` (gRPC OK) to `pending`.
fn answer(p: &Plugin, host: &FakeHost, pending: Pending, response: &RateLimitResponse) -> Step {
    let bytes = response.encode_to_vec();
    host.set_call_response(&[], Some(&bytes));
    p.answer(host, &current(host), pending, 0, bytes.len())
}

fn code(overall_code: i32) -> RateLimitResponse {
    RateLimitResponse {
        overall_code,
        ..Default::default()
    }
}

fn status(code: i32, per_minute: u32, remaining: u32, reset: (i64, i32)) -> DescriptorStatus {
    DescriptorStatus {
        code,
        current_limit: Some(RateLimit {
            requests_per_unit: per_minute,
            unit: 2,
            name: String::new(),
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(ProtoDuration {
            seconds: reset.0,
            nanos: reset.1,
        }),
    }
}

fn header(k: &str, v: &str) -> HeaderValue {
    HeaderValue {
        key: k.into(),
        value: v.into(),
        raw_value: Vec::new(),
    }
}

fn reply(step: &Step) -> &LocalReply {
    match step {
        Step::Reply(r) => &r.reply,
        other => panic!("expected a local reply, got {other:?}"),
    }
}

fn reply_header<'a>(r: &'a LocalReply, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A counter's value once the batched counts are flushed (the root context's tick).
fn metric(p: &Plugin, host: &FakeHost, name: &str) -> i64 {
    p.flush_metrics(host);
    let full = wasmgate_shared::metrics::metric_name("ratelimit", name);
    host.metric(&full).unwrap()
}

#[test]
fn global_rule_sends_one_descriptor_from_its_key_parts() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(
            r#"{{{GLOBAL}}},"rules":[{{"name":"combo","mode":"global","capacity":9,"cost":3,
            "key":[{{"source":"client"}},{{"source":"header","name":"x-api-key"}},{{"source":"path"}}]}}]}}"#
        ),
    );
    request(&host, &[("x-api-key", "k1")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    assert_eq!(pending.rules, [0]);
    let call = host.calls().pop().unwrap();
    assert_eq!(call.cluster, "rls");
    assert_eq!(call.timeout, Duration::from_millis(250));
    assert_eq!(
        call.grpc,
        Some((
            "envoy.service.ratelimit.v3.RateLimitService".to_string(),
            "ShouldRateLimit".to_string()
        ))
    );
    let req = sent(&host);
    assert_eq!(req.domain, "api");
    assert_eq!(req.hits_addend, 3, "hits_addend is the rule's cost");
    assert_eq!(
        entries(&req.descriptors[0]),
        [
            ("generic_key", "combo"),
            ("remote_address", "10.1.2.3"),
            ("x-api-key", "k1"),
            ("path", "/items"),
        ]
    );
}

#[test]
fn rules_with_other_costs_carry_their_own_hits_addend() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(
            r#"{{{GLOBAL}}},"rules":[{{"name":"a","mode":"global","capacity":9,"cost":2}},
            {{"name":"b","mode":"global","capacity":9,"cost":5}},{{"name":"c","mode":"global","capacity":9,"cost":2}}]}}"#
        ),
    );
    request(&host, &[]);
    wait(p.decide(&host, &mut current(&host)));
    let req = sent(&host);
    assert_eq!(req.hits_addend, 2);
    let own: Vec<Option<u64>> = req
        .descriptors
        .iter()
        .map(|d| d.hits_addend.map(|h| h.value))
        .collect();
    assert_eq!(own, [None, Some(5), None]);
    assert_eq!(entries(&req.descriptors[2]), [("generic_key", "c")]);
}

#[test]
fn missing_key_is_an_empty_value_under_fallback_and_no_call_under_skip() {
    let host = FakeHost::new();
    let p = plugin(&host, &keyed("allow"));
    request(&host, &[]);
    wait(p.decide(&host, &mut current(&host)));
    assert_eq!(
        entries(&sent(&host).descriptors[0]),
        [("generic_key", "per-key"), ("x-api-key", "")]
    );

    let host = FakeHost::new();
    let p = plugin(
        &host,
        &keyed("allow").replace(
            r#""mode":"global""#,
            r#""mode":"global","on_missing_key":"skip""#,
        ),
    );
    request(&host, &[]);
    assert!(matches!(
        p.decide(&host, &mut current(&host)),
        Step::Continue(_)
    ));
    assert!(host.calls().is_empty());
}

#[test]
fn local_rules_never_call_the_service() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(r#"{{{GLOBAL}}},"rules":[{{"name":"l","capacity":1}}]}}"#),
    );
    request(&host, &[]);
    assert!(matches!(
        p.decide(&host, &mut current(&host)),
        Step::Continue(_)
    ));
    request(&host, &[]);
    assert_eq!(reply(&p.decide(&host, &mut current(&host))).status, 429);
    assert!(host.calls().is_empty());
}

#[test]
fn ok_admits_and_passes_on_the_services_headers() {
    let host = FakeHost::new();
    let p = plugin(&host, &keyed("deny"));
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OK);
    response.request_headers_to_add = vec![header("x-quota-tier", "gold")];
    response.response_headers_to_add = vec![header("X-Engine", "limitador")];
    let Step::Continue(allowed) = answer(&p, &host, pending, &response) else {
        panic!("not admitted")
    };
    assert_eq!(
        allowed.request_headers,
        [("x-quota-tier".to_string(), "gold".to_string())]
    );
    assert_eq!(
        allowed.response_headers,
        [("x-engine".to_string(), "limitador".to_string())]
    );
    assert!(allowed.fields.is_empty(), "on_allowed is off by default");
    assert_eq!(metric(&p, &host, "global_ok"), 1);
    assert_eq!(metric(&p, &host, "rule_per-key_allowed"), 1);
}

#[test]
fn the_services_headers_that_are_not_valid_fields_are_dropped() {
    // Found by the rls_response fuzz target: the service's headers went out as sent, so a
    // pseudo-header rewrote the judged request and a CR LF split a field.
    let host = FakeHost::new();
    let p = plugin(&host, &keyed("deny"));
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OK);
    response.request_headers_to_add = vec![
        header(":path", "/admin"),
        header("x tier", "gold"),
        header("x-tier", "gold\r\nx-admin: 1"),
        header("x-tier", "gold\tplus"),
    ];
    response.response_headers_to_add = vec![
        header("x-engine", "rls\n"),
        header("", "empty"),
        header("X-Engine", "limitador"),
    ];
    let Step::Continue(allowed) = answer(&p, &host, pending, &response) else {
        panic!("not admitted")
    };
    assert_eq!(
        allowed.request_headers,
        [("x-tier".to_string(), "gold\tplus".to_string())]
    );
    assert_eq!(
        allowed.response_headers,
        [("x-engine".to_string(), "limitador".to_string())]
    );
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OVER_LIMIT);
    response.response_headers_to_add =
        vec![header("retry-after", "1\r\n"), header(":status", "200")];
    let r = reply(&answer(&p, &host, pending, &response)).clone();
    assert_eq!(r.status, 429);
    assert_eq!(reply_header(&r, "retry-after"), Some("1"));
    assert_eq!(reply_header(&r, ":status"), None);
}

#[test]
fn on_allowed_fields_come_from_the_services_status() {
    let host = FakeHost::new();
    let json = keyed("deny").replace(
        r#""rules""#,
        r#""rate_limit_headers":{"style":"x_ratelimit","on_allowed":true},"rules""#,
    );
    let p = plugin(&host, &json);
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OK);
    response.statuses = vec![status(CODE_OK, 100, 41, (12, 0))];
    let Step::Continue(allowed) = answer(&p, &host, pending, &response) else {
        panic!("not admitted")
    };
    assert_eq!(
        allowed.fields,
        [
            ("x-ratelimit-limit", "100".to_string()),
            ("x-ratelimit-remaining", "41".to_string()),
            ("x-ratelimit-reset", "12".to_string()),
        ]
    );
}

#[test]
fn over_limit_is_the_local_429_with_the_services_quota() {
    let host = FakeHost::new();
    let p = plugin(&host, &keyed("allow"));
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OVER_LIMIT);
    response.statuses = vec![status(CODE_OVER_LIMIT, 100, 0, (17, 200))];
    response.response_headers_to_add = vec![
        header("x-engine", "rls"),
        header("X-RateLimit-Limit", "100, 100;w=60"),
    ];
    let step = answer(&p, &host, pending, &response);
    let r = reply(&step);
    assert_eq!((r.status, r.error.as_str()), (429, "rate_limited"));
    assert_eq!(reply_header(r, "retry-after"), Some("18"));
    // The service's own field replaces the one built from its status.
    assert_eq!(reply_header(r, "x-ratelimit-limit"), Some("100, 100;w=60"));
    let limits = r.headers.iter().filter(|(k, _)| k == "x-ratelimit-limit");
    assert_eq!(limits.count(), 1);
    assert_eq!(reply_header(r, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(reply_header(r, "x-ratelimit-reset"), Some("18"));
    assert_eq!(
        reply_header(r, "ratelimit-policy"),
        Some("\"per-key\";q=100;w=60")
    );
    assert_eq!(reply_header(r, "ratelimit"), Some("\"per-key\";r=0;t=18"));
    assert_eq!(reply_header(r, "x-engine"), Some("rls"));
    assert_eq!(metric(&p, &host, "global_over_limit"), 1);
    assert_eq!(metric(&p, &host, "rule_per-key_limited"), 1);
}

#[test]
fn over_limit_without_statuses_refuses_every_rule() {
    // Limitador's server answers with the overall code and its own headers only.
    let host = FakeHost::new();
    let p = plugin(&host, &keyed("allow"));
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OVER_LIMIT);
    response.response_headers_to_add = vec![header("X-RateLimit-Limit", "2, 2;w=60")];
    let step = answer(&p, &host, pending, &response);
    let r = reply(&step);
    assert_eq!(r.status, 429);
    assert_eq!(reply_header(r, "retry-after"), Some("1"));
    assert_eq!(reply_header(r, "x-ratelimit-limit"), Some("2, 2;w=60"));
}

#[test]
fn shadow_global_rule_over_limit_admits_and_counts() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &keyed("deny").replace(r#""mode":"global""#, r#""mode":"global","shadow":true"#),
    );
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let step = answer(&p, &host, pending, &code(CODE_OVER_LIMIT));
    assert!(matches!(step, Step::Continue(_)));
    assert_eq!(metric(&p, &host, "rule_per-key_shadow_limited"), 1);
}

#[test]
fn only_the_rules_the_service_refused_count_as_limited() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(
            r#"{{{GLOBAL}}},"rules":[{{"name":"a","mode":"global","capacity":9}},
            {{"name":"b","mode":"global","capacity":9}}]}}"#
        ),
    );
    request(&host, &[]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OVER_LIMIT);
    response.statuses = vec![
        status(CODE_OK, 10, 5, (1, 0)),
        status(CODE_OVER_LIMIT, 3, 0, (40, 0)),
    ];
    let step = answer(&p, &host, pending, &response);
    assert_eq!(reply_header(reply(&step), "retry-after"), Some("40"));
    assert_eq!(metric(&p, &host, "rule_a_limited"), 0);
    assert_eq!(metric(&p, &host, "rule_b_limited"), 1);
}

#[test]
fn over_limit_retry_after_is_read_off_the_refusing_items_t() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(
            r#"{{{GLOBAL}}},"rules":[{{"name":"a","mode":"global","capacity":9}},
            {{"name":"b","mode":"global","capacity":9}},
            {{"name":"c","mode":"global","capacity":9}}]}}"#
        ),
    );
    request(&host, &[]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OVER_LIMIT);
    response.statuses = vec![
        status(CODE_OK, 10, 5, (90, 0)),
        status(CODE_OVER_LIMIT, 3, 0, (39, 1)),
        status(CODE_OVER_LIMIT, 5, 0, (7, 500_000_000)),
    ];
    let step = answer(&p, &host, pending, &response);
    let r = reply(&step);
    // `a` admitted and is left out: its reset (90 s) is no reason to wait.
    assert_eq!(reply_header(r, "retry-after"), Some("40"));
    assert_eq!(
        reply_header(r, "ratelimit-policy"),
        Some("\"b\";q=3;w=60, \"c\";q=5;w=60")
    );
    assert_eq!(
        reply_header(r, "ratelimit"),
        Some("\"b\";r=0;t=40, \"c\";r=0;t=8")
    );
    assert_eq!(reply_header(r, "x-ratelimit-reset"), Some("40"));
}

#[test]
fn over_limit_without_a_reset_has_t_0_and_retry_after_1() {
    let host = FakeHost::new();
    let p = plugin(&host, &keyed("allow"));
    request(&host, &[("x-api-key", "k")]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    let mut response = code(CODE_OVER_LIMIT);
    let mut refused = status(CODE_OVER_LIMIT, 100, 0, (0, 0));
    refused.duration_until_reset = None;
    response.statuses = vec![refused];
    let step = answer(&p, &host, pending, &response);
    let r = reply(&step);
    assert_eq!(reply_header(r, "retry-after"), Some("1"));
    assert_eq!(reply_header(r, "ratelimit"), Some("\"per-key\";r=0;t=0"));
}

/// How a call fails in each case: gRPC status and message bytes, or a dispatch failure.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Unavailable,
    Timeout,
    Late,
    Garbage,
    Unknown,
    Dispatch,
}

fn fail_once(host: &FakeHost, p: &Plugin, fault: Fault) -> Step {
    request(host, &[("x-api-key", "k")]);
    if let Fault::Dispatch = fault {
        return p.decide(host, &mut current(host));
    }
    let pending = wait(p.decide(host, &mut current(host)));
    match fault {
        Fault::Unavailable => p.answer(host, &current(host), pending, 14, 0),
        Fault::Timeout => p.answer(host, &current(host), pending, 4, 0),
        Fault::Late => {
            // Envoy's own timeout: UNAVAILABLE, once the configured time has passed.
            host.advance(Duration::from_millis(240));
            p.answer(host, &current(host), pending, 14, 0)
        }
        Fault::Garbage => {
            host.set_call_response(&[], Some(&[0x0a, 0xff]));
            p.answer(host, &current(host), pending, 0, 2)
        }
        Fault::Unknown => answer(p, host, pending, &code(CODE_UNKNOWN)),
        Fault::Dispatch => unreachable!(),
    }
}

#[test]
fn every_failure_applies_the_policy_and_is_counted() {
    let faults = [
        (Fault::Unavailable, "global_error"),
        (Fault::Timeout, "global_timeout"),
        (Fault::Late, "global_timeout"),
        (Fault::Garbage, "global_bad_response"),
        (Fault::Unknown, "global_bad_response"),
        (Fault::Dispatch, "global_dispatch_failed"),
    ];
    for (fault, counter) in faults {
        for policy in ["allow", "deny", "local"] {
            let host = if let Fault::Dispatch = fault {
                FakeHost::new().with_failing_calls()
            } else {
                FakeHost::new()
            };
            let p = plugin(&host, &keyed(policy));
            let steps: Vec<Step> = (0..3).map(|_| fail_once(&host, &p, fault)).collect();
            let statuses: Vec<u16> = steps
                .iter()
                .map(|s| match s {
                    Step::Continue(_) => 200,
                    Step::Reply(r) => r.reply.status,
                    Step::Wait(_) => 0,
                })
                .collect();
            let want = match policy {
                "allow" => [200, 200, 200],
                "deny" => [503, 503, 503],
                // The rule's local bucket (2 per minute) takes over.
                _ => [200, 200, 429],
            };
            assert_eq!(statuses, want, "{fault:?} with on_failure {policy}");
            assert_eq!(metric(&p, &host, counter), 3, "{fault:?}");
            let outcome = match policy {
                "allow" => "global_failure_allowed",
                "deny" => "global_failure_denied",
                _ => "global_failure_local",
            };
            assert_eq!(metric(&p, &host, outcome), 3);
        }
    }
}

#[test]
fn deny_policy_reply_is_a_503_with_retry_after() {
    let host = FakeHost::new();
    let p = plugin(&host, &keyed("deny"));
    let step = fail_once(&host, &p, Fault::Unavailable);
    let r = reply(&step);
    assert_eq!((r.status, r.error.as_str()), (503, "ratelimit_unavailable"));
    assert_eq!(reply_header(r, "retry-after"), Some("1"));
}

#[test]
fn the_default_policy_falls_back_to_local_and_recovers() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        r#"{"global":{},"rules":[{"name":"g","mode":"global","capacity":1,"period_ms":60000}]}"#,
    );
    assert_eq!(host.calls().len(), 0);
    request(&host, &[]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    assert!(matches!(
        p.answer(&host, &current(&host), pending, 14, 0),
        Step::Continue(_)
    ));
    request(&host, &[]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    assert_eq!(
        reply(&p.answer(&host, &current(&host), pending, 14, 0)).status,
        429
    );
    assert_eq!(metric(&p, &host, "global_failure_local"), 2);
    // The service is back: its answer decides again, whatever the local bucket holds.
    request(&host, &[]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    assert!(matches!(
        answer(&p, &host, pending, &code(CODE_OK)),
        Step::Continue(_)
    ));
    let call = host.calls().pop().unwrap();
    assert_eq!(call.cluster, "ratelimit_service");
    assert_eq!(call.timeout, Duration::from_millis(100));
    assert_eq!(sent(&host).domain, "wasmgate");
}

#[test]
fn both_mode_checks_the_local_bucket_first() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(
            r#"{{{GLOBAL},"on_failure":"local"}},"rules":[{{"name":"b","mode":"both","capacity":1,"period_ms":60000}}]}}"#
        ),
    );
    request(&host, &[]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    assert!(matches!(
        answer(&p, &host, pending, &code(CODE_OK)),
        Step::Continue(_)
    ));
    // The local bucket is empty: refused without asking the service.
    request(&host, &[]);
    assert_eq!(reply(&p.decide(&host, &mut current(&host))).status, 429);
    assert_eq!(host.calls().len(), 1);
}

#[test]
fn both_mode_rule_is_not_charged_twice_on_fallback() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(
            r#"{{{GLOBAL},"on_failure":"local"}},"rules":[{{"name":"b","mode":"both","capacity":2,"period_ms":60000}}]}}"#
        ),
    );
    let outcomes: Vec<bool> = (0..3)
        .map(|_| {
            request(&host, &[]);
            match p.decide(&host, &mut current(&host)) {
                Step::Wait(pending) => {
                    matches!(
                        p.answer(&host, &current(&host), pending, 14, 0),
                        Step::Continue(_)
                    )
                }
                _ => false,
            }
        })
        .collect();
    assert_eq!(outcomes, [true, true, false]);
}

#[test]
fn local_fields_are_kept_across_the_call() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        &format!(
            r#"{{{GLOBAL}}},"rate_limit_headers":{{"style":"x_ratelimit","on_allowed":true}},
            "rules":[{{"name":"l","capacity":5}},{{"name":"g","mode":"global","capacity":5}}]}}"#
        ),
    );
    request(&host, &[]);
    let pending = wait(p.decide(&host, &mut current(&host)));
    assert_eq!(pending.local_fields.len(), 3);
    let Step::Continue(allowed) = answer(&p, &host, pending, &code(CODE_OK)) else {
        panic!("not admitted")
    };
    assert_eq!(allowed.fields[0], ("x-ratelimit-limit", "5".to_string()));
}
