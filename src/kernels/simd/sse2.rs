//! The SSE2 path: 4 f32 lanes in a `__m128`, for x86-64 CPUs without AVX2.
//!
//! SSE2 is part of x86-64 itself, so every x86-64 CPU runs this. It has no
//! FMA, no blend and no masked moves: `mul_add` is unfused (as on the
//! portable path, with the same accuracy), selects are and/andnot/or, and
//! partial vectors go through a small array.

use std::arch::x86_64::*;
use std::ops::{Add, Div, Mul, Sub};

use super::VecF32;

/// Proof that the CPU has SSE2 (every x86-64 CPU does).
#[derive(Debug, Clone, Copy)]
pub struct Sse2 {
    _private: (),
}

impl Sse2 {
    /// The token, if the CPU has SSE2.
    pub fn new() -> Option<Self> {
        is_x86_feature_detected!("sse2").then_some(Sse2 { _private: () })
    }
}

/// Four f32 lanes. Values exist only where an [`Sse2`] token existed, which
/// is what every `SAFETY` comment below relies on.
#[derive(Debug, Clone, Copy)]
pub struct F32x4(__m128);

impl Add for F32x4 {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        // SAFETY: an F32x4 exists, so SSE2 was detected (see the type).
        F32x4(unsafe { _mm_add_ps(self.0, rhs.0) })
    }
}

impl Sub for F32x4 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        // SAFETY: an F32x4 exists, so SSE2 was detected (see the type).
        F32x4(unsafe { _mm_sub_ps(self.0, rhs.0) })
    }
}

impl Mul for F32x4 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        // SAFETY: an F32x4 exists, so SSE2 was detected (see the type).
        F32x4(unsafe { _mm_mul_ps(self.0, rhs.0) })
    }
}

impl Div for F32x4 {
    type Output = Self;
    #[inline(always)]
    fn div(self, rhs: Self) -> Self {
        // SAFETY: an F32x4 exists, so SSE2 was detected (see the type).
        F32x4(unsafe { _mm_div_ps(self.0, rhs.0) })
    }
}

/// `2^k` for integer lanes `k` in [-126, 127], built from the bits.
#[inline(always)]
fn pow2(k: __m128i) -> __m128 {
    // SAFETY: only called from F32x4 methods, so SSE2 was detected.
    unsafe { _mm_castsi128_ps(_mm_slli_epi32::<23>(_mm_add_epi32(k, _mm_set1_epi32(127)))) }
}

impl VecF32 for F32x4 {
    type Token = Sse2;
    /// All-ones lanes for true, as SSE compares produce.
    type Mask = __m128;
    type Acc = (__m128d, __m128d);
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(_token: Sse2, value: f32) -> Self {
        // SAFETY: the token proves SSE2.
        F32x4(unsafe { _mm_set1_ps(value) })
    }

