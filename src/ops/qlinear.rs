//! The quantized matrix products: MatMulInteger and QLinearMatMul.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__MatMulInteger.html>,
//! <https://onnx.ai/onnx/operators/onnx__QLinearMatMul.html>
//!
//! | op            | opset | change                                                 |
//! |---------------|-------|--------------------------------------------------------|
//! | MatMulInteger | 10    | first version: int8/uint8 in, int32 out                |
//! | QLinearMatMul | 10    | first version: int8/uint8, float32 scales              |
//! | QLinearMatMul | 21    | float16/bfloat16 scales; float8 types (not held here)  |
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
}
