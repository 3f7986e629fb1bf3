//! Pure numeric code on slices: no ONNX types, no op names.
//!
//! Each kernel works on contiguous slices and takes a [`Parallel`] handle
//! that decides whether the work is big enough to split across threads.

pub mod broadcast;
pub mod conv;
pub mod gemm;
pub(crate) mod math;
pub mod par;
pub mod pool;
pub mod pooling;
pub mod simd;
pub mod softmax;
pub mod taps;
#[cfg(test)]
pub(crate) mod test_util;
pub mod unary;

pub use par::Parallel;
