//! The AVX-512F path: 16 f32 lanes in a `__m512`.
//!
//! Only AVX-512F instructions are used (no DQ/BW/VL), so any AVX-512 CPU
//! runs it; bitwise float operations therefore go through the integer
//! forms.

use std::arch::x86_64::*;
use std::ops::{Add, Div, Mul, Sub};

use super::VecF32;

/// Proof that the CPU has AVX-512F.
#[derive(Debug, Clone, Copy)]
pub struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// The token, if the CPU has AVX-512F.
    pub fn new() -> Option<Self> {
        is_x86_feature_detected!("avx512f").then_some(Avx512 { _private: () })
    }
}

/// Sixteen f32 lanes. Values exist only where an [`Avx512`] token existed,
/// which is what every `SAFETY` comment below relies on.
#[derive(Debug, Clone, Copy)]
pub struct F32x16(__m512);

impl Add for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        // SAFETY: an F32x16 exists, so AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_add_ps(self.0, rhs.0) })
    }
}

impl Sub for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        // SAFETY: an F32x16 exists, so AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_sub_ps(self.0, rhs.0) })
    }
}

impl Mul for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        // SAFETY: an F32x16 exists, so AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_mul_ps(self.0, rhs.0) })
    }
}

impl Div for F32x16 {
    type Output = Self;
    #[inline(always)]
    fn div(self, rhs: Self) -> Self {
        // SAFETY: an F32x16 exists, so AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_div_ps(self.0, rhs.0) })
    }
}

/// Bits set for the first `len` (at most 16) lanes.
#[inline(always)]
fn lane_mask(len: usize) -> __mmask16 {
    ((1u32 << len.min(16)) - 1) as __mmask16
}

impl VecF32 for F32x16 {
    type Token = Avx512;
    type Mask = __mmask16;
    type Acc = (__m512d, __m512d);
    const LANES: usize = 16;

    #[inline(always)]
    fn splat(_token: Avx512, value: f32) -> Self {
        // SAFETY: the token proves AVX-512F.
        F32x16(unsafe { _mm512_set1_ps(value) })
    }

    #[inline(always)]
    fn load(_token: Avx512, src: &[f32]) -> Self {
        let src = &src[..16];
        // SAFETY: the token proves AVX-512F; `src` holds 16 readable f32
        // (unaligned loads are allowed).
        F32x16(unsafe { _mm512_loadu_ps(src.as_ptr()) })
    }

    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        let dst = &mut dst[..16];
        // SAFETY: AVX-512F was detected (see the type); `dst` holds 16
        // writable f32.
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn load_partial(token: Avx512, src: &[f32], pad: f32) -> Self {
        let mask = lane_mask(src.len());
        // SAFETY: the token proves AVX-512F; a masked load reads only the
        // first `src.len()` (< 16) lanes, which `src` holds, and never
        // faults on the others.
        F32x16(unsafe { _mm512_mask_loadu_ps(Self::splat(token, pad).0, mask, src.as_ptr()) })
    }

