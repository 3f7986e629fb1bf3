//! `Tensor`: an element type plus an ndarray, and the one dtype-dispatch helper.
//!
//! The data sits behind a reference-counted, copy-on-write handle
//! ([`ArcArray`]): cloning a tensor, passing one through Identity or
//! reshaping one shares the buffer instead of copying it. Writing to a shared
//! buffer copies it first (ndarray's copy-on-write), so in-place kernels are
//! always correct; ops check [`Tensor::is_unique`] to write in place only when
//! that costs no copy, and otherwise compute into a fresh buffer.

pub mod print;
pub mod small;

use std::fmt;
use std::sync::Arc;

use half::{bf16, f16};
use ndarray::{ArcArray, ArrayD, ArrayViewD, IxDyn};

use crate::error::Error;
pub use small::{F4E2M1, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0, I2, I4, U2, U4};

/// The shared, copy-on-write n-dimensional array a [`Tensor`] holds.
pub type SharedArray<T> = ArcArray<T, IxDyn>;

/// Element types onnxi can hold. Codes follow `TensorProto.DataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// float32 (ONNX 1).
    F32,
    /// float64 (ONNX 11).
    F64,
    /// IEEE float16 (ONNX 10).
    F16,
    /// bfloat16 (ONNX 16).
    BF16,
    /// int8 (ONNX 3).
    I8,
    /// int16 (ONNX 5).
    I16,
    /// int32 (ONNX 6).
    I32,
    /// int64 (ONNX 7).
    I64,
    /// uint8 (ONNX 2).
    U8,
    /// uint16 (ONNX 4).
    U16,
    /// uint32 (ONNX 12).
    U32,
    /// uint64 (ONNX 13).
    U64,
    /// bool (ONNX 9), one byte per element holding 0 or 1.
    Bool,
    /// float8 e4m3fn (ONNX 17), a storage type (see [`small`]).
    F8E4M3FN,
    /// float8 e4m3fnuz (ONNX 18), a storage type.
    F8E4M3FNUZ,
    /// float8 e5m2 (ONNX 19), a storage type.
    F8E5M2,
    /// float8 e5m2fnuz (ONNX 20), a storage type.
    F8E5M2FNUZ,
    /// uint4 (ONNX 21), a storage type: one byte per element in memory,
    /// two per byte in a file.
    U4,
    /// int4 (ONNX 22), a storage type.
    I4,
    /// float4 e2m1 (ONNX 23), a storage type.
    F4E2M1,
    /// float8 e8m0 (ONNX 24), a storage type: a power of two (see
    /// [`small::F8E8M0`]).
    F8E8M0,
    /// uint2 (ONNX 25), a storage type: four per byte in a file.
    U2,
    /// int2 (ONNX 26), a storage type.
    I2,
    /// string (ONNX 8): UTF-8 text, one [`Str`] per element. Only the ops
    /// that move elements without computing with them (and the string
    /// ops, Equal and Cast) take it.
    String,
}

impl DType {
    /// The low-precision storage types (see [`small`]): only Cast,
    /// CastLike and Identity take them, so they are not in [`DType::ALL`].
    /// In the order ONNX added them: float8 (opset 19), uint4 and int4
    /// (21), float4e2m1 (23), float8e8m0 (24), uint2 and int2 (25).
    pub const LOW_PRECISION: [DType; 10] = [
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::U4,
        DType::I4,
        DType::F4E2M1,
        DType::F8E8M0,
        DType::U2,
        DType::I2,
    ];

    /// [`DType::ALL`] then [`DType::LOW_PRECISION`]: every dtype onnxi holds.
    pub const EVERY: [DType; 23] = {
        let mut every = [DType::F32; 23];
        let mut index = 0;
        while index < 23 {
            every[index] = if index < 13 { DType::ALL[index] } else { DType::LOW_PRECISION[index - 13] };
            index += 1;
        }
        every
    };

