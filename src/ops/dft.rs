//! Fourier transforms: DFT (along one axis of a real or complex tensor)
//! and STFT (windowed DFTs of overlapping frames).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__DFT.html>
//! - <https://onnx.ai/onnx/operators/onnx__STFT.html>
//!
//! | op   | opset | behaviour                                               |
//! |------|-------|---------------------------------------------------------|
//! | DFT  | 17    | `axis` attribute (default 1), `inverse`, `onesided`, optional `dft_length` input |
//! | DFT  | 20    | `axis` becomes an optional int64 scalar input (default -2) |
//! | STFT | 17    | `frame_step`, optional `window` and `frame_length`, `onesided` (default 1) |
//!
//! A complex value is the last axis of size 2 (real, imaginary); a real
//! input has a last axis of size 1. The transform axis may be any other
//! axis. `dft_length` crops or zero-pads the signal along it. Forward with
//! `onesided` returns the first `dft_length / 2 + 1` bins; inverse is
//! scaled by `1 / dft_length`, and inverse with `onesided` is the real
//! inverse (IRFFT): the input bins are the non-negative half of a
//! Hermitian spectrum (cropped or zero-padded to `dft_length / 2 + 1`),
//! the output real, its `dft_length` defaulting to `2 · (bins - 1)`. As
//! the ONNX reference does, a complex input with forward `onesided` gives
//! the first bins of its full transform, and a real input to an inverse
//! transform is read as complex with zero imaginary parts.
//!
//! Every transform runs in float64 (a radix-2 FFT for power-of-two
//! lengths, Bluestein's chirp-z through one for the others, so any length
//! costs `O(n log n)`) and is rounded once to the input type.

use std::f64::consts::TAU;

use ndarray::{ArrayD, IxDyn};

use super::values::{float_array, float_tensor, int_values};
use super::{ExecCtx, FLOATS_BF16, Inputs, Op, Registry, check_dtype, check_input_type, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor};

/// The integer types of `dft_length`, `frame_step` and `frame_length`.
const INT_INPUTS: &[DType] = &[DType::I32, DType::I64];

/// Registers DFT and STFT.
pub fn register(reg: &mut Registry) {
    reg.add("", "DFT", &[17, 20], float_types, Dft::from_node);
    reg.add("", "STFT", &[17], float_types, Stft::from_node);
}

fn float_types(_version: i64) -> &'static [DType] {
    FLOATS_BF16
}

/// A complex number in float64.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl Complex {
    fn new(re: f64, im: f64) -> Self {
        Complex { re, im }
    }

    fn mul(self, other: Complex) -> Complex {
        Complex::new(self.re * other.re - self.im * other.im, self.re * other.im + self.im * other.re)
    }

    fn conj(self) -> Complex {
        Complex::new(self.re, -self.im)
    }
}

/// `exp(sign · 2πi · k / n)` for `k` in `0..n`, each angle reduced exactly
/// first (`k < n`), so large lengths keep full accuracy.
fn twiddles(n: usize, sign: f64) -> Vec<Complex> {
    (0..n)
        .map(|k| {
            let angle = sign * TAU * k as f64 / n as f64;
            Complex::new(angle.cos(), angle.sin())
        })
        .collect()
}

/// In-place iterative radix-2 FFT of a power-of-two length:
/// `X[k] = Σ x[t]·exp(sign·2πi·kt/n)` (no scaling).
fn fft_pow2(data: &mut [Complex], sign: f64) {
    let n = data.len();
    if n <= 1 {
        return;
    }
    let bits = n.trailing_zeros();
    for index in 0..n {
        let reversed = index.reverse_bits() >> (usize::BITS - bits);
        if reversed > index {
            data.swap(index, reversed);
        }
    }
    let table = twiddles(n, sign);
    let mut half = 1;
    while half < n {
        let stride = n / (2 * half);
        for start in (0..n).step_by(2 * half) {
            for offset in 0..half {
                let w = table[offset * stride];
                let odd = data[start + offset + half].mul(w);
                let even = data[start + offset];
                data[start + offset] = Complex::new(even.re + odd.re, even.im + odd.im);
                data[start + offset + half] = Complex::new(even.re - odd.re, even.im - odd.im);
            }
        }
        half *= 2;
    }
}

