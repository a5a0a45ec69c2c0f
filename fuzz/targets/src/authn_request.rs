//! Whole authn decisions on a FakeHost: arbitrary method, path, headers, credentials and clock
//! through the policy's `on_request`, with a token minted from input claims so that signed,
//! expired, misaddressed and forged tokens are all reached.

use crate::authn_parsers::compact;
use crate::{assert_valid_field, request_headers, request_method, request_path, Input, Seed};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::time::{Duration, UNIX_EPOCH};
use wasmgate_authn::{AuthnStream, Worker};
use wasmgate_shared::canonical::{canonical_path, PathPolicy};
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::matching::{RequestMatch, RequestMatcher};
use wasmgate_shared::request::header_twins;
use wasmgate_shared::{Flow, Host, Policy, RequestView};

const NOW: u64 = 1_767_225_600;
const IDP_SECRET: &[u8] = b"idp secret of 32 bytes, not less";
const PARTNER_SECRET: &[u8] = b"partner secret, 32 bytes or more";
/// The API key of consumer `ci`.
const CI_KEY: &str = "key-ci";
/// Replaced by the minted token wherever it appears in the path or a header value.
const TOKEN: &str = "$TOKEN";

/// The rules, in the configuration's order; the default rule is "any provider".
fn rules() -> Value {
    json!([
        {"match": {"prefix": "/public"}, "public": true},
        {"match": {"prefix": "/admin"}, "any_of": ["idp"], "roles": ["admin"]},
        {"match": {"path": "/both"}, "all_of": ["idp", "api_key"]},
        {"match": {"prefix": "/partner", "methods": ["POST"]}, "any_of": ["partner"]},
        {"match": {"prefix": "/keys"}, "any_of": ["api_key"]}
    ])
}

fn config() -> Value {
    let b64 = |s: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    json!({
        "providers": [
            {"name": "idp", "issuer": "https://issuer.test", "audiences": ["api"],
             "algorithms": ["HS256"],
             "jwks": {"keys": [{"kty": "oct", "kid": "idp", "k": b64(IDP_SECRET)}]},
             "from": [{"header": "authorization", "prefix": "Bearer "},
                      {"query": "access_token"}, {"cookie": "jwt"}],
             "claim_headers": [{"claim": "sub", "header": "x-user-id"},
                               {"claim": "org.id", "header": "x-org"}],
             "payload_header": "x-jwt-payload"},
            {"name": "partner", "issuer": "https://partner.test", "accept_any_audience": true,
             "algorithms": ["HS256"], "require_kid": "never",
             "jwks": {"keys": [{"kty": "oct", "k": b64(PARTNER_SECRET)}]},
             "claim_headers": [{"claim": "sub", "header": "x-partner"}]}
        ],
        "api_keys": {"from": [{"header": "x-api-key"}, {"query": "api_key"}],
                     "consumers": [{"name": "ci", "key_sha256":
                         "0a7a4a2a8bfc5e8b6f1cbbd57e4d6d0e0ab7b6bff2b2f6d1d3bc6a3f7c7a3c3b"}]},
        "rules": rules()
    })
}

/// The configuration with the real hash of [`CI_KEY`].
fn config_bytes() -> Vec<u8> {
    let hash: String = wasmgate_authn::fuzzing::sha256(CI_KEY.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut c = config();
    c["api_keys"]["consumers"][0]["key_sha256"] = json!(hash);
    c.to_string().into_bytes()
}

/// Headers that carry identity to the upstream; only a verified credential may set them.
const MANAGED: [&str; 5] = [
    "x-user-id",
    "x-org",
    "x-jwt-payload",
    "x-partner",
    "x-consumer",
];

/// Every rule's matcher and whether it is public, in order.
fn matchers() -> Vec<(RequestMatcher, bool)> {
    rules()
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let m: RequestMatch = serde_json::from_value(r["match"].clone()).expect("match");
            (m.compile().expect("compiles"), r["public"] == json!(true))
        })
        .collect()
}

