//! The older normalisations that have no learned parameters:
//! LpNormalization, MeanVarianceNormalization and LRN (local response
//! normalisation across channels).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__LpNormalization.html>
//! - <https://onnx.ai/onnx/operators/onnx__MeanVarianceNormalization.html>
//! - <https://onnx.ai/onnx/operators/onnx__LRN.html>
//!
//! | op                        | opset | change                                   |
//! |---------------------------|-------|------------------------------------------|
//! | LpNormalization           | 1     | `axis` (default -1), `p` 1 or 2 (default 2); a zero norm gives 0 |
//! | LpNormalization           | 22    | bfloat16                                 |
//! | MeanVarianceNormalization | 9     | `axes` (default `[0, 2, 3]`)             |
//! | MeanVarianceNormalization | 13    | bfloat16                                 |
//! | LRN                       | 1     | `size` (required), `alpha`, `beta`, `bias` |
//! | LRN                       | 13    | bfloat16                                 |
//!
//! Each computes in float64 whatever the input type (norms, means,
//! variances and window sums serial per lane, lanes in parallel), then
//! rounds once to the input type. MeanVarianceNormalization is
//! `(X - E[X]) / (sqrt(Var[X]) + 1e-9)` over `axes`, as its function body
//! (the epsilon is that body's float32 constant); the variance is taken as
//! `E[(X - E[X])²]`, which equals the body's `E[X²] - E[X]²` exactly in
//! real arithmetic and cannot go negative in floating point.

use ndarray::{ArrayD, IxDyn};

use super::values::{float_array, float_tensor};
use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::tensor::{DType, Tensor};

/// Registers LpNormalization, MeanVarianceNormalization and LRN.
pub fn register(reg: &mut Registry) {
    reg.add("", "LpNormalization", &[1, 22], bf16_from_22, LpNormalization::from_node);
    reg.add("", "MeanVarianceNormalization", &[9, 13], bf16_from_13, MeanVarianceNormalization::from_node);
    reg.add("", "LRN", &[1, 13], bf16_from_13, Lrn::from_node);
}

fn bf16_from_13(version: i64) -> &'static [DType] {
    if version < 13 { FLOATS } else { FLOATS_BF16 }
}

fn bf16_from_22(version: i64) -> &'static [DType] {
    if version < 22 { FLOATS } else { FLOATS_BF16 }
}

/// The load-time check of these one-input ops.
fn check_first(op: &'static str, inputs: &[InferInput<'_>], dtypes: &[DType]) -> Result<(), OpError> {
    match inputs.first().and_then(|input| input.ty) {
        Some(ty) => check_dtype(op, ty.dtype, dtypes),
        None => Ok(()),
    }
}

/// The input checked against `dtypes`, as float64 in row-major order.
fn float_input(
    op: &'static str,
    inputs: &mut Inputs<'_>,
    dtypes: &[DType],
) -> Result<(DType, Vec<usize>, Vec<f64>), OpError> {
    let x = required(inputs, 0, op)?;
    check_dtype(op, x.dtype(), dtypes)?;
    let values = float_array(op, &x)?.iter().copied().collect();
    Ok((x.dtype(), x.shape().to_vec(), values))
}

fn rebuild(op: &'static str, dtype: DType, shape: &[usize], values: Vec<f64>) -> Result<Tensor, OpError> {
    ArrayD::from_shape_vec(IxDyn(shape), values)
        .map(|array| float_tensor(dtype, array))
        .map_err(|err| OpError::Invalid { op, reason: err.to_string() })
}

/// LpNormalization: each lane along `axis` divided by its L1 or L2 norm.
#[derive(Debug, Clone, PartialEq)]
pub struct LpNormalization {
    /// The normalised axis (default -1).
    pub axis: i64,
    /// 1 or 2 (default 2).
    pub p: i64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl LpNormalization {
    /// Reads `axis` and `p`.
    ///
    /// # Errors
    /// `p` other than 1 or 2.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?.unwrap_or(-1);
        let p = attrs.i64("p")?.unwrap_or(2);
        if p != 1 && p != 2 {
            return Err(attrs.error("p", format!("must be 1 or 2, got {p}")));
        }
        Ok(LpNormalization { axis, p, dtypes: bf16_from_22(version) })
    }
}

