//! Ops that make a tensor from a few numbers: ConstantOfShape (masks and
//! zero states shaped like an input) and Range (position ids, `arange`).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__ConstantOfShape.html>
//! - <https://onnx.ai/onnx/operators/onnx__Range.html>
//!
//! | op              | opset | change                                          |
//! |-----------------|-------|-------------------------------------------------|
//! | ConstantOfShape | 9     | `value` attribute (one element), default f32 0  |
//! | ConstantOfShape | 20    | bfloat16 (and float8, which onnxi lacks)         |
//! | ConstantOfShape | 21–25 | more element types only; same code path          |
//! | Range           | 11    | float, double, int16, int32, int64              |
//! | Range           | 27    | float16/bfloat16 with `stash_type` (float/double)|
//!
//! The element count comes from run-time values, so both check it against
//! the model's tensor size limit before allocating.

use ndarray::{Array1, ArrayD, IxDyn};

use super::values::{by_dtype, int_values, sizes};
use super::{ALL_BUT_BF16, ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Item, Tensor};

/// Registers ConstantOfShape and Range.
pub fn register(reg: &mut Registry) {
    reg.add("", "ConstantOfShape", &[9, 20, 21, 23, 24, 25], constant_of_shape_dtypes, ConstantOfShape::from_node);
    reg.add("", "Range", &[11, 27], range_dtypes, Range::from_node);
}

fn constant_of_shape_dtypes(version: i64) -> &'static [DType] {
    if version < 20 { ALL_BUT_BF16 } else { &DType::ALL }
}

fn range_dtypes(version: i64) -> &'static [DType] {
    if version < 27 {
        &[DType::F32, DType::F64, DType::I16, DType::I32, DType::I64]
    } else {
        &[DType::F32, DType::F64, DType::I16, DType::I32, DType::I64, DType::F16, DType::BF16]
    }
}

/// ConstantOfShape: a tensor of the shape given as input, filled with one
/// value.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstantOfShape {
    /// The fill value: a one-element tensor (float32 0 by default).
    pub value: Tensor,
}

impl ConstantOfShape {
    /// Reads `value`.
    ///
    /// # Errors
    /// A `value` that is not a one-element tensor of an accepted type.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let value = match attrs.tensor("value")? {
            Some(value) if value.len() == 1 => value,
            Some(value) => {
                return Err(attrs.error("value", format!("must hold one element, holds {}", value.len())));
            }
            None => Tensor::from(ndarray::arr1(&[0.0f32])),
        };
        if !constant_of_shape_dtypes(version).contains(&value.dtype()) {
            return Err(attrs.error("value", format!("{} is not accepted at version {version}", value.dtype())));
        }
        Ok(ConstantOfShape { value })
    }
}

/// ConstantOfShape's kernel: `shape` filled with the single element of `value`.
///
/// # Errors
/// A negative dim, or an output above the context's size limit.
pub fn constant_of_shape(value: &Tensor, shape: &[i64], ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let shape = sizes("ConstantOfShape", "shape", shape)?;
    ctx.checked_elems("ConstantOfShape", value.dtype(), &shape)?;
    dispatch!(value, array => match array.iter().next() {
        Some(fill) => Ok(filled(&shape, fill)),
        None => Err(OpError::Invalid { op: "ConstantOfShape", reason: "value holds no element".into() }),
    })
}

/// A tensor of `shape` with every element `value`.
fn filled<T: Item>(shape: &[usize], value: &T) -> Tensor {
    Tensor::from(ArrayD::from_elem(IxDyn(shape), value.clone()))
}