/// `X[k] = Σ_t x[t]·exp(sign·2πi·kt/n)` for any length `n = data.len()`
/// (no scaling), in place: radix-2 when `n` is a power of two, else
/// Bluestein's algorithm (`kt = (k² + t² - (k - t)²) / 2` turns the sum
/// into a convolution, done by power-of-two FFTs of length ≥ `2n - 1`).
pub fn fft(data: &mut [Complex], sign: f64) {
    let n = data.len();
    if n.is_power_of_two() || n <= 1 {
        fft_pow2(data, sign);
        return;
    }
    // chirp[t] = exp(sign·πi·t²/n), with t² reduced modulo 2n exactly.
    let chirp: Vec<Complex> = (0..n)
        .map(|t| {
            let square = (t as u128 * t as u128 % (2 * n as u128)) as f64;
            let angle = sign * std::f64::consts::PI * square / n as f64;
            Complex::new(angle.cos(), angle.sin())
        })
        .collect();
    let m = (2 * n - 1).next_power_of_two();
    let mut a = vec![Complex::default(); m];
    for (slot, (&x, &c)) in a.iter_mut().zip(data.iter().zip(&chirp)) {
        *slot = x.mul(c);
    }
    let mut b = vec![Complex::default(); m];
    b[0] = chirp[0].conj();
    for t in 1..n {
        b[t] = chirp[t].conj();
        b[m - t] = chirp[t].conj();
    }
    fft_pow2(&mut a, -1.0);
    fft_pow2(&mut b, -1.0);
    for (x, y) in a.iter_mut().zip(&b) {
        *x = x.mul(*y);
    }
    fft_pow2(&mut a, 1.0);
    let scale = 1.0 / m as f64;
    for (k, slot) in data.iter_mut().enumerate() {
        let value = a[k].mul(chirp[k]);
        *slot = Complex::new(value.re * scale, value.im * scale);
    }
}

/// What one DFT computes along its axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    /// The transform length (after cropping or zero-padding).
    pub length: usize,
    /// Inverse (scaled by `1 / length`).
    pub inverse: bool,
    /// Forward: keep the first `length / 2 + 1` bins; inverse: the real
    /// inverse of a Hermitian half-spectrum.
    pub onesided: bool,
}

impl Transform {
    /// How many values the output has along the axis.
    pub fn out_len(&self) -> usize {
        if self.onesided && !self.inverse { self.length / 2 + 1 } else { self.length }
    }

    /// 1 (real) or 2 (complex): the output's last axis.
    pub fn out_components(&self) -> usize {
        if self.onesided && self.inverse { 1 } else { 2 }
    }

    /// Transforms one lane of complex input (any length; cropped or
    /// zero-padded) into `out` (`out_len` values; only real parts matter
    /// when `out_components` is 1).
    fn lane(&self, input: &[Complex], out: &mut [Complex]) {
        let n = self.length;
        let mut buffer = vec![Complex::default(); n];
        if self.inverse && self.onesided {
            // The Hermitian extension of the first n/2 + 1 bins.
            let half = n / 2 + 1;
            let used = half.min(input.len());
            buffer[..used].copy_from_slice(&input[..used]);
            for k in half..n {
                buffer[k] = buffer[n - k].conj();
            }
        } else {
            let used = n.min(input.len());
            buffer[..used].copy_from_slice(&input[..used]);
        }
        fft(&mut buffer, if self.inverse { 1.0 } else { -1.0 });
        let scale = if self.inverse { 1.0 / n as f64 } else { 1.0 };
        for (slot, value) in out.iter_mut().zip(&buffer) {
            *slot = Complex::new(value.re * scale, value.im * scale);
        }
    }
}

