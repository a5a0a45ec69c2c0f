//! jwt-simple's verifiers, the independent reference every verifier of the module is
//! differential-tested against. Tests only: the module links none of it.

use crate::algorithm::Algorithm;
use crate::verifier::KeyMaterial;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;

pub enum ReferenceVerifier {
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

impl ReferenceVerifier {
    pub fn new(alg: Algorithm, material: &KeyMaterial<'_>) -> Option<Self> {
        Some(match (alg, material) {
            (Algorithm::Rs256, KeyMaterial::Rsa { n, e }) => {
                Self::Rs256(RS256PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Rs384, KeyMaterial::Rsa { n, e }) => {
                Self::Rs384(RS384PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Rs512, KeyMaterial::Rsa { n, e }) => {
                Self::Rs512(RS512PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Ps256, KeyMaterial::Rsa { n, e }) => {
                Self::Ps256(PS256PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Ps384, KeyMaterial::Rsa { n, e }) => {
                Self::Ps384(PS384PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Ps512, KeyMaterial::Rsa { n, e }) => {
                Self::Ps512(PS512PublicKey::from_components(n, e).ok()?)
            }
            (Algorithm::Es256, KeyMaterial::Ec(point)) => {
                Self::Es256(ES256PublicKey::from_bytes(point).ok()?)
            }
            (Algorithm::Es384, KeyMaterial::Ec(point)) => {
                Self::Es384(ES384PublicKey::from_bytes(point).ok()?)
            }
            (Algorithm::EdDsa, KeyMaterial::Ed25519(x)) => {
                Self::EdDsa(Ed25519PublicKey::from_bytes(x).ok()?)
            }
            _ => return None,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Rs256(_) => Algorithm::Rs256,
            Self::Rs384(_) => Algorithm::Rs384,
            Self::Rs512(_) => Algorithm::Rs512,
            Self::Ps256(_) => Algorithm::Ps256,
            Self::Ps384(_) => Algorithm::Ps384,
            Self::Ps512(_) => Algorithm::Ps512,
            Self::Es256(_) => Algorithm::Es256,
            Self::Es384(_) => Algorithm::Es384,
            Self::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// jwt-simple verifies whole tokens: rebuild one from the parts, with its time checks made
    /// vacuous (now = tolerance = 2^31 s puts `now − tolerance` at 0; `accept_future` skips
    /// `nbf`/`iat`) so that only the signature is judged.
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let Ok(input) = std::str::from_utf8(signing_input) else {
            return false;
        };
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let t = Duration::from_secs(1 << 31);
        let o = Some(VerificationOptions {
            accept_future: true,
            artificial_time: Some(t),
            time_tolerance: Some(t),
            max_token_length: None,
            ..Default::default()
        });
        match self {
            Self::Rs256(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::Rs384(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::Rs512(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::Ps256(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::Ps384(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::Ps512(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::Es256(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::Es384(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
            Self::EdDsa(k) => k.verify_token::<NoCustomClaims>(&token, o).is_ok(),
        }
    }
}
