//! Elementwise float kernels: the slice loops, SIMD dispatch and thread
//! split behind every elementwise operator, generic over the function
//! (`Elementwise`, declared per operator in `crate::ops::activation`).
//!
//! float32 runs on the SIMD path chosen at run time (see
//! [`super::simd`]): each per-ISA entry point is generic over the
//! function, so every function gets its own loops compiled for each
//! instruction set. float64 and integers map a scalar function
//! ([`map_scalar`]).
//!
//! Semantics follow PyTorch where ONNX leaves room: NaN propagates through
//! every function, LeakyRelu is `x > 0 ? x : alpha * x` (as `at::leaky_relu`).

use num_traits::Float;

use super::Parallel;
use super::math;
pub(crate) use super::math::Elementwise;
#[cfg(target_arch = "x86_64")]
use super::simd::avx2::{Avx2, F32x8};
#[cfg(target_arch = "x86_64")]
use super::simd::avx512::{Avx512, F32x16};
use super::simd::scalar::{F32x1, Scalar};
#[cfg(target_arch = "x86_64")]
use super::simd::sse2::{F32x4, Sse2};
use super::simd::{self, Isa, VecF32};

/// Relu of one value; NaN stays NaN.
#[inline]
pub fn relu<T: PartialOrd + Default + Copy>(x: T) -> T {
    // `x < 0` is false for NaN and for -0.0, so both pass through unchanged,
    // as in PyTorch (`clamp_min`) and ONNX Runtime.
    if x < T::default() { T::default() } else { x }
}

/// LeakyRelu of one value.
#[inline]
pub fn leaky_relu<T: Float>(x: T, alpha: T) -> T {
    if x > T::zero() { x } else { x * alpha }
}

/// Sigmoid of one value, from `exp(-|x|)` so that neither branch overflows.
#[inline]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// Tanh of one value.
#[inline]
pub fn tanh<T: Float>(x: T) -> T {
    x.tanh()
}

/// Outputs from this many elements (16 MiB of float32) on are written with
/// non-temporal stores: far larger than a core's share of cache, so the
/// lines would be evicted before anyone reads them, and a plain store
/// first reads each line it writes (a third memory stream). Fused chains
/// and in-place kernels keep plain stores (their data is read again, or
/// already in cache).
pub const STREAM_MIN_ELEMS: usize = 4 << 20;

/// The buffers of a kernel from `src` into `dst`: streaming stores for a
/// large output (see [`STREAM_MIN_ELEMS`]).
fn pair<'a>(src: &'a [f32], dst: &'a mut [f32], total: usize) -> Buffers<'a> {
    if total >= STREAM_MIN_ELEMS { Buffers::PairStream(src, dst) } else { Buffers::Pair(src, dst) }
}

/// Where an f32 kernel reads and writes.
enum Buffers<'a> {
    /// From the first slice into the second.
    Pair(&'a [f32], &'a mut [f32]),
    /// From the first slice into the second, with non-temporal stores.
    PairStream(&'a [f32], &'a mut [f32]),
    /// In place.
    InPlace(&'a mut [f32]),
}

#[inline(always)]
fn run_func<V: VecF32, F: Elementwise>(token: V::Token, func: F, buffers: Buffers<'_>) {
    match buffers {
        Buffers::Pair(src, dst) => math::map::<V, F, false>(token, func, src, dst),
        Buffers::PairStream(src, dst) => math::map::<V, F, true>(token, func, src, dst),
        Buffers::InPlace(data) => math::map_inplace::<V, F>(token, func, data),
    }
}

fn run_portable<F: Elementwise>(func: F, buffers: Buffers<'_>) {
    run_func::<F32x1, F>(Scalar::new(), func, buffers);
}

