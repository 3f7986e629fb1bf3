//! Float32 softmax along a strided axis (`inner > 1`): vectors of
//! `inner`-adjacent lanes at a time.

use super::*;
use crate::kernels::math::{self, MAX_LANES};
use crate::kernels::simd::VecF32;
use crate::kernels::simd::scalar::{F32x1, Scalar};

/// All three passes over `n` lanes of `inner`-strided data starting at
/// column `col` of a `[n, inner]` slab, `V::LANES` lanes at once.
#[inline(always)]
pub(super) fn strided_lanes<V: VecF32>(token: V::Token, slab: &mut [f32], n: usize, inner: usize, col: usize) {
    let lanes = V::LANES;
    let mut max = V::splat(token, f32::NEG_INFINITY);
    for row in 0..n {
        max = max.max(V::load(token, &slab[row * inner + col..]));
    }
    let mut max_lanes = [0f32; MAX_LANES];
    max.store(&mut max_lanes);
    let mut reference_lanes = [0f32; MAX_LANES];
    for (reference, &max) in reference_lanes.iter_mut().zip(&max_lanes[..lanes]) {
        *reference = shifted_reference(max);
    }
    let reference = V::load(token, &reference_lanes);
    let grid = reference_lanes[..lanes].iter().all(|reference| reference.abs() < math::GRID_LIMIT);
    let mut acc = V::acc_zero(token);
    for row in 0..n {
        let at = row * inner + col;
        let x = V::load(token, &slab[at..]);
        let e = if grid {
            math::exp_shifted::<V, true, false>(token, x, reference)
        } else {
            math::exp_shifted::<V, false, false>(token, x, reference)
        };
        e.store(&mut slab[at..]);
        acc = V::acc_add(acc, e);
    }
    let mut sum_lanes = [0f64; MAX_LANES];
    V::acc_store(acc, &mut sum_lanes);
    let mut factor_lanes = [0f32; MAX_LANES];
    for lane in 0..lanes {
        let stats =
            BlockStats { max: max_lanes[lane], reference: f64::from(reference_lanes[lane]), sum: sum_lanes[lane] };
        factor_lanes[lane] = lane_factors(&[stats]).next().unwrap_or(f32::NAN);
    }
    let factor = V::load(token, &factor_lanes);
    for row in 0..n {
        let at = row * inner + col;
        (V::load(token, &slab[at..]) * factor).store(&mut slab[at..]);
    }
}

/// Softmax along the strided axis of one `[n, inner]` slab.
#[inline(always)]
pub(super) fn strided_slab<V: VecF32>(token: V::Token, slab: &mut [f32], n: usize, inner: usize) {
    let mut col = 0;
    while col + V::LANES <= inner {
        strided_lanes::<V>(token, slab, n, inner, col);
        col += V::LANES;
    }
    // The last few lanes one at a time, with the same algorithm.
    for col in col..inner {
        strided_lanes::<F32x1>(Scalar::new(), slab, n, inner, col);
    }
}
