//! Cast: converts element types. Exporters emit it around float16 graphs.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Cast.html>
//!
//! | opset | change                                                       |
//! |-------|--------------------------------------------------------------|
//! | 1     | `to` is a string (`"FLOAT"`, `"FLOAT16"`, …)                 |
//! | 6–13  | `to` is an int `TensorProto.DataType`                        |
//! | 19+   | adds `saturate` (float8 targets only, which onnxi lacks)     |
//! | 24+   | adds `round_mode` (float8 targets only, which onnxi lacks)   |
//! | 21–28 | more element types (float8, int4, …) that onnxi does not hold |
//!
//! The conversions follow the rules the Cast schema states (opset 21+),
//! which earlier opsets left implicit:
//!
//! - float → float rounds to nearest-even once, from the exact value (±inf
//!   out of range);
//! - float → int truncates toward zero; ONNX leaves out-of-range values
//!   undefined, and onnxi saturates them (NaN becomes 0), as Rust's `as`;
//! - float → bool: ±0 is false, everything else (NaN too) is true;
//! - int → float rounds to nearest-even once (±inf out of range);
//! - int → int keeps the low bits (200 as int16 → -56 as int8);
//! - int → bool: nonzero is true; bool → number: 1 or 0.
//!
//! Rounding "once" matters for float16 and bfloat16 targets: going through
//! float32 with the usual rounding can round twice and land one step off on
//! a tie. onnxi rounds to float32 *to odd* first (which keeps a sticky bit
//! for the second rounding), so the result is the correctly rounded one.

use half::{bf16, f16};
use ndarray::Zip;

use super::identity::ALL_BUT_BF16;
use super::{ExecCtx, Inputs, Op, Registry, required};
use crate::attrs::Attrs;
use crate::buffers::{BufferPool, output_shared};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::tensor::{DType, Element, SharedArray, Tensor, onnx_type_name};

/// Registers Cast.
pub fn register(reg: &mut Registry) {
    reg.add(
        "",
        "Cast",
        &[1, 6, 9, 13, 19, 21, 23, 24, 25, 28],
        |version| if version >= 13 { &DType::ALL } else { ALL_BUT_BF16 },
        Cast::from_node,
    );
}

/// Cast to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// The target element type.
    pub to: DType,
}

/// The `to` strings of Cast-1 (`TensorProto.DataType` names).
const LEGACY_NAMES: [(&str, DType); 13] = [
    ("FLOAT", DType::F32),
    ("DOUBLE", DType::F64),
    ("FLOAT16", DType::F16),
    ("BFLOAT16", DType::BF16),
    ("INT8", DType::I8),
    ("INT16", DType::I16),
    ("INT32", DType::I32),
    ("INT64", DType::I64),
    ("UINT8", DType::U8),
    ("UINT16", DType::U16),
    ("UINT32", DType::U32),
    ("UINT64", DType::U64),
    ("BOOL", DType::Bool),
];

impl Cast {
    /// Reads `to` (a string at opset 1, an int later) and ignores
    /// `saturate`/`round_mode`, which only affect float8 targets.
    ///
    /// # Errors
    /// A missing `to`, or a target type onnxi does not hold.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let to = if version < 6 {
            let name = attrs.string("to")?.ok_or_else(|| attrs.error("to", "is required"))?;
            LEGACY_NAMES
                .iter()
                .find(|(legacy, _)| *legacy == name)
                .map(|(_, dtype)| *dtype)
                .ok_or_else(|| attrs.error("to", format!("type {name:?} is not supported by onnxi")))?
        } else {
            let code = attrs.i64("to")?.ok_or_else(|| attrs.error("to", "is required"))?;
            let code32 = i32::try_from(code).unwrap_or(0);
            DType::from_onnx_code(code32).ok_or_else(|| {
                attrs.error("to", format!("target type {} is not supported by onnxi", onnx_type_name(code32)))
            })?
        };
        if version >= 19 {
            attrs.i64("saturate")?;
        }
        if version >= 24 {
            attrs.string("round_mode")?;
        }
        Ok(Cast { to })
    }
}

impl Op for Cast {
    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Cast")?;
        if x.dtype() == self.to {
            // A lent input is shared, not copied.
            return Ok(x.into_owned());
        }
        Ok(cast_with(&x, self.to, ctx.pool))
    }
}

/// Converts a tensor to `to` (see the module's rules); the same type gives
/// a tensor sharing the input's data.
pub fn cast(x: &Tensor, to: DType) -> Tensor {
    cast_with(x, to, None)
}

fn cast_with(x: &Tensor, to: DType, pool: Option<&BufferPool>) -> Tensor {
    if x.dtype() == to {
        return x.clone();
    }
    dispatch!(x, array => cast_from(array, to, pool))
}

fn cast_from<S: Scalar>(array: &SharedArray<S>, to: DType, pool: Option<&BufferPool>) -> Tensor {
    match to {
        DType::F32 => convert_all::<S, f32>(array, pool),
        DType::F64 => convert_all::<S, f64>(array, pool),
        DType::F16 => convert_all::<S, f16>(array, pool),
        DType::BF16 => convert_all::<S, bf16>(array, pool),
        DType::I8 => convert_all::<S, i8>(array, pool),
        DType::I16 => convert_all::<S, i16>(array, pool),
        DType::I32 => convert_all::<S, i32>(array, pool),
        DType::I64 => convert_all::<S, i64>(array, pool),
        DType::U8 => convert_all::<S, u8>(array, pool),
        DType::U16 => convert_all::<S, u16>(array, pool),
        DType::U32 => convert_all::<S, u32>(array, pool),
        DType::U64 => convert_all::<S, u64>(array, pool),
        DType::Bool => convert_all::<S, bool>(array, pool),
    }
}

