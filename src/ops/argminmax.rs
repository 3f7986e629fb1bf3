//! ArgMax, ArgMin and TopK: positions (and values) of the extremes along
//! an axis (classifier outputs, greedy decoding, beam search).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__ArgMax.html>
//! - <https://onnx.ai/onnx/operators/onnx__ArgMin.html>
//! - <https://onnx.ai/onnx/operators/onnx__TopK.html>
//!
//! | op             | opset | change                                          |
//! |----------------|-------|-------------------------------------------------|
//! | ArgMax, ArgMin | 1     | `axis`, `keepdims`; first index among ties      |
//! | ArgMax, ArgMin | 11    | negative `axis`                                 |
//! | ArgMax, ArgMin | 12    | `select_last_index`                             |
//! | ArgMax, ArgMin | 13    | bfloat16                                        |
//! | TopK           | 1     | `k` attribute; float types                      |
//! | TopK           | 10    | `k` is an int64 input                           |
//! | TopK           | 11    | `largest`, `sorted`; negative axis; integers    |
//! | TopK           | 24    | bfloat16                                        |
//!
//! NaN: ArgMax and ArgMin pick a NaN (the first, or the last with
//! `select_last_index`) as numpy and PyTorch do; TopK orders NaN above
//! every number. TopK breaks ties by the lower index, as the spec says, and
//! returns sorted results even when `sorted` is 0 (any order is allowed).

use std::cmp::Ordering;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{
    ExecCtx, FLOATS, Inputs, NUMBERS, NUMBERS_BF16, Op, OutputSet, Registry, check_dtype, first_output, normalize_axis,
    required,
};
use crate::dispatch_numeric;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Tensor};

/// Registers ArgMax, ArgMin and TopK.
pub fn register(reg: &mut Registry) {
    reg.add("", "ArgMax", &[1, 11, 12, 13], arg_dtypes, ArgExtreme::argmax);
    reg.add("", "ArgMin", &[1, 11, 12, 13], arg_dtypes, ArgExtreme::argmin);
    reg.add("", "TopK", &[1, 10, 11, 24], topk_dtypes, TopK::from_node);
}

fn arg_dtypes(version: i64) -> &'static [DType] {
    if version < 13 { NUMBERS } else { NUMBERS_BF16 }
}

fn topk_dtypes(version: i64) -> &'static [DType] {
    match version {
        ..11 => FLOATS,
        11..24 => NUMBERS,
        _ => NUMBERS_BF16,
    }
}

/// True for a NaN (the only value not equal to itself).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialEq>(value: &T) -> bool {
    value != value
}

/// A total order: numbers as usual, NaN above every number.
fn total_order<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    a.partial_cmp(b).unwrap_or_else(|| is_nan(a).cmp(&is_nan(b)))
}

/// The input viewed as `[outer, dim, inner]` around `axis`.
fn lanes(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// ArgMax or ArgMin.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgExtreme {
    /// ArgMax (true) or ArgMin.
    pub max: bool,
    /// The axis (default 0).
    pub axis: i64,
    /// Keep the reduced axis as size 1 (default true).
    pub keepdims: bool,
    /// Among equal extremes, the last index (opset 12) instead of the first.
    pub select_last_index: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl ArgExtreme {
    fn from_node(attrs: &mut Attrs<'_>, version: i64, max: bool) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?.unwrap_or(0);
        if version < 11 && axis < 0 {
            return Err(attrs.error("axis", "negative axes need opset 11 or newer"));
        }
        let keepdims = attrs.i64("keepdims")?.unwrap_or(1) != 0;
        let select_last_index = version >= 12 && attrs.i64("select_last_index")?.unwrap_or(0) != 0;
        Ok(ArgExtreme { max, axis, keepdims, select_last_index, dtypes: arg_dtypes(version) })
    }

    /// ArgMax from a node.
    ///
    /// # Errors
    /// Wrongly typed attributes, or a negative axis before opset 11.
    pub fn argmax(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Self::from_node(attrs, version, true)
    }

    /// ArgMin from a node.
    ///
    /// # Errors
    /// Wrongly typed attributes, or a negative axis before opset 11.
    pub fn argmin(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Self::from_node(attrs, version, false)
    }

    fn name(&self) -> &'static str {
        if self.max { "ArgMax" } else { "ArgMin" }
    }

    fn typed<T: Num + PartialOrd>(&self, x: ArrayViewD<'_, T>, axis: usize) -> Vec<i64> {
        let x = x.as_standard_layout();
        let (outer, dim, inner) = lanes(x.shape(), axis);
        let values: Vec<T> = x.iter().copied().collect();
        let mut out = Vec::with_capacity(outer * inner);
        for block in 0..outer {
            for lane in 0..inner {
                let at = |k: usize| values[(block * dim + k) * inner + lane];
                let mut best = 0;
                for k in 1..dim {
                    let (candidate, current) = (at(k), at(best));
                    let better = if is_nan(&current) {
                        self.select_last_index && is_nan(&candidate)
                    } else if is_nan(&candidate) {
                        true
                    } else {
                        match (candidate.partial_cmp(&current), self.max) {
                            (Some(Ordering::Greater), true) | (Some(Ordering::Less), false) => true,
                            (Some(Ordering::Equal), _) => self.select_last_index,
                            _ => false,
                        }
                    };
                    if better {
                        best = k;
                    }
                }
                out.push(best as i64);
            }
        }
        out
    }

    fn out_shape(&self, shape: &[usize], axis: usize) -> Vec<usize> {
        let mut out = shape.to_vec();
        if self.keepdims {
            out[axis] = 1;
        } else {
            out.remove(axis);
        }
        out
    }
}

