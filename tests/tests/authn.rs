//! The authn filter in real Envoy (`envoy-config/authn.yaml`, two workers) with a real JWKS
//! server on 127.0.0.1: what passes, what is refused and how, what the upstream sees, remote
//! key loading, rotation and outages, API keys, authorization and metrics.

use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;
use wasmgate_tests::{eventually, repo_root, Gateway, Reply, Response, TestServer};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "api";

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

fn rsa_key(name: &str, kid: &str) -> RS256KeyPair {
    let pem =
        std::fs::read_to_string(repo_root().join(format!("filters/authn/testdata/{name}.pem")))
            .unwrap();
    RS256KeyPair::from_pem(&pem).unwrap().with_key_id(kid)
}

fn rsa_jwk(key: &RS256KeyPair, kid: &str) -> Value {
    let c = key.public_key().to_components();
    json!({"kty": "RSA", "kid": kid, "n": b64(&c.n), "e": b64(&c.e)})
}

fn unb64(text: &str) -> Vec<u8> {
    Base64UrlSafeNoPadding::decode_to_vec(text, None).unwrap()
}

/// An EC JWK from a SEC1 uncompressed point (`04 ‖ x ‖ y`).
fn ec_jwk(crv: &str, kid: &str, point: &[u8]) -> Value {
    let n = (point.len() - 1) / 2;
    json!({"kty": "EC", "crv": crv, "kid": kid, "x": b64(&point[1..1 + n]), "y": b64(&point[1 + n..])})
}

/// An ES256, an ES384, an ES512 (P-521) and a PS256 key, each with its algorithm's name in
/// lower case as `kid`.
struct SignatureKeys {
    es256: ES256KeyPair,
    es384: ES384KeyPair,
    es512: p521::ecdsa::SigningKey,
    ps256: PS256KeyPair,
}

impl SignatureKeys {
    fn new() -> Self {
        // jwt-simple has no P-521; a fixed scalar below the curve's order keeps runs repeatable.
        let mut scalar = [0x5a; 66];
        scalar[0] = 0;
        let rsa = rsa_key("rsa-b", "ps256");
        Self {
            es256: ES256KeyPair::generate(),
            es384: ES384KeyPair::generate(),
            es512: p521::ecdsa::SigningKey::from_slice(&scalar).unwrap(),
            ps256: PS256KeyPair::from_pem(&rsa.to_pem().unwrap()).unwrap(),
        }
    }

    fn jwks(&self) -> Value {
        let rsa = rsa_key("rsa-b", "ps256");
        json!({"keys": [
            ec_jwk("P-256", "es256", &self.es256.public_key().public_key().to_bytes_uncompressed()),
            ec_jwk("P-384", "es384", &self.es384.public_key().public_key().to_bytes_uncompressed()),
            ec_jwk("P-521", "es512", self.es512.verifying_key().to_sec1_point(false).as_bytes()),
            rsa_jwk(&rsa, "ps256"),
        ]})
    }

    /// A token signed with `alg`'s key whose header names `kid`.
    fn sign(&self, alg: &str, kid: &str, claims: JWTClaims<Map<String, Value>>) -> String {
        match alg {
            // jwt-simple's EC key pairs have no `Clone`: a copy from the scalar takes the `kid`.
            "ES256" => ES256KeyPair::from_bytes(&self.es256.to_bytes())
                .unwrap()
                .with_key_id(kid)
                .sign(claims)
                .unwrap(),
            "ES384" => ES384KeyPair::from_bytes(&self.es384.to_bytes())
                .unwrap()
                .with_key_id(kid)
                .sign(claims)
                .unwrap(),
            "PS256" => self.ps256.clone().with_key_id(kid).sign(claims).unwrap(),
            "ES512" => {
                use p521::ecdsa::signature::Signer;
                let header = json!({"alg": "ES512", "typ": "JWT", "kid": kid});
                let input = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(serde_json::to_string(&claims).unwrap().as_bytes())
                );
                // RFC 7518 §3.4: `r ‖ s`, 66 bytes each.
                let signature: p521::ecdsa::Signature = self.es512.sign(input.as_bytes());
                format!("{input}.{}", b64(&signature.to_bytes()))
            }
            other => unreachable!("no {other} key"),
        }
    }
}

