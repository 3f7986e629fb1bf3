//! Elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh.
//!
//! Semantics follow PyTorch where ONNX leaves room: NaN propagates through
//! every function, LeakyRelu is `x > 0 ? x : alpha * x` (as `at::leaky_relu`).

use num_traits::Float;

use super::Parallel;

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
    if x > T::default() || is_nan {
        x
    } else {
        T::default()
    }
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

/// Applies `op` to float32 `src`, writing `dst` (same length).
pub fn apply_f32(op: Unary, src: &[f32], dst: &mut [f32], par: &Parallel) {
    par.map(src, dst, |src, dst| apply_scalar(op, src, dst));
}

/// Applies `op` to float32 data in place.
pub fn apply_f32_inplace(op: Unary, data: &mut [f32], par: &Parallel) {
    par.map_inplace(data, |data| apply_scalar_inplace(op, data));
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
