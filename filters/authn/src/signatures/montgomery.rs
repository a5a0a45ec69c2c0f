//! Montgomery arithmetic modulo an odd RSA modulus, shaped for wasm32.
//!
//! Wasm has no 64×64→128-bit multiply, so limbs are 28 bits held in `u32`: a limb product is
//! below 2^56 and a whole column of products (operand part and reduction part, each kept in its
//! own `u64`) sums without carry handling inside the inner loop. Multiplication scans products
//! column by column (one pass computes the product and the Montgomery reduction together), and
//! squaring computes each cross product once.
//!
//! A column Σ a[j]·b[i−j] is a dot product of a forward run of `a` with a forward run of `b`
//! stored reversed (n reversed once per key, the other operand once per multiplication), so on
//! wasm32 it runs four limbs at a time with SIMD `u64x2.extmul_*_u32x4`, which V8 turns into
//! `pmuludq`: two 32×32→64-bit products per instruction, where scalar Wasm does one `i64.mul`.

/// Bits per limb (the ECDSA fields use the same limbs).
pub(super) const LIMB_BITS: u32 = 28;
const LIMB_MASK: u32 = (1 << LIMB_BITS) - 1;
const LIMB_MASK_WIDE: u64 = LIMB_MASK as u64;

/// Largest modulus accepted, as the `rsa` crate's default and BoringSSL's usual limit for JWKs.
pub const MAX_MODULUS_BITS: usize = 4096;

/// Limbs of the largest modulus.
pub const MAX_LIMBS: usize = MAX_MODULUS_BITS.div_ceil(LIMB_BITS as usize);

/// Largest modulus in bytes.
pub const MAX_MODULUS_BYTES: usize = MAX_MODULUS_BITS / 8;

// A column adds at most MAX_LIMBS products below 2^56 (+ a carry below 2^38) into one u64.
const _: () = assert!(MAX_LIMBS < 250);

/// An odd modulus with what Montgomery multiplication needs, computed once per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modulus {
    /// Little-endian 28-bit limbs; the length is the limb count k (R = 2^(28k)).
    n: Box<[u32]>,
    /// The limbs of n in reverse order (most significant first), for column dot products.
    n_reversed: Box<[u32]>,
    /// −n⁻¹ mod 2^28.
    n0_inv: u32,
    /// R² mod n reversed, to bring a value into Montgomery form with one multiplication.
    r_squared_reversed: Box<[u32]>,
    bits: usize,
}

/// Working buffers of one exponentiation, each sliced to the modulus' limb count.
struct Scratch {
    reversed: [u32; MAX_LIMBS],
    m: [u32; MAX_LIMBS],
}

impl Modulus {
    /// `n` big-endian (leading zeros allowed). None if even, zero, or over `MAX_MODULUS_BITS`.
    pub fn from_be_bytes(n: &[u8]) -> Option<Self> {
        let n = strip_leading_zeros(n);
        let bits = bit_length(n);
        if bits == 0 || bits > MAX_MODULUS_BITS || n.last().is_none_or(|low| low & 1 == 0) {
            return None;
        }
        let mut limbs = [0u32; MAX_LIMBS];
        let k = bits.div_ceil(LIMB_BITS as usize);
        let n_limbs = limbs.get_mut(..k)?;
        if !limbs_from_be_bytes(n, n_limbs) {
            return None;
        }
        let n_limbs: Box<[u32]> = n_limbs.into();
        let n0_inv = neg_inverse_mod_limb(*n_limbs.first()?);
        let r_squared = r_squared(&n_limbs)?;
        Some(Self {
            n_reversed: n_limbs.iter().rev().copied().collect(),
            n: n_limbs,
            n0_inv,
            r_squared_reversed: r_squared.iter().rev().copied().collect(),
            bits,
        })
    }

