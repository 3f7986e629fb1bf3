//! Signal-processing generators: the window functions HannWindow,
//! HammingWindow and BlackmanWindow, and MelWeightMatrix (the triangular
//! filter bank that maps a linear spectrum onto mel bins).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__HannWindow.html>
//! - <https://onnx.ai/onnx/operators/onnx__HammingWindow.html>
//! - <https://onnx.ai/onnx/operators/onnx__BlackmanWindow.html>
//! - <https://onnx.ai/onnx/operators/onnx__MelWeightMatrix.html>
//!
//! | op              | opset | behaviour                                          |
//! |-----------------|-------|----------------------------------------------------|
//! | HannWindow      | 17    | `size` (int32/int64 scalar), `periodic` (default 1), `output_datatype` (default float) |
//! | HammingWindow   | 17    | as HannWindow; `a0 = 25/46`, `a1 = 1 - a0`          |
//! | BlackmanWindow  | 17    | as HannWindow; `0.42 - 0.5·cos(2πn/N) + 0.08·cos(4πn/N)` |
//! | MelWeightMatrix | 17    | five scalar inputs, `output_datatype` (default float) |
//!
//! Every window is `a0 - a1·cos(2πn/N) + a2·cos(4πn/N)` for `n` in
//! `0..size`, with `N = size` when periodic and `size - 1` when symmetric
//! (the schemas' function bodies). Values are computed in float64 and
//! rounded once to `output_datatype`; an integer type truncates toward
//! zero, as the bodies' final Cast does. The output size comes from a
//! run-time value, so it is checked against the model's tensor size limit
//! before anything is allocated.

use ndarray::{Array1, Array2};

use super::values::{by_dtype, float_array, int_values};
use super::{ExecCtx, Inputs, Op, Registry, check_input_type, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Tensor};

/// The `output_datatype` types the schemas list (T2/T3): every number type.
const OUTPUT_TYPES: &[DType] = super::NUMBERS_BF16;
/// The integer types of `size`, `num_mel_bins`, `dft_length` and `sample_rate`.
const INT_INPUTS: &[DType] = &[DType::I32, DType::I64];
/// The float types of MelWeightMatrix's edge frequencies.
const EDGE_TYPES: &[DType] = super::FLOATS_BF16;

/// Registers the three windows and MelWeightMatrix.
pub fn register(reg: &mut Registry) {
    reg.add("", "HannWindow", &[17], output_types, Window::hann);
    reg.add("", "HammingWindow", &[17], output_types, Window::hamming);
    reg.add("", "BlackmanWindow", &[17], output_types, Window::blackman);
    reg.add("", "MelWeightMatrix", &[17], output_types, MelWeightMatrix::from_node);
}

fn output_types(_version: i64) -> &'static [DType] {
    OUTPUT_TYPES
}

/// Reads `output_datatype` (default 1, float32), refusing a code outside
/// the schema's list.
fn output_datatype(attrs: &mut Attrs<'_>) -> Result<DType, LoadError> {
    let code = attrs.i64("output_datatype")?.unwrap_or(1);
    match i32::try_from(code).ok().and_then(DType::from_onnx_code) {
        Some(dtype) if OUTPUT_TYPES.contains(&dtype) => Ok(dtype),
        _ => Err(attrs.error("output_datatype", format!("{code} is not a number type the schema lists"))),
    }
}

/// The single value of an int32/int64 scalar input.
fn int_scalar(op: &'static str, what: &str, tensor: &Tensor) -> Result<i64, OpError> {
    match int_values(op, what, tensor)?.as_slice() {
        [value] => Ok(*value),
        values => Err(OpError::Invalid { op, reason: format!("{what} must hold one value, holds {}", values.len()) }),
    }
}

/// Rounds float64 values once to `dtype` (integers truncate toward zero
/// and saturate, NaN becomes 0).
fn to_dtype_1d(op: &'static str, dtype: DType, values: Vec<f64>) -> Result<Tensor, OpError> {
    by_dtype!(op, dtype, T => Ok(Tensor::from(Array1::from_iter(values.into_iter().map(T::from_f64)))))
}

/// One of the cosine-sum windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// The op's name, for errors.
    pub name: &'static str,
    /// `a0, a1, a2` of `a0 - a1·cos(2πn/N) + a2·cos(4πn/N)`.
    pub coefficients: [f64; 3],
    /// `N = size` (true, the default) or `size - 1`.
    pub periodic: bool,
    /// The output's element type.
    pub dtype: DType,
}

