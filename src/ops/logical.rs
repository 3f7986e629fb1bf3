//! Logical ops on bool tensors: Not (unary), And, Or, Xor (broadcasting,
//! through the comparisons' runner, `compare::to_bool`).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Not.html>
//! - <https://onnx.ai/onnx/operators/onnx__And.html>
//! - <https://onnx.ai/onnx/operators/onnx__Or.html>
//! - <https://onnx.ai/onnx/operators/onnx__Xor.html>
//!
//! - <https://onnx.ai/onnx/operators/onnx__Where.html>
//!
//! Versions (`onnx.defs.get_schema`, onnx 1.23.2): Not 1; And, Or, Xor 1
//! (legacy `broadcast`/`axis`) and 7 (numpy broadcasting). Every version
//! takes and gives bool only. Where 9 (condition bool; X and Y of every
//! onnxi type but bfloat16, which 16 adds; string and complex onnxi lacks).

use std::fmt;
use std::marker::PhantomData;

use half::{bf16, f16};

use super::binary::{Broadcasting, broadcasting_from_attrs};
use super::binary::{infer_pair, same_typed_pair};
use super::compare::to_bool;
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, broadcast_dims};
use crate::kernels::broadcast::{self, BroadcastError};
use crate::tensor::{DType, Item, Str, Tensor};

const BOOL: &[DType] = &[DType::Bool];

fn bool_only(_version: i64) -> &'static [DType] {
    BOOL
}

/// Registers Not, And, Or and Xor.
pub fn register(reg: &mut Registry) {
    reg.add("", "Not", &[1], bool_only, |_attrs, _version| Ok(Not));
    reg.add("", And::NAME, LOGICAL_VERSIONS, bool_only, Logical::<And>::from_node);
    reg.add("", Or::NAME, LOGICAL_VERSIONS, bool_only, Logical::<Or>::from_node);
    reg.add("", Xor::NAME, LOGICAL_VERSIONS, bool_only, Logical::<Xor>::from_node);
    reg.add("", "Where", &[9, 16], where_dtypes, |_attrs, version| Ok(Where { dtypes: where_dtypes(version) }));
}

/// Where's X/Y types at a version: numbers, bool and string, bfloat16
/// from 16 ([`super::moved_types`]).
fn where_dtypes(version: i64) -> &'static [DType] {
    super::moved_types(version)
}

/// Where: `condition ? X : Y`, the three broadcast together (numpy rules).
/// <https://onnx.ai/onnx/operators/onnx__Where.html>
#[derive(Debug)]
pub struct Where {
    /// X and Y types this version accepts.
    pub dtypes: &'static [DType],
}

