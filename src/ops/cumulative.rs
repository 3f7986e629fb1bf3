//! Running sums and products along one axis: CumSum and CumProd.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__CumSum.html>
//! - <https://onnx.ai/onnx/operators/onnx__CumProd.html>
//!
//! | op      | opset | types |
//! |---------|-------|-------|
//! | CumSum  | 11    | int32, int64, uint32, uint64, float32, float64 |
//! | CumSum  | 14    | adds float16 and bfloat16 |
//! | CumProd | 26    | int32, int64, uint32, uint64, float16/32/64, bfloat16 |
//!
//! Both take `x` and `axis` (a one-element int32 or int64 tensor, negative
//! counting from the end) and the attributes `exclusive` (the element
//! itself left out: the first output is 0 for CumSum, 1 for CumProd) and
//! `reverse` (from the end of the axis backwards), each 0 by default.
//!
//! The running value is kept in the element type, one step at a time
//! from the start of the lane, as the ONNX reference's `np.cumsum(x,
//! dtype=x.dtype)` does: float16 and bfloat16 round after every step,
//! float32 sums in float32 (so their rounding errors are the reference's
//! ones, not a more accurate sum), integers wrap on overflow.

use std::borrow::Cow;

use half::{bf16, f16};

use super::FLOATS_BF16_INTS_32_64;
use super::elementwise::{inplace, take_unique};
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::kernels::Parallel;
use crate::kernels::broadcast::Arithmetic;
use crate::tensor::{DType, Element, SharedArray, Tensor};

/// Registers CumSum and CumProd.
pub fn register(reg: &mut Registry) {
    reg.add("", "CumSum", &[11, 14], cum_sum_dtypes, |attrs, version| {
        Cumulative::from_node(attrs, version, Accumulation::Sum)
    });
    reg.add(
        "",
        "CumProd",
        &[26],
        |_| FLOATS_BF16_INTS_32_64,
        |attrs, version| Cumulative::from_node(attrs, version, Accumulation::Product),
    );
}

/// CumSum's types: without float16 and bfloat16 at 11.
fn cum_sum_dtypes(version: i64) -> &'static [DType] {
    const AT_11: &[DType] = &[DType::F32, DType::F64, DType::I32, DType::I64, DType::U32, DType::U64];
    if version >= 14 { FLOATS_BF16_INTS_32_64 } else { AT_11 }
}

/// What is accumulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accumulation {
    /// CumSum: `+`, from 0.
    Sum,
    /// CumProd: `*`, from 1.
    Product,
}

impl Accumulation {
    fn name(self) -> &'static str {
        match self {
            Accumulation::Sum => "CumSum",
            Accumulation::Product => "CumProd",
        }
    }
}

/// CumSum or CumProd as a configured node.
#[derive(Debug, Clone, PartialEq)]
pub struct Cumulative {
    /// Sum or product.
    pub accumulation: Accumulation,
    /// Leave each element out of its own output (`exclusive`).
    pub exclusive: bool,
    /// Run from the end of the axis (`reverse`).
    pub reverse: bool,
    dtypes: &'static [DType],
}

impl Cumulative {
    /// Reads `exclusive` and `reverse` (0 or 1, default 0).
    ///
    /// # Errors
    /// An attribute of the wrong type, or a value other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64, accumulation: Accumulation) -> Result<Self, LoadError> {
        let mut flag = |name: &str| match attrs.i64(name)?.unwrap_or(0) {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(attrs.error(name, format!("must be 0 or 1, got {other}"))),
        };
        let exclusive = flag("exclusive")?;
        let reverse = flag("reverse")?;
        let dtypes = match accumulation {
            Accumulation::Sum => cum_sum_dtypes(version),
            Accumulation::Product => FLOATS_BF16_INTS_32_64,
        };
        Ok(Cumulative { accumulation, exclusive, reverse, dtypes })
    }
}

/// An element type CumSum and CumProd accumulate in: [`Arithmetic`]'s
/// wrapping integer and once-rounded float steps, and the identities.
pub trait Accumulate: Arithmetic + Element + Default {
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
}

