//! Signature verifiers tuned for wasm32 in Envoy's V8, used for every uncached token.
//!
//! `RsaPublicKey` verifies RS256/RS384/RS512 about 10× faster than jwt-simple inside Wasm (its
//! `rsa` 0.9 dependency uses 64-bit digits, which Wasm multiplies through a slow helper);
//! `Ed25519PublicKey` wraps `ed25519-dalek`. Both are checked against jwt-simple and the `rsa`
//! crate in `tests.rs`. Verification uses public values only, so it need not be constant-time.

mod ed25519;
mod montgomery;
mod rsa;

pub use ed25519::Ed25519PublicKey;
pub use montgomery::MAX_MODULUS_BITS;
pub use rsa::{RsaHash, RsaPublicKey, MIN_MODULUS_BITS};

#[cfg(test)]
mod tests;
