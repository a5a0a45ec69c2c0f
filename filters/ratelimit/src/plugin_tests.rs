//! The whole request step on a FakeHost: a path trick neither leaves a rule nor opens a fresh
//! bucket, and what has no canonical form is refused before any bucket is read.

use super::*;
use crate::config::RawRatelimitConfig;
use wasmgate_shared::config::parse;
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::RequestView;

/// The fake host's current request, as the glue hands it to the policy.
fn current(host: &FakeHost) -> RequestView {
    RequestView::unjudged(host.request_headers())
}

fn plugin(host: &FakeHost, json: &str) -> Plugin {
    let config = parse::<RawRatelimitConfig>(Some(json.as_bytes()))
        .and_then(RawRatelimitConfig::compile)
        .unwrap();
    Plugin::configure(host, config)
}

fn send(p: &Plugin, host: &FakeHost, path: &str) -> Step {
    host.reset_stream();
    host.add_request_header(":method", "GET");
    host.add_request_header(":path", path);
    host.add_request_header(":authority", "gw");
    host.set_property(&["source", "address"], b"10.1.2.3:4000");
    p.decide(host, &mut current(host))
}

fn status(step: &Step) -> u16 {
    match step {
        Step::Continue(_) => 200,
        Step::Reply(refusal) => refusal.reply.status,
        Step::Wait(_) => 0,
    }
}

/// Two tokens per minute for `/admin`, keyed by path: tricks must land in the same bucket.
const ADMIN: &str = r#"{"rules":[{"name":"admin","match":{"prefix":"/admin"},
    "key":[{"source":"path"}],"capacity":2,"period_ms":60000}]}"#;

#[test]
fn path_tricks_neither_leave_the_rule_nor_open_a_new_bucket() {
    let host = FakeHost::new();
    let p = plugin(&host, ADMIN);
    assert_eq!(status(&send(&p, &host, "/admin/users")), 200);
    assert_eq!(status(&send(&p, &host, "/admin/users?x=1")), 200);
    for trick in [
        "/admin/users",
        "/public/../admin/users",
        "/%61dmin/users",
        "//admin//users",
        "/admin/./users",
        "/admin/x/../users",
    ] {
        assert_eq!(status(&send(&p, &host, trick)), 429, "{trick}");
    }
    assert_eq!(
        status(&send(&p, &host, "/adminx/users")),
        200,
        "another segment"
    );
}

#[test]
fn the_upstream_gets_the_canonical_path() {
    let host = FakeHost::new();
    let p = plugin(&host, ADMIN);
    assert_eq!(
        status(&send(&p, &host, "/public/../%61dmin/users?q=/../x")),
        200
    );
    assert_eq!(
        host.request_header(":path").as_deref(),
        Some("/admin/users?q=/../x")
    );
}

#[test]
fn an_ambiguous_path_is_refused_with_400() {
    let host = FakeHost::new();
    let p = plugin(&host, ADMIN);
    for path in [
        "/admin%2Fusers",
        "/admin/..;/x",
        "/admin/%252e",
        "/admin\\x",
    ] {
        let step = send(&p, &host, path);
        let Step::Reply(Refusal { reply, .. }) = step else {
            panic!("{path}: {step:?}")
        };
        assert_eq!(
            (reply.status, reply.error.as_str()),
            (400, "invalid_path"),
            "{path}"
        );
    }
    p.flush_metrics(&host);
    assert_eq!(host.metric("wasmgate_ratelimit_path_refused"), Some(4));
}

#[test]
fn the_paths_option_is_honoured() {
    let host = FakeHost::new();
    let p = plugin(
        &host,
        r#"{"paths":{"escaped_slashes":"keep"},"rules":[{"name":"all","capacity":5}]}"#,
    );
    assert_eq!(status(&send(&p, &host, "/repos/a%2fb")), 200);
    assert_eq!(
        host.request_header(":path").as_deref(),
        Some("/repos/a%2Fb")
    );
}

/// A refusal leaves its reason and the refusing rule (the one that waits longest) on the span.
#[test]
fn a_refusal_is_noted_for_the_span_with_its_rule() {
    use wasmgate_shared::span_notes::NoteValue;
    let host = FakeHost::new();
    let p = plugin(
        &host,
        r#"{"rules":[{"name":"minute","capacity":1,"period_ms":60000},
            {"name":"hour","capacity":1,"period_ms":3600000}]}"#,
    );
    send(&p, &host, "/");
    let mut view = current(&host);
    view.notes.start_recording();
    let step = p.decide(&host, &mut view);
    let flow = Plugin::flow(&host, &mut view, &mut RatelimitStream::default(), step);
    assert!(matches!(flow, Flow::Reply(_)));
    assert_eq!(
        view.notes.attributes(),
        [
            ("wasmgate.ratelimit.reason", NoteValue::from("rate_limited")),
            ("wasmgate.ratelimit.rule", NoteValue::from("hour")),
        ]
    );
}
