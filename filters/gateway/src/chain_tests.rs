//! The gateway policy on a FakeHost, driven as the module glue drives it: stage order, a
//! refusal from each stage with the trace headers, identity keys, pauses in two stages of one
//! request, missing and bad sections.

use super::*;
use base64::Engine;
use jwt_simple::prelude::{Claims, RS256KeyPair, RSAKeyPairLike, UnixTimeStamp};
use prost::Message;
use serde_json::{json, Value};
use std::time::Duration as StdDuration;
use wasmgate_ratelimit::rls::{RateLimitResponse, CODE_OK};
use wasmgate_shared::host::FakeHost;

/// HS256 tokens of issuer `https://issuer.test`, audience `api`, valid until 2100.
const ALICE_ACME: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0IiwiYXVkIjoiYXBpIiwic3ViIjoiYWxpY2UiLCJ0ZW5hbnQiOiJhY21lIiwiZXhwIjo0MTAyNDQ0ODAwfQ.Jjc8feh9xmOIgJuxNLET1YEm3vZxUT5ogjCaqK_3VqE";
const BOB_ACME: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0IiwiYXVkIjoiYXBpIiwic3ViIjoiYm9iIiwidGVuYW50IjoiYWNtZSIsImV4cCI6NDEwMjQ0NDgwMH0.lZ3WJXs9PpdUQAVLWB3ZdikdANmAXFKtGLGJvWx8ltg";
const CAROL_GLOBEX: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0IiwiYXVkIjoiYXBpIiwic3ViIjoiY2Fyb2wiLCJ0ZW5hbnQiOiJnbG9iZXgiLCJleHAiOjQxMDI0NDQ4MDB9.YKCWo35qv8buP2dl0iJMm9mrpKBHg-iX7LXH1t5UvpQ";
/// sha256("alice-key")
const ALICE_KEY_SHA256: &str = "72ee9d4355ccb9d3a4c9dbf37382e38e75c1b1a225b5bd1f729ee91bbda30c20";

fn provider(keys: Value) -> Value {
    json!({"name": "idp", "issuer": "https://issuer.test", "audiences": ["api"],
        "algorithms": ["HS256"], "claim_headers": [{"claim": "sub", "header": "x-user-id"}],
        "jwks": keys})
}

fn inline_keys() -> Value {
    json!({"keys": [{"kty": "oct", "kid": "hs", "k": "Z2F0ZXdheS10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI"}]})
}

fn authn() -> Value {
    json!({"providers": [provider(inline_keys())],
        "api_keys": {"consumers": [{"name": "alice-bot", "key_sha256": ALICE_KEY_SHA256}]},
        "rules": [{"match": {"prefix": "/public"}, "public": true}]})
}

fn tracing() -> Value {
    json!({"response": {"request_id_header": "x-request-id", "trace_id_header": "x-trace-id"}})
}

fn rule(name: &str, capacity: u64, key: Value) -> Value {
    json!({"name": name, "capacity": capacity, "period_ms": 60000, "key": key})
}

fn gateway(host: &FakeHost, config: Value) -> Result<Gateway, ConfigError> {
    Gateway::configure(host, Some(config.to_string().as_bytes()))
}

/// One request through `on_request`, as the glue runs it; the view and stream stay with it.
struct Sent {
    flow: Flow,
    request: RequestView,
    stream: GatewayStream,
}

