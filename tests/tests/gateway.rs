//! The one-module gateway (`dist/gateway.wasm`, `envoy-config/gateway.yaml`, two workers) in
//! real Envoy with the echo upstream, real JWKS servers and, for global mode, the real RLS
//! server over Redis: the order of the stages (tracing → pre_auth → authn → ratelimit), a
//! request pausing in two stages, the trace on every stage's refusal, limits keyed on the
//! verified identity, sections left out, and configurations refused with the section named.

use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};
use wasmgate_tests::render::EnvoyConfig;
use wasmgate_tests::rls::{free_port, Redis, Rls};
use wasmgate_tests::{
    eventually, raw_request, repo_root, wait_for, Client, Gateway, Reply, Response, TestServer,
};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "api";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";
/// The demo API key of envoy-config/demo/ and its SHA-256.
const API_KEY: &str = "demo-api-key";
const API_KEY_SHA256: &str = "ca6f2e39b2ff141859b18bb5283aadd5093c8ede2869f3656231a054e54bfc22";

// ---------------------------------------------------------------- tokens and sections

fn rsa_key(name: &str) -> RS256KeyPair {
    let pem =
        std::fs::read_to_string(repo_root().join(format!("filters/authn/testdata/{name}.pem")))
            .unwrap();
    RS256KeyPair::from_pem(&pem).unwrap().with_key_id("k1")
}

/// The key the gateway trusts.
fn signing_key() -> RS256KeyPair {
    rsa_key("rsa-a")
}

fn jwk(key: &RS256KeyPair) -> Value {
    let c = key.public_key().to_components();
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).unwrap();
    json!({"kty": "RSA", "kid": "k1", "n": b64(&c.n), "e": b64(&c.e)})
}

/// A token for `sub`, valid now, with the `extra` claims.
fn token_signed_by(key: &RS256KeyPair, sub: &str, extra: Value) -> String {
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub})
        .as_object()
        .cloned()
        .unwrap();
    if let Value::Object(e) = extra {
        claims.extend(e);
    }
    let claims: Map<String, Value> = claims;
    key.sign(Claims::with_custom_claims(claims, Duration::from_mins(30)))
        .unwrap()
}

fn token(sub: &str, extra: Value) -> String {
    token_signed_by(&signing_key(), sub, extra)
}