/// The DFT of `data` (row-major, shape `[outer, len, inner, components]`,
/// components 1 or 2) along its `len` axis, as float64 row-major
/// `[outer, out_len, inner, out_components]`.
pub fn dft_lanes(
    data: &[f64],
    outer: usize,
    len: usize,
    inner: usize,
    components: usize,
    transform: &Transform,
) -> Vec<f64> {
    let (out_len, out_c) = (transform.out_len(), transform.out_components());
    let mut out = vec![0.0; outer * out_len * inner * out_c];
    let mut lane = vec![Complex::default(); len];
    let mut result = vec![Complex::default(); out_len];
    for o in 0..outer {
        for i in 0..inner {
            for (t, slot) in lane.iter_mut().enumerate() {
                let at = ((o * len + t) * inner + i) * components;
                *slot = Complex::new(data[at], if components == 2 { data[at + 1] } else { 0.0 });
            }
            transform.lane(&lane, &mut result);
            for (k, value) in result.iter().enumerate() {
                let at = ((o * out_len + k) * inner + i) * out_c;
                out[at] = value.re;
                if out_c == 2 {
                    out[at + 1] = value.im;
                }
            }
        }
    }
    out
}

/// The single value of an int32/int64 scalar input.
fn int_scalar(op: &'static str, what: &str, tensor: &Tensor) -> Result<i64, OpError> {
    match int_values(op, what, tensor)?.as_slice() {
        [value] => Ok(*value),
        values => Err(OpError::Invalid { op, reason: format!("{what} must hold one value, holds {}", values.len()) }),
    }
}

/// A positive length from a scalar input.
fn positive(op: &'static str, what: &str, tensor: &Tensor) -> Result<usize, OpError> {
    let value = int_scalar(op, what, tensor)?;
    match usize::try_from(value) {
        Ok(length) if length >= 1 => Ok(length),
        _ => Err(OpError::Invalid { op, reason: format!("{what} {value} is not positive") }),
    }
}

/// Reads a 0/1 attribute.
fn flag(attrs: &mut Attrs<'_>, name: &str, default: i64) -> Result<bool, LoadError> {
    match attrs.i64(name)?.unwrap_or(default) {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(attrs.error(name, format!("must be 0 or 1, got {other}"))),
    }
}

/// The last axis of a DFT/STFT input: 1 (real) or 2 (complex).
fn components(op: &'static str, shape: &[usize]) -> Result<usize, OpError> {
    match shape.last() {
        Some(&c @ (1 | 2)) if shape.len() >= 2 => Ok(c),
        _ => Err(OpError::Invalid {
            op,
            reason: format!(
                "input shape {shape:?} must have rank 2 or more and a last axis of 1 (real) or 2 (complex)"
            ),
        }),
    }
}

/// DFT along one axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Dft {
    /// Opset 17: the axis attribute (default 1); opset 20 reads it from
    /// the optional third input (default -2) and leaves this `None`.
    pub axis: Option<i64>,
    /// Inverse transform (default 0).
    pub inverse: bool,
    /// One-sided output or input (default 0).
    pub onesided: bool,
}

impl Dft {
    /// Reads `inverse`, `onesided` and, before opset 20, `axis`.
    ///
    /// # Errors
    /// A flag other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = if version < 20 { Some(attrs.i64("axis")?.unwrap_or(1)) } else { None };
        let inverse = flag(attrs, "inverse", 0)?;
        let onesided = flag(attrs, "onesided", 0)?;
        Ok(Dft { axis, inverse, onesided })
    }
}