impl Op for ArgExtreme {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.as_ref()).and_then(|dims| {
            let axis = normalize_axis(self.name(), self.axis, dims.len()).ok()?;
            let mut out = dims.clone();
            if self.keepdims {
                out[axis] = Dim::Fixed(1);
            } else {
                out.remove(axis);
            }
            Some(out)
        });
        vec![Some(ValueType { dtype: DType::I64, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let op = self.name();
        let x = required(inputs, 0, op)?;
        check_dtype(op, x.dtype(), self.dtypes)?;
        let axis = normalize_axis(op, self.axis, x.shape().len())?;
        if x.shape()[axis] == 0 {
            return Err(OpError::Invalid { op, reason: format!("axis {axis} is empty: no extreme to pick") });
        }
        let indices = dispatch_numeric!(x.as_ref(), array => self.typed(array.view(), axis), other => {
            return Err(OpError::UnsupportedDtype { op, dtype: other.dtype() });
        });
        ArrayD::from_shape_vec(IxDyn(&self.out_shape(x.shape(), axis)), indices)
            .map(Tensor::from)
            .map_err(|err| OpError::Invalid { op, reason: err.to_string() })
    }
}

/// Where TopK's `k` comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum K {
    /// The `k` attribute (opset 1).
    Attribute(i64),
    /// The second input (opset 10+).
    Input,
}

/// TopK: the `k` largest (or smallest) entries along an axis and their indices.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    /// The axis (default -1).
    pub axis: i64,
    /// Where `k` comes from.
    pub k: K,
    /// Largest (default) or smallest.
    pub largest: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl TopK {
    /// Reads `axis`, `k` (opset 1), `largest` and `sorted` (opset 11).
    ///
    /// # Errors
    /// A missing `k` at opset 1, or a negative axis before opset 11.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?.unwrap_or(-1);
        let k = if version < 10 {
            K::Attribute(attrs.i64("k")?.ok_or_else(|| attrs.error("k", "is required"))?)
        } else {
            K::Input
        };
        let largest = if version >= 11 {
            // Sorted output is always given; unsorted allows any order.
            attrs.i64("sorted")?;
            attrs.i64("largest")?.unwrap_or(1) != 0
        } else {
            true
        };
        Ok(TopK { axis, k, largest, dtypes: topk_dtypes(version) })
    }
}

/// TopK's kernel on one dtype: values and indices of shape `out_shape`.
fn topk_typed<T: Num + PartialOrd>(x: ArrayViewD<'_, T>, axis: usize, k: usize, largest: bool) -> (Tensor, Tensor) {
    let x = x.as_standard_layout();
    let (outer, dim, inner) = lanes(x.shape(), axis);
    let values: Vec<T> = x.iter().copied().collect();
    let mut out_shape = x.shape().to_vec();
    out_shape[axis] = k;
    let n_out = outer * k * inner;
    let (mut out_values, mut out_indices) = (vec![T::default(); n_out], vec![0i64; n_out]);
    let mut order: Vec<usize> = Vec::with_capacity(dim);
    for block in 0..outer {
        for lane in 0..inner {
            let at = |idx: usize| &values[(block * dim + idx) * inner + lane];
            order.clear();
            order.extend(0..dim);
            // A stable sort keeps the lower index first among equal values.
            if largest {
                order.sort_by(|&a, &b| total_order(at(b), at(a)));
            } else {
                order.sort_by(|&a, &b| total_order(at(a), at(b)));
            }
            for (rank, &idx) in order[..k].iter().enumerate() {
                let position = (block * k + rank) * inner + lane;
                out_values[position] = *at(idx);
                out_indices[position] = idx as i64;
            }
        }
    }
    let shape = IxDyn(&out_shape);
    let values = ArrayD::from_shape_vec(shape.clone(), out_values).map(T::wrap);
    let indices = ArrayD::from_shape_vec(shape, out_indices).map(Tensor::from);
    // The lengths match the shape by construction.
    match (values, indices) {
        (Ok(values), Ok(indices)) => (values, indices),
        _ => (Tensor::zeros(T::DTYPE, &out_shape), Tensor::zeros(DType::I64, &out_shape)),
    }
}

