//! The request path end to end on a FakeHost: every refusal, the cache, API keys, rules,
//! authorization and what the upstream sees.

use super::*;
use crate::config::RawAuthnConfig;
use crate::testkit::*;
use jwt_simple::prelude::*;
use serde_json::json;
use std::time::{Duration as StdDuration, UNIX_EPOCH};
use wasmgate_shared::host::FakeHost;

pub struct Harness {
    pub config: AuthnConfig,
    pub metrics: AuthnMetrics,
    pub state: WorkerState,
    pub host: FakeHost,
}

pub fn compile(config: Value) -> AuthnConfig {
    wasmgate_shared::config::parse::<RawAuthnConfig>(Some(config.to_string().as_bytes()))
        .and_then(RawAuthnConfig::compile)
        .unwrap()
}

impl Harness {
    pub fn new(config: Value) -> Self {
        let config = compile(config);
        let host = FakeHost::new();
        let metrics = AuthnMetrics::define(&host, &config);
        let state = WorkerState::new(&config, 42);
        Self {
            config,
            metrics,
            state,
            host,
        }
    }

    pub fn request(&mut self, path: &str, headers: &[(&str, &str)], may_wait: bool) -> Outcome {
        self.host.reset_stream();
        self.host.add_request_header(":method", "GET");
        self.host.add_request_header(":path", path);
        self.host.add_request_header(":authority", "api.test");
        for (k, v) in headers {
            self.host.add_request_header(k, v);
        }
        let mut view = RequestView::unjudged(self.host.request_headers());
        Request {
            config: &self.config,
            state: &mut self.state,
            metrics: &self.metrics,
            host: &self.host,
            may_wait,
        }
        .decide(&mut view)
    }

    pub fn bearer(&mut self, path: &str, token: &str) -> Outcome {
        self.request(path, &[("authorization", &format!("Bearer {token}"))], true)
    }

    pub fn metric(&self, name: &str) -> i64 {
        self.metrics.flush(&self.host);
        self.host
            .metric(&format!("wasmgate_authn_{name}"))
            .unwrap_or(-1)
    }
}

pub fn provider(jwks: Value) -> Value {
    json!({
        "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
        "algorithms": ["RS256", "PS256", "ES256", "ES384", "EdDSA", "HS256"],
        "jwks": jwks,
        "claim_headers": [{"claim": "sub", "header": "x-user-id"}, {"claim": "org.id", "header": "x-org"}],
        "payload_header": "x-jwt-payload"
    })
}

pub struct Keys {
    pub rsa: RS256KeyPair,
    es256: ES256KeyPair,
    es384: ES384KeyPair,
    ed: Ed25519KeyPair,
    secret: Vec<u8>,
}

pub fn keys() -> Keys {
    Keys {
        rsa: rsa_a(),
        es256: ES256KeyPair::generate().with_key_id("es256"),
        es384: ES384KeyPair::generate().with_key_id("es384"),
        ed: Ed25519KeyPair::generate().with_key_id("ed"),
        secret: b"0123456789abcdef0123456789abcdef".to_vec(),
    }
}

pub fn jwks(k: &Keys) -> Value {
    json!({"keys": [
        rsa_jwk(&k.rsa, "rsa-a"), es256_jwk(&k.es256, "es256"), es384_jwk(&k.es384, "es384"),
        ed25519_jwk(&k.ed, "ed"), oct_jwk(&k.secret, "hs")
    ]})
}

pub fn harness(k: &Keys, extra: Value) -> Harness {
    let mut config = json!({"providers": [provider(jwks(k))]});
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    Harness::new(config)
}

