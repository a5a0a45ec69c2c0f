//! Compact JWS parsing, done by hand so the signature check can be a per-key verifier over
//! `header.payload`: three segments, strict base64url without padding (non-canonical trailing
//! bits rejected), a JSON header whose `alg`/`kid`/`typ`/`crit` we check, and a JSON object of
//! claims. Nothing here trusts the token: it only says what it claims to be.

use crate::denial::Denial;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The header fields we act on; others are ignored (RFC 7515 §4).
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtHeader {
    pub alg: String,
    pub kid: Option<String>,
}

/// A syntactically valid, unverified JWT.
#[derive(Debug)]
pub struct Jwt<'a> {
    pub header: JwtHeader,
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The payload segment as received: already base64url JSON, forwarded as-is.
    pub payload_b64: &'a str,
    pub signature: Vec<u8>,
}

/// Strict base64url without padding.
pub fn decode_b64url(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(segment).ok()
}

#[cfg(test)]
pub fn encode_b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses `token` (already within the size limit).
pub fn parse(token: &str) -> Result<Jwt<'_>, Denial> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Denial::Malformed);
    };
    let header_json = decode_b64url(header_b64).ok_or(Denial::Malformed)?;
    // RFC 7515 §4: UTF-8 JSON. Serde skips the members we ignore without checking their bytes.
    // (`from_slice` after the check, not `from_str`: one JSON reader in the module, not two.)
    std::str::from_utf8(&header_json).map_err(|_| Denial::Malformed)?;
    let raw: RawHeader = serde_json::from_slice(&header_json).map_err(|_| Denial::Malformed)?;
    // We implement no header extension, so any `crit` must be refused (RFC 7515 §4.1.11).
    if raw.crit.is_some() {
        return Err(Denial::Malformed);
    }
    if let Some(typ) = &raw.typ {
        let typ = typ.to_ascii_lowercase();
        if typ != "jwt" && !typ.ends_with("+jwt") {
            return Err(Denial::Malformed);
        }
    }
    if raw.alg.eq_ignore_ascii_case("none") {
        return Err(Denial::AlgorithmNotAllowed);
    }
    let payload = decode_b64url(payload_b64).ok_or(Denial::Malformed)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| Denial::Malformed)?;
    let signature = decode_b64url(signature_b64).ok_or(Denial::Malformed)?;
    if signature.is_empty() {
        return Err(Denial::Malformed);
    }
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(Denial::Malformed)?;
    Ok(Jwt {
        header: JwtHeader {
            alg: raw.alg,
            kid: raw.kid,
        },
        claims,
        signing_input,
        payload_b64,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            encode_b64url(header.as_bytes()),
            encode_b64url(payload.as_bytes()),
            encode_b64url(sig)
        )
    }

    #[test]
    fn parses_header_claims_and_signing_input() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"sub":"u"}"#,
            b"sig",
        );
        let jwt = parse(&t).unwrap();
        assert_eq!(jwt.header.alg, "RS256");
        assert_eq!(jwt.header.kid.as_deref(), Some("k1"));
        assert_eq!(jwt.claims["sub"], "u");
        assert_eq!(jwt.signature, b"sig");
        assert_eq!(t.rfind('.'), Some(jwt.signing_input.len()));
        assert!(t.contains(jwt.payload_b64));
    }

    #[test]
    fn refusals() {
        let ok_header = r#"{"alg":"RS256"}"#;
        let cases: Vec<(&str, String, Denial)> = vec![
            ("two segments", "a.b".into(), Denial::Malformed),
            ("four segments", "a.b.c.d".into(), Denial::Malformed),
            ("empty", String::new(), Denial::Malformed),
            (
                "alg none",
                token(r#"{"alg":"none"}"#, "{}", b"s"),
                Denial::AlgorithmNotAllowed,
            ),
            (
                "alg NONE",
                token(r#"{"alg":"NONE"}"#, "{}", b"s"),
                Denial::AlgorithmNotAllowed,
            ),
            (
                "no alg",
                token(r#"{"kid":"a"}"#, "{}", b"s"),
                Denial::Malformed,
            ),
            (
                "crit",
                token(r#"{"alg":"RS256","crit":["b64"]}"#, "{}", b"s"),
                Denial::Malformed,
            ),
            (
                "typ not jwt",
                token(r#"{"alg":"RS256","typ":"JOSE+JSON"}"#, "{}", b"s"),
                Denial::Malformed,
            ),
            (
                "claims array",
                token(ok_header, "[1]", b"s"),
                Denial::Malformed,
            ),
            (
                "claims not json",
                token(ok_header, "x", b"s"),
                Denial::Malformed,
            ),
            (
                "empty signature",
                token(ok_header, "{}", b""),
                Denial::Malformed,
            ),
            (
                "padding",
                format!(
                    "{}=.{}.{}",
                    encode_b64url(b"{\"alg\":\"RS256\"}"),
                    encode_b64url(b"{}"),
                    "c2ln"
                ),
                Denial::Malformed,
            ),
            (
                "standard alphabet",
                format!(
                    "{}.{}.a+/b",
                    encode_b64url(ok_header.as_bytes()),
                    encode_b64url(b"{}")
                ),
                Denial::Malformed,
            ),
        ];
        for (name, t, expected) in cases {
            assert_eq!(parse(&t).err(), Some(expected), "{name}");
        }
    }

    #[test]
    fn header_not_utf8_is_malformed() {
        // Found by the jws_token fuzz target: invalid UTF-8 inside a member we ignore passed.
        let header = b"{\"alg\":\"ES256\",\"tvp\":\"j\xdfM\x8a\"}";
        let t = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            encode_b64url(b"{}"),
            encode_b64url(b"s")
        );
        assert_eq!(parse(&t).err(), Some(Denial::Malformed));
    }

    #[test]
    fn typ_variants_accepted() {
        for typ in ["JWT", "jwt", "at+jwt", "application/at+JWT"] {
            let t = token(&format!(r#"{{"alg":"ES256","typ":"{typ}"}}"#), "{}", b"s");
            assert!(parse(&t).is_ok(), "{typ}");
        }
    }

    #[test]
    fn non_canonical_base64_trailing_bits_are_rejected() {
        // "QQ" is canonical for "A"; "QR" has non-zero trailing bits.
        assert_eq!(decode_b64url("QQ"), Some(b"A".to_vec()));
        assert_eq!(decode_b64url("QR"), None);
    }
}