/// Signed by a key the gateway does not trust, under the trusted key's `kid`.
fn forged_token(sub: &str) -> String {
    token_signed_by(&rsa_key("rsa-b"), sub, json!({}))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Continue the caller's W3C trace; give back traceresponse, the trace id and the request id.
fn tracing_section() -> Value {
    json!({"inject": ["w3c"],
           "response": {"traceresponse": true, "trace_id_header": "x-trace-id",
                        "request_id_header": "x-request-id"}})
}

/// Provider `idp` (inline key, or the given provider fields), API-key consumer `ci`, `/public`
/// public, `/admin` for role `admin`, any credential elsewhere.
fn authn_section_with(provider: Value) -> Value {
    let mut idp = json!({"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
        "claim_headers": [{"claim": "sub", "header": "x-user-id"},
                          {"claim": "tenant", "header": "x-tenant"}]});
    if let (Some(p), Value::Object(fields)) = (idp.as_object_mut(), provider) {
        p.extend(fields);
    }
    json!({
        "realm": "gateway-test",
        "providers": [idp],
        "api_keys": {"consumers": [{"name": "ci", "key_sha256": API_KEY_SHA256}]},
        "rules": [
            {"name": "public", "match": {"prefix": "/public"}, "public": true},
            {"name": "admin", "match": {"prefix": "/admin"}, "any_of": ["idp"], "roles": ["admin"]}
        ]
    })
}

fn authn_section() -> Value {
    authn_section_with(json!({"jwks": {"keys": [jwk(&signing_key())]}}))
}

/// A rule of `capacity` tokens that do not come back during a test (one per hour).
fn rule(name: &str, key: Value, capacity: u64) -> Value {
    json!({"name": name, "key": key, "capacity": capacity, "refill": 1, "period_ms": 3_600_000})
}

fn limits(rules: Value) -> Value {
    json!({"rate_limit_headers": {"style": "both", "on_allowed": true}, "rules": rules})
}

// ---------------------------------------------------------------- Envoy and its neighbours

fn gateway(config: Value) -> Gateway {
    gateway_builder(config).start()
}

fn gateway_builder(config: Value) -> wasmgate_tests::GatewayBuilder {
    Gateway::builder("gateway.yaml")
        .plugin_config("gateway", config)
        .concurrency(2)
}

/// Adds a STATIC cluster `name` at 127.0.0.1:`port` (HTTP/2 for gRPC services).
fn add_cluster(config: &mut EnvoyConfig, name: &str, port: u16, http2: bool) {
    let mut cluster: serde_yaml::Value = serde_yaml::from_str(&format!(
        "{{name: {name}, type: STATIC, connect_timeout: 1s, load_assignment: {{cluster_name: {name}, \
         endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: \
         {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]}}}}"
    ))
    .unwrap();
    if http2 {
        cluster["typed_extension_protocol_options"] = serde_yaml::from_str(
            "{envoy.extensions.upstreams.http.v3.HttpProtocolOptions: \
             {'@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, \
             explicit_http_config: {http2_protocol_options: {}}}}",
        )
        .unwrap();
    }
    config.value_mut()["static_resources"]["clusters"]
        .as_sequence_mut()
        .unwrap()
        .push(cluster);
}

/// Envoy keeps the client's x-request-id (it replaces an edge client's by default), so a test
/// can see its own id come back.
fn preserve_request_id(config: &mut EnvoyConfig) {
    config.value_mut()["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["preserve_external_request_id"] = true.into();
}

/// A JWKS server that holds every request until [`HeldJwks::release`].
struct HeldJwks {
    open: Arc<(Mutex<bool>, Condvar)>,
    server: TestServer,
}

impl HeldJwks {
    fn serving(keys: Value) -> Self {
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let gate = open.clone();
        let body = json!({"keys": keys}).to_string();
        let server = TestServer::start(move |_| {
            let (lock, cvar) = &*gate;
            let mut released = lock.lock().unwrap();
            while !*released {
                released = cvar.wait(released).unwrap();
            }
            Reply::json(200, body.clone())
        });
        Self { open, server }
    }

    fn release(&self) {
        let (lock, cvar) = &*self.open;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }
}

impl Drop for HeldJwks {
    fn drop(&mut self) {
        // The server's threads must get out of the handler before it can stop.
        self.release();
    }
}

// ---------------------------------------------------------------- metrics

/// A counter from `/stats/prometheus`; 0 while Envoy has not seen it.
fn metric(gw: &Gateway, name: &str) -> f64 {
    gw.prometheus_metric(name).unwrap_or(0.0)
}

fn wait_metric(gw: &Gateway, name: &str, expected: f64) {
    wait_for(name, expected, || metric(gw, name));
}

fn statuses(responses: &[Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status).collect()
}

fn assert_rate_limited_by(r: &Response, rule: &str, what: &str) {
    assert_eq!(r.status, 429, "{what}: {}", r.body);
    assert_eq!(r.json()["error"], "rate_limited", "{what}");
    let policy = r.header("ratelimit-policy").unwrap_or_default();
    assert!(
        policy.contains(&format!("\"{rule}\"")),
        "{what}: refused by another rule: {policy}"
    );
}

// ---------------------------------------------------------------- order of the stages

#[test]
fn pre_auth_refuses_before_authn_so_a_forged_token_over_the_limit_gets_429_not_401() {
    let gw = gateway(json!({
        "tracing": tracing_section(),
        "pre_auth": {"rules": [rule("pre_auth_per_client", json!([{"source": "client"}]), 3)]},
        "authn": authn_section()
    }));
    let good = bearer(&token("alice", json!({})));
    let forged = bearer(&forged_token("alice"));
    let get = |auth: &str| gw.get("/private", &[("authorization", auth)]);

    assert_eq!(get(&good).status, 200);
    for _ in 0..2 {
        let r = get(&forged);
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.json()["error"], "invalid_token");
    }
    // The client's bucket is empty: the next forged token is refused before its signature is
    // checked, and so is a good one.
    assert_rate_limited_by(&get(&forged), "pre_auth_per_client", "forged token");
    assert_rate_limited_by(&get(&good), "pre_auth_per_client", "good token");

    wait_metric(
        &gw,
        "wasmgate_ratelimit_rule_pre_auth_per_client_limited",
        2.0,
    );
    wait_metric(&gw, "wasmgate_authn_allowed", 1.0);
    wait_metric(&gw, "wasmgate_authn_denied_bad_signature", 2.0);
    assert_eq!(
        gw.authn_decisions(),
        3,
        "authn decided the two refused requests too"
    );
    assert_eq!(gw.upstream().hits(), 1);
}

#[test]
fn the_upstream_sees_the_trace_and_the_verified_identity_but_no_credentials() {
    let gw = gateway(json!({
        "tracing": tracing_section(),
        "pre_auth": {"rules": [rule("pre_auth_per_client", json!([{"source": "client"}]), 100)]},
        "authn": authn_section(),
        "ratelimit": limits(json!([rule("per_user", json!([{"source": "identity"}]), 50)]))
    }));
    let incoming = format!("00-{TRACE}-{SPAN}-01");
    let alice = bearer(&token("alice", json!({"tenant": "acme"})));
    let forged_identity = [
        ("x-user-id", "root"),
        ("x-tenant", "evil"),
        ("x-consumer", "ci"),
    ];
    let mut headers = vec![
        ("traceparent", incoming.as_str()),
        ("authorization", alice.as_str()),
    ];
    headers.extend(forged_identity);
    let r = gw.get("/private", &headers);
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.upstream();
    let traceparent = seen.header("traceparent").unwrap_or_default();
    assert!(
        traceparent.starts_with(&format!("00-{TRACE}-")) && !traceparent.contains(SPAN),
        "the caller's trace, continued with the gateway's span: {traceparent}"
    );
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("x-user-id"), Some("alice"));
    assert_eq!(seen.header("x-tenant"), Some("acme"));
    assert_eq!(seen.header("x-consumer"), None);
    // The client gets its trace back and the fields of the ratelimit stage (pre_auth adds none
    // to an admitted request).
    let upstream_span = &traceparent[36..52];
    assert_eq!(
        r.header("traceresponse"),
        Some(format!("00-{TRACE}-{upstream_span}-01").as_str())
    );
    assert_eq!(r.header("x-trace-id"), Some(TRACE));
    assert_eq!(r.header("x-request-id"), seen.header("x-request-id"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("50"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("49"));

    // The API key: stripped, its consumer named.
    let r = gw.get(
        "/private",
        &[("x-api-key", API_KEY), ("x-consumer", "root")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-api-key"), None);
    assert_eq!(r.upstream_header("x-consumer").as_deref(), Some("ci"));
    assert!(r.upstream_header("traceparent").is_some());
}

// ---------------------------------------------------------------- pauses in two stages

/// A Limitador limit of `max` per minute on the global rule `name`, one counter for all.
fn limitador_limit(name: &str, max: u64) -> String {
    format!(
        "- namespace: test\n  name: {name}\n  max_value: {max}\n  seconds: 60\n  conditions:\n    \
         - \"descriptors[0].generic_key == '{name}'\"\n  variables: []\n"
    )
}

#[test]
fn a_request_waits_for_the_remote_keys_in_authn_then_for_the_rate_limit_service() {
    let key = signing_key();
    let jwks = HeldJwks::serving(json!([jwk(&key)]));
    let redis = Redis::start();
    let rls = Rls::start(
        &redis,
        &limitador_limit("per_user_global", 10),
        &["--request-header", "x-quota-checked:limitador"],
    );
    // The fallback bucket (1000) is not what the service allows (10): the response's fields
    // tell who decided.
    let mut per_user = rule("per_user_global", json!([{"source": "identity"}]), 1000);
    per_user["mode"] = "global".into();
    let gw = gateway_builder(json!({
        "tracing": tracing_section(),
        "authn": authn_section_with(json!({"remote_jwks": {"cluster": "jwks",
            "timeout_ms": 60_000, "wait_for_keys_ms": 60_000}})),
        "ratelimit": {
            "global": {"cluster": "ratelimit_service", "domain": "test",
                       "timeout_ms": 10_000, "on_failure": "deny"},
            "rate_limit_headers": {"style": "x_ratelimit", "on_allowed": true},
            "rules": [per_user]
        }
    }))
    .edit(|c| {
        add_cluster(c, "jwks", 8081, false);
        add_cluster(c, "ratelimit_service", 8082, true);
    })
    .port(8081, jwks.server.port())
    .port(8082, rls.port)
    .start();

    let url = gw.url("/private");
    let alice = bearer(&token("alice", json!({})));
    let request = std::thread::spawn(move || {
        Client::new().try_request("GET", &url, &[("authorization", &alice)], b"")
    });
    // The key fetch is held at the JWKS server and the request is in Envoy: authn holds it.
    eventually("the JWKS fetch reaches the server", || {
        jwks.server.hits() >= 1
    });
    eventually("the request is in Envoy", || {
        gw.stat("http.gateway.downstream_rq_active") == Some(1)
    });
    assert_eq!(
        gw.upstream().hits(),
        0,
        "the request passed authn without keys"
    );
    jwks.release();

    let r = request
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("no answer once the keys came: {e}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("alice"));
    // The service's answer: its request header upstream, its quota on the response.
    assert_eq!(
        r.upstream_header("x-quota-checked").as_deref(),
        Some("limitador")
    );
    assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("9"));
    assert!(r.header("traceresponse").is_some());
    wait_metric(&gw, "wasmgate_ratelimit_global_ok", 1.0);
    wait_metric(&gw, "wasmgate_authn_provider_idp_jwks_fetch_success", 1.0);
    assert_eq!(jwks.server.hits(), 1);
}

// ---------------------------------------------------------------- the trace on every refusal

#[test]
fn every_stages_refusal_carries_the_trace_response_headers() {
    let mut service_down = rule("service_down", json!([{"source": "client"}]), 1000);
    service_down["mode"] = "global".into();
    service_down["match"] = json!({"prefix": "/down"});
    let mut flood = rule("pre_auth_flood", json!([{"source": "client"}]), 1);
    flood["match"] = json!({"prefix": "/flood"});
    let mut tight = rule("per_user_tight", json!([{"source": "identity"}]), 1);
    tight["match"] = json!({"prefix": "/tight"});
    let gw = gateway_builder(json!({
        "tracing": tracing_section(),
        "pre_auth": {"rules": [flood]},
        "authn": authn_section(),
        "ratelimit": {
            "global": {"cluster": "ratelimit_service", "timeout_ms": 2000, "on_failure": "deny"},
            "rules": [tight, service_down]
        }
    }))
    .edit(|c| {
        preserve_request_id(c);
        // Nothing listens there: the service is down.
        add_cluster(c, "ratelimit_service", free_port(), true);
    })
    .start();
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let alice = bearer(&token("alice", json!({})));
    let send = |path: &str, request_id: &str, auth: Option<&str>| {
        let mut headers = vec![
            ("traceparent", traceparent.as_str()),
            ("x-request-id", request_id),
        ];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        gw.get(path, &headers)
    };
    let assert_traced = |r: &Response, request_id: &str, what: &str| {
        let response = r.header("traceresponse").unwrap_or_default();
        assert!(
            response.starts_with(&format!("00-{TRACE}-")) && response.ends_with("-01"),
            "{what} ({}): traceresponse {response:?} in {:?}",
            r.status,
            r.headers
        );
        assert_eq!(r.header("x-trace-id"), Some(TRACE), "{what}");
        assert_eq!(r.header("x-request-id"), Some(request_id), "{what}");
    };

    let r = send("/private", "req-200", Some(&alice));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_traced(&r, "req-200", "upstream response");

    let r = raw_request(
        gw.listener_port(),
        "GET",
        "/public/a;b",
        &[("traceparent", &traceparent), ("x-request-id", "req-400")],
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_path");
    assert_traced(&r, "req-400", "400 invalid_path");

    assert_eq!(send("/flood", "req-flood", Some(&alice)).status, 200);
    let r = send("/flood", "req-429-pre-auth", Some(&alice));
    assert_rate_limited_by(&r, "pre_auth_flood", "pre_auth");
    assert_traced(&r, "req-429-pre-auth", "429 from pre_auth");

    let r = send("/private", "req-401", None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"gateway-test\"")
    );
    assert_traced(&r, "req-401", "401 from authn");

    let r = send("/admin", "req-403", Some(&alice));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"], "forbidden");
    assert_traced(&r, "req-403", "403 from authn");

    assert_eq!(send("/tight", "req-tight", Some(&alice)).status, 200);
    let r = send("/tight", "req-429-ratelimit", Some(&alice));
    assert_rate_limited_by(&r, "per_user_tight", "ratelimit");
    assert_traced(&r, "req-429-ratelimit", "429 from ratelimit");

    let r = send("/down", "req-503", Some(&alice));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "ratelimit_unavailable");
    assert_traced(&r, "req-503", "503 from ratelimit");
}

// ---------------------------------------------------------------- identity keys

#[test]
fn identity_keys_give_each_verified_user_and_consumer_a_bucket_of_their_own() {
    let mut per_user = rule("per_user", json!([{"source": "identity"}]), 2);
    per_user["on_missing_key"] = "skip".into();
    let gw = gateway(json!({
        "authn": authn_section(),
        "ratelimit": limits(json!([per_user]))
    }));
    let alice = bearer(&token("alice", json!({})));
    let bob = bearer(&token("bob", json!({})));
    let as_alice = |extra: &[(&str, &str)]| {
        let mut headers = vec![("authorization", alice.as_str())];
        headers.extend_from_slice(extra);
        gw.get("/private", &headers)
    };
    let as_bob = |extra: &[(&str, &str)]| {
        let mut headers = vec![("authorization", bob.as_str())];
        headers.extend_from_slice(extra);
        gw.get("/private", &headers)
    };

    assert_eq!(statuses(&[as_alice(&[]), as_alice(&[])]), [200, 200]);
    // Alice's bucket is empty; a header naming someone else does not give her theirs.
    let r = as_alice(&[("x-user-id", "bob")]);
    assert_rate_limited_by(&r, "per_user", "alice as x-user-id bob");
    // Bob has his own bucket, whatever header he sends.
    let r = as_bob(&[("x-user-id", "alice")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("1"));
    assert_eq!(as_bob(&[]).status, 200);
    assert_rate_limited_by(&as_bob(&[]), "per_user", "bob's third");
    // The API-key consumer is an identity too.
    let ci = || gw.get("/private", &[("x-api-key", API_KEY)]);
    assert_eq!(statuses(&[ci(), ci()]), [200, 200]);
    assert_rate_limited_by(&ci(), "per_user", "consumer ci's third");
    // Without a verified identity the rule is skipped: a forged header is no identity.
    for _ in 0..3 {
        let r = gw.get("/public/x", &[("x-user-id", "alice")]);
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn a_claim_key_counts_the_users_of_one_tenant_together() {
    let mut per_tenant = rule(
        "per_tenant",
        json!([{"source": "claim", "claim": "tenant"}]),
        3,
    );
    per_tenant["on_missing_key"] = "skip".into();
    let gw = gateway(json!({
        "authn": authn_section(),
        "ratelimit": limits(json!([per_tenant]))
    }));
    let get = |t: &str, extra: &[(&str, &str)]| {
        let auth = bearer(t);
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        gw.get("/private", &headers)
    };
    let alice = token("alice", json!({"tenant": "acme"}));
    let bob = token("bob", json!({"tenant": "acme"}));
    let carol = token("carol", json!({"tenant": "globex"}));
    let dave = token("dave", json!({}));

    assert_eq!(
        statuses(&[get(&alice, &[]), get(&alice, &[]), get(&bob, &[])]),
        [200, 200, 200]
    );
    // acme's three are gone, for both of its users and whatever tenant header they send.
    assert_rate_limited_by(&get(&bob, &[]), "per_tenant", "bob of acme");
    assert_rate_limited_by(
        &get(&alice, &[("x-tenant", "globex")]),
        "per_tenant",
        "alice of acme claiming globex in a header",
    );
    let r = get(&carol, &[]);
    assert_eq!(r.status, 200, "another tenant: {}", r.body);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("2"));
    // A token without the claim has no key: the rule is skipped.
    for _ in 0..4 {
        let r = get(&dave, &[("x-tenant", "acme")]);
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn requests_without_a_verified_identity_share_the_fallback_bucket() {
    // on_missing_key fallback (the default): one bucket for every request without an identity.
    let gw = gateway(json!({
        "authn": authn_section(),
        "ratelimit": limits(json!([rule("per_user", json!([{"source": "identity"}]), 2)]))
    }));
    let alice = bearer(&token("alice", json!({})));
    assert_eq!(gw.get("/public/a", &[]).status, 200);
    // On a public route a token is not checked, so it is no identity either.
    assert_eq!(
        gw.get("/public/a", &[("authorization", &alice)]).status,
        200
    );
    assert_rate_limited_by(
        &gw.get("/public/a", &[("x-user-id", "carol")]),
        "per_user",
        "third request without identity",
    );
    // Alice's own bucket is untouched.
    let r = gw.get("/private", &[("authorization", &alice)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("1"));
}

// ---------------------------------------------------------------- sections left out

#[test]
fn without_an_authn_section_nothing_is_refused_for_want_of_credentials() {
    let gw = gateway(json!({
        "tracing": tracing_section(),
        "ratelimit": limits(json!([rule("per_client", json!([{"source": "client"}]), 100)]))
    }));
    let r = gw.get("/private", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.upstream_header("traceparent").is_some());
    assert_eq!(r.header("x-ratelimit-limit"), Some("100"));
    // No authn stage: a bad token is neither refused nor taken off the request.
    let r = gw.get("/admin", &[("authorization", "Bearer not-a-token")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.upstream_header("authorization").as_deref(),
        Some("Bearer not-a-token")
    );
    // Once the tracing stage's counts are in, authn's would be too: there are none.
    wait_metric(&gw, "wasmgate_tracing_traces_started", 2.0);
    assert_eq!(gw.authn_decisions(), 0);
}

#[test]
fn an_empty_configuration_lets_every_request_through_untouched() {
    let gw = gateway(json!({}));
    let r = gw.get("/admin", &[("x-user-id", "root")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("root"));
    assert_eq!(r.upstream_header("traceparent"), None, "no tracing stage");
    assert_eq!(r.header("traceresponse"), None);
    assert_eq!(r.header("x-ratelimit-limit"), None, "no ratelimit stage");
}

// ---------------------------------------------------------------- bad configurations

const REFUSED: &str = "wasmgate gateway: invalid plugin configuration: ";

/// Envoy refuses `config` with `expected` in its log, and `wasmgate check` says the same.
fn assert_refused(config: Value, expected: &str) {
    let checked = wasmgate_cli::modules::check("gateway", config.to_string().as_bytes());
    let log = gateway_builder(config).start_expecting_failure();
    let line = format!("{REFUSED}{expected}");
    assert!(log.contains(&line), "no `{line}` in Envoy's log:\n{log}");
    let checked = checked.err().unwrap_or_default();
    assert!(
        checked.starts_with(&line) && log.contains(&checked),
        "wasmgate check said `{checked}`, Envoy's log:\n{log}"
    );
}

#[test]
fn a_bad_section_is_refused_with_the_section_named_and_the_listener_never_serves() {
    let bad_capacity = json!({"rules": [{"name": "r", "capacity": 0}]});
    let capacity_error = "rules[0].capacity: must be between 1 and 1000000000000";
    assert_refused(
        json!({"authn": {"providers": [{"name": "idp", "issuer": ISSUER, "audiences": [],
                                        "jwks": {"keys": []}}]}}),
        "authn.providers[0].audiences: must list at least one non-empty audience",
    );
    assert_refused(
        json!({"tracing": {"sampling_ratio": 2}}),
        "tracing.sampling_ratio: must be between 0 and 1",
    );
    assert_refused(
        json!({"pre_auth": bad_capacity.clone()}),
        &format!("pre_auth.{capacity_error}"),
    );
    assert_refused(
        json!({"ratelimit": bad_capacity}),
        &format!("ratelimit.{capacity_error}"),
    );
    // A section of one stage is not accepted under another's name.
    assert_refused(
        json!({"tracing": tracing_section(), "authn": authn_section(),
               "ratelimit": {"sampling_ratio": 1}}),
        "ratelimit.sampling_ratio: unknown field",
    );
}

#[test]
fn unknown_sections_and_malformed_json_are_refused() {
    let log = gateway_builder(json!({"tracing": {}, "auth": {}})).start_expecting_failure();
    assert!(
        log.contains(REFUSED) && log.contains("unknown field `auth`"),
        "{log}"
    );
    let log = Gateway::builder("gateway.yaml")
        .plugin_config_raw("gateway", "{not json")
        .start_expecting_failure();
    assert!(log.contains(REFUSED), "{log}");
}

#[test]
fn identity_keys_are_refused_where_no_verified_identity_can_exist() {
    let identity =
        json!({"rules": [{"name": "who", "key": [{"source": "identity"}], "capacity": 5}]});
    let tenant = json!({"rules": [{"name": "tenant", "capacity": 5,
                                   "key": [{"source": "claim", "claim": "tenant"}]}]});
    // Before authn.
    assert_refused(
        json!({"pre_auth": identity.clone(), "authn": authn_section()}),
        "pre_auth.rules[0]",
    );
    assert_refused(
        json!({"pre_auth": tenant.clone(), "authn": authn_section()}),
        "pre_auth.rules[0]",
    );
    // Without authn.
    assert_refused(json!({"ratelimit": identity.clone()}), "ratelimit.rules[0]");
    assert_refused(json!({"ratelimit": tenant}), "ratelimit.rules[0]");
    // In the separate ratelimit module.
    let log = Gateway::builder("ratelimit.yaml")
        .plugin_config("ratelimit", identity)
        .start_expecting_failure();
    assert!(
        log.contains("wasmgate ratelimit: invalid plugin configuration: ratelimit.rules[0]"),
        "{log}"
    );
}

// ---------------------------------------------------------------- the shipped gateway.yaml

#[test]
fn shipped_gateway_accepts_the_demo_credentials_and_guards_its_routes() {
    let gw = Gateway::builder("gateway.yaml").start();
    let demo =
        std::fs::read_to_string(repo_root().join("envoy-config/demo/demo-token.jwt")).unwrap();
    let demo = bearer(demo.trim());
    let b3_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let b3 = format!("{b3_trace}-e457b5a2e4d86bd1-1");

    let r = gw.get(
        "/hello",
        &[
            ("authorization", &demo),
            ("x-user-id", "admin"),
            ("b3", &b3),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.upstream();
    assert_eq!(seen.header("x-user-id"), Some("demo-user"));
    assert_eq!(seen.header("x-user-scope"), Some("read"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("b3"), None, "W3C only upstream");
    assert!(seen
        .header("traceparent")
        .unwrap_or_default()
        .starts_with(&format!("00-{b3_trace}-")));
    assert_eq!(r.header("x-request-id"), seen.header("x-request-id"));
    assert!(
        gw.wait_for_log(&format!("trace_id={b3_trace}"), StdDuration::from_secs(10)),
        "no access-log line with the trace id:\n{}",
        gw.log()
    );

    let r = gw.get("/hello", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wasmgate-demo\"")
    );
    assert!(r.header("traceresponse").is_some());
    assert!(r.header("x-request-id").is_some());
    let r = gw.get("/admin", &[("authorization", &demo)]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");

    let r = gw.get("/hello", &[("x-api-key", API_KEY), ("x-consumer", "root")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-consumer").as_deref(), Some("demo-ci"));
    assert_eq!(r.upstream_header("x-api-key"), None);

    let r = gw.get("/public/hello", &[("x-user-id", "admin")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-user-id"), None);
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn shipped_gateway_limits_a_burst_to_five_per_client() {
    // per-client: 5 tokens, 5 more per 10 s. /public needs no credential.
    let gw = Gateway::builder("gateway.yaml").start();
    let start = unix_nanos();
    let responses: Vec<Response> = (0..8).map(|_| gw.get("/public/hello", &[])).collect();
    let elapsed = unix_nanos() - start;
    let admitted = responses.iter().filter(|r| r.status == 200).count() as u128;
    // At most capacity + what refilled meanwhile (one token per 2 s).
    let bound = 5 + elapsed / 2_000_000_000;
    assert!(
        admitted <= bound,
        "{admitted} admitted: {:?}",
        statuses(&responses)
    );
    assert!(admitted >= 5, "{:?}", statuses(&responses));
    assert_eq!(
        responses[0].header("ratelimit-policy"),
        Some("\"per-client\";q=5;w=10"),
        "pre_auth's fields stay off admitted responses"
    );
    if let Some(refused) = responses.iter().find(|r| r.status != 200) {
        assert_rate_limited_by(refused, "per-client", "the burst");
        assert!(refused.header("retry-after").is_some());
        assert!(refused.header("traceresponse").is_some());
    } else {
        assert!(bound >= 8, "no refusal: {:?}", statuses(&responses));
    }
}