macro_rules! accumulate {
    ($($ty:ty: $zero:expr, $one:expr);* $(;)?) => {$(
        impl Accumulate for $ty {
            const ZERO: Self = $zero;
            const ONE: Self = $one;
        }
    )*};
}

accumulate!(
    f32: 0.0, 1.0; f64: 0.0, 1.0; f16: f16::ZERO, f16::ONE; bf16: bf16::ZERO, bf16::ONE;
    i32: 0, 1; i64: 0, 1; u32: 0, 1; u64: 0, 1;
);

/// The running sum or product along the middle axis of `data` viewed as
/// `[outer, n, inner]` (row-major), in place; slabs of `n * inner`
/// elements are split across `par`'s threads, each lane serial.
pub fn cumulative<T: Accumulate>(
    data: &mut [T],
    n: usize,
    inner: usize,
    accumulation: Accumulation,
    exclusive: bool,
    reverse: bool,
    par: &Parallel,
) {
    let (identity, step): (T, fn(T, T) -> T) = match accumulation {
        Accumulation::Sum => (T::ZERO, T::add),
        Accumulation::Product => (T::ONE, T::mul),
    };
    par.rows(data, n * inner, |slab| {
        let mut acc = vec![identity; inner];
        let mut visit = |row: &mut [T]| {
            for (out, acc) in row.iter_mut().zip(&mut acc) {
                let next = step(*acc, *out);
                *out = if exclusive { *acc } else { next };
                *acc = next;
            }
        };
        if reverse {
            slab.chunks_mut(inner).rev().for_each(&mut visit);
        } else {
            slab.chunks_mut(inner).for_each(&mut visit);
        }
    });
}

impl Cumulative {
    fn run_typed<T: Accumulate>(&self, x: Cow<'_, Tensor>, axis: usize, ctx: &ExecCtx<'_>) -> Option<Tensor> {
        let shape = x.shape().to_vec();
        let n = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let kernel = |data: &mut [T], par: &Parallel| {
            cumulative(data, n, inner, self.accumulation, self.exclusive, self.reverse, par);
        };
        let array: SharedArray<T> = match take_unique::<T>(x) {
            Ok(array) => array,
            Err(x) => T::view(&x)?.as_standard_layout().into_owned().into_shared(),
        };
        Some(T::wrap_shared(inplace(array, ctx.par, kernel)))
    }
}

/// The axis from the `axis` input: one int32 or int64 element.
fn read_axis(op: &'static str, axis: &Tensor, rank: usize) -> Result<usize, OpError> {
    let values = match axis {
        Tensor::I64(array) => array.iter().copied().collect::<Vec<i64>>(),
        Tensor::I32(array) => array.iter().map(|&v| i64::from(v)).collect(),
        other => return Err(OpError::UnsupportedDtype { op, dtype: other.dtype() }),
    };
    match values[..] {
        [value] if axis.shape().len() <= 1 => normalize_axis(op, value, rank),
        _ => Err(OpError::Invalid {
            op,
            reason: format!("axis must be a single integer (a 0-D tensor), got shape {:?}", axis.shape()),
        }),
    }
}

