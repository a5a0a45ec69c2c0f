//! ECDSA verification (JWS ES256, ES384, ES512: RFC 7518 §3.4) over the NIST curves P-256,
//! P-384 and P-521, written for wasm32 in Envoy's V8 (the RustCrypto `p256` crate costs ≈ 545 µs
//! per ES256 verification there, mostly in 64-bit limb products Wasm has to emulate).
//!
//! - `field.rs`: Montgomery arithmetic in 28-bit limbs, one const-sized type per curve;
//! - `point.rs`: Jacobian point formulas for a = −3;
//! - `table.rs`: signed-window tables of precomputed multiples, so u1·G + u2·Q is additions
//!   only, one per window of each scalar: no doublings on the request path;
//! - `params.rs`: the curves' constants and the generator tables (built once per VM).
//!
//! A key's table is built when the key is loaded, off the request path. Checks are strict: the
//! point must be on the curve with coordinates below p, the signature exactly 2·size bytes,
//! r and s in [1, n − 1]. High-s signatures are valid, as JOSE does not require low s.

mod field;
mod params;
mod point;
mod table;

#[cfg(test)]
mod tests;

use field::{from_be_bytes, is_zero, less_than, Limbs};
use params::CurveParams;
use point::{Affine, Jacobian};
use sha2::{Digest, Sha256, Sha384, Sha512};
use table::MultiplesTable;

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

/// An ECDSA public key with its table of multiples, ready for repeated verification.
pub struct EcdsaPublicKey(Prepared);

enum Prepared {
    P256(Box<PreparedKey<10>>),
    P384(Box<PreparedKey<14>>),
    P521(Box<PreparedKey<19>>),
}

impl std::fmt::Debug for EcdsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcdsaPublicKey({:?})", self.curve())
    }
}

impl EcdsaPublicKey {
    /// A SEC1 uncompressed point (`04 ‖ x ‖ y`, each coordinate exactly `curve.size()` bytes).
    /// None unless both coordinates are below p and the point is on the curve.
    pub fn from_sec1(curve: Curve, point: &[u8]) -> Option<Self> {
        let prepared = match curve {
            Curve::P256 => Prepared::P256(Box::new(PreparedKey::new(params::p256()?, point)?)),
            Curve::P384 => Prepared::P384(Box::new(PreparedKey::new(params::p384()?, point)?)),
            Curve::P521 => Prepared::P521(Box::new(PreparedKey::new(params::p521()?, point)?)),
        };
        Some(Self(prepared))
    }

    pub fn curve(&self) -> Curve {
        match self.0 {
            Prepared::P256(_) => Curve::P256,
            Prepared::P384(_) => Curve::P384,
            Prepared::P521(_) => Curve::P521,
        }
    }

    /// True iff `signature` (`r ‖ s`, exactly 2·size bytes) is valid for `signing_input` under
    /// the curve's hash: SHA-256, SHA-384, SHA-512.
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match &self.0 {
            Prepared::P256(key) => params::p256()
                .is_some_and(|curve| key.verify(curve, &Sha256::digest(signing_input), signature)),
            Prepared::P384(key) => params::p384()
                .is_some_and(|curve| key.verify(curve, &Sha384::digest(signing_input), signature)),
            Prepared::P521(key) => params::p521()
                .is_some_and(|curve| key.verify(curve, &Sha512::digest(signing_input), signature)),
        }
    }

    /// Bytes of the key's table of multiples.
    pub fn table_bytes(&self) -> usize {
        match &self.0 {
            Prepared::P256(key) => key.table.byte_size(),
            Prepared::P384(key) => key.table.byte_size(),
            Prepared::P521(key) => key.table.byte_size(),
        }
    }
}

struct PreparedKey<const L: usize> {
    table: MultiplesTable<L>,
}

impl<const L: usize> PreparedKey<L> {
    fn new(params: &CurveParams<L>, sec1: &[u8]) -> Option<Self> {
        let (&tag, coordinates) = sec1.split_first()?;
        if tag != 0x04 || coordinates.len() != 2 * params.size {
            return None;
        }
        let (x, y) = coordinates.split_at(params.size);
        let field = &params.curve.field;
        let [x, y] = [x, y].map(from_be_bytes::<L>);
        let (x, y) = (x?, y?);
        if !less_than(&x, field.value()) || !less_than(&y, field.value()) {
            return None;
        }
        let point = Affine {
            x: field.to_montgomery(&x),
            y: field.to_montgomery(&y),
        };
        if !params.curve.contains(&point) {
            return None;
        }
        let table = MultiplesTable::new(&params.curve, &point, params.order_bits, params.window)?;
        Some(Self { table })
    }

    /// SEC1 §4.1.4 with the combined multiplication R = u1·G + u2·Q and the final comparison
    /// made without inverting R's Z.
    fn verify(&self, params: &CurveParams<L>, digest: &[u8], signature: &[u8]) -> bool {
        if signature.len() != 2 * params.size {
            return false;
        }
        let (r, s) = signature.split_at(params.size);
        let order = &params.order;
        let (Some(r), Some(s)) = (scalar(order.value(), r), scalar(order.value(), s)) else {
            return false;
        };
        // Each curve's hash is no longer than its order, so e is the whole digest (no
        // truncation) and below 2n: one subtraction reduces it.
        let Some(mut e) =
            from_be_bytes::<L>(digest).filter(|_| digest.len() * 8 <= params.order_bits)
        else {
            return false;
        };
        if !less_than(&e, order.value()) {
            field::subtract_in_place(&mut e, order.value());
        }
        let Some(w) = order.invert_plain(&s) else {
            return false;
        };
        let w = order.to_montgomery(&w);
        // A plain value times a Montgomery one is the plain product.
        let u1 = order.mul(&e, &w);
        let u2 = order.mul(&r, &w);
        let curve = &params.curve;
        let sum = params
            .generator
            .add_multiple(curve, Jacobian::INFINITY, &u1);
        let sum = self.table.add_multiple(curve, sum, &u2);
        if sum.is_infinity() {
            return false;
        }
        x_matches(params, &sum, &r)
    }
}

/// A signature half: a big-endian scalar in [1, n − 1].
fn scalar<const L: usize>(order: &Limbs<L>, bytes: &[u8]) -> Option<Limbs<L>> {
    from_be_bytes::<L>(bytes).filter(|k| !is_zero(k) && less_than(k, order))
}

/// Whether R's affine x, reduced mod n, equals r: x = X/Z² is r or r + n (the only values below
/// p that reduce to r), so compare X with candidate·Z² instead of inverting Z.
fn x_matches<const L: usize>(params: &CurveParams<L>, sum: &Jacobian<L>, r: &Limbs<L>) -> bool {
    let field = &params.curve.field;
    let z2 = field.square(&sum.z);
    let mut r_plus_n = *r;
    field::add_in_place(&mut r_plus_n, params.order.value());
    [*r, r_plus_n]
        .iter()
        .filter(|candidate| less_than(candidate, field.value()))
        .any(|candidate| field.mul(&field.to_montgomery(candidate), &z2) == sum.x)
}
