//! Normalisation for inference: BatchNormalization (running statistics),
//! InstanceNormalization, LayerNormalization and GroupNormalization.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__BatchNormalization.html>
//! - <https://onnx.ai/onnx/operators/onnx__InstanceNormalization.html>
//! - <https://onnx.ai/onnx/operators/onnx__LayerNormalization.html>
//! - <https://onnx.ai/onnx/operators/onnx__GroupNormalization.html>
//!
//! | op                    | opset | change                                            |
//! |-----------------------|-------|---------------------------------------------------|
//! | BatchNormalization    | 1, 6  | `is_test`, `spatial` (0: statistics per element)  |
//! | BatchNormalization    | 7     | `is_test` removed                                 |
//! | BatchNormalization    | 9     | `spatial` removed (always per channel)            |
//! | BatchNormalization    | 14    | `training_mode`; bfloat16                         |
//! | BatchNormalization    | 15    | scale/bias and mean/var may have other float types|
//! | InstanceNormalization | 1, 6  | (`consumed_inputs` at 1)                          |
//! | InstanceNormalization | 22    | bfloat16                                          |
//! | LayerNormalization    | 17    | first version; optional Mean and InvStdDev        |
//! | GroupNormalization    | 18    | scale and bias per group                          |
//! | GroupNormalization    | 21    | scale and bias per channel; `stash_type`          |
//!
//! Statistics and the affine step are computed in float64 whatever the
//! input type (at least as precise as the `stash_type` float32 the spec
//! asks for), then rounded once to the output type. BatchNormalization in
//! training mode (`training_mode` = 1, or the running-statistics outputs
//! of opsets before 14) is refused: onnxi runs inference.

use ndarray::{ArrayD, IxDyn};

use super::values::{float_array, float_tensor};
use super::{
    ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, OutputSet, Registry, check_dtype, first_output, normalize_axis, required,
};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::tensor::{DType, Tensor};

/// Registers BatchNormalization, InstanceNormalization, LayerNormalization
/// and GroupNormalization.
pub fn register(reg: &mut Registry) {
    reg.add("", "BatchNormalization", &[1, 6, 7, 9, 14, 15], bf16_from_14, BatchNormalization::from_node);
    reg.add("", "InstanceNormalization", &[1, 6, 22], bf16_from_22, InstanceNormalization::from_node);
    reg.add("", "LayerNormalization", &[17], bf16_from_14, LayerNormalization::from_node);
    reg.add("", "GroupNormalization", &[18, 21], bf16_from_14, GroupNormalization::from_node);
}

fn bf16_from_14(version: i64) -> &'static [DType] {
    if version < 14 { FLOATS } else { FLOATS_BF16 }
}

fn bf16_from_22(version: i64) -> &'static [DType] {
    if version < 22 { FLOATS } else { FLOATS_BF16 }
}

fn epsilon(attrs: &mut Attrs<'_>) -> Result<f64, LoadError> {
    let epsilon = attrs.f32("epsilon")?.unwrap_or(1e-5);
    if !(epsilon >= 0.0 && epsilon.is_finite()) {
        return Err(attrs.error("epsilon", format!("must be a non-negative number, got {epsilon}")));
    }
    Ok(f64::from(epsilon))
}

/// Reads `stash_type`, accepting only 1 (float32), the default.
fn stash_type(attrs: &mut Attrs<'_>) -> Result<(), LoadError> {
    match attrs.i64("stash_type")?.unwrap_or(1) {
        1 => Ok(()),
        other => Err(attrs.error("stash_type", format!("only 1 (float) is supported, got {other}"))),
    }
}

/// A float input as float64, checked to have `len` elements.
fn param(op: &'static str, inputs: &mut Inputs<'_>, index: usize, what: &str, len: usize) -> Result<Vec<f64>, OpError> {
    let tensor = required(inputs, index, op)?;
    let values = float_array(op, &tensor)?;
    if values.len() != len {
        return Err(OpError::Invalid {
            op,
            reason: format!("{what} has shape {:?}, expected {len} elements", tensor.shape()),
        });
    }
    Ok(values.iter().copied().collect())
}

/// Mean and 1/sqrt(variance + epsilon) of a row (two passes, float64).
fn row_stats(row: &[f64], epsilon: f64) -> (f64, f64) {
    let n = row.len().max(1) as f64;
    let mean = row.iter().sum::<f64>() / n;
    let variance = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, 1.0 / (variance + epsilon).sqrt())
}