impl Op for Dft {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.axis.is_some() { 1..=2 } else { 1..=3 }
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("DFT", inputs, 0, FLOATS_BF16)?;
        check_input_type("DFT", inputs, 1, INT_INPUTS)?;
        check_input_type("DFT", inputs, 2, &[DType::I64])
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let out_c = if self.inverse && self.onesided { 1 } else { 2 };
        let dims = ty.rank().filter(|&rank| rank >= 2).map(|rank| {
            let mut dims = vec![Dim::Any; rank];
            dims[rank - 1] = Dim::Fixed(out_c);
            dims
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "DFT";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), FLOATS_BF16)?;
        let shape = x.shape().to_vec();
        let c = components(OP, &shape)?;
        let rank = shape.len();
        let axis = match (self.axis, inputs.get_mut(2).and_then(Option::take)) {
            (Some(axis), _) => axis,
            (None, Some(axis)) => match axis.as_ref() {
                Tensor::I64(_) => int_scalar(OP, "axis", &axis)?,
                other => {
                    return Err(OpError::Invalid {
                        op: OP,
                        reason: format!("axis must be int64, got {}", other.dtype()),
                    });
                }
            },
            (None, None) => -2,
        };
        let axis_index = normalize_axis(OP, axis, rank)?;
        if axis_index == rank - 1 {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!(
                    "axis {axis} is the real/imaginary axis of rank {rank}; it must lie in [-{rank}, -2] or [0, {}]",
                    rank - 2
                ),
            });
        }
        let len = shape[axis_index];
        let length = match inputs.get_mut(1).and_then(Option::take) {
            Some(dft_length) => positive(OP, "dft_length", &dft_length)?,
            None if self.inverse && self.onesided => match len.checked_sub(1).map(|half| 2 * half) {
                Some(length) if length >= 1 => length,
                _ => {
                    return Err(OpError::Invalid {
                        op: OP,
                        reason: format!("the default IRFFT length 2·({len} - 1) is not positive; give dft_length"),
                    });
                }
            },
            None if len >= 1 => len,
            None => return Err(OpError::Invalid { op: OP, reason: "the transform axis is empty".into() }),
        };
        let transform = Transform { length, inverse: self.inverse, onesided: self.onesided };
        let mut out_shape = shape.clone();
        out_shape[axis_index] = transform.out_len();
        out_shape[rank - 1] = transform.out_components();
        ctx.checked_elems(OP, x.dtype(), &out_shape)?;
        // The FFT's scratch is a few times the transform length.
        ctx.checked_elems(OP, DType::F64, &[length, 8])?;
        let dtype = x.dtype();
        let data: Vec<f64> = float_array(OP, &x)?.iter().copied().collect();
        drop(x);
        let outer: usize = shape[..axis_index].iter().product();
        let inner: usize = shape[axis_index + 1..rank - 1].iter().product();
        let values = dft_lanes(&data, outer, len, inner, c, &transform);
        let array = ArrayD::from_shape_vec(IxDyn(&out_shape), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        Ok(float_tensor(dtype, array))
    }
}

/// STFT: the DFT of each frame of `frame_length` samples, frames
/// `frame_step` apart, each multiplied by the window first.
#[derive(Debug, Clone, PartialEq)]
pub struct Stft {
    /// Keep only the first `frame_length / 2 + 1` bins (default 1).
    pub onesided: bool,
}

impl Stft {
    /// Reads `onesided`.
    ///
    /// # Errors
    /// `onesided` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Stft { onesided: flag(attrs, "onesided", 1)? })
    }
}

/// STFT of `signal` (row-major, `[batch, len, components]` =
/// `signal_shape`) with `window` (`frame_length` real values): float64
/// row-major `[batch, frames, bins, 2]`.
pub fn stft(
    signal: &[f64],
    signal_shape: [usize; 3],
    window: &[f64],
    frame_step: usize,
    frames: usize,
    onesided: bool,
) -> Vec<f64> {
    let [batch, len, components] = signal_shape;
    let frame_length = window.len();
    let transform = Transform { length: frame_length, inverse: false, onesided };
    let bins = transform.out_len();
    let mut out = vec![0.0; batch * frames * bins * 2];
    let mut frame = vec![Complex::default(); frame_length];
    let mut result = vec![Complex::default(); bins];
    for b in 0..batch {
        for f in 0..frames {
            for (t, slot) in frame.iter_mut().enumerate() {
                let at = (b * len + f * frame_step + t) * components;
                let im = if components == 2 { signal[at + 1] } else { 0.0 };
                *slot = Complex::new(signal[at] * window[t], im * window[t]);
            }
            transform.lane(&frame, &mut result);
            for (k, value) in result.iter().enumerate() {
                let at = ((b * frames + f) * bins + k) * 2;
                out[at] = value.re;
                out[at + 1] = value.im;
            }
        }
    }
    out
}

