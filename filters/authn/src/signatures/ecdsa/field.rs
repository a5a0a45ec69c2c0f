//! Arithmetic modulo a fixed-size odd prime (a curve's field prime p or its group order n),
//! shaped for wasm32 like `montgomery.rs`: 28-bit limbs in `u32`, so a limb product stays below
//! 2^56 and a column of products sums in a `u64` without carry handling. The limb count is a
//! const parameter, so every loop has a fixed trip count and no slice bounds to check.
//!
//! Values live in Montgomery form (x·R mod m, R = 2^(28·L)) except where a function says
//! "plain". Every function returns fully reduced values (< m). Verification touches only public
//! values, so branches on them are fine.

use crate::signatures::montgomery::{limbs_from_be_bytes, LIMB_BITS};

const MASK: u32 = (1 << LIMB_BITS) - 1;

/// Most limbs of any modulus here (P-521's 521 bits need 19), and the columns of a product.
const MAX_LIMBS: usize = 19;
const WIDE: usize = 2 * MAX_LIMBS;

/// Little-endian 28-bit limbs.
pub type Limbs<const L: usize> = [u32; L];

/// An odd modulus m and the constants Montgomery arithmetic modulo m needs.
#[derive(Clone, Debug)]
pub struct Modulus<const L: usize> {
    m: Limbs<L>,
    /// −m⁻¹ mod 2^28.
    neg_inv: u32,
    /// R² mod m: one multiplication brings a plain value into Montgomery form.
    r2: Limbs<L>,
    /// R³ mod m: one multiplication brings a plain inverse of a Montgomery value back.
    r3: Limbs<L>,
    /// R mod m, i.e. 1 in Montgomery form.
    one: Limbs<L>,
}

impl<const L: usize> Modulus<L> {
    /// `m` big-endian; None unless odd, ≥ 3 and at least 2 bits below the limbs' capacity
    /// (sums of two values then never overflow the top limb).
    pub fn from_be_bytes(m: &[u8]) -> Option<Self> {
        if L > MAX_LIMBS {
            return None;
        }
        let limbs = from_be_bytes::<L>(m)?;
        let top = limbs.last().copied().unwrap_or(0);
        let low = limbs.first().copied().unwrap_or(0);
        if low & 1 == 0 || top >> (LIMB_BITS - 2) != 0 || less_than(&limbs, &small(3)) {
            return None;
        }
        let mut modulus = Self {
            m: limbs,
            neg_inv: neg_inverse(low),
            r2: [0; L],
            r3: [0; L],
            one: [0; L],
        };
        // R mod m and R² mod m by doubling: once per curve, and plainly correct.
        let mut x = small::<L>(1);
        for step in 1..=2 * LIMB_BITS as usize * L {
            x = modulus.add(&x, &x);
            if step == LIMB_BITS as usize * L {
                modulus.one = x;
            }
        }
        modulus.r2 = x;
        modulus.r3 = modulus.mul(&x, &x);
        Some(modulus)
    }

    /// The modulus, plain.
    pub fn value(&self) -> &Limbs<L> {
        &self.m
    }

    pub fn one(&self) -> Limbs<L> {
        self.one
    }

    /// a + b mod m.
    pub fn add(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let mut sum = [0u32; L];
        let mut carry = 0u32;
        for ((s, &x), &y) in sum.iter_mut().zip(a).zip(b) {
            let t = x + y + carry;
            *s = t & MASK;
            carry = t >> LIMB_BITS;
        }
        if !less_than(&sum, &self.m) {
            subtract_in_place(&mut sum, &self.m);
        }
        sum
    }

    /// a − b mod m.
    pub fn sub(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let mut difference = *a;
        if subtract_in_place(&mut difference, b) {
            add_in_place(&mut difference, &self.m);
        }
        difference
    }

    /// a·b/R mod m (the Montgomery product).
    #[inline(never)]
    #[allow(clippy::indexing_slicing)] // i, j < L ≤ MAX_LIMBS: in range, and with L constant the loops unroll check-free
    pub fn mul(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let mut t = [0u64; WIDE];
        for i in 0..L {
            for j in 0..L {
                t[i + j] += u64::from(a[i]) * u64::from(b[j]);
            }
        }
        self.reduce(t)
    }

    /// a²/R mod m, computing each cross product once.
    #[inline(never)]
    #[allow(clippy::indexing_slicing)] // as in `mul`
    pub fn square(&self, a: &Limbs<L>) -> Limbs<L> {
        let mut t = [0u64; WIDE];
        for i in 0..L {
            for j in i + 1..L {
                t[i + j] += u64::from(a[i]) * u64::from(a[j]);
            }
        }
        for column in t.iter_mut().take(2 * L) {
            *column <<= 1;
        }
        for i in 0..L {
            t[2 * i] += u64::from(a[i]) * u64::from(a[i]);
        }
        self.reduce(t)
    }

    /// t/R mod m for a double-width t of unnormalised 28-bit columns (each below 2^62: at most
    /// 2L products below 2^56 and a carry). Row i adds q·m·2^(28i), q chosen to clear column i,
    /// and pushes that column's carry on; the top L columns are then the result, below 2m.
    #[inline(always)]
    #[allow(clippy::indexing_slicing)] // i + j < 2L ≤ WIDE
    fn reduce(&self, mut t: [u64; WIDE]) -> Limbs<L> {
        for i in 0..L {
            let q = (t[i] as u32).wrapping_mul(self.neg_inv) & MASK;
            for j in 0..L {
                t[i + j] += u64::from(q) * u64::from(self.m[j]);
            }
            t[i + 1] += t[i] >> LIMB_BITS;
        }
        let mut out = [0u32; L];
        let mut carry = 0u64;
        for (limb, &column) in out.iter_mut().zip(t.iter().skip(L)) {
            let v = column + carry;
            *limb = v as u32 & MASK;
            carry = v >> LIMB_BITS;
        }
        if carry != 0 || !less_than(&out, &self.m) {
            subtract_in_place(&mut out, &self.m);
        }
        out
    }

