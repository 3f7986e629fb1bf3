//! The ONNX format on disk: model bytes decoded lazily (`decode`),
//! `TensorProto` ⇄ [`crate::Tensor`] ([`tensor_proto`]), and tensors in
//! `.npy` and `.pb` files ([`tensor_file`]).

pub(crate) mod decode;
pub mod tensor_file;
pub mod tensor_proto;
