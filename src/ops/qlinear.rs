//! The quantized matrix products and convolutions: MatMulInteger,
//! QLinearMatMul, ConvInteger and QLinearConv.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__MatMulInteger.html>,
//! <https://onnx.ai/onnx/operators/onnx__QLinearMatMul.html>,
//! <https://onnx.ai/onnx/operators/onnx__ConvInteger.html>,
//! <https://onnx.ai/onnx/operators/onnx__QLinearConv.html>
//!
//! | op            | opset | change                                                 |
//! |---------------|-------|--------------------------------------------------------|
//! | MatMulInteger | 10    | first version: int8/uint8 in, int32 out                |
//! | QLinearMatMul | 10    | first version: int8/uint8, float32 scales              |
//! | QLinearMatMul | 21    | float16/bfloat16 scales; float8 types (not held here)  |
//! | ConvInteger   | 10    | first version: Conv's attributes, int32 out            |
//! | QLinearConv   | 10    | first version: float32 scales, optional int32 bias     |
//!
//! ConvInteger and QLinearConv subtract the zero points (x's one value,
//! w's one value or one per output channel) and run Conv's float64 kernel
//! on the differences, which is exact for these integer sums (far below
//! 2^53); padding pads the differences with zeros, as the reference does.
//! ConvInteger returns the int32 sums; QLinearConv adds the int32 bias,
//! multiplies by `x_scale * w_scale / y_scale` (float32, per output
//! channel when `w_scale` is), adds `y_zero_point`, clamps and rounds half
//! to even into `y_zero_point`'s type.
//!
//! Both subtract the zero points from the operands and multiply them as
//! MatMul does (numpy batching and 1-D rules), through MatMul's int64
//! kernel, so the sums are exact. A zero point (and, for
//! QLinearMatMul, a scale) of A is one value or one per row of A's
//! matrices (M values); of B, one value or one per column (N values).
//! MatMulInteger returns the int32 product. QLinearMatMul scales it as the
//! ONNX reference does: the multiplier `a_scale * b_scale / y_scale` is
//! computed in the scales' type (each step rounded to it), the product
//! times the multiplier plus `y_zero_point` in float64, then rounded half
//! to even and clamped to the output type (`y_zero_point`'s).
//!
//! QLinearMatMul-21 also lists the float8 types for A, B and Y; onnxi
//! refuses them (`UnsupportedDtype`).

use std::borrow::Cow;

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

use super::conv::Conv;
use super::matmul::MatMul;
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, check_input_type, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor};

/// Registers MatMulInteger and QLinearMatMul.
pub fn register(reg: &mut Registry) {
    reg.add("", "MatMulInteger", &[10], |_| EIGHT_BIT, MatMulInteger::from_node);
    reg.add("", "QLinearMatMul", &[10, 21], |_| EIGHT_BIT, QLinearMatMul::from_node);
    reg.add("", "ConvInteger", &[10], |_| EIGHT_BIT, ConvInteger::from_node);
    reg.add("", "QLinearConv", &[10], |_| EIGHT_BIT, QLinearConv::from_node);
}

/// The 8-bit integer types both ops take.
const EIGHT_BIT: &[DType] = &[DType::I8, DType::U8];

/// QLinearMatMul's scale types at a version.
fn scale_types(version: i64) -> &'static [DType] {
    if version >= 21 { &[DType::F32, DType::F16, DType::BF16] } else { &[DType::F32] }
}

/// How a per-operand value (zero point or scale) applies to the product's
/// rows or columns: one value, or one per row of A (per column of B).
fn per_line(op: &'static str, what: &str, values: Vec<f64>, lines: usize) -> Result<Vec<f64>, OpError> {
    match values.len() {
        1 => Ok(vec![values[0]; lines]),
        n if n == lines => Ok(values),
        n => Err(OpError::Invalid { op, reason: format!("{what} has {n} values; expected 1 or {lines}") }),
    }
}

/// The rows and columns of a MatMul operand's matrices (a 1-D A is one
/// row, a 1-D B one column).
fn matrix_dims(shape: &[usize], is_a: bool) -> (usize, usize) {
    match (shape.len(), is_a) {
        (0, _) => (0, 0),
        (1, true) => (1, shape[0]),
        (1, false) => (shape[0], 1),
        (n, _) => (shape[n - 2], shape[n - 1]),
    }
}