impl Op for Cumulative {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        let op = self.accumulation.name();
        if let Some(ty) = inputs.first().and_then(|input| input.ty) {
            check_dtype(op, ty.dtype, self.dtypes)?;
        }
        if let Some(ty) = inputs.get(1).and_then(|input| input.ty) {
            check_dtype(op, ty.dtype, &[DType::I32, DType::I64])?;
        }
        Ok(())
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let op = self.accumulation.name();
        let x = required(inputs, 0, op)?;
        let axis = required(inputs, 1, op)?;
        let dtype = x.dtype();
        check_dtype(op, dtype, self.dtypes)?;
        // A scalar has no axis: rank 0 refuses every axis.
        let axis = read_axis(op, &axis, x.shape().len())?;
        match dtype {
            DType::F32 => self.run_typed::<f32>(x, axis, ctx),
            DType::F64 => self.run_typed::<f64>(x, axis, ctx),
            DType::F16 => self.run_typed::<f16>(x, axis, ctx),
            DType::BF16 => self.run_typed::<bf16>(x, axis, ctx),
            DType::I32 => self.run_typed::<i32>(x, axis, ctx),
            DType::I64 => self.run_typed::<i64>(x, axis, ctx),
            DType::U32 => self.run_typed::<u32>(x, axis, ctx),
            DType::U64 => self.run_typed::<u64>(x, axis, ctx),
            _ => None,
        }
        .ok_or(OpError::UnsupportedDtype { op, dtype })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn, array};

    use super::*;

    fn node(accumulation: Accumulation, exclusive: bool, reverse: bool, version: i64) -> Cumulative {
        let dtypes = match accumulation {
            Accumulation::Sum => cum_sum_dtypes(version),
            Accumulation::Product => FLOATS_BF16_INTS_32_64,
        };
        Cumulative { accumulation, exclusive, reverse, dtypes }
    }

    fn run(op: &Cumulative, x: Tensor, axis: Tensor) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        op.run(&mut [Some(Cow::Owned(x)), Some(Cow::Owned(axis))], &ctx)
    }

    fn axis(value: i64) -> Tensor {
        Tensor::from(ndarray::arr0(value).into_dyn())
    }

    #[test]
    fn the_spec_examples_in_all_four_modes() {
        // The spec's table for [1, 2, 3].
        let x = || Tensor::from(array![1.0f64, 2.0, 3.0].into_dyn());
        let sum = |exclusive, reverse| run(&node(Accumulation::Sum, exclusive, reverse, 14), x(), axis(0)).unwrap();
        assert_eq!(sum(false, false).to_f64_vec(), [1.0, 3.0, 6.0]);
        assert_eq!(sum(true, false).to_f64_vec(), [0.0, 1.0, 3.0]);
        assert_eq!(sum(false, true).to_f64_vec(), [6.0, 5.0, 3.0]);
        assert_eq!(sum(true, true).to_f64_vec(), [5.0, 3.0, 0.0]);
        let prod =
            |exclusive, reverse| run(&node(Accumulation::Product, exclusive, reverse, 26), x(), axis(0)).unwrap();
        assert_eq!(prod(false, false).to_f64_vec(), [1.0, 2.0, 6.0]);
        assert_eq!(prod(true, false).to_f64_vec(), [1.0, 1.0, 2.0]);
        assert_eq!(prod(false, true).to_f64_vec(), [6.0, 6.0, 3.0]);
        assert_eq!(prod(true, true).to_f64_vec(), [6.0, 3.0, 1.0]);
    }

    #[test]
    fn axes_negative_int32_and_transposed_inputs() {
        let matrix = array![[1i64, 2, 3], [4, 5, 6]];
        let sum = node(Accumulation::Sum, false, false, 11);
        let by_rows = run(&sum, Tensor::from(matrix.clone().into_dyn()), axis(0)).unwrap();
        assert_eq!(by_rows.to_f64_vec(), [1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
        let by_cols = Tensor::from(array![-1i32].into_dyn());
        let y = run(&sum, Tensor::from(matrix.clone().into_dyn()), by_cols).unwrap();
        assert_eq!(y.to_f64_vec(), [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
        // The transpose [[1, 4], [2, 5], [3, 6]] summed down its columns.
        let y = run(&sum, Tensor::from(matrix.reversed_axes().into_dyn()), axis(0)).unwrap();
        assert_eq!((y.shape().to_vec(), y.to_f64_vec()), (vec![3, 2], vec![1.0, 4.0, 3.0, 9.0, 6.0, 15.0]));
        // The middle axis of [2, 2, 2], exclusive and reversed.
        let cube = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 2, 2]), (1..=8u32).collect()).unwrap());
        let y = run(&node(Accumulation::Sum, true, true, 11), cube, axis(1)).unwrap();
        assert_eq!(y.to_f64_vec(), [3.0, 4.0, 0.0, 0.0, 7.0, 8.0, 0.0, 0.0]);
    }

    #[test]
    fn integers_wrap_and_floats_accumulate_in_their_own_type() {
        let y = run(
            &node(Accumulation::Product, false, false, 26),
            Tensor::from(array![65536i32, 65536, 3].into_dyn()),
            axis(0),
        );
        assert_eq!(y.unwrap().to_f64_vec(), [65536.0, 0.0, 0.0]);
        let y = run(&node(Accumulation::Sum, false, false, 11), Tensor::from(array![u32::MAX, 2].into_dyn()), axis(0));
        assert_eq!(y.unwrap().to_f64_vec(), [4294967295.0, 1.0]);
        // float32: 2^24 + 1 + 1 stays 2^24 step by step (float64 would give 2^24 + 2).
        let y = run(
            &node(Accumulation::Sum, false, false, 11),
            Tensor::from(array![16_777_216f32, 1.0, 1.0].into_dyn()),
            axis(0),
        );
        assert_eq!(y.unwrap().to_f64_vec(), [16_777_216.0, 16_777_216.0, 16_777_216.0]);
        // float16: 2048 + 1 rounds back to 2048 (ties to even), each step.
        let halves = Tensor::from(array![f16::from_f32(2048.0), f16::ONE, f16::ONE].into_dyn());
        let y = run(&node(Accumulation::Sum, false, false, 14), halves, axis(0)).unwrap();
        assert_eq!(y.to_f64_vec(), [2048.0, 2048.0, 2048.0]);
        // NaN and inf propagate along the lane.
        let y = run(
            &node(Accumulation::Product, false, false, 26),
            Tensor::from(array![f64::INFINITY, 0.0, 2.0].into_dyn()),
            axis(0),
        );
        assert!(y.unwrap().to_f64_vec().iter().skip(1).all(|v| v.is_nan()));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let sum = node(Accumulation::Sum, false, false, 11);
        let x = || Tensor::from(array![1.0f32, 2.0].into_dyn());
        assert_eq!(run(&sum, x(), axis(1)), Err(OpError::AxisOutOfRange { op: "CumSum", axis: 1, rank: 1 }));
        assert!(matches!(run(&sum, x(), Tensor::from(array![0i64, 0].into_dyn())), Err(OpError::Invalid { .. })));
        assert_eq!(
            run(&sum, x(), Tensor::from(array![0f32].into_dyn())),
            Err(OpError::UnsupportedDtype { op: "CumSum", dtype: DType::F32 })
        );
        let halves = Tensor::from(array![f16::ONE].into_dyn());
        assert_eq!(run(&sum, halves, axis(0)), Err(OpError::UnsupportedDtype { op: "CumSum", dtype: DType::F16 }));
        let scalar = Tensor::from(ndarray::arr0(1.0f32).into_dyn());
        assert!(matches!(run(&sum, scalar, axis(0)), Err(OpError::AxisOutOfRange { .. })));
        let empty = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[0, 3])));
        assert_eq!(run(&sum, empty, axis(1)).unwrap().shape(), [0, 3]);
        let i8s = Tensor::from(array![1i8].into_dyn());
        assert_eq!(run(&sum, i8s, axis(0)), Err(OpError::UnsupportedDtype { op: "CumSum", dtype: DType::I8 }));
    }

    #[test]
    fn large_inputs_split_across_threads_match_serial() -> Result<(), String> {
        // 64 slabs of [1000, 3]: the rows are split across threads.
        let data: Vec<f32> = (0..64 * 3000).map(|idx| ((idx * 37 % 101) as f32 - 50.0) * 0.01).collect();
        let mut serial = data.clone();
        cumulative(&mut serial, 1000, 3, Accumulation::Sum, false, true, &Parallel::serial());
        let mut threaded = data.clone();
        cumulative(&mut threaded, 1000, 3, Accumulation::Sum, false, true, &Parallel::with_threads(4)?);
        assert!(serial.iter().zip(&threaded).all(|(a, b)| a.to_bits() == b.to_bits()));
        // Spot-check one lane against a float32 sum written here.
        let lane_sum: f32 = (0..1000).rev().map(|row| data[5 * 3000 + row * 3 + 1]).fold(0.0, |acc, v| acc + v);
        assert_eq!(serial[5 * 3000 + 1], lane_sum);
        Ok(())
    }
}