    /// Significant bits of the modulus.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Length of the modulus in bytes.
    pub fn byte_len(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// `base^exponent mod n` for an odd `exponent` ≥ 3, writing `byte_len()` big-endian bytes
    /// into `out`. `base` is big-endian; returns false if `base ≥ n` or any length is wrong.
    /// For e = 65537 this is 16 squarings and 2 multiplications (one into Montgomery form, one
    /// by the plain base that also leaves it), the minimum, so it needs no separate fast path.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    pub fn pow_odd(&self, base: &[u8], exponent: u64, out: &mut [u8]) -> bool {
        if exponent < 3 || exponent & 1 == 0 || out.len() != self.byte_len() {
            return false;
        }
        let k = self.n.len();
        let mut base_buf = [0u32; MAX_LIMBS];
        let mut base_reversed_buf = [0u32; MAX_LIMBS];
        let mut base_mont_reversed_buf = [0u32; MAX_LIMBS];
        let mut acc_buf = [0u32; MAX_LIMBS];
        let mut tmp_buf = [0u32; MAX_LIMBS];
        let mut scratch = Scratch {
            reversed: [0; MAX_LIMBS],
            m: [0; MAX_LIMBS],
        };
        let (Some(base_limbs), Some(base_reversed), Some(base_mont_reversed), Some(acc), Some(tmp)) = (
            base_buf.get_mut(..k),
            base_reversed_buf.get_mut(..k),
            base_mont_reversed_buf.get_mut(..k),
            acc_buf.get_mut(..k),
            tmp_buf.get_mut(..k),
        ) else {
            return false;
        };
        if !limbs_from_be_bytes(base, base_limbs) || !less_than(base_limbs, &self.n) {
            return false;
        }
        reverse_into(base_limbs, base_reversed);
        self.mul(acc, base_limbs, &self.r_squared_reversed, &mut scratch);
        reverse_into(acc, base_mont_reversed);
        // Left to right over the bits below the top one; the lowest bit is 1 (odd exponent) and
        // is handled last with the base outside Montgomery form, which leaves Montgomery form.
        let top = 63 - exponent.leading_zeros();
        for bit in (1..top).rev() {
            self.square(tmp, acc, &mut scratch);
            if (exponent >> bit) & 1 == 1 {
                self.mul(acc, tmp, base_mont_reversed, &mut scratch);
            } else {
                acc.copy_from_slice(tmp);
            }
        }
        self.square(tmp, acc, &mut scratch);
        self.mul(acc, tmp, base_reversed, &mut scratch);
        limbs_to_be_bytes(acc, out);
        true
    }

    /// `out = a·b/R mod n` for `a, b < n`, given b's limbs reversed. All slices have the modulus'
    /// limb count.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn mul(&self, out: &mut [u32], a: &[u32], b_reversed: &[u32], scratch: &mut Scratch) {
        let k = self.n.len();
        let m = &mut scratch.m;
        let mut carry: u64 = 0;
        // Low columns: each one fixes the next reduction limb m[i] so the column becomes 0 mod 2^28.
        // Column i pairs a[j] with b[i−j] = b_reversed[k−1−i+j].
        for i in 0..k {
            let ab = carry + dot(head(a, i + 1), range(b_reversed, k - 1 - i, k));
            let mn = dot(head(m, i), range(&self.n_reversed, k - 1 - i, k - 1));
            carry = self.reduce_column(ab, mn, m, i);
        }
        // High columns are the result.
        for (i, limb) in (k..2 * k - 1).zip(out.iter_mut()) {
            let lo = i + 1 - k;
            let ab = carry + dot(range(a, lo, k), range(b_reversed, 0, k - lo));
            let mn = dot(range(m, lo, k), range(&self.n_reversed, 0, k - lo));
            carry = emit_column(ab, mn, limb);
        }
        self.finish(out, carry);
    }

    /// `out = a²/R mod n` for `a < n`.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    fn square(&self, out: &mut [u32], a: &[u32], scratch: &mut Scratch) {
        let k = self.n.len();
        let Some(a_reversed) = scratch.reversed.get_mut(..k) else {
            return;
        };
        reverse_into(a, a_reversed);
        let a_reversed = &*a_reversed;
        let m = &mut scratch.m;
        let mut carry: u64 = 0;
        for i in 0..k {
            let ab = carry + square_column(a, a_reversed, 0, i);
            let mn = dot(head(m, i), range(&self.n_reversed, k - 1 - i, k - 1));
            carry = self.reduce_column(ab, mn, m, i);
        }
        for (i, limb) in (k..2 * k - 1).zip(out.iter_mut()) {
            let lo = i + 1 - k;
            let ab = carry + square_column(a, a_reversed, lo, i);
            let mn = dot(range(m, lo, k), range(&self.n_reversed, 0, k - lo));
            carry = emit_column(ab, mn, limb);
        }
        self.finish(out, carry);
    }

    /// Chooses m[i] so that column i vanishes mod 2^28; returns the carry into column i + 1.
    #[inline(always)]
    fn reduce_column(&self, ab: u64, mn: u64, m: &mut [u32], i: usize) -> u64 {
        let low = (ab as u32 & LIMB_MASK).wrapping_add(mn as u32 & LIMB_MASK);
        let mi = low.wrapping_mul(self.n0_inv) & LIMB_MASK;
        if let Some(slot) = m.get_mut(i) {
            *slot = mi;
        }
        let n0 = self.n.first().copied().unwrap_or(0);
        let mn = mn + u64::from(mi) * u64::from(n0);
        (ab >> LIMB_BITS)
            + (mn >> LIMB_BITS)
            + (((ab & LIMB_MASK_WIDE) + (mn & LIMB_MASK_WIDE)) >> LIMB_BITS)
    }

    /// Stores the top limb from the final carry and subtracts n once if the result is ≥ n
    /// (a Montgomery product of values below n is below 2n).
    fn finish(&self, out: &mut [u32], carry: u64) {
        if let Some(top) = out.last_mut() {
            *top = carry as u32 & LIMB_MASK;
        }
        let overflow = carry >> LIMB_BITS != 0;
        if overflow || !less_than(out, &self.n) {
            subtract_in_place(out, &self.n);
        }
    }
}