impl Window {
    fn from_node(attrs: &mut Attrs<'_>, name: &'static str, coefficients: [f64; 3]) -> Result<Self, LoadError> {
        let periodic = match attrs.i64("periodic")?.unwrap_or(1) {
            0 => false,
            1 => true,
            other => return Err(attrs.error("periodic", format!("must be 0 or 1, got {other}"))),
        };
        let dtype = output_datatype(attrs)?;
        Ok(Window { name, coefficients, periodic, dtype })
    }

    /// HannWindow: `sin²(πn/N)`, i.e. `0.5 - 0.5·cos(2πn/N)`.
    ///
    /// # Errors
    /// `periodic` other than 0 or 1, or an `output_datatype` outside the schema.
    pub fn hann(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Window::from_node(attrs, "HannWindow", [0.5, 0.5, 0.0])
    }

    /// HammingWindow: `25/46 - (1 - 25/46)·cos(2πn/N)`.
    ///
    /// # Errors
    /// `periodic` other than 0 or 1, or an `output_datatype` outside the schema.
    pub fn hamming(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Window::from_node(attrs, "HammingWindow", [25.0 / 46.0, 1.0 - 25.0 / 46.0, 0.0])
    }

    /// BlackmanWindow: `0.42 - 0.5·cos(2πn/N) + 0.08·cos(4πn/N)`.
    ///
    /// # Errors
    /// `periodic` other than 0 or 1, or an `output_datatype` outside the schema.
    pub fn blackman(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Window::from_node(attrs, "BlackmanWindow", [0.42, 0.5, 0.08])
    }
}

/// The window values in float64: `a0 - a1·cos(2πn/N) + a2·cos(4πn/N)` for
/// `n` in `0..size`, `N` being `size` when `periodic`, else `size - 1` (a
/// symmetric window of one element divides 0 by 0, as the schema's body
/// does, and gives NaN).
pub fn cosine_window(size: usize, periodic: bool, [a0, a1, a2]: [f64; 3]) -> Vec<f64> {
    let denominator = if periodic { size as f64 } else { size as f64 - 1.0 };
    (0..size)
        .map(|n| {
            let angle = std::f64::consts::TAU * n as f64 / denominator;
            // The ONNX reference's order: an exact peak of 1 (the Blackman
            // centre, 0.5 + 0.08 + 0.42) stays 1 and truncates to 1 in an
            // integer output, where `0.42 + 0.5 + 0.08` would give 0.99….
            (a2 * (2.0 * angle).cos() - a1 * angle.cos()) + a0
        })
        .collect()
}