fn convert_all<S: Scalar, D: Scalar>(array: &SharedArray<S>, pool: Option<&BufferPool>) -> Tensor {
    let mut out = output_shared::<D>(pool, array.shape());
    Zip::from(&mut out).and(array).for_each(|out, &value| *out = convert::<S, D>(value));
    Tensor::from(out)
}

/// One element from `S` to `D`: a float goes through its exact f64 value,
/// an integer or bool through its exact i128 value (the branch is decided
/// per type pair at compile time).
fn convert<S: Scalar, D: Scalar>(value: S) -> D {
    if S::IS_FLOAT { D::from_float(value.to_f64()) } else { D::from_int(value.to_i128()) }
}

/// An element type Cast converts between.
trait Scalar: Element + Default {
    /// True for the float types, which widen to f64 exactly.
    const IS_FLOAT: bool;
    /// The value as f64 (exact for the float types).
    fn to_f64(self) -> f64;
    /// The value as i128 (exact for the integer types and bool).
    fn to_i128(self) -> i128;
    /// From a float value, by the float → this type rule.
    fn from_float(value: f64) -> Self;
    /// From an integer value, by the int → this type rule.
    fn from_int(value: i128) -> Self;
}

macro_rules! int_scalar {
    ($($ty:ty),*) => {$(
        impl Scalar for $ty {
            const IS_FLOAT: bool = false;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i128(self) -> i128 {
                i128::from(self)
            }
            // Truncation toward zero, saturating; NaN becomes 0.
            fn from_float(value: f64) -> Self {
                value as $ty
            }
            // Keeps the low bits, as two's complement.
            fn from_int(value: i128) -> Self {
                value as $ty
            }
        }
    )*};
}

int_scalar!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Scalar for bool {
    const IS_FLOAT: bool = false;
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn to_i128(self) -> i128 {
        i128::from(self)
    }
    // NaN is not equal to zero, so it is true.
    fn from_float(value: f64) -> Self {
        value != 0.0
    }
    fn from_int(value: i128) -> Self {
        value != 0
    }
}

impl Scalar for f64 {
    const IS_FLOAT: bool = true;
    fn to_f64(self) -> f64 {
        self
    }
    fn to_i128(self) -> i128 {
        self as i128
    }
    fn from_float(value: f64) -> Self {
        value
    }
    // Rust's int → float `as` rounds to nearest-even.
    fn from_int(value: i128) -> Self {
        value as f64
    }
}

impl Scalar for f32 {
    const IS_FLOAT: bool = true;
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn to_i128(self) -> i128 {
        self as i128
    }
    fn from_float(value: f64) -> Self {
        value as f32
    }
    fn from_int(value: i128) -> Self {
        value as f32
    }
}

impl Scalar for f16 {
    const IS_FLOAT: bool = true;
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn to_i128(self) -> i128 {
        f16::to_f64(self) as i128
    }
    fn from_float(value: f64) -> Self {
        f16::from_f32(f64_to_f32_odd(value))
    }
    fn from_int(value: i128) -> Self {
        f16::from_f32(i128_to_f32_odd(value))
    }
}

impl Scalar for bf16 {
    const IS_FLOAT: bool = true;
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
    fn to_i128(self) -> i128 {
        bf16::to_f64(self) as i128
    }
    fn from_float(value: f64) -> Self {
        bf16::from_f32(f64_to_f32_odd(value))
    }
    fn from_int(value: i128) -> Self {
        bf16::from_f32(i128_to_f32_odd(value))
    }
}

/// `value` rounded to float32 *to odd*: exact values stay, others become
/// whichever neighbour has an odd last bit. float32 keeps at least two bits
/// more than float16 and bfloat16 at every magnitude they reach, so a
/// second rounding to nearest from this result equals one rounding from
/// `value` (a plain `as f32` could make a tie out of a value just above or
/// below one). `half`'s own `from_f64` goes through a nearest `f32`.
fn f64_to_f32_odd(value: f64) -> f32 {
    let nearest = value as f32;
    if f64::from(nearest) == value || value.is_nan() {
        return nearest;
    }
    // The neighbour toward zero, then its odd choice of the two.
    let mut bits = nearest.to_bits();
    if f64::from(nearest).abs() > value.abs() {
        bits -= 1;
    }
    f32::from_bits(bits | 1)
}

/// An integer rounded to float32 to odd (see [`f64_to_f32_odd`]). Every
/// value here fits 65 bits, so the float32 result converts back exactly.
fn i128_to_f32_odd(value: i128) -> f32 {
    let nearest = value as f32;
    let back = nearest as i128;
    if back == value {
        return nearest;
    }
    let mut bits = nearest.to_bits();
    if back.unsigned_abs() > value.unsigned_abs() {
        bits -= 1;
    }
    f32::from_bits(bits | 1)
}