impl Op for ConstantOfShape {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dtype = self.value.dtype();
        let dims = match inputs.first().and_then(InferInput::int64_values) {
            Some(shape) => Some(shape.iter().map(|&dim| usize::try_from(dim).map_or(Dim::Any, Dim::Fixed)).collect()),
            None => inputs
                .first()
                .and_then(|input| input.ty)
                .and_then(ValueType::fixed_shape)
                .and_then(|shape| shape.first().copied())
                .map(|rank| vec![Dim::Any; rank]),
        };
        vec![Some(ValueType { dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let shape = required(inputs, 0, "ConstantOfShape")?;
        if shape.dtype() != DType::I64 {
            return Err(OpError::Invalid {
                op: "ConstantOfShape",
                reason: format!("shape must be int64, got {}", shape.dtype()),
            });
        }
        let shape = int_values("ConstantOfShape", "shape", &shape)?;
        constant_of_shape(&self.value, &shape, ctx)
    }
}

/// Range: `start, start + delta, …` up to `limit` (exclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
    /// Opset 27, float16/bfloat16 only: compute in float32 (`stash_type`
    /// 1) rather than float64 (11).
    pub stash_f32: bool,
}

impl Range {
    /// Reads `stash_type` (opset 27).
    ///
    /// # Errors
    /// A `stash_type` other than 1 (float) or 11 (double).
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let stash_f32 = if version >= 27 {
            match attrs.i64("stash_type")?.unwrap_or(1) {
                1 => true,
                11 => false,
                other => {
                    return Err(attrs.error("stash_type", format!("must be 1 (float) or 11 (double), got {other}")));
                }
            }
        } else {
            false
        };
        Ok(Range { dtypes: range_dtypes(version), stash_f32 })
    }
}

fn scalar(op: &'static str, what: &str, tensor: &Tensor) -> Result<f64, OpError> {
    if tensor.len() != 1 || tensor.shape().len() > 1 {
        return Err(OpError::Invalid {
            op,
            reason: format!("{what} must be a scalar, got shape {:?}", tensor.shape()),
        });
    }
    Ok(tensor.to_f64_vec()[0])
}

/// The single value of an integer tensor, exactly.
fn exact_int(tensor: &Tensor) -> Option<i128> {
    match tensor {
        Tensor::I16(array) => array.iter().next().map(|&v| i128::from(v)),
        Tensor::I32(array) => array.iter().next().map(|&v| i128::from(v)),
        Tensor::I64(array) => array.iter().next().map(|&v| i128::from(v)),
        _ => None,
    }
}

fn range_count(count: f64, dtype: DType, ctx: &ExecCtx<'_>) -> Result<usize, OpError> {
    if count.is_nan() || count > usize::MAX as f64 {
        return Err(OpError::Invalid { op: "Range", reason: format!("the element count {count} is not a size") });
    }
    let n = count.max(0.0) as usize;
    ctx.checked_elems("Range", dtype, &[n])
}

/// Range's kernel for inputs of one dtype.
///
/// # Errors
/// Inputs of different dtypes or not scalars, a zero delta, or an output
/// above the context's size limit.
pub fn range(
    start: &Tensor,
    limit: &Tensor,
    delta: &Tensor,
    stash_f32: bool,
    ctx: &ExecCtx<'_>,
) -> Result<Tensor, OpError> {
    let dtype = start.dtype();
    if limit.dtype() != dtype || delta.dtype() != dtype {
        return Err(OpError::Invalid {
            op: "Range",
            reason: format!("start, limit and delta differ in dtype ({dtype}, {}, {})", limit.dtype(), delta.dtype()),
        });
    }
    let exact = (exact_int(start), exact_int(limit), exact_int(delta));
    let (start, limit, delta) =
        (scalar("Range", "start", start)?, scalar("Range", "limit", limit)?, scalar("Range", "delta", delta)?);
    if delta == 0.0 {
        return Err(OpError::Invalid { op: "Range", reason: "delta is 0".into() });
    }
    if !dtype.is_float() {
        // Exact integer arithmetic: int64 values beyond 2^53 would round
        // as float64.
        let (Some(start), Some(limit), Some(delta)) = exact else {
            return Err(OpError::UnsupportedDtype { op: "Range", dtype });
        };
        return by_dtype!("Range", dtype, T => {
            let span = limit - start;
            let count = if (span > 0) == (delta > 0) && span != 0 { (span.abs() + delta.abs() - 1) / delta.abs() } else { 0 };
            let n = range_count(count as f64, dtype, ctx)?;
            let values: Array1<T> = (0..n).map(|i| T::from_i128(start + i as i128 * delta)).collect();
            Ok(Tensor::from(values))
        });
    }
    let n = range_count(((limit - start) / delta).ceil(), dtype, ctx)?;
    let low_precision = matches!(dtype, DType::F16 | DType::BF16);
    by_dtype!("Range", dtype, T => {
        let values: Array1<T> = if low_precision && stash_f32 {
            let (start, delta) = (start as f32, delta as f32);
            (0..n).map(|i| T::from_f64(f64::from(start + i as f32 * delta))).collect()
        } else {
            (0..n).map(|i| T::from_f64(start + i as f64 * delta)).collect()
        };
        Ok(Tensor::from(values))
    })
}

