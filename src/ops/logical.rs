//! Logical ops on bool tensors: Not (unary), And, Or, Xor (broadcasting,
//! through the comparisons' runner, [`super::compare::to_bool`]).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Not.html>
//! - <https://onnx.ai/onnx/operators/onnx__And.html>
//! - <https://onnx.ai/onnx/operators/onnx__Or.html>
//! - <https://onnx.ai/onnx/operators/onnx__Xor.html>
//!
//! Versions (`onnx.defs.get_schema`, onnx 1.23.2): Not 1; And, Or, Xor 1
//! (legacy `broadcast`/`axis`) and 7 (numpy broadcasting). Every version
//! takes and gives bool only.

use std::fmt;
use std::marker::PhantomData;

use super::binary::{Broadcasting, broadcasting_from_attrs};
use super::compare::{infer_bool, same_typed_pair, to_bool};
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Element, Tensor};

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
        infer_bool(self.broadcasting, inputs)
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
        let ctx = ExecCtx { par: &par, pool: None };
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
