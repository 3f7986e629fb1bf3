//! Bitwise integer ops: BitShift, BitwiseAnd, BitwiseOr, BitwiseXor (two
//! inputs, numpy broadcasting through [`crate::kernels::broadcast`], as
//! Add's) and BitwiseNot (one input).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__BitShift.html>
//! - <https://onnx.ai/onnx/operators/onnx__BitwiseAnd.html>
//! - <https://onnx.ai/onnx/operators/onnx__BitwiseOr.html>
//! - <https://onnx.ai/onnx/operators/onnx__BitwiseXor.html>
//! - <https://onnx.ai/onnx/operators/onnx__BitwiseNot.html>
//!
//! | op | opset | types |
//! |----|-------|-------|
//! | BitShift | 11 | uint8, uint16, uint32, uint64; `direction` LEFT or RIGHT (required) |
//! | BitShift | 28 | adds int8..int64: RIGHT shifts arithmetically (sign-extending) |
//! | BitwiseAnd, BitwiseOr, BitwiseXor, BitwiseNot | 18 | every 8- to 64-bit integer type |
//!
//! A shift by the type's width or more, or (signed types) by a negative
//! amount, leaves only what the fill produces: 0, or -1 for a right shift
//! of a negative value (opset 28's wording; for the unsigned types of
//! opset 11 that is 0, where C++ leaves it undefined). Left shifts drop
//! the bits shifted out, the sign bit included.

use std::borrow::Cow;

use ndarray::ArrayViewD;

use super::binary::{Broadcasting, infer_pair, place, same_typed_pair};
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::kernels::broadcast::{self, BroadcastError};
use crate::tensor::{DType, Element, Tensor};

/// Registers BitShift, BitwiseAnd, BitwiseOr, BitwiseXor and BitwiseNot.
pub fn register(reg: &mut Registry) {
    reg.add("", "BitShift", &[11, 28], bit_shift_dtypes, BitShift::from_node);
    reg.add("", "BitwiseAnd", &[18], |_| INTEGERS, |_, _| Ok(Bitwise::new(BitOp::And)));
    reg.add("", "BitwiseOr", &[18], |_| INTEGERS, |_, _| Ok(Bitwise::new(BitOp::Or)));
    reg.add("", "BitwiseXor", &[18], |_| INTEGERS, |_, _| Ok(Bitwise::new(BitOp::Xor)));
    reg.add("", "BitwiseNot", &[18], |_| INTEGERS, |_, _| Ok(BitwiseNot));
}

/// Every integer type, unsigned first (the order of the schemas).
const INTEGERS: &[DType] =
    &[DType::U8, DType::U16, DType::U32, DType::U64, DType::I8, DType::I16, DType::I32, DType::I64];

/// BitShift's types: unsigned at 11, every integer type at 28.
fn bit_shift_dtypes(version: i64) -> &'static [DType] {
    if version >= 28 { INTEGERS } else { &INTEGERS[..4] }
}

/// The integer element types, with the bitwise operations as ONNX defines
/// them (shifts included, for any amount).
pub trait Bits: Element + Default + Copy + Send + Sync + 'static {
    /// `self & rhs`.
    fn and(self, rhs: Self) -> Self;
    /// `self | rhs`.
    fn or(self, rhs: Self) -> Self;
    /// `self ^ rhs`.
    fn xor(self, rhs: Self) -> Self;
    /// `!self`, every bit flipped.
    fn not(self) -> Self;
    /// `self << amount`, bits shifted out dropped; 0 when `amount` is
    /// negative or at least the width.
    fn shift_left(self, amount: Self) -> Self;
    /// `self >> amount`, arithmetic for signed types; when `amount` is
    /// negative or at least the width, the fill alone (-1 for a negative
    /// value, else 0).
    fn shift_right(self, amount: Self) -> Self;
}