/// `x - zero_point` as int64, the zero point per row of A's matrices or
/// per column of B's.
fn centred(op: &'static str, x: &Tensor, zero_point: Option<&Tensor>, is_a: bool) -> Result<Tensor, OpError> {
    let (rows, cols) = matrix_dims(x.shape(), is_a);
    let values = x.to_f64_vec();
    let shifted = match zero_point {
        None => values,
        Some(zp) => {
            if zp.dtype() != x.dtype() {
                return Err(OpError::Invalid {
                    op,
                    reason: format!("zero point is {} but its operand is {}", zp.dtype(), x.dtype()),
                });
            }
            let what = if is_a { "A's zero point" } else { "B's zero point" };
            let zps = per_line(op, what, zp.to_f64_vec(), if is_a { rows } else { cols })?;
            values
                .iter()
                .enumerate()
                .map(|(i, &value)| {
                    let at = if is_a { (i / cols.max(1)) % rows.max(1) } else { i % cols.max(1) };
                    value - zps.get(at).copied().unwrap_or(0.0)
                })
                .collect()
        }
    };
    // Integers of at most 9 bits: exact in f64 and i64.
    let array = ArrayD::from_shape_vec(IxDyn(x.shape()), shifted.iter().map(|&v| v as i64).collect())
        .map_err(|err| OpError::Invalid { op, reason: err.to_string() })?;
    Ok(Tensor::from(array))
}

/// The exact product `(a - a_zero_point) @ (b - b_zero_point)` in int64.
fn integer_product(
    op: &'static str,
    a: &Tensor,
    a_zero_point: Option<&Tensor>,
    b: &Tensor,
    b_zero_point: Option<&Tensor>,
    ctx: &ExecCtx<'_>,
) -> Result<Tensor, OpError> {
    check_dtype(op, a.dtype(), EIGHT_BIT)?;
    check_dtype(op, b.dtype(), EIGHT_BIT)?;
    let a = centred(op, a, a_zero_point, true)?;
    let b = centred(op, b, b_zero_point, false)?;
    let matmul = MatMul { dtypes: &[DType::I64], epilogue: None };
    let mut inputs = [Some(Cow::Owned(a)), Some(Cow::Owned(b))];
    matmul.run(&mut inputs, ctx).map_err(|err| OpError::Invalid { op, reason: err.to_string() })
}

/// The product's dimensions, as MatMul infers them from the operands at
/// `a` and `b`.
fn product_dims(inputs: &[InferInput<'_>], a: usize, b: usize) -> Option<Vec<crate::graph::model::Dim>> {
    let operands: Vec<InferInput<'_>> = [a, b].iter().filter_map(|&index| inputs.get(index).cloned()).collect();
    let matmul = MatMul { dtypes: &[DType::I64], epilogue: None };
    matmul.infer(&operands, 1).into_iter().next().flatten().and_then(|ty| ty.dims)
}

/// MatMulInteger: no attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct MatMulInteger;

impl MatMulInteger {
    /// MatMulInteger has no attributes.
    ///
    /// # Errors
    /// Never.
    pub fn from_node(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(MatMulInteger)
    }
}

impl Op for MatMulInteger {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=4
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![Some(ValueType { dtype: DType::I32, dims: product_dims(inputs, 0, 1) })]
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        for index in 0..4 {
            check_input_type("MatMulInteger", inputs, index, EIGHT_BIT)?;
        }
        Ok(())
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "MatMulInteger";
        let a = required(inputs, 0, OP)?;
        let b = required(inputs, 1, OP)?;
        let a_zp = inputs.get_mut(2).and_then(Option::take);
        let b_zp = inputs.get_mut(3).and_then(Option::take);
        let product = integer_product(OP, &a, a_zp.as_deref(), &b, b_zp.as_deref(), ctx)?;
        // Exact integers; int32 keeps them for K up to 33025 (uint8 × uint8).
        let Tensor::I64(sums) = &product else {
            return Err(OpError::UnsupportedDtype { op: OP, dtype: product.dtype() });
        };
        let values: Option<Vec<i32>> = sums.iter().map(|&sum| i32::try_from(sum).ok()).collect();
        let values = values.ok_or(OpError::Invalid { op: OP, reason: "a sum of products overflows int32".into() })?;
        let array = ArrayD::from_shape_vec(IxDyn(product.shape()), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        Ok(Tensor::from(array))
    }
}

/// QLinearMatMul: no attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct QLinearMatMul {
    version: i64,
}