/// Divides each lane of `data` (`[outer, len, inner]`, row-major; a lane is
/// the `len` elements at stride `inner`) by its L1 (`p` = 1) or L2 norm,
/// in place; a lane whose norm is 0 becomes zeros.
pub fn lp_normalize(ctx: &ExecCtx<'_>, data: &mut [f64], len: usize, inner: usize, p: i64) {
    ctx.par.rows(data, len * inner, |block| {
        for pos in 0..inner {
            let lane = (0..len).map(|idx| block[idx * inner + pos]);
            let norm = if p == 1 { lane.map(f64::abs).sum::<f64>() } else { lane.map(|v| v * v).sum::<f64>().sqrt() };
            for idx in 0..len {
                let value = &mut block[idx * inner + pos];
                *value = if norm == 0.0 { 0.0 } else { *value / norm };
            }
        }
    });
}

impl Op for LpNormalization {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_first("LpNormalization", inputs, self.dtypes)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "LpNormalization";
        let (dtype, shape, mut values) = float_input(OP, inputs, self.dtypes)?;
        let axis = normalize_axis(OP, self.axis, shape.len())?;
        let inner: usize = shape[axis + 1..].iter().product();
        lp_normalize(ctx, &mut values, shape[axis], inner, self.p);
        rebuild(OP, dtype, &shape, values)
    }
}

/// MeanVarianceNormalization over a set of axes.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanVarianceNormalization {
    /// The axes the statistics run over (default `[0, 2, 3]`).
    pub axes: Vec<i64>,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl MeanVarianceNormalization {
    /// Reads `axes`.
    ///
    /// # Errors
    /// `axes` of the wrong type.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axes = attrs.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
        Ok(MeanVarianceNormalization { axes, dtypes: bf16_from_13(version) })
    }
}

/// The float32 epsilon of MeanVarianceNormalization's function body.
const MVN_EPSILON: f32 = 1e-9;

/// Normalises each row of `row_len` elements of `data` in place to
/// `(x - mean) / (std + epsilon)` (population statistics, float64, two
/// passes); rows run in parallel.
pub fn mean_variance_rows(ctx: &ExecCtx<'_>, data: &mut [f64], row_len: usize, epsilon: f64) {
    ctx.par.rows(data, row_len, |row| {
        let n = row.len() as f64;
        let mean = row.iter().sum::<f64>() / n;
        let variance = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let scale = 1.0 / (variance.sqrt() + epsilon);
        row.iter_mut().for_each(|value| *value = (*value - mean) * scale);
    });
}

impl Op for MeanVarianceNormalization {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_first("MeanVarianceNormalization", inputs, self.dtypes)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "MeanVarianceNormalization";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), self.dtypes)?;
        let dtype = x.dtype();
        let rank = x.shape().len();
        let mut reduced = vec![false; rank];
        for &axis in &self.axes {
            let axis = normalize_axis(OP, axis, rank)?;
            if std::mem::replace(&mut reduced[axis], true) {
                return Err(OpError::Invalid { op: OP, reason: format!("axes {:?} repeat axis {axis}", self.axes) });
            }
        }
        // Kept axes first, reduced axes last: each row is one group.
        let perm: Vec<usize> =
            (0..rank).filter(|&axis| !reduced[axis]).chain((0..rank).filter(|&axis| reduced[axis])).collect();
        let row_len: usize = (0..rank).filter(|&axis| reduced[axis]).map(|axis| x.shape()[axis]).product();
        let array = float_array(OP, &x)?.permuted_axes(IxDyn(&perm));
        drop(x);
        let permuted_shape = array.shape().to_vec();
        let mut values: Vec<f64> = array.iter().copied().collect();
        mean_variance_rows(ctx, &mut values, row_len, f64::from(MVN_EPSILON));
        let mut inverse = vec![0; rank];
        for (pos, &axis) in perm.iter().enumerate() {
            inverse[axis] = pos;
        }
        let permuted = ArrayD::from_shape_vec(IxDyn(&permuted_shape), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        let restored = permuted.permuted_axes(IxDyn(&inverse)).as_standard_layout().into_owned();
        Ok(float_tensor(dtype, restored))
    }
}