    #[inline(always)]
    fn load(_token: Sse2, src: &[f32]) -> Self {
        let src = &src[..4];
        // SAFETY: the token proves SSE2; `src` holds 4 readable f32
        // (unaligned loads are allowed).
        F32x4(unsafe { _mm_loadu_ps(src.as_ptr()) })
    }

    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        let dst = &mut dst[..4];
        // SAFETY: SSE2 was detected (see the type); `dst` holds 4 writable f32.
        unsafe { _mm_storeu_ps(dst.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn store_stream(self, dst: &mut [f32]) {
        let dst = &mut dst[..4];
        if dst.as_ptr().cast::<u8>().align_offset(16) != 0 {
            return self.store(dst);
        }
        // SAFETY: SSE2 was detected (see the type); `dst` holds 4 writable
        // f32 and is 16-byte aligned (checked above).
        unsafe { _mm_stream_ps(dst.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn load_partial(token: Sse2, src: &[f32], pad: f32) -> Self {
        let mut lanes = [pad; 4];
        let len = src.len().min(4);
        lanes[..len].copy_from_slice(&src[..len]);
        Self::load(token, &lanes)
    }

    #[inline(always)]
    fn store_partial(self, dst: &mut [f32]) {
        let mut lanes = [0f32; 4];
        self.store(&mut lanes);
        let len = dst.len().min(4);
        dst[..len].copy_from_slice(&lanes[..len]);
    }

    #[inline(always)]
    fn mul_add(self, mul: Self, add: Self) -> Self {
        // No FMA in SSE2: multiply, then add (two roundings, as the
        // portable path does).
        self * mul + add
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        // SAFETY: SSE2 was detected (see the type).
        F32x4(unsafe { _mm_sqrt_ps(self.0) })
    }

    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: SSE2 was detected (see the type).
        F32x4(unsafe { _mm_and_ps(self.0, _mm_castsi128_ps(_mm_set1_epi32(0x7fff_ffff))) })
    }

    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        // SAFETY: SSE2 was detected (see the type).
        unsafe {
            let sign_bit = _mm_castsi128_ps(_mm_set1_epi32(i32::MIN));
            F32x4(_mm_or_ps(_mm_andnot_ps(sign_bit, self.0), _mm_and_ps(sign_bit, sign.0)))
        }
    }

    #[inline(always)]
    fn cap(self, hi: Self) -> Self {
        // MINPS returns the second operand when either is NaN.
        // SAFETY: SSE2 was detected (see the type).
        F32x4(unsafe { _mm_min_ps(hi.0, self.0) })
    }

    #[inline(always)]
    fn ldexp(self, k: Self) -> Self {
        // Two steps, each by a normal power of two: the first product is
        // exact, the second rounds once, also into the subnormal range. A
        // NaN `k` converts to i32::MIN and gives some finite scale; such a
        // lane is NaN already (see the kernels).
        // SAFETY: SSE2 was detected (see the type).
        unsafe {
            let k = _mm_cvtps_epi32(k.0);
            let k1 = _mm_srai_epi32::<1>(k);
            let k2 = _mm_sub_epi32(k, k1);
            F32x4(_mm_mul_ps(_mm_mul_ps(self.0, pow2(k1)), pow2(k2)))
        }
    }

    #[inline(always)]
    fn ldexp_normal(self, k: Self) -> Self {
        // Adding k to the exponent field; a NaN `k` converts to i32::MIN,
        // which shifts to 0, so a NaN `self` stays as it is.
        // SAFETY: SSE2 was detected (see the type).
        unsafe {
            let shift = _mm_slli_epi32::<23>(_mm_cvtps_epi32(k.0));
            F32x4(_mm_castsi128_ps(_mm_add_epi32(_mm_castps_si128(self.0), shift)))
        }
    }

    #[inline(always)]
    fn lt(self, other: Self) -> __m128 {
        // SAFETY: SSE2 was detected (see the type).
        unsafe { _mm_cmplt_ps(self.0, other.0) }
    }

    #[inline(always)]
    fn gt(self, other: Self) -> __m128 {
        // SAFETY: SSE2 was detected (see the type).
        unsafe { _mm_cmpgt_ps(self.0, other.0) }
    }

    #[inline(always)]
    fn ge(self, other: Self) -> __m128 {
        // SAFETY: SSE2 was detected (see the type).
        unsafe { _mm_cmpge_ps(self.0, other.0) }
    }

    #[inline(always)]
    fn gt_or_nan(self, other: Self) -> __m128 {
        // SAFETY: SSE2 was detected (see the type).
        unsafe { _mm_cmpnle_ps(self.0, other.0) }
    }

    #[inline(always)]
    fn eq(self, other: Self) -> __m128 {
        // SAFETY: SSE2 was detected (see the type).
        unsafe { _mm_cmpeq_ps(self.0, other.0) }
    }

    #[inline(always)]
    fn any(mask: __m128) -> bool {
        // SAFETY: masks come from F32x4 comparisons, so SSE2 was detected.
        unsafe { _mm_movemask_ps(mask) != 0 }
    }

    #[inline(always)]
    fn all(mask: __m128) -> bool {
        // SAFETY: masks come from F32x4 comparisons, so SSE2 was detected.
        unsafe { _mm_movemask_ps(mask) == 0xF }
    }

    #[inline(always)]
    fn select(mask: __m128, if_true: Self, if_false: Self) -> Self {
        // SAFETY: two F32x4 exist, so SSE2 was detected (see the type).
        F32x4(unsafe { _mm_or_ps(_mm_and_ps(mask, if_true.0), _mm_andnot_ps(mask, if_false.0)) })
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: SSE2 was detected (see the type).
        F32x4(unsafe { _mm_max_ps(self.0, other.0) })
    }

    #[inline(always)]
    fn reduce_max(self) -> f32 {
        // SAFETY: SSE2 was detected (see the type).
        unsafe {
            let half = _mm_max_ps(self.0, _mm_movehl_ps(self.0, self.0));
            _mm_cvtss_f32(_mm_max_ss(half, _mm_shuffle_ps::<1>(half, half)))
        }
    }

    #[inline(always)]
    fn acc_zero(_token: Sse2) -> Self::Acc {
        // SAFETY: the token proves SSE2.
        unsafe { (_mm_setzero_pd(), _mm_setzero_pd()) }
    }

    #[inline(always)]
    fn acc_add(acc: Self::Acc, value: Self) -> Self::Acc {
        // SAFETY: an F32x4 exists, so SSE2 was detected (see the type).
        unsafe {
            let low = _mm_cvtps_pd(value.0);
            let high = _mm_cvtps_pd(_mm_movehl_ps(value.0, value.0));
            (_mm_add_pd(acc.0, low), _mm_add_pd(acc.1, high))
        }
    }

    #[inline(always)]
    fn acc_store(acc: Self::Acc, dst: &mut [f64]) {
        let dst = &mut dst[..4];
        // SAFETY: the accumulator came from acc_zero, so SSE2 was detected;
        // `dst` holds 4 writable f64.
        unsafe {
            _mm_storeu_pd(dst.as_mut_ptr(), acc.0);
            _mm_storeu_pd(dst[2..].as_mut_ptr(), acc.1);
        }
    }
}
