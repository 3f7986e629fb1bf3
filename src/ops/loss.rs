//! Loss functions: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__NegativeLogLikelihoodLoss.html>
//! - <https://onnx.ai/onnx/operators/onnx__SoftmaxCrossEntropyLoss.html>
//!
//! | op                        | opset | change                                   |
//! |---------------------------|-------|------------------------------------------|
//! | NegativeLogLikelihoodLoss | 12    | first version: float16, float, double    |
//! | NegativeLogLikelihoodLoss | 13    | no change in semantics or types          |
//! | NegativeLogLikelihoodLoss | 22    | bfloat16                                 |
//! | SoftmaxCrossEntropyLoss   | 12    | first version; optional `log_prob` output|
//! | SoftmaxCrossEntropyLoss   | 13    | bfloat16                                 |
//!
//! Both take scores of shape `[N, C]` or `[N, C, d1, …, dk]`, a target of
//! class indices (int32 or int64) of shape `[N]` or `[N, d1, …, dk]`, and an
//! optional weight per class `[C]`. The loss at a position is
//! `-input[n, target, d…] · weight[target]`, or 0 where the target equals
//! `ignore_index`; `reduction` is `none` (the losses, target-shaped),
//! `sum`, or `mean` (the sum divided by the sum of the weights applied:
//! the count of positions not ignored when there is no weight).
//! SoftmaxCrossEntropyLoss first takes the log-softmax of its scores over
//! axis 1 (its optional second output).
//!
//! Everything is computed in float64 whatever the input type: the
//! log-softmax, each loss, the sums of losses and weights in position
//! order, then rounded once to the output type. A target outside
//! `[0, C)` that is not `ignore_index` is an error naming the op, the
//! value and its position. When every position is ignored, `mean` is
//! 0 / 0 = NaN, as in the reference.

use ndarray::{ArrayD, IxDyn};

use super::values::{float_array, float_tensor};
use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, OutputSet, Registry, check_dtype, first_output, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor};

/// Registers NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
pub fn register(reg: &mut Registry) {
    reg.add("", "NegativeLogLikelihoodLoss", &[12, 13, 22], nll_types, Loss::nll_from_node);
    reg.add("", "SoftmaxCrossEntropyLoss", &[12, 13], sce_types, Loss::sce_from_node);
}

fn nll_types(version: i64) -> &'static [DType] {
    if version < 22 { FLOATS } else { FLOATS_BF16 }
}

fn sce_types(version: i64) -> &'static [DType] {
    if version < 13 { FLOATS } else { FLOATS_BF16 }
}

/// The target's element types (`Tind`).
const INDEX_TYPES: &[DType] = &[DType::I32, DType::I64];

/// How the per-position losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// The losses themselves, in the target's shape.
    None,
    /// Their sum (a scalar).
    Sum,
    /// Their sum over the sum of the weights applied (a scalar).
    Mean,
}

/// Which loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// NegativeLogLikelihoodLoss: the input holds log-probabilities.
    NegativeLogLikelihood,
    /// SoftmaxCrossEntropyLoss: the input holds scores, log-softmaxed over
    /// axis 1 first.
    SoftmaxCrossEntropy,
}

impl LossKind {
    fn name(self) -> &'static str {
        match self {
            LossKind::NegativeLogLikelihood => "NegativeLogLikelihoodLoss",
            LossKind::SoftmaxCrossEntropy => "SoftmaxCrossEntropyLoss",
        }
    }
}

/// NegativeLogLikelihoodLoss or SoftmaxCrossEntropyLoss, configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Loss {
    /// Which loss.
    pub kind: LossKind,
    /// `reduction` (default `mean`).
    pub reduction: Reduction,
    /// `ignore_index`: positions whose target equals it add nothing.
    pub ignore_index: Option<i64>,
    /// Element types of the scores and weight at this version.
    pub dtypes: &'static [DType],
}