// SSE2 is part of x86-64, so this needs no #[target_feature].
#[cfg(target_arch = "x86_64")]
fn run_sse2<F: Elementwise>(token: Sse2, func: F, buffers: Buffers<'_>) {
    run_func::<F32x4, F>(token, func, buffers);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<F: Elementwise>(token: Avx2, func: F, buffers: Buffers<'_>) {
    run_func::<F32x8, F>(token, func, buffers);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512<F: Elementwise>(token: Avx512, func: F, buffers: Buffers<'_>) {
    run_func::<F32x16, F>(token, func, buffers);
}

/// Runs `func` on the path `isa`, or the portable one if the CPU lacks it.
fn run_f32<F: Elementwise>(isa: Isa, func: F, buffers: Buffers<'_>) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            if let Some(token) = Avx512::new() {
                // SAFETY: the token proves AVX-512F, the feature run_avx512
                // is compiled for.
                return unsafe { run_avx512(token, func, buffers) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            if let Some(token) = Avx2::new() {
                // SAFETY: the token proves AVX2 and FMA, the features
                // run_avx2 is compiled for.
                return unsafe { run_avx2(token, func, buffers) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2 => {
            if let Some(token) = Sse2::new() {
                return run_sse2(token, func, buffers);
            }
        }
        _ => {}
    }
    run_portable(func, buffers);
}

/// Applies `func` to float32 `src`, writing `dst` (same length).
pub(crate) fn apply_f32<F: Elementwise>(func: F, src: &[f32], dst: &mut [f32], par: &Parallel) {
    let isa = simd::active();
    let total = dst.len();
    par.map(src, dst, |src, dst| run_f32(isa, func, pair(src, dst, total)));
}

/// Applies `func` to float32 data in place.
pub(crate) fn apply_f32_inplace<F: Elementwise>(func: F, data: &mut [f32], par: &Parallel) {
    let isa = simd::active();
    par.map_inplace(data, |data| run_f32(isa, func, Buffers::InPlace(data)));
}

/// Applies `func` to float32 `src` on one thread, on the path `isa` (or
/// the best path below it that the CPU has); for tests, sweeps and benches.
pub(crate) fn apply_f32_isa<F: Elementwise>(isa: Isa, func: F, src: &[f32], dst: &mut [f32]) {
    let total = dst.len();
    run_f32(isa.lowered(), func, pair(src, dst, total));
}

/// In-place form of [`apply_f32_isa`].
pub(crate) fn apply_f32_inplace_isa<F: Elementwise>(isa: Isa, func: F, data: &mut [f32]) {
    run_f32(isa.lowered(), func, Buffers::InPlace(data));
}

/// The SIMD sigmoid as an [`Elementwise`] body.
#[derive(Clone, Copy)]
struct SigmoidBody;

impl Elementwise for SigmoidBody {
    #[inline(always)]
    fn apply<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::sigmoid(token, x)
    }
}

/// The SIMD tanh as an [`Elementwise`] body.
#[derive(Clone, Copy)]
struct TanhBody;

impl Elementwise for TanhBody {
    #[inline(always)]
    fn apply<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::tanh(token, x)
    }
}

/// The logistic sigmoid over float32 data in place, on this thread, on the
/// best SIMD path: the Sigmoid op's kernel, for ops that apply it to short
/// rows of their own (the gates of LSTM and GRU).
pub fn sigmoid_f32_inplace(data: &mut [f32]) {
    run_f32(simd::active(), SigmoidBody, Buffers::InPlace(data));
}

/// Tanh over float32 data in place, as [`sigmoid_f32_inplace`].
pub fn tanh_f32_inplace(data: &mut [f32]) {
    run_f32(simd::active(), TanhBody, Buffers::InPlace(data));
}

/// `dst[i] = func(src[i])` for a scalar function (float64, integers),
/// split across threads like the float32 kernels.
pub fn map_scalar<T: Copy + Send + Sync>(
    func: impl Fn(T) -> T + Sync + Send,
    src: &[T],
    dst: &mut [T],
    par: &Parallel,
) {
    par.map(src, dst, |src, dst| src.iter().zip(dst.iter_mut()).for_each(|(&x, y)| *y = func(x)));
}

/// In-place form of [`map_scalar`].
pub fn map_scalar_inplace<T: Copy + Send>(func: impl Fn(T) -> T + Sync + Send, data: &mut [T], par: &Parallel) {
    par.map_inplace(data, |data| data.iter_mut().for_each(|x| *x = func(*x)));
}
