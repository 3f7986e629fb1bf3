//! Elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Relu.html>
//! - <https://onnx.ai/onnx/operators/onnx__LeakyRelu.html>
//! - <https://onnx.ai/onnx/operators/onnx__Sigmoid.html>
//! - <https://onnx.ai/onnx/operators/onnx__Tanh.html>
//!
//! | op        | opset | change                                             |
//! |-----------|-------|----------------------------------------------------|
//! | all four  | 1     | legacy `consumed_inputs` attribute (ignored hint)  |
//! | all four  | 6     | attribute dropped; float16/32/64                   |
//! | Relu, Sigmoid, Tanh | 13 | adds bfloat16                           |
//! | Relu      | 14    | adds int8, int16, int32, int64                     |
//! | LeakyRelu | 16    | adds bfloat16; `alpha` default 0.01 throughout     |
//!
//! float16 and bfloat16 compute in f32 and round once at the end.

use std::borrow::Cow;

use half::{bf16, f16};
use ndarray::ArrayD;

use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, required};
use crate::attrs::Attrs;
use crate::error::{LoadError, OpError};
use crate::kernels::Parallel;
use crate::kernels::unary::{self, Unary};
use crate::tensor::{DType, Tensor};

const RELU_14: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
];

/// Registers the four activations.
pub fn register(reg: &mut Registry) {
    reg.add("", "Relu", &[1, 6, 13, 14], relu_dtypes, Relu::from_node);
    reg.add(
        "",
        "LeakyRelu",
        &[1, 6, 16],
        |version| if version >= 16 { FLOATS_BF16 } else { FLOATS },
        LeakyRelu::from_node,
    );
    reg.add(
        "",
        "Sigmoid",
        &[1, 6, 13],
        floats_bf16_from_13,
        Sigmoid::from_node,
    );
    reg.add(
        "",
        "Tanh",
        &[1, 6, 13],
        floats_bf16_from_13,
        Tanh::from_node,
    );
}

fn relu_dtypes(version: i64) -> &'static [DType] {
    match version {
        14.. => RELU_14,
        13 => FLOATS_BF16,
        _ => FLOATS,
    }
}

fn floats_bf16_from_13(version: i64) -> &'static [DType] {
    if version >= 13 { FLOATS_BF16 } else { FLOATS }
}

/// Opset 1 carried `consumed_inputs`, an in-place hint with no effect on
/// results; it is read so that `Attrs::finish` accepts it.
fn legacy_consumed_inputs(attrs: &mut Attrs<'_>, version: i64) -> Result<(), LoadError> {
    if version < 6 {
        attrs.ints("consumed_inputs")?;
    }
    Ok(())
}

/// Relu: `max(x, 0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relu {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Relu {
    /// Reads the node's attributes.
    ///
    /// # Errors
    /// A wrongly typed `consumed_inputs` (opset 1).
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        Ok(Relu {
            dtypes: relu_dtypes(version),
        })
    }
}

impl Op for Relu {
    fn run(&self, mut inputs: Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Vec<Tensor>, OpError> {
        let x = required(&mut inputs, 0, "Relu")?;
        check_dtype("Relu", x.dtype(), self.dtypes)?;
        let out = match x.dtype() {
            DType::I8 | DType::I16 | DType::I32 | DType::I64 => relu_int(x.into_owned(), ctx.par),
            _ => map_float(x, Unary::Relu, ctx.par)?,
        };
        Ok(vec![out])
    }
}

fn relu_int(tensor: Tensor, par: &Parallel) -> Tensor {
    fn apply<T: PartialOrd + Default + Copy + Send>(
        mut array: ArrayD<T>,
        par: &Parallel,
    ) -> ArrayD<T> {
        match array.as_slice_mut() {
            Some(data) => unary::relu_int_inplace(data, par),
            None => array.mapv_inplace(unary::relu),
        }
        array
    }
    match tensor {
        Tensor::I8(array) => Tensor::I8(apply(array, par)),
        Tensor::I16(array) => Tensor::I16(apply(array, par)),
        Tensor::I32(array) => Tensor::I32(apply(array, par)),
        Tensor::I64(array) => Tensor::I64(apply(array, par)),
        other => other,
    }
}

/// LeakyRelu: `x` for `x > 0`, else `alpha * x`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakyRelu {
    /// Slope for negative inputs (ONNX default 0.01).
    pub alpha: f32,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl LeakyRelu {
    /// Reads `alpha` (default 0.01).
    ///
    /// # Errors
    /// `alpha` of another type than float, or a non-finite `alpha`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        let alpha = attrs.f32("alpha")?.unwrap_or(0.01);
        let dtypes = if version >= 16 { FLOATS_BF16 } else { FLOATS };
        Ok(LeakyRelu { alpha, dtypes })
    }
}