    /// Every dtype that ops compute with, in the order of the README
    /// table ("every dtype" in the op schemas; without the
    /// [`DType::LOW_PRECISION`] storage types).
    pub const ALL: [DType; 13] = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
    ];

    /// The `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::U16 => 4,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::U32 => 12,
            DType::U64 => 13,
            DType::BF16 => 16,
            DType::F8E4M3FN => 17,
            DType::F8E4M3FNUZ => 18,
            DType::F8E5M2 => 19,
            DType::F8E5M2FNUZ => 20,
            DType::U4 => 21,
            DType::I4 => 22,
            DType::F4E2M1 => 23,
            DType::F8E8M0 => 24,
            DType::U2 => 25,
            DType::I2 => 26,
            DType::String => 8,
        }
    }

    /// The dtype for a `TensorProto.DataType` code, if onnxi supports it.
    pub fn from_onnx_code(code: i32) -> Option<DType> {
        DType::EVERY.into_iter().chain([DType::String]).find(|dtype| dtype.onnx_code() == code)
    }

    /// Bytes per element in memory (one for every storage type; for string,
    /// the handle's size, not the text's).
    pub fn size(self) -> usize {
        match self {
            DType::String => std::mem::size_of::<Str>(),
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F8E8M0 => 1,
            DType::F4E2M1 | DType::I4 | DType::U4 | DType::I2 | DType::U2 => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// Bits per element in a file: 4 for int4, uint4 and float4e2m1, 2 for
    /// int2 and uint2 (packed, the first element in the lowest bits), else
    /// eight per byte of [`DType::size`].
    pub fn bits(self) -> u32 {
        match self {
            DType::F4E2M1 | DType::I4 | DType::U4 => 4,
            DType::I2 | DType::U2 => 2,
            _ => 8 * self.size() as u32,
        }
    }

    /// Bytes that `n_elems` elements take in a file (packed), or `None`
    /// on overflow.
    pub fn packed_bytes(self, n_elems: usize) -> Option<usize> {
        match self.bits() {
            bits @ (2 | 4) => Some(n_elems.div_ceil((8 / bits) as usize)),
            _ => n_elems.checked_mul(self.size()),
        }
    }

    /// True for the low-precision storage types ([`DType::LOW_PRECISION`]).
    pub fn is_low_precision(self) -> bool {
        DType::LOW_PRECISION.contains(&self)
    }

    /// True for float8 (e8m0 too) and float4e2m1.
    pub fn is_small_float(self) -> bool {
        matches!(
            self,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ | DType::F4E2M1 | DType::F8E8M0
        )
    }

    /// True for the floating-point types that ops compute with (float8 and
    /// float4 are [`DType::is_small_float`]).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// The numpy name (`float32`, `int64`, `bool`, …), also used in messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::F8E4M3FN => "float8e4m3fn",
            DType::F8E4M3FNUZ => "float8e4m3fnuz",
            DType::F8E5M2 => "float8e5m2",
            DType::F8E5M2FNUZ => "float8e5m2fnuz",
            DType::F4E2M1 => "float4e2m1",
            DType::F8E8M0 => "float8e8m0",
            DType::I4 => "int4",
            DType::U4 => "uint4",
            DType::I2 => "int2",
            DType::U2 => "uint2",
            DType::String => "string",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name ONNX gives a `TensorProto.DataType` code, for messages about
/// types onnxi does not hold.
pub fn onnx_type_name(code: i32) -> String {
    let name = match code {
        0 => "UNDEFINED",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        _ => match DType::from_onnx_code(code) {
            Some(dtype) => return dtype.name().to_string(),
            None => return format!("data type {code}"),
        },
    };
    name.to_string()
}

/// A dense tensor: an element type and an n-dimensional array whose data is
/// shared copy-on-write (cloning a tensor never copies its data).
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    /// float32 data.
    F32(SharedArray<f32>),
    /// float64 data.
    F64(SharedArray<f64>),
    /// float16 data.
    F16(SharedArray<f16>),
    /// bfloat16 data.
    BF16(SharedArray<bf16>),
    /// int8 data.
    I8(SharedArray<i8>),
    /// int16 data.
    I16(SharedArray<i16>),
    /// int32 data.
    I32(SharedArray<i32>),
    /// int64 data.
    I64(SharedArray<i64>),
    /// uint8 data.
    U8(SharedArray<u8>),
    /// uint16 data.
    U16(SharedArray<u16>),
    /// uint32 data.
    U32(SharedArray<u32>),
    /// uint64 data.
    U64(SharedArray<u64>),
    /// bool data.
    Bool(SharedArray<bool>),
    /// float8e4m3fn codes.
    F8E4M3FN(SharedArray<F8E4M3FN>),
    /// float8e4m3fnuz codes.
    F8E4M3FNUZ(SharedArray<F8E4M3FNUZ>),
    /// float8e5m2 codes.
    F8E5M2(SharedArray<F8E5M2>),
    /// float8e5m2fnuz codes.
    F8E5M2FNUZ(SharedArray<F8E5M2FNUZ>),
    /// float4e2m1 codes, one per byte.
    F4E2M1(SharedArray<F4E2M1>),
    /// float8e8m0 codes.
    F8E8M0(SharedArray<F8E8M0>),
    /// int4 values, one per byte.
    I4(SharedArray<I4>),
    /// uint4 values, one per byte.
    U4(SharedArray<U4>),
    /// int2 values, one per byte.
    I2(SharedArray<I2>),
    /// uint2 values, one per byte.
    U2(SharedArray<U2>),
    /// UTF-8 strings.
    String(SharedArray<Str>),
}

/// One element of a string tensor: immutable UTF-8 text behind a shared
/// handle, so that copying elements (Gather, Expand, Concat, …) never
/// copies the text.
pub type Str = Arc<str>;

/// A Rust type whose values a [`Tensor`] holds: every [`Element`], and
/// [`Str`]. What the ops that only move elements (Reshape, Gather,
/// Concat, …) need.
pub trait Item: Clone + Send + Sync + PartialEq + fmt::Debug + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// Wraps a shared array in the matching variant (no copy).
    fn wrap_shared(array: SharedArray<Self>) -> Tensor;
    /// Borrows the shared array if the tensor holds this type.
    fn shared(tensor: &Tensor) -> Option<&SharedArray<Self>>;
    /// Takes the shared array if the tensor holds this type (no copy).
    fn unwrap_shared(tensor: Tensor) -> Result<SharedArray<Self>, Tensor>;

    /// Wraps an array in the matching variant (no copy of the elements).
    fn wrap(array: ArrayD<Self>) -> Tensor {
        Self::wrap_shared(array.into_shared())
    }
    /// Borrows the array if the tensor holds this type.
    fn view(tensor: &Tensor) -> Option<ArrayViewD<'_, Self>> {
        Self::shared(tensor).map(|array| array.view())
    }
    /// Takes the array if the tensor holds this type: without a copy when
    /// no other tensor shares the data, else a copy of it.
    fn unwrap(tensor: Tensor) -> Result<ArrayD<Self>, Tensor> {
        Self::unwrap_shared(tensor).map(SharedArray::into_owned)
    }
}