impl Where {
    fn typed<T: Item>(&self, cond: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor, OpError> {
        let wrong = |t: &Tensor| OpError::UnsupportedDtype { op: "Where", dtype: t.dtype() };
        let (cv, xv, yv) = (
            bool::view(cond).ok_or_else(|| wrong(cond))?,
            T::view(x).ok_or_else(|| wrong(x))?,
            T::view(y).ok_or_else(|| wrong(y))?,
        );
        let shape =
            broadcast::multidirectional(&[cv.shape(), xv.shape(), yv.shape()]).map_err(|err| OpError::Invalid {
                op: "Where",
                reason: format!(
                    "cannot broadcast condition {:?}, X {:?} and Y {:?}: {err}",
                    cv.shape(),
                    xv.shape(),
                    yv.shape()
                ),
            })?;
        // Each operand broadcasts to the common shape unidirectionally, so
        // ndarray's stride-0 views give the 3-way walk; correctness first
        // (one pass, no per-element index arithmetic of our own).
        let too_large = || OpError::Invalid { op: "Where", reason: BroadcastError::TooLarge.to_string() };
        broadcast::checked_len(&shape).map_err(|_| too_large())?;
        let (Some(c), Some(xb), Some(yb)) =
            (cv.broadcast(shape.clone()), xv.broadcast(shape.clone()), yv.broadcast(shape.clone()))
        else {
            return Err(too_large());
        };
        let out =
            ndarray::Zip::from(&c).and(&xb).and(&yb).map_collect(|&c, x, y| if c { x.clone() } else { y.clone() });
        Ok(T::wrap(out))
    }
}

impl Op for Where {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let tys: Vec<_> = inputs.iter().map(|input| input.ty).collect();
        let [Some(c), Some(x), Some(y)] = tys[..] else {
            return Vec::new();
        };
        let dims = broadcast_dims(&[c.dims.as_deref(), x.dims.as_deref(), y.dims.as_deref()]);
        vec![Some(ValueType { dtype: x.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let cond = required(inputs, 0, "Where")?;
        let x = required(inputs, 1, "Where")?;
        let y = required(inputs, 2, "Where")?;
        check_dtype("Where", cond.dtype(), BOOL)?;
        if x.dtype() != y.dtype() {
            return Err(OpError::Invalid {
                op: "Where",
                reason: format!("X is {} but Y is {}; both must have the same type", x.dtype(), y.dtype()),
            });
        }
        check_dtype("Where", x.dtype(), self.dtypes)?;
        match x.dtype() {
            DType::F32 => self.typed::<f32>(&cond, &x, &y),
            DType::F64 => self.typed::<f64>(&cond, &x, &y),
            DType::F16 => self.typed::<f16>(&cond, &x, &y),
            DType::BF16 => self.typed::<bf16>(&cond, &x, &y),
            DType::I8 => self.typed::<i8>(&cond, &x, &y),
            DType::I16 => self.typed::<i16>(&cond, &x, &y),
            DType::I32 => self.typed::<i32>(&cond, &x, &y),
            DType::I64 => self.typed::<i64>(&cond, &x, &y),
            DType::U8 => self.typed::<u8>(&cond, &x, &y),
            DType::U16 => self.typed::<u16>(&cond, &x, &y),
            DType::U32 => self.typed::<u32>(&cond, &x, &y),
            DType::U64 => self.typed::<u64>(&cond, &x, &y),
            DType::Bool => self.typed::<bool>(&cond, &x, &y),
            DType::String => self.typed::<Str>(&cond, &x, &y),
            dtype @ crate::low_precision!() => Err(OpError::UnsupportedDtype { op: "Where", dtype }),
        }
    }
}

const LOGICAL_VERSIONS: &[i64] = &[1, 7];

/// Not: `!X`, elementwise. <https://onnx.ai/onnx/operators/onnx__Not.html>
#[derive(Debug)]
pub struct Not;

impl Op for Not {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![
            inputs.first().and_then(|input| input.ty).map(|ty| ValueType { dtype: DType::Bool, dims: ty.dims.clone() }),
        ]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Not")?;
        check_dtype("Not", x.dtype(), BOOL)?;
        let view = bool::view(&x).ok_or(OpError::UnsupportedDtype { op: "Not", dtype: x.dtype() })?;
        Ok(bool::wrap(view.mapv(|value| !value)))
    }
}

/// A binary logical op on bools, declared once.
pub trait LogicalOp: fmt::Debug + Send + Sync + 'static {
    /// The ONNX op_type.
    const NAME: &'static str;
    /// The scalar body.
    fn apply(a: bool, b: bool) -> bool;
}

/// And: `A && B`. <https://onnx.ai/onnx/operators/onnx__And.html>
#[derive(Debug)]
pub struct And;

impl LogicalOp for And {
    const NAME: &'static str = "And";
    fn apply(a: bool, b: bool) -> bool {
        a & b
    }
}

/// Or: `A || B`. <https://onnx.ai/onnx/operators/onnx__Or.html>
#[derive(Debug)]
pub struct Or;

impl LogicalOp for Or {
    const NAME: &'static str = "Or";
    fn apply(a: bool, b: bool) -> bool {
        a | b
    }
}

/// Xor: `A != B`. <https://onnx.ai/onnx/operators/onnx__Xor.html>
#[derive(Debug)]
pub struct Xor;

impl LogicalOp for Xor {
    const NAME: &'static str = "Xor";
    fn apply(a: bool, b: bool) -> bool {
        a ^ b
    }
}

/// A [`LogicalOp`] as a configured node.
pub struct Logical<O> {
    /// How B broadcasts.
    pub broadcasting: Broadcasting,
    op: PhantomData<fn() -> O>,
}

impl<O: LogicalOp> fmt::Debug for Logical<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(O::NAME).field("broadcasting", &self.broadcasting).finish()
    }
}

impl<O: LogicalOp> Logical<O> {
    /// Reads the legacy attributes (opset 1).
    ///
    /// # Errors
    /// A wrongly typed attribute, or `broadcast` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(Logical { broadcasting: broadcasting_from_attrs(attrs, version)?, op: PhantomData })
    }
}