macro_rules! bits {
    ($($ty:ty => $fill:expr),* $(,)?) => {$(
        impl Bits for $ty {
            #[inline(always)]
            fn and(self, rhs: Self) -> Self { self & rhs }
            #[inline(always)]
            fn or(self, rhs: Self) -> Self { self | rhs }
            #[inline(always)]
            fn xor(self, rhs: Self) -> Self { self ^ rhs }
            #[inline(always)]
            fn not(self) -> Self { !self }
            #[inline(always)]
            fn shift_left(self, amount: Self) -> Self {
                match u32::try_from(amount) {
                    Ok(amount) if amount < <$ty>::BITS => self << amount,
                    _ => 0,
                }
            }
            #[inline(always)]
            fn shift_right(self, amount: Self) -> Self {
                match u32::try_from(amount) {
                    Ok(amount) if amount < <$ty>::BITS => self >> amount,
                    _ => {
                        let fill: fn($ty) -> $ty = $fill;
                        fill(self)
                    }
                }
            }
        }
    )*};
}

// The fill of a signed type is its sign spread over every bit (the
// arithmetic shift by width - 1); an unsigned type fills with 0.
bits!(
    u8 => |_| 0, u16 => |_| 0, u32 => |_| 0, u64 => |_| 0,
    i8 => |x| x >> 7, i16 => |x| x >> 15, i32 => |x| x >> 31, i64 => |x| x >> 63,
);

/// The two-input bitwise operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    /// BitwiseAnd.
    And,
    /// BitwiseOr.
    Or,
    /// BitwiseXor.
    Xor,
    /// BitShift with `direction = "LEFT"`.
    ShiftLeft,
    /// BitShift with `direction = "RIGHT"`.
    ShiftRight,
}

impl BitOp {
    /// The ONNX op_type.
    pub fn name(self) -> &'static str {
        match self {
            BitOp::And => "BitwiseAnd",
            BitOp::Or => "BitwiseOr",
            BitOp::Xor => "BitwiseXor",
            BitOp::ShiftLeft | BitOp::ShiftRight => "BitShift",
        }
    }

    /// The scalar body on `T`.
    fn func<T: Bits>(self) -> fn(T, T) -> T {
        match self {
            BitOp::And => T::and,
            BitOp::Or => T::or,
            BitOp::Xor => T::xor,
            BitOp::ShiftLeft => T::shift_left,
            BitOp::ShiftRight => T::shift_right,
        }
    }
}

/// A two-input bitwise op as a configured node: BitwiseAnd, BitwiseOr,
/// BitwiseXor, and BitShift (see [`BitShift::from_node`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Bitwise {
    /// The operation.
    pub op: BitOp,
    dtypes: &'static [DType],
}

impl Bitwise {
    /// BitwiseAnd, BitwiseOr or BitwiseXor (opset 18, every integer type).
    pub fn new(op: BitOp) -> Self {
        Bitwise { op, dtypes: INTEGERS }
    }

    /// `f` over A and B broadcast, on element type `T`.
    fn run_typed<T: Bits>(&self, a: &Tensor, b: &Tensor, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let name = self.op.name();
        let wrong = |tensor: &Tensor| OpError::UnsupportedDtype { op: name, dtype: tensor.dtype() };
        let av: ArrayViewD<'_, T> = T::view(a).ok_or_else(|| wrong(a))?;
        let bv: ArrayViewD<'_, T> = T::view(b).ok_or_else(|| wrong(b))?;
        let (bv, out_shape) = place(name, Broadcasting::Numpy, &av, bv)?;
        ctx.checked_elems(name, T::DTYPE, &out_shape)?;
        let kernel_err = |err: BroadcastError| OpError::Invalid { op: name, reason: err.to_string() };
        let mut out = ctx.output::<T>(&out_shape);
        let dst = out.as_slice_mut().ok_or(kernel_err(BroadcastError::BadOutput))?;
        broadcast::binary_into(&av, &bv, &out_shape, dst, self.op.func::<T>(), ctx.par).map_err(kernel_err)?;
        Ok(T::wrap(out))
    }
}