/// TopK's kernel.
///
/// # Errors
/// An axis out of range, or `k` negative or above the axis length.
pub fn topk(x: &Tensor, axis: i64, k: i64, largest: bool) -> Result<(Tensor, Tensor), OpError> {
    let axis = normalize_axis("TopK", axis, x.shape().len())?;
    let dim = x.shape()[axis];
    let k = usize::try_from(k).ok().filter(|&k| k <= dim).ok_or_else(|| OpError::Invalid {
        op: "TopK",
        reason: format!("k = {k} is outside [0, {dim}] for axis {axis}"),
    })?;
    dispatch_numeric!(x, array => Ok(topk_typed(array.view(), axis, k, largest)), other => {
        Err(OpError::UnsupportedDtype { op: "TopK", dtype: other.dtype() })
    })
}

impl Op for TopK {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        match self.k {
            K::Attribute(_) => 1..=1,
            K::Input => 2..=2,
        }
    }

    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let k = match self.k {
            K::Attribute(k) => Some(k),
            K::Input => inputs.get(1).and_then(InferInput::int64_values).and_then(|k| k.first().copied()),
        };
        let dims = ty.dims.as_ref().and_then(|dims| {
            let axis = normalize_axis("TopK", self.axis, dims.len()).ok()?;
            let mut out = dims.clone();
            out[axis] = k.and_then(|k| usize::try_from(k).ok()).map_or(Dim::Any, Dim::Fixed);
            Some(out)
        });
        [Some(ValueType { dtype: ty.dtype, dims: dims.clone() }), Some(ValueType { dtype: DType::I64, dims })]
            .into_iter()
            .take(n_outputs)
            .collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "TopK")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        _ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let x = required(inputs, 0, "TopK")?;
        check_dtype("TopK", x.dtype(), self.dtypes)?;
        let k = match self.k {
            K::Attribute(k) => k,
            K::Input => match required(inputs, 1, "TopK")?.as_ref() {
                Tensor::I64(k) if k.len() == 1 && k.ndim() <= 1 => k.iter().copied().next().unwrap_or(0),
                other => {
                    return Err(OpError::Invalid {
                        op: "TopK",
                        reason: format!("k must be one int64 value, got {} {:?}", other.dtype(), other.shape()),
                    });
                }
            },
        };
        let (values, indices) = topk(&x, self.axis, k, self.largest)?;
        outputs.set(0, values);
        outputs.set(1, indices);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn arg(max: bool, axis: i64, keepdims: bool, last: bool, x: Tensor) -> Result<Tensor, OpError> {
        let op = ArgExtreme { max, axis, keepdims, select_last_index: last, dtypes: &DType::ALL };
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        op.run(&mut [Some(Cow::Owned(x))], &ctx)
    }

    #[test]
    fn argmax_and_argmin_with_ties_and_keepdims() {
        let x = Tensor::from(array![[2.0f32, 1.0, 2.0], [0.0, 5.0, -1.0]]);
        assert_eq!(arg(true, 1, true, false, x.clone()).unwrap(), Tensor::from(array![[0i64], [1]]));
        assert_eq!(arg(true, 1, false, true, x.clone()).unwrap(), Tensor::from(array![2i64, 1]));
        assert_eq!(arg(false, 0, false, false, x.clone()).unwrap(), Tensor::from(array![1i64, 0, 1]));
        assert_eq!(arg(false, -1, false, false, x).unwrap(), Tensor::from(array![1i64, 2]));
        let big = Tensor::from(array![i64::MAX - 1, i64::MAX, i64::MAX - 2]);
        assert_eq!(arg(true, 0, false, false, big).unwrap(), Tensor::from(ndarray::arr0(1i64)));
        let nan = Tensor::from(array![1.0f32, f32::NAN, 3.0]);
        assert_eq!(arg(true, 0, false, false, nan.clone()).unwrap(), Tensor::from(ndarray::arr0(1i64)));
        assert_eq!(arg(false, 0, false, false, nan).unwrap(), Tensor::from(ndarray::arr0(1i64)));
        let empty = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[0])));
        assert!(arg(true, 0, false, false, empty).is_err());
    }

    #[test]
    fn topk_largest_smallest_and_ties_by_lower_index() {
        let x = Tensor::from(array![[3.0f32, 1.0, 3.0, 2.0]]);
        let (values, indices) = topk(&x, -1, 3, true).unwrap();
        assert_eq!(values, Tensor::from(array![[3.0f32, 3.0, 2.0]]));
        assert_eq!(indices, Tensor::from(array![[0i64, 2, 3]]));
        let (values, indices) = topk(&x, 1, 2, false).unwrap();
        assert_eq!(values, Tensor::from(array![[1.0f32, 2.0]]));
        assert_eq!(indices, Tensor::from(array![[1i64, 3]]));
        let column = Tensor::from(array![[1i32], [4], [2]]);
        let (values, indices) = topk(&column, 0, 2, true).unwrap();
        assert_eq!(values, Tensor::from(array![[4i32], [2]]));
        assert_eq!(indices, Tensor::from(array![[1i64], [2]]));
        assert!(topk(&x, -1, 5, true).unwrap_err().to_string().contains("k = 5"));
        assert!(topk(&x, -1, -1, true).is_err());
        let (values, _) = topk(&x, -1, 0, true).unwrap();
        assert_eq!(values.shape(), [1, 0]);
    }
}
