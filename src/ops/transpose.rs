//! Transpose: permutes axes. The TorchScript exporter wraps Softmax on a
//! non-last dim in two Transposes at opsets before 13.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Transpose.html>
//!
//! | opset | change                                                      |
//! |-------|-------------------------------------------------------------|
//! | 1     | `perm` (default: reverse the axes)                          |
//! | 13–25 | more element types only; the same code path in onnxi        |

use super::{ExecCtx, Inputs, Op, Registry, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::Tensor;

/// Registers Transpose.
pub fn register(reg: &mut Registry) {
    reg.add("", "Transpose", &[1, 13, 21, 23, 24, 25], super::moved_types, Transpose::from_node);
}

/// Transpose with an optional explicit permutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Transpose {
    /// `perm`, or `None` to reverse the axes.
    pub perm: Option<Vec<i64>>,
}

impl Transpose {
    /// Reads `perm`.
    ///
    /// # Errors
    /// `perm` of the wrong type.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Transpose { perm: attrs.ints("perm")? })
    }

    fn axes(&self, rank: usize) -> Result<Vec<usize>, OpError> {
        let Some(perm) = &self.perm else {
            return Ok((0..rank).rev().collect());
        };
        let mut seen = vec![false; rank];
        let invalid = || OpError::Invalid {
            op: "Transpose",
            reason: format!("perm {perm:?} is not a permutation of the {rank} axes"),
        };
        if perm.len() != rank {
            return Err(invalid());
        }
        perm.iter()
            .map(|&axis| {
                let idx = usize::try_from(axis).ok().filter(|&idx| idx < rank && !seen[idx]).ok_or_else(invalid)?;
                seen[idx] = true;
                Ok(idx)
            })
            .collect()
    }
}

impl Op for Transpose {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = ty.dims.as_ref().and_then(|dims| {
            let axes = self.axes(dims.len()).ok()?;
            Some(axes.iter().map(|&axis| dims[axis].clone()).collect())
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Transpose")?.into_owned();
        let axes = self.axes(x.shape().len())?;
        Ok(dispatch!(x, array => {
            let permuted = array.permuted_axes(axes.as_slice());
            // A permutation that leaves the memory order row-major (the
            // identity, or one that only moves size-1 axes) shares the data.
            if permuted.is_standard_layout() {
                permuted.into()
            } else {
                permuted.as_standard_layout().into_owned().into()
            }
        }))
    }
}