impl QLinearMatMul {
    /// QLinearMatMul has no attributes.
    ///
    /// # Errors
    /// Never.
    pub fn from_node(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(QLinearMatMul { version })
    }
}

/// `value` rounded to the float type `dtype` (float32, float16, bfloat16).
fn round_to(dtype: DType, value: f64) -> f64 {
    match dtype {
        DType::F16 => f16::from_f64(value).to_f64(),
        DType::BF16 => bf16::from_f64(value).to_f64(),
        _ => f64::from(value as f32),
    }
}

impl Op for QLinearMatMul {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        8..=8
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dtype = inputs.get(7).and_then(|input| input.ty).map(|ty| ty.dtype);
        vec![dtype.map(|dtype| ValueType { dtype, dims: product_dims(inputs, 0, 3) })]
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        const OP: &str = "QLinearMatMul";
        for index in [0, 2, 3, 5, 7] {
            check_input_type(OP, inputs, index, EIGHT_BIT)?;
        }
        for index in [1, 4, 6] {
            check_input_type(OP, inputs, index, scale_types(self.version))?;
        }
        Ok(())
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "QLinearMatMul";
        let a = required(inputs, 0, OP)?;
        let a_scale = required(inputs, 1, OP)?;
        let a_zp = required(inputs, 2, OP)?;
        let b = required(inputs, 3, OP)?;
        let b_scale = required(inputs, 4, OP)?;
        let b_zp = required(inputs, 5, OP)?;
        let y_scale = required(inputs, 6, OP)?;
        let y_zp = required(inputs, 7, OP)?;
        let scale_type = a_scale.dtype();
        for scale in [&a_scale, &b_scale, &y_scale] {
            check_dtype(OP, scale.dtype(), scale_types(self.version))?;
            if scale.dtype() != scale_type {
                return Err(OpError::Invalid { op: OP, reason: "the three scales must have one type".into() });
            }
        }
        check_dtype(OP, y_zp.dtype(), EIGHT_BIT)?;
        if y_scale.len() != 1 || y_zp.len() != 1 {
            return Err(OpError::Invalid { op: OP, reason: "y_scale and y_zero_point must be one value each".into() });
        }
        let product = integer_product(OP, &a, Some(&a_zp), &b, Some(&b_zp), ctx)?;
        let (rows, _) = matrix_dims(a.shape(), true);
        let (_, cols) = matrix_dims(b.shape(), false);
        let a_scales = per_line(OP, "a_scale", a_scale.to_f64_vec(), rows)?;
        let b_scales = per_line(OP, "b_scale", b_scale.to_f64_vec(), cols)?;
        let y_scale = y_scale.to_f64_vec()[0];
        let y_zero = y_zp.to_f64_vec()[0];
        let (low, high) = if y_zp.dtype() == DType::I8 { (-128.0, 127.0) } else { (0.0, 255.0) };
        let values: Vec<f64> = product
            .to_f64_vec()
            .iter()
            .enumerate()
            .map(|(i, &sum)| {
                let (row, col) = ((i / cols.max(1)) % rows.max(1), i % cols.max(1));
                let multiplier = round_to(scale_type, round_to(scale_type, a_scales[row] * b_scales[col]) / y_scale);
                (sum * multiplier + y_zero).round_ties_even().clamp(low, high)
            })
            .collect();
        let array = ArrayD::from_shape_vec(IxDyn(product.shape()), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        super::cast::cast(&Tensor::from(array), y_zp.dtype())
    }
}

/// `x - zero_point` as float64 (exact: at most 9-bit integers), the zero
/// point one value or, with `per_channel`, one per index of x's first axis
/// (a weight's output channels).
fn centred_f64(
    op: &'static str,
    x: &Tensor,
    zero_point: Option<&Tensor>,
    per_channel: bool,
) -> Result<Tensor, OpError> {
    check_dtype(op, x.dtype(), EIGHT_BIT)?;
    let values = x.to_f64_vec();
    let shifted = match zero_point {
        None => values,
        Some(zp) => {
            if zp.dtype() != x.dtype() {
                return Err(OpError::Invalid {
                    op,
                    reason: format!("zero point is {} but its operand is {}", zp.dtype(), x.dtype()),
                });
            }
            let channels = x.shape().first().copied().unwrap_or(1);
            let lines = if per_channel && zp.len() != 1 { channels } else { 1 };
            let zps = per_line(op, "a zero point", zp.to_f64_vec(), lines)?;
            let per = (x.len() / channels.max(1)).max(1);
            values
                .iter()
                .enumerate()
                .map(|(i, &value)| value - zps.get(if lines == 1 { 0 } else { i / per }).copied().unwrap_or(0.0))
                .collect()
        }
    };
    let array = ArrayD::from_shape_vec(IxDyn(x.shape()), shifted)
        .map_err(|err| OpError::Invalid { op, reason: err.to_string() })?;
    Ok(Tensor::from(array))
}