impl Op for Bitwise {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        infer_pair(Broadcasting::Numpy, inputs, None)
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        for input in inputs.iter().filter_map(|input| input.ty) {
            check_dtype(self.op.name(), input.dtype, self.dtypes)?;
        }
        Ok(())
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let (a, b) = same_typed_pair(self.op.name(), inputs, self.dtypes)?;
        match a.dtype() {
            DType::U8 => self.run_typed::<u8>(&a, &b, ctx),
            DType::U16 => self.run_typed::<u16>(&a, &b, ctx),
            DType::U32 => self.run_typed::<u32>(&a, &b, ctx),
            DType::U64 => self.run_typed::<u64>(&a, &b, ctx),
            DType::I8 => self.run_typed::<i8>(&a, &b, ctx),
            DType::I16 => self.run_typed::<i16>(&a, &b, ctx),
            DType::I32 => self.run_typed::<i32>(&a, &b, ctx),
            DType::I64 => self.run_typed::<i64>(&a, &b, ctx),
            dtype => Err(OpError::UnsupportedDtype { op: self.op.name(), dtype }),
        }
    }
}

/// BitShift: `X` shifted by `Y` bits (numpy broadcasting), toward the
/// direction the required `direction` attribute names.
/// <https://onnx.ai/onnx/operators/onnx__BitShift.html>
#[derive(Debug)]
pub struct BitShift;

impl BitShift {
    /// Reads `direction` ("LEFT" or "RIGHT", required; no default in the
    /// schema).
    ///
    /// # Errors
    /// A missing `direction`, or another value.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Bitwise, LoadError> {
        let op = match attrs.string("direction")?.as_deref() {
            Some("LEFT") => BitOp::ShiftLeft,
            Some("RIGHT") => BitOp::ShiftRight,
            Some(other) => return Err(attrs.error("direction", format!("must be LEFT or RIGHT, got {other:?}"))),
            None => return Err(attrs.error("direction", "is required (LEFT or RIGHT)")),
        };
        Ok(Bitwise { op, dtypes: bit_shift_dtypes(version) })
    }
}

/// BitwiseNot: every bit of `X` flipped.
/// <https://onnx.ai/onnx/operators/onnx__BitwiseNot.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitwiseNot;

/// `!x` for each element of a tensor of `T`, in place when the buffer was
/// handed over and nobody else holds it.
fn not_typed<T: Bits>(x: Cow<'_, Tensor>, ctx: &ExecCtx<'_>) -> Option<Tensor> {
    match super::elementwise::take_unique::<T>(x) {
        Ok(mut array) => {
            array.mapv_inplace(T::not);
            Some(T::wrap_shared(array))
        }
        Err(x) => {
            let view = T::view(&x)?;
            let mut out = ctx.output::<T>(view.shape());
            out.zip_mut_with(&view, |dst, &src| *dst = src.not());
            Some(T::wrap(out))
        }
    }
}

