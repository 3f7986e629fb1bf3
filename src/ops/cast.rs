//! Cast: converts element types. Exporters emit it around float16 graphs.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Cast.html>
//!
//! | opset | change                                                       |
//! |-------|--------------------------------------------------------------|
//! | 1     | `to` is a string (`"FLOAT"`, `"FLOAT16"`, …)                 |
//! | 6–13  | `to` is an int `TensorProto.DataType`                        |
//! | 19    | float8 types; `saturate` (float8 targets only)              |
//! | 21    | int4, uint4                                                  |
//! | 23    | float4e2m1                                                   |
//! | 24    | float8e8m0 and `round_mode` (for it only)                    |
//! | 25    | int2, uint2                                                  |
//!
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
//! The low-precision storage types ([`crate::tensor::small`]) follow the
//! same rules through their exact values: float8 and float4e2m1 are floats
//! (→ float8 saturates or not per `saturate`, see the module above and the
//! Cast schema's tables; → float4e2m1 always saturates), int4, uint4, int2
//! and uint2 are integers (→ them keeps the low bits). A float → int4,
//! uint4, int2 or uint2 truncates toward zero and then keeps the low bits,
//! as the ONNX test data does (-9.0 → int4 7); ±inf and NaN give 0, as the
//! ONNX reference does (`ml_dtypes`).
//!
//! Rounding "once" matters for float16 and bfloat16 targets: going through
//! float32 with the usual rounding can round twice and land one step off on
//! a tie. onnxi rounds to float32 *to odd* first (which keeps a sticky bit
//! for the second rounding), so the result is the correctly rounded one.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn, Zip};

use super::{ALL_BUT_BF16, moved_types};
use super::{ExecCtx, Inputs, Op, Registry, required};
use crate::dispatch_fixed;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::runtime::buffers::{BufferPool, output_shared};
use crate::tensor::small::E8M0Rounding;
use crate::tensor::{DType, Element, SharedArray, Str, Tensor, onnx_type_name};
use crate::tensor::{F4E2M1, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0, I2, I4, U2, U4};

/// Registers Cast.
pub fn register(reg: &mut Registry) {
    reg.add("", "Cast", &[1, 6, 9, 13, 19, 21, 23, 24, 25, 28], cast_types, Cast::from_node);
}

/// Cast's and CastLike's input types at a version: [`moved_types`], but
/// no string before Cast-9.
pub(crate) fn cast_types(version: i64) -> &'static [DType] {
    if version < 9 { ALL_BUT_BF16 } else { moved_types(version) }
}

/// Cast to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// The target element type.
    pub to: DType,
    /// `saturate` and `round_mode` (float8 targets only).
    pub rounding: Rounding,
}

/// Cast's attributes for the float8 targets: `saturate` (opset 19+) and
/// `round_mode` (opset 24+, float8e8m0 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    /// Whether an out-of-range value saturates to the largest finite float8
    /// (the default) or becomes inf/NaN.
    pub saturate: bool,
    /// How a float8e8m0 target rounds (default up).
    pub e8m0: E8M0Rounding,
}

impl Rounding {
    /// Cast's defaults: saturating, float8e8m0 rounding up.
    pub const DEFAULT: Rounding = Rounding { saturate: true, e8m0: E8M0Rounding::Up };
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
    /// Reads `to` (a string at opset 1, an int later), `saturate` (opset
    /// 19+, default 1) and `round_mode` (opset 24+, which only affects
    /// float8e8m0 targets).
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
        let rounding = read_rounding(attrs, version)?;
        Ok(Cast { to, rounding })
    }
}

/// Reads `saturate` (opset 19+, default true) and `round_mode` (opset
/// 24+, default `up`), which only affects float8e8m0 targets.
pub(crate) fn read_rounding(attrs: &mut Attrs<'_>, version: i64) -> Result<Rounding, LoadError> {
    let saturate = if version >= 19 { attrs.i64("saturate")?.unwrap_or(1) } else { 1 };
    let mode = if version >= 24 { attrs.string("round_mode")? } else { None };
    let e8m0 = match mode.as_deref() {
        None | Some("up") => E8M0Rounding::Up,
        Some("down") => E8M0Rounding::Down,
        Some("nearest") => E8M0Rounding::Nearest,
        Some(mode) => return Err(attrs.error("round_mode", format!("must be up, down or nearest, not {mode:?}"))),
    };
    Ok(Rounding { saturate: saturate != 0, e8m0 })
}