/// LRN: each element divided by a power of the sum of squares over a
/// window of neighbouring channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Lrn {
    /// The window's channel count.
    pub size: usize,
    /// Scale of the window's mean square (default 0.0001).
    pub alpha: f64,
    /// Exponent (default 0.75).
    pub beta: f64,
    /// Added before the power (default 1).
    pub bias: f64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Lrn {
    /// Reads `size`, `alpha`, `beta` and `bias`.
    ///
    /// # Errors
    /// A missing or non-positive `size`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let size = match attrs.i64("size")? {
            Some(size) if size >= 1 => usize::try_from(size).unwrap_or(usize::MAX),
            Some(size) => return Err(attrs.error("size", format!("must be at least 1, got {size}"))),
            None => return Err(attrs.error("size", "is required")),
        };
        let alpha = f64::from(attrs.f32("alpha")?.unwrap_or(0.0001));
        let beta = f64::from(attrs.f32("beta")?.unwrap_or(0.75));
        let bias = f64::from(attrs.f32("bias")?.unwrap_or(1.0));
        Ok(Lrn { size, alpha, beta, bias, dtypes: bf16_from_13(version) })
    }
}

/// LRN on `data` (`[N, channels, spatial]`, row-major) in place: the window
/// of channel `c` is `c - floor((size - 1) / 2) ..= c + ceil((size - 1) / 2)`,
/// clipped to the channels. Samples run in parallel.
pub fn lrn(ctx: &ExecCtx<'_>, data: &mut [f64], channels: usize, spatial: usize, lrn: &Lrn) {
    let before = (lrn.size - 1) / 2;
    let after = lrn.size / 2;
    let scale = lrn.alpha / lrn.size as f64;
    ctx.par.rows(data, channels * spatial, |sample| {
        let mut column = vec![0.0; channels];
        for pos in 0..spatial {
            for (channel, value) in column.iter_mut().enumerate() {
                *value = sample[channel * spatial + pos];
            }
            for channel in 0..channels {
                let window = channel.saturating_sub(before)..=channel.saturating_add(after).min(channels - 1);
                let square_sum: f64 = column[window].iter().map(|v| v * v).sum();
                sample[channel * spatial + pos] = column[channel] / (lrn.bias + scale * square_sum).powf(lrn.beta);
            }
        }
    });
}