impl Op for Range {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        vec![Some(ValueType { dtype: ty.dtype, dims: Some(vec![Dim::Any]) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let start = required(inputs, 0, "Range")?;
        check_dtype("Range", start.dtype(), self.dtypes)?;
        let limit = required(inputs, 1, "Range")?;
        let delta = required(inputs, 2, "Range")?;
        range(&start, &limit, &delta, self.stash_f32, ctx)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::arr0;

    use super::*;
    use crate::kernels::Parallel;

    fn with_ctx<R>(f: impl FnOnce(&ExecCtx<'_>) -> R) -> R {
        let par = Parallel::serial();
        f(&ExecCtx { par: &par, pool: None, max_tensor_bytes: 4 << 30 })
    }

    #[test]
    fn constant_of_shape_fills_and_refuses_absurd_shapes() {
        let value = Tensor::from(ndarray::arr1(&[7i32]));
        let out = with_ctx(|ctx| constant_of_shape(&value, &[2, 3], ctx)).unwrap();
        assert_eq!(out, Tensor::from(ArrayD::from_elem(IxDyn(&[2, 3]), 7i32)));
        let scalar = with_ctx(|ctx| constant_of_shape(&value, &[], ctx)).unwrap();
        assert_eq!(scalar.shape(), [0usize; 0]);
        let err = with_ctx(|ctx| constant_of_shape(&value, &[1 << 40, 1 << 40], ctx)).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
        assert!(with_ctx(|ctx| constant_of_shape(&value, &[-1], ctx)).is_err());
    }

    #[test]
    fn range_matches_the_spec_formula() {
        let t = |v: i64| Tensor::from(arr0(v));
        let out = with_ctx(|ctx| range(&t(3), &t(9), &t(3), false, ctx)).unwrap();
        assert_eq!(out.to_f64_vec(), [3.0, 6.0]);
        let out = with_ctx(|ctx| range(&t(10), &t(4), &t(-2), false, ctx)).unwrap();
        assert_eq!(out.to_f64_vec(), [10.0, 8.0, 6.0]);
        assert!(with_ctx(|ctx| range(&t(10), &t(4), &t(2), false, ctx)).unwrap().is_empty());
        let f = |v: f32| Tensor::from(arr0(v));
        let out = with_ctx(|ctx| range(&f(1.0), &f(2.0), &f(0.25), false, ctx)).unwrap();
        assert_eq!(out.to_f64_vec(), [1.0, 1.25, 1.5, 1.75]);
        assert!(with_ctx(|ctx| range(&t(0), &t(1), &t(0), false, ctx)).is_err());
        let err = with_ctx(|ctx| range(&t(0), &t(i64::MAX), &t(1), false, ctx)).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
        let err = with_ctx(|ctx| range(&f(0.0), &f(f32::INFINITY), &f(1.0), false, ctx)).unwrap_err();
        assert!(err.to_string().contains("not a size") || err.to_string().contains("size limit"), "{err}");
    }
}
