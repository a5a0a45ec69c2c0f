//! The authn parsers a client or an identity provider feeds: JWS compact tokens, registered
//! claims, JWKS documents, PEM/DER public keys, and where credentials are read from a request.

use crate::differential::keys;
use crate::{assert_valid_field, request_headers, request_path, Input, Seed};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use wasmgate_authn::fuzzing::{self as authn, Location, PublicKey};
use wasmgate_shared::canonical::{canonical_path, PathPolicy};
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::request::header_twins;
use wasmgate_shared::{Host, RequestView};

/// FakeHost's clock, the `now` of every unit-test token.
const NOW: u64 = 1_767_225_600;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact token from a header and claims (JSON text) and signature bytes.
pub fn compact(header: &str, claims: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(claims.as_bytes()),
        b64(signature)
    )
}

/// Layout: the token.
///
/// A token that parses is three canonical base64url segments whose decoded bytes re-encode to
/// exactly what was received, with a JSON object header whose `alg` is not `none`, a JSON
/// object payload and a non-empty signature; the signing input is everything before the last
/// dot. A token that does not parse is refused with a denial, never a panic.
pub fn jws_token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(t) = authn::parse_token(&text) else {
        return;
    };
    let segments: Vec<&str> = text.split('.').collect();
    assert_eq!(segments.len(), 3, "{text:?}");
    assert!(!t.alg.eq_ignore_ascii_case("none"));
    assert!(!t.signature.is_empty());
    assert_eq!(t.signing_input, format!("{}.{}", segments[0], segments[1]));
    assert_eq!(t.payload_b64, segments[1]);
    assert_eq!(b64(&t.signature), segments[2], "signature not canonical");
    for segment in &segments[..2] {
        let decoded = authn::decode_b64url(segment).expect("segment decodes");
        assert_eq!(&b64(&decoded), segment, "segment not canonical");
        let json: Value = serde_json::from_slice(&decoded).expect("segment is JSON");
        assert!(json.is_object());
    }
    // The claims of any parsed token go through the checks without a panic.
    let _ = authn::check_claims(&t.claims, Some("https://issuer.test"), None, 60, true, NOW);
}