impl Op for Cast {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        vec![Some(ValueType { dtype: self.to, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Cast")?;
        if x.dtype() == self.to {
            // A lent input is shared, not copied.
            return Ok(x.into_owned());
        }
        cast_with(&x, self.to, self.rounding, ctx.pool)
    }
}

/// Converts a tensor to `to` (see the module's rules), float8 targets
/// saturating; the same type gives a tensor sharing the input's data.
///
/// # Errors
/// Only from a string tensor: an element that spells no number of the
/// target type (named, with its text).
pub fn cast(x: &Tensor, to: DType) -> Result<Tensor, OpError> {
    cast_with(x, to, Rounding::DEFAULT, None)
}

/// [`cast`] with Cast's `saturate` attribute: false makes an out-of-range
/// value inf or NaN in a float8 target instead of its largest finite value.
///
/// # Errors
/// As [`cast`].
pub fn cast_saturate(x: &Tensor, to: DType, saturate: bool) -> Result<Tensor, OpError> {
    cast_with(x, to, Rounding { saturate, ..Rounding::DEFAULT }, None)
}

/// [`cast`] with both of Cast's float8 attributes (`saturate`, and
/// `round_mode` for float8e8m0).
///
/// # Errors
/// As [`cast`].
pub fn cast_rounding(x: &Tensor, to: DType, rounding: Rounding) -> Result<Tensor, OpError> {
    cast_with(x, to, rounding, None)
}

fn cast_with(x: &Tensor, to: DType, saturate: Rounding, pool: Option<&BufferPool>) -> Result<Tensor, OpError> {
    if x.dtype() == to {
        return Ok(x.clone());
    }
    match x {
        Tensor::String(texts) => from_strings(texts, to, saturate),
        _ => Ok(dispatch_fixed!(x, array => cast_from(array, to, saturate, pool), other => other.clone())),
    }
}

/// Evaluates `$body` with `$D` naming the Rust type of the fixed-size
/// dtype `$to`, or `$string` when `$to` is string.
macro_rules! by_target {
    ($to:expr, $D:ident => $body:expr, string => $string:expr) => {
        match $to {
            DType::F32 => {
                type $D = f32;
                $body
            }
            DType::F64 => {
                type $D = f64;
                $body
            }
            DType::F16 => {
                type $D = f16;
                $body
            }
            DType::BF16 => {
                type $D = bf16;
                $body
            }
            DType::I8 => {
                type $D = i8;
                $body
            }
            DType::I16 => {
                type $D = i16;
                $body
            }
            DType::I32 => {
                type $D = i32;
                $body
            }
            DType::I64 => {
                type $D = i64;
                $body
            }
            DType::U8 => {
                type $D = u8;
                $body
            }
            DType::U16 => {
                type $D = u16;
                $body
            }
            DType::U32 => {
                type $D = u32;
                $body
            }
            DType::U64 => {
                type $D = u64;
                $body
            }
            DType::Bool => {
                type $D = bool;
                $body
            }
            DType::F8E4M3FN => {
                type $D = F8E4M3FN;
                $body
            }
            DType::F8E4M3FNUZ => {
                type $D = F8E4M3FNUZ;
                $body
            }
            DType::F8E5M2 => {
                type $D = F8E5M2;
                $body
            }
            DType::F8E5M2FNUZ => {
                type $D = F8E5M2FNUZ;
                $body
            }
            DType::F4E2M1 => {
                type $D = F4E2M1;
                $body
            }
            DType::F8E8M0 => {
                type $D = F8E8M0;
                $body
            }
            DType::I4 => {
                type $D = I4;
                $body
            }
            DType::U4 => {
                type $D = U4;
                $body
            }
            DType::I2 => {
                type $D = I2;
                $body
            }
            DType::U2 => {
                type $D = U2;
                $body
            }
            DType::String => $string,
        }
    };
}

fn cast_from<S: Scalar>(array: &SharedArray<S>, to: DType, sat: Rounding, pool: Option<&BufferPool>) -> Tensor {
    by_target!(to, D => convert_all::<S, D>(array, sat, pool), string => to_strings(array))
}

/// A number as a string spells it: an integer literal exactly, anything
/// else as the nearest f64.
#[derive(Debug, Clone, Copy)]
enum Spelled {
    Int(i128),
    Float(f64),
}

/// Reads a number as Cast's string rules allow: decimal integers, decimal
/// and scientific floats (`3.14`, `1e-5`, `1E8`), and `INF`, `+INF`,
/// `-INF`, `NaN` in any case (also `inf`/`infinity` spelled out), with
/// surrounding whitespace. `None` for anything else.
fn spelled(text: &str) -> Option<Spelled> {
    let text = text.trim();
    if let Ok(int) = text.parse::<i128>() {
        return Some(Spelled::Int(int));
    }
    // Rust's float grammar, plus the case-insensitive specials it already
    // takes; it refuses hex, digit separators and trailing text.
    text.parse::<f64>().ok().map(Spelled::Float)
}

/// Parses every element of a string tensor into `to`: integers exactly
/// (then Cast's int rule: the low bits), other numbers through their
/// nearest f64 (then Cast's float rule; float32 targets parse directly, so
/// they round once).
fn from_strings(texts: &SharedArray<Str>, to: DType, saturate: Rounding) -> Result<Tensor, OpError> {
    let not_a_number = |index: usize, text: &str| OpError::Invalid {
        op: "Cast",
        reason: format!(
            "string element {index} {text:?} is not a number (Cast reads decimal and scientific numbers, INF, -INF and NaN)"
        ),
    };
    if to == DType::F32 {
        let mut values = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            values.push(match spelled(text) {
                Some(Spelled::Int(int)) => int as f32,
                Some(Spelled::Float(_)) => text.trim().parse::<f32>().map_err(|_| not_a_number(index, text))?,
                None => return Err(not_a_number(index, text)),
            });
        }
        return ArrayD::from_shape_vec(IxDyn(texts.shape()), values)
            .map(Tensor::from)
            .map_err(|err| OpError::Invalid { op: "Cast", reason: err.to_string() });
    }
    let numbers = texts
        .iter()
        .enumerate()
        .map(|(index, text)| spelled(text).ok_or_else(|| not_a_number(index, text)))
        .collect::<Result<Vec<_>, _>>()?;
    fn convert_spelled<D: Scalar>(shape: &[usize], numbers: &[Spelled], saturate: Rounding) -> Result<Tensor, OpError> {
        let values = numbers
            .iter()
            .map(|&number| match number {
                Spelled::Int(int) => D::from_int_saturating(int, saturate),
                Spelled::Float(float) => D::from_float_saturating(float, saturate),
            })
            .collect();
        ArrayD::from_shape_vec(IxDyn(shape), values)
            .map(Tensor::from)
            .map_err(|err| OpError::Invalid { op: "Cast", reason: err.to_string() })
    }
    by_target!(to, D => convert_spelled::<D>(texts.shape(), &numbers, saturate), string => Ok(Tensor::String(texts.clone())))
}

/// Every element of a numeric tensor as text (the module's string rules).
fn to_strings<S: Scalar>(array: &SharedArray<S>) -> Tensor {
    Tensor::from(array.map(|&value| Str::from(value.to_text())))
}

/// A float as the shortest decimal that reads back as the same `f32` (or
/// `f64` when `double`), laid out as C's `%g` does with precision 8 (17
/// for `double`): plain digits unless the exponent is below -4 or at least
/// the precision, then `d.ddde±XX`. NaN is `NaN`, infinities `INF` and
/// `-INF`, as Cast's spec spells them.
fn float_text(value: f64, double: bool) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "INF" } else { "-INF" }.to_string();
    }
    let scientific = if double { format!("{value:e}") } else { format!("{:e}", value as f32) };
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let precision = if double { 17 } else { 8 };
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |rest| ("-", rest));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if exponent < -4 || exponent >= precision {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    if exponent < 0 {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exponent as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

fn convert_all<S: Scalar, D: Scalar>(array: &SharedArray<S>, saturate: Rounding, pool: Option<&BufferPool>) -> Tensor {
    let mut out = output_shared::<D>(pool, array.shape());
    Zip::from(&mut out).and(array).for_each(|out, &value| *out = convert::<S, D>(value, saturate));
    Tensor::from(out)
}

/// One element from `S` to `D`: a float goes through its exact f64 value,
/// an integer or bool through its exact i128 value (the branch is decided
/// per type pair at compile time).
fn convert<S: Scalar, D: Scalar>(value: S, saturate: Rounding) -> D {
    if S::IS_FLOAT {
        D::from_float_saturating(value.to_f64(), saturate)
    } else {
        D::from_int_saturating(value.to_i128(), saturate)
    }
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
    /// From a float value with Cast's `saturate` and `round_mode` (which
    /// only float8 targets heed).
    fn from_float_saturating(value: f64, _rounding: Rounding) -> Self {
        Self::from_float(value)
    }
    /// From an integer value with Cast's `saturate` and `round_mode`.
    fn from_int_saturating(value: i128, _rounding: Rounding) -> Self {
        Self::from_int(value)
    }
    /// The value as Cast writes it into a string: integers and bool in
    /// decimal (`1`, `0` for bool), floats by [`float_text`] (float64 to
    /// 17 digits, the others through float32, which holds them exactly).
    fn to_text(self) -> String {
        if Self::IS_FLOAT { float_text(self.to_f64(), Self::DTYPE == DType::F64) } else { self.to_i128().to_string() }
    }
}

macro_rules! small_float_scalar {
    ($($ty:ty),*) => {$(
        impl Scalar for $ty {
            const IS_FLOAT: bool = true;
            fn to_f64(self) -> f64 {
                <$ty>::to_f64(self)
            }
            fn to_i128(self) -> i128 {
                <$ty>::to_f64(self) as i128
            }
            fn from_float(value: f64) -> Self {
                <$ty>::from_f64(value, true)
            }
            // Integers up to 2^53 are exact in f64; larger ones round there
            // but are far above every float8 max either way.
            fn from_int(value: i128) -> Self {
                <$ty>::from_f64(value as f64, true)
            }
            fn from_float_saturating(value: f64, rounding: Rounding) -> Self {
                <$ty>::from_f64(value, rounding.saturate)
            }
            fn from_int_saturating(value: i128, rounding: Rounding) -> Self {
                <$ty>::from_f64(value as f64, rounding.saturate)
            }
        }
    )*};
}

impl Scalar for F8E8M0 {
    const IS_FLOAT: bool = true;
    fn to_f64(self) -> f64 {
        F8E8M0::to_f64(self)
    }
    fn to_i128(self) -> i128 {
        F8E8M0::to_f64(self) as i128
    }
    fn from_float(value: f64) -> Self {
        F8E8M0::from_f64(value, true, E8M0Rounding::Up)
    }
    fn from_int(value: i128) -> Self {
        F8E8M0::from_f64(value as f64, true, E8M0Rounding::Up)
    }
    fn from_float_saturating(value: f64, rounding: Rounding) -> Self {
        F8E8M0::from_f64(value, rounding.saturate, rounding.e8m0)
    }
    fn from_int_saturating(value: i128, rounding: Rounding) -> Self {
        F8E8M0::from_f64(value as f64, rounding.saturate, rounding.e8m0)
    }
}

small_float_scalar!(F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F4E2M1);

macro_rules! small_int_scalar {
    ($($ty:ident),*) => {$(
        impl Scalar for $ty {
            const IS_FLOAT: bool = false;
            fn to_f64(self) -> f64 {
                f64::from(self.0)
            }
            fn to_i128(self) -> i128 {
                i128::from(self.0)
            }
            // Truncation toward zero, then the low bits; ±inf and NaN give 0.
            fn from_float(value: f64) -> Self {
                if value.is_finite() { $ty::wrapping_from(value as i128) } else { $ty(0) }
            }
            fn from_int(value: i128) -> Self {
                $ty::wrapping_from(value)
            }
        }
    )*};
}

small_int_scalar!(I4, U4, I2, U2);

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

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;

    /// A value exactly: a float (every source float widens to f64 exactly)
    /// or an integer.
    #[derive(Debug, Clone, Copy)]
    enum Exact {
        Float(f64),
        Int(i128),
    }

    /// Round-to-nearest-even of `value` to a binary format with `p`
    /// significand bits and exponents `emin..=emax`, written from the
    /// definition on integer significands (independent of `as` and `half`).
    fn round_to_format(value: Exact, p: u32, emin: i32, emax: i32) -> f64 {
        let (negative, m, e) = match value {
            Exact::Float(v) if v.is_nan() || v.is_infinite() => return v,
            Exact::Float(v) if v == 0.0 => return v,
            Exact::Float(v) => {
                let bits = v.to_bits();
                let exponent = ((bits >> 52) & 0x7ff) as i32;
                let fraction = u128::from(bits & ((1 << 52) - 1));
                let (m, e) = if exponent == 0 { (fraction, -1074) } else { (fraction | 1 << 52, exponent - 1075) };
                (v < 0.0, m, e)
            }
            Exact::Int(0) => return 0.0,
            Exact::Int(v) => (v < 0, v.unsigned_abs(), 0),
        };
        let top = e + (127 - m.leading_zeros() as i32);
        let quantum = top.max(emin) - (p as i32 - 1);
        let shift = quantum - e;
        let rounded = if shift <= 0 {
            m << (-shift)
        } else if shift >= 128 {
            0
        } else {
            let (kept, rest, half) = (m >> shift, m & ((1 << shift) - 1), 1u128 << (shift - 1));
            if rest > half || (rest == half && kept & 1 == 1) { kept + 1 } else { kept }
        };
        // In two steps, so that 2^-1074 does not underflow on its own.
        let magnitude = rounded as f64 * 2f64.powi(quantum / 2) * 2f64.powi(quantum - quantum / 2);
        let max_finite = ((1u64 << p) - 1) as f64 * 2f64.powi(emax - p as i32 + 1);
        let magnitude = if magnitude > max_finite { f64::INFINITY } else { magnitude };
        if negative { -magnitude } else { magnitude }
    }

    /// What the module's rules give for `value` cast to `to`, as f64 (the
    /// integer results all fit f64 exactly except 64-bit extremes, which
    /// are compared through i128 below).
    fn expected(value: Exact, to: DType) -> Result<f64, i128> {
        let int_range = |bits: u32, signed: bool| {
            if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) }
        };
        if to == DType::F8E8M0 {
            // Through float32, sign dropped; a power of two rounded up
            // (the default `round_mode`), saturating at 2^127; zero and
            // float32 subnormals at the bottom (2^-127, or 2^-126 when
            // not zero, rounded up).
            let magnitude = match value {
                Exact::Float(v) => f64::from((v as f32).abs()),
                Exact::Int(v) => f64::from((v as f64 as f32).abs()),
            };
            if !magnitude.is_finite() {
                return Ok(f64::NAN);
            }
            if magnitude < 2f64.powi(-126) {
                return Ok(if magnitude == 0.0 { 2f64.powi(-127) } else { 2f64.powi(-126) });
            }
            let exponent = ((magnitude.to_bits() >> 52) & 0x7ff) as i32 - 1023;
            let up = if magnitude > 2f64.powi(exponent) { exponent + 1 } else { exponent };
            return Ok(2f64.powi(up.min(127)));
        }
        // The storage floats (saturating, as `cast` does): (significand
        // bits, smallest normal exponent, max, unsigned zero).
        let small_float = match to {
            DType::F8E4M3FN => Some((4, -6, 448.0, false)),
            DType::F8E4M3FNUZ => Some((4, -7, 240.0, true)),
            DType::F8E5M2 => Some((3, -14, 57344.0, false)),
            DType::F8E5M2FNUZ => Some((3, -15, 57344.0, true)),
            DType::F4E2M1 => Some((2, 0, 6.0, false)),
            _ => None,
        };
        if let Some((p, emin, max, unsigned_zero)) = small_float {
            let rounded = round_to_format(value, p, emin, 1000);
            let want = match value {
                // float4e2m1 has no NaN: a zero of the other sign.
                Exact::Float(v) if v.is_nan() && to == DType::F4E2M1 => {
                    if v.is_sign_negative() {
                        0.0
                    } else {
                        -0.0
                    }
                }
                _ if rounded.is_nan() => rounded,
                _ => rounded.clamp(-max, max),
            };
            return Ok(if unsigned_zero && want == 0.0 { 0.0 } else { want });
        }
        let (bits, signed) = match to {
            DType::I4 | DType::U4 | DType::I2 | DType::U2 => {
                let (bits, signed) = match to {
                    DType::I4 => (4, true),
                    DType::U4 => (4, false),
                    DType::I2 => (2, true),
                    _ => (2, false),
                };
                // Floats truncate first (non-finite → 0); then the low bits.
                let int = match value {
                    Exact::Float(v) if !v.is_finite() => 0,
                    Exact::Float(v) => v.trunc() as i128,
                    Exact::Int(v) => v,
                };
                let (_, max) = int_range(bits, signed);
                let low = int.rem_euclid(1i128 << bits);
                return Err(if signed && low > max { low - (1i128 << bits) } else { low });
            }
            DType::F64 => return Ok(round_to_format(value, 53, -1022, 1023)),
            DType::F32 => return Ok(round_to_format(value, 24, -126, 127)),
            DType::F16 => return Ok(round_to_format(value, 11, -14, 15)),
            DType::BF16 => return Ok(round_to_format(value, 8, -126, 127)),
            DType::Bool => {
                return Ok(match value {
                    Exact::Float(v) => f64::from(u8::from(v != 0.0)),
                    Exact::Int(v) => f64::from(u8::from(v != 0)),
                });
            }
            DType::I8 => (8, true),
            DType::I16 => (16, true),
            DType::I32 => (32, true),
            DType::I64 => (64, true),
            DType::U8 => (8, false),
            DType::U16 => (16, false),
            DType::U32 => (32, false),
            DType::U64 => (64, false),
            _ => unreachable!("handled above"),
        };
        let (min, max) = int_range(bits, signed);
        Err(match value {
            // Truncation toward zero; out of range (undefined in ONNX)
            // saturates and NaN gives 0, as documented.
            Exact::Float(v) if v.is_nan() => 0,
            Exact::Float(v) if v.trunc() <= min as f64 => min,
            Exact::Float(v) if v.trunc() >= max as f64 => max,
            Exact::Float(v) => v.trunc() as i128,
            // The low `bits` bits, read as two's complement when signed.
            Exact::Int(v) => {
                let low = v.rem_euclid(1i128 << bits);
                if signed && low > max { low - (1i128 << bits) } else { low }
            }
        })
    }

    /// Every element of a tensor exactly.
    fn exact_values(tensor: &Tensor) -> Vec<Exact> {
        fn ints<T: Copy + Into<i128>>(array: &SharedArray<T>) -> Vec<Exact> {
            array.iter().map(|&v| Exact::Int(v.into())).collect()
        }
        match tensor {
            Tensor::I8(a) => ints(a),
            Tensor::I16(a) => ints(a),
            Tensor::I32(a) => ints(a),
            Tensor::I64(a) => ints(a),
            Tensor::U8(a) => ints(a),
            Tensor::U16(a) => ints(a),
            Tensor::U32(a) => ints(a),
            Tensor::U64(a) => ints(a),
            Tensor::Bool(a) => ints(a),
            Tensor::I4(a) => a.iter().map(|v| Exact::Int(v.0.into())).collect(),
            Tensor::U4(a) => a.iter().map(|v| Exact::Int(v.0.into())).collect(),
            Tensor::I2(a) => a.iter().map(|v| Exact::Int(v.0.into())).collect(),
            Tensor::U2(a) => a.iter().map(|v| Exact::Int(v.0.into())).collect(),
            floats => floats.to_f64_vec().into_iter().map(Exact::Float).collect(),
        }
    }

    fn float_sources() -> Vec<f64> {
        let tie_above = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
        vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            0.9999,
            -0.9999,
            1.5,
            -2.5,
            2.5,
            127.9,
            128.0,
            -128.0,
            -129.5,
            255.0,
            256.0,
            65504.0,
            65519.0,
            65520.0,
            -65536.0,
            2147483647.0,
            2147483648.0,
            -2147483649.0,
            4294967296.0,
            1e10,
            -1e10,
            9.3e18,
            -9.3e18,
            1.9e19,
            3.4e38,
            3.5e38,
            1e300,
            -1e300,
            1e-8,
            -1e-8,
            6e-8,
            1e-40,
            5e-324,
            // Rounds up to float16 1 + 2^-10; a round to nearest float32 on
            // the way makes it a tie that goes down to 1.
            tie_above,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ]
    }

    fn int_sources() -> Vec<i128> {
        let mut values: Vec<i128> = vec![
            0,
            1,
            -1,
            2,
            36,
            127,
            128,
            -128,
            -129,
            200,
            255,
            256,
            -256,
            2049,
            32767,
            32768,
            -32768,
            65535,
            65536,
            16_777_217,
            (1 << 31) - 1,
            1 << 31,
            -(1 << 31),
            (1 << 32) - 1,
            1 << 32,
            (1 << 53) + 1,
            // A tie for bfloat16 only if first rounded to f64.
            (1 << 60) + (1 << 52) + 1,
        ];
        values.extend([i64::MAX.into(), i64::MIN.into(), u64::MAX.into(), i128::from(u64::MAX) - 1]);
        values
    }

    /// The source values representable in `dtype`, as a 1-D tensor.
    fn source(dtype: DType) -> Tensor {
        fn ints<T: TryFrom<i128> + Element>(values: &[i128]) -> Tensor {
            let kept: Vec<T> = values.iter().filter_map(|&v| T::try_from(v).ok()).collect();
            Tensor::from(ArrayD::from_shape_vec(IxDyn(&[kept.len()]), kept).unwrap())
        }
        fn floats<T: Element>(values: &[f64], from: fn(f64) -> T) -> Tensor {
            let kept: Vec<T> = values.iter().map(|&v| from(v)).collect();
            Tensor::from(ArrayD::from_shape_vec(IxDyn(&[kept.len()]), kept).unwrap())
        }
        let (f, i) = (float_sources(), int_sources());
        match dtype {
            DType::F64 => floats(&f, |v| v),
            DType::F32 => floats(&f, |v| v as f32),
            DType::F16 => floats(&f, f16::from_f64),
            DType::BF16 => floats(&f, bf16::from_f64),
            DType::I8 => ints::<i8>(&i),
            DType::I16 => ints::<i16>(&i),
            DType::I32 => ints::<i32>(&i),
            DType::I64 => ints::<i64>(&i),
            DType::U8 => ints::<u8>(&i),
            DType::U16 => ints::<u16>(&i),
            DType::U32 => ints::<u32>(&i),
            DType::U64 => ints::<u64>(&i),
            DType::Bool => Tensor::from(ndarray::array![false, true].into_dyn()),
            DType::F8E4M3FN => floats(&f, |v| F8E4M3FN::from_f64(v, false)),
            DType::F8E4M3FNUZ => floats(&f, |v| F8E4M3FNUZ::from_f64(v, false)),
            DType::F8E5M2 => floats(&f, |v| F8E5M2::from_f64(v, false)),
            DType::F8E5M2FNUZ => floats(&f, |v| F8E5M2FNUZ::from_f64(v, false)),
            DType::F4E2M1 => floats(&f, |v| F4E2M1::from_f64(v, false)),
            // Every value of the small integers.
            DType::I4 => floats(&[-8.0, -1.0, 0.0, 1.0, 7.0], |v| I4(v as i8)),
            DType::U4 => floats(&[0.0, 1.0, 8.0, 15.0], |v| U4(v as u8)),
            DType::I2 => floats(&[-2.0, -1.0, 0.0, 1.0], |v| I2(v as i8)),
            DType::U2 => floats(&[0.0, 1.0, 2.0, 3.0], |v| U2(v as u8)),
            DType::F8E8M0 => floats(&[0.0, 1.0, 126.0, 127.0, 128.0, 200.0, 254.0, 255.0], |v| F8E8M0(v as u8)),
            DType::String => Tensor::from(ndarray::array![Str::from("1.5"), Str::from("-2")].into_dyn()),
        }
    }

    #[test]
    fn every_pair_of_types_follows_the_rules_on_edge_values() {
        for from in DType::EVERY {
            let x = source(from);
            let inputs = exact_values(&x);
            for to in DType::EVERY {
                let y = cast(&x, to).unwrap();
                assert_eq!((y.dtype(), y.shape()), (to, x.shape()), "{from} → {to}");
                if from == to {
                    // The input itself (float8e5m2's inf stays inf).
                    assert!(y.shares_data(&x));
                    continue;
                }
                let got = exact_values(&y);
                for (input, got) in inputs.iter().zip(&got) {
                    let ok = match (expected(*input, to), got) {
                        (Ok(want), Exact::Float(got)) => {
                            (want.is_nan() && got.is_nan())
                                || (want == *got && want.is_sign_negative() == got.is_sign_negative())
                        }
                        (Ok(want), Exact::Int(got)) => want == *got as f64,
                        (Err(want), Exact::Int(got)) => want == *got,
                        (Err(_), Exact::Float(_)) => false,
                    };
                    assert!(ok, "{from} → {to}: {input:?} gave {got:?}, want {:?}", expected(*input, to));
                }
            }
        }
    }

    #[test]
    fn rounds_once_where_a_detour_through_float32_would_round_twice() {
        let x = Tensor::from(ndarray::array![1.0 + 2f64.powi(-11) + 2f64.powi(-40)].into_dyn());
        assert_eq!(cast(&x, DType::F16).unwrap().to_f64_vec(), [1.0 + 2f64.powi(-10)]);
        let x = Tensor::from(ndarray::array![(1i64 << 60) + (1 << 52) + 1].into_dyn());
        assert_eq!(cast(&x, DType::BF16).unwrap().to_f64_vec(), [2f64.powi(60) + 2f64.powi(53)]);
    }

    #[test]
    fn the_schema_examples_hold() {
        let x = Tensor::from(ndarray::array![200i16, 36, 0].into_dyn());
        assert_eq!(cast(&x, DType::I8).unwrap().to_f64_vec(), [-56.0, 36.0, 0.0]);
        assert_eq!(cast(&x, DType::Bool).unwrap().to_f64_vec(), [1.0, 1.0, 0.0]);
        let x = Tensor::from(ndarray::array![f32::NAN, -0.0, 0.0, 1e-45].into_dyn());
        assert_eq!(cast(&x, DType::Bool).unwrap(), Tensor::from(ndarray::array![true, false, false, true].into_dyn()));
        let x = Tensor::from(ndarray::array![u64::MAX].into_dyn());
        assert_eq!(cast(&x, DType::F16).unwrap().to_f64_vec(), [f64::INFINITY]);
    }

    /// `saturate = 0` (the Cast schema's second table): out of range
    /// becomes inf for float8e5m2 and NaN for the others, from floats and
    /// integers alike; float4e2m1 saturates either way.
    #[test]
    fn without_saturate_float8_overflows_to_inf_or_nan() {
        let x = Tensor::from(ndarray::array![1e6f32, f32::INFINITY, -500.0, 440.0].into_dyn());
        let y = cast_saturate(&x, DType::F8E4M3FN, false).unwrap().to_f64_vec();
        assert!(y[..3].iter().all(|v| v.is_nan()) && y[3] == 448.0, "{y:?}");
        assert_eq!(cast(&x, DType::F8E4M3FN).unwrap().to_f64_vec(), [448.0, 448.0, -448.0, 448.0]);
        let y = cast_saturate(&x, DType::F8E5M2, false).unwrap().to_f64_vec();
        assert_eq!(y, [f64::INFINITY, f64::INFINITY, -512.0, 448.0]);
        let y = cast_saturate(&x, DType::F4E2M1, false).unwrap().to_f64_vec();
        assert_eq!(y, [6.0, 6.0, -6.0, 6.0]);
        let x = Tensor::from(ndarray::array![300i32, -70000].into_dyn());
        assert!(cast_saturate(&x, DType::F8E4M3FNUZ, false).unwrap().to_f64_vec().iter().all(|v| v.is_nan()));
        assert_eq!(cast_saturate(&x, DType::F8E5M2, false).unwrap().to_f64_vec(), [320.0, f64::NEG_INFINITY]);
        assert_eq!(cast(&x, DType::F8E4M3FNUZ).unwrap().to_f64_vec(), [240.0, -240.0]);
    }

    #[test]
    fn the_same_type_shares_the_input() {
        let x = Tensor::from(ndarray::array![1u8, 2, 3].into_dyn());
        assert!(cast(&x, DType::U8).unwrap().shares_data(&x));
    }
}
