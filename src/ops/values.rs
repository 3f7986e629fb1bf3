//! Helpers shared by the data-movement, indexing and normalisation ops:
//! reading small integer inputs (shapes, indices, pads, repeats), a
//! dtype-to-type dispatch for generic kernels, and float tensors viewed as
//! float64 for the normalisation kernels.

use ndarray::ArrayD;

use crate::error::OpError;
use crate::ops::reduce::Num;
use crate::tensor::{DType, Tensor};

/// Runs `$body` with `$T` bound to the Rust element type of `$dtype`
/// (every type implements [`Num`]); a low-precision storage type (which
/// has no [`Num`]) is `OpError::UnsupportedDtype` naming `$op`, so `$body`
/// must be a `Result<_, OpError>`.
macro_rules! by_dtype {
    ($op:expr, $dtype:expr, $T:ident => $body:expr) => {{
        use half::{bf16, f16};
        match $dtype {
            $crate::tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::tensor::DType::F16 => {
                type $T = f16;
                $body
            }
            $crate::tensor::DType::BF16 => {
                type $T = bf16;
                $body
            }
            $crate::tensor::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::tensor::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::tensor::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::tensor::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::tensor::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::tensor::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::tensor::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::tensor::DType::U64 => {
                type $T = u64;
                $body
            }
            $crate::tensor::DType::Bool => {
                type $T = bool;
                $body
            }
            dtype @ $crate::storage_only!() => Err($crate::error::OpError::UnsupportedDtype { op: $op, dtype }),
        }
    }};
}
pub(crate) use by_dtype;

/// The values of an int32 or int64 input of rank 0 or 1 (a shape, indices
/// of an axis list, pads, repeats), as int64.
///
/// # Errors
/// [`OpError::Invalid`] naming `op` and `what` for any other dtype or rank.
pub(crate) fn int_values(op: &'static str, what: &str, tensor: &Tensor) -> Result<Vec<i64>, OpError> {
    match tensor {
        Tensor::I64(array) if array.ndim() <= 1 => Ok(array.iter().copied().collect()),
        Tensor::I32(array) if array.ndim() <= 1 => Ok(array.iter().map(|&v| i64::from(v)).collect()),
        other => Err(OpError::Invalid {
            op,
            reason: format!("{what} must be a 1-D int32 or int64 tensor, got {} {:?}", other.dtype(), other.shape()),
        }),
    }
}

/// Non-negative sizes from int64 values (a shape or sizes input).
///
/// # Errors
/// [`OpError::Invalid`] for a negative value.
pub(crate) fn sizes(op: &'static str, what: &str, values: &[i64]) -> Result<Vec<usize>, OpError> {
    values
        .iter()
        .map(|&value| {
            usize::try_from(value)
                .map_err(|_| OpError::Invalid { op, reason: format!("{what} {values:?} has a negative value") })
        })
        .collect()
}

/// A float tensor's elements as float64, in its shape.
///
/// # Errors
/// [`OpError::UnsupportedDtype`] for a non-float tensor.
pub(crate) fn float_array(op: &'static str, tensor: &Tensor) -> Result<ArrayD<f64>, OpError> {
    fn widen<T: Num>(tensor: &Tensor) -> Option<ArrayD<f64>> {
        T::view(tensor).map(|view| view.mapv(Num::to_f64))
    }
    let widened = match tensor.dtype() {
        DType::F32 => widen::<f32>(tensor),
        DType::F64 => widen::<f64>(tensor),
        DType::F16 => widen::<half::f16>(tensor),
        DType::BF16 => widen::<half::bf16>(tensor),
        _ => None,
    };
    widened.ok_or(OpError::UnsupportedDtype { op, dtype: tensor.dtype() })
}

/// A float64 array rounded to the float `dtype` (float64 itself is kept).
pub(crate) fn float_tensor(dtype: DType, array: ArrayD<f64>) -> Tensor {
    match dtype {
        DType::F32 => Tensor::from(array.mapv(|v| v as f32)),
        DType::F16 => Tensor::from(array.mapv(half::f16::from_f64)),
        DType::BF16 => Tensor::from(array.mapv(half::bf16::from_f64)),
        _ => Tensor::from(array),
    }
}