/// A fixed-size, `Copy` element type: every dtype but string. What ops
/// that compute, and the raw little-endian file format, need.
pub trait Element: Item + Copy {
    /// Decodes one element from little-endian bytes (`bytes.len() == DTYPE.size()`).
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the element's little-endian bytes.
    fn write_le(self, out: &mut Vec<u8>);
}

/// Implements [`Item`] for a type held in `Tensor::$variant`.
macro_rules! item {
    ($ty:ty, $variant:ident) => {
        impl Item for $ty {
            const DTYPE: DType = DType::$variant;
            fn wrap_shared(array: SharedArray<Self>) -> Tensor {
                Tensor::$variant(array)
            }
            fn shared(tensor: &Tensor) -> Option<&SharedArray<Self>> {
                match tensor {
                    Tensor::$variant(array) => Some(array),
                    _ => None,
                }
            }
            fn unwrap_shared(tensor: Tensor) -> Result<SharedArray<Self>, Tensor> {
                match tensor {
                    Tensor::$variant(array) => Ok(array),
                    other => Err(other),
                }
            }
        }
    };
}

item!(Str, String);

macro_rules! element {
    ($ty:ty, $variant:ident, $from:expr, $to:expr) => {
        item!($ty, $variant);
        impl Element for $ty {
            fn from_le(bytes: &[u8]) -> Self {
                let mut buf = [0u8; std::mem::size_of::<$ty>()];
                buf.copy_from_slice(bytes);
                ($from)(buf)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&($to)(self));
            }
        }
    };
}