impl Op for BitwiseNot {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        match inputs.first().and_then(|input| input.ty) {
            Some(ty) => check_dtype("BitwiseNot", ty.dtype, INTEGERS),
            None => Ok(()),
        }
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "BitwiseNot")?;
        let dtype = x.dtype();
        check_dtype("BitwiseNot", dtype, INTEGERS)?;
        match dtype {
            DType::U8 => not_typed::<u8>(x, ctx),
            DType::U16 => not_typed::<u16>(x, ctx),
            DType::U32 => not_typed::<u32>(x, ctx),
            DType::U64 => not_typed::<u64>(x, ctx),
            DType::I8 => not_typed::<i8>(x, ctx),
            DType::I16 => not_typed::<i16>(x, ctx),
            DType::I32 => not_typed::<i32>(x, ctx),
            DType::I64 => not_typed::<i64>(x, ctx),
            _ => None,
        }
        .ok_or(OpError::UnsupportedDtype { op: "BitwiseNot", dtype })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn, array};

    use super::*;
    use crate::kernels::Parallel;

    fn direction(value: &str) -> Vec<crate::onnx::AttributeProto> {
        vec![crate::onnx::AttributeProto {
            name: Some("direction".into()),
            r#type: Some(crate::onnx::attribute_proto::AttributeType::String as i32),
            s: Some(value.as_bytes().to_vec()),
            ..Default::default()
        }]
    }

    fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        op.run(&mut inputs, &ctx)
    }

    fn shift(dir: &str, version: i64) -> Bitwise {
        BitShift::from_node(&mut Attrs::new("n", "BitShift", &direction(dir), 0), version).unwrap()
    }

    #[test]
    fn shifts_by_any_amount_on_every_integer_type() {
        // Expected values worked out by hand from the spec's rules.
        let left = shift("LEFT", 11);
        let right = shift("RIGHT", 11);
        let x = Tensor::from(array![1u8, 4, 255, 128, 3].into_dyn());
        let y = Tensor::from(array![1u8, 1, 4, 7, 8].into_dyn());
        assert_eq!(run(&left, vec![x.clone(), y.clone()]).unwrap().to_f64_vec(), [2.0, 8.0, 240.0, 0.0, 0.0]);
        assert_eq!(run(&right, vec![x, y]).unwrap().to_f64_vec(), [0.0, 2.0, 15.0, 1.0, 0.0]);
        let x = Tensor::from(array![u64::MAX, 1].into_dyn());
        let y = Tensor::from(array![63u64, 64].into_dyn());
        assert_eq!(
            run(&right, vec![x.clone(), y.clone()]).unwrap().view::<u64>().unwrap().iter().copied().collect::<Vec<_>>(),
            [1, 0]
        );
        assert_eq!(
            run(&left, vec![x, y]).unwrap().view::<u64>().unwrap().iter().copied().collect::<Vec<_>>(),
            [1u64 << 63, 0]
        );
        // Signed types only from 28.
        let signed = vec![Tensor::from(array![-8i32].into_dyn()), Tensor::from(array![1i32].into_dyn())];
        assert_eq!(run(&right, signed.clone()), Err(OpError::UnsupportedDtype { op: "BitShift", dtype: DType::I32 }));
        let (left, right) = (shift("LEFT", 28), shift("RIGHT", 28));
        let x = Tensor::from(array![-8i8, -8, -8, -8, 7, 64, -1, 1].into_dyn());
        let y = Tensor::from(array![1i8, 3, 8, -1, 8, 1, 7, -3].into_dyn());
        assert_eq!(
            run(&right, vec![x.clone(), y.clone()]).unwrap().to_f64_vec(),
            [-4.0, -1.0, -1.0, -1.0, 0.0, 32.0, -1.0, 0.0]
        );
        assert_eq!(run(&left, vec![x, y]).unwrap().to_f64_vec(), [-16.0, -64.0, 0.0, 0.0, 0.0, -128.0, -128.0, 0.0]);
        let x = Tensor::from(array![i64::MIN, i64::MAX].into_dyn());
        let y = Tensor::from(array![63i64, 62].into_dyn());
        assert_eq!(
            run(&right, vec![x, y]).unwrap().view::<i64>().unwrap().iter().copied().collect::<Vec<_>>(),
            [-1, 1]
        );
    }

    #[test]
    fn direction_is_required_and_checked() {
        assert!(BitShift::from_node(&mut Attrs::new("n", "BitShift", &[], 0), 11).is_err());
        assert!(BitShift::from_node(&mut Attrs::new("n", "BitShift", &direction("left"), 0), 11).is_err());
    }

    #[test]
    fn and_or_xor_broadcast_and_check_types() {
        let a =
            Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0b1100i16, 0b1010, -1, 0, 7, i16::MIN]).unwrap());
        let b = Tensor::from(array![0b1010i16].into_dyn());
        let and = run(&Bitwise::new(BitOp::And), vec![a.clone(), b.clone()]).unwrap();
        assert_eq!((and.shape().to_vec(), and.to_f64_vec()), (vec![2, 3], vec![8.0, 10.0, 10.0, 0.0, 2.0, 0.0]));
        let or = run(&Bitwise::new(BitOp::Or), vec![b.clone(), a.clone()]).unwrap();
        assert_eq!(or.to_f64_vec(), [14.0, 10.0, -1.0, 10.0, 15.0, -32758.0]);
        let xor = run(&Bitwise::new(BitOp::Xor), vec![a.clone(), b]).unwrap();
        assert_eq!(xor.to_f64_vec(), [6.0, 0.0, -11.0, 10.0, 13.0, -32758.0]);
        // A column against a row: an outer table.
        let col = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[3, 1]), vec![1u8, 2, 255]).unwrap());
        let row = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![3u8, 4]).unwrap());
        let table = run(&Bitwise::new(BitOp::Xor), vec![col, row]).unwrap();
        assert_eq!((table.shape().to_vec(), table.to_f64_vec()), (vec![3, 2], vec![2.0, 5.0, 1.0, 6.0, 252.0, 251.0]));
        // Mixed types, floats, shapes that do not meet, an output past the limit.
        let mixed = vec![a.clone(), Tensor::from(array![1i32].into_dyn())];
        assert!(matches!(run(&Bitwise::new(BitOp::And), mixed), Err(OpError::Invalid { op: "BitwiseAnd", .. })));
        let floats = vec![Tensor::from(array![1f32].into_dyn()), Tensor::from(array![1f32].into_dyn())];
        assert_eq!(
            run(&Bitwise::new(BitOp::Or), floats),
            Err(OpError::UnsupportedDtype { op: "BitwiseOr", dtype: DType::F32 })
        );
        let wrong = vec![a, Tensor::from(array![1i16, 2].into_dyn())];
        assert!(matches!(run(&Bitwise::new(BitOp::And), wrong), Err(OpError::Invalid { op: "BitwiseAnd", .. })));
        let huge = vec![
            Tensor::from(ArrayD::<u64>::zeros(IxDyn(&[1024, 1]))),
            Tensor::from(ArrayD::<u64>::zeros(IxDyn(&[1, 1024]))),
        ];
        assert!(matches!(run(&Bitwise::new(BitOp::And), huge), Err(OpError::Invalid { op: "BitwiseAnd", .. })));
    }

    #[test]
    fn not_flips_every_bit_in_place_or_not() {
        let x = Tensor::from(array![0u8, 1, 255].into_dyn());
        assert_eq!(run(&BitwiseNot, vec![x]).unwrap().to_f64_vec(), [255.0, 254.0, 0.0]);
        let x = Tensor::from(array![[0i64, -1], [5, i64::MIN]].into_dyn());
        let kept = x.clone();
        let y = run(&BitwiseNot, vec![x]).unwrap();
        assert_eq!(y.view::<i64>().unwrap().iter().copied().collect::<Vec<_>>(), [-1, 0, -6, i64::MAX]);
        assert_eq!(kept.view::<i64>().unwrap()[[1, 1]], i64::MIN);
        // Transposed input keeps its logical order.
        let t = Tensor::from(array![[1i32, 2], [3, 4]].reversed_axes().into_dyn());
        assert_eq!(run(&BitwiseNot, vec![t]).unwrap().to_f64_vec(), [-2.0, -4.0, -3.0, -5.0]);
        let f = Tensor::from(array![1f64].into_dyn());
        assert_eq!(run(&BitwiseNot, vec![f]), Err(OpError::UnsupportedDtype { op: "BitwiseNot", dtype: DType::F64 }));
    }
}