/// Conv (its float64 kernel, exact on these integers) of the centred
/// operands, plus an int32 bias.
fn integer_conv(
    op: &'static str,
    conv: &Conv,
    x: Tensor,
    w: Tensor,
    bias: Option<&Tensor>,
    ctx: &ExecCtx<'_>,
) -> Result<Tensor, OpError> {
    let bias = match bias {
        Some(bias) => {
            check_dtype(op, bias.dtype(), &[DType::I32])?;
            Some(Cow::Owned(super::cast::cast(bias, DType::F64)?))
        }
        None => None,
    };
    let mut inputs = [Some(Cow::Owned(x)), Some(Cow::Owned(w)), bias];
    conv.run(&mut inputs, ctx).map_err(|err| OpError::Invalid { op, reason: err.to_string() })
}

/// ConvInteger: Conv's attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvInteger {
    conv: Conv,
}

impl ConvInteger {
    /// Reads Conv's attributes (`auto_pad`, `dilations`, `group`,
    /// `kernel_shape`, `pads`, `strides`).
    ///
    /// # Errors
    /// As Conv's.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(ConvInteger { conv: Conv::from_node(attrs, 11)? })
    }
}

impl Op for ConvInteger {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=4
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims =
            self.conv.infer(&inputs[..inputs.len().min(2)], 1).into_iter().next().flatten().and_then(|ty| ty.dims);
        vec![Some(ValueType { dtype: DType::I32, dims })]
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        for index in 0..4 {
            check_input_type("ConvInteger", inputs, index, EIGHT_BIT)?;
        }
        Ok(())
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "ConvInteger";
        let x = required(inputs, 0, OP)?;
        let w = required(inputs, 1, OP)?;
        let x_zp = inputs.get_mut(2).and_then(Option::take);
        let w_zp = inputs.get_mut(3).and_then(Option::take);
        let x = centred_f64(OP, &x, x_zp.as_deref(), false)?;
        let w = centred_f64(OP, &w, w_zp.as_deref(), true)?;
        let sums = integer_conv(OP, &self.conv, x, w, None, ctx)?;
        let values: Option<Vec<i32>> = sums
            .to_f64_vec()
            .iter()
            .map(|&sum| if sum.abs() <= f64::from(i32::MAX) { Some(sum as i32) } else { None })
            .collect();
        let values = values.ok_or(OpError::Invalid { op: OP, reason: "a sum of products overflows int32".into() })?;
        let array = ArrayD::from_shape_vec(IxDyn(sums.shape()), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        Ok(Tensor::from(array))
    }
}

/// QLinearConv: Conv's attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct QLinearConv {
    conv: Conv,
}

impl QLinearConv {
    /// Reads Conv's attributes.
    ///
    /// # Errors
    /// As Conv's.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(QLinearConv { conv: Conv::from_node(attrs, 11)? })
    }
}