element!(f32, F32, f32::from_le_bytes, f32::to_le_bytes);
element!(f64, F64, f64::from_le_bytes, f64::to_le_bytes);
element!(f16, F16, f16::from_le_bytes, f16::to_le_bytes);
element!(bf16, BF16, bf16::from_le_bytes, bf16::to_le_bytes);
element!(i8, I8, i8::from_le_bytes, i8::to_le_bytes);
element!(i16, I16, i16::from_le_bytes, i16::to_le_bytes);
element!(i32, I32, i32::from_le_bytes, i32::to_le_bytes);
element!(i64, I64, i64::from_le_bytes, i64::to_le_bytes);
element!(u8, U8, u8::from_le_bytes, u8::to_le_bytes);
element!(u16, U16, u16::from_le_bytes, u16::to_le_bytes);
element!(u32, U32, u32::from_le_bytes, u32::to_le_bytes);
element!(u64, U64, u64::from_le_bytes, u64::to_le_bytes);
// A stored byte other than 0 or 1 reads as true, as numpy does when it
// views such bytes as bool: a Rust `bool` must never hold another value.
element!(bool, Bool, |[byte]: [u8; 1]| byte != 0, |value: bool| [u8::from(value)]);
// The storage types are one byte per element in memory: the float code, or
// the integer's low bits (packing for files is in `crate::io`).
element!(F8E4M3FN, F8E4M3FN, |[byte]: [u8; 1]| F8E4M3FN(byte), |value: F8E4M3FN| [value.0]);
element!(F8E4M3FNUZ, F8E4M3FNUZ, |[byte]: [u8; 1]| F8E4M3FNUZ(byte), |value: F8E4M3FNUZ| [value.0]);
element!(F8E5M2, F8E5M2, |[byte]: [u8; 1]| F8E5M2(byte), |value: F8E5M2| [value.0]);
element!(F8E5M2FNUZ, F8E5M2FNUZ, |[byte]: [u8; 1]| F8E5M2FNUZ(byte), |value: F8E5M2FNUZ| [value.0]);
element!(F4E2M1, F4E2M1, |[byte]: [u8; 1]| F4E2M1(byte & 0xf), |value: F4E2M1| [value.0]);
element!(F8E8M0, F8E8M0, |[byte]: [u8; 1]| F8E8M0(byte), |value: F8E8M0| [value.0]);
element!(I4, I4, |[byte]: [u8; 1]| I4::from_code(byte), |value: I4| [value.code()]);
element!(U4, U4, |[byte]: [u8; 1]| U4::from_code(byte), |value: U4| [value.code()]);
element!(I2, I2, |[byte]: [u8; 1]| I2::from_code(byte), |value: I2| [value.code()]);
element!(U2, U2, |[byte]: [u8; 1]| U2::from_code(byte), |value: U2| [value.code()]);

