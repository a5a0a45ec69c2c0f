//! One precompiled signature verifier per (key, algorithm), built once when a key set loads.
//! The request path hands it the token parts and gets a yes/no; which implementation sits
//! behind each algorithm is decided here only.
//!
//! RS256/384/512 (PKCS#1 v1.5), PS256/384/512 (PSS), ES256/384/512 and EdDSA use the Wasm-tuned
//! verifiers in `signatures` (checked against jwt-simple or the RustCrypto crates in tests), HS*
//! the `hmac` crate (`mac.rs`, checked against jwt-simple). jwt-simple's `verify_token` remains
//! the reference in tests and the fallback for an RSA key `signatures` does not take (exponent or
//! size outside its range); it also re-checks the header `alg` against the key type, and its own
//! time checks are switched off (we check claims ourselves in `claims.rs`, with the provider's
//! skew).

use crate::algorithm::Algorithm;
use crate::signatures;
use jwt_simple::prelude::*;

pub enum Verifier {
    FastRsa(signatures::RsaPublicKey, signatures::RsaHash, Algorithm),
    FastRsaPss(signatures::RsaPublicKey, signatures::RsaHash, Algorithm),
    FastEd25519(signatures::Ed25519PublicKey),
    /// ES256/ES384/ES512: the key's curve decides which.
    Ecdsa(signatures::EcdsaPublicKey),
    /// HS256/384/512.
    Hmac(crate::mac::HmacKey),
    Rs256(RS256PublicKey),
    Rs384(RS384PublicKey),
    Rs512(RS512PublicKey),
    Ps256(PS256PublicKey),
    Ps384(PS384PublicKey),
    Ps512(PS512PublicKey),
    Es256(ES256PublicKey),
    Es384(ES384PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({})", self.algorithm().name())
    }
}

