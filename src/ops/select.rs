//! Compress and NonZero: select entries by a boolean condition, or list
//! where the entries are nonzero (numpy's `compress` and `nonzero`).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Compress.html>
//! - <https://onnx.ai/onnx/operators/onnx__NonZero.html>
//!
//! | op       | opset | change                                           |
//! |----------|-------|--------------------------------------------------|
//! | Compress | 9     | first version; `axis` optional (none: flattened) |
//! | Compress | 11    | negative `axis`                                  |
//! | Compress | 28    | bfloat16                                         |
//! | NonZero  | 9     | first version                                    |
//! | NonZero  | 13    | bfloat16                                         |
//!
//! A condition shorter than the axis drops the entries past its end; a
//! longer one may only hold false past the axis (numpy refuses a true
//! there, and so does onnxi, naming the position). NonZero counts NaN as
//! nonzero, `-0.0` as zero and a string as nonzero when it is not empty;
//! a 0-d input gives shape `[0, n]` as the spec says (numpy would give
//! `[1, n]`).

use ndarray::{ArrayD, IxDyn};

use super::gather::gather;
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, check_input_type, normalize_axis, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Item, SharedArray, Tensor};

/// Registers Compress and NonZero.
pub fn register(reg: &mut Registry) {
    reg.add("", "Compress", &[9, 11, 28], compress_dtypes, Compress::from_node);
    reg.add("", "NonZero", &[9, 13], non_zero_dtypes, NonZero::from_node);
}

fn compress_dtypes(version: i64) -> &'static [DType] {
    super::classic_moved_types(version, 28)
}

fn non_zero_dtypes(version: i64) -> &'static [DType] {
    super::classic_moved_types(version, 13)
}

/// Compress: the slices along `axis` (or the elements of the flattened
/// input) whose condition entry is true.
#[derive(Debug, Clone, PartialEq)]
pub struct Compress {
    /// The axis; `None` flattens the input first.
    pub axis: Option<i64>,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Compress {
    /// Reads `axis` (negative from opset 11).
    ///
    /// # Errors
    /// A wrongly typed `axis`, or a negative one before opset 11.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?;
        if version < 11 && axis.is_some_and(|axis| axis < 0) {
            return Err(attrs.error("axis", "negative axes need opset 11 or newer"));
        }
        Ok(Compress { axis, dtypes: compress_dtypes(version) })
    }
}

/// `array` as a row-major 1-D tensor.
fn flattened<T: Item>(array: &SharedArray<T>) -> Tensor {
    T::wrap(ndarray::Array1::from_iter(array.iter().cloned()).into_dyn())
}

/// Compress's kernel.
///
/// # Errors
/// A condition that is not a 1-D bool tensor or holds true past the axis,
/// an axis out of range, or a 0-d input with an axis.
pub fn compress(input: &Tensor, condition: &Tensor, axis: Option<i64>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    const OP: &str = "Compress";
    let condition = match condition {
        Tensor::Bool(array) if array.ndim() == 1 => array,
        other => {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!("condition must be a 1-D bool tensor, got {} {:?}", other.dtype(), other.shape()),
            });
        }
    };
    let (source, axis) = match axis {
        Some(axis) => (input.clone(), normalize_axis(OP, axis, input.shape().len())?),
        None => (dispatch!(input, array => flattened(array)), 0),
    };
    let dim = source.shape()[axis];
    let mut picked = Vec::new();
    for (position, &keep) in condition.iter().enumerate() {
        match keep {
            true if position >= dim => {
                return Err(OpError::Invalid {
                    op: OP,
                    reason: format!("condition is true at position {position}, past the axis length {dim}"),
                });
            }
            true => picked.push(position as i64),
            false => {}
        }
    }
    let picked = Tensor::from(ndarray::Array1::from(picked));
    gather(&source, &picked, axis as i64, ctx).map_err(|err| match err {
        OpError::Invalid { reason, .. } => OpError::Invalid { op: OP, reason },
        other => other,
    })
}

impl Op for Compress {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("Compress", inputs, 0, self.dtypes)
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = match self.axis {
            None => Some(vec![Dim::Any]),
            Some(axis) => ty.dims.as_ref().and_then(|dims| {
                let axis = normalize_axis("Compress", axis, dims.len()).ok()?;
                let mut out = dims.clone();
                out[axis] = Dim::Any;
                Some(out)
            }),
        };
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let input = required(inputs, 0, "Compress")?;
        check_dtype("Compress", input.dtype(), self.dtypes)?;
        let condition = required(inputs, 1, "Compress")?;
        compress(&input, &condition, self.axis, ctx)
    }
}