/// Applies a generic expression to the array inside a tensor, whatever its
/// dtype. This is the one dtype-dispatch helper: `$array` is bound to the
/// [`SharedArray<T>`] (or a reference to it, following `$tensor`).
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch {
    ($tensor:expr, $array:ident => $body:expr) => {
        match $tensor {
            $crate::Tensor::F32($array) => $body,
            $crate::Tensor::F64($array) => $body,
            $crate::Tensor::F16($array) => $body,
            $crate::Tensor::BF16($array) => $body,
            $crate::Tensor::I8($array) => $body,
            $crate::Tensor::I16($array) => $body,
            $crate::Tensor::I32($array) => $body,
            $crate::Tensor::I64($array) => $body,
            $crate::Tensor::U8($array) => $body,
            $crate::Tensor::U16($array) => $body,
            $crate::Tensor::U32($array) => $body,
            $crate::Tensor::U64($array) => $body,
            $crate::Tensor::Bool($array) => $body,
            $crate::Tensor::F8E4M3FN($array) => $body,
            $crate::Tensor::F8E4M3FNUZ($array) => $body,
            $crate::Tensor::F8E5M2($array) => $body,
            $crate::Tensor::F8E5M2FNUZ($array) => $body,
            $crate::Tensor::F4E2M1($array) => $body,
            $crate::Tensor::F8E8M0($array) => $body,
            $crate::Tensor::I4($array) => $body,
            $crate::Tensor::U4($array) => $body,
            $crate::Tensor::I2($array) => $body,
            $crate::Tensor::U2($array) => $body,
            $crate::Tensor::String($array) => $body,
        }
    };
}

/// [`dispatch!`] for the fixed-size dtypes (every [`Element`]): the body
/// may copy elements and use their bytes; a string tensor is bound to
/// `$other` and goes to `$fallback`.
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_fixed {
    ($tensor:expr, $array:ident => $body:expr, $other:ident => $fallback:expr) => {
        match $tensor {
            $crate::Tensor::F32($array) => $body,
            $crate::Tensor::F64($array) => $body,
            $crate::Tensor::F16($array) => $body,
            $crate::Tensor::BF16($array) => $body,
            $crate::Tensor::I8($array) => $body,
            $crate::Tensor::I16($array) => $body,
            $crate::Tensor::I32($array) => $body,
            $crate::Tensor::I64($array) => $body,
            $crate::Tensor::U8($array) => $body,
            $crate::Tensor::U16($array) => $body,
            $crate::Tensor::U32($array) => $body,
            $crate::Tensor::U64($array) => $body,
            $crate::Tensor::Bool($array) => $body,
            $crate::Tensor::F8E4M3FN($array) => $body,
            $crate::Tensor::F8E4M3FNUZ($array) => $body,
            $crate::Tensor::F8E5M2($array) => $body,
            $crate::Tensor::F8E5M2FNUZ($array) => $body,
            $crate::Tensor::F4E2M1($array) => $body,
            $crate::Tensor::F8E8M0($array) => $body,
            $crate::Tensor::I4($array) => $body,
            $crate::Tensor::U4($array) => $body,
            $crate::Tensor::I2($array) => $body,
            $crate::Tensor::U2($array) => $body,
            $other @ $crate::Tensor::String(_) => $fallback,
        }
    };
}

/// [`dispatch!`] for the dtypes ops compute with ([`DType::ALL`]): the body
/// may use bounds the storage types lack; a tensor of a
/// [`DType::LOW_PRECISION`] type or string is bound to `$other` and goes to
/// `$fallback` (usually an [`crate::OpError::UnsupportedDtype`]).
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_numeric {
    ($tensor:expr, $array:ident => $body:expr, $other:ident => $fallback:expr) => {
        match $tensor {
            $crate::Tensor::F32($array) => $body,
            $crate::Tensor::F64($array) => $body,
            $crate::Tensor::F16($array) => $body,
            $crate::Tensor::BF16($array) => $body,
            $crate::Tensor::I8($array) => $body,
            $crate::Tensor::I16($array) => $body,
            $crate::Tensor::I32($array) => $body,
            $crate::Tensor::I64($array) => $body,
            $crate::Tensor::U8($array) => $body,
            $crate::Tensor::U16($array) => $body,
            $crate::Tensor::U32($array) => $body,
            $crate::Tensor::U64($array) => $body,
            $crate::Tensor::Bool($array) => $body,
            $other => $fallback,
        }
    };
}

