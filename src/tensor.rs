//! `Tensor`: an element type plus an ndarray, and the one dtype-dispatch helper.

use std::fmt;

use half::{bf16, f16};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::Error;

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
}

impl DType {
    /// Every dtype, in ONNX code order of appearance in the README table.
    pub const ALL: [DType; 8] =
        [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I8, DType::I16, DType::I32, DType::I64];

    /// The `TensorProto.DataType` code.
    pub fn onnx_code(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::I8 => 3,
            DType::I16 => 5,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::F16 => 10,
            DType::F64 => 11,
            DType::BF16 => 16,
        }
    }

    /// The dtype for a `TensorProto.DataType` code, if onnxi supports it.
    pub fn from_onnx_code(code: i32) -> Option<DType> {
        DType::ALL.into_iter().find(|dtype| dtype.onnx_code() == code)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// The numpy name (`float32`, `int64`, …), also used in messages.
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
        2 => "UINT8",
        4 => "UINT16",
        8 => "STRING",
        9 => "BOOL",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        _ => match DType::from_onnx_code(code) {
            Some(dtype) => return dtype.name().to_string(),
            None => return format!("data type {code}"),
        },
    };
    name.to_string()
}

/// A dense tensor: an element type and an n-dimensional array.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    /// float32 data.
    F32(ArrayD<f32>),
    /// float64 data.
    F64(ArrayD<f64>),
    /// float16 data.
    F16(ArrayD<f16>),
    /// bfloat16 data.
    BF16(ArrayD<bf16>),
    /// int8 data.
    I8(ArrayD<i8>),
    /// int16 data.
    I16(ArrayD<i16>),
    /// int32 data.
    I32(ArrayD<i32>),
    /// int64 data.
    I64(ArrayD<i64>),
}

/// A Rust element type that a [`Tensor`] can hold.
pub trait Element: Copy + Send + Sync + PartialEq + fmt::Debug + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// Wraps an array in the matching variant.
    fn wrap(array: ArrayD<Self>) -> Tensor;
    /// Borrows the array if the tensor holds this type.
    fn view(tensor: &Tensor) -> Option<ArrayViewD<'_, Self>>;
    /// Takes the array if the tensor holds this type.
    fn unwrap(tensor: Tensor) -> Result<ArrayD<Self>, Tensor>;
    /// Decodes one element from little-endian bytes (`bytes.len() == DTYPE.size()`).
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the element's little-endian bytes.
    fn write_le(self, out: &mut Vec<u8>);
}

macro_rules! element {
    ($ty:ty, $variant:ident, $from:expr, $to:expr) => {
        impl Element for $ty {
            const DTYPE: DType = DType::$variant;
            fn wrap(array: ArrayD<Self>) -> Tensor {
                Tensor::$variant(array)
            }
            fn view(tensor: &Tensor) -> Option<ArrayViewD<'_, Self>> {
                match tensor {
                    Tensor::$variant(array) => Some(array.view()),
                    _ => None,
                }
            }
            fn unwrap(tensor: Tensor) -> Result<ArrayD<Self>, Tensor> {
                match tensor {
                    Tensor::$variant(array) => Ok(array),
                    other => Err(other),
                }
            }
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

/// Applies a generic expression to the array inside a tensor, whatever its
/// dtype. This is the one dtype-dispatch helper: `$array` is bound to the
/// `ArrayD<T>` (or a reference to it, following `$tensor`).
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
        }
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

    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let shape = IxDyn(shape);
        match dtype {
            DType::F32 => Tensor::F32(ArrayD::zeros(shape)),
            DType::F64 => Tensor::F64(ArrayD::zeros(shape)),
            DType::F16 => Tensor::F16(ArrayD::from_elem(shape, f16::ZERO)),
            DType::BF16 => Tensor::BF16(ArrayD::from_elem(shape, bf16::ZERO)),
            DType::I8 => Tensor::I8(ArrayD::zeros(shape)),
            DType::I16 => Tensor::I16(ArrayD::zeros(shape)),
            DType::I32 => Tensor::I32(ArrayD::zeros(shape)),
            DType::I64 => Tensor::I64(ArrayD::zeros(shape)),
        }
    }

    /// Borrows the data as `T`.
    ///
    /// # Errors
    /// [`Error::WrongDtype`] when the tensor holds another type.
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>, Error> {
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

    /// Takes the array out as `T`.
    ///
    /// # Errors
    /// [`Error::WrongDtype`] when the tensor holds another type.
    pub fn into_array<T: Element>(self) -> Result<ArrayD<T>, Error> {
        T::unwrap(self).map_err(|other| Error::WrongDtype { expected: T::DTYPE, actual: other.dtype() })
    }

    /// The elements in logical (row-major) order as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        dispatch!(self, array => {
            let mut out = Vec::with_capacity(self.n_bytes());
            for &value in array.iter() {
                value.write_le(&mut out);
            }
            out
        })
    }

    /// Every element converted to f64 (for comparison and printing).
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
        }
    }
}

fn element_dtype<T: Element>(_: &ArrayD<T>) -> DType {
    T::DTYPE
}

impl<T: Element> From<ArrayD<T>> for Tensor {
    fn from(array: ArrayD<T>) -> Self {
        T::wrap(array)
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
    }
}

/// Multiplies dims with overflow checks; `None` on overflow.
pub fn checked_elems(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
}