impl Loss {
    /// Reads NegativeLogLikelihoodLoss's `reduction` and `ignore_index`.
    ///
    /// # Errors
    /// A `reduction` other than `none`, `sum` or `mean`.
    pub fn nll_from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Self::from_node(attrs, LossKind::NegativeLogLikelihood, nll_types(version))
    }

    /// Reads SoftmaxCrossEntropyLoss's `reduction` and `ignore_index`.
    ///
    /// # Errors
    /// A `reduction` other than `none`, `sum` or `mean`.
    pub fn sce_from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Self::from_node(attrs, LossKind::SoftmaxCrossEntropy, sce_types(version))
    }

    fn from_node(attrs: &mut Attrs<'_>, kind: LossKind, dtypes: &'static [DType]) -> Result<Self, LoadError> {
        let reduction = match attrs.string("reduction")?.as_deref().unwrap_or("mean") {
            "none" => Reduction::None,
            "sum" => Reduction::Sum,
            "mean" => Reduction::Mean,
            other => {
                return Err(attrs.error("reduction", format!("must be \"none\", \"sum\" or \"mean\", got {other:?}")));
            }
        };
        let ignore_index = attrs.i64("ignore_index")?;
        Ok(Loss { kind, reduction, ignore_index, dtypes })
    }
}

/// The sizes of scores laid out as `[N, C, D]` (D: the product of the
/// trailing dims, 1 for `[N, C]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Batch size.
    pub n: usize,
    /// Class count.
    pub c: usize,
    /// Positions per sample.
    pub d: usize,
}

/// Log-softmax over the classes of `scores` (`[N, C, D]`, row-major), in
/// place; each sample's block of `C · D` runs on its own, in parallel over
/// samples.
pub fn log_softmax_classes(ctx: &ExecCtx<'_>, scores: &mut [f64], layout: Layout) {
    let Layout { c, d, .. } = layout;
    if c == 0 || d == 0 {
        return;
    }
    ctx.par.rows(scores, c * d, |block| {
        for pos in 0..d {
            let max = (0..c).map(|class| block[class * d + pos]).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..c).map(|class| (block[class * d + pos] - max).exp()).sum();
            let shift = max + sum.ln();
            for class in 0..c {
                block[class * d + pos] -= shift;
            }
        }
    });
}

/// A target value that is neither a class index nor `ignore_index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTarget {
    /// The value.
    pub value: i64,
    /// Its flat position in the target.
    pub position: usize,
}

/// The negative log-likelihood of `targets` (`[N, D]`, row-major) under
/// `log_prob` (`[N, C, D]`): the per-position losses for
/// [`Reduction::None`], else one value. Sums run in float64 in position
/// order.
///
/// # Errors
/// The first target outside `[0, C)` that is not `ignore_index`.
pub fn nll(
    log_prob: &[f64],
    layout: Layout,
    targets: &[i64],
    weight: Option<&[f64]>,
    ignore_index: Option<i64>,
    reduction: Reduction,
) -> Result<Vec<f64>, BadTarget> {
    let Layout { c, d, .. } = layout;
    let mut losses = Vec::with_capacity(if reduction == Reduction::None { targets.len() } else { 0 });
    let (mut loss_sum, mut weight_sum) = (0.0f64, 0.0f64);
    for (position, &value) in targets.iter().enumerate() {
        let (loss, applied) = if Some(value) == ignore_index {
            (0.0, 0.0)
        } else {
            let class = usize::try_from(value).ok().filter(|&class| class < c).ok_or(BadTarget { value, position })?;
            let w = weight.map_or(1.0, |weight| weight[class]);
            let (sample, pos) = (position / d, position % d);
            (-log_prob[(sample * c + class) * d + pos] * w, w)
        };
        match reduction {
            Reduction::None => losses.push(loss),
            Reduction::Sum | Reduction::Mean => {
                loss_sum += loss;
                weight_sum += applied;
            }
        }
    }
    Ok(match reduction {
        Reduction::None => losses,
        Reduction::Sum => vec![loss_sum],
        Reduction::Mean => vec![loss_sum / weight_sum],
    })
}