/// The pattern of the [`DType::LOW_PRECISION`] storage types, for a
/// `match` that handles string in an arm of its own.
#[macro_export]
#[doc(hidden)]
macro_rules! low_precision {
    () => {
        $crate::tensor::DType::F8E4M3FN
            | $crate::tensor::DType::F8E4M3FNUZ
            | $crate::tensor::DType::F8E5M2
            | $crate::tensor::DType::F8E5M2FNUZ
            | $crate::tensor::DType::F4E2M1
            | $crate::tensor::DType::F8E8M0
            | $crate::tensor::DType::I4
            | $crate::tensor::DType::U4
            | $crate::tensor::DType::I2
            | $crate::tensor::DType::U2
    };
}

/// The pattern of the dtypes that ops do not compute with: the
/// [`DType::LOW_PRECISION`] storage types and [`DType::String`]. For the
/// refusing arm of a `match` on a [`DType`] that lists the others.
#[macro_export]
#[doc(hidden)]
macro_rules! storage_only {
    () => {
        $crate::low_precision!() | $crate::tensor::DType::String
    };
}

impl Tensor {
    /// The element type.
    pub fn dtype(&self) -> DType {
        dispatch!(self, array => element_dtype(array))
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        dispatch!(self, array => array.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        dispatch!(self, array => array.len())
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the data in bytes.
    pub fn n_bytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// True when no other tensor shares this one's data, so writing to it
    /// in place costs no copy.
    pub fn is_unique(&self) -> bool {
        dispatch!(self, array => array.is_unique())
    }

    /// Address of the element at index zero, to tell whether two tensors
    /// share one buffer; dangling for an empty tensor.
    pub fn data_ptr(&self) -> *const u8 {
        dispatch!(self, array => array.as_ptr().cast::<u8>())
    }

    /// True when both tensors are non-empty views of the same buffer at the
    /// same position, as after Identity or Reshape (which share, not copy).
    pub fn shares_data(&self, other: &Tensor) -> bool {
        !self.is_empty() && !other.is_empty() && self.data_ptr() == other.data_ptr()
    }

    /// A copy with a buffer of its own (`clone` shares the data instead).
    pub fn deep_copy(&self) -> Tensor {
        dispatch!(self, array => Tensor::from(array.to_owned()))
    }

    /// A tensor of zeros (false for bool, empty strings for string).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        fn zeros<T: Item + Default>(shape: &[usize]) -> Tensor {
            T::wrap(ArrayD::from_elem(IxDyn(shape), T::default()))
        }
        match dtype {
            DType::F32 => zeros::<f32>(shape),
            DType::F64 => zeros::<f64>(shape),
            DType::F16 => zeros::<f16>(shape),
            DType::BF16 => zeros::<bf16>(shape),
            DType::I8 => zeros::<i8>(shape),
            DType::I16 => zeros::<i16>(shape),
            DType::I32 => zeros::<i32>(shape),
            DType::I64 => zeros::<i64>(shape),
            DType::U8 => zeros::<u8>(shape),
            DType::U16 => zeros::<u16>(shape),
            DType::U32 => zeros::<u32>(shape),
            DType::U64 => zeros::<u64>(shape),
            DType::Bool => zeros::<bool>(shape),
            DType::F8E4M3FN => zeros::<F8E4M3FN>(shape),
            DType::F8E4M3FNUZ => zeros::<F8E4M3FNUZ>(shape),
            DType::F8E5M2 => zeros::<F8E5M2>(shape),
            DType::F8E5M2FNUZ => zeros::<F8E5M2FNUZ>(shape),
            DType::F4E2M1 => zeros::<F4E2M1>(shape),
            DType::F8E8M0 => zeros::<F8E8M0>(shape),
            DType::I4 => zeros::<I4>(shape),
            DType::U4 => zeros::<U4>(shape),
            DType::I2 => zeros::<I2>(shape),
            DType::U2 => zeros::<U2>(shape),
            DType::String => zeros::<Str>(shape),
        }
    }