/// Normalises, in place, each row of `inner` contiguous elements of `data`
/// and applies `affine(row, position)` → `(scale, bias)`; rows run in
/// parallel (each row's sums stay serial, so results do not depend on the
/// thread count). Returns each row's mean and inverse standard deviation.
fn normalize_rows(
    ctx: &ExecCtx<'_>,
    data: &mut [f64],
    inner: usize,
    epsilon: f64,
    affine: impl Fn(usize, usize) -> (f64, f64) + Sync + Send,
) -> Vec<(f64, f64)> {
    if inner == 0 {
        return Vec::new();
    }
    ctx.par.map_row_blocks(data, inner, inner, |row_idx, row| {
        let (mean, inv_std) = row_stats(row, epsilon);
        for (pos, value) in row.iter_mut().enumerate() {
            let (scale, bias) = affine(row_idx, pos);
            *value = (*value - mean) * inv_std * scale + bias;
        }
        (mean, inv_std)
    })
}

/// The input's elements in row-major order as float64 (its dtype was checked).
fn contiguous(x: &Tensor) -> Vec<f64> {
    x.to_f64_vec()
}

fn rebuild(op: &'static str, dtype: DType, shape: &[usize], values: Vec<f64>) -> Result<Tensor, OpError> {
    ArrayD::from_shape_vec(IxDyn(shape), values)
        .map(|array| float_tensor(dtype, array))
        .map_err(|err| OpError::Invalid { op, reason: err.to_string() })
}

/// The input's channel count (axis 1), refusing ranks below 2.
fn channels(op: &'static str, shape: &[usize]) -> Result<usize, OpError> {
    match shape {
        [_, channels, ..] => Ok(*channels),
        _ => Err(OpError::Invalid { op, reason: format!("input of shape {shape:?} has no channel axis (rank < 2)") }),
    }
}

/// BatchNormalization with running statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormalization {
    /// Added to the variance.
    pub epsilon: f64,
    /// Opsets 1 and 6 with `spatial` = 0: statistics per element of a
    /// sample (shape `[C, D1, …]`), not per channel.
    pub per_element: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl BatchNormalization {
    /// Reads `epsilon`, `momentum`, and the version's mode attributes.
    ///
    /// # Errors
    /// `training_mode` = 1, or an invalid epsilon.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let epsilon = epsilon(attrs)?;
        // Momentum only updates running statistics in training.
        attrs.f32("momentum")?;
        if version < 6 {
            attrs.ints("consumed_inputs")?;
        }
        if version < 7 {
            // is_test = 0 with the single output Y is the same computation.
            attrs.i64("is_test")?;
        }
        let per_element = version < 9 && attrs.i64("spatial")?.unwrap_or(1) == 0;
        if version >= 14 && attrs.i64("training_mode")?.unwrap_or(0) != 0 {
            return Err(attrs.error("training_mode", "training mode is not supported (onnxi runs inference)"));
        }
        Ok(BatchNormalization { epsilon, per_element, dtypes: bf16_from_14(version) })
    }
}

impl Op for BatchNormalization {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        5..=5
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "BatchNormalization";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), self.dtypes)?;
        let shape = x.shape().to_vec();
        let n_channels = channels(OP, &shape)?;
        let spatial: usize = shape[2..].iter().product();
        let n_params = if self.per_element { n_channels * spatial } else { n_channels };
        let scale = param(OP, inputs, 1, "scale", n_params)?;
        let bias = param(OP, inputs, 2, "B", n_params)?;
        let mean = param(OP, inputs, 3, "mean", n_params)?;
        let var = param(OP, inputs, 4, "var", n_params)?;
        let factors: Vec<(f64, f64)> = (0..n_params)
            .map(|idx| {
                let a = scale[idx] / (var[idx] + self.epsilon).sqrt();
                (a, bias[idx] - mean[idx] * a)
            })
            .collect();
        let mut values = contiguous(&x);
        // Rows of one channel's positions (or, per element, of a whole sample).
        let row_len = if self.per_element { n_params } else { spatial };
        if row_len > 0 {
            ctx.par.for_row_blocks(&mut values, row_len, row_len, |row_idx, row| {
                for (pos, value) in row.iter_mut().enumerate() {
                    let (a, b) = if self.per_element { factors[pos] } else { factors[row_idx % n_channels] };
                    *value = *value * a + b;
                }
            });
        }
        rebuild(OP, x.dtype(), &shape, values)
    }
}

