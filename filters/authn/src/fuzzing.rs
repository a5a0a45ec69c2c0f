//! Entry points for the fuzz targets (`fuzz/targets`), compiled only with the `fuzzing`
//! feature. Each runs one private parser, check or verifier exactly as the request path does
//! and hands back plain values, so a target can assert invariants on them while the modules
//! themselves stay private. The module never builds this file.

use crate::algorithm::Algorithm;
use crate::apikey;
use crate::claims::ClaimPolicy;
use crate::jwks::KeySet;
use crate::signatures::{self, Curve, RsaHash};
use crate::source::{self, Duplicated, Scrub, TokenSource};
use crate::spki::{self, PemKind, SpkiKey};
use crate::token;
use serde_json::{Map, Value};
use wasmgate_shared::{Host, RequestView};

/// What [`token::parse`] made of a compact JWS; nothing is verified.
#[derive(Debug, Clone)]
pub struct ParsedToken {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// `header "." payload` as received.
    pub signing_input: String,
    pub payload_b64: String,
    pub signature: Vec<u8>,
}

/// Parses a token; `Err` is the refusal's metric label (`malformed`, …).
pub fn parse_token(text: &str) -> Result<ParsedToken, &'static str> {
    let jwt = token::parse(text).map_err(|d| d.reason())?;
    Ok(ParsedToken {
        alg: jwt.header.alg,
        kid: jwt.header.kid,
        claims: jwt.claims,
        signing_input: jwt.signing_input.to_string(),
        payload_b64: jwt.payload_b64.to_string(),
        signature: jwt.signature,
    })
}

/// Strict base64url without padding, as every JWS segment and JWK member is read.
pub fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    token::decode_b64url(text)
}

/// The registered-claim checks of a provider; `Ok` carries `exp`, `Err` the refusal's label.
pub fn check_claims(
    claims: &Map<String, Value>,
    issuer: Option<&str>,
    audiences: Option<&[String]>,
    skew_secs: u64,
    require_exp: bool,
    now_secs: u64,
) -> Result<Option<u64>, &'static str> {
    let policy = ClaimPolicy {
        issuer: issuer.map(str::to_string),
        audiences: audiences.map(<[String]>::to_vec),
        skew_secs,
        require_exp,
    };
    policy.check(claims, now_secs).map_err(|d| d.reason())
}

/// A key set as a configuration or a JWKS fetch loads it.
#[derive(Debug)]
pub struct Keys(KeySet);

/// The JWS names of every supported algorithm.
pub fn algorithm_names() -> Vec<&'static str> {
    Algorithm::ALL.iter().map(|a| a.name()).collect()
}

fn algorithms(names: &[&str]) -> Vec<Algorithm> {
    names
        .iter()
        .filter_map(|n| Algorithm::from_name(n))
        .collect()
}

impl Keys {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Distinct keys by material.
    pub fn key_count(&self) -> usize {
        self.0.key_count()
    }

    /// The algorithms some key verifies.
    pub fn algorithms(&self) -> Vec<&'static str> {
        self.0
            .algorithms()
            .into_iter()
            .map(Algorithm::name)
            .collect()
    }

    /// Whether any key that may have signed a token with this `kid` and `alg` accepts
    /// `signature` over `signing_input`.
    pub fn verify(&self, kid: Option<&str>, alg: &str, signing_input: &[u8], sig: &[u8]) -> bool {
        let Some(alg) = Algorithm::from_name(alg) else {
            return false;
        };
        self.0
            .candidates(kid, alg)
            .any(|k| k.verifier.verify(signing_input, sig))
    }
}

/// A JWKS document as a configuration's `jwks` is loaded: any unusable key is an error.
pub fn jwks_strict(json: &[u8], allowed: &[&str], allow_secrets: bool) -> Result<Keys, String> {
    KeySet::from_jwks_strict(json, &algorithms(allowed), allow_secrets)
        .map(Keys)
        .map_err(|(field, reason)| format!("{field}: {reason}"))
}

/// A fetched JWKS document: unusable keys are skipped and counted. `previous` is the set the
/// fetch replaces, whose verifiers are reused for unchanged keys.
pub fn jwks_lenient(
    json: &[u8],
    allowed: &[&str],
    previous: Option<&Keys>,
) -> Result<(Keys, usize), String> {
    KeySet::from_jwks_lenient(json, &algorithms(allowed), previous.map(|k| &k.0))
        .map(|(set, skipped)| (Keys(set), skipped))
}

/// A PEM public key as a configuration's `pem` entry is loaded.
pub fn pem_keys(kid: Option<&str>, pem: &str, allowed: &[&str]) -> Result<Keys, String> {
    let keys = KeySet::from_pem(kid.map(str::to_string), pem, &algorithms(allowed))?;
    let mut set = KeySet::default();
    set.push(keys);
    Ok(Keys(set))
}

/// A public key as the DER reader returns it, copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        coordinate_bytes: usize,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

fn public_key(key: SpkiKey<'_>) -> PublicKey {
    match key {
        SpkiKey::Rsa { n, e } => PublicKey::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        },
        SpkiKey::Ec { family, point } => PublicKey::Ec {
            coordinate_bytes: match family {
                crate::algorithm::KeyFamily::P256 => 32,
                crate::algorithm::KeyFamily::P384 => 48,
                _ => 66,
            },
            point: point.to_vec(),
        },
        SpkiKey::Ed25519(x) => PublicKey::Ed25519(x.to_vec()),
    }
}

/// A DER SubjectPublicKeyInfo (`pkcs1 = false`) or PKCS#1 RSAPublicKey (`pkcs1 = true`).
pub fn parse_der(der: &[u8], pkcs1: bool) -> Result<PublicKey, &'static str> {
    let kind = if pkcs1 { PemKind::Pkcs1 } else { PemKind::Spki };
    spki::parse_pem_der(kind, der).map(public_key)
}

