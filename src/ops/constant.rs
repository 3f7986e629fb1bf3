//! Constant: a node with no inputs whose output is a value stored in its
//! attributes. Constant folding (`crate::graph::fold`) runs it once at load, so a
//! plan holds its value like an initializer.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Constant.html>
//!
//! | opset | value attributes                                                |
//! |-------|-----------------------------------------------------------------|
//! | 1     | `value` (a tensor; float types)                                 |
//! | 9     | `value`, every element type                                     |
//! | 11    | adds `sparse_value` (not supported: refused at load)            |
//! | 12+   | adds `value_float(s)`, `value_int(s)`, `value_string(s)` (strings refused) |
//!
//! Exactly one value attribute must be set.

use super::{ExecCtx, FLOATS, Inputs, Op, Registry};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor};

/// Registers Constant.
pub fn register(reg: &mut Registry) {
    reg.add("", "Constant", &[1, 9, 11, 12, 13, 19, 21, 23, 24, 25], constant_dtypes, Constant::from_node);
}

fn constant_dtypes(version: i64) -> &'static [DType] {
    match version {
        ..9 => FLOATS,
        _ => super::moved_types(version),
    }
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    /// The value the node outputs.
    pub value: Tensor,
}

impl Constant {
    /// Reads the one value attribute the version allows.
    ///
    /// # Errors
    /// No value or more than one, a `value_*` form before opset 12, a value
    /// over the single-tensor limit, or an element type the version does
    /// not allow.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let mut values = Vec::new();
        if let Some(tensor) = attrs.tensor("value")? {
            values.push(("value", tensor));
        }
        if version < 12 {
            let newer = ["value_float", "value_floats", "value_int", "value_ints", "value_string", "value_strings"];
            if let Some(name) = attrs.names().into_iter().find(|name| newer.contains(name)) {
                return Err(attrs.error(
                    name,
                    format!("needs opset 12 or newer (this model resolves Constant to version {version})"),
                ));
            }
        } else {
            if let Some(value) = attrs.f32("value_float")? {
                values.push(("value_float", Tensor::from(ndarray::arr0(value).into_dyn())));
            }
            if let Some(list) = attrs.floats("value_floats")? {
                values.push(("value_floats", Tensor::from(ndarray::Array1::from(list).into_dyn())));
            }
            if let Some(value) = attrs.i64("value_int")? {
                values.push(("value_int", Tensor::from(ndarray::arr0(value).into_dyn())));
            }
            if let Some(list) = attrs.ints("value_ints")? {
                values.push(("value_ints", Tensor::from(ndarray::Array1::from(list).into_dyn())));
            }
        }
        // value_floats / value_ints are not decoded by the tensor reader,
        // so the single-tensor limit is applied here.
        if let Some((attr, value)) = values.iter().find(|(_, value)| value.n_bytes() as u64 > attrs.max_tensor_bytes())
        {
            return Err(LoadError::LimitExceeded {
                what: format!(
                    "{attr} of Constant node {:?} ({}, shape {:?}) size in bytes",
                    attrs.node(),
                    value.dtype(),
                    value.shape()
                ),
                limit: attrs.max_tensor_bytes(),
                actual: value.n_bytes() as u64,
            });
        }
        if values.len() != 1 {
            return Err(
                attrs.error("value", format!("exactly one value attribute must be set, found {}", values.len()))
            );
        }
        let (attr, value) = values.remove(0);
        if !constant_dtypes(version).contains(&value.dtype()) {
            return Err(attrs.error(attr, format!("element type {} needs a newer opset than {version}", value.dtype())));
        }
        Ok(Constant { value })
    }
}

impl Op for Constant {
    fn infer(&self, _inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![Some(ValueType::of(&self.value))]
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        0..=0
    }

    fn run(&self, _inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        Ok(self.value.clone())
    }
}
