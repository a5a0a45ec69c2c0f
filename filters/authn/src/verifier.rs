//! One precompiled signature verifier per (key, algorithm), built once when a key set loads.
//! The request path hands it the token parts and gets a yes/no; which implementation sits
//! behind each algorithm is decided here only.
//!
//! Every algorithm has its own code: RS*/PS* (`signatures::RsaPublicKey`), ES*
//! (`signatures::EcdsaPublicKey`) and EdDSA (`signatures::Ed25519PublicKey`) are tuned for
//! wasm32, HS* is `mac.rs`. jwt-simple, which the module used to link, is now only the
//! independent reference every verifier is differential-tested against (`reference.rs`, tests
//! only). A key none of them takes (an RSA exponent above 2^33 or a modulus over 4096 bits,
//! which jwt-simple's `rsa` refused as well) is not a usable key.

use crate::algorithm::Algorithm;
use crate::signatures;

pub enum Verifier {
    FastRsa(signatures::RsaPublicKey, signatures::RsaHash, Algorithm),
    FastRsaPss(signatures::RsaPublicKey, signatures::RsaHash, Algorithm),
    FastEd25519(signatures::Ed25519PublicKey),
    /// ES256/ES384/ES512: the key's curve decides which.
    Ecdsa(signatures::EcdsaPublicKey),
    /// HS256/384/512.
    Hmac(crate::mac::HmacKey),
    /// jwt-simple's verifier: the reference the ones above are tested against.
    #[cfg(test)]
    Reference(crate::reference::ReferenceVerifier),
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

impl Verifier {
    /// Builds the verifier for `alg` over `material`; `None` when they do not fit together.
    pub fn new(alg: Algorithm, material: &KeyMaterial<'_>) -> Option<Self> {
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

    /// jwt-simple's verifier for `alg` (the reference the others are checked against).
    #[cfg(test)]
    pub fn reference(alg: Algorithm, material: &KeyMaterial<'_>) -> Option<Self> {
        crate::reference::ReferenceVerifier::new(alg, material).map(Verifier::Reference)
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
            #[cfg(test)]
            Verifier::Reference(r) => r.algorithm(),
            Verifier::Hmac(k) => match k.bits() {
                256 => Algorithm::Hs256,
                384 => Algorithm::Hs384,
                _ => Algorithm::Hs512,
            },
        }
    }

    /// Whether `signature` (decoded) over `signing_input` (header.payload) is valid for this key.
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::FastRsa(k, hash, _) => k.verify_pkcs1v15(*hash, signing_input, signature),
            Verifier::FastRsaPss(k, hash, _) => k.verify_pss(*hash, signing_input, signature),
            Verifier::FastEd25519(k) => k.verify(signing_input, signature),
            Verifier::Ecdsa(k) => k.verify(signing_input, signature),
            Verifier::Hmac(k) => k.verify(signing_input, signature),
            #[cfg(test)]
            Verifier::Reference(r) => r.verify(signing_input, signature),
        }
    }
}
