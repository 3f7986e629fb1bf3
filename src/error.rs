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
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read model: {reason}")]
    Io { reason: String },
    /// The bytes are not a valid ModelProto.
    #[error("not a valid ONNX model (protobuf decode failed: {reason})")]
    Decode { reason: String },
    /// The model has no graph.
    #[error("model has no graph")]
    MissingGraph,
    /// No `opset_import` entry for the default domain.
    #[error("model imports no opset for the default ONNX domain (\"\" or \"ai.onnx\")")]
    NoDefaultOpset,
    /// An opset version that cannot be a real one (negative or absurd).
    #[error("opset import for domain {domain:?} has invalid version {version}")]
    InvalidOpsetVersion { domain: String, version: i64 },
    /// One domain imported twice at different versions.
    #[error("opset for domain {domain:?} is imported twice, at versions {first} and {second}")]
    DuplicateOpset { domain: String, first: i64, second: i64 },
    /// A node's domain has no `opset_import` entry and is not a local function.
    #[error("node {node:?} (op {op_type}): domain {domain:?} is not imported by the model")]
    UnknownDomain { node: String, op_type: String, domain: String },
    /// No implementation of the op in any version.
    #[error(
        "node {node:?}: unsupported op {op_type:?} in domain {domain:?} (opset {opset}); onnxi supports: {supported}"
    )]
    UnsupportedOp { node: String, op_type: String, domain: String, opset: i64, supported: Box<str> },
    /// The op exists, but not for this opset.
    #[error(
        "node {node:?}: op {op_type} has no version for opset {opset} in domain {domain:?}; onnxi implements versions {versions}"
    )]
    UnsupportedOpset { node: String, op_type: String, domain: String, opset: i64, versions: Box<str> },
    /// An attribute is missing, has the wrong type or an invalid value.
    #[error("node {node:?} (op {op_type}): attribute {attr:?}: {reason}")]
    Attribute { node: String, op_type: String, attr: String, reason: String },
    /// An attribute onnxi does not implement (partial support fails loudly).
    #[error("node {node:?} (op {op_type}): unexpected attribute {attr:?}")]
    UnexpectedAttribute { node: String, op_type: String, attr: String },
    /// Wrong number of inputs or outputs for the op.
    #[error("node {node:?} (op {op_type}): {reason}")]
    Arity { node: String, op_type: String, reason: String },
    /// A node input that no node, initializer or graph input produces.
    #[error("node {node:?} (op {op_type}): input {input:?} is not produced by any node, initializer or graph input")]
    UndefinedInput { node: String, op_type: String, input: String },
    /// Two producers of one value.
    #[error("value {value:?} is produced twice: by {first} and by {second}")]
    DuplicateProducer { value: String, first: String, second: String },
    /// The graph has a cycle.
    #[error("graph has a cycle through node {node:?} (op {op_type})")]
    Cycle { node: String, op_type: String },
    /// A graph output that nothing produces, or listed twice.
    #[error("graph output {output:?}: {reason}")]
    BadOutput { output: String, reason: String },
    /// A graph input declaration that onnxi cannot use.
    #[error("graph input {input:?}: {reason}")]
    BadInput { input: String, reason: String },
    /// A TensorProto (initializer, Constant value, attribute) that is invalid.
    #[error("tensor {name:?}: {reason}")]
    Tensor { name: String, reason: String },
    /// A configured limit was exceeded.
    #[error("{what}: {actual} exceeds the limit of {limit} (see ModelBuilder)")]
    LimitExceeded { what: String, limit: u64, actual: u64 },
    /// A model-local function could not be expanded.
    #[error("function {function:?}: {reason}")]
    Function { function: String, reason: String },
    /// A node whose inputs are all constants failed when run at load: it
    /// would fail on every run.
    #[error("node {node:?} (op {op_type}) fails on its constant inputs: {source}")]
    Fold { node: String, op_type: String, source: OpError },
}

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
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum RunError {
    /// A node failed.
    #[error("node {node:?} (op {op_type}, opset {opset}) failed: {source}. Inputs were ({inputs})")]
    Op { node: String, op_type: String, opset: i64, inputs: Box<str>, source: OpError },
    /// A graph input was not supplied.
    #[error("missing input {name:?} (the model expects: {expected})")]
    MissingInput { name: String, expected: String },
    /// A supplied input the graph does not have.
    #[error("unknown input {name:?} (the model expects: {expected})")]
    UnknownInput { name: String, expected: String },
    /// An input with the wrong element type.
    #[error("input {name:?}: expected dtype {expected}, got {actual}")]
    InputDtype { name: String, expected: DType, actual: DType },
    /// An input with the wrong shape.
    #[error("input {name:?}: expected shape {expected}, got {actual:?}")]
    InputShape { name: String, expected: String, actual: Vec<usize> },
    /// A tensor larger than the configured limit.
    #[error("{what}: {actual} bytes exceeds the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64, actual: u64 },
}

/// A tensor file (`.npy` or TensorProto `.pb`) that could not be read or written.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{reason}")]
pub struct TensorFileError {
    /// What is wrong with the file.
    pub reason: String,
}

/// What the public API returns: one of the errors above, with the file
/// involved where there is one.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Loading failed.
    #[error("{}{source}", file_prefix(file))]
    Load { file: Option<Box<Path>>, source: LoadError },
    /// Running failed.
    #[error("{source}")]
    Run { source: RunError },
    /// A tensor file could not be read or written.
    #[error("{}: {source}", file.display())]
    TensorFile { file: PathBuf, source: TensorFileError },
    /// An output name the model does not have.
    #[error("the model has no output named {name:?} (its outputs: {available})")]
    UnknownOutput { name: String, available: String },
    /// A tensor was asked for as the wrong element type.
    #[error("tensor is {actual}, not {expected}")]
    WrongDtype { expected: DType, actual: DType },
}

fn file_prefix(file: &Option<Box<Path>>) -> String {
    match file {
        Some(path) => format!("{}: ", path.display()),
        None => String::new(),
    }
}

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
