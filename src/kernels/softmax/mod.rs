//! Softmax over the middle axis of a `[outer, n, inner]` layout.
//!
//! Each lane subtracts its maximum before `exp`, so inputs like 1e4 do not
//! overflow. A lane holding NaN, or whose maximum is +inf or -inf (all -inf),
//! comes out all NaN, as in PyTorch.
//!
//! # float32
//!
//! float32 runs on the SIMD path chosen at run time (see [`super::simd`]).
//! A contiguous lane (`inner == 1`) is cut into blocks of [`BLOCK`]
//! elements, and each block makes two passes while it sits in L1: its
//! maximum `m_b`, then `e = exp(x - r_b)` written in place while its sum
//! `s_b` accumulates (four vectors added in f32, then f64 lanes). The
//! reference `r_b` is `m_b` rounded up to a multiple of 2^-9, which lets
//! the exp range reduction absorb the subtraction exactly. A block of
//! usual logits (all in [-86, 40]) that is its lane's only block needs no
//! reference at all: `exp(x)` itself can neither overflow nor turn
//! subnormal there, and its sum's reciprocal stays a normal f32, so it
//! computes `exp(x)` (reference 0), three vector operations fewer. The
//! lane's sum is
//! `S = sum_b s_b * exp(r_b - R)` with `R = max r_b` (in f64, in block
//! order), and a last pass multiplies block `b` by `f_b = exp(r_b - R) / S`
//! rounded once to f32. Memory is thus read twice and written twice; from
//! a lent source ([`softmax_into`]) the first two passes read the source
//! and the second writes the destination, so no copy pass is needed. The
//! blocks of a long lane run in parallel; the cut depends only on the lane
//! length, so the result is bitwise the same for any thread count (1, 2, 8
//! are tested).
//!
//! NaN needs no test in the hot loop: a NaN input makes its `e` NaN, hence
//! `S` and every factor NaN. An all -inf block uses 0 as its reference (its
//! `e` are 0, or NaN for a NaN input), and an infinite or NaN maximum makes
//! the whole lane NaN. Inputs more than 104 below the reference (-inf
//! included) give 0 without computing an underflow, which would cost a
//! ~150-cycle microcode assist each on Intel.
//!
//! Accuracy: `x - r_b` costs no rounding (see `math::exp_shifted`), exp
//! is within about 1 ULP, the sums add at most 2^-24 relative, and `f_b` and
//! the final product round once each, so each output is within 3 ULP of
//! softmax computed in f64 from the same f32 inputs (the largest error
//! seen over ~10M random elements per path, `softmax_bound_on_a_large_sample`,
//! is 3 ULP; PyTorch's own f32 softmax is off by up to 17 ULP on the
//! `[4, 1000]` conformance fixture, where onnxi is within 2).
//!
//! A strided lane (`inner > 1`) runs the same three passes on a vector of
//! `inner`-adjacent lanes at a time (the last `inner % LANES` lanes one by
//! one), parallel over `outer`.
//!
//! float64 uses a plain scalar loop with an f64 sum.

use num_traits::Float;

use super::Parallel;
use super::simd::{self, Isa};

mod blocks;
mod dispatch;
mod strided;
#[cfg(test)]
mod tests;

use blocks::*;
use dispatch::*;
use strided::*;

/// Elements per block of a contiguous f32 lane: 16 KiB, so a block's
/// passes after the first hit L1.
pub const BLOCK: usize = 4096;

/// Element types [`softmax`] accepts.
pub trait SoftmaxFloat: Float + Send + Sync {
    /// Softmax in place over axis 1 of `data` viewed as `[outer, n, inner]`.
    fn softmax_slice(data: &mut [Self], n: usize, inner: usize, par: &Parallel);

    /// Softmax of `src` into `dst` (same length), both viewed as
    /// `[outer, n, inner]`. By default each group of lanes is copied and
    /// then normalised while it is still in cache.
    fn softmax_into_slice(src: &[Self], dst: &mut [Self], n: usize, inner: usize, par: &Parallel) {
        copy_then_softmax(src, dst, n, inner, par);
    }
}

impl SoftmaxFloat for f32 {
    fn softmax_slice(data: &mut [f32], n: usize, inner: usize, par: &Parallel) {
        softmax_f32(Paths { isa: simd::active() }, Lanes::InPlace(data), n, inner, par);
    }

    fn softmax_into_slice(src: &[f32], dst: &mut [f32], n: usize, inner: usize, par: &Parallel) {
        softmax_f32(Paths { isa: simd::active() }, Lanes::Into(src, dst), n, inner, par);
    }
}