fn send(g: &Gateway, host: &FakeHost, id: u32, path: &str, headers: &[(&str, &str)]) -> Sent {
    host.reset_stream();
    for (k, v) in [
        (":method", "GET"),
        (":path", path),
        (":authority", "api.test"),
    ] {
        host.add_request_header(k, v);
    }
    for (k, v) in headers {
        host.add_request_header(k, v);
    }
    host.set_property(&["source", "address"], b"10.1.2.3:4000");
    let mut request = RequestView::unjudged(host.request_headers());
    let mut stream = g.new_stream(id);
    let flow = g.on_request(host, &mut request, &mut stream);
    Sent {
        flow,
        request,
        stream,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn status(flow: &Flow) -> u16 {
    match flow {
        Flow::Continue => 200,
        Flow::Reply(reply) => reply.status,
        Flow::Pause => 0,
    }
}

fn header<'a>(reply: &'a Flow, name: &str) -> Option<&'a str> {
    let Flow::Reply(reply) = reply else {
        return None;
    };
    reply
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn an_empty_configuration_lets_everything_through() {
    let host = FakeHost::new();
    let g = gateway(&host, json!({})).unwrap();
    assert_eq!(send(&g, &host, 1, "/anything", &[]).flow, Flow::Continue);
}

#[test]
fn stages_run_in_order_and_each_refusal_carries_the_trace_headers() {
    let host = FakeHost::new();
    let config = json!({"tracing": tracing(),
        "pre_auth": {"rules": [rule("per-client", 3, json!([{"source": "client"}]))]},
        "authn": authn(),
        "ratelimit": {"rules": [rule("per-user", 1, json!([{"source": "identity"}]))]}});
    let g = gateway(&host, config).unwrap();
    let alice = bearer(ALICE_ACME);

    // authn refuses a forged token; the reply carries this request's ids.
    let forged = send(
        &g,
        &host,
        1,
        "/orders",
        &[("authorization", "Bearer a.b.c")],
    );
    assert_eq!(status(&forged.flow), 401);
    let request_id = host.request_header("x-request-id");
    assert!(request_id.is_some(), "tracing ran before authn");
    assert_eq!(header(&forged.flow, "x-request-id"), request_id.as_deref());
    assert!(header(&forged.flow, "x-trace-id").is_some());

    // ratelimit refuses alice's second request (1 per user), after authn identified her.
    assert_eq!(
        status(&send(&g, &host, 2, "/orders", &[("authorization", &alice)]).flow),
        200
    );
    let per_user = send(&g, &host, 3, "/orders", &[("authorization", &alice)]).flow;
    assert_eq!(status(&per_user), 429);
    assert_eq!(
        header(&per_user, "ratelimit-policy").map(|p| p.contains("per-user")),
        Some(true)
    );
    assert!(header(&per_user, "x-request-id").is_some());
    // pre_auth refuses the fourth request from this client before authn runs.
    let per_client = send(&g, &host, 4, "/orders", &[("authorization", &alice)]).flow;
    assert_eq!(status(&per_client), 429);
    assert_eq!(
        header(&per_client, "ratelimit-policy").map(|p| p.contains("per-client")),
        Some(true)
    );
    assert!(header(&per_client, "x-request-id").is_some());
}

#[test]
fn the_pre_auth_stage_refuses_before_any_token_is_checked() {
    let host = FakeHost::new();
    let config = json!({
        "pre_auth": {"rules": [rule("per-client", 1, json!([{"source": "client"}]))]},
        "authn": authn()});
    let g = gateway(&host, config).unwrap();
    assert_eq!(
        status(&send(&g, &host, 1, "/x", &[("authorization", "Bearer a.b.c")]).flow),
        401
    );
    let second = send(&g, &host, 2, "/x", &[("authorization", "Bearer a.b.c")]);
    assert_eq!(
        status(&second.flow),
        429,
        "the forged token never reaches authn"
    );
    g.stages.authn.as_ref().map(|a| a.on_tick(&host));
    assert_eq!(host.metric("wasmgate_authn_denied_malformed"), Some(1));
}

#[test]
fn a_retired_configuration_sends_every_stages_batched_counters() {
    let host = FakeHost::new();
    let config = json!({
        "pre_auth": {"rules": [rule("pre_per_client", 10, json!([{"source": "client"}]))]},
        "authn": authn(),
        "ratelimit": {"rules": [rule("per_client", 10, json!([{"source": "client"}]))]}});
    let g = gateway(&host, config).unwrap();
    let sent = send(&g, &host, 1, "/x", &[("authorization", "Bearer a.b.c")]);
    assert_eq!(status(&sent.flow), 401);
    // No tick before the configuration is replaced (Envoy deletes its root context).
    assert_eq!(host.metric("wasmgate_authn_denied_malformed"), Some(0));
    g.retire(&host);
    assert_eq!(host.metric("wasmgate_authn_denied_malformed"), Some(1));
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_pre_per_client_allowed"),
        Some(1)
    );
}

#[test]
fn a_path_refusal_is_traced_too() {
    let host = FakeHost::new();
    let g = gateway(&host, json!({"tracing": tracing(), "authn": authn()})).unwrap();
    let sent = send(&g, &host, 1, "/public/..%2Fadmin", &[]);
    assert_eq!(status(&sent.flow), 400);
    assert!(header(&sent.flow, "x-request-id").is_some());
}

#[test]
fn identity_keys_count_per_user_and_per_claim_not_per_header() {
    let host = FakeHost::new();
    let config = json!({"authn": authn(), "ratelimit": {"rules": [
        rule("per-user", 1, json!([{"source": "identity"}])),
        rule("per-tenant", 2, json!([{"source": "claim", "claim": "tenant"}]))]}});
    let g = gateway(&host, config).unwrap();
    let get = |id, token: &str, extra: &[(&str, &str)]| {
        let auth = bearer(token);
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        status(&send(&g, &host, id, "/orders", &headers).flow)
    };
    assert_eq!(get(1, ALICE_ACME, &[]), 200);
    assert_eq!(
        get(2, ALICE_ACME, &[("x-user-id", "someone-else")]),
        429,
        "a forged header is no new user"
    );
    assert_eq!(get(3, BOB_ACME, &[]), 200, "bob has his own bucket");
    assert_eq!(get(4, CAROL_GLOBEX, &[]), 200);
    // An API key is an identity without claims: the tenant rule finds no key for it.
    let key = send(&g, &host, 5, "/orders", &[("x-api-key", "alice-key")]);
    assert_eq!(status(&key.flow), 200);
    assert_eq!(
        key.request.identity.and_then(|i| i.name).as_deref(),
        Some("alice-bot")
    );
}