impl Op for Window {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type(self.name, inputs, 0, INT_INPUTS)
    }

    fn infer(&self, _inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![Some(ValueType { dtype: self.dtype, dims: Some(vec![Dim::Any]) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let size = int_scalar(self.name, "size", required(inputs, 0, self.name)?.as_ref())?;
        let size = usize::try_from(size)
            .map_err(|_| OpError::Invalid { op: self.name, reason: format!("size {size} is negative") })?;
        ctx.checked_elems(self.name, self.dtype, &[size])?;
        to_dtype_1d(self.name, self.dtype, cosine_window(size, self.periodic, self.coefficients))
    }
}

/// MelWeightMatrix: a `[dft_length / 2 + 1, num_mel_bins]` matrix of
/// triangular filters with peak 1, evenly spaced on the mel scale.
#[derive(Debug, Clone, PartialEq)]
pub struct MelWeightMatrix {
    /// The output's element type.
    pub dtype: DType,
}

impl MelWeightMatrix {
    /// Reads `output_datatype`.
    ///
    /// # Errors
    /// An `output_datatype` outside the schema's list.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(MelWeightMatrix { dtype: output_datatype(attrs)? })
    }
}

/// `mel(f) = 2595·log10(1 + f/700)`.
fn hertz_to_mel(hertz: f64) -> f64 {
    2595.0 * (hertz / 700.0).ln_1p() / std::f64::consts::LN_10
}

/// The inverse of [`hertz_to_mel`].
fn mel_to_hertz(mel: f64) -> f64 {
    700.0 * (mel / 2595.0 * std::f64::consts::LN_10).exp_m1()
}

/// The mel filter bank in float64, `[dft_length / 2 + 1][num_mel_bins]` in
/// row-major order: `num_mel_bins + 2` points evenly spaced in mel from
/// `lower_hz` (the step is the mel span over `num_mel_bins + 2`, as the
/// ONNX reference has it), each mapped to the spectrogram bin
/// `floor((dft_length + 1)·f / sample_rate)`; filter `i` rises linearly from
/// point `i` to 1 at point `i + 1` and falls to 0 at point `i + 2`.
///
/// # Errors
/// [`OpError::Invalid`] when a point falls outside the spectrogram bins
/// (an edge frequency below 0 or above the Nyquist frequency), or a
/// non-positive `sample_rate`.
pub fn mel_weight_matrix(
    num_mel_bins: usize,
    dft_length: usize,
    sample_rate: i64,
    lower_hz: f64,
    upper_hz: f64,
) -> Result<Vec<f64>, OpError> {
    const OP: &str = "MelWeightMatrix";
    if sample_rate <= 0 {
        return Err(OpError::Invalid { op: OP, reason: format!("sample_rate {sample_rate} is not positive") });
    }
    let n_bins = dft_length / 2 + 1;
    let (low_mel, high_mel) = (hertz_to_mel(lower_hz), hertz_to_mel(upper_hz));
    let n_points = num_mel_bins + 2;
    let step = (high_mel - low_mel) / n_points as f64;
    let mut points = Vec::with_capacity(n_points);
    for index in 0..n_points {
        let hertz = mel_to_hertz(index as f64 * step + low_mel);
        let bin = ((dft_length as f64 + 1.0) * hertz / sample_rate as f64).floor();
        if !(0.0..n_bins as f64).contains(&bin) {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!(
                    "edge frequencies {lower_hz}..{upper_hz} Hz put a filter point at bin {bin}, outside the {n_bins} spectrogram bins"
                ),
            });
        }
        points.push(bin as usize);
    }
    let mut out = vec![0.0; n_bins * num_mel_bins];
    for mel in 0..num_mel_bins {
        let (left, center, right) = (points[mel], points[mel + 1], points[mel + 2]);
        if center == left {
            out[center * num_mel_bins + mel] = 1.0;
        } else {
            for bin in left..=center {
                out[bin * num_mel_bins + mel] = (bin - left) as f64 / (center - left) as f64;
            }
        }
        for bin in center..right {
            out[bin * num_mel_bins + mel] = (right - bin) as f64 / (right - center) as f64;
        }
    }
    Ok(out)
}

