//! Points of a short Weierstrass curve y² = x³ − 3x + b over F_p (the NIST curves), in Jacobian
//! coordinates (x = X/Z², y = Y/Z³) so that additions need no field inversion. Formulas are the
//! Explicit-Formulas Database's `dbl-2001-b` (a = −3) and `madd-2007-bl` (Z2 = 1), with the
//! exceptional cases of the latter (equal or opposite points, infinity) handled by branching:
//! verification works on public values only.

use super::field::{is_zero, Limbs, Modulus};

/// A point in affine coordinates, Montgomery form; never the point at infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Affine<const L: usize> {
    pub x: Limbs<L>,
    pub y: Limbs<L>,
}

/// A point in Jacobian coordinates, Montgomery form; Z = 0 is the point at infinity.
#[derive(Clone, Copy, Debug)]
pub struct Jacobian<const L: usize> {
    pub x: Limbs<L>,
    pub y: Limbs<L>,
    pub z: Limbs<L>,
}

impl<const L: usize> Jacobian<L> {
    pub const INFINITY: Self = Self {
        x: [0; L],
        y: [0; L],
        z: [0; L],
    };

    pub fn is_infinity(&self) -> bool {
        is_zero(&self.z)
    }
}

/// A curve y² = x³ − 3x + b over F_p.
#[derive(Clone, Debug)]
pub struct WeierstrassCurve<const L: usize> {
    pub field: Modulus<L>,
    /// b in Montgomery form.
    pub b: Limbs<L>,
}

impl<const L: usize> WeierstrassCurve<L> {
    /// Whether (x, y), in Montgomery form, satisfies the curve equation.
    pub fn contains(&self, point: &Affine<L>) -> bool {
        let f = &self.field;
        let x2 = f.square(&point.x);
        let x3 = f.mul(&x2, &point.x);
        let three_x = f.add(&f.add(&point.x, &point.x), &point.x);
        let rhs = f.add(&f.sub(&x3, &three_x), &self.b);
        f.square(&point.y) == rhs
    }

    pub fn lift(&self, point: &Affine<L>) -> Jacobian<L> {
        Jacobian {
            x: point.x,
            y: point.y,
            z: self.field.one(),
        }
    }

    /// 2·P (`dbl-2001-b`: 3M + 5S). Infinity doubles to infinity (Z3 comes out 0).
    pub fn double(&self, p: &Jacobian<L>) -> Jacobian<L> {
        let f = &self.field;
        let delta = f.square(&p.z);
        let gamma = f.square(&p.y);
        let beta = f.mul(&p.x, &gamma);
        let t = f.mul(&f.sub(&p.x, &delta), &f.add(&p.x, &delta));
        let alpha = f.add(&f.add(&t, &t), &t);
        let beta4 = double_twice(f, &beta);
        let x3 = f.sub(&f.square(&alpha), &f.add(&beta4, &beta4));
        let y_plus_z = f.add(&p.y, &p.z);
        let z3 = f.sub(&f.sub(&f.square(&y_plus_z), &gamma), &delta);
        let gamma2 = f.square(&gamma);
        let gamma2_8 = double_twice(f, &f.add(&gamma2, &gamma2));
        let y3 = f.sub(&f.mul(&alpha, &f.sub(&beta4, &x3)), &gamma2_8);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// P + Q for an affine Q (`madd-2007-bl`: 7M + 4S).
    pub fn add_affine(&self, p: &Jacobian<L>, q: &Affine<L>) -> Jacobian<L> {
        if p.is_infinity() {
            return self.lift(q);
        }
        let f = &self.field;
        let z1z1 = f.square(&p.z);
        let u2 = f.mul(&q.x, &z1z1);
        let s2 = f.mul(&q.y, &f.mul(&p.z, &z1z1));
        let h = f.sub(&u2, &p.x);
        let s2_minus_y1 = f.sub(&s2, &p.y);
        if is_zero(&h) {
            // Same x: P = Q (the formula's r and H both vanish) or P = −Q.
            return if is_zero(&s2_minus_y1) {
                self.double(p)
            } else {
                Jacobian::INFINITY
            };
        }
        let hh = f.square(&h);
        let i = double_twice(f, &hh);
        let j = f.mul(&h, &i);
        let r = f.add(&s2_minus_y1, &s2_minus_y1);
        let v = f.mul(&p.x, &i);
        let x3 = f.sub(&f.sub(&f.square(&r), &j), &f.add(&v, &v));
        let y1j = f.mul(&p.y, &j);
        let y3 = f.sub(&f.mul(&r, &f.sub(&v, &x3)), &f.add(&y1j, &y1j));
        let z1_plus_h = f.add(&p.z, &h);
        let z3 = f.sub(&f.sub(&f.square(&z1_plus_h), &z1z1), &hh);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// P − Q for an affine Q.
    pub fn sub_affine(&self, p: &Jacobian<L>, q: &Affine<L>) -> Jacobian<L> {
        let negated = Affine {
            x: q.x,
            y: self.field.sub(&[0; L], &q.y),
        };
        self.add_affine(p, &negated)
    }

    /// Affine forms of finite points with one field inversion for all of them (Montgomery's
    /// trick: invert the product of the Z's, then peel off one Z at a time). None if any point
    /// is at infinity.
    pub fn to_affine_batch(&self, points: &[Jacobian<L>]) -> Option<Vec<Affine<L>>> {
        let f = &self.field;
        let mut prefix = Vec::with_capacity(points.len());
        let mut product = f.one();
        for point in points {
            if point.is_infinity() {
                return None;
            }
            prefix.push(product);
            product = f.mul(&product, &point.z);
        }
        let mut inverse = f.invert(&product)?;
        let mut affine = vec![
            Affine {
                x: [0; L],
                y: [0; L]
            };
            points.len()
        ];
        for ((point, before), out) in points.iter().zip(&prefix).zip(&mut affine).rev() {
            // `inverse` is 1/(Z_0·…·Z_k) here; times the product before Z_k gives 1/Z_k.
            let z_inv = f.mul(&inverse, before);
            inverse = f.mul(&inverse, &point.z);
            let z_inv2 = f.square(&z_inv);
            out.x = f.mul(&point.x, &z_inv2);
            out.y = f.mul(&point.y, &f.mul(&z_inv2, &z_inv));
        }
        Some(affine)
    }
}

/// 4·a.
fn double_twice<const L: usize>(f: &Modulus<L>, a: &Limbs<L>) -> Limbs<L> {
    let twice = f.add(a, a);
    f.add(&twice, &twice)
}