#[test]
fn a_public_route_has_no_identity_and_the_rules_missing_key_policy_applies() {
    let host = FakeHost::new();
    let mut per_user = rule("per-user", 1, json!([{"source": "identity"}]));
    per_user["on_missing_key"] = json!("skip");
    let g = gateway(
        &host,
        json!({"authn": authn(), "ratelimit": {"rules": [per_user]}}),
    )
    .unwrap();
    for id in 1..4 {
        assert_eq!(send(&g, &host, id, "/public/x", &[]).flow, Flow::Continue);
    }
}

/// An RS256 key (remote key sets carry no secrets), its JWKS and a token for `sub`.
fn rsa(sub: &str) -> (Value, String) {
    let key = RS256KeyPair::from_pem(include_str!("../../authn/testdata/rsa-a.pem"))
        .unwrap()
        .with_key_id("rsa-a");
    let c = key.public_key().to_components();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "rsa-a", "n": b64(&c.n), "e": b64(&c.e)}]});
    let mut claims = Claims::create(jwt_simple::prelude::Duration::from_hours(1))
        .with_issuer("https://issuer.test")
        .with_audience("api")
        .with_subject(sub);
    // The FakeHost's clock (2026-01-01), not the machine's.
    claims.issued_at = Some(UnixTimeStamp::from_secs(1_767_225_600));
    claims.expires_at = Some(UnixTimeStamp::from_secs(1_767_225_600 + 3600));
    claims.invalid_before = None;
    (jwks, key.sign(claims).unwrap())
}

#[test]
fn a_request_pauses_in_authn_then_in_ratelimit_and_goes_on() {
    let host = FakeHost::new();
    let (jwks, token) = rsa("alice");
    let mut remote = provider(Value::Null);
    if let Some(p) = remote.as_object_mut() {
        p.remove("jwks");
        p.insert("algorithms".into(), json!(["RS256"]));
        p.insert(
            "remote_jwks".into(),
            json!({"cluster": "jwks", "wait_for_keys_ms": 5000}),
        );
    }
    let config = json!({"tracing": tracing(), "authn": {"providers": [remote]},
        "ratelimit": {"global": {"cluster": "rls", "domain": "api"},
            "rules": [{"name": "per-user", "mode": "global", "capacity": 5,
                "key": [{"source": "identity"}]}]}});
    let g = gateway(&host, config).unwrap();
    let mut sent = send(
        &g,
        &host,
        9,
        "/orders",
        &[("authorization", &bearer(&token))],
    );
    assert_eq!(sent.flow, Flow::Pause, "authn waits for the first keys");
    assert!(g.on_tick(&host).is_empty());
    let fetch = host.calls().pop().unwrap();
    host.set_call_response(&[(":status", "200")], Some(jwks.to_string().as_bytes()));
    assert_eq!(g.on_http_call_response(&host, fetch.token, 1 << 16), [9]);
    let flow = g.on_wake(&host, &mut sent.request, &mut sent.stream);
    assert_eq!(flow, Flow::Pause, "ratelimit now waits for the service");
    let call = host.calls().pop().unwrap();
    // Made during a wake, its answer reaches the root: the glue needs the token to route it.
    assert_eq!(g.awaited_call(&sent.stream), Some(call.token));
    assert_eq!(call.cluster, "rls");
    let body = call.body.unwrap_or_default();
    assert!(
        body.windows(5).any(|w| w == b"alice"),
        "the descriptor carries the identity"
    );
    let answer = RateLimitResponse {
        overall_code: CODE_OK,
        ..RateLimitResponse::default()
    }
    .encode_to_vec();
    host.set_call_response(&[], Some(&answer));
    let flow = g.on_grpc_call_response(
        &host,
        &mut sent.request,
        &mut sent.stream,
        call.token,
        0,
        answer.len(),
    );
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.request_header("x-user-id").as_deref(), Some("alice"));
    host.advance(StdDuration::from_secs(1));
}

#[test]
fn a_bad_section_is_refused_with_its_name() {
    let host = FakeHost::new();
    let cases = [
        (
            json!({"authn": {"providers": [{"name": "idp"}]}}),
            "authn.providers[0]",
        ),
        (
            json!({"tracing": {"sampling_ratio": 2.0}}),
            "tracing.sampling_ratio",
        ),
        (
            json!({"pre_auth": {"rules": [rule("r", 1, json!([{"source": "identity"}]))]}, "authn": authn()}),
            "pre_auth.rules[0].key[0].source",
        ),
        (
            json!({"ratelimit": {"rules": [rule("r", 1, json!([{"source": "claim", "claim": "t"}]))]}}),
            "ratelimit.rules[0].key[0].source",
        ),
        (json!({"ratelimt": {}}), ""),
    ];
    for (config, field) in cases {
        let err = gateway(&host, config.clone()).err().expect("refused");
        assert!(err.field.starts_with(field), "{config}: {err}");
    }
}
