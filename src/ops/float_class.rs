//! Float classification: IsInf and IsNaN, a bool per element.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__IsInf.html>
//! - <https://onnx.ai/onnx/operators/onnx__IsNaN.html>
//!
//! | op    | opset | types |
//! |-------|-------|-------|
//! | IsInf | 10    | float32/64; `detect_positive`, `detect_negative` (default 1 each) |
//! | IsInf | 20    | adds float16, bfloat16 and the four float8 formats |
//! | IsNaN | 9     | float16/32/64 |
//! | IsNaN | 13    | adds bfloat16 |
//! | IsNaN | 20    | adds the four float8 formats |
//!
//! Each element is classified by its exact value (float8 codes decoded
//! with their format): the float8 formats without infinities
//! (float8e4m3fn, the two fnuz) never give true for IsInf, and every NaN
//! code of a format, whatever its sign or payload, gives true for IsNaN.

use half::{bf16, f16};
use ndarray::{ArrayD, ArrayViewD};

use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, Item, Tensor};

/// Registers IsInf and IsNaN.
pub fn register(reg: &mut Registry) {
    reg.add("", "IsInf", &[10, 20], is_inf_dtypes, IsInf::from_node);
    reg.add("", "IsNaN", &[9, 13, 20], is_nan_dtypes, IsNaN::from_node);
}

/// Every float type with the float8 formats (opset 20).
const FLOATS_F8: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::F8E4M3FN,
    DType::F8E4M3FNUZ,
    DType::F8E5M2,
    DType::F8E5M2FNUZ,
];

/// IsInf's input types: float32/64 at 10, every float type at 20.
fn is_inf_dtypes(version: i64) -> &'static [DType] {
    if version >= 20 { FLOATS_F8 } else { &FLOATS[..2] }
}

/// IsNaN's input types at a version.
fn is_nan_dtypes(version: i64) -> &'static [DType] {
    match version {
        20.. => FLOATS_F8,
        13..=19 => FLOATS_BF16,
        _ => FLOATS,
    }
}

/// IsInf: true where `X` is an infinity of a detected sign.
/// <https://onnx.ai/onnx/operators/onnx__IsInf.html>
#[derive(Debug, Clone, PartialEq)]
pub struct IsInf {
    /// Whether +inf gives true (`detect_positive`, default 1).
    pub detect_positive: bool,
    /// Whether -inf gives true (`detect_negative`, default 1).
    pub detect_negative: bool,
    dtypes: &'static [DType],
}

impl IsInf {
    /// Reads `detect_positive` and `detect_negative`.
    ///
    /// # Errors
    /// An attribute of the wrong type, or a value other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let mut flag = |name: &str| match attrs.i64(name)?.unwrap_or(1) {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(attrs.error(name, format!("must be 0 or 1, got {other}"))),
        };
        let detect_positive = flag("detect_positive")?;
        let detect_negative = flag("detect_negative")?;
        Ok(IsInf { detect_positive, detect_negative, dtypes: is_inf_dtypes(version) })
    }
}

/// IsNaN: true where `X` is NaN. <https://onnx.ai/onnx/operators/onnx__IsNaN.html>
#[derive(Debug, Clone, PartialEq)]
pub struct IsNaN {
    dtypes: &'static [DType],
}

impl IsNaN {
    /// IsNaN at `version` (it has no attributes).
    ///
    /// # Errors
    /// None; the signature is the registry's.
    pub fn from_node(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(IsNaN { dtypes: is_nan_dtypes(version) })
    }
}

