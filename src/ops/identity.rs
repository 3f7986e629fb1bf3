//! Identity: passes its input through.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Identity.html>
//!
//! | opset | change                                                       |
//! |-------|--------------------------------------------------------------|
//! | 1     | any tensor type                                              |
//! | 13–25 | more element types, sequences (14) and optionals (16); onnxi |
//! |       | holds tensors only, so every version is the same code path   |
//!
//! Constant nodes never reach the interpreter: the loader evaluates them
//! into bound values (see `model.rs`).

use super::{ExecCtx, Inputs, Op, Registry, required};
use crate::attrs::Attrs;
use crate::error::{LoadError, OpError};
use crate::tensor::{DType, Tensor};

/// Every dtype onnxi holds but bfloat16, which the schemas of Identity,
/// Cast, Transpose and the shape ops gained at opset 13.
pub(crate) const ALL_BUT_BF16: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::Bool,
];

/// Every dtype before opset 13, every one from 13 on.
pub(crate) fn all_from_13(version: i64) -> &'static [DType] {
    if version >= 13 { &DType::ALL } else { ALL_BUT_BF16 }
}

/// Registers Identity.
pub fn register(reg: &mut Registry) {
    reg.add("", "Identity", &[1, 13, 14, 16, 19, 21, 23, 24, 25], all_from_13, Identity::from_node);
}

/// Identity: output = input.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity;

impl Identity {
    /// Identity has no attributes.
    ///
    /// # Errors
    /// Never; unexpected attributes are refused by `Attrs::finish`.
    pub fn from_node(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Identity)
    }
}

impl Op for Identity {
    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        // A lent input becomes a second handle on the same data, not a copy.
        Ok(required(inputs, 0, "Identity")?.into_owned())
    }
}
