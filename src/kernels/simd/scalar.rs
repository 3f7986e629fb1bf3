//! The portable path: one f32 lane, plain Rust arithmetic.
//!
//! It runs the same algorithms as the vector paths, so its accuracy is the
//! same, with one difference: `mul_add` is an unfused multiply and add,
//! because a baseline x86-64 build has no FMA instruction and `f32::mul_add`
//! would call the (slow) libm `fmaf`. The kernels were checked with both.

use std::ops::{Add, Div, Mul, Sub};

use super::VecF32;

/// Token for the portable path; always available.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scalar;

impl Scalar {
    /// The token (the portable path needs no CPU feature).
    pub fn new() -> Self {
        Scalar
    }
}

/// One f32 lane.
#[derive(Debug, Clone, Copy)]
pub struct F32x1(f32);

impl Add for F32x1 {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        F32x1(self.0 + rhs.0)
    }
}

impl Sub for F32x1 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        F32x1(self.0 - rhs.0)
    }
}

impl Mul for F32x1 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        F32x1(self.0 * rhs.0)
    }
}

impl Div for F32x1 {
    type Output = Self;
    #[inline(always)]
    fn div(self, rhs: Self) -> Self {
        F32x1(self.0 / rhs.0)
    }
}

/// `2^k` for integral `k` in [-126, 127], built from its bits.
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

impl VecF32 for F32x1 {
    type Token = Scalar;
    type Mask = bool;
    type Acc = f64;
    const LANES: usize = 1;

    #[inline(always)]
    fn splat(_token: Scalar, value: f32) -> Self {
        F32x1(value)
    }

    #[inline(always)]
    fn load(_token: Scalar, src: &[f32]) -> Self {
        F32x1(src[0])
    }

    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        dst[0] = self.0;
    }

    #[inline(always)]
    fn load_partial(_token: Scalar, src: &[f32], pad: f32) -> Self {
        F32x1(src.first().copied().unwrap_or(pad))
    }

    #[inline(always)]
    fn store_partial(self, dst: &mut [f32]) {
        if let Some(first) = dst.first_mut() {
            *first = self.0;
        }
    }

    #[inline(always)]
    fn mul_add(self, mul: Self, add: Self) -> Self {
        F32x1(self.0 * mul.0 + add.0)
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        F32x1(self.0.sqrt())
    }

    #[inline(always)]
    fn abs(self) -> Self {
        F32x1(self.0.abs())
    }

    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        F32x1(self.0.copysign(sign.0))
    }

    #[inline(always)]
    fn cap(self, hi: Self) -> Self {
        // A comparison rather than f32::min, which would drop a NaN.
        F32x1(if self.0 > hi.0 { hi.0 } else { self.0 })
    }

    #[inline(always)]
    fn ldexp(self, k: Self) -> Self {
        // Two steps, each by a normal power of two: the first product is
        // exact, the second rounds once, also into the subnormal range.
        // A NaN `k` casts to 0; the lane is NaN anyway (see the kernels).
        let k = k.0 as i32;
        let k1 = k >> 1;
        F32x1(self.0 * pow2(k1) * pow2(k - k1))
    }

    #[inline(always)]
    fn ldexp_normal(self, k: Self) -> Self {
        F32x1(self.0 * pow2(k.0 as i32))
    }

    #[inline(always)]
    fn lt(self, other: Self) -> bool {
        self.0 < other.0
    }

    #[inline(always)]
    fn gt(self, other: Self) -> bool {
        self.0 > other.0
    }

    #[inline(always)]
    fn ge(self, other: Self) -> bool {
        self.0 >= other.0
    }

    #[inline(always)]
    fn gt_or_nan(self, other: Self) -> bool {
        self.0 > other.0 || self.0.is_nan() || other.0.is_nan()
    }

    #[inline(always)]
    fn eq(self, other: Self) -> bool {
        self.0 == other.0
    }

    #[inline(always)]
    fn any(mask: bool) -> bool {
        mask
    }

    #[inline(always)]
    fn all(mask: bool) -> bool {
        mask
    }

    #[inline(always)]
    fn select(mask: bool, if_true: Self, if_false: Self) -> Self {
        if mask { if_true } else { if_false }
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        F32x1(if other.0 > self.0 { other.0 } else { self.0 })
    }

    #[inline(always)]
    fn reduce_max(self) -> f32 {
        self.0
    }

    #[inline(always)]
    fn acc_zero(_token: Scalar) -> f64 {
        0.0
    }

    #[inline(always)]
    fn acc_add(acc: f64, value: Self) -> f64 {
        acc + f64::from(value.0)
    }

    #[inline(always)]
    fn acc_store(acc: f64, dst: &mut [f64]) {
        dst[0] = acc;
    }
}