fn hs256(secret: &[u8], input: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("any key size");
    mac.update(input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The token the input asks for: its header and claims, signed with the key it picks (0: the
/// idp's, 1: the partner's, 2: a key nobody configured, 3: no signature at all).
fn mint(key: u8, header: &str, claims: &str) -> String {
    let unsigned = compact(header, claims, b"x");
    let input = unsigned.rsplit_once('.').map_or("", |(i, _)| i).to_string();
    let signature = match key % 4 {
        0 => hs256(IDP_SECRET, &input),
        1 => hs256(PARTNER_SECRET, &input),
        2 => hs256(b"a key nobody configured, 32 byte", &input),
        _ => Vec::new(),
    };
    use base64::Engine;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
    format!("{input}.{sig}")
}

/// What one pass through the policy left: the flow, the upstream headers and the identity.
struct Pass {
    flow: Flow,
    upstream: Vec<(String, String)>,
    identity: Option<wasmgate_shared::Identity>,
}

fn pass(worker: &Worker, host: &FakeHost, headers: &[(String, String)]) -> Pass {
    host.reset_stream();
    for (k, v) in headers {
        host.add_request_header(k, v);
    }
    let mut view = RequestView::unjudged(host.request_headers());
    let mut stream = AuthnStream::new(1);
    let flow = worker.on_request(host, &mut view, &mut stream);
    Pass {
        flow,
        upstream: host.request_headers(),
        identity: view.identity.clone(),
    }
}

/// Layout: token key, clock offset (u32, seconds around 2026-01-01), method, `:path`, token
/// header (JSON), token claims (JSON), then the other headers. `$TOKEN` in the path or a
/// header value is the minted token.
///
/// A request goes on only through a rule whose match holds on its canonical request: past a
/// rule that is not public only with a verified identity (a JWT from a configured key with
/// the provider's issuer, or the configured API key), past `/admin` only with the role.
/// Identity headers upstream carry only that identity's values and none of their twins
/// survive; credentials are stripped; the upstream `:path` is canonical; refusals are 400,
/// 401, 403 or 503; every header written is a valid field; a second identical request (the
/// token cache warm) gets the same verdict.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let key = input.byte();
    let offset = i64::from(input.u32() % 400_000) - 200_000;
    let method = request_method(&input.text());
    let path_template = input.text();
    let token_header = input.text();
    let token_claims = input.text();
    let token = mint(key, &token_header, &token_claims);
    let path = request_path(&path_template.replace(TOKEN, &token));
    let mut headers = vec![
        (":method".to_string(), method.clone()),
        (":path".to_string(), path.clone()),
        (":authority".to_string(), "api.test".to_string()),
    ];
    for (k, v) in request_headers(&input.rest_text()) {
        headers.push((k, v.replace(TOKEN, &token)));
    }
    let now = NOW.saturating_add_signed(offset);
    CONFIGURED.with(|(host, worker)| {
        host.set_time(UNIX_EPOCH + Duration::from_secs(now));
        worker.forget(1);
        decide_twice(worker, host, &headers, &token, key, now);
    });
}

thread_local! {
    /// Configuring costs as much as two decisions (JSON, keys, metrics): it is done once, and
    /// [`Worker::forget`] gives every input a worker as freshly configured.
    static CONFIGURED: (FakeHost, Worker) = {
        let host = FakeHost::new();
        let worker = Worker::configure(&host, Some(&config_bytes())).expect("configuration");
        (host, worker)
    };
}

fn decide_twice(
    worker: &Worker,
    host: &FakeHost,
    headers: &[(String, String)],
    token: &str,
    key: u8,
    now: u64,
) {
    let first = pass(worker, host, headers);
    check(&first, headers, token, key, now);
    let second = pass(worker, host, headers);
    let verdict = |p: &Pass| match &p.flow {
        Flow::Reply(r) => (r.status, r.error.clone()),
        Flow::Continue => (200, String::new()),
        Flow::Pause => (0, String::new()),
    };
    assert_eq!(
        verdict(&first),
        verdict(&second),
        "the cache changed the verdict"
    );
    assert_eq!(
        first.upstream, second.upstream,
        "the cache changed the upstream request"
    );
}

/// A claim as authn forwards it: strings as they are, numbers and booleans as JSON, arrays of
/// those joined by commas; nothing with a control character.
fn claim_text(value: &Value) -> Option<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let text = match value {
        Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()?
            .join(","),
        other => scalar(other)?,
    };
    (!text.bytes().any(|b| b.is_ascii_control())).then_some(text)
}

fn check(p: &Pass, headers: &[(String, String)], token: &str, key: u8, now: u64) {
    for (k, v) in &p.upstream {
        assert_valid_field(k, v, "upstream");
    }
    let view = match RequestView::from_headers(headers.to_vec(), &PathPolicy::default()) {
        Ok(v) => v,
        Err(_) => {
            let Flow::Reply(r) = &p.flow else {
                panic!("a path without a canonical form went on");
            };
            assert_eq!(r.status, 400);
            return;
        }
    };
    let reply = match &p.flow {
        Flow::Continue => None,
        Flow::Reply(r) => Some(r),
        Flow::Pause => panic!("paused without remote keys"),
    };
    if let Some(r) = reply {
        assert!(
            [400, 401, 403, 503].contains(&r.status),
            "status {}",
            r.status
        );
        for (k, v) in r.all_headers() {
            assert_valid_field(k, v, "reply");
        }
        return;
    }
    let rule = matchers().into_iter().position(|(m, _)| m.matches(&view));
    let public = rule.is_some_and(|i| matchers()[i].1);
    let claims: Map<String, Value> = p
        .identity
        .as_ref()
        .map(|i| (*i.claims).clone())
        .unwrap_or_default();
    // Only the minted token can carry a valid signature, so a managed header's value must be
    // the minted token's (signed with that provider's key) or the API key's consumer.
    let minted = wasmgate_authn::fuzzing::parse_token(token).ok();
    let minted_claim = |path: &[&str]| -> Option<String> {
        let mut v = minted.as_ref()?.claims.get(*path.first()?)?;
        for part in path.iter().skip(1) {
            v = v.get(part)?;
        }
        claim_text(v)
    };
    let iss = minted.as_ref().and_then(|m| {
        m.claims
            .get("iss")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let signed_by = |k: u8, issuer: &str| key % 4 == k && iss.as_deref() == Some(issuer);
    let key_presented = headers.iter().any(|(_, v)| v.contains(CI_KEY));
    for (k, v) in &p.upstream {
        for managed in MANAGED {
            if !header_twins(k, managed) {
                continue;
            }
            assert!(!public, "{k} reached the upstream of a public rule");
            assert_eq!(k, managed, "the twin {k} of {managed} survived");
            let from_identity = match managed {
                "x-user-id" => {
                    signed_by(0, "https://issuer.test") && minted_claim(&["sub"]) == Some(v.clone())
                }
                "x-org" => {
                    signed_by(0, "https://issuer.test")
                        && minted_claim(&["org", "id"]) == Some(v.clone())
                }
                "x-jwt-payload" => {
                    signed_by(0, "https://issuer.test")
                        && token.split('.').nth(1) == Some(v.as_str())
                }
                "x-partner" => {
                    signed_by(1, "https://partner.test")
                        && minted_claim(&["sub"]) == Some(v.clone())
                }
                _ => key_presented && v == "ci",
            };
            assert!(from_identity, "{k}: {v:?} not from a verified identity");
        }
    }
    let upstream_path = p
        .upstream
        .iter()
        .find(|(k, _)| k == ":path")
        .map(|(_, v)| v.split('?').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    // An empty `:path` (as CONNECT has) has nothing to judge and stays empty.
    assert!(
        upstream_path.is_empty()
            || canonical_path(&upstream_path, &PathPolicy::default()).as_deref()
                == Ok(upstream_path.as_str()),
        "upstream path {upstream_path:?} not canonical"
    );
    if public {
        return;
    }
    let identity = p
        .identity
        .as_ref()
        .expect("allowed past a rule without an identity");
    if !claims.is_empty() {
        let minted = minted.as_ref().expect("a verified token parses");
        assert_eq!(minted.claims, claims, "claims not from the minted token");
        assert!(
            signed_by(0, "https://issuer.test") || signed_by(1, "https://partner.test"),
            "a token verified without its provider's key or issuer"
        );
        if let Some(exp) = claims.get("exp").and_then(Value::as_f64) {
            assert!(now as f64 <= exp + 61.0, "expired token accepted");
        }
    } else {
        assert_eq!(
            identity.name.as_deref(),
            Some("ci"),
            "an identity from nowhere"
        );
        assert!(key_presented, "API-key identity without the key");
    }
    if rule == Some(1) {
        let roles = claims
            .get("roles")
            .map(Value::to_string)
            .unwrap_or_default();
        assert!(roles.contains("admin"), "/admin without the role: {roles}");
    }
    for (k, _) in &p.upstream {
        assert!(
            k != "authorization" && k != "x-api-key",
            "credential {k} forwarded"
        );
    }
}

pub fn seeds() -> Vec<Vec<u8>> {
    let header = r#"{"alg":"HS256","kid":"idp","typ":"JWT"}"#;
    let claims = |extra: Value| {
        let mut c = json!({"iss": "https://issuer.test", "aud": "api", "sub": "alice",
                           "exp": NOW + 3600, "org": {"id": 7}});
        if let (Some(c), Value::Object(e)) = (c.as_object_mut(), extra) {
            c.extend(e);
        }
        c.to_string()
    };
    let seed = |key: u8, method: &str, path: &str, claims: String, headers: &str| {
        Seed::new()
            .byte(key)
            .u32(200_000)
            .field(method)
            .field(path)
            .field(header)
            .field(claims)
            .rest(headers)
    };
    vec![
        seed(
            0,
            "GET",
            "/private",
            claims(json!({})),
            "authorization: Bearer $TOKEN\nx-user-id: forged\nx_user_id: twin",
        ),
        seed(
            0,
            "GET",
            "/admin/users",
            claims(json!({"roles": ["admin"]})),
            "authorization: Bearer $TOKEN",
        ),
        seed(
            0,
            "GET",
            "/public/../admin/x",
            claims(json!({})),
            "cookie: a=1; jwt=$TOKEN",
        ),
        seed(
            0,
            "GET",
            "/public/a?access_token=$TOKEN",
            claims(json!({})),
            "x-consumer: root\nx-jwt-payload: e30",
        ),
        seed(
            1,
            "POST",
            "/partner/x",
            claims(json!({"iss": "https://partner.test"})),
            "authorization: Bearer $TOKEN",
        ),
        seed(
            2,
            "GET",
            "/private",
            claims(json!({})),
            "authorization: Bearer $TOKEN",
        ),
        seed(
            0,
            "GET",
            "/both",
            claims(json!({})),
            "authorization: Bearer $TOKEN\nx-api-key: key-ci",
        ),
        seed(3, "GET", "/keys/x?api_key=key-ci", claims(json!({})), ""),
        seed(
            0,
            "GET",
            "/private",
            claims(json!({"exp": NOW - 120})),
            "authorization: Bearer $TOKEN\nauthorization: Bearer $TOKEN",
        ),
        seed(0, "GET", "/a%2fb", claims(json!({})), ""),
    ]
}