    /// Borrows the data as `T`.
    ///
    /// # Errors
    /// [`Error::WrongDtype`] when the tensor holds another type.
    pub fn view<T: Item>(&self) -> Result<ArrayViewD<'_, T>, Error> {
        T::view(self).ok_or(Error::WrongDtype { expected: T::DTYPE, actual: self.dtype() })
    }

    /// Borrows float32 data.
    ///
    /// # Errors
    /// [`Error::WrongDtype`] when the tensor is not float32.
    pub fn as_f32(&self) -> Result<ArrayViewD<'_, f32>, Error> {
        self.view::<f32>()
    }

    /// Borrows float64 data.
    ///
    /// # Errors
    /// [`Error::WrongDtype`] when the tensor is not float64.
    pub fn as_f64(&self) -> Result<ArrayViewD<'_, f64>, Error> {
        self.view::<f64>()
    }

    /// Takes the array out as `T`: without a copy when no other tensor
    /// shares the data, else as a copy.
    ///
    /// # Errors
    /// [`Error::WrongDtype`] when the tensor holds another type.
    pub fn into_array<T: Item>(self) -> Result<ArrayD<T>, Error> {
        T::unwrap(self).map_err(|other| Error::WrongDtype { expected: T::DTYPE, actual: other.dtype() })
    }

    /// Takes the shared array out as `T`, never copying.
    ///
    /// # Errors
    /// [`Error::WrongDtype`] when the tensor holds another type.
    pub fn into_shared<T: Item>(self) -> Result<SharedArray<T>, Error> {
        T::unwrap_shared(self).map_err(|other| Error::WrongDtype { expected: T::DTYPE, actual: other.dtype() })
    }

    /// The elements in logical (row-major) order as little-endian bytes
    /// (bool as one byte, 0 or 1; the storage types one byte each, the 4-
    /// and 2-bit ones unpacked, their code in the low bits; a string as its
    /// byte length, a little-endian u64, then its UTF-8 bytes). Two tensors
    /// of one dtype and shape hold the same elements exactly when their
    /// bytes are equal.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        if let Tensor::String(array) = self {
            let mut out = Vec::new();
            for text in array.iter() {
                out.extend_from_slice(&(text.len() as u64).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            return out;
        }
        dispatch_fixed!(self, array => {
            let mut out = Vec::with_capacity(self.n_bytes());
            for &value in array.iter() {
                value.write_le(&mut out);
            }
            out
        }, _string => Vec::new())
    }

    /// Every element converted to f64 (for comparison and printing); bool
    /// is 0 or 1, 64-bit integers beyond 2^53 round, and a string reads as
    /// the number it spells, as Cast reads it (NaN when it spells none).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Tensor::F32(array) => array.iter().map(|&v| f64::from(v)).collect(),
            Tensor::F64(array) => array.iter().copied().collect(),
            Tensor::F16(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::BF16(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::I8(array) => array.iter().map(|&v| f64::from(v)).collect(),
            Tensor::I16(array) => array.iter().map(|&v| f64::from(v)).collect(),
            Tensor::I32(array) => array.iter().map(|&v| f64::from(v)).collect(),
            Tensor::I64(array) => array.iter().map(|&v| v as f64).collect(),
            Tensor::U8(array) => array.iter().map(|&v| f64::from(v)).collect(),
            Tensor::U16(array) => array.iter().map(|&v| f64::from(v)).collect(),
            Tensor::U32(array) => array.iter().map(|&v| f64::from(v)).collect(),
            Tensor::U64(array) => array.iter().map(|&v| v as f64).collect(),
            Tensor::Bool(array) => array.iter().map(|&v| f64::from(u8::from(v))).collect(),
            Tensor::F8E4M3FN(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::F8E4M3FNUZ(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::F8E5M2(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::F8E5M2FNUZ(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::F4E2M1(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::F8E8M0(array) => array.iter().map(|v| v.to_f64()).collect(),
            Tensor::I4(array) => array.iter().map(|v| f64::from(v.0)).collect(),
            Tensor::U4(array) => array.iter().map(|v| f64::from(v.0)).collect(),
            Tensor::I2(array) => array.iter().map(|v| f64::from(v.0)).collect(),
            Tensor::U2(array) => array.iter().map(|v| f64::from(v.0)).collect(),
            Tensor::String(array) => array.iter().map(|text| text.trim().parse().unwrap_or(f64::NAN)).collect(),
        }
    }
}

fn element_dtype<T: Item>(_: &SharedArray<T>) -> DType {
    T::DTYPE
}

/// Any owned array, of any dimension (`Array1`, `Array2`, …, `ArrayD`).
/// An owned input for [`crate::Model::run`], which takes it over.
impl From<Tensor> for std::borrow::Cow<'_, Tensor> {
    fn from(tensor: Tensor) -> Self {
        std::borrow::Cow::Owned(tensor)
    }
}

/// A borrowed input for [`crate::Model::run`], left as it is.
impl<'a> From<&'a Tensor> for std::borrow::Cow<'a, Tensor> {
    fn from(tensor: &'a Tensor) -> Self {
        std::borrow::Cow::Borrowed(tensor)
    }
}

impl<T: Item, D: ndarray::Dimension> From<ndarray::Array<T, D>> for Tensor {
    fn from(array: ndarray::Array<T, D>) -> Self {
        T::wrap(array.into_dyn())
    }
}

impl<T: Item> From<SharedArray<T>> for Tensor {
    fn from(array: SharedArray<T>) -> Self {
        T::wrap_shared(array)
    }
}

/// Builds a tensor from little-endian bytes in row-major order.
///
/// # Errors
/// A message when `bytes` does not hold exactly `product(shape)` elements.
pub(crate) fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor, String> {
    fn build<T: Element>(shape: &[usize], bytes: &[u8]) -> Result<Tensor, String> {
        let n_elems = checked_elems(shape).ok_or("element count overflows")?;
        if n_elems.checked_mul(T::DTYPE.size()) != Some(bytes.len()) {
            return Err(format!(
                "{} bytes of data, but shape {shape:?} of {} needs {}",
                bytes.len(),
                T::DTYPE,
                n_elems.saturating_mul(T::DTYPE.size())
            ));
        }
        let values: Vec<T> = bytes.chunks_exact(T::DTYPE.size()).map(T::from_le).collect();
        ArrayD::from_shape_vec(IxDyn(shape), values).map(T::wrap).map_err(|err| err.to_string())
    }
    match dtype {
        DType::F32 => build::<f32>(shape, bytes),
        DType::F64 => build::<f64>(shape, bytes),
        DType::F16 => build::<f16>(shape, bytes),
        DType::BF16 => build::<bf16>(shape, bytes),
        DType::I8 => build::<i8>(shape, bytes),
        DType::I16 => build::<i16>(shape, bytes),
        DType::I32 => build::<i32>(shape, bytes),
        DType::I64 => build::<i64>(shape, bytes),
        DType::U8 => build::<u8>(shape, bytes),
        DType::U16 => build::<u16>(shape, bytes),
        DType::U32 => build::<u32>(shape, bytes),
        DType::U64 => build::<u64>(shape, bytes),
        DType::Bool => build::<bool>(shape, bytes),
        DType::F8E4M3FN => build::<F8E4M3FN>(shape, bytes),
        DType::F8E4M3FNUZ => build::<F8E4M3FNUZ>(shape, bytes),
        DType::F8E5M2 => build::<F8E5M2>(shape, bytes),
        DType::F8E5M2FNUZ => build::<F8E5M2FNUZ>(shape, bytes),
        DType::F4E2M1 => build::<F4E2M1>(shape, bytes),
        DType::F8E8M0 => build::<F8E8M0>(shape, bytes),
        DType::I4 => build::<I4>(shape, bytes),
        DType::U4 => build::<U4>(shape, bytes),
        DType::I2 => build::<I2>(shape, bytes),
        DType::U2 => build::<U2>(shape, bytes),
        DType::String => Err("a string tensor has no fixed-size raw bytes".to_string()),
    }
}

/// Multiplies dims with overflow checks; `None` on overflow.
pub fn checked_elems(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
}
