//! Key sets: a JWKS document (RFC 7517) or PEM public keys compiled into verifiers, one per
//! (key, accepted algorithm), looked up by `kid` and `alg`. A JWK yields verifiers only for the
//! algorithms its own type allows (`kty`/`crv`), its `alg` member if present, and the provider's
//! list; so a token's `alg` can never pick a verifier of another key type.

use crate::algorithm::{Algorithm, KeyFamily};
use crate::apikey::sha256;
use crate::spki::{self, SpkiKey};
use crate::token::decode_b64url;
use crate::verifier::{KeyMaterial, Verifier};
use serde::Deserialize;
use std::rc::Rc;

#[derive(Debug)]
pub struct Key {
    pub kid: Option<String>,
    /// Shared with the key set a refresh replaces when the material is unchanged: ES* keys carry
    /// tables that take milliseconds to build.
    pub verifier: Rc<Verifier>,
    /// Identifies the key material (not the kid), so a cache entry can tell whether the key that
    /// signed it is still in the set after a refresh.
    pub fingerprint: u64,
}

#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

/// A JWK as published: external data, so unknown members are ignored (RFC 7517 §4).
#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

fn member(value: &Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let text = value
        .as_deref()
        .ok_or_else(|| format!("missing member `{name}`"))?;
    decode_b64url(text).ok_or_else(|| format!("member `{name}` is not base64url without padding"))
}

/// RFC 7518 §3.3: RSA keys of at least 2048 bits.
fn check_rsa_size(n: &[u8]) -> Result<(), String> {
    let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
    let significant = n.get(first..).unwrap_or_default();
    let bits = (significant.len() * 8).saturating_sub(
        significant
            .first()
            .map_or(0, |b| b.leading_zeros() as usize),
    );
    if bits < 2048 {
        return Err(format!(
            "RSA modulus of {bits} bits; at least 2048 required"
        ));
    }
    Ok(())
}

fn fingerprint(family: KeyFamily, parts: &[&[u8]]) -> u64 {
    let mut buf = vec![family as u8];
    for p in parts {
        buf.extend_from_slice(&(p.len() as u32).to_be_bytes());
        buf.extend_from_slice(p);
    }
    let digest = sha256(&buf);
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(first)
}

/// Builds the keys one JWK yields. `Ok(empty)` when the key is for something we do not accept
/// (encryption, an algorithm not in `allowed`, a symmetric key where secrets are not allowed).
fn jwk_keys(
    jwk: &Jwk,
    allowed: &[Algorithm],
    allow_secrets: bool,
    previous: Option<&KeySet>,
) -> Result<Vec<Key>, String> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(Vec::new());
    }
    let pinned = match &jwk.alg {
        Some(name) => match Algorithm::from_name(name) {
            Some(a) => Some(a),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let (family, owned): (KeyFamily, Vec<Vec<u8>>) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let n = member(&jwk.n, "n")?;
            check_rsa_size(&n)?;
            (KeyFamily::Rsa, vec![n, member(&jwk.e, "e")?])
        }
        ("EC", Some(crv @ ("P-256" | "P-384" | "P-521"))) => {
            // RFC 7518 §6.2.1.2: each coordinate is exactly the field size (66 bytes for P-521).
            let (family, len) = match crv {
                "P-256" => (KeyFamily::P256, 32),
                "P-384" => (KeyFamily::P384, 48),
                _ => (KeyFamily::P521, 66),
            };
            let (x, y) = (member(&jwk.x, "x")?, member(&jwk.y, "y")?);
            if x.len() != len || y.len() != len {
                return Err(format!("`x`/`y` must be {len} bytes for {crv}"));
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (family, vec![point])
        }
        ("OKP", Some("Ed25519")) => (KeyFamily::Ed25519, vec![member(&jwk.x, "x")?]),
        ("oct", _) if allow_secrets => {
            let k = member(&jwk.k, "k")?;
            if k.len() < crate::mac::MIN_SECRET_BYTES {
                return Err(format!(
                    "secret of {} bytes; at least {} required",
                    k.len(),
                    crate::mac::MIN_SECRET_BYTES
                ));
            }
            (KeyFamily::Secret, vec![k])
        }
        ("oct", _) => return Ok(Vec::new()),
        (kty, crv) => {
            return Err(format!(
                "unsupported key type `{kty}`{}",
                crv.map(|c| format!(" with curve `{c}`"))
                    .unwrap_or_default()
            ))
        }
    };
    let material = match (family, owned.as_slice()) {
        (KeyFamily::Rsa, [n, e]) => KeyMaterial::Rsa { n, e },
        (KeyFamily::P256 | KeyFamily::P384 | KeyFamily::P521, [point]) => KeyMaterial::Ec(point),
        (KeyFamily::Ed25519, [x]) => KeyMaterial::Ed25519(x),
        (KeyFamily::Secret, [k]) => KeyMaterial::Secret(k),
        _ => return Err("inconsistent key material".into()),
    };
    let parts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let fp = fingerprint(family, &parts);
    build(
        jwk.kid.clone(),
        family,
        &material,
        pinned,
        allowed,
        fp,
        previous,
    )
}

