//! Concat: joins tensors along an axis (the shape subgraphs PyTorch
//! exports, skip connections, attention heads).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Concat.html>
//!
//! | opset | change                                              |
//! |-------|-----------------------------------------------------|
//! | 1     | float types; `axis` optional, default 1             |
//! | 4     | every type; `axis` required                         |
//! | 11    | negative `axis` allowed                             |
//! | 13    | bfloat16                                            |

use ndarray::{ArrayViewD, Axis};

use super::{ExecCtx, FLOATS, Inputs, Op, Registry, check_dtype, normalize_axis};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Item, Tensor};

/// Registers Concat.
pub fn register(reg: &mut Registry) {
    reg.add("", "Concat", &[1, 4, 11, 13], concat_dtypes, Concat::from_node);
}

fn concat_dtypes(version: i64) -> &'static [DType] {
    if version < 4 { FLOATS } else { super::moved_types(version) }
}

/// Concat along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Concat {
    /// The axis (negative from opset 11).
    pub axis: i64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Concat {
    /// Reads `axis` (required from opset 4).
    ///
    /// # Errors
    /// A missing `axis` from opset 4, or a negative one before opset 11.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = match attrs.i64("axis")? {
            Some(axis) => axis,
            None if version < 4 => 1,
            None => return Err(attrs.error("axis", "is required")),
        };
        if version < 11 && axis < 0 {
            return Err(attrs.error("axis", "negative axes need opset 11 or newer"));
        }
        Ok(Concat { axis, dtypes: concat_dtypes(version) })
    }
}

/// Concatenates `first` and `rest` (all of `first`'s type) along `axis`.
fn concat_typed<T: Item>(first: ArrayViewD<'_, T>, rest: &[&Tensor], axis: usize) -> Result<Tensor, OpError> {
    let mut views = Vec::with_capacity(rest.len() + 1);
    views.push(first);
    for tensor in rest {
        views.push(T::view(tensor).ok_or_else(|| OpError::Invalid {
            op: "Concat",
            reason: format!("inputs have different dtypes: {} and {}", T::DTYPE, tensor.dtype()),
        })?);
    }
    let joined = ndarray::concatenate(Axis(axis), &views)
        .map_err(|err| OpError::Invalid { op: "Concat", reason: err.to_string() })?;
    Ok(T::wrap(joined))
}

/// Concat's kernel: checks that the inputs agree on rank, dtype and every
/// dim but `axis`, then joins them.
///
/// # Errors
/// [`OpError`] for no inputs, an axis out of range, or inputs that differ
/// in rank, dtype or a dim other than the axis.
pub fn concat(tensors: &[&Tensor], axis: i64) -> Result<Tensor, OpError> {
    let Some((first, rest)) = tensors.split_first() else {
        return Err(OpError::Invalid { op: "Concat", reason: "needs at least one input".into() });
    };
    let rank = first.shape().len();
    let axis = normalize_axis("Concat", axis, rank)?;
    for (idx, tensor) in tensors.iter().enumerate() {
        let shape = tensor.shape();
        let agrees = shape.len() == rank
            && shape.iter().zip(first.shape()).enumerate().all(|(dim, (a, b))| dim == axis || a == b);
        if !agrees {
            return Err(OpError::Invalid {
                op: "Concat",
                reason: format!(
                    "input {idx} has shape {shape:?}, which does not match input 0's {:?} outside axis {axis}",
                    first.shape()
                ),
            });
        }
    }
    dispatch!(*first, array => concat_typed(array.view(), rest, axis))
}

impl Op for Concat {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=usize::MAX
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(first) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let all_dims: Option<Vec<&Vec<Dim>>> =
            inputs.iter().map(|input| input.ty.and_then(|ty| ty.dims.as_ref())).collect();
        let dims = all_dims.and_then(|all_dims| {
            let rank = all_dims.first()?.len();
            let axis = normalize_axis("Concat", self.axis, rank).ok()?;
            let mut out = all_dims.first()?.to_vec();
            let total = all_dims.iter().try_fold(0usize, |sum, dims| match dims.get(axis) {
                Some(Dim::Fixed(size)) => sum.checked_add(*size),
                _ => None,
            });
            out[axis] = total.map_or(Dim::Any, Dim::Fixed);
            Some(out)
        });
        vec![Some(ValueType { dtype: first.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let tensors: Vec<&Tensor> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| input.as_deref().ok_or(OpError::MissingInput { op: "Concat", index }))
            .collect::<Result<_, _>>()?;
        if let Some(first) = tensors.first() {
            check_dtype("Concat", first.dtype(), self.dtypes)?;
        }
        concat(&tensors, self.axis)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn, array};

    use super::*;

    fn tensor(shape: &[usize], values: &[f32]) -> Tensor {
        Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap())
    }

    #[test]
    fn joins_along_an_axis_and_a_negative_axis() {
        let a = Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]]);
        let b = Tensor::from(array![[5.0f32], [6.0]]);
        let joined = concat(&[&a, &b], -1).unwrap();
        assert_eq!(joined, Tensor::from(array![[1.0f32, 2.0, 5.0], [3.0, 4.0, 6.0]]));
        let c = Tensor::from(array![[7.0f32, 8.0]]);
        let joined = concat(&[&a, &c], 0).unwrap();
        assert_eq!(joined, tensor(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 7.0, 8.0]));
    }

    #[test]
    fn an_empty_input_adds_nothing() {
        let a = tensor(&[2, 0], &[]);
        let b = tensor(&[2, 1], &[1.0, 2.0]);
        assert_eq!(concat(&[&a, &b], 1).unwrap(), b);
    }

    #[test]
    fn mismatched_dims_ranks_and_dtypes_are_errors() {
        let a = tensor(&[2, 2], &[0.0; 4]);
        let b = tensor(&[3, 1], &[0.0; 3]);
        let err = concat(&[&a, &b], 1).unwrap_err();
        assert!(err.to_string().contains("input 1 has shape [3, 1]"), "{err}");
        let c = tensor(&[2], &[0.0; 2]);
        assert!(concat(&[&a, &c], 0).is_err());
        let d = Tensor::from(array![[1i64, 2], [3, 4]]);
        assert!(concat(&[&a, &d], 0).unwrap_err().to_string().contains("different dtypes"));
        assert_eq!(concat(&[&a], 2).unwrap_err(), OpError::AxisOutOfRange { op: "Concat", axis: 2, rank: 2 });
    }
}