/// `token` with one bit of its signature's last byte flipped: still in range for the
/// algorithm (RSA below the modulus, ECDSA `s` below the order), so the check itself fails.
fn corrupt_signature(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = unb64(signature);
    *signature.last_mut().unwrap() ^= 1;
    format!("{input}.{}", b64(&signature))
}

/// `token` with another `alg` in its header, `kid` and signature as they were.
fn relabel(token: &str, alg: &str) -> String {
    let (header, rest) = token.split_once('.').unwrap();
    let mut header: Value = serde_json::from_slice(&unb64(header)).unwrap();
    header["alg"] = json!(alg);
    format!("{}.{rest}", b64(header.to_string().as_bytes()))
}

/// Claims valid now for [`ISSUER`]/[`AUDIENCE`], merged with `extra`.
fn claims(extra: Value) -> JWTClaims<Map<String, Value>> {
    let mut map = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice"})
        .as_object()
        .cloned()
        .unwrap();
    if let Value::Object(e) = extra {
        map.extend(e);
    }
    Claims::with_custom_claims(map, Duration::from_mins(30))
}

fn provider(keys: Value) -> Value {
    json!({
        "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
        "algorithms": ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "HS256"],
        "jwks": keys,
        "claim_headers": [{"claim": "sub", "header": "x-user-id"}],
        "payload_header": "x-jwt-payload"
    })
}

fn remote_provider(extra: Value) -> Value {
    let mut remote = json!({"cluster": "jwks", "refresh_seconds": 300, "retry_initial_ms": 200, "retry_max_ms": 1000});
    if let (Some(r), Value::Object(e)) = (remote.as_object_mut(), extra) {
        r.extend(e);
    }
    json!({"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": remote,
           "claim_headers": [{"claim": "sub", "header": "x-user-id"}]})
}

/// A JWKS server whose answer the test changes while Envoy runs.
struct Jwks {
    answer: Arc<Mutex<(u16, String, u64)>>,
    server: TestServer,
}

impl Jwks {
    fn serving(keys: Value) -> Self {
        let answer = Arc::new(Mutex::new((200, json!({"keys": keys}).to_string(), 0)));
        let shared = answer.clone();
        let server = TestServer::start(move |_| {
            let (status, body, delay_ms) = shared.lock().unwrap().clone();
            std::thread::sleep(StdDuration::from_millis(delay_ms));
            Reply::json(status, body)
        });
        Self { answer, server }
    }

    fn set(&self, status: u16, keys: Value) {
        let mut a = self.answer.lock().unwrap();
        a.0 = status;
        a.1 = json!({"keys": keys}).to_string();
    }

    fn delay(&self, ms: u64) {
        self.answer.lock().unwrap().2 = ms;
    }
}

fn gateway(config: Value, jwks: Option<&Jwks>) -> Gateway {
    let mut b = Gateway::builder("authn.yaml").plugin_config("authn", config);
    if let Some(j) = jwks {
        b = b.port(8081, j.server.port());
    }
    b.start()
}

fn bearer(gw: &Gateway, path: &str, token: &str) -> Response {
    gw.get(path, &[("authorization", &format!("Bearer {token}"))])
}