/// `test` on the value of each element of `x`, any float type; `None` for
/// another dtype.
pub fn classify(x: &Tensor, test: impl Fn(f64) -> bool) -> Option<ArrayD<bool>> {
    fn map<T: Item + Copy>(x: &Tensor, value: impl Fn(T) -> f64, test: impl Fn(f64) -> bool) -> Option<ArrayD<bool>> {
        let view: ArrayViewD<'_, T> = T::view(x)?;
        Some(view.mapv(|element| test(value(element))))
    }
    match x.dtype() {
        DType::F32 => map::<f32>(x, f64::from, test),
        DType::F64 => map(x, |v: f64| v, test),
        DType::F16 => map(x, f16::to_f64, test),
        DType::BF16 => map(x, bf16::to_f64, test),
        DType::F8E4M3FN => map(x, F8E4M3FN::to_f64, test),
        DType::F8E4M3FNUZ => map(x, F8E4M3FNUZ::to_f64, test),
        DType::F8E5M2 => map(x, F8E5M2::to_f64, test),
        DType::F8E5M2FNUZ => map(x, F8E5M2FNUZ::to_f64, test),
        _ => None,
    }
}

/// The output type: bool, of the input's shape.
fn bool_like_first(inputs: &[InferInput<'_>]) -> Vec<Option<ValueType>> {
    vec![inputs.first().and_then(|input| input.ty).map(|ty| ValueType { dtype: DType::Bool, dims: ty.dims.clone() })]
}

/// The load-time check of the input's type against `dtypes`.
fn check_first(op: &'static str, inputs: &[InferInput<'_>], dtypes: &[DType]) -> Result<(), OpError> {
    match inputs.first().and_then(|input| input.ty) {
        Some(ty) => check_dtype(op, ty.dtype, dtypes),
        None => Ok(()),
    }
}

/// Runs `test` over input 0 of `op`, checked against `dtypes`.
fn run_classify(
    op: &'static str,
    dtypes: &[DType],
    inputs: &mut Inputs<'_>,
    test: impl Fn(f64) -> bool,
) -> Result<Tensor, OpError> {
    let x = required(inputs, 0, op)?;
    check_dtype(op, x.dtype(), dtypes)?;
    let out = classify(&x, test).ok_or(OpError::UnsupportedDtype { op, dtype: x.dtype() })?;
    Ok(bool::wrap(out))
}

impl Op for IsInf {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        bool_like_first(inputs)
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_first("IsInf", inputs, self.dtypes)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let (positive, negative) = (self.detect_positive, self.detect_negative);
        run_classify("IsInf", self.dtypes, inputs, |v| {
            (positive && v == f64::INFINITY) || (negative && v == f64::NEG_INFINITY)
        })
    }
}