/// InstanceNormalization: each channel of each sample normalised over its
/// spatial positions.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceNormalization {
    /// Added to the variance.
    pub epsilon: f64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl InstanceNormalization {
    /// Reads `epsilon`.
    ///
    /// # Errors
    /// An invalid epsilon.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 6 {
            attrs.ints("consumed_inputs")?;
        }
        Ok(InstanceNormalization { epsilon: epsilon(attrs)?, dtypes: bf16_from_22(version) })
    }
}

impl Op for InstanceNormalization {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "InstanceNormalization";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), self.dtypes)?;
        let shape = x.shape().to_vec();
        let n_channels = channels(OP, &shape)?;
        let scale = param(OP, inputs, 1, "scale", n_channels)?;
        let bias = param(OP, inputs, 2, "B", n_channels)?;
        let spatial: usize = shape[2..].iter().product();
        let mut values = contiguous(&x);
        normalize_rows(ctx, &mut values, spatial, self.epsilon, |row, _| {
            let channel = row % n_channels;
            (scale[channel], bias[channel])
        });
        rebuild(OP, x.dtype(), &shape, values)
    }
}

/// LayerNormalization over the axes from `axis` to the last.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormalization {
    /// First normalised axis (default -1).
    pub axis: i64,
    /// Added to the variance.
    pub epsilon: f64,
}

impl LayerNormalization {
    /// Reads `axis`, `epsilon` and `stash_type`.
    ///
    /// # Errors
    /// An invalid epsilon, or a `stash_type` other than 1.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?.unwrap_or(-1);
        stash_type(attrs)?;
        Ok(LayerNormalization { axis, epsilon: epsilon(attrs)? })
    }
}

/// The dtype of LayerNormalization's Mean and InvStdDev (`U`, float32 with
/// the default `stash_type`).
const STATS_DTYPE: DType = DType::F32;

/// A scale or bias broadcast (numpy rules, from the right) to `target`
/// dims, as a flat list over them.
fn broadcast_param(op: &'static str, what: &str, tensor: &Tensor, target: &[usize]) -> Result<Vec<f64>, OpError> {
    let values = float_array(op, tensor)?;
    let view = values.broadcast(IxDyn(target)).ok_or_else(|| OpError::Invalid {
        op,
        reason: format!("{what} of shape {:?} does not broadcast to the normalised dims {target:?}", tensor.shape()),
    })?;
    Ok(view.iter().copied().collect())
}

impl Op for LayerNormalization {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=3
    }

    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let stats_dims = ty.dims.as_ref().and_then(|dims| {
            let axis = normalize_axis("LayerNormalization", self.axis, dims.len()).ok()?;
            Some(
                dims.iter()
                    .enumerate()
                    .map(|(idx, dim)| if idx < axis { dim.clone() } else { Dim::Fixed(1) })
                    .collect(),
            )
        });
        let stats = ValueType { dtype: STATS_DTYPE, dims: stats_dims };
        [Some(ty.clone()), Some(stats.clone()), Some(stats)].into_iter().take(n_outputs).collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "LayerNormalization")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        const OP: &str = "LayerNormalization";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), FLOATS_BF16)?;
        let shape = x.shape().to_vec();
        let axis = normalize_axis(OP, self.axis, shape.len())?;
        let inner_dims = &shape[axis..];
        let inner: usize = inner_dims.iter().product();
        let scale = broadcast_param(OP, "Scale", required(inputs, 1, OP)?.as_ref(), inner_dims)?;
        let bias = match inputs.get_mut(2).and_then(Option::take) {
            Some(bias) => broadcast_param(OP, "B", &bias, inner_dims)?,
            None => vec![0.0; inner],
        };
        let mut values = contiguous(&x);
        let stats = normalize_rows(ctx, &mut values, inner, self.epsilon, |_, pos| (scale[pos], bias[pos]));
        let (means, inv_stds): (Vec<f64>, Vec<f64>) = stats.into_iter().unzip();
        let stats_shape: Vec<usize> =
            shape.iter().enumerate().map(|(idx, &dim)| if idx < axis { dim } else { 1 }).collect();
        if outputs.wanted(1) {
            outputs.set(1, rebuild(OP, STATS_DTYPE, &stats_shape, means)?);
        }
        if outputs.wanted(2) {
            outputs.set(2, rebuild(OP, STATS_DTYPE, &stats_shape, inv_stds)?);
        }
        outputs.set(0, rebuild(OP, x.dtype(), &shape, values)?);
        Ok(())
    }
}