#[test]
fn valid_tokens_of_every_family_pass_and_claims_reach_upstream() {
    let k = keys();
    let c = || claims(json!({"org": {"id": 7}}));
    let ps = PS256KeyPair::from_pem(include_str!("../testdata/rsa-a.pem"))
        .unwrap()
        .with_key_id("rsa-a");
    let tokens = [
        ("RS256", k.rsa.sign(c()).unwrap()),
        ("PS256", ps.sign(c()).unwrap()),
        ("ES256", k.es256.sign(c()).unwrap()),
        ("ES384", k.es384.sign(c()).unwrap()),
        ("EdDSA", k.ed.sign(c()).unwrap()),
        (
            "HS256",
            HS256Key::from_bytes(&k.secret)
                .with_key_id("hs")
                .authenticate(c())
                .unwrap(),
        ),
    ];
    let mut h = harness(&k, json!({}));
    for (alg, t) in tokens {
        assert_eq!(h.bearer("/x", &t), Outcome::Allow, "{alg}");
        assert_eq!(
            h.host.request_header("x-user-id").as_deref(),
            Some("alice"),
            "{alg}"
        );
        assert_eq!(
            h.host.request_header("x-org").as_deref(),
            Some("7"),
            "{alg}"
        );
        let payload = h.host.request_header("x-jwt-payload").unwrap();
        assert_eq!(t.split('.').nth(1), Some(payload.as_str()), "{alg}");
        assert_eq!(
            h.host.request_header("authorization"),
            None,
            "token removed by default"
        );
    }
    assert_eq!(h.metric("provider_idp_allowed"), 6);
}

#[test]
fn forged_identity_headers_are_stripped_even_on_public_routes() {
    let k = keys();
    let mut h = harness(
        &k,
        json!({"rules": [{"match": {"prefix": "/public"}, "public": true}]}),
    );
    let forged = [
        ("x-user-id", "root"),
        ("x-jwt-payload", "e30"),
        ("x-org", "1"),
    ];
    assert_eq!(h.request("/public/a", &forged, true), Outcome::Allow);
    for (name, _) in forged {
        assert_eq!(h.host.request_header(name), None, "{name}");
    }
    let t = k.rsa.sign(claims(json!({}))).unwrap();
    let mut with_token = forged.to_vec();
    let auth = format!("Bearer {t}");
    with_token.push(("authorization", &auth));
    assert_eq!(h.request("/private", &with_token, true), Outcome::Allow);
    assert_eq!(h.host.request_header_values("x-user-id"), vec!["alice"]);
    assert_eq!(h.host.request_header("x-org"), None);
}

