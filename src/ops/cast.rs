//! Cast: converts element types. Exporters emit it around float16 graphs.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Cast.html>
//!
//! | opset | change                                                       |
//! |-------|--------------------------------------------------------------|
//! | 1     | `to` is a string (`"FLOAT"`, `"FLOAT16"`, …)                 |
//! | 6–13  | `to` is an int `TensorProto.DataType`                        |
//! | 19+   | adds `saturate` (float8 targets only, which onnxi lacks)     |
//! | 24+   | adds `round_mode` (float8 targets only, which onnxi lacks)   |
//! | 21–28 | more element types (float8, int4, …) that onnxi does not hold |
//!
//! Float to int truncates toward zero and saturates (NaN becomes 0), as
//! Rust's `as`; ONNX leaves out-of-range values undefined. Int to int wraps.

use half::{bf16, f16};
use ndarray::ArrayD;

use super::{ExecCtx, Inputs, Op, Registry, required};
use crate::attrs::Attrs;
use crate::error::{LoadError, OpError};
use crate::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor, onnx_type_name};

/// Registers Cast.
pub fn register(reg: &mut Registry) {
    reg.add("", "Cast", &[1, 6, 9, 13, 19, 21, 23, 24, 25, 28], |_| &DType::ALL, Cast::from_node);
}

/// Cast to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// The target element type.
    pub to: DType,
}

const LEGACY_NAMES: [(&str, DType); 8] = [
    ("FLOAT", DType::F32),
    ("DOUBLE", DType::F64),
    ("FLOAT16", DType::F16),
    ("BFLOAT16", DType::BF16),
    ("INT8", DType::I8),
    ("INT16", DType::I16),
    ("INT32", DType::I32),
    ("INT64", DType::I64),
];

impl Cast {
    /// Reads `to` (a string at opset 1, an int later) and ignores
    /// `saturate`/`round_mode`, which only affect float8 targets.
    ///
    /// # Errors
    /// A missing `to`, or a target type onnxi does not hold.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let to = if version < 6 {
            let name = attrs.string("to")?.ok_or_else(|| attrs.error("to", "is required"))?;
            LEGACY_NAMES
                .iter()
                .find(|(legacy, _)| *legacy == name)
                .map(|(_, dtype)| *dtype)
                .ok_or_else(|| attrs.error("to", format!("type {name:?} is not supported by onnxi")))?
        } else {
            let code = attrs.i64("to")?.ok_or_else(|| attrs.error("to", "is required"))?;
            let code32 = i32::try_from(code).unwrap_or(0);
            DType::from_onnx_code(code32).ok_or_else(|| {
                attrs.error("to", format!("target type {} is not supported by onnxi", onnx_type_name(code32)))
            })?
        };
        if version >= 19 {
            attrs.i64("saturate")?;
        }
        if version >= 24 {
            attrs.string("round_mode")?;
        }
        Ok(Cast { to })
    }
}

impl Op for Cast {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        vec![Some(ValueType { dtype: self.to, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Cast")?;
        if x.dtype() == self.to {
            return Ok(x.into_owned());
        }
        Ok(cast(&x, self.to))
    }
}

/// Converts a tensor to `to`.
pub fn cast(x: &Tensor, to: DType) -> Tensor {
    if to.is_float() {
        let wide: ArrayD<f64> = match x {
            // f32 → f16/bf16 must round once, straight from f32.
            Tensor::F32(array) if to == DType::F16 => {
                return Tensor::F16(array.mapv(f16::from_f32));
            }
            Tensor::F32(array) if to == DType::BF16 => {
                return Tensor::BF16(array.mapv(bf16::from_f32));
            }
            Tensor::I64(array) if to == DType::F32 => return Tensor::F32(array.mapv(|v| v as f32)),
            Tensor::I64(array) => array.mapv(|v| v as f64),
            other => ArrayD::from_shape_vec(other.shape(), other.to_f64_vec()).unwrap_or_default(),
        };
        return match to {
            DType::F32 => Tensor::F32(wide.mapv(|v| v as f32)),
            DType::F16 => Tensor::F16(wide.mapv(f16::from_f64)),
            DType::BF16 => Tensor::BF16(wide.mapv(bf16::from_f64)),
            _ => Tensor::F64(wide),
        };
    }
    let ints: ArrayD<i64> = match x {
        Tensor::I8(array) => array.mapv(i64::from),
        Tensor::I16(array) => array.mapv(i64::from),
        Tensor::I32(array) => array.mapv(i64::from),
        Tensor::I64(array) => array.clone(),
        // Truncation toward zero, saturating; NaN becomes 0.
        other => ArrayD::from_shape_vec(other.shape(), other.to_f64_vec().into_iter().map(|v| v as i64).collect())
            .unwrap_or_default(),
    };
    match to {
        DType::I8 => Tensor::I8(ints.mapv(|v| v as i8)),
        DType::I16 => Tensor::I16(ints.mapv(|v| v as i16)),
        DType::I32 => Tensor::I32(ints.mapv(|v| v as i32)),
        _ => Tensor::I64(ints),
    }
}