/// The DER of a PEM block and whether its label was `RSA PUBLIC KEY`.
pub fn pem_der(pem: &str) -> Result<(bool, Vec<u8>), &'static str> {
    spki::pem_der(pem).map(|(kind, der)| (kind == PemKind::Pkcs1, der))
}

/// Where a credential is read, as a provider's or the API keys' `from` entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Header { name: String, prefix: String },
    Query { name: String },
    Cookie { name: String },
}

impl Location {
    fn source(&self) -> TokenSource {
        match self {
            Location::Header { name, prefix } => TokenSource::Header {
                name: name.clone(),
                prefix: prefix.clone(),
            },
            Location::Query { name } => TokenSource::Query { name: name.clone() },
            Location::Cookie { name } => TokenSource::Cookie { name: name.clone() },
        }
    }
}

/// The credential at `location`; `Err(())` when the request carries it more than once.
#[allow(clippy::result_unit_err)]
pub fn find_credential(view: &RequestView, location: &Location) -> Result<Option<String>, ()> {
    match location.source().find(view) {
        Ok(found) => Ok(found.map(str::to_string)),
        Err(Duplicated) => Err(()),
    }
}

/// Removes the credentials at `locations` (and the header names `headers`, with their twins)
/// as a request that goes upstream has them removed.
pub fn scrub(
    view: &mut RequestView,
    host: &(impl Host + ?Sized),
    locations: &[Location],
    headers: &[String],
) {
    let sources: Vec<TokenSource> = locations.iter().map(Location::source).collect();
    let mut scrub = Scrub::default();
    for s in &sources {
        scrub.add(s);
    }
    for h in headers {
        scrub.add_header(h);
    }
    scrub.apply(view, host);
}

/// The value after a case-insensitive scheme prefix, trimmed; `None` when absent or empty.
pub fn after_prefix<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    source::after_prefix(value, prefix)
}

/// Every value of query parameter `name`.
pub fn query_params(query: &str, name: &str) -> Vec<String> {
    source::query_params(query, name)
        .map(str::to_string)
        .collect()
}

/// `query` without the parameters named in `names`.
pub fn without_query_params(query: &str, names: &[&str]) -> Option<String> {
    source::without_query_params(query, names)
}

/// 64 hex digits, as an API-key consumer's `key_sha256`.
pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    apikey::parse_sha256_hex(hex)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    apikey::sha256(bytes)
}

/// The name of the consumer whose key hash is `sha256(presented)`.
pub fn find_consumer(consumers: &[(String, [u8; 32])], presented: &str) -> Option<String> {
    let consumers: Vec<apikey::Consumer> = consumers
        .iter()
        .map(|(name, key_sha256)| apikey::Consumer {
            name: name.clone(),
            key_sha256: *key_sha256,
        })
        .collect();
    apikey::find_consumer(&consumers, presented).map(|c| c.name.clone())
}

fn rsa_hash(bits: u16) -> Option<RsaHash> {
    match bits {
        256 => Some(RsaHash::Sha256),
        384 => Some(RsaHash::Sha384),
        512 => Some(RsaHash::Sha512),
        _ => None,
    }
}

/// The RS*/PS* verifier over one public key (odd n of 1024..=4096 bits, odd 3 ≤ e < 2^33).
pub struct RsaKey(signatures::RsaPublicKey);

impl RsaKey {
    pub fn new(n: &[u8], e: &[u8]) -> Option<Self> {
        signatures::RsaPublicKey::from_components(n, e).map(Self)
    }

    pub fn bits(&self) -> usize {
        self.0.bits()
    }

    /// RSASSA-PKCS1-v1_5 with SHA-`hash_bits`; `None` for another hash size.
    pub fn verify_pkcs1v15(&self, hash_bits: u16, message: &[u8], sig: &[u8]) -> Option<bool> {
        Some(self.0.verify_pkcs1v15(rsa_hash(hash_bits)?, message, sig))
    }

    /// RSASSA-PSS with SHA-`hash_bits`, MGF1 of the same hash, salt of the hash's length.
    pub fn verify_pss(&self, hash_bits: u16, message: &[u8], sig: &[u8]) -> Option<bool> {
        Some(self.0.verify_pss(rsa_hash(hash_bits)?, message, sig))
    }
}

/// The ES* verifier over one public key, with its table built once.
pub struct EcdsaKey(signatures::EcdsaPublicKey);

impl EcdsaKey {
    /// `curve_bits` 256, 384 or 521; `point` SEC1 uncompressed.
    pub fn new(curve_bits: u16, point: &[u8]) -> Option<Self> {
        let curve = match curve_bits {
            256 => Curve::P256,
            384 => Curve::P384,
            521 => Curve::P521,
            _ => return None,
        };
        signatures::EcdsaPublicKey::from_sec1(curve, point).map(Self)
    }

    /// `r ‖ s` over `message` with the curve's JWS hash.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        self.0.verify(message, sig)
    }
}

/// The EdDSA verifier over one 32-byte key; `None` for a key it refuses.
pub fn ed25519_verify(key: &[u8], message: &[u8], sig: &[u8]) -> Option<bool> {
    signatures::Ed25519PublicKey::from_bytes(key).map(|k| k.verify(message, sig))
}

/// HS* with a `hash_bits` HMAC; `None` for a secret it refuses.
pub fn hmac_verify(hash_bits: u16, secret: &[u8], message: &[u8], tag: &[u8]) -> Option<bool> {
    crate::mac::HmacKey::new(hash_bits, secret).map(|k| k.verify(message, tag))
}
