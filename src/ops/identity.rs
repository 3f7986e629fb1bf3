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
use crate::shapes::{InferInput, ValueType, same_as_first};
use crate::tensor::{DType, Tensor};

/// Registers Identity.
pub fn register(reg: &mut Registry) {
    reg.add("", "Identity", &[1, 13, 14, 16, 19, 21, 23, 24, 25], |_| &DType::ALL, Identity::from_node);
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
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        Ok(required(inputs, 0, "Identity")?.into_owned())
    }
}