fn assert_invalid_token(r: &Response, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{what}: {challenge}"
    );
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    let body = r.json();
    assert_eq!(body["error"], "invalid_token", "{what}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// Request-path counters reach Envoy on the filter's next tick (at most 1 s later).
fn metric_reaches(gw: &Gateway, name: &str, value: f64) {
    let full = format!("wasmgate_authn_{name}");
    eventually(&format!("{full} = {value}"), || {
        gw.prometheus_metric(&full) == Some(value)
    });
}

#[test]
fn authn_shipped_config_accepts_the_demo_token_and_guards_its_routes() {
    let corp = Jwks::serving(json!([]));
    let gw = Gateway::builder("authn.yaml")
        .port(8081, corp.server.port())
        .start();
    let demo =
        std::fs::read_to_string(repo_root().join("envoy-config/demo/demo-token.jwt")).unwrap();
    let demo = demo.trim();
    let r = gw.get(
        "/api/items",
        &[
            ("authorization", &format!("Bearer {demo}")),
            ("x-user-id", "forged"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("demo-user"));
    assert_eq!(r.upstream_header("x-user-scope").as_deref(), Some("read"));
    assert_eq!(r.upstream_header("authorization"), None);
    let r = gw.get(
        "/public/info",
        &[("x-user-id", "forged"), ("x-consumer", "forged")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("x-user-id"), None);
    assert_eq!(r.upstream_header("x-consumer"), None);
    let r = gw.get("/api/items", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wasmgate-demo\"")
    );
    assert_eq!(r.json()["error"], "unauthorized");
    let r = gw.request(
        "POST",
        "/api/items",
        &[("authorization", &format!("Bearer {demo}"))],
        b"{}",
    );
    assert_eq!(r.status, 403);
    assert!(r
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"insufficient_scope\""));
    assert_eq!(r.json()["error"], "insufficient_scope");
    let r = gw.get("/admin", &[("authorization", &format!("Bearer {demo}"))]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
    let r = gw.get("/api/items", &[("x-api-key", "demo-api-key")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("x-consumer").as_deref(), Some("demo-ci"));
    assert_eq!(r.upstream_header("x-api-key"), None);
    let r = gw.get("/api/items", &[("x-api-key", "guess")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_token");
}

#[test]
fn authn_accepts_every_algorithm_family_and_forwards_claims() {
    let rsa = rsa_key("rsa-a", "rsa");
    let ps = PS256KeyPair::from_pem(&rsa.to_pem().unwrap())
        .unwrap()
        .with_key_id("rsa");
    let es256 = ES256KeyPair::generate().with_key_id("es256");
    let es384 = ES384KeyPair::generate().with_key_id("es384");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let secret = b"an HMAC secret of thirty-two b!!";
    let keys = json!({"keys": [
        rsa_jwk(&rsa, "rsa"),
        ec_jwk("P-256", "es256", &es256.public_key().public_key().to_bytes_uncompressed()),
        ec_jwk("P-384", "es384", &es384.public_key().public_key().to_bytes_uncompressed()),
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&ed.public_key().to_bytes())},
        {"kty": "oct", "kid": "hs", "k": b64(secret)}
    ]});
    let gw = gateway(json!({"providers": [provider(keys)]}), None);
    let c = || claims(json!({}));
    let tokens = [
        ("RS256", rsa.sign(c()).unwrap()),
        ("PS256", ps.sign(c()).unwrap()),
        ("ES256", es256.sign(c()).unwrap()),
        ("ES384", es384.sign(c()).unwrap()),
        ("EdDSA", ed.sign(c()).unwrap()),
        (
            "HS256",
            HS256Key::from_bytes(secret)
                .with_key_id("hs")
                .authenticate(c())
                .unwrap(),
        ),
    ];
    for (alg, t) in tokens {
        let r = bearer(&gw, "/x", &t);
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        assert_eq!(
            r.upstream_header("x-user-id").as_deref(),
            Some("alice"),
            "{alg}"
        );
        assert_eq!(
            r.upstream_header("x-jwt-payload").as_deref(),
            t.split('.').nth(1),
            "{alg}"
        );
    }
}

#[test]
fn authn_refuses_bad_tokens_with_401_and_a_bearer_challenge() {
    let rsa = rsa_key("rsa-a", "rsa-a");
    let gw = gateway(
        json!({"providers": [provider(json!({"keys": [rsa_jwk(&rsa, "rsa-a")]}))]}),
        None,
    );
    let good = rsa.sign(claims(json!({}))).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let mut expired = claims(json!({}));
    expired.expires_at = Some(Clock::now_since_epoch() - Duration::from_mins(10));
    let mut future = claims(json!({}));
    future.invalid_before = Some(Clock::now_since_epoch() + Duration::from_mins(10));
    let mut tampered_sig = good.clone();
    tampered_sig.replace_range(
        good.len() - 4..,
        if good.ends_with("AAAA") {
            "BBBB"
        } else {
            "AAAA"
        },
    );
    let forged_payload = b64(
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "root", "exp": 4102444800u64})
            .to_string()
            .as_bytes(),
    );
    let pem = rsa.public_key().to_pem().unwrap();
    let confusion = {
        let input = format!("{}.{}", b64(br#"{"alg":"HS256","kid":"rsa-a"}"#), parts[1]);
        let tag = HS256Key::from_bytes(pem.as_bytes()).authentication_tag(input.as_bytes());
        format!("{input}.{}", b64(&tag))
    };
    let cases = [
        ("expired", rsa.sign(expired).unwrap()),
        ("not yet valid", rsa.sign(future).unwrap()),
        (
            "wrong issuer",
            rsa.sign(claims(json!({"iss": "https://evil.test"})))
                .unwrap(),
        ),
        (
            "wrong audience",
            rsa.sign(claims(json!({"aud": "other"}))).unwrap(),
        ),
        (
            "wrong key",
            rsa_key("rsa-b", "rsa-a").sign(claims(json!({}))).unwrap(),
        ),
        ("tampered signature", tampered_sig),
        (
            "tampered payload",
            format!("{}.{forged_payload}.{}", parts[0], parts[2]),
        ),
        (
            "alg none",
            format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]),
        ),
        ("algorithm confusion", confusion),
        ("oversized", format!("{good}{}", "A".repeat(9000))),
        ("malformed", "definitely.not.a-jwt".to_string()),
    ];
    for (what, token) in cases {
        let r = bearer(&gw, "/x", &token);
        assert_invalid_token(&r, what);
    }
    let r = bearer(&gw, "/x", &good);
    assert_eq!(r.status, 200);
    metric_reaches(&gw, "denied_expired", 1.0);
    metric_reaches(&gw, "denied_bad_signature", 3.0);
}

#[test]
fn authn_accepts_es256_es384_es512_and_ps256_tokens_from_one_key_set() {
    let keys = SignatureKeys::new();
    let gw = gateway(json!({"providers": [provider(keys.jwks())]}), None);
    for alg in ["ES256", "ES384", "ES512", "PS256"] {
        let sub = format!("user-{alg}");
        let t = keys.sign(alg, &alg.to_lowercase(), claims(json!({"sub": sub})));
        let r = bearer(&gw, "/x", &t);
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        assert_eq!(r.upstream_header("x-user-id"), Some(sub), "{alg}");
        assert_eq!(
            r.upstream_header("x-jwt-payload").as_deref(),
            t.split('.').nth(1),
            "{alg}"
        );
    }
    metric_reaches(&gw, "provider_idp_allowed", 4.0);
}

#[test]
fn authn_refuses_corrupted_signatures_and_algorithms_that_do_not_fit_the_key() {
    let keys = SignatureKeys::new();
    let gw = gateway(json!({"providers": [provider(keys.jwks())]}), None);
    let own = |alg: &str| keys.sign(alg, &alg.to_lowercase(), claims(json!({})));
    let cases = [
        ("ES256 corrupted", corrupt_signature(&own("ES256"))),
        ("ES384 corrupted", corrupt_signature(&own("ES384"))),
        ("ES512 corrupted", corrupt_signature(&own("ES512"))),
        ("PS256 corrupted", corrupt_signature(&own("PS256"))),
        // The RSA key also verifies RS256 (the provider lists it, the JWK has no `alg`), so this
        // one reaches the check, where a PSS signature is no PKCS#1 v1.5 one.
        ("PS256 relabelled RS256", relabel(&own("PS256"), "RS256")),
        // The rest name a key that has no verifier for their `alg`: refused before any check.
        ("ES256 relabelled ES384", relabel(&own("ES256"), "ES384")),
        ("ES384 relabelled ES512", relabel(&own("ES384"), "ES512")),
        ("ES512 relabelled ES256", relabel(&own("ES512"), "ES256")),
        ("PS256 relabelled ES256", relabel(&own("PS256"), "ES256")),
        // A genuine ES384 signature of a key in the set, under the P-256 key's `kid`.
        (
            "ES384 naming the P-256 key",
            keys.sign("ES384", "es256", claims(json!({}))),
        ),
    ];
    for (what, token) in &cases {
        assert_invalid_token(&bearer(&gw, "/x", token), what);
    }
    metric_reaches(&gw, "denied_bad_signature", 5.0);
    metric_reaches(&gw, "denied_unknown_key", 5.0);
}

#[test]
fn authn_strips_forged_identity_headers() {
    let rsa = rsa_key("rsa-a", "rsa-a");
    let mut p = provider(json!({"keys": [rsa_jwk(&rsa, "rsa-a")]}));
    p["claim_headers"] =
        json!([{"claim": "sub", "header": "x-user-id"}, {"claim": "tenant", "header": "x-tenant"}]);
    let gw = gateway(
        json!({"providers": [p], "rules": [{"match": {"prefix": "/open"}, "public": true}]}),
        None,
    );
    let forged = [
        ("x-user-id", "root"),
        ("x-tenant", "acme"),
        ("x-jwt-payload", "e30"),
    ];
    let r = gw.get("/open", &forged);
    assert_eq!(r.status, 200);
    for (h, _) in forged {
        assert_eq!(r.upstream_header(h), None, "{h}");
    }
    let t = rsa.sign(claims(json!({}))).unwrap();
    let auth = format!("Bearer {t}");
    let mut with_token = forged.to_vec();
    with_token.push(("authorization", &auth));
    let r = gw.get("/x", &with_token);
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("alice"));
    assert_eq!(
        r.upstream_header("x-tenant"),
        None,
        "claim absent: forged value must not survive"
    );
}

#[test]
fn authn_first_request_waits_for_remote_keys_then_succeeds_with_one_fetch() {
    let rsa = rsa_key("rsa-a", "rsa-a");
    let jwks = Jwks::serving(json!([rsa_jwk(&rsa, "rsa-a")]));
    jwks.delay(1500);
    let gw = gateway(
        json!({"providers": [remote_provider(json!({"wait_for_keys_ms": 10000}))]}),
        Some(&jwks),
    );
    let t = rsa.sign(claims(json!({}))).unwrap();
    let r = bearer(&gw, "/x", &t);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("alice"));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let url = gw.url("/x");
            let t = rsa
                .sign(claims(json!({"sub": format!("user{i}")})))
                .unwrap();
            std::thread::spawn(move || {
                wasmgate_tests::Client::new()
                    .get(&url, &[("authorization", &format!("Bearer {t}"))])
                    .status
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    assert_eq!(jwks.server.hits(), 1, "one fetch serves both workers");
    assert_eq!(
        gw.prometheus_metric("wasmgate_authn_provider_idp_jwks_fetch_success"),
        Some(1.0)
    );
}

#[test]
fn authn_answers_503_when_keys_never_load() {
    let jwks = Jwks::serving(json!([]));
    jwks.set(500, json!([]));
    let gw = gateway(
        json!({"providers": [remote_provider(json!({"wait_for_keys_ms": 300}))]}),
        Some(&jwks),
    );
    let t = rsa_key("rsa-a", "rsa-a").sign(claims(json!({}))).unwrap();
    let r = bearer(&gw, "/x", &t);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "keys_unavailable");
}

#[test]
fn authn_picks_up_key_rotation_at_the_jwks_server() {
    let (a, b) = (rsa_key("rsa-a", "rsa-a"), rsa_key("rsa-b", "rsa-b"));
    let jwks = Jwks::serving(json!([rsa_jwk(&a, "rsa-a")]));
    let gw = gateway(
        json!({"providers": [remote_provider(json!({"unknown_kid_refetch_seconds": 0}))]}),
        Some(&jwks),
    );
    assert_eq!(
        bearer(&gw, "/x", &a.sign(claims(json!({}))).unwrap()).status,
        200
    );
    jwks.set(200, json!([rsa_jwk(&b, "rsa-b")]));
    let r = bearer(&gw, "/x", &b.sign(claims(json!({}))).unwrap());
    assert_eq!(r.status, 200, "new kid triggers a refetch: {}", r.body);
    let old = a.sign(claims(json!({"sub": "late"}))).unwrap();
    assert_invalid_token(&bearer(&gw, "/x", &old), "retired key");
}

#[test]
fn authn_keeps_the_last_good_keys_when_the_jwks_server_goes_down() {
    let rsa = rsa_key("rsa-a", "rsa-a");
    let jwks = Jwks::serving(json!([rsa_jwk(&rsa, "rsa-a")]));
    let gw = gateway(
        json!({"providers": [remote_provider(json!({"refresh_seconds": 1}))]}),
        Some(&jwks),
    );
    assert_eq!(
        bearer(&gw, "/x", &rsa.sign(claims(json!({}))).unwrap()).status,
        200
    );
    jwks.set(503, json!([]));
    eventually("a refresh fails", || {
        gw.prometheus_metric("wasmgate_authn_provider_idp_jwks_fetch_failure")
            .unwrap_or(0.0)
            >= 1.0
    });
    let fresh = rsa.sign(claims(json!({"sub": "bob"}))).unwrap();
    let r = bearer(&gw, "/x", &fresh);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("bob"));
}

