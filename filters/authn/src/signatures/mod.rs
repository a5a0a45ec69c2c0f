//! Signature verifiers tuned for wasm32 in Envoy's V8, used for every uncached token.
//!
//! `RsaPublicKey` verifies RS256/RS384/RS512 (`rsa.rs`, PKCS#1 v1.5) and PS256/PS384/PS512
//! (`pss.rs`, PSS) about 10× faster than jwt-simple inside Wasm (its `rsa` 0.9 dependency uses
//! 64-bit digits, which Wasm multiplies through a slow helper), both over `montgomery.rs`;
//! `EcdsaPublicKey` verifies ES256/ES384/ES512 with per-key tables (see `ecdsa/mod.rs`);
//! `Ed25519PublicKey` wraps `ed25519-dalek`. All are checked against jwt-simple, the `rsa`
//! crate or RustCrypto's curves in tests. Verification uses public values only, so it need not be
//! constant-time.
//!
//! RSA keys: odd n of 1024..=4096 bits (callers enforce RFC 7518's 2048 with `bits()`), odd
//! 3 ≤ e < 2^33; the signature is the raw base64url-decoded bytes, exactly as long as n.

mod ecdsa;
mod ed25519;
mod montgomery;
mod pss;
mod rsa;

pub use ecdsa::{Curve, EcdsaPublicKey};
pub use ed25519::Ed25519PublicKey;
pub use rsa::{RsaHash, RsaPublicKey};

#[cfg(test)]
mod tests;
