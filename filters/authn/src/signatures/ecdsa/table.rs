//! Precomputed multiples of a fixed point for signed fixed-window scalar multiplication without
//! doublings: entry (i, j) of the table is (j + 1)·2^(w·i)·P, so k·P is one mixed addition per
//! nonzero w-bit digit of k. Digits are signed (−2^(w−1)..=2^(w−1)), which halves the table, as
//! negating an affine point is free. Built once per curve for the generator and once per key.

use super::field::{bits_at, Limbs};
use super::point::{Affine, Jacobian, WeierstrassCurve};

pub struct MultiplesTable<const L: usize> {
    window: u32,
    /// `rows × 2^(window − 1)` points, row i holding the multiples of 2^(window·i)·P.
    points: Box<[Affine<L>]>,
}

impl<const L: usize> MultiplesTable<L> {
    /// The table of `base` for scalars below 2^`scalar_bits`. None only if `base` has a small
    /// order, which no point of a prime-order curve has.
    pub fn new(
        curve: &WeierstrassCurve<L>,
        base: &Affine<L>,
        scalar_bits: usize,
        window: u32,
    ) -> Option<Self> {
        let per_row = 1usize << (window - 1);
        // One more bit than the scalar: the top digit can then absorb the last carry.
        let rows = (scalar_bits + 1).div_ceil(window as usize);
        let mut multiples = Vec::with_capacity(rows * per_row);
        let mut row_base = *base;
        for _ in 0..rows {
            let mut multiple = curve.lift(&row_base);
            multiples.push(multiple);
            for _ in 1..per_row {
                multiple = curve.add_affine(&multiple, &row_base);
                multiples.push(multiple);
            }
            // 2^w·B = 2·(2^(w−1)·B), the last multiple of this row.
            let next = curve.double(&multiple);
            row_base = curve.to_affine_batch(&[next])?.into_iter().next()?;
        }
        let points = curve.to_affine_batch(&multiples)?.into_boxed_slice();
        Some(Self { window, points })
    }

    /// acc + k·P, for a plain scalar k below 2^`scalar_bits`.
    pub fn add_multiple(
        &self,
        curve: &WeierstrassCurve<L>,
        mut acc: Jacobian<L>,
        k: &Limbs<L>,
    ) -> Jacobian<L> {
        let w = self.window;
        let per_row = 1u32 << (w - 1);
        let mut carry = 0;
        for (i, row) in self.points.chunks_exact(per_row as usize).enumerate() {
            let value = bits_at(k, i * w as usize, w) + carry;
            let (magnitude, negative) = if value > per_row {
                carry = 1;
                ((1 << w) - value, true)
            } else {
                carry = 0;
                (value, false)
            };
            let Some(point) = (magnitude as usize).checked_sub(1).and_then(|j| row.get(j)) else {
                continue;
            };
            acc = if negative {
                curve.sub_affine(&acc, point)
            } else {
                curve.add_affine(&acc, point)
            };
        }
        acc
    }

    /// Bytes the table holds (for the docs' memory figures and tests).
    pub fn byte_size(&self) -> usize {
        std::mem::size_of_val(&*self.points)
    }
}