impl Op for Lrn {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_first("LRN", inputs, self.dtypes)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "LRN";
        let (dtype, shape, mut values) = float_input(OP, inputs, self.dtypes)?;
        let channels = match shape.as_slice() {
            [_, channels, _, ..] => *channels,
            _ => {
                return Err(OpError::Invalid {
                    op: OP,
                    reason: format!("input of shape {shape:?} must be [N, C, D1, …] (rank >= 3)"),
                });
            }
        };
        if channels > 0 {
            lrn(ctx, &mut values, channels, shape[2..].iter().product(), self);
        }
        rebuild(OP, dtype, &shape, values)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn, array};

    use super::*;
    use crate::kernels::Parallel;

    fn run_on(op: &dyn Op, x: Tensor, par: &Parallel) -> Result<Tensor, OpError> {
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        op.run(&mut [Some(Cow::Owned(x))], &ctx)
    }

    fn run(op: &dyn Op, x: Tensor) -> Result<Tensor, OpError> {
        run_on(op, x, &Parallel::serial())
    }

    fn close(got: &Tensor, expected: &[f64], tol: f64) {
        let got = got.to_f64_vec();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() <= tol, "{got:?} vs {expected:?}");
        }
    }

    fn sample(shape: &[usize]) -> ArrayD<f64> {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5).collect()).unwrap()
    }

    #[test]
    fn lp_normalization_l1_l2_and_zero_lanes() {
        let l2 = LpNormalization { axis: 0, p: 2, dtypes: FLOATS };
        // Columns (3, 4), (0, 0), (-6, 8): norms 5, 0, 10.
        let x = Tensor::from(array![[3.0f32, 0.0, -6.0], [4.0, 0.0, 8.0]]);
        close(&run(&l2, x.clone()).unwrap(), &[0.6, 0.0, -0.6, 0.8, 0.0, 0.8], 1e-7);
        let l1 = LpNormalization { axis: -1, p: 1, dtypes: FLOATS };
        // Rows: |3| + 0 + |-6| = 9, 4 + 0 + 8 = 12.
        close(&run(&l1, x).unwrap(), &[3.0 / 9.0, 0.0, -6.0 / 9.0, 4.0 / 12.0, 0.0, 8.0 / 12.0], 1e-7);
        let err = run(&l1, Tensor::from(array![1i64, 2])).unwrap_err();
        assert_eq!(err, OpError::UnsupportedDtype { op: "LpNormalization", dtype: DType::I64 });
        let wide = LpNormalization { axis: 2, p: 2, dtypes: FLOATS };
        assert!(run(&wide, Tensor::from(array![[1.0f32]])).is_err());
    }

    #[test]
    fn mean_variance_normalization_matches_its_function_body() {
        // [N = 2, C = 3, H = 2, W = 2], statistics per channel over N, H, W:
        // (x - E[x]) / (sqrt(E[x²] - E[x]²) + 1e-9), in float64.
        let x = sample(&[2, 3, 2, 2]);
        let mut expected = x.clone();
        for c in 0..3 {
            let lane: Vec<f64> = x.indexed_iter().filter(|(index, _)| index[1] == c).map(|(_, &v)| v).collect();
            let mean = lane.iter().sum::<f64>() / 8.0;
            let mean_sq = lane.iter().map(|v| v * v).sum::<f64>() / 8.0;
            let std = (mean_sq - mean * mean).sqrt();
            for (index, value) in expected.indexed_iter_mut() {
                if index[1] == c {
                    *value = (x[&index] - mean) / (std + f64::from(1e-9f32));
                }
            }
        }
        let op = MeanVarianceNormalization { axes: vec![0, 2, 3], dtypes: FLOATS };
        let got = run(&op, Tensor::from(x.clone())).unwrap();
        close(&got, expected.as_slice().unwrap(), 1e-12);
        // The same axes counted from the end.
        let negative = MeanVarianceNormalization { axes: vec![-1, 0, -2], dtypes: FLOATS };
        assert_eq!(run(&negative, Tensor::from(x.clone())).unwrap(), got);
        let repeated = MeanVarianceNormalization { axes: vec![0, 2, -2], dtypes: FLOATS };
        assert!(run(&repeated, Tensor::from(x.clone())).unwrap_err().to_string().contains("repeat axis 2"));
        let default_on_3d = MeanVarianceNormalization { axes: vec![0, 2, 3], dtypes: FLOATS };
        assert!(matches!(run(&default_on_3d, Tensor::from(sample(&[2, 3, 4]))), Err(OpError::AxisOutOfRange { .. })));
    }

    #[test]
    fn lrn_sums_squares_over_the_channel_window() {
        // The spec's window for channel c: max(0, c - floor((size - 1) / 2))
        // ..= min(C - 1, c + ceil((size - 1) / 2)), written out here.
        for size in [1usize, 2, 3, 4] {
            let x = sample(&[2, 5, 3]);
            let (alpha, beta, bias) = (0.3, 0.75, 2.0);
            let expected = ArrayD::from_shape_fn(IxDyn(&[2, 5, 3]), |index| {
                let (n, c, s) = (index[0], index[1], index[2]);
                let low = c.saturating_sub((size - 1) / 2);
                let high = (c + (size - 1).div_ceil(2)).min(4);
                let square_sum: f64 = (low..=high).map(|i| x[[n, i, s]] * x[[n, i, s]]).sum();
                x[[n, c, s]] / (bias + alpha / size as f64 * square_sum).powf(beta)
            });
            let op = Lrn { size, alpha, beta, bias, dtypes: FLOATS };
            close(&run(&op, Tensor::from(x)).unwrap(), expected.as_slice().unwrap(), 1e-15);
        }
        let op = Lrn { size: 3, alpha: 1e-4, beta: 0.75, bias: 1.0, dtypes: FLOATS };
        assert!(run(&op, Tensor::from(array![[1.0f32, 2.0]])).unwrap_err().to_string().contains("rank >= 3"));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x = Tensor::from(sample(&[8, 16, 64, 64]).mapv(|v| v as f32));
        let ops: Vec<Box<dyn Op>> = vec![
            Box::new(LpNormalization { axis: 1, p: 2, dtypes: FLOATS }),
            Box::new(MeanVarianceNormalization { axes: vec![0, 2, 3], dtypes: FLOATS }),
            Box::new(Lrn { size: 5, alpha: 1e-4, beta: 0.75, bias: 1.0, dtypes: FLOATS }),
        ];
        for op in ops {
            let serial = run(op.as_ref(), x.clone()).unwrap();
            let par = Parallel::with_threads(4).unwrap();
            assert_eq!(run_on(op.as_ref(), x.clone(), &par).unwrap(), serial, "{op:?}");
        }
    }
}