impl SoftmaxFloat for f64 {
    fn softmax_slice(data: &mut [f64], n: usize, inner: usize, par: &Parallel) {
        if inner == 1 {
            par.rows(data, n, softmax_lane);
        } else {
            par.rows(data, n * inner, |block| softmax_block(block, n, inner));
        }
    }
}

/// Softmax in place over axis 1 of `data` viewed as `[outer, n, inner]`.
///
/// `data.len()` must equal `outer * n * inner`.
pub fn softmax<T: SoftmaxFloat>(data: &mut [T], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 {
        return;
    }
    T::softmax_slice(data, n, inner, par);
}

/// Softmax of `src` into `dst` over axis 1 of both viewed as
/// `[outer, n, inner]`: the same values as copying `src` to `dst` and
/// calling [`softmax`] on it, without the extra pass over memory (float32
/// contiguous lanes read `src` in their first pass and write `dst` in
/// their second).
///
/// `src` and `dst` must both hold `outer * n * inner` elements; nothing is
/// written when their lengths differ.
pub fn softmax_into<T: SoftmaxFloat>(src: &[T], dst: &mut [T], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 || src.len() != dst.len() {
        return;
    }
    T::softmax_into_slice(src, dst, n, inner, par);
}

/// [`softmax`] on float32 on the path `isa` (or the best path below it that
/// the CPU has); for tests and benches.
pub fn softmax_f32_isa(isa: Isa, data: &mut [f32], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 {
        return;
    }
    softmax_f32(Paths { isa: isa.lowered() }, Lanes::InPlace(data), n, inner, par);
}

/// [`softmax_into`] on float32 on the path `isa` (or the best path below
/// it that the CPU has); for tests and benches.
pub fn softmax_into_f32_isa(isa: Isa, src: &[f32], dst: &mut [f32], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 || src.len() != dst.len() {
        return;
    }
    softmax_f32(Paths { isa: isa.lowered() }, Lanes::Into(src, dst), n, inner, par);
}

/// Softmax of a lent `src` into `dst`, copying group by group so that each
/// group is normalised while it is still in cache.
fn copy_then_softmax<T: SoftmaxFloat>(src: &[T], dst: &mut [T], n: usize, inner: usize, par: &Parallel) {
    let lane_group = n * inner;
    if src.len() <= lane_group {
        dst.copy_from_slice(src);
        T::softmax_slice(dst, n, inner, par);
        return;
    }
    par.map_rows(src, dst, lane_group, |src, dst| {
        dst.copy_from_slice(src);
        T::softmax_slice(dst, n, inner, &Parallel::serial());
    });
}

/// NaN-propagating maximum (`f32::max` would skip NaN).
#[inline]
fn nan_max<T: Float>(acc: T, x: T) -> T {
    if x > acc || x.is_nan() || acc.is_nan() { if acc.is_nan() { acc } else { x } } else { acc }
}

/// Softmax of one contiguous lane, in place. Sums in f64 for accuracy on
/// long rows.
fn softmax_lane<T: Float>(lane: &mut [T]) {
    let max = lane.iter().fold(T::neg_infinity(), |acc, &x| nan_max(acc, x));
    let mut sum = 0f64;
    for x in lane.iter_mut() {
        *x = (*x - max).exp();
        sum += x.to_f64().unwrap_or(f64::NAN);
    }
    let sum = T::from(sum).unwrap_or_else(T::nan);
    for x in lane.iter_mut() {
        *x = *x / sum;
    }
}

/// Softmax along the strided axis of one `[n, inner]` block, in place.
fn softmax_block<T: Float>(block: &mut [T], n: usize, inner: usize) {
    let mut max = vec![T::neg_infinity(); inner];
    for row in block.chunks(inner) {
        for (acc, &x) in max.iter_mut().zip(row) {
            *acc = nan_max(*acc, x);
        }
    }
    let mut sum = vec![0f64; inner];
    for row in block.chunks_mut(inner) {
        for ((x, &m), s) in row.iter_mut().zip(&max).zip(sum.iter_mut()) {
            *x = (*x - m).exp();
            *s += x.to_f64().unwrap_or(f64::NAN);
        }
    }
    let sum: Vec<T> = sum.into_iter().map(|s| T::from(s).unwrap_or_else(T::nan)).collect();
    for row in block.chunks_mut(inner) {
        for (x, &s) in row.iter_mut().zip(&sum) {
            *x = *x / s;
        }
    }
    debug_assert_eq!(block.len(), n * inner);
}