impl Op for MelWeightMatrix {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        5..=5
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        for index in 0..3 {
            check_input_type("MelWeightMatrix", inputs, index, INT_INPUTS)?;
        }
        check_input_type("MelWeightMatrix", inputs, 3, EDGE_TYPES)?;
        check_input_type("MelWeightMatrix", inputs, 4, EDGE_TYPES)
    }

    fn infer(&self, _inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![Some(ValueType { dtype: self.dtype, dims: Some(vec![Dim::Any, Dim::Any]) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "MelWeightMatrix";
        let mut ints = [0i64; 3];
        for (index, what) in ["num_mel_bins", "dft_length", "sample_rate"].into_iter().enumerate() {
            ints[index] = int_scalar(OP, what, required(inputs, index, OP)?.as_ref())?;
        }
        let [num_mel_bins, dft_length, sample_rate] = ints;
        let mut edges = [0f64; 2];
        for (slot, (index, what)) in edges.iter_mut().zip([(3, "lower_edge_hertz"), (4, "upper_edge_hertz")]) {
            let tensor = required(inputs, index, OP)?;
            let values = float_array(OP, &tensor)?;
            *slot = match values.as_slice() {
                Some([value]) => *value,
                _ => {
                    return Err(OpError::Invalid {
                        op: OP,
                        reason: format!("{what} must hold one value, got shape {:?}", tensor.shape()),
                    });
                }
            };
        }
        let count = |what: &str, value: i64| {
            usize::try_from(value)
                .map_err(|_| OpError::Invalid { op: OP, reason: format!("{what} {value} is negative") })
        };
        let (num_mel_bins, dft_length) = (count("num_mel_bins", num_mel_bins)?, count("dft_length", dft_length)?);
        let shape = [dft_length / 2 + 1, num_mel_bins];
        ctx.checked_elems(OP, self.dtype, &shape)?;
        let values = mel_weight_matrix(num_mel_bins, dft_length, sample_rate, edges[0], edges[1])?;
        by_dtype!(OP, self.dtype, T => {
            let converted: Vec<T> = values.into_iter().map(T::from_f64).collect();
            Array2::from_shape_vec(shape, converted)
                .map(|array| Tensor::from(array.into_dyn()))
                .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::arr0;

    use super::*;
    use crate::kernels::Parallel;

    fn with_ctx<R>(f: impl FnOnce(&ExecCtx<'_>) -> R) -> R {
        let par = Parallel::serial();
        f(&ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 })
    }

    fn run_window(window: &Window, size: Tensor) -> Result<Tensor, OpError> {
        with_ctx(|ctx| window.run(&mut [Some(std::borrow::Cow::Owned(size))], ctx))
    }

    #[test]
    fn windows_match_their_textbook_formulas() {
        // Independent forms: Hann as sin², Hamming with the classic 0.54
        // rounded to the schema's 25/46, Blackman term by term.
        let pi = std::f64::consts::PI;
        for (periodic, n_den) in [(true, 10.0), (false, 9.0)] {
            let hann = cosine_window(10, periodic, [0.5, 0.5, 0.0]);
            let hamming = cosine_window(10, periodic, [25.0 / 46.0, 1.0 - 25.0 / 46.0, 0.0]);
            let blackman = cosine_window(10, periodic, [0.42, 0.5, 0.08]);
            for n in 0..10 {
                let x = n as f64;
                assert!((hann[n] - (pi * x / n_den).sin().powi(2)).abs() < 1e-15);
                let expected = 0.543_478_260_869_565_2 - 0.456_521_739_130_434_8 * (2.0 * pi * x / n_den).cos();
                assert!((hamming[n] - expected).abs() < 1e-15);
                let expected = 0.42 - 0.5 * (2.0 * pi * x / n_den).cos() + 0.08 * (4.0 * pi * x / n_den).cos();
                assert!((blackman[n] - expected).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn window_op_rounds_to_the_output_type_and_checks_its_input() {
        let hann = Window { name: "HannWindow", coefficients: [0.5, 0.5, 0.0], periodic: false, dtype: DType::F64 };
        let out = run_window(&hann, Tensor::from(arr0(5i32))).unwrap();
        let expected = [0.0, 0.5, 1.0, 0.5, 0.0];
        for (got, want) in out.to_f64_vec().iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        // An integer output truncates: only the peak reaches 1.
        let ints = Window { dtype: DType::I64, ..hann.clone() };
        assert_eq!(run_window(&ints, Tensor::from(arr0(5i64))).unwrap().to_f64_vec(), [0.0, 0.0, 1.0, 0.0, 0.0]);
        // The symmetric Blackman peak is exactly 1, so it truncates to 1.
        let blackman = Window { name: "BlackmanWindow", coefficients: [0.42, 0.5, 0.08], ..ints.clone() };
        assert_eq!(run_window(&blackman, Tensor::from(arr0(9i32))).unwrap().to_f64_vec()[4], 1.0);
        assert!(run_window(&hann, Tensor::from(arr0(0i64))).unwrap().is_empty());
        let err = run_window(&hann, Tensor::from(arr0(-3i64))).unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        let err = run_window(&hann, Tensor::from(arr0(1i64 << 40))).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
        assert!(run_window(&hann, Tensor::from(arr0(5.0f32))).is_err());
    }

    #[test]
    fn mel_filters_are_triangles_with_peak_one() {
        // The points by hand for 2 bins over 0..4000 Hz, dft 16, 8 kHz:
        // mel(4000) = 2146.06…; step = 536.5…; points at mel 0, 536.5,
        // 1073.0, 1609.5 → 0, 427, 1114, 2220 Hz → bins
        // floor(17·f/8000) = 0, 0, 2, 4 (the ONNX reference agrees).
        let pts_hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
        let mel_top = 2595.0 * (1.0 + 4000.0 / 700.0f64).log10();
        let bins: Vec<usize> =
            (0..4).map(|i| (17.0 * pts_hz(i as f64 * mel_top / 4.0) / 8000.0).floor() as usize).collect();
        assert_eq!(bins, [0, 0, 2, 4]);
        let out = mel_weight_matrix(2, 16, 8000, 0.0, 4000.0).unwrap();
        assert_eq!(out.len(), 9 * 2);
        // Filter 0: left == center == 0 → peak at 0, falls to 0 at bin 2.
        let col = |m: usize| (0..9).map(|b| out[b * 2 + m]).collect::<Vec<_>>();
        assert_eq!(col(0), [1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(1), [0.0, 0.5, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let err = mel_weight_matrix(2, 16, 8000, 0.0, 40_000.0).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(mel_weight_matrix(2, 16, 0, 0.0, 4000.0).is_err());
    }
}