#[test]
fn refusals_table() {
    let k = keys();
    let mut h = harness(&k, json!({}));
    let good = k.rsa.sign(claims(json!({}))).unwrap();
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let parts: Vec<&str> = good.split('.').collect();
    let swapped_payload = format!(
        "{}.{}.{}",
        parts[0],
        crate::token::encode_b64url(
            json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "root", "exp": NOW + 60})
                .to_string()
                .as_bytes()
        ),
        parts[2]
    );
    let rsa_pub_pem = k.rsa.public_key().to_pem().unwrap();
    let cases: Vec<(&str, String, Denial)> = vec![
        (
            "expired",
            k.rsa.sign(claims(json!({"exp": NOW - 120}))).unwrap(),
            Denial::Expired,
        ),
        (
            "not yet valid",
            k.rsa.sign(claims(json!({"nbf": NOW + 600}))).unwrap(),
            Denial::NotYetValid,
        ),
        (
            "issued in future",
            k.rsa.sign(claims(json!({"iat": NOW + 600}))).unwrap(),
            Denial::IssuedInFuture,
        ),
        (
            "no exp",
            k.rsa.sign(claims(json!({"exp": null}))).unwrap(),
            Denial::MissingExpiry,
        ),
        (
            "wrong issuer",
            k.rsa.sign(claims(json!({"iss": "https://evil"}))).unwrap(),
            Denial::WrongIssuer,
        ),
        (
            "wrong audience",
            k.rsa.sign(claims(json!({"aud": "other"}))).unwrap(),
            Denial::WrongAudience,
        ),
        (
            "wrong key, same kid",
            rsa_b()
                .with_key_id("rsa-a")
                .sign(claims(json!({})))
                .unwrap(),
            Denial::BadSignature,
        ),
        (
            "unknown kid",
            rsa_b().sign(claims(json!({}))).unwrap(),
            Denial::UnknownKey,
        ),
        ("tampered signature", tampered, Denial::BadSignature),
        ("swapped payload", swapped_payload, Denial::BadSignature),
        (
            "alg none",
            format!(
                "{}.{}.",
                crate::token::encode_b64url(br#"{"alg":"none"}"#),
                parts[1]
            ),
            Denial::AlgorithmNotAllowed,
        ),
        (
            "alg none with signature",
            format!(
                "{}.{}.c2ln",
                crate::token::encode_b64url(br#"{"alg":"none"}"#),
                parts[1]
            ),
            Denial::AlgorithmNotAllowed,
        ),
        (
            "algorithm confusion: HS256 keyed with the RSA public key",
            raw_hs256(
                &json!({"alg": "HS256", "kid": "rsa-a"}),
                &json!({"iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 60}),
                rsa_pub_pem.as_bytes(),
            ),
            Denial::UnknownKey,
        ),
        (
            "alg not allowed",
            raw_hs256(&json!({"alg": "HS512"}), &json!({"iss": ISSUER}), b"k"),
            Denial::AlgorithmNotAllowed,
        ),
        (
            "oversized",
            format!("{}{}", good, "A".repeat(9000)),
            Denial::TooLarge,
        ),
        ("malformed", "not-a-jwt".into(), Denial::Malformed),
        ("garbage segments", "a.b.c".into(), Denial::Malformed),
        (
            "exp not a number",
            raw_hs256(
                &json!({"alg": "HS256", "kid": "hs"}),
                &json!({"iss": ISSUER, "aud": AUDIENCE, "exp": "never"}),
                &k.secret,
            ),
            Denial::Malformed,
        ),
    ];
    for (name, token, expected) in cases {
        assert_eq!(h.bearer("/x", &token), Outcome::Deny(expected), "{name}");
        assert_eq!(h.host.request_header("x-user-id"), None, "{name}");
    }
    assert_eq!(
        h.request("/x", &[], true),
        Outcome::Deny(Denial::MissingCredential)
    );
    assert_eq!(
        h.request("/x", &[("authorization", "Basic abc")], true),
        Outcome::Deny(Denial::MissingCredential)
    );
    assert_eq!(h.metric("denied_bad_signature"), 3);
    assert_eq!(h.metric("denied_missing_credential"), 2);
}

#[test]
fn fast_and_reference_verifiers_agree_on_every_test_token() {
    let k = keys();
    let good = k.rsa.sign(claims(json!({}))).unwrap();
    let bad = rsa_b()
        .with_key_id("rsa-a")
        .sign(claims(json!({})))
        .unwrap();
    let c = k.rsa.public_key().to_components();
    let material = crate::verifier::KeyMaterial::Rsa { n: &c.n, e: &c.e };
    let fast =
        crate::verifier::Verifier::new(crate::algorithm::Algorithm::Rs256, &material).unwrap();
    let reference =
        crate::verifier::Verifier::reference(crate::algorithm::Algorithm::Rs256, &material)
            .unwrap();
    assert!(matches!(fast, crate::verifier::Verifier::FastRsa(..)));
    for t in [&good, &bad] {
        let jwt = crate::token::parse(t).unwrap();
        let a = fast.verify(jwt.signing_input.as_bytes(), &jwt.signature);
        let b = reference.verify(jwt.signing_input.as_bytes(), &jwt.signature);
        assert_eq!(a, b);
        assert_eq!(a, std::ptr::eq(t, &good));
    }
    let ed = Ed25519KeyPair::generate();
    let x = ed.public_key().to_bytes();
    let m = crate::verifier::KeyMaterial::Ed25519(&x);
    let fast = crate::verifier::Verifier::new(crate::algorithm::Algorithm::EdDsa, &m).unwrap();
    let reference =
        crate::verifier::Verifier::reference(crate::algorithm::Algorithm::EdDsa, &m).unwrap();
    assert!(matches!(fast, crate::verifier::Verifier::FastEd25519(_)));
    let t = ed.sign(claims(json!({}))).unwrap();
    let jwt = crate::token::parse(&t).unwrap();
    assert!(fast.verify(jwt.signing_input.as_bytes(), &jwt.signature));
    assert!(reference.verify(jwt.signing_input.as_bytes(), &jwt.signature));
}

#[test]
fn repeated_token_hits_the_cache_and_expiry_still_applies() {
    let k = keys();
    let mut h = harness(&k, json!({}));
    let t = k.rsa.sign(claims(json!({"exp": NOW + 100}))).unwrap();
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(h.host.request_header("x-user-id").as_deref(), Some("alice"));
    assert_eq!((h.metric("cache_misses"), h.metric("cache_hits")), (1, 1));
    h.host
        .set_time(UNIX_EPOCH + StdDuration::from_secs(NOW + 100 + 61));
    assert_eq!(h.bearer("/x", &t), Outcome::Deny(Denial::Expired));
    assert_eq!(h.metric("cache_hits"), 1);
}

#[test]
fn a_cached_token_still_needs_the_rule_and_its_provider() {
    let k = keys();
    let mut other = provider(json!({"keys": [rsa_jwk(&k.rsa, "rsa-a")]}));
    other["name"] = json!("other");
    other["issuer"] = json!("https://other.test");
    let mut h = Harness::new(json!({
        "providers": [provider(jwks(&k)), other],
        "rules": [
            {"match": {"prefix": "/other"}, "any_of": ["other"]},
            {"match": {"prefix": "/admin"}, "any_of": ["idp"], "scopes": ["admin"]}
        ]
    }));
    let t = k.rsa.sign(claims(json!({"scope": "read"}))).unwrap();
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(h.bearer("/other/x", &t), Outcome::Deny(Denial::WrongIssuer));
    assert_eq!(
        h.bearer("/admin", &t),
        Outcome::Deny(Denial::InsufficientScope)
    );
    assert_eq!(h.metric("rule_rule1_denied"), 1);
    assert_eq!(h.metric("rule_default_allowed"), 1);
}

#[test]
fn two_providers_on_one_header_are_told_apart_by_issuer() {
    let k = keys();
    let mut other = provider(json!({"keys": [es256_jwk(&k.es256, "es256")]}));
    other["name"] = json!("other");
    other["issuer"] = json!("https://other.test");
    let mut h = Harness::new(
        json!({"providers": [provider(json!({"keys": [rsa_jwk(&k.rsa, "rsa-a")]})), other]}),
    );
    let t = k
        .es256
        .sign(claims(json!({"iss": "https://other.test"})))
        .unwrap();
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(h.metric("provider_other_allowed"), 1);
    let unknown = k
        .es256
        .sign(claims(json!({"iss": "https://nobody"})))
        .unwrap();
    assert_eq!(h.bearer("/x", &unknown), Outcome::Deny(Denial::WrongIssuer));
}

#[test]
fn authorization_rules_give_403() {
    let k = keys();
    let mut h = harness(
        &k,
        json!({"rules": [
            {"name": "write", "match": {"prefix": "/write"}, "any_of": ["idp"], "scopes": ["write"]},
            {"name": "admin", "match": {"prefix": "/admin"}, "any_of": ["idp"], "roles": ["admin"]},
            {"name": "acme", "match": {"prefix": "/acme"}, "any_of": ["idp"], "claims": [{"claim": "tenant", "equals": "acme"}]}
        ]}),
    );
    let reader = k
        .rsa
        .sign(claims(
            json!({"scope": "read", "roles": ["user"], "tenant": "acme"}),
        ))
        .unwrap();
    let writer = k
        .rsa
        .sign(claims(
            json!({"scp": ["read", "write"], "roles": ["admin"]}),
        ))
        .unwrap();
    assert_eq!(
        h.bearer("/write", &reader),
        Outcome::Deny(Denial::InsufficientScope)
    );
    assert_eq!(h.bearer("/write", &writer), Outcome::Allow);
    assert_eq!(
        h.bearer("/admin", &reader),
        Outcome::Deny(Denial::Forbidden)
    );
    assert_eq!(h.bearer("/admin", &writer), Outcome::Allow);
    assert_eq!(h.bearer("/acme", &reader), Outcome::Allow);
    assert_eq!(h.bearer("/acme", &writer), Outcome::Deny(Denial::Forbidden));
    assert_eq!(h.metric("rule_write_denied"), 1);
    assert_eq!(h.metric("denied_insufficient_scope"), 1);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn api_keys() -> Value {
    json!({"consumers": [
        {"name": "ci-bot", "key_sha256": "a9bb2ce1bf2a9ef4c9e0a0a3fa0e4e2a4a1c37d75dbbc5a5c5d35a8df8b26b1f"},
        {"name": "ops", "key_sha256": hex(&crate::apikey::sha256(b"ops-key"))}
    ], "from": [{"header": "x-api-key"}, {"query": "api_key"}]})
}

#[test]
fn api_keys_become_the_identity() {
    let k = keys();
    let mut h = harness(
        &k,
        json!({"api_keys": api_keys(), "rules": [
            {"match": {"prefix": "/both"}, "all_of": ["idp", "api_key"]},
            {"match": {"prefix": "/scoped"}, "any_of": ["api_key"], "scopes": ["read"]}
        ]}),
    );
    assert_eq!(
        h.request(
            "/x",
            &[("x-api-key", "ops-key"), ("x-consumer", "forged")],
            true
        ),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header_values("x-consumer"), vec!["ops"]);
    assert_eq!(h.host.request_header("x-api-key"), None);
    assert_eq!(
        h.request("/x?api_key=ops-key&a=1", &[], true),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header(":path").as_deref(), Some("/x?a=1"));
    assert_eq!(
        h.request("/x", &[("x-api-key", "wrong")], true),
        Outcome::Deny(Denial::BadApiKey)
    );
    assert_eq!(
        h.request("/both", &[("x-api-key", "ops-key")], true),
        Outcome::Deny(Denial::MissingCredential)
    );
    let t = k.rsa.sign(claims(json!({}))).unwrap();
    let auth = format!("Bearer {t}");
    assert_eq!(
        h.request(
            "/both",
            &[("x-api-key", "ops-key"), ("authorization", &auth)],
            true
        ),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header("x-user-id").as_deref(), Some("alice"));
    assert_eq!(h.host.request_header("x-consumer").as_deref(), Some("ops"));
    assert_eq!(
        h.request("/scoped", &[("x-api-key", "ops-key")], true),
        Outcome::Deny(Denial::InsufficientScope)
    );
    // `/both` with the key alone verified the key before finding no token.
    assert_eq!(
        (h.metric("api_key_allowed"), h.metric("api_key_denied")),
        (5, 1)
    );
}

#[test]
fn forward_token_keeps_the_credential() {
    let k = keys();
    let mut p = provider(jwks(&k));
    p["forward_token"] = json!(true);
    let mut h = Harness::new(json!({"providers": [p]}));
    let t = k.rsa.sign(claims(json!({}))).unwrap();
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(
        h.host.request_header("authorization"),
        Some(format!("Bearer {t}"))
    );
}

#[test]
fn query_and_cookie_sources() {
    let k = keys();
    let mut p = provider(jwks(&k));
    p["from"] = json!([{"query": "access_token"}, {"cookie": "session"}]);
    let mut h = Harness::new(json!({"providers": [p]}));
    let t = k.rsa.sign(claims(json!({}))).unwrap();
    assert_eq!(
        h.request(&format!("/x?access_token={t}"), &[], true),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header(":path").as_deref(), Some("/x"));
    assert_eq!(
        h.request("/x", &[("cookie", &format!("a=1; session={t}"))], true),
        Outcome::Allow
    );
    assert_eq!(h.host.request_header("cookie").as_deref(), Some("a=1"));
    assert_eq!(h.bearer("/x", &t), Outcome::Deny(Denial::MissingCredential));
}

#[test]
fn empty_configuration_refuses_everything() {
    let mut h = Harness::new(json!({}));
    assert_eq!(
        h.request("/", &[], true),
        Outcome::Deny(Denial::MissingCredential)
    );
}

/// A token with valid claims, no `kid` and a random signature: what a forged-token flood sends.
fn forged_kid_less(alg: &str, signature_len: usize) -> String {
    let b64 = |v: Value| crate::token::encode_b64url(v.to_string().as_bytes());
    format!(
        "{}.{}.{}",
        b64(json!({"alg": alg, "typ": "JWT"})),
        b64(json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": NOW + 60})),
        crate::token::encode_b64url(&vec![0x5a; signature_len])
    )
}

fn kid_less_rsa(pem: &str) -> RS256KeyPair {
    RS256KeyPair::from_pem(pem).unwrap()
}

#[test]
fn require_kid_refuses_kid_less_tokens_before_any_signature_check() {
    let es = ES256KeyPair::generate().with_key_id("es256");
    let one_rsa = json!([rsa_jwk(&rsa_a(), "rsa-a"), es256_jwk(&es, "es256")]);
    let two_rsa = json!([rsa_jwk(&rsa_a(), "rsa-a"), rsa_jwk(&rsa_b(), "rsa-b")]);
    let same_key_twice = json!([rsa_jwk(&rsa_a(), "a1"), rsa_jwk(&rsa_a(), "a2")]);
    let kid_less_a = kid_less_rsa(include_str!("../testdata/rsa-a.pem"))
        .sign(claims(json!({})))
        .unwrap();
    let kid_less_b = kid_less_rsa(include_str!("../testdata/rsa-b.pem"))
        .sign(claims(json!({})))
        .unwrap();
    let named = rsa_a().sign(claims(json!({}))).unwrap();
    let forged = forged_kid_less("RS256", 256);
    let allow = Outcome::Allow;
    let kid_required = Outcome::Deny(Denial::KidRequired);
    let bad_signature = Outcome::Deny(Denial::BadSignature);
    // (require_kid, keys, token, outcome); a forged token refused as kid_required was never
    // checked (a check would say bad_signature).
    let cases = [
        (None, &two_rsa, &kid_less_a, &kid_required),
        (None, &two_rsa, &forged, &kid_required),
        (Some("if_ambiguous"), &two_rsa, &kid_less_b, &kid_required),
        (Some("if_ambiguous"), &two_rsa, &named, &allow),
        (Some("if_ambiguous"), &one_rsa, &kid_less_a, &allow),
        (Some("if_ambiguous"), &one_rsa, &forged, &bad_signature),
        (Some("if_ambiguous"), &same_key_twice, &kid_less_a, &allow),
        (Some("always"), &one_rsa, &kid_less_a, &kid_required),
        (Some("always"), &one_rsa, &forged, &kid_required),
        (Some("always"), &one_rsa, &named, &allow),
        (Some("never"), &two_rsa, &kid_less_b, &allow),
        (Some("never"), &two_rsa, &forged, &bad_signature),
    ];
    for (mode, keys, token, expected) in cases {
        let mut p = json!({"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
            "jwks": {"keys": keys}});
        if let Some(m) = mode {
            p["require_kid"] = json!(m);
        }
        let mut h = Harness::new(json!({"providers": [p]}));
        assert_eq!(h.bearer("/x", token), *expected, "{mode:?} {keys}");
        let refused = i64::from(*expected == kid_required);
        assert_eq!(h.metric("denied_kid_required"), refused, "{mode:?} {keys}");
        assert_eq!(
            h.metric("provider_idp_denied"),
            i64::from(*expected != allow)
        );
    }
}

#[test]
fn a_jwks_own_alg_restricts_its_key() {
    let ps256 = PS256KeyPair::from_pem(include_str!("../testdata/rsa-a.pem"))
        .unwrap()
        .with_key_id("rsa-a");
    let token = ps256.sign(claims(json!({}))).unwrap();
    let config = |jwk: Value| {
        json!({"providers": [{"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
            "algorithms": ["RS256", "PS256"], "jwks": {"keys": [jwk]}}]})
    };
    let mut pinned_jwk = rsa_jwk(&rsa_a(), "rsa-a");
    pinned_jwk["alg"] = json!("RS256");
    let mut pinned = Harness::new(config(pinned_jwk));
    // Only an RS256 verifier is built, so the PS256 token finds no key to be checked with.
    assert_eq!(pinned.config.providers[0].inline_keys.len(), 1);
    assert_eq!(
        pinned.bearer("/x", &token),
        Outcome::Deny(Denial::UnknownKey)
    );
    assert_eq!(pinned.metric("denied_bad_signature"), 0);
    let mut unpinned = Harness::new(config(rsa_jwk(&rsa_a(), "rsa-a")));
    assert_eq!(unpinned.bearer("/x", &token), Outcome::Allow);
}

#[test]
fn unlisted_algorithms_default_to_what_the_inline_keys_verify() {
    let mut jwk = rsa_jwk(&rsa_a(), "rsa-a");
    jwk["alg"] = json!("RS256");
    let mut h = Harness::new(json!({"providers": [{"name": "idp", "issuer": ISSUER,
        "audiences": [AUDIENCE], "jwks": {"keys": [jwk]}}]}));
    let ps256 = PS256KeyPair::from_pem(include_str!("../testdata/rsa-a.pem"))
        .unwrap()
        .with_key_id("rsa-a");
    let es256 = ES256KeyPair::generate().with_key_id("rsa-a");
    assert_eq!(
        h.bearer("/x", &rsa_a().sign(claims(json!({}))).unwrap()),
        Outcome::Allow
    );
    for token in [
        ps256.sign(claims(json!({}))).unwrap(),
        es256.sign(claims(json!({}))).unwrap(),
    ] {
        assert_eq!(
            h.bearer("/x", &token),
            Outcome::Deny(Denial::AlgorithmNotAllowed)
        );
    }
}

#[test]
fn any_issuer_or_audience_passes_only_with_the_opt_out() {
    let k = keys();
    let foreign = k
        .rsa
        .sign(claims(
            json!({"iss": "https://other-tenant", "aud": "other-api"}),
        ))
        .unwrap();
    let no_iss_no_aud = k
        .rsa
        .sign(claims(json!({"iss": null, "aud": null})))
        .unwrap();
    let config = |patch: Value| {
        let mut p = provider(jwks(&k));
        if let (Some(p), Value::Object(patch)) = (p.as_object_mut(), patch) {
            for (key, value) in patch {
                if value.is_null() {
                    p.remove(&key);
                } else {
                    p.insert(key, value);
                }
            }
        }
        json!({"providers": [p]})
    };
    let both = json!({"issuer": null, "accept_any_issuer": true,
        "audiences": null, "accept_any_audience": true});
    let cases = [
        (
            "strict",
            json!({}),
            Denial::WrongIssuer,
            Denial::WrongIssuer,
        ),
        (
            "any issuer",
            json!({"issuer": null, "accept_any_issuer": true}),
            Denial::WrongAudience,
            Denial::WrongAudience,
        ),
        (
            "any audience",
            json!({"audiences": null, "accept_any_audience": true}),
            Denial::WrongIssuer,
            Denial::WrongIssuer,
        ),
    ];
    for (name, patch, foreign_denial, bare_denial) in cases {
        let mut h = Harness::new(config(patch));
        assert_eq!(
            h.bearer("/x", &foreign),
            Outcome::Deny(foreign_denial),
            "{name}"
        );
        assert_eq!(
            h.bearer("/x", &no_iss_no_aud),
            Outcome::Deny(bare_denial),
            "{name}"
        );
    }
    let mut h = Harness::new(config(both));
    assert_eq!(h.bearer("/x", &foreign), Outcome::Allow);
    assert_eq!(h.bearer("/x", &no_iss_no_aud), Outcome::Allow);
    // The opt-outs skip only those two checks: the signature and times still count.
    let forged = rsa_b()
        .with_key_id("rsa-a")
        .sign(claims(json!({"iss": "https://x"})))
        .unwrap();
    assert_eq!(h.bearer("/x", &forged), Outcome::Deny(Denial::BadSignature));
    let expired = k
        .rsa
        .sign(claims(json!({"iss": "https://x", "exp": NOW - 120})))
        .unwrap();
    assert_eq!(h.bearer("/x", &expired), Outcome::Deny(Denial::Expired));
}

#[test]
fn a_named_issuer_keeps_its_tokens_from_a_provider_of_any_issuer() {
    let k = keys();
    let any = json!({"name": "any", "accept_any_issuer": true, "audiences": [AUDIENCE],
        "algorithms": ["ES256"], "jwks": {"keys": [es256_jwk(&k.es256, "es256")]}});
    // Listed first, the provider of any issuer still reads after the named one.
    let mut h = Harness::new(
        json!({"providers": [any, provider(json!({"keys": [rsa_jwk(&k.rsa, "rsa-a")]}))]}),
    );
    let named = k.rsa.sign(claims(json!({}))).unwrap();
    assert_eq!(h.bearer("/x", &named), Outcome::Allow);
    assert_eq!(h.metric("provider_idp_allowed"), 1);
    let other = k
        .es256
        .sign(claims(json!({"iss": "https://other"})))
        .unwrap();
    assert_eq!(h.bearer("/x", &other), Outcome::Allow);
    assert_eq!(h.metric("provider_any_allowed"), 1);
    // The named issuer's token signed by the other key is the named provider's to refuse.
    let impostor = k.es256.sign(claims(json!({}))).unwrap();
    assert_eq!(h.bearer("/x", &impostor), Outcome::Deny(Denial::UnknownKey));
}

#[test]
fn es512_tokens_verify_with_a_p521_key() {
    let key = Es512Key::new(b"request");
    let other = Es512Key::new(b"other");
    let mut h = Harness::new(json!({"providers": [{
        "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
        "jwks": {"keys": [key.jwk("p521")]},
        "claim_headers": [{"claim": "sub", "header": "x-user-id"}]
    }]}));
    let good = key.sign(Some("p521"), &claims(json!({})));
    assert_eq!(h.bearer("/x", &good), Outcome::Allow);
    assert_eq!(h.host.request_header("x-user-id").as_deref(), Some("alice"));
    let kid_less = key.sign(None, &claims(json!({"sub": "bob"})));
    assert_eq!(h.bearer("/x", &kid_less), Outcome::Allow);
    let forged = other.sign(Some("p521"), &claims(json!({})));
    assert_eq!(h.bearer("/x", &forged), Outcome::Deny(Denial::BadSignature));
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        h.bearer("/x", &tampered),
        Outcome::Deny(Denial::BadSignature)
    );
    // An ES512 signature must be r ‖ s of 66 bytes each, nothing else.
    let (input, signature) = good.rsplit_once('.').unwrap();
    let mut der_sized = crate::token::decode_b64url(signature).unwrap();
    der_sized.push(0);
    let long = format!("{input}.{}", crate::token::encode_b64url(&der_sized));
    assert_eq!(h.bearer("/x", &long), Outcome::Deny(Denial::BadSignature));
    let point = key.point();
    let v = crate::verifier::Verifier::new(
        crate::algorithm::Algorithm::Es512,
        &crate::verifier::KeyMaterial::Ec(&point),
    )
    .unwrap();
    assert_eq!(v.algorithm(), crate::algorithm::Algorithm::Es512);
}

#[test]
fn an_es512_token_needs_a_p521_key() {
    let k = keys();
    let mut h = harness(&k, json!({}));
    // The provider lists no ES512: refused before any key is looked up.
    let t = Es512Key::new(b"x").sign(Some("es256"), &claims(json!({})));
    assert_eq!(
        h.bearer("/x", &t),
        Outcome::Deny(Denial::AlgorithmNotAllowed)
    );
    // Listed, but its keys are of other curves: no P-256 key verifies ES512.
    let mut p = provider(jwks(&k));
    p["algorithms"] = json!(["ES256", "ES384", "ES512"]);
    let mut h = Harness::new(json!({"providers": [p]}));
    assert_eq!(h.bearer("/x", &t), Outcome::Deny(Denial::UnknownKey));
}