/// Public key material, as a JWK or PEM gives it.
pub enum KeyMaterial<'a> {
    /// Big-endian modulus and exponent.
    Rsa {
        n: &'a [u8],
        e: &'a [u8],
    },
    /// SEC1 point (`04 || x || y`).
    Ec(&'a [u8]),
    Ed25519(&'a [u8]),
    Secret(&'a [u8]),
}

/// jwt-simple's time checks made vacuous: with now = tolerance = 2^31 s, `now - tolerance` is 0,
/// and `accept_future` skips `nbf`/`iat`.
fn signature_only_options() -> VerificationOptions {
    let t = Duration::from_secs(1 << 31);
    VerificationOptions {
        accept_future: true,
        artificial_time: Some(t),
        time_tolerance: Some(t),
        max_token_length: None,
        ..Default::default()
    }
}

impl Verifier {
    /// Builds the verifier for `alg` over `material`; `None` when they do not fit together.
    pub fn new(alg: Algorithm, material: &KeyMaterial<'_>) -> Option<Self> {
        if let Some(fast) = Self::fast(alg, material) {
            return Some(fast);
        }
        Self::reference(alg, material)
    }

    /// The Wasm-tuned verifier, where there is one for `alg`.
    fn fast(alg: Algorithm, material: &KeyMaterial<'_>) -> Option<Self> {
        let hash = match alg {
            Algorithm::Rs256 => signatures::RsaHash::Sha256,
            Algorithm::Rs384 => signatures::RsaHash::Sha384,
            Algorithm::Rs512 => signatures::RsaHash::Sha512,
            Algorithm::Ps256 => signatures::RsaHash::Sha256,
            Algorithm::Ps384 => signatures::RsaHash::Sha384,
            Algorithm::Ps512 => signatures::RsaHash::Sha512,
            Algorithm::EdDsa => {
                let KeyMaterial::Ed25519(x) = material else {
                    return None;
                };
                return signatures::Ed25519PublicKey::from_bytes(x).map(Verifier::FastEd25519);
            }
            Algorithm::Es256 | Algorithm::Es384 | Algorithm::Es512 => {
                let KeyMaterial::Ec(point) = material else {
                    return None;
                };
                let curve = match alg {
                    Algorithm::Es256 => signatures::Curve::P256,
                    Algorithm::Es384 => signatures::Curve::P384,
                    _ => signatures::Curve::P521,
                };
                return signatures::EcdsaPublicKey::from_sec1(curve, point).map(Verifier::Ecdsa);
            }
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                let KeyMaterial::Secret(k) = material else {
                    return None;
                };
                let bits = match alg {
                    Algorithm::Hs256 => 256,
                    Algorithm::Hs384 => 384,
                    _ => 512,
                };
                return crate::mac::HmacKey::new(bits, k).map(Verifier::Hmac);
            }
        };
        let KeyMaterial::Rsa { n, e } = material else {
            return None;
        };
        let key = signatures::RsaPublicKey::from_components(n, e).filter(|k| k.bits() >= 2048)?;
        Some(match alg {
            Algorithm::Ps256 | Algorithm::Ps384 | Algorithm::Ps512 => {
                Verifier::FastRsaPss(key, hash, alg)
            }
            _ => Verifier::FastRsa(key, hash, alg),
        })
    }

    /// jwt-simple's verifier for `alg` (the reference the fast ones are checked against).
    pub fn reference(alg: Algorithm, material: &KeyMaterial<'_>) -> Option<Self> {
        let v = match (alg, material) {
            (Algorithm::Rs256, KeyMaterial::Rsa { n, e }) => {
                Verifier::Rs256(RS256PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Rs384, KeyMaterial::Rsa { n, e }) => {
                Verifier::Rs384(RS384PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Rs512, KeyMaterial::Rsa { n, e }) => {
                Verifier::Rs512(RS512PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Ps256, KeyMaterial::Rsa { n, e }) => {
                Verifier::Ps256(PS256PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Ps384, KeyMaterial::Rsa { n, e }) => {
                Verifier::Ps384(PS384PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Ps512, KeyMaterial::Rsa { n, e }) => {
                Verifier::Ps512(PS512PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Es256, KeyMaterial::Ec(point)) => {
                Verifier::Es256(ES256PublicKey::from_bytes(point).ok()?)
            }
            (Algorithm::Es384, KeyMaterial::Ec(point)) => {
                Verifier::Es384(ES384PublicKey::from_bytes(point).ok()?)
            }
            (Algorithm::EdDsa, KeyMaterial::Ed25519(x)) => {
                Verifier::EdDsa(Ed25519PublicKey::from_bytes(x).ok()?)
            }
            _ => return None,
        };
        Some(v)
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Verifier::FastRsa(_, _, alg) | Verifier::FastRsaPss(_, _, alg) => *alg,
            Verifier::FastEd25519(_) => Algorithm::EdDsa,
            Verifier::Ecdsa(k) => match k.curve() {
                signatures::Curve::P256 => Algorithm::Es256,
                signatures::Curve::P384 => Algorithm::Es384,
                signatures::Curve::P521 => Algorithm::Es512,
            },
            Verifier::Rs256(_) => Algorithm::Rs256,
            Verifier::Rs384(_) => Algorithm::Rs384,
            Verifier::Rs512(_) => Algorithm::Rs512,
            Verifier::Ps256(_) => Algorithm::Ps256,
            Verifier::Ps384(_) => Algorithm::Ps384,
            Verifier::Ps512(_) => Algorithm::Ps512,
            Verifier::Es256(_) => Algorithm::Es256,
            Verifier::Es384(_) => Algorithm::Es384,
            Verifier::EdDsa(_) => Algorithm::EdDsa,
            Verifier::Hmac(k) => match k.bits() {
                256 => Algorithm::Hs256,
                384 => Algorithm::Hs384,
                _ => Algorithm::Hs512,
            },
        }
    }

    /// Whether `signature` over `signing_input` (both parts of `token`) is valid for this key.
    pub fn verify(&self, token: &str, signing_input: &[u8], signature: &[u8]) -> bool {
        let o = Some(signature_only_options());
        match self {
            Verifier::FastRsa(k, hash, _) => k.verify_pkcs1v15(*hash, signing_input, signature),
            Verifier::FastRsaPss(k, hash, _) => k.verify_pss(*hash, signing_input, signature),
            Verifier::FastEd25519(k) => k.verify(signing_input, signature),
            Verifier::Ecdsa(k) => k.verify(signing_input, signature),
            Verifier::Hmac(k) => k.verify(signing_input, signature),
            Verifier::Rs256(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::Rs384(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::Rs512(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::Ps256(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::Ps384(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::Ps512(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::Es256(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::Es384(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
            Verifier::EdDsa(k) => k.verify_token::<NoCustomClaims>(token, o).is_ok(),
        }
    }
}