impl Op for IsNaN {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        bool_like_first(inputs)
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_first("IsNaN", inputs, self.dtypes)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        run_classify("IsNaN", self.dtypes, inputs, f64::is_nan)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn, array};

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &dyn Op, x: Tensor) -> Result<Vec<bool>, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let y = op.run(&mut [Some(Cow::Owned(x))], &ctx)?;
        Ok(y.view::<bool>()
            .map_err(|_| OpError::Invalid { op: "test", reason: "not bool".into() })?
            .iter()
            .copied()
            .collect())
    }

    fn is_inf(positive: i64, negative: i64, version: i64) -> IsInf {
        let attrs = [
            crate::onnx::AttributeProto {
                name: Some("detect_positive".into()),
                r#type: Some(crate::onnx::attribute_proto::AttributeType::Int as i32),
                i: Some(positive),
                ..Default::default()
            },
            crate::onnx::AttributeProto {
                name: Some("detect_negative".into()),
                r#type: Some(crate::onnx::attribute_proto::AttributeType::Int as i32),
                i: Some(negative),
                ..Default::default()
            },
        ];
        IsInf::from_node(&mut Attrs::new("n", "IsInf", &attrs, 0), version).unwrap()
    }

    #[test]
    fn is_inf_by_sign_on_every_float_type() {
        let values = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 65504.0, -0.0, 1.0];
        let all = [true, true, false, false, false, false];
        let positive = [true, false, false, false, false, false];
        let negative = [false, true, false, false, false, false];
        let f32s = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[6]), values.map(|v| v as f32).to_vec()).unwrap());
        let f64s = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 3]), values.to_vec()).unwrap());
        let halves = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[6]), values.map(f16::from_f64).to_vec()).unwrap());
        assert_eq!(run(&is_inf(1, 1, 10), f32s.clone()), Ok(all.to_vec()));
        assert_eq!(run(&is_inf(1, 0, 10), f64s.clone()), Ok(positive.to_vec()));
        assert_eq!(run(&is_inf(0, 1, 10), f32s.clone()), Ok(negative.to_vec()));
        assert_eq!(run(&is_inf(0, 0, 10), f64s), Ok(vec![false; 6]));
        // float16 only from opset 20; 65504 is its largest finite value.
        assert_eq!(
            run(&is_inf(1, 1, 10), halves.clone()),
            Err(OpError::UnsupportedDtype { op: "IsInf", dtype: DType::F16 })
        );
        assert_eq!(run(&is_inf(1, 1, 20), halves), Ok(all.to_vec()));
        // float8e5m2 has infinities (0x7c, 0xfc) and NaNs (0x7d..); the
        // e4m3fn format has neither inf nor any code but 0x7f/0xff as NaN.
        let e5m2 = Tensor::from(array![F8E5M2(0x7c), F8E5M2(0xfc), F8E5M2(0x7e), F8E5M2(0x7b)].into_dyn());
        assert_eq!(run(&is_inf(1, 0, 20), e5m2), Ok(vec![true, false, false, false]));
        let e4m3 = Tensor::from(array![F8E4M3FN(0x7f), F8E4M3FN(0x7e), F8E4M3FN(0xff)].into_dyn());
        assert_eq!(run(&is_inf(1, 1, 20), e4m3.clone()), Ok(vec![false, false, false]));
        let nan = IsNaN::from_node(&mut Attrs::new("n", "IsNaN", &[], 0), 20).unwrap();
        assert_eq!(run(&nan, e4m3), Ok(vec![true, false, true]));
        let fnuz = Tensor::from(array![F8E5M2FNUZ(0x80), F8E5M2FNUZ(0x00), F8E5M2FNUZ(0x7f)].into_dyn());
        assert_eq!(run(&nan, fnuz), Ok(vec![true, false, false]));
    }

    #[test]
    fn is_nan_per_version_and_every_nan_payload() {
        let at = |version| IsNaN::from_node(&mut Attrs::new("n", "IsNaN", &[], 0), version).unwrap();
        let payloads =
            [f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001), f32::from_bits(0xffbf_ffff), f32::INFINITY, 0.0];
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[6]), payloads.to_vec()).unwrap());
        assert_eq!(run(&at(9), x), Ok(vec![true, true, true, true, false, false]));
        let brains = Tensor::from(array![bf16::NAN, bf16::ONE].into_dyn());
        assert_eq!(run(&at(9), brains.clone()), Err(OpError::UnsupportedDtype { op: "IsNaN", dtype: DType::BF16 }));
        assert_eq!(run(&at(13), brains), Ok(vec![true, false]));
        let empty = Tensor::from(ArrayD::<f64>::zeros(IxDyn(&[0, 3])));
        assert_eq!(run(&at(13), empty), Ok(vec![]));
        let ints = Tensor::from(array![1i32].into_dyn());
        assert_eq!(run(&at(20), ints), Err(OpError::UnsupportedDtype { op: "IsNaN", dtype: DType::I32 }));
    }

    #[test]
    fn is_inf_refuses_flags_other_than_0_or_1() {
        let attrs = [crate::onnx::AttributeProto {
            name: Some("detect_positive".into()),
            r#type: Some(crate::onnx::attribute_proto::AttributeType::Int as i32),
            i: Some(2),
            ..Default::default()
        }];
        assert!(IsInf::from_node(&mut Attrs::new("n", "IsInf", &attrs, 0), 10).is_err());
    }
}
