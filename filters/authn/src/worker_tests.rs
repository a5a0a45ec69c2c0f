//! The worker's orchestration on a FakeHost, as the module glue drives it: a request that
//! waits for remote keys, the fetch the tick starts, the answer that names the request again,
//! and the decision it then gets.

use super::*;
use crate::testkit::*;
use jwt_simple::prelude::RSAKeyPairLike;
use serde_json::json;
use std::time::Duration as StdDuration;
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::Policy;

fn worker(host: &FakeHost) -> Worker {
    let config = json!({"providers": [{"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
        "remote_jwks": {"cluster": "jwks", "wait_for_keys_ms": 500},
        "claim_headers": [{"claim": "sub", "header": "x-user-id"}]}]});
    Worker::configure(host, Some(config.to_string().as_bytes())).unwrap()
}

/// A request with a valid token on a fresh stream `id`; the view as the glue keeps it.
fn send(w: &Worker, host: &FakeHost, id: u32) -> (Flow, RequestView, AuthnStream) {
    let token = rsa_a().sign(claims(json!({}))).unwrap();
    host.reset_stream();
    for (k, v) in [
        (":method", "GET"),
        (":path", "/x"),
        (":authority", "api.test"),
    ] {
        host.add_request_header(k, v);
    }
    host.add_request_header("authorization", &format!("Bearer {token}"));
    let mut view = RequestView::unjudged(host.request_headers());
    let mut stream = w.new_stream(id);
    let flow = w.on_request(host, &mut view, &mut stream);
    (flow, view, stream)
}

fn jwks() -> Vec<u8> {
    json!({"keys": [rsa_jwk(&rsa_a(), "rsa-a")]})
        .to_string()
        .into_bytes()
}

#[test]
fn a_waiting_request_is_named_by_the_fetch_answer_and_then_allowed() {
    let host = FakeHost::new();
    let w = worker(&host);
    let (flow, mut view, mut stream) = send(&w, &host, 7);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(w.on_tick(&host), Vec::<u32>::new(), "no keys yet");
    let call = host.calls().pop().expect("the tick starts the fetch");
    assert_eq!(call.cluster, "jwks");
    host.set_call_response(&[(":status", "200")], Some(&jwks()));
    assert_eq!(w.on_http_call_response(&host, call.token, 1 << 20), [7]);
    assert_eq!(w.on_wake(&host, &mut view, &mut stream), Flow::Continue);
    assert_eq!(host.request_header("x-user-id").as_deref(), Some("alice"));
    let identity = view.identity.expect("the verified identity");
    assert_eq!(identity.name.as_deref(), Some("alice"));
    assert_eq!(identity.claim("iss").as_deref(), Some(ISSUER));
}

#[test]
fn an_answer_to_someone_elses_call_names_nobody() {
    let host = FakeHost::new();
    let w = worker(&host);
    send(&w, &host, 7);
    w.on_tick(&host);
    host.set_call_response(&[(":status", "200")], Some(&jwks()));
    assert!(w.on_http_call_response(&host, 999, 100).is_empty());
}

#[test]
fn past_the_wait_bound_the_request_gets_503() {
    let host = FakeHost::new();
    let w = worker(&host);
    let (_, mut view, mut stream) = send(&w, &host, 3);
    host.advance(StdDuration::from_millis(600));
    assert_eq!(w.on_tick(&host), [3]);
    let Flow::Reply(reply) = w.on_wake(&host, &mut view, &mut stream) else {
        panic!("expected a reply")
    };
    assert_eq!(
        (reply.status, reply.error.as_str()),
        (503, "keys_unavailable")
    );
}

#[test]
fn an_ended_stream_is_forgotten() {
    let host = FakeHost::new();
    let w = worker(&host);
    let (_, _, mut stream) = send(&w, &host, 5);
    w.on_stream_end(&mut stream);
    host.advance(StdDuration::from_millis(600));
    assert!(w.on_tick(&host).is_empty());
}

#[test]
fn a_bad_configuration_names_the_field() {
    let host = FakeHost::new();
    let err = Worker::configure(&host, Some(br#"{"providers":[{"name":"idp"}]}"#))
        .err()
        .expect("refused");
    assert!(err.field.starts_with("authn.providers[0]"), "{err}");
}

/// What the span of a recorded request says: the provider that verified after a key wait (with
/// the wait as an event), and why a request was denied. Never a token or a claim.
#[test]
fn decisions_are_noted_for_the_span_only_while_it_records() {
    use crate::span_attributes::{KEYS_WAIT, OUTCOME, PROVIDER, REASON, WAIT_MS};
    use wasmgate_shared::span_notes::NoteValue;
    let host = FakeHost::new();
    let w = worker(&host);
    let token = rsa_a().sign(claims(json!({}))).unwrap();
    let view = |auth: Option<&str>| {
        let mut headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), "/x".to_string()),
            (":authority".to_string(), "api.test".to_string()),
        ];
        if let Some(token) = auth {
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        let mut view = RequestView::unjudged(headers);
        view.notes.start_recording();
        view
    };

    let mut waiting = view(Some(&token));
    let mut stream = w.new_stream(7);
    assert_eq!(w.on_request(&host, &mut waiting, &mut stream), Flow::Pause);
    w.on_tick(&host);
    let call = host.calls().pop().expect("the fetch");
    host.advance(StdDuration::from_millis(40));
    host.set_call_response(&[(":status", "200")], Some(&jwks()));
    w.on_http_call_response(&host, call.token, 1 << 20);
    assert_eq!(w.on_wake(&host, &mut waiting, &mut stream), Flow::Continue);
    let notes = &waiting.notes;
    assert_eq!(
        notes.attributes(),
        [(OUTCOME, "allowed".into()), (PROVIDER, "idp".into())]
    );
    let wait = &notes.events()[0];
    assert_eq!(wait.name, KEYS_WAIT);
    assert_eq!(wait.attributes, [(WAIT_MS, NoteValue::Int(40))]);

    let mut denied = view(None);
    let flow = w.on_request(&host, &mut denied, &mut w.new_stream(8));
    assert!(matches!(flow, Flow::Reply(_)));
    assert_eq!(
        denied.notes.attributes(),
        [
            (OUTCOME, "denied".into()),
            (REASON, "missing_credential".into())
        ]
    );

    let mut unrecorded = RequestView::unjudged(Vec::new());
    w.on_request(&host, &mut unrecorded, &mut w.new_stream(9));
    assert!(unrecorded.notes.attributes().is_empty());
}

#[test]
fn a_replacing_configuration_serves_with_the_keys_already_fetched_without_fetching_again() {
    let host = FakeHost::new();
    let old = worker(&host);
    send(&old, &host, 1);
    old.on_tick(&host);
    let call = host.calls().pop().expect("the tick starts the fetch");
    host.set_call_response(&[(":status", "200")], Some(&jwks()));
    assert_eq!(old.on_http_call_response(&host, call.token, 1 << 20), [1]);

    // A configuration change: a new root context in the same VM, with empty state of its own.
    let new = worker(&host);
    let (flow, _, _) = send(&new, &host, 2);
    assert_eq!(
        flow,
        Flow::Continue,
        "verified at once, not paused until a tick"
    );
    assert_eq!(host.request_header("x-user-id").as_deref(), Some("alice"));
    new.on_tick(&host);
    assert_eq!(
        host.calls().len(),
        1,
        "the keys in shared data are not fetched again"
    );
}
