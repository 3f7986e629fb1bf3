//! Softmax family.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Softmax.html>
//!
//! | opset | behaviour                                                  |
//! |-------|------------------------------------------------------------|
//! | 1, 11 | flatten to 2-D at `axis` (default 1), normalise each row   |
//! | 13+   | normalise along `axis` only (default -1); adds bfloat16    |
//!
//! Opset 11 only widened the documented axis range to negative values;
//! onnxi accepts negative axes at opset 1 too, as ONNX Runtime does.
//!
//! A 0-d input is treated as a single lane of one element (so it gives 1,
//! or NaN for NaN/±inf), as `torch.softmax` does on a 0-d tensor; ONNX
//! leaves that case undefined.

use std::borrow::Cow;

use half::{bf16, f16};

use super::activation::inplace;
use super::{
    ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, normalize_axis, required,
};
use crate::attrs::Attrs;
use crate::error::{LoadError, OpError};
use crate::kernels::softmax::softmax;
use crate::tensor::{DType, Tensor};

/// Registers Softmax.
pub fn register(reg: &mut Registry) {
    reg.add(
        "",
        "Softmax",
        &[1, 11, 13],
        |version| if version >= 13 { FLOATS_BF16 } else { FLOATS },
        Softmax::from_node,
    );
}

/// Softmax over one axis, or over the flattened tail from `axis` (opset < 13).
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    /// The axis (may be negative).
    pub axis: i64,
    /// Opset < 13 semantics: normalise over `axis..rank` flattened.
    pub coerce_to_2d: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Softmax {
    /// Reads `axis` with the default of the version.
    ///
    /// # Errors
    /// `axis` of a type other than int.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let legacy = version < 13;
        let axis = attrs.i64("axis")?.unwrap_or(if legacy { 1 } else { -1 });
        Ok(Softmax {
            axis,
            coerce_to_2d: legacy,
            dtypes: if legacy { FLOATS } else { FLOATS_BF16 },
        })
    }

    /// The `[outer, n, inner]` view of `shape` this softmax normalises over.
    ///
    /// # Errors
    /// [`OpError::AxisOutOfRange`] for an axis outside `[-rank, rank)`.
    pub fn lanes(&self, shape: &[usize]) -> Result<(usize, usize), OpError> {
        if shape.is_empty() {
            return match self.axis {
                -1 | 0 => Ok((1, 1)),
                axis => Err(OpError::AxisOutOfRange {
                    op: "Softmax",
                    axis,
                    rank: 0,
                }),
            };
        }
        let axis = normalize_axis("Softmax", self.axis, shape.len())?;
        Ok(if self.coerce_to_2d {
            (shape[axis..].iter().product(), 1)
        } else {
            (shape[axis], shape[axis + 1..].iter().product())
        })
    }
}

impl Op for Softmax {
    fn run(&self, mut inputs: Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Vec<Tensor>, OpError> {
        let x = required(&mut inputs, 0, "Softmax")?;
        check_dtype("Softmax", x.dtype(), self.dtypes)?;
        let (n, inner) = self.lanes(x.shape())?;
        let par = ctx.par;
        let out = match x {
            Cow::Owned(Tensor::F32(array)) => Tensor::F32(inplace(array, par, |data, par| {
                softmax(data, n, inner, par)
            })),
            Cow::Owned(Tensor::F64(array)) => Tensor::F64(inplace(array, par, |data, par| {
                softmax(data, n, inner, par)
            })),
            other => match other.as_ref() {
                Tensor::F32(array) => Tensor::F32(inplace(array.clone(), par, |data, par| {
                    softmax(data, n, inner, par)
                })),
                Tensor::F64(array) => Tensor::F64(inplace(array.clone(), par, |data, par| {
                    softmax(data, n, inner, par)
                })),
                Tensor::F16(array) => {
                    let wide = inplace(array.mapv(f16::to_f32), par, |data, par| {
                        softmax(data, n, inner, par)
                    });
                    Tensor::F16(wide.mapv(f16::from_f32))
                }
                Tensor::BF16(array) => {
                    let wide = inplace(array.mapv(bf16::to_f32), par, |data, par| {
                        softmax(data, n, inner, par)
                    });
                    Tensor::BF16(wide.mapv(bf16::from_f32))
                }
                unsupported => {
                    return Err(OpError::UnsupportedDtype {
                        op: "Softmax",
                        dtype: unsupported.dtype(),
                    });
                }
            },
        };
        Ok(vec![out])
    }
}