    /// Plain value into Montgomery form; `a` must be below m.
    pub fn to_montgomery(&self, a: &Limbs<L>) -> Limbs<L> {
        self.mul(a, &self.r2)
    }

    /// Montgomery form back to the plain value.
    #[cfg(test)]
    pub fn leave_montgomery(&self, a: &Limbs<L>) -> Limbs<L> {
        self.mul(a, &small(1))
    }

    /// The inverse of a Montgomery-form value, in Montgomery form; None for 0.
    pub fn invert(&self, a: &Limbs<L>) -> Option<Limbs<L>> {
        // The plain inverse of a·R is a⁻¹·R⁻¹; times R³ over R gives a⁻¹·R.
        Some(self.mul(&self.invert_plain(a)?, &self.r3))
    }

    /// The inverse of a plain value below m, plain, by the binary extended Euclidean algorithm
    /// (m prime); None for 0. Variable-time: only ever given public values.
    pub fn invert_plain(&self, a: &Limbs<L>) -> Option<Limbs<L>> {
        if is_zero(a) || !less_than(a, &self.m) {
            return None;
        }
        let one = small::<L>(1);
        let (mut u, mut v) = (*a, self.m);
        let (mut x1, mut x2) = (one, [0u32; L]);
        // Invariants: x1·a ≡ u and x2·a ≡ v (mod m); gcd(u, v) = 1 throughout.
        while u != one && v != one {
            // Unreachable for a prime m; guards the even-stripping loops below against 0.
            if is_zero(&u) || is_zero(&v) {
                return None;
            }
            while is_even(&u) {
                shift_right_one(&mut u);
                self.halve(&mut x1);
            }
            while is_even(&v) {
                shift_right_one(&mut v);
                self.halve(&mut x2);
            }
            if less_than(&u, &v) {
                subtract_in_place(&mut v, &u);
                x2 = self.sub(&x2, &x1);
            } else {
                subtract_in_place(&mut u, &v);
                x1 = self.sub(&x1, &x2);
            }
        }
        Some(if u == one { x1 } else { x2 })
    }

    /// x/2 mod m for x < m.
    fn halve(&self, x: &mut Limbs<L>) {
        if !is_even(x) {
            add_in_place(x, &self.m);
        }
        shift_right_one(x);
    }
}

/// Big-endian bytes (any length, leading zeros allowed) into limbs; None if the value does not fit.
pub fn from_be_bytes<const L: usize>(bytes: &[u8]) -> Option<Limbs<L>> {
    let mut limbs = [0u32; L];
    limbs_from_be_bytes(bytes, &mut limbs).then_some(limbs)
}

/// Limbs into exactly `out.len()` big-endian bytes (higher bits dropped).
#[cfg(test)]
pub fn to_be_bytes<const L: usize>(limbs: &Limbs<L>, out: &mut [u8]) {
    crate::signatures::montgomery::limbs_to_be_bytes(limbs, out);
}

/// A small plain value as limbs.
pub fn small<const L: usize>(value: u32) -> Limbs<L> {
    let mut limbs = [0u32; L];
    if let Some(low) = limbs.first_mut() {
        *low = value & MASK;
    }
    limbs
}

pub fn is_zero<const L: usize>(a: &Limbs<L>) -> bool {
    a.iter().all(|&limb| limb == 0)
}

/// a < b.
pub fn less_than<const L: usize>(a: &Limbs<L>, b: &Limbs<L>) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// Bits `at..at + width` of a plain value (width ≤ 28), as a number.
pub fn bits_at<const L: usize>(a: &Limbs<L>, at: usize, width: u32) -> u32 {
    let limb = at / LIMB_BITS as usize;
    let offset = (at % LIMB_BITS as usize) as u32;
    let low = a.get(limb).copied().unwrap_or(0) >> offset;
    let high = a.get(limb + 1).copied().unwrap_or(0) << (LIMB_BITS - offset);
    (low | high) & ((1 << width) - 1)
}

/// a −= b modulo 2^(28·L); returns whether it borrowed (a was below b).
pub fn subtract_in_place<const L: usize>(a: &mut Limbs<L>, b: &Limbs<L>) -> bool {
    let mut borrow = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = x.wrapping_sub(y).wrapping_sub(borrow);
        *x = d & MASK;
        borrow = d >> 31;
    }
    borrow != 0
}

/// a += b modulo 2^(28·L).
pub fn add_in_place<const L: usize>(a: &mut Limbs<L>, b: &Limbs<L>) {
    let mut carry = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let t = *x + y + carry;
        *x = t & MASK;
        carry = t >> LIMB_BITS;
    }
}

fn is_even<const L: usize>(a: &Limbs<L>) -> bool {
    a.first().is_none_or(|low| low & 1 == 0)
}

fn shift_right_one<const L: usize>(a: &mut Limbs<L>) {
    let mut carry = 0u32;
    for limb in a.iter_mut().rev() {
        let next = *limb & 1;
        *limb = (*limb >> 1) | (carry << (LIMB_BITS - 1));
        carry = next;
    }
}

/// −m0⁻¹ mod 2^28 for odd m0 (each Newton step doubles the correct low bits).
fn neg_inverse(m0: u32) -> u32 {
    let mut inv = m0; // correct mod 2^3 for odd m0
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(m0.wrapping_mul(inv)));
    }
    inv.wrapping_neg() & MASK
}