impl<O: LogicalOp> Op for Logical<O> {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        infer_pair(self.broadcasting, inputs, Some(DType::Bool))
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let (a, b) = same_typed_pair(O::NAME, inputs, BOOL)?;
        to_bool::<bool>(O::NAME, self.broadcasting, &a, &b, O::apply, ctx)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        op.run(&mut inputs, &ctx)
    }

    fn b(shape: &[usize], values: &[bool]) -> Tensor {
        bool::wrap(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap())
    }

    fn values(tensor: &Tensor) -> (Vec<usize>, Vec<bool>) {
        let view = bool::view(tensor).unwrap();
        (view.shape().to_vec(), view.iter().copied().collect())
    }

    fn numpy<O: LogicalOp>() -> Logical<O> {
        Logical { broadcasting: Broadcasting::Numpy, op: PhantomData }
    }

    #[test]
    fn truth_tables_with_broadcasting() {
        // A [2, 1] = [F, T] against B [2] = [F, T]: the four pairs.
        let a = b(&[2, 1], &[false, true]);
        let bb = b(&[2], &[false, true]);
        let cases: [(&dyn Op, [bool; 4]); 3] = [
            (&numpy::<And>(), [false, false, false, true]),
            (&numpy::<Or>(), [false, true, true, true]),
            (&numpy::<Xor>(), [false, true, true, false]),
        ];
        for (op, expected) in cases {
            assert_eq!(
                values(&run(op, vec![a.clone(), bb.clone()]).unwrap()),
                (vec![2, 2], expected.to_vec()),
                "{op:?}"
            );
        }
        assert_eq!(values(&run(&Not, vec![b(&[3], &[true, false, true])]).unwrap()).1, [false, true, false]);
        assert_eq!(values(&run(&Not, vec![b(&[0, 2], &[])]).unwrap()).0, [0, 2]);
        let out = run(&numpy::<Or>(), vec![b(&[0], &[]), b(&[1], &[true])]).unwrap();
        assert_eq!(values(&out), (vec![0], vec![]));
    }

    /// Where over a 3-way broadcast ([2, 1] condition, [3] X, [] Y)
    /// against the select written out by hand, on f32 and i64, plus an
    /// empty case and the errors.
    #[test]
    fn where_broadcasts_all_three_operands() {
        let cond = b(&[2, 1], &[true, false]);
        let x = f32::wrap(ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, f32::NAN, 3.0]).unwrap());
        let y = f32::wrap(ArrayD::from_shape_vec(IxDyn(&[]), vec![-7.0]).unwrap());
        let w = Where { dtypes: where_dtypes(16) };
        let out = run(&w, vec![cond.clone(), x, y]).unwrap();
        let view = f32::view(&out).unwrap();
        assert_eq!(view.shape(), [2, 3]);
        let got: Vec<u32> = view.iter().map(|v| v.to_bits()).collect();
        let expected: Vec<u32> = [1.0, f32::NAN, 3.0, -7.0, -7.0, -7.0].iter().map(|v: &f32| v.to_bits()).collect();
        assert_eq!(got, expected);
        let xi = i64::wrap(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1, 2, 3, 4, 5, 6]).unwrap());
        let yi = i64::wrap(ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![-1, -2, -3]).unwrap());
        let out = run(&w, vec![cond.clone(), xi.clone(), yi.clone()]).unwrap();
        assert_eq!(i64::view(&out).unwrap().iter().copied().collect::<Vec<_>>(), [1, 2, 3, -1, -2, -3]);
        // An empty condition [0, 1, 1] makes the output [0, 2, 3].
        let out = run(&w, vec![b(&[0, 1, 1], &[]), xi.clone(), yi.clone()]).unwrap();
        assert_eq!(out.shape(), [0, 2, 3]);
        let err = run(&w, vec![b(&[4], &[true; 4]), xi.clone(), yi.clone()]).unwrap_err();
        assert!(err.to_string().contains("Where") && err.to_string().contains("[4]"), "{err}");
        let y32 = f32::wrap(ArrayD::from_shape_vec(IxDyn(&[]), vec![0.0]).unwrap());
        assert!(run(&w, vec![cond.clone(), xi.clone(), y32]).unwrap_err().to_string().contains("Where"));
        assert!(run(&w, vec![xi.clone(), xi.clone(), yi.clone()]).is_err());
        // bfloat16 only from 16.
        assert!(!where_dtypes(9).contains(&DType::BF16) && where_dtypes(16).contains(&DType::BF16));
    }

    #[test]
    fn non_bool_inputs_and_bad_shapes_are_refused_naming_the_op() {
        let f = f32::wrap(ArrayD::from_shape_vec(IxDyn(&[1]), vec![1.0]).unwrap());
        let err = run(&Not, vec![f.clone()]).unwrap_err();
        assert!(err.to_string().contains("Not"), "{err}");
        let err = run(&numpy::<And>(), vec![f.clone(), f]).unwrap_err();
        assert!(err.to_string().contains("And"), "{err}");
        let err = run(&numpy::<Xor>(), vec![b(&[2], &[true, true]), b(&[3], &[true; 3])]).unwrap_err();
        assert!(err.to_string().contains("Xor"), "{err}");
        let legacy_off = Logical::<Or> { broadcasting: Broadcasting::Off, op: PhantomData };
        assert!(run(&legacy_off, vec![b(&[2], &[true, true]), b(&[1], &[true])]).is_err());
    }
}