/// NonZero: the positions of the nonzero entries, one row per axis, one
/// column per entry in row-major order (int64 of shape `[rank, count]`).
#[derive(Debug, Clone, PartialEq)]
pub struct NonZero {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl NonZero {
    /// NonZero has no attributes.
    ///
    /// # Errors
    /// Never; the signature is the registry's.
    pub fn from_node(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(NonZero { dtypes: non_zero_dtypes(version) })
    }
}

/// The row-major positions of the entries unequal to the type's zero
/// (its `Default`: 0, false, the empty string; `-0.0 == 0.0`).
fn non_zero_positions<T: Item + Default>(array: &SharedArray<T>) -> Vec<usize> {
    let zero = T::default();
    array.iter().enumerate().filter(|(_, value)| **value != zero).map(|(position, _)| position).collect()
}

/// NonZero's kernel.
///
/// # Errors
/// An output above the context's size limit.
pub fn non_zero(x: &Tensor, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let positions = dispatch!(x, array => non_zero_positions(array));
    let shape = x.shape();
    let rank = shape.len();
    ctx.checked_elems("NonZero", DType::I64, &[rank, positions.len()])?;
    let count = positions.len();
    let mut out = vec![0i64; rank * count];
    for (column, &position) in positions.iter().enumerate() {
        // Peel the coordinates off the flat position, last axis first.
        let mut rest = position;
        for axis in (0..rank).rev() {
            out[axis * count + column] = (rest % shape[axis]) as i64;
            rest /= shape[axis];
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[rank, count]), out)
        .map(Tensor::from)
        .map_err(|err| OpError::Invalid { op: "NonZero", reason: err.to_string() })
}

impl Op for NonZero {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("NonZero", inputs, 0, self.dtypes)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.as_ref()).map(Vec::len);
        let dims = rank.map(|rank| vec![Dim::Fixed(rank), Dim::Any]);
        vec![Some(ValueType { dtype: DType::I64, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "NonZero")?;
        check_dtype("NonZero", x.dtype(), self.dtypes)?;
        non_zero(&x, ctx)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;
    use crate::tensor::Str;

    fn ctx_run(f: impl FnOnce(&ExecCtx<'_>) -> Result<Tensor, OpError>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        f(&ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 })
    }

    fn bools(values: &[bool]) -> Tensor {
        Tensor::from(ndarray::Array1::from(values.to_vec()))
    }

    /// Expected values are numpy 2.4's `np.compress` on the same inputs.
    #[test]
    fn compress_matches_numpy() {
        let a = Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        let run = |condition: &[bool], axis| ctx_run(|ctx| compress(&a, &bools(condition), axis, ctx));
        assert_eq!(run(&[false, true], Some(0)).unwrap(), Tensor::from(array![[3.0f32, 4.0]]));
        assert_eq!(run(&[false, true, true], Some(0)).unwrap(), Tensor::from(array![[3.0f32, 4.0], [5.0, 6.0]]));
        assert_eq!(run(&[false, true], Some(1)).unwrap(), Tensor::from(array![[2.0f32], [4.0], [6.0]]));
        assert_eq!(run(&[true], Some(-1)).unwrap(), Tensor::from(array![[1.0f32], [3.0], [5.0]]));
        assert_eq!(run(&[false, true, false, true, true], None).unwrap(), Tensor::from(array![2.0f32, 4.0, 5.0]));
        // False past the axis is fine; true there is an error naming it.
        assert_eq!(run(&[false, true, false, false], Some(0)).unwrap(), Tensor::from(array![[3.0f32, 4.0]]));
        let err = run(&[false, true, false, true], Some(0)).unwrap_err();
        assert_eq!(err.to_string(), "Compress: condition is true at position 3, past the axis length 3");
        assert_eq!(run(&[true], Some(2)).unwrap_err(), OpError::AxisOutOfRange { op: "Compress", axis: 2, rank: 2 });
        let err = ctx_run(|ctx| compress(&a, &Tensor::from(array![1i64]), Some(0), ctx)).unwrap_err();
        assert!(err.to_string().contains("condition must be a 1-D bool tensor"), "{err}");
        let words = Tensor::from(array![Str::from("a"), Str::from("b"), Str::from("c")]);
        let picked = ctx_run(|ctx| compress(&words, &bools(&[true, false, true]), None, ctx)).unwrap();
        assert_eq!(picked, Tensor::from(array![Str::from("a"), Str::from("c")]));
    }

    /// Expected positions are numpy 2.4's `np.vstack(np.nonzero(x))`.
    #[test]
    fn non_zero_matches_numpy() {
        let x = Tensor::from(array![[[0.0f32, 1.5], [f32::NAN, -0.0]], [[2.0, 0.0], [0.0, 3.0]]]);
        let out = ctx_run(|ctx| non_zero(&x, ctx)).unwrap();
        assert_eq!(out, Tensor::from(array![[0i64, 0, 1, 1], [0, 1, 0, 1], [1, 0, 0, 1]]));
        let words = Tensor::from(array![Str::from(""), Str::from("a"), Str::from(""), Str::from("b")]);
        assert_eq!(ctx_run(|ctx| non_zero(&words, ctx)).unwrap(), Tensor::from(array![[1i64, 3]]));
        // A 0-d input: shape [0, 1] as the spec says, not numpy's [1, 1].
        let scalar = Tensor::from(ndarray::arr0(7u8));
        assert_eq!(ctx_run(|ctx| non_zero(&scalar, ctx)).unwrap().shape(), [0, 1]);
        let empty = Tensor::from(ArrayD::<bool>::from_elem(IxDyn(&[2, 0]), false));
        assert_eq!(ctx_run(|ctx| non_zero(&empty, ctx)).unwrap().shape(), [2, 0]);
    }
}
