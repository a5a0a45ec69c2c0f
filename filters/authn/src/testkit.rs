//! Test-only token minting with jwt-simple (natively), and the JWKS documents for its keys.

use crate::token::encode_b64url;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

pub const NOW: u64 = 1_767_225_600; // FakeHost's clock: 2026-01-01T00:00:00Z
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "api";

pub fn rsa_a() -> RS256KeyPair {
    RS256KeyPair::from_pem(include_str!("../testdata/rsa-a.pem"))
        .unwrap()
        .with_key_id("rsa-a")
}

pub fn rsa_b() -> RS256KeyPair {
    RS256KeyPair::from_pem(include_str!("../testdata/rsa-b.pem"))
        .unwrap()
        .with_key_id("rsa-b")
}

/// Claims that pass a provider with [`ISSUER`]/[`AUDIENCE`] at [`NOW`], merged with `extra`
/// (a `null` in `extra` removes the claim).
pub fn claims(extra: Value) -> JWTClaims<Map<String, Value>> {
    let mut map =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": NOW - 10, "exp": NOW + 3600})
            .as_object()
            .cloned()
            .unwrap();
    if let Value::Object(e) = extra {
        for (k, v) in e {
            if v.is_null() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
    }
    let mut c = Claims::with_custom_claims(map, Duration::from_secs(0));
    c.issued_at = None;
    c.expires_at = None;
    c.invalid_before = None;
    c
}

pub fn rsa_jwk(key: &RS256KeyPair, kid: &str) -> Value {
    let c = key.public_key().to_components();
    json!({"kty": "RSA", "kid": kid, "n": encode_b64url(&c.n), "e": encode_b64url(&c.e)})
}

pub fn es256_jwk(key: &ES256KeyPair, kid: &str) -> Value {
    let p = key.public_key().public_key().to_bytes_uncompressed();
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": encode_b64url(&p[1..33]), "y": encode_b64url(&p[33..])})
}

pub fn es384_jwk(key: &ES384KeyPair, kid: &str) -> Value {
    let p = key.public_key().public_key().to_bytes_uncompressed();
    json!({"kty": "EC", "crv": "P-384", "kid": kid, "x": encode_b64url(&p[1..49]), "y": encode_b64url(&p[49..])})
}

pub fn ed25519_jwk(key: &Ed25519KeyPair, kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": encode_b64url(&key.public_key().to_bytes())})
}

pub fn oct_jwk(secret: &[u8], kid: &str) -> Value {
    json!({"kty": "oct", "kid": kid, "k": encode_b64url(secret)})
}

/// A token with any header and claims, HMAC-SHA256-signed with `secret` (for shapes jwt-simple
/// refuses to produce).
pub fn raw_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        encode_b64url(header.to_string().as_bytes()),
        encode_b64url(claims.to_string().as_bytes())
    );
    let tag = HS256Key::from_bytes(secret).authentication_tag(input.as_bytes());
    format!("{input}.{}", encode_b64url(&tag))
}

/// A P-521 key (jwt-simple has no ES512), derived from `seed` so tests are repeatable.
pub struct Es512Key(p521::ecdsa::SigningKey);

impl Es512Key {
    pub fn new(seed: &[u8]) -> Self {
        use sha2::{Digest, Sha512};
        // 66 bytes below 2^512: always a valid P-521 scalar.
        let mut scalar = vec![0u8; 2];
        scalar.extend_from_slice(&Sha512::digest(seed));
        Self(p521::ecdsa::SigningKey::from_slice(&scalar).unwrap())
    }

    /// `04 ‖ x ‖ y`, 133 bytes.
    pub fn point(&self) -> Vec<u8> {
        self.0
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    pub fn jwk(&self, kid: &str) -> Value {
        let p = self.point();
        json!({"kty": "EC", "crv": "P-521", "kid": kid,
            "x": encode_b64url(&p[1..67]), "y": encode_b64url(&p[67..])})
    }

    pub fn pem(&self) -> String {
        use p521::pkcs8::EncodePublicKey;
        self.0
            .verifying_key()
            .to_public_key_pem(p521::pkcs8::LineEnding::LF)
            .unwrap()
    }

    /// An ES512 token over `claims` (RFC 7518 §3.4: the signature is `r ‖ s`, 132 bytes).
    pub fn sign(&self, kid: Option<&str>, claims: &impl serde::Serialize) -> String {
        use p521::ecdsa::signature::Signer;
        let mut header = json!({"alg": "ES512", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let input = format!(
            "{}.{}",
            encode_b64url(header.to_string().as_bytes()),
            encode_b64url(serde_json::to_string(claims).unwrap().as_bytes())
        );
        let signature: p521::ecdsa::Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", encode_b64url(&signature.to_bytes()))
    }
}