/// GroupNormalization: the channels of each sample split into groups, each
/// normalised over its channels and spatial positions.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNormalization {
    /// Number of groups (divides the channel count).
    pub num_groups: usize,
    /// Added to the variance.
    pub epsilon: f64,
    /// Opset 18: scale and bias have one value per group (21: per channel).
    pub per_group_affine: bool,
}

impl GroupNormalization {
    /// Reads `num_groups`, `epsilon` and (21) `stash_type`.
    ///
    /// # Errors
    /// A missing or non-positive `num_groups`, an invalid epsilon, or a
    /// `stash_type` other than 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let num_groups = match attrs.i64("num_groups")? {
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => return Err(attrs.error("num_groups", format!("must be at least 1, got {n}"))),
            None => return Err(attrs.error("num_groups", "is required")),
        };
        if version >= 21 {
            stash_type(attrs)?;
        }
        Ok(GroupNormalization { num_groups, epsilon: epsilon(attrs)?, per_group_affine: version < 21 })
    }
}

impl Op for GroupNormalization {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "GroupNormalization";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), FLOATS_BF16)?;
        let shape = x.shape().to_vec();
        let n_channels = channels(OP, &shape)?;
        let groups = self.num_groups;
        if !n_channels.is_multiple_of(groups) {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!("{n_channels} channels do not split into {groups} groups"),
            });
        }
        let n_params = if self.per_group_affine { groups } else { n_channels };
        let scale = param(OP, inputs, 1, "scale", n_params)?;
        let bias = param(OP, inputs, 2, "bias", n_params)?;
        let spatial: usize = shape[2..].iter().product();
        let per_group = n_channels / groups;
        let mut values = contiguous(&x);
        normalize_rows(ctx, &mut values, per_group * spatial, self.epsilon, |row, pos| {
            let group = row % groups;
            let param = if self.per_group_affine { group } else { group * per_group + pos / spatial.max(1) };
            (scale[param], bias[param])
        });
        rebuild(OP, x.dtype(), &shape, values)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        run_on(op, inputs, &Parallel::serial())
    }

    fn run_on(op: &dyn Op, inputs: Vec<Tensor>, par: &Parallel) -> Result<Tensor, OpError> {
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|input| Some(Cow::Owned(input))).collect();
        op.run(&mut inputs, &ctx)
    }

    fn close(got: &Tensor, expected: &[f64], tol: f64) {
        let got = got.to_f64_vec();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() <= tol, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn batch_norm_uses_the_running_statistics_per_channel() {
        let op = BatchNormalization { epsilon: 1e-5, per_element: false, dtypes: FLOATS };
        // x: [1, 2, 2]; channel 0 mean 1 var 4, channel 1 mean -1 var 0.25.
        let x = Tensor::from(array![[[3.0f64, -1.0], [0.0, 1.0]]]);
        let p = |a: f64, b: f64| Tensor::from(array![a, b]);
        let out = run(&op, vec![x, p(2.0, 1.0), p(0.5, 0.0), p(1.0, -1.0), p(4.0, 0.25)]).unwrap();
        let y = |v: f64, scale: f64, bias: f64, mean: f64, var: f64| scale * (v - mean) / (var + 1e-5f64).sqrt() + bias;
        close(
            &out,
            &[
                y(3.0, 2.0, 0.5, 1.0, 4.0),
                y(-1.0, 2.0, 0.5, 1.0, 4.0),
                y(0.0, 1.0, 0.0, -1.0, 0.25),
                y(1.0, 1.0, 0.0, -1.0, 0.25),
            ],
            1e-12,
        );
        let short = Tensor::from(array![1.0f64]);
        let x = Tensor::from(array![[[3.0f64]]]);
        let err = run(&op, vec![x, short.clone(), short.clone(), short.clone(), p(1.0, 1.0)]).unwrap_err();
        assert!(err.to_string().contains("var has shape [2]"), "{err}");
    }

    #[test]
    fn layer_norm_rows_have_zero_mean_and_unit_variance() {
        let op = LayerNormalization { axis: -1, epsilon: 0.0 };
        let x = Tensor::from(array![[1.0f32, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 14.0]]);
        let scale = Tensor::from(array![1.0f32, 1.0, 1.0, 1.0]);
        let out = run(&op, vec![x, scale]).unwrap();
        // Row 0: mean 2.5, var 1.25; row 1: mean 11, var 3.
        let s0 = 1.25f64.sqrt();
        let s1 = 3.0f64.sqrt();
        close(&out, &[-1.5 / s0, -0.5 / s0, 0.5 / s0, 1.5 / s0, -1.0 / s1, -1.0 / s1, -1.0 / s1, 3.0 / s1], 1e-6);
    }

    #[test]
    fn group_norm_per_channel_and_per_group_affine() {
        // One sample, 4 channels of 1 position, 2 groups: {1, 3} and {5, 9}.
        let x = Tensor::from(array![[[1.0f64], [3.0], [5.0], [9.0]]]);
        let per_channel = GroupNormalization { num_groups: 2, epsilon: 0.0, per_group_affine: false };
        let scale = Tensor::from(array![1.0f64, 2.0, 3.0, 4.0]);
        let bias = Tensor::from(array![0.0f64, 0.0, 1.0, 1.0]);
        let out = run(&per_channel, vec![x.clone(), scale, bias]).unwrap();
        close(&out, &[-1.0, 2.0, -2.0, 5.0], 1e-12);
        let per_group = GroupNormalization { num_groups: 2, epsilon: 0.0, per_group_affine: true };
        let out =
            run(&per_group, vec![x.clone(), Tensor::from(array![2.0f64, 1.0]), Tensor::from(array![0.0f64, 1.0])]);
        close(&out.unwrap(), &[-2.0, 2.0, 0.0, 2.0], 1e-12);
        let three = GroupNormalization { num_groups: 3, epsilon: 0.0, per_group_affine: true };
        let p = Tensor::from(array![1.0f64, 1.0, 1.0]);
        assert!(run(&three, vec![x, p.clone(), p]).unwrap_err().to_string().contains("do not split"));
    }

    #[test]
    fn instance_norm_normalises_each_channel() {
        let op = InstanceNormalization { epsilon: 0.0, dtypes: FLOATS };
        let x = Tensor::from(array![[[1.0f32, 3.0], [2.0, 2.0]]]);
        let out = run(&op, vec![x, Tensor::from(array![1.0f32, 1.0]), Tensor::from(array![0.0f32, 5.0])]).unwrap();
        // Channel 1 has zero variance and epsilon 0: 0 / 0 is NaN, as in numpy.
        let got = out.to_f64_vec();
        assert_eq!(&got[..2], [-1.0, 1.0]);
        assert!(got[2].is_nan() && got[3].is_nan());
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 64 rows of 1,024: above the size where work is split.
        let x: Vec<f32> = (0..64 * 1024).map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0).collect();
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[4, 16, 1024]), x).unwrap());
        let channel = |value: f32| Tensor::from(ndarray::Array1::from_elem(16, value));
        let scale = Tensor::from(ndarray::Array1::from_shape_fn(1024, |i| 1.0 + i as f32 / 1024.0));
        let cases: Vec<(Box<dyn Op>, Vec<Tensor>)> = vec![
            (Box::new(LayerNormalization { axis: -1, epsilon: 1e-5 }), vec![x.clone(), scale]),
            (
                Box::new(InstanceNormalization { epsilon: 1e-5, dtypes: FLOATS }),
                vec![x.clone(), channel(2.0), channel(0.5)],
            ),
            (
                Box::new(BatchNormalization { epsilon: 1e-5, per_element: false, dtypes: FLOATS }),
                vec![x.clone(), channel(2.0), channel(0.5), channel(0.1), channel(3.0)],
            ),
            (
                Box::new(GroupNormalization { num_groups: 4, epsilon: 1e-5, per_group_affine: false }),
                vec![x, channel(2.0), channel(0.5)],
            ),
        ];
        for (op, inputs) in cases {
            let serial = run_on(op.as_ref(), inputs.clone(), &Parallel::serial()).unwrap();
            for threads in [2, 4] {
                let par = Parallel::with_threads(threads).unwrap();
                assert_eq!(run_on(op.as_ref(), inputs.clone(), &par).unwrap(), serial, "{op:?} on {threads} threads");
            }
        }
    }
}
