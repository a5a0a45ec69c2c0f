//! The NIST curves P-256, P-384 and P-521 (FIPS 186-5 / SP 800-186 §3.2.1), each prepared once
//! per VM on first use: the field and order moduli and the generator's multiples table.

use super::field::{from_be_bytes, Modulus};
use super::point::{Affine, WeierstrassCurve};
use super::table::MultiplesTable;
use std::sync::OnceLock;

/// A curve ready for verification.
pub struct CurveParams<const L: usize> {
    pub curve: WeierstrassCurve<L>,
    /// The group order n (prime; every curve here has cofactor 1).
    pub order: Modulus<L>,
    pub order_bits: usize,
    /// Bytes of a coordinate or scalar in JWS (RFC 7518 §3.4).
    pub size: usize,
    /// Window of the per-key tables: wider windows mean fewer additions and bigger tables.
    pub window: u32,
    pub generator: MultiplesTable<L>,
}

/// A curve's defining constants, big-endian hex.
struct Constants {
    p: &'static str,
    n: &'static str,
    b: &'static str,
    gx: &'static str,
    gy: &'static str,
    order_bits: usize,
    size: usize,
    window: u32,
}

// Windows: a P-256 key table (6-bit windows) is 43 rows × 32 points × 80 bytes ≈ 110 KB and
// costs 86 additions per verification; P-384 (5) ≈ 140 KB, P-521 (4) ≈ 160 KB.
const P256: Constants = Constants {
    p: "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    n: "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
    gx: "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
    gy: "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    order_bits: 256,
    size: 32,
    window: 6,
};

const P384: Constants = Constants {
    p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    n: "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    gx: "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    gy: "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    order_bits: 384,
    size: 48,
    window: 5,
};

const P521: Constants = Constants {
    p: "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    n: "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
    b: "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
    gx: "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
    gy: "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
    order_bits: 521,
    size: 66,
    window: 4,
};

pub fn p256() -> Option<&'static CurveParams<10>> {
    static CURVE: OnceLock<Option<CurveParams<10>>> = OnceLock::new();
    CURVE.get_or_init(|| prepare(&P256)).as_ref()
}

pub fn p384() -> Option<&'static CurveParams<14>> {
    static CURVE: OnceLock<Option<CurveParams<14>>> = OnceLock::new();
    CURVE.get_or_init(|| prepare(&P384)).as_ref()
}

pub fn p521() -> Option<&'static CurveParams<19>> {
    static CURVE: OnceLock<Option<CurveParams<19>>> = OnceLock::new();
    CURVE.get_or_init(|| prepare(&P521)).as_ref()
}

fn prepare<const L: usize>(c: &Constants) -> Option<CurveParams<L>> {
    let field = Modulus::from_be_bytes(&hex(c.p)?)?;
    let order = Modulus::from_be_bytes(&hex(c.n)?)?;
    let b = field.to_montgomery(&from_be_bytes(&hex(c.b)?)?);
    let curve = WeierstrassCurve { field, b };
    let g = Affine {
        x: curve.field.to_montgomery(&from_be_bytes(&hex(c.gx)?)?),
        y: curve.field.to_montgomery(&from_be_bytes(&hex(c.gy)?)?),
    };
    if !curve.contains(&g) {
        return None;
    }
    let generator = MultiplesTable::new(&curve, &g, c.order_bits, c.window)?;
    Some(CurveParams {
        curve,
        order,
        order_bits: c.order_bits,
        size: c.size,
        window: c.window,
        generator,
    })
}

fn hex(digits: &str) -> Option<Vec<u8>> {
    let digits = digits.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}
