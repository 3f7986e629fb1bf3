//! CastLike: casts input 0 to input 1's element type, with Cast's rules
//! ([`super::cast::cast`]). <https://onnx.ai/onnx/operators/onnx__CastLike.html>
//!
//! Versions (`onnx.defs.get_schema`, onnx 1.23.2): 15; 19 adds `saturate`
//! and the float8 types, 21 int4 and uint4, 23 float4e2m1, 24 float8e8m0
//! and `round_mode` (for it only), 25 int2 and uint2. `saturate` and
//! `round_mode` work as in Cast; string converts as in Cast.

use super::cast::{Rounding, cast_rounding, cast_types, read_rounding};
use super::{ExecCtx, Inputs, Op, Registry, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::Tensor;

/// Registers CastLike.
pub fn register(reg: &mut Registry) {
    reg.add("", "CastLike", &[15, 19, 21, 23, 24, 25], cast_types, CastLike::from_node);
}

/// CastLike: `Cast(input, to = dtype(target_type), saturate)`.
#[derive(Debug)]
pub struct CastLike {
    /// Cast's `saturate` and `round_mode` (float8 targets only).
    pub rounding: Rounding,
}

impl CastLike {
    /// Reads `saturate` and checks `round_mode` (see the module).
    ///
    /// # Errors
    /// A wrongly typed attribute, or an unknown `round_mode`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(CastLike { rounding: read_rounding(attrs, version)? })
    }
}

impl Op for CastLike {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        // The output type is the target's; without it, nothing is known.
        let Some(target) = inputs.get(1).and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        vec![Some(ValueType { dtype: target.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "CastLike")?;
        let target = required(inputs, 1, "CastLike")?;
        if x.dtype() == target.dtype() {
            // A lent input is shared, not copied.
            return Ok(x.into_owned());
        }
        cast_rounding(&x, target.dtype(), self.rounding)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use half::f16;
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::kernels::Parallel;
    use crate::ops::cast::cast;
    use crate::tensor::{DType, Element, Item};

    fn run(inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        CastLike { rounding: Rounding::DEFAULT }.run(&mut inputs, &ctx)
    }

    fn t<T: Element>(shape: &[usize], values: Vec<T>) -> Tensor {
        T::wrap(ArrayD::from_shape_vec(IxDyn(shape), values).unwrap())
    }

    /// The result is Cast's to the target's dtype (shape from input 0, never
    /// the target's), for float -> int, float -> f16, int -> bool, and empty.
    #[test]
    fn casts_to_the_targets_type_like_cast_does() {
        let x = t(&[2, 2], vec![1.5f32, -2.7, 1e6, f32::NAN]);
        let out = run(vec![x.clone(), t(&[1], vec![0i32])]).unwrap();
        assert_eq!(out.shape(), [2, 2]);
        assert_eq!(out.to_le_bytes(), cast(&x, DType::I32).unwrap().to_le_bytes());
        assert_eq!(i32::view(&out).unwrap().iter().copied().collect::<Vec<_>>(), [1, -2, 1_000_000, 0]);
        let out = run(vec![x.clone(), t(&[], vec![f16::ZERO])]).unwrap();
        assert_eq!(out.dtype(), DType::F16);
        assert_eq!(f16::view(&out).unwrap()[[0, 0]], f16::from_f32(1.5));
        let out = run(vec![t(&[3], vec![0i64, 5, -1]), t(&[0], Vec::<bool>::new())]).unwrap();
        assert_eq!(bool::view(&out).unwrap().iter().copied().collect::<Vec<_>>(), [false, true, true]);
        let out = run(vec![t(&[0, 3], Vec::<f64>::new()), t(&[1], vec![1u8])]).unwrap();
        assert_eq!((out.dtype(), out.shape()), (DType::U8, &[0usize, 3][..]));
        // The same type is passed through unchanged.
        assert_eq!(run(vec![x.clone(), x.clone()]).unwrap().to_le_bytes(), x.to_le_bytes());
    }

    #[test]
    fn a_missing_input_names_the_op() {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let err = CastLike { rounding: Rounding::DEFAULT }
            .run(&mut [Some(Cow::Owned(t(&[1], vec![1.0f32]))), None], &ctx)
            .unwrap_err();
        assert!(err.to_string().contains("CastLike"), "{err}");
    }
}
