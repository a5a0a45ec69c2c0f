//! Every configuration rejection, with its exact message, and the documented defaults.

use super::*;
use crate::testkit::*;
use jwt_simple::prelude::*;
use serde_json::json;

fn compile(config: Value) -> Result<AuthnConfig, ConfigError> {
    wasmgate_shared::config::parse::<RawAuthnConfig>(Some(config.to_string().as_bytes()))
        .and_then(RawAuthnConfig::compile)
}

fn jwks() -> Value {
    json!({"keys": [rsa_jwk(&rsa_a(), "rsa-a")]})
}

fn provider() -> Value {
    json!({"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks()})
}

/// `provider()` with `patch` merged in (a `null` removes the field).
fn with(patch: Value) -> Value {
    let mut p = provider();
    if let (Some(o), Value::Object(e)) = (p.as_object_mut(), patch) {
        for (k, v) in e {
            if v.is_null() {
                o.remove(&k);
            } else {
                o.insert(k, v);
            }
        }
    }
    json!({"providers": [p]})
}

#[test]
fn empty_configuration_means_documented_defaults() {
    let c = compile(json!({})).unwrap();
    assert_eq!(c.realm, "wasmgate");
    assert_eq!((c.cache_entries, c.cache_ttl_secs), (4096, 600));
    assert_eq!(c.default_rule.requirement, Requirement::AnyOf(vec![]));
    assert!(c.rules.is_empty() && c.providers.is_empty() && c.api_keys.is_none());
}

#[test]
fn provider_defaults_are_safe() {
    let c = compile(with(json!({}))).unwrap();
    let p = &c.providers[0];
    assert_eq!(p.policy.skew_secs, 60);
    assert!(p.policy.require_exp);
    assert_eq!(p.max_token_bytes, 8192);
    assert_eq!(p.algorithms, rsa_algorithms());
    assert_eq!(p.require_kid, KidRequirement::IfAmbiguous);
    assert_eq!(
        p.sources,
        vec![TokenSource::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into()
        }]
    );
    assert!(!p.forward_token);
    assert_eq!(p.roles_path, vec!["roles".to_string()]);
    assert_eq!(
        c.default_rule.requirement,
        Requirement::AnyOf(vec![Credential::Jwt(0)])
    );
    assert_eq!(c.identity_headers, Vec::<String>::new());
}

fn rsa_algorithms() -> Vec<Algorithm> {
    use Algorithm::*;
    vec![Rs256, Rs384, Rs512, Ps256, Ps384, Ps512]
}

#[test]
fn require_kid_values() {
    for (value, expected) in [
        ("if_ambiguous", KidRequirement::IfAmbiguous),
        ("always", KidRequirement::Always),
        ("never", KidRequirement::Never),
    ] {
        let c = compile(with(json!({"require_kid": value}))).unwrap();
        assert_eq!(c.providers[0].require_kid, expected, "{value}");
    }
}

#[test]
fn unlisted_algorithms_follow_the_inline_keys_or_stay_asymmetric_with_remote_keys() {
    use Algorithm::*;
    let pinned = |alg: &str| {
        let mut jwk = rsa_jwk(&rsa_a(), "rsa-a");
        jwk["alg"] = json!(alg);
        json!({"keys": [jwk]})
    };
    let es384_pem = ES384KeyPair::generate().public_key().to_pem().unwrap();
    let mixed = json!({"keys": [
        es256_jwk(&ES256KeyPair::generate(), "es"),
        ed25519_jwk(&Ed25519KeyPair::generate(), "ed"),
        oct_jwk(b"secret-secret-secret-secret-1234", "hs")
    ]});
    let remote = json!({"cluster": "jwks"});
    let cases = [
        ("RSA JWK", json!({}), rsa_algorithms()),
        (
            "RSA JWK with alg",
            json!({"jwks": pinned("PS384")}),
            vec![Ps384],
        ),
        (
            "EC, OKP and ignored oct JWKs",
            json!({"jwks": mixed}),
            vec![Es256, EdDsa],
        ),
        (
            "P-384 PEM",
            json!({"jwks": null, "pem": [{"pem": es384_pem}]}),
            vec![Es384],
        ),
        (
            "remote only",
            json!({"jwks": null, "remote_jwks": remote}),
            Algorithm::ASYMMETRIC.to_vec(),
        ),
        (
            "inline and remote",
            json!({"jwks": pinned("RS256"), "remote_jwks": remote}),
            Algorithm::ASYMMETRIC.to_vec(),
        ),
        (
            "listed",
            json!({"algorithms": ["HS256", "RS256", "ES256"]}),
            vec![Hs256, Rs256, Es256],
        ),
    ];
    for (name, patch, expected) in cases {
        let c = compile(with(patch)).unwrap();
        assert_eq!(c.providers[0].algorithms, expected, "{name}");
    }
}

#[test]
fn symmetric_keys_are_ignored_unless_hmac_is_listed() {
    let keys = json!({"keys": [oct_jwk(b"secret-secret-secret-secret-1234", "hs")]});
    let err = compile(with(json!({"jwks": keys}))).err().unwrap();
    assert_eq!(
        err.to_string(),
        "providers[0].jwks: no key usable with the provider's algorithms"
    );
    assert!(compile(with(json!({"jwks": keys, "algorithms": ["HS256"]}))).is_ok());
}

#[test]
fn remote_defaults() {
    let c = compile(with(
        json!({"jwks": null, "remote_jwks": {"cluster": "jwks"}}),
    ))
    .unwrap();
    let r = c.providers[0].remote.as_ref().unwrap();
    assert_eq!(
        (r.path.as_str(), r.authority.as_str()),
        ("/.well-known/jwks.json", "jwks")
    );
    assert_eq!(
        (
            r.refresh_ms,
            r.timeout_ms,
            r.retry_initial_ms,
            r.retry_max_ms
        ),
        (300_000, 2000, 500, 30_000)
    );
    assert_eq!((r.refetch_min_ms, r.wait_ms), (30_000, 3000));
    assert!(r.shared_key.starts_with("wasmgate.authn.v1.jwks.idp."));
}

#[test]
fn pem_keys_of_each_type_load() {
    let rsa = rsa_a().public_key().to_pem().unwrap();
    let es = ES256KeyPair::generate().public_key().to_pem().unwrap();
    let ed = Ed25519KeyPair::generate().public_key().to_pem();
    let c = compile(with(
        json!({"jwks": null, "algorithms": ["RS256", "ES256", "EdDSA"],
        "pem": [{"kid": "r", "pem": rsa}, {"pem": es}, {"pem": ed}]}),
    ))
    .unwrap();
    assert_eq!(c.providers[0].inline_keys.len(), 3);
}

fn with_name(mut provider: Value, name: &str) -> Value {
    provider["name"] = json!(name);
    provider
}

#[test]
fn rejections_name_the_field() {
    let api =
        |consumers: Value| json!({"providers": [provider()], "api_keys": {"consumers": consumers}});
    let rule = |r: Value| json!({"providers": [provider()], "rules": [r]});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("unknown field", json!({"provider": []}), "provider: unknown field `provider`"),
        ("realm", json!({"realm": "a\"b"}), "realm: must be non-empty without quotes, backslashes or control characters"),
        ("paths option", json!({"paths": {"escaped_slashes": "decode"}}), "paths.escaped_slashes: unknown variant `decode`, expected `refuse` or `keep`"),
        ("paths field", json!({"paths": {"dots": "keep"}}), "paths.dots: unknown field `dots`, expected one of `escaped_slashes`, `backslash`, `path_parameters`"),
        ("rule path not canonical", rule(json!({"match": {"prefix": "/a/../admin"}, "public": true})), "rules[0].match.prefix: must be a canonical path, as rules see requests: \"/admin\""),
        ("name", with(json!({"name": "a b"})), "providers[0].name: must be 1-64 characters of a-z, 0-9, '_' or '-'"),
        ("upper-case name", with(json!({"name": "IdP"})), "providers[0].name: must be 1-64 characters of a-z, 0-9, '_' or '-'"),
        ("issuer", with(json!({"issuer": ""})), "providers[0].issuer: must not be empty"),
        ("audiences", with(json!({"audiences": []})), "providers[0].audiences: must list at least one non-empty audience"),
        ("issuer missing", with(json!({"issuer": null})), "providers[0]: missing field `issuer`"),
        ("issuer missing, no opt-out", with(json!({"issuer": null, "accept_any_issuer": false})), "providers[0]: missing field `issuer`"),
        ("audiences missing", with(json!({"audiences": null})), "providers[0]: missing field `audiences`"),
        ("issuer and its opt-out", with(json!({"accept_any_issuer": true})), "providers[0].accept_any_issuer: conflicts with issuer: set one of them"),
        ("audiences and their opt-out", with(json!({"accept_any_audience": true})), "providers[0].accept_any_audience: conflicts with audiences: set one of them"),
        ("opt-out not a bool", with(json!({"issuer": null, "accept_any_issuer": "yes"})), "providers[0].accept_any_issuer: invalid type: string \"yes\", expected a boolean"),
        (
            "two providers of any issuer in one place",
            json!({"providers": [
                provider(),
                {"name": "a", "accept_any_issuer": true, "audiences": ["x"], "jwks": jwks()},
                {"name": "b", "accept_any_issuer": true, "audiences": ["y"], "jwks": jwks()}
            ]}),
            "providers[2].accept_any_issuer: provider `a` also accepts any issuer where this one reads tokens: it would take every token there",
        ),
        ("algorithms empty", with(json!({"algorithms": []})), "providers[0].algorithms: must not be empty"),
        (
            "alg none",
            with(json!({"algorithms": ["RS256", "none"]})),
            "providers[0].algorithms[1]: unknown algorithm `none` (one of RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, HS256/384/512; `none` is never accepted)",
        ),
        ("skew", with(json!({"clock_skew_seconds": 601})), "providers[0].clock_skew_seconds: must be at most 600"),
        ("max token", with(json!({"max_token_bytes": 10})), "providers[0].max_token_bytes: must be between 256 and 65536"),
        ("from empty", with(json!({"from": []})), "providers[0].from: must list at least one place to read the credential from"),
        ("from two", with(json!({"from": [{"header": "a", "query": "b"}]})), "providers[0].from[0]: set exactly one of header, query, cookie"),
        ("from header", with(json!({"from": [{"header": "Authorization"}]})), "providers[0].from[0].header: must be a lower-case header name"),
        ("prefix on query", with(json!({"from": [{"query": "t", "prefix": "x"}]})), "providers[0].from[0].prefix: only a header source has a prefix"),
        ("query name", with(json!({"from": [{"query": "a b"}]})), "providers[0].from[0].query: must be a parameter name"),
        ("cookie name", with(json!({"from": [{"cookie": ""}]})), "providers[0].from[0].cookie: must be a cookie name"),
        ("no keys", with(json!({"jwks": null})), "providers[0]: set jwks, pem or remote_jwks"),
        ("jwks not jwks", with(json!({"jwks": {"nope": 1}})), "providers[0].jwks: not a JWKS document: missing field `keys`"),
        ("jwks key", with(json!({"jwks": {"keys": [{"kty": "RSA", "e": "AQAB"}]}})), "providers[0].jwks.keys[0]: missing member `n`"),
        ("jwks small rsa", with(json!({"jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}})), "providers[0].jwks.keys[0]: RSA modulus of 17 bits; at least 2048 required"),
        (
            "short secret",
            with(json!({"algorithms": ["HS256"], "jwks": {"keys": [oct_jwk(b"0123456789a", "hs")]}})),
            "providers[0].jwks.keys[0]: secret of 11 bytes; at least 12 required",
        ),
        ("jwks kty", with(json!({"jwks": {"keys": [{"kty": "XYZ"}]}})), "providers[0].jwks.keys[0]: unsupported key type `XYZ`"),
        ("jwks b64", with(json!({"jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "a+b="}]}})), "providers[0].jwks.keys[0]: member `x` is not base64url without padding"),
        (
            "P-521 coordinate size",
            with(json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-521", "x": "AQAB".repeat(21) + "AQ", "y": "AQAB".repeat(22)}]}})),
            "providers[0].jwks.keys[0]: `x`/`y` must be 66 bytes for P-521",
        ),
        (
            "P-256 coordinates as P-521",
            with(json!({"jwks": {"keys": [{"kty": "EC", "crv": "P-521", "x": "AQAB".repeat(10) + "AQA", "y": "AQAB".repeat(10) + "AQA"}]}})),
            "providers[0].jwks.keys[0]: `x`/`y` must be 66 bytes for P-521",
        ),
        (
            "P-521 point off the curve",
            with(json!({"algorithms": ["ES512"], "jwks": {"keys": [{"kty": "EC", "crv": "P-521", "x": "AQAB".repeat(22), "y": "AQAB".repeat(22)}]}})),
            "providers[0].jwks.keys[0]: not a valid ES512 key",
        ),
        ("pem", with(json!({"jwks": null, "pem": [{"pem": "nope"}]})), "providers[0].pem[0].pem: not a PEM RSA, P-256, P-384, P-521 or Ed25519 public key: no `PUBLIC KEY` or `RSA PUBLIC KEY` block"),
        ("remote cluster", with(json!({"jwks": null, "remote_jwks": {"cluster": ""}})), "providers[0].remote_jwks.cluster: must name an Envoy cluster"),
        ("remote path", with(json!({"remote_jwks": {"cluster": "c", "path": "x"}})), "providers[0].remote_jwks.path: must start with '/'"),
        ("remote refresh", with(json!({"remote_jwks": {"cluster": "c", "refresh_seconds": 0}})), "providers[0].remote_jwks.refresh_seconds: must be > 0"),
        ("remote timeout", with(json!({"remote_jwks": {"cluster": "c", "timeout_ms": 0}})), "providers[0].remote_jwks.timeout_ms: must be > 0"),
        ("remote retry", with(json!({"remote_jwks": {"cluster": "c", "retry_initial_ms": 0}})), "providers[0].remote_jwks.retry_initial_ms: must be > 0"),
        (
            "remote retry max",
            with(json!({"remote_jwks": {"cluster": "c", "retry_initial_ms": 10, "retry_max_ms": 5}})),
            "providers[0].remote_jwks.retry_max_ms: must not be less than retry_initial_ms",
        ),
        ("claim header", with(json!({"claim_headers": [{"claim": "sub", "header": "X-User"}]})), "providers[0].claim_headers[0].header: must be a lower-case header name"),
        ("claim path", with(json!({"claim_headers": [{"claim": "a..b", "header": "x"}]})), "providers[0].claim_headers[0].claim: must be a claim name or dotted path"),
        ("payload header", with(json!({"payload_header": ""})), "providers[0].payload_header: must be a lower-case header name"),
        ("roles claim", with(json!({"roles_claim": ""})), "providers[0].roles_claim: must not be empty"),
        (
            "require kid",
            with(json!({"require_kid": "sometimes"})),
            "providers[0].require_kid: unknown variant `sometimes`, expected one of `if_ambiguous`, `always`, `never`",
        ),
        ("duplicate", json!({"providers": [provider(), provider()]}), "providers[1].name: duplicate provider name `idp`"),
        ("api consumers", api(json!([])), "api_keys.consumers: must list at least one consumer"),
        (
            "api plain key",
            api(json!([{"name": "a", "key_sha256": "my-secret-key"}])),
            "api_keys.consumers[0].key_sha256: must be 64 hex digits: the SHA-256 of the key, never the key itself",
        ),
        (
            "api duplicate",
            api(json!([{"name": "a", "key_sha256": "ab".repeat(32)}, {"name": "b", "key_sha256": "AB".repeat(32)}])),
            "api_keys.consumers[1].key_sha256: the same key is listed twice",
        ),
        ("api consumer name", api(json!([{"name": "", "key_sha256": "ab".repeat(32)}])), "api_keys.consumers[0].name: must be a non-empty printable name"),
        (
            "api name clash",
            json!({"providers": [provider()], "api_keys": {"name": "idp", "consumers": [{"name": "a", "key_sha256": "ab".repeat(32)}]}}),
            "api_keys.name: `idp` is already a provider name",
        ),
        (
            "provider metric",
            json!({"providers": [provider(), with_name(provider(), "per-idp"), with_name(provider(), "per_idp")]}),
            "providers[2].name: shares the metric wasmgate_authn_provider_per_idp_allowed with providers[1] `per-idp`: their counts would merge",
        ),
        (
            "rule metric",
            json!({"providers": [provider()], "rules": [{"public": true, "name": "open"}, {"public": true}, {"public": true, "name": "rule1"}]}),
            "rules[2].name: shares the metric wasmgate_authn_rule_rule1_allowed with rules[1] `rule1`: their counts would merge",
        ),
        (
            "rule metric default",
            rule(json!({"public": true, "name": "default"})),
            "rules[0].name: shares the metric wasmgate_authn_rule_default_allowed with the default rule `default`: their counts would merge",
        ),
        ("rule none", rule(json!({"match": {"prefix": "/"}})), "rules[0]: set exactly one of public, any_of, all_of"),
        ("rule two", rule(json!({"public": true, "any_of": ["idp"]})), "rules[0]: set exactly one of public, any_of, all_of"),
        ("rule unknown", rule(json!({"any_of": ["idp", "other"]})), "rules[0].any_of[1]: unknown provider `other`"),
        ("rule empty", rule(json!({"all_of": []})), "rules[0].all_of: must name at least one provider"),
        ("rule public scopes", rule(json!({"public": true, "scopes": ["a"]})), "rules[0].public: a public rule cannot require scopes, roles or claims"),
        ("rule claim", rule(json!({"any_of": ["idp"], "claims": [{"claim": "a"}]})), "rules[0].claims[0]: set exactly one of equals, contains"),
        ("rule claim path", rule(json!({"any_of": ["idp"], "claims": [{"claim": "", "equals": 1}]})), "rules[0].claims[0].claim: must be a claim name or dotted path"),
        ("rule match", rule(json!({"any_of": ["idp"], "match": {"prefix": "x"}})), "rules[0].match.prefix: must start with '/'"),
        ("rule name", rule(json!({"name": "a b", "public": true})), "rules[0].name: must be 1-64 characters of a-z, 0-9, '_' or '-'"),
        (
            "default match",
            json!({"providers": [provider()], "default": {"match": {"prefix": "/"}, "any_of": ["idp"]}}),
            "default.match: the default applies to every unmatched request; remove match",
        ),
        ("cache entries", json!({"cache": {"max_entries": 2_000_000}}), "cache.max_entries: must be at most 1000000"),
        ("cache ttl", json!({"cache": {"max_ttl_seconds": 0}}), "cache.max_ttl_seconds: must be > 0"),
    ];
    let mut wrong = Vec::new();
    for (name, config, expected) in cases {
        match compile(config) {
            Ok(_) => wrong.push(format!("{name}: accepted")),
            Err(err) if !err.to_string().starts_with(expected) => {
                wrong.push(format!("{name}: {err}"))
            }
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn issuer_and_audience_checks_are_skipped_only_when_asked_for() {
    let c = compile(with(json!({}))).unwrap();
    let policy = &c.providers[0].policy;
    assert_eq!(policy.issuer.as_deref(), Some(ISSUER));
    assert_eq!(policy.audiences, Some(vec![AUDIENCE.to_string()]));
    let cases = [
        json!({"issuer": null, "accept_any_issuer": true}),
        json!({"issuer": "", "accept_any_issuer": true}),
        json!({"audiences": null, "accept_any_audience": true}),
        json!({"audiences": [], "accept_any_audience": true}),
    ];
    for patch in cases {
        let c = compile(with(patch.clone())).unwrap();
        let policy = &c.providers[0].policy;
        let any_issuer = patch.get("accept_any_issuer").is_some();
        assert_eq!(policy.issuer.is_none(), any_issuer, "{patch}");
        assert_eq!(policy.audiences.is_none(), !any_issuer, "{patch}");
    }
}

#[test]
fn providers_that_name_their_issuer_read_a_shared_place_first() {
    let any = json!({"name": "any", "accept_any_issuer": true, "audiences": ["x"], "jwks": jwks()});
    let mut named = provider();
    named["name"] = json!("named");
    let elsewhere = json!({"name": "elsewhere", "accept_any_issuer": true, "audiences": ["y"],
        "jwks": jwks(), "from": [{"header": "x-token"}]});
    let c = compile(json!({"providers": [any, named, elsewhere]})).unwrap();
    assert_eq!(c.locations.len(), 2);
    assert_eq!(
        c.locations[0].readers,
        [Credential::Jwt(1), Credential::Jwt(0)]
    );
    assert_eq!(c.locations[1].readers, [Credential::Jwt(2)]);
}

#[test]
fn es512_keys_load_from_a_jwk_or_pem() {
    let key = Es512Key::new(b"config");
    let c = compile(with(json!({"jwks": {"keys": [key.jwk("p521")]}}))).unwrap();
    let p = &c.providers[0];
    assert_eq!(p.algorithms, vec![Algorithm::Es512]);
    assert_eq!(p.inline_keys.len(), 1);
    let pinned = json!({"keys": [{"alg": "ES512", "use": "sig", "kid": "p521",
        "kty": "EC", "crv": "P-521", "x": key.jwk("p521")["x"], "y": key.jwk("p521")["y"]}]});
    let c = compile(with(
        json!({"jwks": pinned, "algorithms": ["ES384", "ES512"]}),
    ))
    .unwrap();
    assert_eq!(c.providers[0].inline_keys.len(), 1);
    let c = compile(with(json!({"jwks": null, "pem": [{"pem": key.pem()}]}))).unwrap();
    assert_eq!(c.providers[0].algorithms, vec![Algorithm::Es512]);
}