/// Writes the low 28 bits of column `ab + mn` into `limb`; returns the carry.
#[inline(always)]
fn emit_column(ab: u64, mn: u64, limb: &mut u32) -> u64 {
    let low = (ab & LIMB_MASK_WIDE) + (mn & LIMB_MASK_WIDE);
    *limb = low as u32 & LIMB_MASK;
    (ab >> LIMB_BITS) + (mn >> LIMB_BITS) + (low >> LIMB_BITS)
}

/// Sum of a[j]·a[i−j] over lo ≤ j ≤ i−j ≤ k−1 (the column i of a², cross products doubled);
/// `a_reversed[t]` is a[k−1−t].
#[inline(always)]
fn square_column(a: &[u32], a_reversed: &[u32], lo: usize, i: usize) -> u64 {
    let k = a.len();
    let half = i.div_ceil(2);
    // Partners i−j for j in lo..half sit at a_reversed[k−1−i+j].
    let start = (k + lo).wrapping_sub(i + 1);
    let cross = dot(
        range(a, lo, half),
        range(a_reversed, start, start.wrapping_add(half - lo)),
    );
    let diagonal = if i.is_multiple_of(2) {
        a.get(i / 2).map_or(0, |&x| u64::from(x) * u64::from(x))
    } else {
        0
    };
    2 * cross + diagonal
}

/// `Σ x[t]·y[t]` over the shorter length (callers pass equal lengths).
#[inline(always)]
fn dot(x: &[u32], y: &[u32]) -> u64 {
    let (x_blocks, x_rest) = x.as_chunks::<4>();
    let (y_blocks, y_rest) = y.as_chunks::<4>();
    let rest = x_rest
        .iter()
        .zip(y_rest)
        .fold(0u64, |sum, (&p, &q)| sum + u64::from(p) * u64::from(q));
    dot_blocks(x_blocks, y_blocks) + rest
}

/// Four products per step as two SIMD lanes of u64 sums (V8: `pmuludq`).
#[cfg(target_arch = "wasm32")]
#[inline]
#[target_feature(enable = "simd128")]
fn dot_blocks(x: &[[u32; 4]], y: &[[u32; 4]]) -> u64 {
    use core::arch::wasm32::{
        u32x4, u32x4_splat, u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4,
        u64x2_extract_lane, u64x2_splat, v128_and,
    };
    let mask = u32x4_splat(LIMB_MASK);
    let mut sums = u64x2_splat(0);
    for (&[x0, x1, x2, x3], &[y0, y1, y2, y3]) in x.iter().zip(y) {
        // Masking (a no-op on limbs) keeps LLVM from folding the widening into the loads, which
        // gives i64x2.mul, a 64×64-bit multiply V8 emulates with several instructions.
        let (p, q) = (
            v128_and(u32x4(x0, x1, x2, x3), mask),
            v128_and(u32x4(y0, y1, y2, y3), mask),
        );
        sums = u64x2_add(sums, u64x2_extmul_low_u32x4(p, q));
        sums = u64x2_add(sums, u64x2_extmul_high_u32x4(p, q));
    }
    u64x2_extract_lane::<0>(sums) + u64x2_extract_lane::<1>(sums)
}

/// The same sums, for native builds (tests, the CLI).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn dot_blocks(x: &[[u32; 4]], y: &[[u32; 4]]) -> u64 {
    x.as_flattened()
        .iter()
        .zip(y.as_flattened())
        .fold(0u64, |sum, (&p, &q)| sum + u64::from(p) * u64::from(q))
}

#[inline(always)]
fn head(s: &[u32], end: usize) -> &[u32] {
    s.get(..end).unwrap_or(&[])
}

#[inline(always)]
fn range(s: &[u32], start: usize, end: usize) -> &[u32] {
    s.get(start..end).unwrap_or(&[])
}

/// `reversed[t] = limbs[len−1−t]`.
fn reverse_into(limbs: &[u32], reversed: &mut [u32]) {
    for (slot, &limb) in reversed.iter_mut().zip(limbs.iter().rev()) {
        *slot = limb;
    }
}

/// a < b for equal-length little-endian limb slices.
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// a −= b modulo 2^(28·len), limbs stay below 2^28.
fn subtract_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = x.wrapping_sub(y).wrapping_sub(borrow);
        *x = d & LIMB_MASK;
        borrow = d >> 31;
    }
}