impl Op for LeakyRelu {
    fn run(&self, mut inputs: Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Vec<Tensor>, OpError> {
        let x = required(&mut inputs, 0, "LeakyRelu")?;
        check_dtype("LeakyRelu", x.dtype(), self.dtypes)?;
        Ok(vec![map_float(
            x,
            Unary::LeakyRelu { alpha: self.alpha },
            ctx.par,
        )?])
    }
}

/// Sigmoid: `1 / (1 + exp(-x))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sigmoid {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Sigmoid {
    /// Reads the node's attributes (none since opset 6).
    ///
    /// # Errors
    /// A wrongly typed `consumed_inputs` (opset 1).
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        Ok(Sigmoid {
            dtypes: floats_bf16_from_13(version),
        })
    }
}

impl Op for Sigmoid {
    fn run(&self, mut inputs: Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Vec<Tensor>, OpError> {
        let x = required(&mut inputs, 0, "Sigmoid")?;
        check_dtype("Sigmoid", x.dtype(), self.dtypes)?;
        Ok(vec![map_float(x, Unary::Sigmoid, ctx.par)?])
    }
}

/// Tanh: hyperbolic tangent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tanh {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Tanh {
    /// Reads the node's attributes (none since opset 6).
    ///
    /// # Errors
    /// A wrongly typed `consumed_inputs` (opset 1).
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        Ok(Tanh {
            dtypes: floats_bf16_from_13(version),
        })
    }
}

impl Op for Tanh {
    fn run(&self, mut inputs: Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Vec<Tensor>, OpError> {
        let x = required(&mut inputs, 0, "Tanh")?;
        check_dtype("Tanh", x.dtype(), self.dtypes)?;
        Ok(vec![map_float(x, Unary::Tanh, ctx.par)?])
    }
}

/// Applies an elementwise float function: in place when the input is owned
/// and contiguous, else into a new buffer. float16 and bfloat16 go through
/// f32 and round once.
pub(crate) fn map_float(x: Cow<'_, Tensor>, op: Unary, par: &Parallel) -> Result<Tensor, OpError> {
    Ok(match x {
        Cow::Owned(Tensor::F32(array)) => Tensor::F32(inplace(array, par, |data, par| {
            unary::apply_f32_inplace(op, data, par)
        })),
        Cow::Owned(Tensor::F64(array)) => Tensor::F64(inplace(array, par, |data, par| {
            unary::apply_f64_inplace(op, data, par)
        })),
        Cow::Borrowed(Tensor::F32(array)) => Tensor::F32(mapped(array, par, |src, dst, par| {
            unary::apply_f32(op, src, dst, par)
        })),
        Cow::Borrowed(Tensor::F64(array)) => Tensor::F64(mapped(array, par, |src, dst, par| {
            unary::apply_f64(op, src, dst, par)
        })),
        other => match other.as_ref() {
            Tensor::F16(array) => {
                let wide = array.mapv(f16::to_f32);
                let wide = inplace(wide, par, |data, par| {
                    unary::apply_f32_inplace(op, data, par)
                });
                Tensor::F16(wide.mapv(f16::from_f32))
            }
            Tensor::BF16(array) => {
                let wide = array.mapv(bf16::to_f32);
                let wide = inplace(wide, par, |data, par| {
                    unary::apply_f32_inplace(op, data, par)
                });
                Tensor::BF16(wide.mapv(bf16::from_f32))
            }
            unsupported => {
                return Err(OpError::UnsupportedDtype {
                    op: op_name(op),
                    dtype: unsupported.dtype(),
                });
            }
        },
    })
}

fn op_name(op: Unary) -> &'static str {
    match op {
        Unary::Relu => "Relu",
        Unary::LeakyRelu { .. } => "LeakyRelu",
        Unary::Sigmoid => "Sigmoid",
        Unary::Tanh => "Tanh",
    }
}

/// Runs `kernel` on the array's data in place, making it contiguous first.
pub(crate) fn inplace<T: Clone>(
    array: ArrayD<T>,
    par: &Parallel,
    kernel: impl Fn(&mut [T], &Parallel),
) -> ArrayD<T> {
    let mut array = if array.is_standard_layout() {
        array
    } else {
        array.as_standard_layout().into_owned()
    };
    if let Some(data) = array.as_slice_mut() {
        kernel(data, par);
    }
    array
}

/// Runs `kernel` from the array's data into a new array of the same shape.
pub(crate) fn mapped<T: Clone + Default>(
    array: &ArrayD<T>,
    par: &Parallel,
    kernel: impl Fn(&[T], &mut [T], &Parallel),
) -> ArrayD<T> {
    let source = array.as_standard_layout();
    let mut out = ArrayD::from_elem(array.raw_dim(), T::default());
    if let (Some(src), Some(dst)) = (source.as_slice(), out.as_slice_mut()) {
        kernel(src, dst, par);
    }
    out
}