pub fn jws_token_seeds() -> Vec<Vec<u8>> {
    let claims = r#"{"iss":"https://issuer.test","aud":"api","sub":"alice","exp":1767229200}"#;
    [
        compact(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#, claims, b"sig"),
        compact(r#"{"alg":"ES256","typ":"at+jwt"}"#, "{}", &[7; 64]),
        compact(r#"{"alg":"none"}"#, "{}", b"s"),
        compact(r#"{"alg":"RS256","crit":["b64"]}"#, "{}", b"s"),
        compact(r#"{"alg":"HS256"}"#, "[1]", b"s"),
        "a.b.c".into(),
        "eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// Layout: flags, skew (u16), now offset (u32), issuer, audience, then the claims as JSON.
///
/// Accepted claims satisfy every registered-claim rule read independently here: `iss` equal
/// to the issuer when one is required, an `aud` (string or array) naming the audience,
/// `exp` present when required and not past `now + skew`, `nbf` and `iat` not after it.
pub fn jwt_claims(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let skew = u64::from(input.u16());
    let now = NOW - 1_000_000 + u64::from(input.u32() % 2_000_000);
    let issuer = input.text();
    let audience = input.text();
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(input.rest()) else {
        return;
    };
    let issuer = (flags & 1 == 0).then_some(issuer.as_str());
    let audiences = (flags & 2 == 0).then(|| vec![audience.clone()]);
    let require_exp = flags & 4 == 0;
    let verdict = authn::check_claims(
        &claims,
        issuer,
        audiences.as_deref(),
        skew,
        require_exp,
        now,
    );
    let Ok(exp) = verdict else {
        return;
    };
    let date = |name: &str| -> Option<u64> {
        let Some(Value::Number(n)) = claims.get(name) else {
            return None;
        };
        n.as_u64().or_else(|| n.as_f64().map(|f| f as u64))
    };
    if let Some(want) = issuer {
        assert_eq!(claims.get("iss").and_then(Value::as_str), Some(want));
    }
    if audiences.is_some() {
        let named = match claims.get("aud") {
            Some(Value::String(a)) => *a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&audience)),
            _ => false,
        };
        assert!(named, "audience accepted without being named");
    }
    assert_eq!(exp, date("exp"));
    if require_exp {
        assert!(exp.is_some(), "missing exp accepted");
    }
    if let Some(exp) = exp {
        assert!(now <= exp.saturating_add(skew), "expired token accepted");
    }
    for name in ["nbf", "iat"] {
        if let Some(t) = date(name) {
            assert!(
                t <= now.saturating_add(skew),
                "{name} in the future accepted"
            );
        }
    }
}

pub fn jwt_claims_seeds() -> Vec<Vec<u8>> {
    let base = |claims: Value, flags: u8| {
        Seed::new()
            .byte(flags)
            .u16(60)
            .u32(1_000_000)
            .field("https://issuer.test")
            .field("api")
            .rest(claims.to_string())
    };
    vec![
        base(
            json!({"iss": "https://issuer.test", "aud": "api", "exp": NOW + 10}),
            0,
        ),
        base(
            json!({"iss": "https://issuer.test", "aud": ["x", "api"], "exp": NOW as f64 + 0.5, "nbf": NOW + 60, "iat": NOW - 5}),
            0,
        ),
        base(json!({"iss": 1, "aud": 3, "exp": "soon"}), 7),
        base(json!({"exp": -1, "nbf": 1e300}), 3),
    ]
}

/// The algorithm names whose bits are set in `mask`.
fn allowed(mask: u16) -> Vec<&'static str> {
    authn::algorithm_names()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| n)
        .collect()
}

/// Layout: flags, algorithm mask (u16), a signature, then the JWKS document.
///
/// A document loaded strictly loads leniently too, with nothing skipped and the same keys;
/// keys only ever verify with algorithms on the provider's list, symmetric ones only when
/// secrets are allowed and never from a fetched document; reloading with the previous set
/// (verifiers reused) gives the same keys; any signature is judged without a panic.
pub fn jwks(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let list = allowed(input.u16());
    let signature = input.field().to_vec();
    let json = input.rest();
    let allow_secrets = flags & 1 == 1;
    let strict = authn::jwks_strict(json, &list, allow_secrets);
    let lenient = authn::jwks_lenient(json, &list, None);
    if let Ok(keys) = &strict {
        let (fetched, skipped) = lenient.as_ref().expect("strict loads, lenient must");
        for alg in keys.algorithms() {
            assert!(list.contains(&alg), "{alg} not allowed");
            assert!(allow_secrets || !alg.starts_with("HS"));
        }
        if !allow_secrets {
            assert_eq!(*skipped, 0);
            assert_eq!(fetched.key_count(), keys.key_count());
        }
        for alg in &list {
            let _ = keys.verify(None, alg, b"e30.e30", &signature);
        }
    }
    if let Ok((keys, _)) = &lenient {
        for alg in keys.algorithms() {
            assert!(list.contains(&alg), "{alg} not allowed");
            assert!(!alg.starts_with("HS"), "a fetched secret");
        }
        let (again, _) = authn::jwks_lenient(json, &list, Some(keys)).expect("reload");
        assert_eq!(again.key_count(), keys.key_count());
        assert_eq!(again.algorithms(), keys.algorithms());
    }
}

pub fn jwks_seeds() -> Vec<Vec<u8>> {
    let all = (1u16 << authn::algorithm_names().len()) - 1;
    let doc = json!({"keys": [
        keys::rsa_jwk("rsa-a"),
        keys::p256_jwk("es256"),
        keys::ed25519_jwk("ed"),
        {"kty": "oct", "kid": "hs", "k": b64(b"a secret of 32 bytes, not less.")},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": "AA"}
    ]});
    vec![
        Seed::new()
            .byte(1)
            .u16(all)
            .field([1; 64])
            .rest(doc.to_string()),
        Seed::new()
            .byte(0)
            .u16(all)
            .field([])
            .rest(json!({"keys": [keys::rsa_jwk("rsa-a")]}).to_string()),
        Seed::new()
            .byte(0)
            .u16(all)
            .field([])
            .rest(r#"{"keys":[]}"#),
    ]
}

/// A minimal DER element.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend([0x81, len as u8]),
        0x100..=0xffff => out.extend([0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(contents);
    out
}

/// A positive DER INTEGER from big-endian magnitude bytes without leading zeros.
fn der_uint(magnitude: &[u8]) -> Vec<u8> {
    let mut contents = Vec::new();
    if magnitude.first().is_some_and(|b| *b >= 0x80) {
        contents.push(0);
    }
    contents.extend_from_slice(magnitude);
    der(0x02, &contents)
}

fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    der(0x30, &[der_uint(n), der_uint(e)].concat())
}

/// The one DER encoding of `key` (DER is unique, so a strict reader's input must equal it).
fn spki_der(key: &PublicKey) -> Vec<u8> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    let (algorithm, key_bytes) = match key {
        PublicKey::Rsa { n, e } => (
            [der(0x06, RSA), der(0x05, &[])].concat(),
            rsa_public_key_der(n, e),
        ),
        PublicKey::Ec {
            coordinate_bytes,
            point,
        } => {
            let curve = match coordinate_bytes {
                32 => P256,
                48 => P384,
                _ => P521,
            };
            ([der(0x06, EC), der(0x06, curve)].concat(), point.clone())
        }
        PublicKey::Ed25519(x) => (der(0x06, ED25519), x.clone()),
    };
    let bits = [&[0u8][..], &key_bytes].concat();
    der(0x30, &[der(0x30, &algorithm), der(0x03, &bits)].concat())
}

fn check_key(key: &PublicKey) {
    match key {
        PublicKey::Rsa { n, e } => {
            assert!(n.first().is_some_and(|b| *b != 0), "n with a leading zero");
            assert!(e.first().is_some_and(|b| *b != 0), "e with a leading zero");
        }
        PublicKey::Ec {
            coordinate_bytes,
            point,
        } => {
            assert_eq!(point.len(), 1 + 2 * coordinate_bytes);
            assert_eq!(point.first(), Some(&4));
        }
        PublicKey::Ed25519(x) => assert_eq!(x.len(), 32),
    }
}

/// Layout: mode, then the PEM text (mode 0) or DER (1: SubjectPublicKeyInfo, 2: PKCS#1).
///
/// The DER reader is strict, so whatever it accepts is the unique DER encoding of the key it
/// returns: re-encoding that key must give back the input byte for byte. RSA integers come
/// without sign bytes, EC points uncompressed and of the curve's size. A PEM block's key loads
/// as the configuration loads it without a panic.
pub fn pem_spki(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte() % 3;
    let body = input.rest();
    match mode {
        0 => {
            let text = String::from_utf8_lossy(body);
            if let Ok((pkcs1, der)) = authn::pem_der(&text) {
                if let Ok(key) = authn::parse_der(&der, pkcs1) {
                    check_key(&key);
                }
            }
            let names = authn::algorithm_names();
            if let Ok(keys) = authn::pem_keys(Some("k"), &text, &names) {
                assert!(!keys.algorithms().iter().any(|a| a.starts_with("HS")));
            }
        }
        1 => {
            if let Ok(key) = authn::parse_der(body, false) {
                check_key(&key);
                assert_eq!(spki_der(&key), body, "accepted a non-DER encoding");
            }
        }
        _ => {
            if let Ok(key) = authn::parse_der(body, true) {
                let PublicKey::Rsa { n, e } = &key else {
                    panic!("PKCS#1 gave a non-RSA key");
                };
                check_key(&key);
                assert_eq!(
                    rsa_public_key_der(n, e),
                    body,
                    "accepted a non-DER encoding"
                );
            }
        }
    }
}

pub fn pem_spki_seeds() -> Vec<Vec<u8>> {
    let (rsa_pem, rsa_der) = keys::rsa_public_pem_der();
    let (p256_pem, p256_der) = keys::p256_public_pem_der();
    let n = keys::rsa_n();
    vec![
        Seed::new().byte(0).rest(rsa_pem),
        Seed::new().byte(0).rest(p256_pem),
        Seed::new().byte(1).rest(rsa_der),
        Seed::new().byte(1).rest(p256_der),
        Seed::new()
            .byte(1)
            .rest(spki_der(&PublicKey::Ed25519(keys::ed25519_public()))),
        Seed::new().byte(2).rest(rsa_public_key_der(&n, &[1, 0, 1])),
    ]
}

fn location(kind: u8, name: String, prefix: String) -> Location {
    match kind % 3 {
        0 => Location::Header { name, prefix },
        1 => Location::Query { name },
        _ => Location::Cookie { name },
    }
}

/// Layout: source kind, name, prefix, `:path`, then the other headers (`name: value` lines).
///
/// A credential found is non-empty (and, in a header, free of the comma Envoy joins repeated
/// headers with); after the scrub the request goes upstream with no credential at that place
/// (no header twin, parameter or cookie left), a canonical `:path`, every other header as it
/// was, and only valid header fields written.
pub fn credential_source(data: &[u8]) {
    let mut input = Input::new(data);
    let kind = input.byte();
    let name = input.text();
    let prefix = input.text();
    let path = request_path(&input.text());
    let headers = request_headers(&input.rest_text());
    let header_name = matches!(kind % 3, 0);
    // Configurations take only lower-case header names.
    let name_ok = !header_name || wasmgate_shared::config::header_name("name", &name).is_ok();
    if name.is_empty() || !name_ok {
        return;
    }
    let location = location(kind, name.clone(), prefix);
    let host = FakeHost::new().with_request("GET", &path, "api.test");
    for (k, v) in &headers {
        host.add_request_header(k, v);
    }
    let Ok(mut view) = RequestView::read(&host, &PathPolicy::default()) else {
        return;
    };
    let found = authn::find_credential(&view, &location);
    if let Ok(Some(value)) = &found {
        assert!(!value.is_empty());
        if header_name {
            assert!(
                !value.contains(','),
                "a joined header taken as one credential"
            );
        }
    }
    let before = host.request_headers();
    authn::scrub(&mut view, &host, std::slice::from_ref(&location), &[]);
    let after = host.request_headers();
    for (k, v) in &after {
        assert_valid_field(k, v, "scrub");
    }
    let upstream = RequestView::read(&host, &PathPolicy::default()).expect("upstream path");
    assert_eq!(
        authn::find_credential(&upstream, &location),
        Ok(None),
        "credential left upstream"
    );
    if let Location::Header { name, .. } = &location {
        assert!(
            !after.iter().any(|(k, _)| header_twins(k, name)),
            "twin left"
        );
    }
    let upstream_path = host.request_header(":path").unwrap_or_default();
    let path_only = upstream_path.split('?').next().unwrap_or_default();
    assert!(
        path_only.is_empty()
            || canonical_path(path_only, &PathPolicy::default()).as_deref() == Ok(path_only),
        "upstream path {path_only:?} not canonical"
    );
    // What the scrub may touch: the credential's header (and twins), `cookie` and `:path`.
    let touched = |k: &str| match &location {
        Location::Header { name, .. } => header_twins(k, name) || k == ":path",
        Location::Query { .. } => k == ":path",
        Location::Cookie { .. } => k == "cookie" || k == ":path",
    };
    let kept = |list: &[(String, String)]| -> Vec<(String, String)> {
        list.iter().filter(|(k, _)| !touched(k)).cloned().collect()
    };
    assert_eq!(kept(&before), kept(&after), "another header changed");
    api_key(&name);
}

/// The API-key half: a consumer is found by its key, not by the key's hash, and a
/// `key_sha256` parses back to the digest it spells in either case.
fn api_key(presented: &str) {
    let digest = authn::sha256(presented.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(authn::parse_sha256_hex(&hex), Some(digest));
    assert_eq!(
        authn::parse_sha256_hex(&hex.to_ascii_uppercase()),
        Some(digest)
    );
    let consumers = [
        ("other".to_string(), authn::sha256(b"\0not a key")),
        ("found".to_string(), digest),
    ];
    assert_eq!(
        authn::find_consumer(&consumers, presented).as_deref(),
        Some("found")
    );
    assert_eq!(authn::find_consumer(&consumers, &hex), None);
}

pub fn credential_source_seeds() -> Vec<Vec<u8>> {
    let seed = |kind: u8, name: &str, prefix: &str, path: &str, headers: &str| {
        Seed::new()
            .byte(kind)
            .field(name)
            .field(prefix)
            .field(path)
            .rest(headers)
    };
    vec![
        seed(
            0,
            "authorization",
            "Bearer ",
            "/p",
            "authorization: Bearer t",
        ),
        seed(
            0,
            "authorization",
            "Bearer ",
            "/p",
            "authorization: Bearer a,Bearer b",
        ),
        seed(0, "x-api-key", "", "/a/../p", "x-api-key: a\nx_api_key: b"),
        seed(
            1,
            "access_token",
            "",
            "/p?x=2&access%5Ftoken=t&access_token=u",
            "",
        ),
        seed(1, "token", "", "/a/../p?token=q&x=1&tok%65n=r", ""),
        seed(
            2,
            "jwt",
            "",
            "/p",
            "cookie: a=1; jwt=\"t\"; b=2\ncookie: p=2",
        ),
        seed(2, "s", "", "/p", "cookie: s=c; o=1"),
    ]
}