/// −n0⁻¹ mod 2^28 for odd n0 (Newton's iteration doubles the correct low bits each step).
fn neg_inverse_mod_limb(n0: u32) -> u32 {
    let mut inv = n0; // correct mod 2^3 for odd n0
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    inv.wrapping_neg() & LIMB_MASK
}

/// R² mod n by doubling 1 modulo n 2·28·k times: once per key, and plainly correct.
fn r_squared(n: &[u32]) -> Option<Box<[u32]>> {
    let mut r: Box<[u32]> = n.iter().map(|_| 0).collect();
    *r.first_mut()? = 1;
    for _ in 0..2 * LIMB_BITS as usize * n.len() {
        let mut carry = 0u32;
        for limb in r.iter_mut() {
            let doubled = (*limb << 1) | carry;
            *limb = doubled & LIMB_MASK;
            carry = doubled >> LIMB_BITS;
        }
        if carry != 0 || !less_than(&r, n) {
            subtract_in_place(&mut r, n);
        }
    }
    Some(r)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.get(zeros..).unwrap_or(&[])
}

/// Bits of a big-endian number without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&top) => bytes.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// Big-endian bytes into little-endian 28-bit limbs filling `out`; false if the value does not fit.
pub(super) fn limbs_from_be_bytes(bytes: &[u8], out: &mut [u32]) -> bool {
    let mut limbs = out.iter_mut();
    let mut acc: u64 = 0;
    let mut acc_bits = 0;
    let mut fits = true;
    for &byte in bytes.iter().rev() {
        acc |= u64::from(byte) << acc_bits;
        acc_bits += 8;
        if acc_bits >= LIMB_BITS {
            match limbs.next() {
                Some(limb) => *limb = acc as u32 & LIMB_MASK,
                None => fits &= acc & LIMB_MASK_WIDE == 0,
            }
            acc >>= LIMB_BITS;
            acc_bits -= LIMB_BITS;
        }
    }
    match limbs.next() {
        Some(limb) => *limb = acc as u32,
        None => fits &= acc == 0,
    }
    limbs.for_each(|limb| *limb = 0);
    fits
}

/// Little-endian 28-bit limbs into exactly `out.len()` big-endian bytes (high bits dropped).
pub(super) fn limbs_to_be_bytes(limbs: &[u32], out: &mut [u8]) {
    let mut source = limbs.iter();
    let mut acc: u64 = 0;
    let mut acc_bits = 0;
    for byte in out.iter_mut().rev() {
        if acc_bits < 8 {
            acc |= u64::from(source.next().copied().unwrap_or(0)) << acc_bits;
            acc_bits += LIMB_BITS;
        }
        *byte = acc as u8;
        acc >>= 8;
        acc_bits -= 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limb_conversion_round_trips_bytes() {
        let bytes: Vec<u8> = (1..=200u8).collect();
        let mut limbs = [0u32; MAX_LIMBS];
        assert!(limbs_from_be_bytes(&bytes, &mut limbs[..58]));
        let mut back = vec![0u8; 200];
        limbs_to_be_bytes(&limbs[..58], &mut back);
        assert_eq!(back, bytes);
        assert!(limbs_from_be_bytes(&bytes, &mut limbs[..57]));
        assert!(!limbs_from_be_bytes(&bytes, &mut limbs[..56]));
    }

    #[test]
    fn negated_inverse_is_correct_for_odd_limbs() {
        for n0 in [1u32, 3, 0x0fff_ffff, 0x0123_4567, 0x0abc_def1] {
            let inv = neg_inverse_mod_limb(n0);
            assert_eq!(
                n0.wrapping_mul(inv).wrapping_add(1) & LIMB_MASK,
                0,
                "{n0:#x}"
            );
        }
    }

    #[test]
    fn small_modulus_power_matches_plain_arithmetic() {
        // 2^61 − 1 (a prime) fits three limbs: checks carries across limbs with known answers.
        let modulus = Modulus::from_be_bytes(&0x1fff_ffff_ffff_ffffu64.to_be_bytes()).unwrap();
        let p = 0x1fff_ffff_ffff_ffffu128;
        for (base, exponent) in [
            (2u64, 3u64),
            (12345, 65537),
            (p as u64 - 1, 5),
            (0, 3),
            (1, 17),
        ] {
            let mut out = [0u8; 8];
            assert!(modulus.pow_odd(&base.to_be_bytes(), exponent, &mut out));
            let mut expected = 1u128;
            for _ in 0..exponent {
                expected = expected * u128::from(base) % p;
            }
            assert_eq!(
                u64::from_be_bytes(out),
                expected as u64,
                "{base}^{exponent}"
            );
        }
    }
}
