//! ECDSA verification (JWS ES256, ES384, ES512) over the NIST curves P-256, P-384 and P-521,
//! written for wasm32. (Work in progress: the stub refuses every key until the verifier lands.)

/// The curve of an ECDSA key; each JWS algorithm fixes one curve and one hash (RFC 7518 §3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// Bytes of a coordinate or scalar: 32, 48 or 66.
    pub fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// An ECDSA public key, prepared for repeated verification.
#[derive(Clone, Debug)]
pub struct EcdsaPublicKey {
    curve: Curve,
}

impl EcdsaPublicKey {
    /// A SEC1 uncompressed point (`04 ‖ x ‖ y`, each coordinate exactly `curve.size()` bytes).
    /// None unless the point is on the curve.
    pub fn from_sec1(curve: Curve, point: &[u8]) -> Option<Self> {
        let _ = (curve, point);
        None
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// True iff `signature` (`r ‖ s`, exactly 2·size bytes) is valid for `signing_input` under
    /// the curve's hash (SHA-256, SHA-384, SHA-512).
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let _ = (signing_input, signature);
        false
    }
}