fn build(
    kid: Option<String>,
    family: KeyFamily,
    material: &KeyMaterial<'_>,
    pinned: Option<Algorithm>,
    allowed: &[Algorithm],
    fingerprint: u64,
    previous: Option<&KeySet>,
) -> Result<Vec<Key>, String> {
    let mut keys = Vec::new();
    for &alg in allowed {
        if alg.family() != family || pinned.is_some_and(|p| p != alg) {
            continue;
        }
        let reused = previous.and_then(|set| set.verifier_for(fingerprint, alg));
        let verifier = match reused {
            Some(v) => v,
            None => Rc::new(
                Verifier::new(alg, material)
                    .ok_or_else(|| format!("not a valid {} key", alg.name()))?,
            ),
        };
        keys.push(Key {
            kid: kid.clone(),
            verifier,
            fingerprint,
        });
    }
    Ok(keys)
}

impl KeySet {
    /// Parses a JWKS document strictly: any unusable key is an error naming its index
    /// (`keys[1]: …`). For configuration.
    pub fn from_jwks_strict(
        json: &[u8],
        allowed: &[Algorithm],
        allow_secrets: bool,
    ) -> Result<Self, (String, String)> {
        let doc: Jwks = serde_json::from_slice(json)
            .map_err(|e| (String::new(), format!("not a JWKS document: {e}")))?;
        let mut keys = Vec::new();
        for (i, value) in doc.keys.into_iter().enumerate() {
            let field = format!("keys[{i}]");
            let jwk: Jwk =
                serde_json::from_value(value).map_err(|e| (field.clone(), e.to_string()))?;
            keys.extend(jwk_keys(&jwk, allowed, allow_secrets, None).map_err(|e| (field, e))?);
        }
        Ok(Self { keys })
    }

    /// Parses a fetched JWKS leniently: unusable keys are skipped (and counted), so one odd key
    /// at the identity provider does not take the others down. Symmetric keys are never taken
    /// from the network. Verifiers of keys already in `previous` (same material, same
    /// algorithm) are shared rather than rebuilt.
    pub fn from_jwks_lenient(
        json: &[u8],
        allowed: &[Algorithm],
        previous: Option<&KeySet>,
    ) -> Result<(Self, usize), String> {
        let doc: Jwks =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        let mut skipped = 0;
        for value in doc.keys {
            match serde_json::from_value::<Jwk>(value)
                .map_err(|e| e.to_string())
                .and_then(|jwk| jwk_keys(&jwk, allowed, false, previous))
            {
                Ok(k) => keys.extend(k),
                Err(_) => skipped += 1,
            }
        }
        Ok((Self { keys }, skipped))
    }

    /// A PEM public key: an RSA, P-256, P-384, P-521 or Ed25519 `SubjectPublicKeyInfo`
    /// (`PUBLIC KEY`), or a PKCS#1 `RSA PUBLIC KEY`.
    pub fn from_pem(
        kid: Option<String>,
        pem: &str,
        allowed: &[Algorithm],
    ) -> Result<Vec<Key>, String> {
        const EXPECTED: &str = "not a PEM RSA, P-256, P-384, P-521 or Ed25519 public key";
        let (kind, der) = spki::pem_der(pem).map_err(|e| format!("{EXPECTED}: {e}"))?;
        let key = spki::parse_pem_der(kind, &der).map_err(|e| format!("{EXPECTED}: {e}"))?;
        let (family, material, parts): (_, _, Vec<&[u8]>) = match key {
            SpkiKey::Rsa { n, e } => {
                check_rsa_size(n)?;
                (KeyFamily::Rsa, KeyMaterial::Rsa { n, e }, vec![n, e])
            }
            SpkiKey::Ec { family, point } => (family, KeyMaterial::Ec(point), vec![point]),
            SpkiKey::Ed25519(x) => (KeyFamily::Ed25519, KeyMaterial::Ed25519(x), vec![x]),
        };
        let fp = fingerprint(family, &parts);
        build(kid, family, &material, None, allowed, fp, None)
    }

    /// Verifiers: one per key and accepted algorithm.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Distinct keys (by material), for the keys-loaded gauge.
    pub fn key_count(&self) -> usize {
        let mut seen: Vec<u64> = self.keys.iter().map(|k| k.fingerprint).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The algorithms some key here can verify, in [`Algorithm::ALL`] order.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(|a| self.keys.iter().any(|k| k.verifier.algorithm() == *a))
            .collect()
    }

    /// Keys that may have signed a token with this `kid` and `alg`: same algorithm, and the
    /// same kid when both sides have one (keys without a kid are tried for any token).
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            k.verifier.algorithm() == alg
                && match (kid, k.kid.as_deref()) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                }
        })
    }

    fn verifier_for(&self, fingerprint: u64, alg: Algorithm) -> Option<Rc<Verifier>> {
        self.keys
            .iter()
            .find(|k| k.fingerprint == fingerprint && k.verifier.algorithm() == alg)
            .map(|k| Rc::clone(&k.verifier))
    }

    pub fn contains_fingerprint(&self, fingerprint: u64) -> bool {
        self.keys.iter().any(|k| k.fingerprint == fingerprint)
    }

    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
    }

    pub fn push(&mut self, keys: Vec<Key>) {
        self.keys.extend(keys);
    }
}