impl Op for QLinearConv {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        8..=9
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let operands: Vec<InferInput<'_>> = [0, 3].iter().filter_map(|&index| inputs.get(index).cloned()).collect();
        let dims = self.conv.infer(&operands, 1).into_iter().next().flatten().and_then(|ty| ty.dims);
        let dtype = inputs.get(7).and_then(|input| input.ty).map(|ty| ty.dtype);
        vec![dtype.map(|dtype| ValueType { dtype, dims })]
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        const OP: &str = "QLinearConv";
        for index in [0, 2, 3, 5, 7] {
            check_input_type(OP, inputs, index, EIGHT_BIT)?;
        }
        for index in [1, 4, 6] {
            check_input_type(OP, inputs, index, &[DType::F32])?;
        }
        check_input_type(OP, inputs, 8, &[DType::I32])
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "QLinearConv";
        let x = required(inputs, 0, OP)?;
        let x_scale = required(inputs, 1, OP)?;
        let x_zp = required(inputs, 2, OP)?;
        let w = required(inputs, 3, OP)?;
        let w_scale = required(inputs, 4, OP)?;
        let w_zp = required(inputs, 5, OP)?;
        let y_scale = required(inputs, 6, OP)?;
        let y_zp = required(inputs, 7, OP)?;
        let bias = inputs.get_mut(8).and_then(Option::take);
        for scale in [&x_scale, &w_scale, &y_scale] {
            check_dtype(OP, scale.dtype(), &[DType::F32])?;
        }
        check_dtype(OP, y_zp.dtype(), EIGHT_BIT)?;
        if x_scale.len() != 1 || x_zp.len() != 1 || y_scale.len() != 1 || y_zp.len() != 1 {
            return Err(OpError::Invalid {
                op: OP,
                reason: "x_scale, x_zero_point, y_scale and y_zero_point must be one value each".into(),
            });
        }
        let channels = w.shape().first().copied().unwrap_or(1);
        let w_scales = per_line(OP, "w_scale", w_scale.to_f64_vec(), if w_scale.len() == 1 { 1 } else { channels })?;
        let xc = centred_f64(OP, &x, Some(&x_zp), false)?;
        let wc = centred_f64(OP, &w, Some(&w_zp), true)?;
        let sums = integer_conv(OP, &self.conv, xc, wc, bias.as_deref(), ctx)?;
        let x_scale = x_scale.to_f64_vec()[0];
        let y_scale = y_scale.to_f64_vec()[0];
        let y_zero = y_zp.to_f64_vec()[0];
        let (low, high) = if y_zp.dtype() == DType::I8 { (-128.0, 127.0) } else { (0.0, 255.0) };
        // Output channel of each element: axis 1 of [N, M, spatial...].
        let shape = sums.shape().to_vec();
        let spatial: usize = shape.iter().skip(2).product();
        let out_channels = shape.get(1).copied().unwrap_or(1).max(1);
        let values: Vec<f64> = sums
            .to_f64_vec()
            .iter()
            .enumerate()
            .map(|(i, &sum)| {
                let channel = (i / spatial.max(1)) % out_channels;
                let w_scale = w_scales.get(if w_scales.len() == 1 { 0 } else { channel }).copied().unwrap_or(1.0);
                // The reference's float32 multiplier, then float64.
                let multiplier = f64::from(((x_scale * w_scale) as f32 as f64 / y_scale) as f32);
                (sum * multiplier + y_zero).clamp(low, high).round_ties_even()
            })
            .collect();
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        super::cast::cast(&Tensor::from(array), y_zp.dtype())
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayD, IxDyn, arr0, array};

    use super::*;
    use crate::kernels::Parallel;

    fn run_op(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<Option<Cow<'_, Tensor>>> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        op.run(&mut inputs, &ctx)
    }

    /// Per-row zero points of A and per-column ones of B, against the sum
    /// written out here.
    #[test]
    fn matmul_integer_subtracts_per_row_and_per_column_zero_points() {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| (i * 50 + j * 13) as u8);
        let b = Array2::from_shape_fn((4, 2), |(i, j)| (i * 31 + j * 7) as u8);
        let a_zp = array![3u8, 100, 255];
        let b_zp = array![9u8, 0];
        let got = run_op(
            &MatMulInteger,
            vec![
                Tensor::from(a.clone().into_dyn()),
                Tensor::from(b.clone().into_dyn()),
                Tensor::from(a_zp.clone().into_dyn()),
                Tensor::from(b_zp.clone().into_dyn()),
            ],
        )
        .unwrap();
        let want = ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| {
            (0..4)
                .map(|k| {
                    (i32::from(a[[i[0], k]]) - i32::from(a_zp[i[0]]))
                        * (i32::from(b[[k, i[1]]]) - i32::from(b_zp[i[1]]))
                })
                .sum::<i32>()
        });
        assert_eq!(got, Tensor::from(want));
        let bad_zp = Tensor::from(array![1u8, 2].into_dyn());
        assert!(run_op(&MatMulInteger, vec![Tensor::from(a.into_dyn()), Tensor::from(b.into_dyn()), bad_zp]).is_err());
    }

    /// QLinearMatMul on a 1-D A: the spec's formula in f64 with the
    /// multiplier rounded to float32 at each step, as the reference does.
    #[test]
    fn qlinear_matmul_scales_rounds_and_saturates() {
        let a = array![-128i8, -5, 0, 77, 127];
        let b = Array2::from_shape_fn((5, 3), |(i, j)| (i as i8 - 2) * (j as i8 * 20 - 15));
        let (a_scale, b_scale, y_scale) = (0.05f32, 0.02f32, 0.03f32);
        let got = run_op(
            &QLinearMatMul { version: 10 },
            vec![
                Tensor::from(a.clone().into_dyn()),
                Tensor::from(arr0(a_scale).into_dyn()),
                Tensor::from(arr0(1i8).into_dyn()),
                Tensor::from(b.clone().into_dyn()),
                Tensor::from(arr0(b_scale).into_dyn()),
                Tensor::from(arr0(-2i8).into_dyn()),
                Tensor::from(arr0(y_scale).into_dyn()),
                Tensor::from(arr0(10i8).into_dyn()),
            ],
        )
        .unwrap();
        let multiplier = f64::from((a_scale * b_scale) / y_scale);
        let want = ArrayD::from_shape_fn(IxDyn(&[3]), |j| {
            let sum: f64 = (0..5).map(|k| (f64::from(a[k]) - 1.0) * (f64::from(b[[k, j[0]]]) + 2.0)).sum();
            (sum * multiplier + 10.0).round_ties_even().clamp(-128.0, 127.0) as i8
        });
        assert_eq!(got, Tensor::from(want));
    }

    fn conv_1d(pads: usize) -> Conv {
        use crate::ops::conv::{AutoPad, WindowAttrs};
        Conv {
            window: WindowAttrs {
                auto_pad: AutoPad::NotSet,
                kernel_shape: None,
                strides: None,
                dilations: None,
                pads: Some(vec![pads, pads]),
            },
            group: 1,
            dtypes: crate::ops::FLOATS,
            epilogue: None,
        }
    }

    /// A 1-D convolution with per-output-channel weight zero points and
    /// scales and a padded border, against the sums written out here
    /// (padding contributes zero after the zero point is subtracted).
    #[test]
    fn integer_convolutions_match_the_definition() {
        let x = array![[[7u8, 200, 13, 0, 255]]];
        let w = array![[[1u8, 2, 3]], [[250u8, 9, 100]]];
        let (x_zp, w_zp) = (5u8, [2u8, 100]);
        // Output [1, 2, 5] with one zero of padding on each side.
        let sums = ArrayD::from_shape_fn(IxDyn(&[1, 2, 5]), |i| {
            (0..3)
                .map(|k| {
                    let pos = i[2] as i64 + k as i64 - 1;
                    let xv =
                        if (0..5).contains(&pos) { i32::from(x[[0, 0, pos as usize]]) - i32::from(x_zp) } else { 0 };
                    xv * (i32::from(w[[i[1], 0, k]]) - i32::from(w_zp[i[1]]))
                })
                .sum::<i32>()
        });
        let op = ConvInteger { conv: conv_1d(1) };
        let got = run_op(
            &op,
            vec![
                Tensor::from(x.clone().into_dyn()),
                Tensor::from(w.clone().into_dyn()),
                Tensor::from(arr0(x_zp).into_dyn()),
                Tensor::from(array![w_zp[0], w_zp[1]].into_dyn()),
            ],
        )
        .unwrap();
        assert_eq!(got, Tensor::from(sums.clone()));
        let (x_scale, w_scales, y_scale) = (0.5f32, [0.25f32, 0.125], 4f32);
        let got = run_op(
            &QLinearConv { conv: conv_1d(1) },
            vec![
                Tensor::from(x.into_dyn()),
                Tensor::from(arr0(x_scale).into_dyn()),
                Tensor::from(arr0(x_zp).into_dyn()),
                Tensor::from(w.into_dyn()),
                Tensor::from(array![w_scales[0], w_scales[1]].into_dyn()),
                Tensor::from(array![w_zp[0], w_zp[1]].into_dyn()),
                Tensor::from(arr0(y_scale).into_dyn()),
                Tensor::from(arr0(128u8).into_dyn()),
            ],
        )
        .unwrap();
        let want = sums.mapv(|_| 0u8);
        let want = ArrayD::from_shape_fn(want.raw_dim(), |i| {
            let multiplier = f64::from(x_scale * w_scales[i[1]] / y_scale);
            (f64::from(sums[[0, i[1], i[2]]]) * multiplier + 128.0).round_ties_even().clamp(0.0, 255.0) as u8
        });
        assert_eq!(got, Tensor::from(want));
    }
}