#[test]
fn authn_metrics_move_per_provider_rule_and_cache() {
    let rsa = rsa_key("rsa-a", "rsa-a");
    let gw = gateway(
        json!({"providers": [provider(json!({"keys": [rsa_jwk(&rsa, "rsa-a")]}))],
               "rules": [{"name": "reads", "match": {"prefix": "/r"}, "any_of": ["idp"], "scopes": ["read"]}]}),
        None,
    );
    let t = rsa.sign(claims(json!({"scope": "read"}))).unwrap();
    for _ in 0..3 {
        assert_eq!(bearer(&gw, "/r", &t).status, 200);
    }
    let t2 = rsa.sign(claims(json!({"scope": "other"}))).unwrap();
    assert_eq!(bearer(&gw, "/r", &t2).status, 403);
    metric_reaches(&gw, "rule_reads_allowed", 3.0);
    metric_reaches(&gw, "rule_reads_denied", 1.0);
    metric_reaches(&gw, "provider_idp_allowed", 4.0);
    metric_reaches(&gw, "denied_insufficient_scope", 1.0);
    metric_reaches(&gw, "provider_idp_keys_loaded", 1.0);
    // Two workers: each verifies a token at most once.
    let m = |n: &str| {
        gw.prometheus_metric(&format!("wasmgate_authn_{n}"))
            .unwrap_or(-1.0)
    };
    eventually("every lookup counted", || {
        m("cache_hits") + m("cache_misses") == 4.0
    });
    assert!(m("cache_misses") <= 3.0 && m("cache_hits") >= 1.0);
}

#[test]
fn authn_rejects_an_invalid_configuration_naming_the_field() {
    let log = Gateway::builder("authn.yaml")
        .plugin_config("authn", json!({"providers": [{"name": "idp", "issuer": ISSUER, "audiences": [], "jwks": {"keys": []}}]}))
        .start_expecting_failure();
    assert!(
        log.contains("wasmgate authn: invalid plugin configuration: authn.providers[0].audiences: must list at least one non-empty audience"),
        "{log}"
    );
}

#[test]
fn authn_gateway_chain_accepts_the_demo_token_and_leaves_public_open() {
    let gw = Gateway::builder("chain.yaml").start();
    let demo =
        std::fs::read_to_string(repo_root().join("envoy-config/demo/demo-token.jwt")).unwrap();
    let r = bearer(&gw, "/hello", demo.trim());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream_header("x-user-id").as_deref(), Some("demo-user"));
    assert_eq!(gw.get("/public/hello", &[]).status, 200);
    let r = gw.get("/hello", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wasmgate-demo\"")
    );
}
