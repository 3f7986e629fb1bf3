//! Error types. Every failure is a value whose message names what failed.
//!
//! - [`LoadError`]: the model file or its graph is unusable.
//! - [`OpError`]: an operator refused its inputs (kernel-level, no node names).
//! - [`RunError`]: a run failed; wraps `OpError` with the node's context.
//! - [`Error`]: what the public API returns, with the file where known.

// Variants are documented; their fields (node, op_type, reason, …) name
// themselves.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use crate::tensor::DType;

/// Why a model could not be loaded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    Io { reason: String },
    /// The bytes are not a valid ModelProto.
    Decode { reason: String },
    /// The model has no graph.
    MissingGraph,
    /// The model's `ir_version` is newer than the `onnx.proto` onnxi was
    /// built from ([`crate::MAX_IR_VERSION`]): it may use parts of the
    /// format onnxi cannot read.
    IrVersionTooNew { ir_version: i64, max: i64 },
    /// No `opset_import` entry for the default domain.
    NoDefaultOpset,
    /// An opset version that cannot be a real one (negative or absurd).
    InvalidOpsetVersion { domain: String, version: i64 },
    /// One domain imported twice at different versions.
    DuplicateOpset { domain: String, first: i64, second: i64 },
    /// A node's domain has no `opset_import` entry and is not a local function.
    UnknownDomain { node: String, op_type: String, domain: String },
    /// No implementation of the op in any version.
    UnsupportedOp { node: String, op_type: String, domain: String, opset: i64, supported: Box<str> },
    /// The op exists, but not for this opset.
    UnsupportedOpset { node: String, op_type: String, domain: String, opset: i64, versions: Box<str> },
    /// The model imports a default-domain opset newer than onnxi knows
    /// ([`crate::ops::MAX_OPSET`]).
    OpsetTooNew { node: String, op_type: String, opset: i64, max: i64 },
    /// An attribute is missing, has the wrong type or an invalid value.
    Attribute { node: String, op_type: String, attr: String, reason: String },
    /// An attribute onnxi does not implement (partial support fails loudly).
    UnexpectedAttribute { node: String, op_type: String, attr: String },
    /// Wrong number of inputs or outputs for the op.
    Arity { node: String, op_type: String, reason: String },
    /// A node input that no node, initializer or graph input produces.
    UndefinedInput { node: String, op_type: String, input: String },
    /// Two producers of one value.
    DuplicateProducer { value: String, first: String, second: String },
    /// The graph has a cycle.
    Cycle { node: String, op_type: String },
    /// A graph output that nothing produces, or listed twice.
    BadOutput { output: String, reason: String },
    /// A graph input declaration that onnxi cannot use.
    BadInput { input: String, reason: String },
    /// A TensorProto (initializer, Constant value, attribute) that is invalid.
    Tensor { name: String, reason: String },
    /// A configured limit was exceeded.
    LimitExceeded { what: String, limit: u64, actual: u64 },
    /// A model-local function could not be expanded.
    Function { function: String, reason: String },
    /// A node whose inputs are all constants failed when run at load: it
    /// would fail on every run.
    Fold { node: String, op_type: String, source: OpError },
    /// A node input's declared (or inferred) type is outside what the op's
    /// schema accepts at its version: the model is invalid.
    InputType { node: String, op_type: String, source: OpError },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { reason } => write!(f, "cannot read model: {reason}"),
            Self::Decode { reason } => write!(f, "not a valid ONNX model (protobuf decode failed: {reason})"),
            Self::MissingGraph => write!(f, "model has no graph"),
            Self::IrVersionTooNew { ir_version, max } => write!(
                f,
                "the model has ONNX IR version {ir_version}, but onnxi was built from an onnx.proto of IR version {max}"
            ),
            Self::NoDefaultOpset => {
                write!(f, "model imports no opset for the default ONNX domain (\"\" or \"ai.onnx\")")
            }
            Self::InvalidOpsetVersion { domain, version } => {
                write!(f, "opset import for domain {domain:?} has invalid version {version}")
            }
            Self::DuplicateOpset { domain, first, second } => {
                write!(f, "opset for domain {domain:?} is imported twice, at versions {first} and {second}")
            }
            Self::UnknownDomain { node, op_type, domain } => {
                write!(f, "node {node:?} (op {op_type}): domain {domain:?} is not imported by the model")
            }
            Self::UnsupportedOp { node, op_type, domain, opset, supported } => write!(
                f,
                "node {node:?}: unsupported op {op_type:?} in domain {domain:?} (opset {opset}); onnxi supports: {supported}"
            ),
            Self::UnsupportedOpset { node, op_type, domain, opset, versions } => write!(
                f,
                "node {node:?}: op {op_type} has no version for opset {opset} in domain {domain:?}; onnxi implements versions {versions}"
            ),
            Self::OpsetTooNew { node, op_type, opset, max } => write!(
                f,
                "node {node:?} (op {op_type}): the model imports default-domain opset {opset}, but onnxi knows opsets up to {max}"
            ),
            Self::Attribute { node, op_type, attr, reason } => {
                write!(f, "node {node:?} (op {op_type}): attribute {attr:?}: {reason}")
            }
            Self::UnexpectedAttribute { node, op_type, attr } => {
                write!(f, "node {node:?} (op {op_type}): unexpected attribute {attr:?}")
            }
            Self::Arity { node, op_type, reason } => write!(f, "node {node:?} (op {op_type}): {reason}"),
            Self::UndefinedInput { node, op_type, input } => write!(
                f,
                "node {node:?} (op {op_type}): input {input:?} is not produced by any node, initializer or graph input"
            ),
            Self::DuplicateProducer { value, first, second } => {
                write!(f, "value {value:?} is produced twice: by {first} and by {second}")
            }
            Self::Cycle { node, op_type } => write!(f, "graph has a cycle through node {node:?} (op {op_type})"),
            Self::BadOutput { output, reason } => write!(f, "graph output {output:?}: {reason}"),
            Self::BadInput { input, reason } => write!(f, "graph input {input:?}: {reason}"),
            Self::Tensor { name, reason } => write!(f, "tensor {name:?}: {reason}"),
            Self::LimitExceeded { what, limit, actual } => {
                write!(f, "{what}: {actual} exceeds the limit of {limit} (see ModelBuilder)")
            }
            Self::Function { function, reason } => write!(f, "function {function:?}: {reason}"),
            Self::Fold { node, op_type, source } => {
                write!(f, "node {node:?} (op {op_type}) fails on its constant inputs: {source}")
            }
            Self::InputType { node, op_type, source } => {
                write!(f, "node {node:?} (op {op_type}): input type refused by the op's schema: {source}")
            }
        }
    }
}