    #[inline(always)]
    fn store_stream(self, dst: &mut [f32]) {
        let dst = &mut dst[..16];
        if dst.as_ptr().cast::<u8>().align_offset(64) != 0 {
            return self.store(dst);
        }
        // SAFETY: AVX-512F was detected (see the type); `dst` holds 16
        // writable f32 and is 64-byte aligned (checked above).
        unsafe { _mm512_stream_ps(dst.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn store_partial(self, dst: &mut [f32]) {
        let mask = lane_mask(dst.len());
        // SAFETY: AVX-512F was detected (see the type); a masked store
        // writes only the first `dst.len()` (< 16) lanes, which `dst` holds.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), mask, self.0) }
    }

    const FUSED: bool = true;

    #[inline(always)]
    fn mul_add(self, mul: Self, add: Self) -> Self {
        // SAFETY: AVX-512F (which includes FMA on zmm) was detected.
        F32x16(unsafe { _mm512_fmadd_ps(self.0, mul.0, add.0) })
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        // SAFETY: AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_sqrt_ps(self.0) })
    }

    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_abs_ps(self.0) })
    }

    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        // SAFETY: AVX-512F was detected (see the type).
        unsafe {
            // Bitwise select: imm 0xD8 takes bits of the second operand
            // where the third (the sign mask) is set, else of the first.
            let sign_bit = _mm512_set1_epi32(i32::MIN);
            let bits =
                _mm512_ternarylogic_epi32::<0xD8>(_mm512_castps_si512(self.0), _mm512_castps_si512(sign.0), sign_bit);
            F32x16(_mm512_castsi512_ps(bits))
        }
    }

    #[inline(always)]
    fn cap(self, hi: Self) -> Self {
        // VMINPS returns the second operand when either is NaN.
        // SAFETY: AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_min_ps(hi.0, self.0) })
    }

    #[inline(always)]
    fn ldexp(self, k: Self) -> Self {
        // VSCALEFPS rounds once and handles overflow, subnormal results and
        // NaN on its own.
        // SAFETY: AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_scalef_ps(self.0, k.0) })
    }

    #[inline(always)]
    fn ldexp_normal(self, k: Self) -> Self {
        self.ldexp(k)
    }

    #[inline(always)]
    fn lt(self, other: Self) -> __mmask16 {
        // SAFETY: AVX-512F was detected (see the type).
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn gt(self, other: Self) -> __mmask16 {
        // SAFETY: AVX-512F was detected (see the type).
        unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn ge(self, other: Self) -> __mmask16 {
        // SAFETY: AVX-512F was detected (see the type).
        unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn gt_or_nan(self, other: Self) -> __mmask16 {
        // SAFETY: AVX-512F was detected (see the type).
        unsafe { _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn eq(self, other: Self) -> __mmask16 {
        // SAFETY: AVX-512F was detected (see the type).
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn any(mask: __mmask16) -> bool {
        mask != 0
    }

    #[inline(always)]
    fn all(mask: __mmask16) -> bool {
        mask == u16::MAX
    }

    #[inline(always)]
    fn select(mask: __mmask16, if_true: Self, if_false: Self) -> Self {
        // SAFETY: two F32x16 exist, so AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_mask_blend_ps(mask, if_false.0, if_true.0) })
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: AVX-512F was detected (see the type).
        F32x16(unsafe { _mm512_max_ps(self.0, other.0) })
    }

    #[inline(always)]
    fn reduce_max(self) -> f32 {
        // SAFETY: AVX-512F was detected (see the type).
        unsafe { _mm512_reduce_max_ps(self.0) }
    }

    #[inline(always)]
    fn acc_zero(_token: Avx512) -> Self::Acc {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_setzero_pd(), _mm512_setzero_pd()) }
    }

    #[inline(always)]
    fn acc_add(acc: Self::Acc, value: Self) -> Self::Acc {
        // SAFETY: an F32x16 exists, so AVX-512F was detected (see the type).
        unsafe {
            let low = _mm512_cvtps_pd(_mm512_castps512_ps256(value.0));
            let high_half = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(value.0));
            let high = _mm512_cvtps_pd(_mm256_castpd_ps(high_half));
            (_mm512_add_pd(acc.0, low), _mm512_add_pd(acc.1, high))
        }
    }

    #[inline(always)]
    fn acc_store(acc: Self::Acc, dst: &mut [f64]) {
        let dst = &mut dst[..16];
        // SAFETY: the accumulator came from acc_zero, so AVX-512F was
        // detected; `dst` holds 16 writable f64.
        unsafe {
            _mm512_storeu_pd(dst.as_mut_ptr(), acc.0);
            _mm512_storeu_pd(dst[8..].as_mut_ptr(), acc.1);
        }
    }
}
