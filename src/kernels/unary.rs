//! Elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh.
//!
//! Semantics follow PyTorch where ONNX leaves room: NaN propagates through
//! every function, LeakyRelu is `x > 0 ? x : alpha * x` (as `at::leaky_relu`).
//!
//! float32 runs on the SIMD path chosen at run time (see
//! [`super::simd`]); float64 and the integer Relu use the scalar functions
//! of this module.
//!
//! Accuracy of the f32 paths over all 2^32 inputs, against an f64 reference
//! rounded to f32 (`cargo run --release --example ulp_sweep`): Relu and
//! LeakyRelu are exact; Sigmoid and Tanh are within 4 ULP (the measured
//! maxima per path are in the README).

use num_traits::Float;

use super::Parallel;
use super::math::{self, Elementwise};
#[cfg(target_arch = "x86_64")]
use super::simd::avx2::{Avx2, F32x8};
#[cfg(target_arch = "x86_64")]
use super::simd::avx512::{Avx512, F32x16};
use super::simd::scalar::{F32x1, Scalar};
use super::simd::{self, Isa, VecF32};

/// Which elementwise function to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// `max(x, 0)`, NaN kept.
    Relu,
    /// `x` for `x > 0`, else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
}

/// Relu of one value; NaN stays NaN.
#[inline]
pub fn relu<T: PartialOrd + Default + Copy>(x: T) -> T {
    // `x > 0 || x != x` keeps NaN (for which every comparison is false).
    #[allow(clippy::eq_op)]
    let is_nan = x != x;
    if x > T::default() || is_nan { x } else { T::default() }
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

fn apply_scalar<T: Float + Default>(op: Unary, src: &[T], dst: &mut [T]) {
    let zip = src.iter().zip(dst.iter_mut());
    match op {
        Unary::Relu => zip.for_each(|(&x, y)| *y = relu(x)),
        Unary::LeakyRelu { alpha } => {
            let alpha = T::from(alpha).unwrap_or_else(T::zero);
            zip.for_each(|(&x, y)| *y = leaky_relu(x, alpha));
        }
        Unary::Sigmoid => zip.for_each(|(&x, y)| *y = sigmoid(x)),
        Unary::Tanh => zip.for_each(|(&x, y)| *y = tanh(x)),
    }
}

fn apply_scalar_inplace<T: Float + Default>(op: Unary, data: &mut [T]) {
    match op {
        Unary::Relu => data.iter_mut().for_each(|x| *x = relu(*x)),
        Unary::LeakyRelu { alpha } => {
            let alpha = T::from(alpha).unwrap_or_else(T::zero);
            data.iter_mut().for_each(|x| *x = leaky_relu(*x, alpha));
        }
        Unary::Sigmoid => data.iter_mut().for_each(|x| *x = sigmoid(*x)),
        Unary::Tanh => data.iter_mut().for_each(|x| *x = tanh(*x)),
    }
}

/// Where an f32 kernel reads and writes.
enum Buffers<'a> {
    /// From the first slice into the second.
    Pair(&'a [f32], &'a mut [f32]),
    /// In place.
    InPlace(&'a mut [f32]),
}

#[inline(always)]
fn run_func<V: VecF32, F: Elementwise>(token: V::Token, func: F, buffers: Buffers<'_>) {
    match buffers {
        Buffers::Pair(src, dst) => math::map::<V, F>(token, func, src, dst),
        Buffers::InPlace(data) => math::map_inplace::<V, F>(token, func, data),
    }
}

/// The one generic body behind every f32 path.
#[inline(always)]
fn run_generic<V: VecF32>(token: V::Token, op: Unary, buffers: Buffers<'_>) {
    match op {
        Unary::Relu => run_func::<V, _>(token, math::Relu, buffers),
        Unary::LeakyRelu { alpha } => run_func::<V, _>(token, math::LeakyRelu { alpha }, buffers),
        Unary::Sigmoid => run_func::<V, _>(token, math::Sigmoid, buffers),
        Unary::Tanh => run_func::<V, _>(token, math::Tanh, buffers),
    }
}

fn run_portable(op: Unary, buffers: Buffers<'_>) {
    run_generic::<F32x1>(Scalar::new(), op, buffers);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(token: Avx2, op: Unary, buffers: Buffers<'_>) {
    run_generic::<F32x8>(token, op, buffers);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512(token: Avx512, op: Unary, buffers: Buffers<'_>) {
    run_generic::<F32x16>(token, op, buffers);
}

/// Runs `op` on the path `isa`, or the portable one if the CPU lacks it.
fn run_f32(isa: Isa, op: Unary, buffers: Buffers<'_>) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            if let Some(token) = Avx512::new() {
                // SAFETY: the token proves AVX-512F, the feature run_avx512
                // is compiled for.
                return unsafe { run_avx512(token, op, buffers) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            if let Some(token) = Avx2::new() {
                // SAFETY: the token proves AVX2 and FMA, the features
                // run_avx2 is compiled for.
                return unsafe { run_avx2(token, op, buffers) };
            }
        }
        _ => {}
    }
    run_portable(op, buffers);
}

/// Applies `op` to float32 `src`, writing `dst` (same length).
pub fn apply_f32(op: Unary, src: &[f32], dst: &mut [f32], par: &Parallel) {
    let isa = simd::active();
    par.map(src, dst, |src, dst| run_f32(isa, op, Buffers::Pair(src, dst)));
}

/// Applies `op` to float32 data in place.
pub fn apply_f32_inplace(op: Unary, data: &mut [f32], par: &Parallel) {
    let isa = simd::active();
    par.map_inplace(data, |data| run_f32(isa, op, Buffers::InPlace(data)));
}

/// Applies `op` to float32 `src` on one thread, on the path `isa` (or the
/// best path below it that the CPU has); for tests, sweeps and benches.
pub fn apply_f32_isa(isa: Isa, op: Unary, src: &[f32], dst: &mut [f32]) {
    run_f32(isa.lowered(), op, Buffers::Pair(src, dst));
}

/// In-place form of [`apply_f32_isa`].
pub fn apply_f32_inplace_isa(isa: Isa, op: Unary, data: &mut [f32]) {
    run_f32(isa.lowered(), op, Buffers::InPlace(data));
}

/// Applies `op` to float64 `src`, writing `dst` (same length).
pub fn apply_f64(op: Unary, src: &[f64], dst: &mut [f64], par: &Parallel) {
    par.map(src, dst, |src, dst| apply_scalar(op, src, dst));
}

/// Applies `op` to float64 data in place.
pub fn apply_f64_inplace(op: Unary, data: &mut [f64], par: &Parallel) {
    par.map_inplace(data, |data| apply_scalar_inplace(op, data));
}

/// Relu on integers, in place.
pub fn relu_int_inplace<T: PartialOrd + Default + Copy + Send>(data: &mut [T], par: &Parallel) {
    par.map_inplace(data, |data| data.iter_mut().for_each(|x| *x = relu(*x)));
}