/// The message is self-contained (it includes any inner error's text), so
/// `source()` is `None`: chain printers then show each cause once.
impl std::error::Error for LoadError {}

/// An operator's complaint about its inputs. Carries no node context;
/// [`RunError::Op`] adds it.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum OpError {
    /// The op does not accept this element type.
    #[error("{op}: unsupported dtype {dtype}")]
    UnsupportedDtype { op: &'static str, dtype: DType },
    /// An axis outside `[-rank, rank)`.
    #[error("{op}: axis {axis} out of range for rank {rank}")]
    AxisOutOfRange { op: &'static str, axis: i64, rank: usize },
    /// A required input is absent.
    #[error("{op}: required input {index} is missing")]
    MissingInput { op: &'static str, index: usize },
    /// Anything else wrong with the inputs.
    #[error("{op}: {reason}")]
    Invalid { op: &'static str, reason: String },
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunError {
    /// A node failed.
    Op { node: String, op_type: String, opset: i64, inputs: Box<str>, source: OpError },
    /// A graph input was not supplied.
    MissingInput { name: String, expected: String },
    /// A supplied input the graph does not have.
    UnknownInput { name: String, expected: String },
    /// An input with the wrong element type.
    InputDtype { name: String, expected: DType, actual: DType },
    /// An input with the wrong shape.
    InputShape { name: String, expected: String, actual: Vec<usize> },
    /// A tensor larger than the configured limit.
    TooLarge { what: String, limit: u64, actual: u64 },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Op { node, op_type, opset, inputs, source } => {
                write!(f, "node {node:?} (op {op_type}, opset {opset}) failed: {source}. Inputs were ({inputs})")
            }
            Self::MissingInput { name, expected } => {
                write!(f, "missing input {name:?} (the model expects: {expected})")
            }
            Self::UnknownInput { name, expected } => {
                write!(f, "unknown input {name:?} (the model expects: {expected})")
            }
            Self::InputDtype { name, expected, actual } => {
                write!(f, "input {name:?}: expected dtype {expected}, got {actual}")
            }
            Self::InputShape { name, expected, actual } => {
                write!(f, "input {name:?}: expected shape {expected}, got {actual:?}")
            }
            Self::TooLarge { what, limit, actual } => {
                write!(f, "{what}: {actual} bytes exceeds the limit of {limit} bytes")
            }
        }
    }
}

/// The message is self-contained (it includes any inner error's text), so
/// `source()` is `None`: chain printers then show each cause once.
impl std::error::Error for RunError {}

/// A tensor file (`.npy` or TensorProto `.pb`) that could not be read or written.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{reason}")]
pub struct TensorFileError {
    /// What is wrong with the file.
    pub reason: String,
}

/// What the public API returns: one of the errors above, with the file
/// involved where there is one.
///
/// The message (`Display`) is self-contained: it includes the inner error's
/// text, so `source()` is `None` and chain printers (`anyhow`'s `{:#}`)
/// show each cause once. `Debug` prints the same message, so an error
/// returned from `main` reads as `Error: <message>`; match on the variants
/// for the structured fields.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Loading failed.
    Load { file: Option<Box<Path>>, source: LoadError },
    /// Running failed.
    Run { source: RunError },
    /// A tensor file could not be read or written.
    TensorFile { file: PathBuf, source: TensorFileError },
    /// An output name the model does not have.
    UnknownOutput { name: String, available: String },
    /// A tensor was asked for as the wrong element type.
    WrongDtype { expected: DType, actual: DType },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Load { file: Some(file), source } => write!(f, "{}: {source}", file.display()),
            Self::Load { file: None, source } => write!(f, "{source}"),
            Self::Run { source } => write!(f, "{source}"),
            Self::TensorFile { file, source } => write!(f, "{}: {source}", file.display()),
            Self::UnknownOutput { name, available } => {
                write!(f, "the model has no output named {name:?} (its outputs: {available})")
            }
            Self::WrongDtype { expected, actual } => write!(f, "tensor is {actual}, not {expected}"),
        }
    }
}

/// The message, as `Display` writes it: `fn main() -> Result<(), onnxi::Error>`
/// then prints `Error: <message>` instead of the variant's fields.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<LoadError> for Error {
    fn from(source: LoadError) -> Self {
        Error::Load { file: None, source }
    }
}

impl From<RunError> for Error {
    fn from(source: RunError) -> Self {
        Error::Run { source }
    }
}