/// The target's values as int64, refusing a type other than int32/int64.
fn target_values(op: &'static str, target: &Tensor) -> Result<Vec<i64>, OpError> {
    match target {
        Tensor::I64(array) => Ok(array.iter().copied().collect()),
        Tensor::I32(array) => Ok(array.iter().map(|&v| i64::from(v)).collect()),
        other => Err(OpError::UnsupportedDtype { op, dtype: other.dtype() }),
    }
}

/// `position` in row-major `shape` as a multi-index (for messages).
fn unravel(mut position: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = position % dim;
            position /= dim;
        }
    }
    index
}

fn rebuild(op: &'static str, dtype: DType, shape: &[usize], values: Vec<f64>) -> Result<Tensor, OpError> {
    ArrayD::from_shape_vec(IxDyn(shape), values)
        .map(|array| float_tensor(dtype, array))
        .map_err(|err| OpError::Invalid { op, reason: err.to_string() })
}

impl Op for Loss {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=3
    }

    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        match self.kind {
            LossKind::NegativeLogLikelihood => 1..=1,
            LossKind::SoftmaxCrossEntropy => 1..=2,
        }
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        let op = self.kind.name();
        for (index, input) in inputs.iter().enumerate() {
            if let Some(ty) = input.ty {
                check_dtype(op, ty.dtype, if index == 1 { INDEX_TYPES } else { self.dtypes })?;
            }
        }
        match (inputs.first().and_then(|input| input.ty), inputs.get(2).and_then(|input| input.ty)) {
            (Some(scores), Some(weight)) if scores.dtype != weight.dtype => Err(OpError::Invalid {
                op,
                reason: format!("weight is {}, the input {} (they must match)", weight.dtype, scores.dtype),
            }),
            _ => Ok(()),
        }
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(scores) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = match self.reduction {
            Reduction::None => inputs.get(1).and_then(|input| input.ty).and_then(|ty| ty.dims.clone()),
            Reduction::Sum | Reduction::Mean => Some(Vec::new()),
        };
        let loss = ValueType { dtype: scores.dtype, dims };
        [Some(loss), Some(scores.clone())].into_iter().take(n_outputs).collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, self.kind.name())
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let op = self.kind.name();
        let scores = required(inputs, 0, op)?;
        let dtype = scores.dtype();
        check_dtype(op, dtype, self.dtypes)?;
        let shape = scores.shape().to_vec();
        let (n, c) = match shape.as_slice() {
            [n, c, ..] => (*n, *c),
            _ => {
                return Err(OpError::Invalid {
                    op,
                    reason: format!("input of shape {shape:?} has no class axis (rank < 2)"),
                });
            }
        };
        let layout = Layout { n, c, d: shape[2..].iter().product() };
        let target = required(inputs, 1, op)?;
        check_dtype(op, target.dtype(), INDEX_TYPES)?;
        let target_shape: Vec<usize> = std::iter::once(n).chain(shape[2..].iter().copied()).collect();
        if target.shape() != target_shape.as_slice() {
            return Err(OpError::Invalid {
                op,
                reason: format!(
                    "target has shape {:?}, expected {target_shape:?} for an input of shape {shape:?}",
                    target.shape()
                ),
            });
        }
        let targets = target_values(op, &target)?;
        let weight = match inputs.get_mut(2).and_then(Option::take) {
            Some(weight) => {
                if weight.dtype() != dtype {
                    return Err(OpError::Invalid {
                        op,
                        reason: format!("weight is {}, the input {dtype} (they must match)", weight.dtype()),
                    });
                }
                if weight.shape() != [c] {
                    return Err(OpError::Invalid {
                        op,
                        reason: format!("weight has shape {:?}, expected [{c}] (one per class)", weight.shape()),
                    });
                }
                Some(float_array(op, &weight)?.iter().copied().collect::<Vec<f64>>())
            }
            None => None,
        };
        let mut log_prob: Vec<f64> = float_array(op, &scores)?.iter().copied().collect();
        drop(scores);
        if self.kind == LossKind::SoftmaxCrossEntropy {
            log_softmax_classes(ctx, &mut log_prob, layout);
        }
        let losses = nll(&log_prob, layout, &targets, weight.as_deref(), self.ignore_index, self.reduction).map_err(
            |BadTarget { value, position }| OpError::Invalid {
                op,
                reason: format!(
                    "target {value} at {:?} is outside the classes [0, {c}) and is not ignore_index{}",
                    unravel(position, &target_shape),
                    self.ignore_index.map_or(String::new(), |ii| format!(" ({ii})"))
                ),
            },
        )?;
        let loss_shape: &[usize] = if self.reduction == Reduction::None { &target_shape } else { &[] };
        outputs.set(0, rebuild(op, dtype, loss_shape, losses)?);
        if self.kind == LossKind::SoftmaxCrossEntropy && outputs.wanted(1) {
            outputs.set(1, rebuild(op, dtype, &shape, log_prob)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn, array};

    use super::*;
    use crate::kernels::Parallel;

    fn run_all(op: &Loss, inputs: Vec<Tensor>, n_outputs: usize, par: &Parallel) -> Result<Vec<Tensor>, OpError> {
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|input| Some(Cow::Owned(input))).collect();
        let mut values = vec![None; n_outputs];
        let wanted = vec![true; n_outputs];
        op.run_outputs(&mut inputs, &ctx, &mut OutputSet::new(&mut values, &wanted))?;
        Ok(values.into_iter().map(|value| value.expect("output set")).collect())
    }

    fn run(op: &Loss, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        run_all(op, inputs, 1, &Parallel::serial()).map(|mut outputs| outputs.remove(0))
    }

    fn loss(kind: LossKind, reduction: Reduction, ignore_index: Option<i64>) -> Loss {
        Loss { kind, reduction, ignore_index, dtypes: FLOATS_BF16 }
    }

    fn close(got: &Tensor, expected: &[f64], tol: f64) {
        let got = got.to_f64_vec();
        assert_eq!(got.len(), expected.len(), "{got:?} vs {expected:?}");
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() <= tol * e.abs().max(1.0), "{got:?} vs {expected:?}");
        }
    }

    // Log-probabilities [N = 2, C = 3, D = 2] (values made up), targets
    // [[2, 0], [1, 1]], weights [0.5, 2, 4]: the losses are
    // -x[n, t, d] · w[t], written out by hand.
    fn nll_case() -> (Tensor, Tensor, Tensor, [f64; 4], [f64; 4]) {
        let x = array![[[-0.5f64, -1.0], [-2.0, -0.25], [-3.0, -4.0]], [[-1.5, -0.75], [-0.125, -2.5], [-6.0, -0.5]]];
        let target = array![[2i64, 0], [1, 1]];
        let weight = array![0.5f64, 2.0, 4.0];
        let picked = [-3.0, -1.0, -0.125, -2.5];
        let weights = [4.0, 0.5, 2.0, 2.0];
        (Tensor::from(x), Tensor::from(target), Tensor::from(weight), picked, weights)
    }

    #[test]
    fn nll_reductions_with_and_without_weight() {
        let (x, target, weight, picked, weights) = nll_case();
        let nll = |reduction| loss(LossKind::NegativeLogLikelihood, reduction, None);
        let plain: Vec<f64> = picked.iter().map(|v| -v).collect();
        let weighted: Vec<f64> = picked.iter().zip(&weights).map(|(v, w)| -v * w).collect();
        close(&run(&nll(Reduction::None), vec![x.clone(), target.clone()]).unwrap(), &plain, 0.0);
        let out = run(&nll(Reduction::None), vec![x.clone(), target.clone(), weight.clone()]).unwrap();
        assert_eq!(out.shape(), [2, 2]);
        close(&out, &weighted, 0.0);
        close(&run(&nll(Reduction::Sum), vec![x.clone(), target.clone()]).unwrap(), &[6.625], 1e-15);
        close(&run(&nll(Reduction::Mean), vec![x.clone(), target.clone()]).unwrap(), &[6.625 / 4.0], 1e-15);
        let sum_w: f64 = weighted.iter().sum();
        close(&run(&nll(Reduction::Sum), vec![x.clone(), target.clone(), weight.clone()]).unwrap(), &[sum_w], 1e-15);
        let mean = run(&nll(Reduction::Mean), vec![x, target, weight]).unwrap();
        assert_eq!(mean.shape(), [] as [usize; 0]);
        close(&mean, &[sum_w / 8.5], 1e-15);
    }

    #[test]
    fn nll_ignore_index_drops_positions_and_their_weights() {
        let (x, _, weight, _, _) = nll_case();
        // ignore_index 1: positions [1, 0] and [1, 1] count for nothing.
        let target = Tensor::from(array![[2i32, 0], [1, 1]]);
        let op = loss(LossKind::NegativeLogLikelihood, Reduction::Mean, Some(1));
        let out = run(&op, vec![x.clone(), target.clone(), weight]).unwrap();
        close(&out, &[(3.0 * 4.0 + 1.0 * 0.5) / 4.5], 1e-15);
        let none = loss(LossKind::NegativeLogLikelihood, Reduction::None, Some(1));
        close(&run(&none, vec![x.clone(), target]).unwrap(), &[3.0, 1.0, 0.0, 0.0], 0.0);
        // A negative ignore_index (outside the classes) is allowed, and
        // when every position is ignored the mean is 0 / 0.
        let all_ignored = Tensor::from(array![[-7i64, -7], [-7, -7]]);
        let op = loss(LossKind::NegativeLogLikelihood, Reduction::Mean, Some(-7));
        assert!(run(&op, vec![x, all_ignored]).unwrap().to_f64_vec()[0].is_nan());
    }

    #[test]
    fn a_target_outside_the_classes_is_an_error_naming_it() {
        let (x, _, _, _, _) = nll_case();
        let op = loss(LossKind::NegativeLogLikelihood, Reduction::Sum, Some(-1));
        for (bad, text) in [(3i64, "target 3 at [1, 0]"), (-2, "target -2 at [1, 0]")] {
            let target = Tensor::from(array![[2i64, 0], [bad, 1]]);
            let err = run(&op, vec![x.clone(), target]).unwrap_err().to_string();
            assert!(err.starts_with("NegativeLogLikelihoodLoss: ") && err.contains(text), "{err}");
            assert!(err.contains("[0, 3)") && err.contains("ignore_index (-1)"), "{err}");
        }
        let sce = loss(LossKind::SoftmaxCrossEntropy, Reduction::Mean, None);
        let err = run(&sce, vec![x.clone(), Tensor::from(array![[0i64, 9], [0, 0]])]).unwrap_err().to_string();
        assert!(err.starts_with("SoftmaxCrossEntropyLoss: ") && err.contains("target 9 at [0, 1]"), "{err}");
        let err = run(&op, vec![x.clone(), Tensor::from(array![0i64, 1])]).unwrap_err().to_string();
        assert!(err.contains("target has shape [2], expected [2, 2]"), "{err}");
        let err = run(&op, vec![x.clone(), Tensor::from(array![[0i64, 1], [0, 1]]), Tensor::from(array![1.0f64])]);
        assert!(err.unwrap_err().to_string().contains("weight has shape [1], expected [3]"));
        let err =
            run(&op, vec![x.clone(), Tensor::from(array![[0i64, 1], [0, 1]]), Tensor::from(array![1.0f32, 1.0, 1.0])]);
        assert!(err.unwrap_err().to_string().contains("weight is float32, the input float64"));
        let err = run(&op, vec![x.clone(), Tensor::from(array![[0.0f64, 1.0], [0.0, 1.0]])]).unwrap_err();
        assert_eq!(err, OpError::UnsupportedDtype { op: "NegativeLogLikelihoodLoss", dtype: DType::F64 });
        let err = run(&op, vec![Tensor::from(array![1.0f64]), Tensor::from(array![0i64])]).unwrap_err();
        assert!(err.to_string().contains("rank < 2"), "{err}");
    }

    #[test]
    fn softmax_cross_entropy_matches_float64_math_and_returns_log_prob() {
        // Scores [N = 2, C = 3] in float32, one target ignored.
        let scores = [[1.0f32, 2.0, 0.5], [-3.0, 0.0, 40.0]];
        let x = Tensor::from(array![[1.0f32, 2.0, 0.5], [-3.0, 0.0, 40.0]]);
        let target = Tensor::from(array![1i64, 2]);
        let weight = Tensor::from(array![1.0f32, 0.25, 3.0]);
        // log p = x - ln Σ exp(x), written directly.
        let log_prob: Vec<f64> = scores
            .iter()
            .flat_map(|row| {
                let total: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
                row.iter().map(move |&v| f64::from(v) - total.ln())
            })
            .collect();
        let op = loss(LossKind::SoftmaxCrossEntropy, Reduction::Mean, None);
        let out = run_all(&op, vec![x.clone(), target.clone(), weight.clone()], 2, &Parallel::serial()).unwrap();
        let expected = (-log_prob[1] * 0.25 - log_prob[5] * 3.0) / 3.25;
        assert_eq!(out[0].dtype(), DType::F32);
        close(&out[0], &[expected], 1e-7);
        assert_eq!(out[1].shape(), [2, 3]);
        close(&out[1], &log_prob, 1e-7);
        let none = loss(LossKind::SoftmaxCrossEntropy, Reduction::None, Some(2));
        close(&run(&none, vec![x, target]).unwrap(), &[-log_prob[1], 0.0], 1e-7);
    }

    #[test]
    fn softmax_cross_entropy_over_trailing_dims_and_threads() {
        // [N = 3, C = 5, d1 = 64, d2 = 200]: above the size where work splits.
        let (n, c, d) = (3usize, 5usize, 64 * 200);
        let x: Vec<f64> = (0..n * c * d).map(|i| ((i * 7919) % 1013) as f64 / 97.0 - 5.0).collect();
        let targets: Vec<i64> = (0..n * d).map(|i| ((i * 31) % 6) as i64 - 1).collect();
        let x_t = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[n, c, 64, 200]), x.clone()).unwrap());
        let t_t = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[n, 64, 200]), targets.clone()).unwrap());
        let op = loss(LossKind::SoftmaxCrossEntropy, Reduction::Sum, Some(-1));
        let serial = run_all(&op, vec![x_t.clone(), t_t.clone()], 2, &Parallel::serial()).unwrap();
        let mut expected = 0.0;
        for (pos, &t) in targets.iter().enumerate() {
            let (sample, at) = (pos / d, pos % d);
            let lane: Vec<f64> = (0..c).map(|class| x[(sample * c + class) * d + at]).collect();
            let total: f64 = lane.iter().map(|v| v.exp()).sum();
            if t >= 0 {
                expected -= lane[t as usize] - total.ln();
            }
        }
        close(&serial[0], &[expected], 1e-6);
        for threads in [2, 4] {
            let par = Parallel::with_threads(threads).unwrap();
            assert_eq!(run_all(&op, vec![x_t.clone(), t_t.clone()], 2, &par).unwrap(), serial, "{threads} threads");
        }
    }

    #[test]
    fn half_precision_rounds_once() {
        let x = Tensor::from(array![[half::f16::from_f32(-0.1), half::f16::from_f32(-3.0)]]);
        let op = loss(LossKind::NegativeLogLikelihood, Reduction::Sum, None);
        let out = run(&op, vec![x, Tensor::from(array![0i64])]).unwrap();
        assert_eq!(out.dtype(), DType::F16);
        close(&out, &[half::f16::from_f32(0.1).to_f64()], 0.0);
    }
}
