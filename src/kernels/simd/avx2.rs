//! The AVX2+FMA path: 8 f32 lanes in a `__m256`.

use std::arch::x86_64::*;
use std::ops::{Add, Div, Mul, Sub};

use super::VecF32;

/// Proof that the CPU has AVX2 and FMA.
#[derive(Debug, Clone, Copy)]
pub struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// The token, if the CPU has AVX2 and FMA.
    pub fn new() -> Option<Self> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2 { _private: () })
    }
}

/// Eight f32 lanes. Values exist only where an [`Avx2`] token existed, which
/// is what every `SAFETY` comment below relies on.
#[derive(Debug, Clone, Copy)]
pub struct F32x8(__m256);

impl Add for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        // SAFETY: an F32x8 exists, so AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_add_ps(self.0, rhs.0) })
    }
}

impl Sub for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        // SAFETY: an F32x8 exists, so AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_sub_ps(self.0, rhs.0) })
    }
}

impl Mul for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        // SAFETY: an F32x8 exists, so AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_mul_ps(self.0, rhs.0) })
    }
}

impl Div for F32x8 {
    type Output = Self;
    #[inline(always)]
    fn div(self, rhs: Self) -> Self {
        // SAFETY: an F32x8 exists, so AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_div_ps(self.0, rhs.0) })
    }
}

/// `2^k` for integer lanes `k` in [-126, 127], built from the bits.
#[inline(always)]
fn pow2(k: __m256i) -> __m256 {
    // SAFETY: only called from F32x8 methods, so AVX2 was detected.
    unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(127)))) }
}

/// All-ones in the first `len` (at most 8) lanes.
#[inline(always)]
fn lane_mask(len: usize) -> __m256i {
    let len = len.min(8) as i32;
    // SAFETY: only called from F32x8 methods, so AVX2 was detected.
    unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(len), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
}

impl VecF32 for F32x8 {
    type Token = Avx2;
    /// All-ones lanes for true, as AVX compares produce.
    type Mask = __m256;
    type Acc = (__m256d, __m256d);
    const LANES: usize = 8;

    #[inline(always)]
    fn splat(_token: Avx2, value: f32) -> Self {
        // SAFETY: the token proves AVX2.
        F32x8(unsafe { _mm256_set1_ps(value) })
    }

