//! Softmax over the middle axis of a `[outer, n, inner]` layout.
//!
//! Each lane subtracts its maximum before `exp`, so inputs like 1e4 do not
//! overflow. A lane holding NaN, or whose maximum is +inf or -inf (all -inf),
//! comes out all NaN, as in PyTorch.

use num_traits::Float;

use super::Parallel;

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

/// Softmax in place over axis 1 of `data` viewed as `[outer, n, inner]`.
///
/// `data.len()` must equal `outer * n * inner`.
pub fn softmax<T: Float + Send>(data: &mut [T], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 {
        return;
    }
    if inner == 1 {
        par.rows(data, n, softmax_lane);
    } else {
        par.rows(data, n * inner, |block| softmax_block(block, n, inner));
    }
}