impl Op for Stft {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=4
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("STFT", inputs, 0, FLOATS_BF16)?;
        check_input_type("STFT", inputs, 1, INT_INPUTS)?;
        check_input_type("STFT", inputs, 2, FLOATS_BF16)?;
        check_input_type("STFT", inputs, 3, INT_INPUTS)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        vec![Some(ValueType { dtype: ty.dtype, dims: Some(vec![Dim::Any, Dim::Any, Dim::Any, Dim::Fixed(2)]) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "STFT";
        let signal = required(inputs, 0, OP)?;
        check_dtype(OP, signal.dtype(), FLOATS_BF16)?;
        let shape = signal.shape().to_vec();
        let c = components(OP, &shape)?;
        if shape.len() != 3 {
            return Err(OpError::Invalid { op: OP, reason: format!("signal shape {shape:?} must have rank 3") });
        }
        let (batch, len) = (shape[0], shape[1]);
        let frame_step = positive(OP, "frame_step", required(inputs, 1, OP)?.as_ref())?;
        let window = match inputs.get_mut(2).and_then(Option::take) {
            Some(window) => {
                if window.dtype() != signal.dtype() || window.shape().len() != 1 {
                    return Err(OpError::Invalid {
                        op: OP,
                        reason: format!(
                            "window must be 1-D {} like the signal, got {} {:?}",
                            signal.dtype(),
                            window.dtype(),
                            window.shape()
                        ),
                    });
                }
                Some(float_array(OP, &window)?.iter().copied().collect::<Vec<f64>>())
            }
            None => None,
        };
        let frame_length = match inputs.get_mut(3).and_then(Option::take) {
            Some(frame_length) => Some(positive(OP, "frame_length", &frame_length)?),
            None => None,
        };
        let frame_length = match (frame_length, &window) {
            (Some(length), Some(window)) if window.len() != length => {
                return Err(OpError::Invalid {
                    op: OP,
                    reason: format!("the window has {} values but frame_length is {length}", window.len()),
                });
            }
            (Some(length), _) => length,
            (None, Some(window)) => window.len(),
            (None, None) => len,
        };
        if frame_length == 0 || frame_length > len {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!("frame_length {frame_length} must lie in 1..={len} (the signal length)"),
            });
        }
        let window = window.unwrap_or_else(|| vec![1.0; frame_length]);
        let frames = (len - frame_length) / frame_step + 1;
        let bins = if self.onesided { frame_length / 2 + 1 } else { frame_length };
        let out_shape = [batch, frames, bins, 2];
        ctx.checked_elems(OP, signal.dtype(), &out_shape)?;
        let dtype = signal.dtype();
        let data: Vec<f64> = float_array(OP, &signal)?.iter().copied().collect();
        drop(signal);
        let values = stft(&data, [batch, len, c], &window, frame_step, frames, self.onesided);
        let array = ArrayD::from_shape_vec(IxDyn(&out_shape), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        Ok(float_tensor(dtype, array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DFT by its definition, O(n²), in float64.
    fn naive(x: &[Complex], sign: f64) -> Vec<Complex> {
        let n = x.len();
        (0..n)
            .map(|k| {
                x.iter().enumerate().fold(Complex::default(), |acc, (t, v)| {
                    let angle = sign * 2.0 * std::f64::consts::PI * ((k * t) % n) as f64 / n as f64;
                    let w = Complex::new(angle.cos(), angle.sin());
                    let p = v.mul(w);
                    Complex::new(acc.re + p.re, acc.im + p.im)
                })
            })
            .collect()
    }

    fn signal(n: usize) -> Vec<Complex> {
        (0..n).map(|t| Complex::new((t as f64 * 0.7).sin() + 0.1 * t as f64, (t as f64 * 1.3).cos())).collect()
    }

    #[test]
    fn fft_equals_the_definition_for_every_length() {
        for n in [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 17, 31, 64, 100, 127] {
            for sign in [-1.0, 1.0] {
                let x = signal(n);
                let mut y = x.clone();
                fft(&mut y, sign);
                let want = naive(&x, sign);
                for (got, want) in y.iter().zip(&want) {
                    assert!(
                        (got.re - want.re).abs() < 1e-9 && (got.im - want.im).abs() < 1e-9,
                        "n={n}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn onesided_and_inverse_modes_follow_numpy_fft() {
        // rfft of [1, 2, 3, 4]: [10, -2+2i, -2].
        let real: Vec<f64> = vec![1.0, 2.0, 3.0, 4.0];
        let rfft = Transform { length: 4, inverse: false, onesided: true };
        let out = dft_lanes(&real, 1, 4, 1, 1, &rfft);
        assert_eq!(out, [10.0, 0.0, -2.0, 2.0, -2.0, 0.0]);
        // irfft of that half spectrum gives the signal back (real output).
        let irfft = Transform { length: 4, inverse: true, onesided: true };
        let back = dft_lanes(&out, 1, 3, 1, 2, &irfft);
        for (got, want) in back.iter().zip(&real) {
            assert!((got - want).abs() < 1e-12, "{back:?}");
        }
        // Full inverse of the full forward, with zero-padding to 6.
        let forward = Transform { length: 6, inverse: false, onesided: false };
        let spectrum = dft_lanes(&real, 1, 4, 1, 1, &forward);
        let inverse = Transform { length: 6, inverse: true, onesided: false };
        let back = dft_lanes(&spectrum, 1, 6, 1, 2, &inverse);
        let want = [1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        for (got, want) in back.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{back:?}");
        }
        // An inner axis: two lanes interleaved ([1, 2, 2, 1] layout).
        let data = [1.0, 10.0, 2.0, 20.0];
        let out = dft_lanes(&data, 1, 2, 2, 1, &Transform { length: 2, inverse: false, onesided: false });
        assert_eq!(out, [3.0, 0.0, 30.0, 0.0, -1.0, 0.0, -10.0, 0.0]);
    }

    fn run_dft(op: &Dft, x: Tensor, length: Option<i64>, axis: Option<i64>) -> Result<Tensor, OpError> {
        let par = crate::kernels::Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 30 };
        let scalar = |v: i64| std::borrow::Cow::Owned(Tensor::from(ndarray::arr0(v)));
        let mut inputs = [Some(std::borrow::Cow::Owned(x)), length.map(scalar), axis.map(scalar)];
        op.run(&mut inputs, &ctx)
    }

    #[test]
    fn dft_op_reads_its_axis_and_length_and_refuses_bad_ones() {
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[1, 4, 1]), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap());
        // Opset 20: the axis input defaults to -2 (axis 1 here).
        let op20 = Dft { axis: None, inverse: false, onesided: true };
        let out = run_dft(&op20, x.clone(), None, None).unwrap();
        assert_eq!(out.shape(), [1, 3, 2]);
        assert_eq!(out.to_f64_vec(), [10.0, 0.0, -2.0, 2.0, -2.0, 0.0]);
        // dft_length 2 crops to [1, 2]: bins 3 and -1.
        let out = run_dft(&op20, x.clone(), Some(2), Some(1)).unwrap();
        assert_eq!(out.to_f64_vec(), [3.0, 0.0, -1.0, 0.0]);
        // The real/imaginary axis is no transform axis, nor one out of range.
        for axis in [-1, 2, 3, -4] {
            assert!(run_dft(&op20, x.clone(), None, Some(axis)).is_err(), "axis {axis}");
        }
        assert!(run_dft(&op20, x.clone(), Some(0), None).is_err());
        // Opset 17: the attribute; a length-1 axis transforms to itself.
        let op17 = Dft { axis: Some(0), inverse: false, onesided: false };
        let out = run_dft(&op17, x.clone(), None, None).unwrap();
        assert_eq!(out.to_f64_vec(), [1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0]);
        // A last axis other than 1 or 2, and an absurd length, are refused.
        assert!(run_dft(&op20, Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 3]))), None, None).is_err());
        let err = run_dft(&op20, x, Some(1 << 40), None).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }

    #[test]
    fn stft_frames_are_windowed_dfts() {
        let data: Vec<f64> = (0..10).map(|t| t as f64).collect();
        let window = [0.5, 1.0, 0.5, 0.25];
        let out = stft(&data, [1, 10, 1], &window, 3, 3, false);
        assert_eq!(out.len(), 3 * 4 * 2);
        for f in 0..3 {
            let frame: Vec<Complex> = (0..4).map(|t| Complex::new(data[f * 3 + t] * window[t], 0.0)).collect();
            for (k, want) in naive(&frame, -1.0).iter().enumerate() {
                let at = (f * 4 + k) * 2;
                assert!((out[at] - want.re).abs() < 1e-12 && (out[at + 1] - want.im).abs() < 1e-12);
            }
        }
    }
}