    #[inline(always)]
    fn load(_token: Avx2, src: &[f32]) -> Self {
        let src = &src[..8];
        // SAFETY: the token proves AVX2; `src` holds 8 readable f32
        // (unaligned loads are allowed).
        F32x8(unsafe { _mm256_loadu_ps(src.as_ptr()) })
    }

    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        let dst = &mut dst[..8];
        // SAFETY: AVX2 was detected (see the type); `dst` holds 8 writable f32.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn store_stream(self, dst: &mut [f32]) {
        let dst = &mut dst[..8];
        if dst.as_ptr().cast::<u8>().align_offset(32) != 0 {
            return self.store(dst);
        }
        // SAFETY: AVX2 was detected (see the type); `dst` holds 8 writable
        // f32 and is 32-byte aligned (checked above).
        unsafe { _mm256_stream_ps(dst.as_mut_ptr(), self.0) }
    }

    #[inline(always)]
    fn load_partial(token: Avx2, src: &[f32], pad: f32) -> Self {
        let mask = lane_mask(src.len());
        // SAFETY: the token proves AVX2; VMASKMOVPS reads only the lanes
        // whose mask is set, the first `src.len()` (< 8), which `src` holds,
        // and never faults on the others.
        unsafe {
            let loaded = _mm256_maskload_ps(src.as_ptr(), mask);
            F32x8(_mm256_blendv_ps(Self::splat(token, pad).0, loaded, _mm256_castsi256_ps(mask)))
        }
    }

    #[inline(always)]
    fn store_partial(self, dst: &mut [f32]) {
        let mask = lane_mask(dst.len());
        // SAFETY: AVX2 was detected (see the type); VMASKMOVPS writes only
        // the first `dst.len()` (< 8) lanes, which `dst` holds.
        unsafe { _mm256_maskstore_ps(dst.as_mut_ptr(), mask, self.0) }
    }

    const FUSED: bool = true;

    #[inline(always)]
    fn mul_add(self, mul: Self, add: Self) -> Self {
        // SAFETY: the Avx2 token also checked FMA.
        F32x8(unsafe { _mm256_fmadd_ps(self.0, mul.0, add.0) })
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        // SAFETY: AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_sqrt_ps(self.0) })
    }

    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_and_ps(self.0, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff))) })
    }

    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        // SAFETY: AVX2 was detected (see the type).
        unsafe {
            let sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
            F32x8(_mm256_or_ps(_mm256_andnot_ps(sign_bit, self.0), _mm256_and_ps(sign_bit, sign.0)))
        }
    }

    #[inline(always)]
    fn cap(self, hi: Self) -> Self {
        // MINPS returns the second operand when either is NaN.
        // SAFETY: AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_min_ps(hi.0, self.0) })
    }

    #[inline(always)]
    fn ldexp(self, k: Self) -> Self {
        // Two steps, each by a normal power of two: the first product is
        // exact, the second rounds once, also into the subnormal range. A
        // NaN `k` converts to i32::MIN and gives some finite scale; such a
        // lane is NaN already (see the kernels).
        // SAFETY: AVX2 was detected (see the type).
        unsafe {
            let k = _mm256_cvtps_epi32(k.0);
            let k1 = _mm256_srai_epi32::<1>(k);
            let k2 = _mm256_sub_epi32(k, k1);
            F32x8(_mm256_mul_ps(_mm256_mul_ps(self.0, pow2(k1)), pow2(k2)))
        }
    }

    #[inline(always)]
    fn ldexp_normal(self, k: Self) -> Self {
        // Adding k to the exponent field: one integer add instead of
        // building 2^k and multiplying. A NaN `k` converts to i32::MIN,
        // which shifts to 0, so a NaN `self` stays as it is.
        // SAFETY: AVX2 was detected (see the type).
        unsafe {
            let shift = _mm256_slli_epi32::<23>(_mm256_cvtps_epi32(k.0));
            F32x8(_mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(self.0), shift)))
        }
    }

    #[inline(always)]
    fn lt(self, other: Self) -> __m256 {
        // SAFETY: AVX2 was detected (see the type).
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn gt(self, other: Self) -> __m256 {
        // SAFETY: AVX2 was detected (see the type).
        unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn ge(self, other: Self) -> __m256 {
        // SAFETY: AVX2 was detected (see the type).
        unsafe { _mm256_cmp_ps::<_CMP_GE_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn gt_or_nan(self, other: Self) -> __m256 {
        // SAFETY: AVX2 was detected (see the type).
        unsafe { _mm256_cmp_ps::<_CMP_NLE_UQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn eq(self, other: Self) -> __m256 {
        // SAFETY: AVX2 was detected (see the type).
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, other.0) }
    }

    #[inline(always)]
    fn any(mask: __m256) -> bool {
        // SAFETY: masks come from F32x8 comparisons, so AVX2 was detected.
        unsafe { _mm256_movemask_ps(mask) != 0 }
    }

    #[inline(always)]
    fn all(mask: __m256) -> bool {
        // SAFETY: masks come from F32x8 comparisons, so AVX2 was detected.
        unsafe { _mm256_movemask_ps(mask) == 0xFF }
    }

    #[inline(always)]
    fn select(mask: __m256, if_true: Self, if_false: Self) -> Self {
        // SAFETY: two F32x8 exist, so AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_blendv_ps(if_false.0, if_true.0, mask) })
    }

    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: AVX2 was detected (see the type).
        F32x8(unsafe { _mm256_max_ps(self.0, other.0) })
    }

    #[inline(always)]
    fn reduce_max(self) -> f32 {
        // SAFETY: AVX2 was detected (see the type).
        unsafe {
            let half = _mm_max_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let quarter = _mm_max_ps(half, _mm_movehl_ps(half, half));
            _mm_cvtss_f32(_mm_max_ss(quarter, _mm_shuffle_ps::<1>(quarter, quarter)))
        }
    }

    #[inline(always)]
    fn acc_zero(_token: Avx2) -> Self::Acc {
        // SAFETY: the token proves AVX2.
        unsafe { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
    }

    #[inline(always)]
    fn acc_add(acc: Self::Acc, value: Self) -> Self::Acc {
        // SAFETY: an F32x8 exists, so AVX2 was detected (see the type).
        unsafe {
            let low = _mm256_cvtps_pd(_mm256_castps256_ps128(value.0));
            let high = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(value.0));
            (_mm256_add_pd(acc.0, low), _mm256_add_pd(acc.1, high))
        }
    }

    #[inline(always)]
    fn acc_store(acc: Self::Acc, dst: &mut [f64]) {
        let dst = &mut dst[..8];
        // SAFETY: the accumulator came from acc_zero, so AVX2 was
        // detected; `dst` holds 8 writable f64.
        unsafe {
            _mm256_storeu_pd(dst.as_mut_ptr(), acc.0);
            _mm256_storeu_pd(dst[4..].as_mut_ptr(), acc.1);
        }
    }
}
