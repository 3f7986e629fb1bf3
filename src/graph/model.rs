//! The public face of loading: [`Model`], its [`ModelBuilder`] and
//! [`Limits`], and what a model says about itself ([`ModelInfo`],
//! [`InputSpec`], [`Dim`]). The work is done by `builder` (graph → plan),
//! `opsets`, `functions` and the lazy decoder in `crate::io::decode`.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, LoadError};
use crate::graph::builder::build_graph;
use crate::graph::optimize::{Optimized, Passes, optimize};
use crate::graph::plan::Plan;
use crate::graph::shapes::ValueType;
use crate::io::decode::decode_model_lazily;
use crate::kernels::Parallel;
use crate::onnx::ModelProto;
use crate::tensor::DType;

/// The newest ONNX IR version onnxi reads: the `IR_VERSION` of the
/// `proto/onnx.proto` it was built from. A model with a newer `ir_version`
/// is refused ([`LoadError::IrVersionTooNew`]).
pub const MAX_IR_VERSION: i64 = crate::onnx::Version::IrVersion as i64;

/// Resource limits applied while loading and running. The defaults suit
/// untrusted models on a normal machine; raise them for big models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest single tensor (initializer, input, or output), in bytes.
    /// Default 4 GiB.
    pub max_tensor_bytes: u64,
    /// Total bytes of all initializers and constants. Default 8 GiB.
    pub max_initializer_bytes: u64,
    /// Total bytes read from external data files. Default 8 GiB.
    pub max_external_bytes: u64,
    /// Most nodes after expanding local functions. Default 10,000,000.
    pub max_nodes: usize,
    /// Deepest nesting of local function calls. Default 64.
    pub max_function_depth: usize,
    /// Total size of the node copies made by expanding calls to local
    /// functions (names, value names and attributes of every copy), in
    /// bytes. A function body is copied at every call, so a small file
    /// whose functions call each other several times over could otherwise
    /// ask for an exponential amount of memory. Default 256 MiB.
    pub max_expanded_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensor_bytes: 4 << 30,
            max_initializer_bytes: 8 << 30,
            max_external_bytes: 8 << 30,
            max_nodes: 10_000_000,
            max_function_depth: 64,
            max_expanded_bytes: 256 << 20,
        }
    }
}

/// Options for loading a model: limits and threads.
///
/// ```
/// let builder = onnxi::Model::builder().threads(1).max_tensor_bytes(1 << 20);
/// # let _ = builder;
/// ```
#[derive(Debug, Clone, Default)]
pub struct ModelBuilder {
    limits: Limits,
    threads: Threads,
    no_folding: bool,
    passes: Passes,
}

/// Which threads a model's kernels use.
#[derive(Debug, Clone, Default)]
enum Threads {
    /// The rayon pool the caller runs in, else rayon's global pool.
    #[default]
    Current,
    /// A dedicated pool for this many threads, the caller included.
    Count(usize),
    /// A pool the application gives.
    Pool(Arc<rayon::ThreadPool>),
}

impl ModelBuilder {
    /// Runs kernels on a dedicated rayon pool for `n` threads, the calling
    /// thread included (1: the caller's thread only). Without this or
    /// [`ModelBuilder::pool`], kernels use the rayon pool the caller runs
    /// in, or else rayon's global pool (one thread per core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Threads::Count(n);
        self
    }

    /// Runs kernels on `pool` (the application's own rayon pool, so onnxi
    /// does not start threads that compete with it for the cores), using as
    /// many threads at once as the pool has: the calling thread works on
    /// each job at once and stands for one of them, pool threads join as
    /// they become free. Replaces an earlier [`ModelBuilder::threads`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// let pool = Arc::new(onnxi::rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
    /// let builder = onnxi::Model::builder().pool(pool);
    /// # let _ = builder;
    /// ```
    pub fn pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.threads = Threads::Pool(pool);
        self
    }

    /// Whether nodes whose inputs are all constants run once at load
    /// (default: yes). Off, every node runs on every call; results are the
    /// same either way.
    pub fn fold_constants(mut self, fold: bool) -> Self {
        self.no_folding = !fold;
        self
    }

    /// Whether the load-time optimisation passes run (default: yes): sets
    /// all four of [`ModelBuilder::remove_dead_nodes`],
    /// [`ModelBuilder::fold_batch_norm`], [`ModelBuilder::matmul_add_to_gemm`]
    /// and [`ModelBuilder::fuse_activations`]. Results are the same either
    /// way (bit for bit except BatchNormalization folding, which rounds
    /// the folded weights once); `onnxi inspect` lists what they did.
    pub fn optimize(mut self, on: bool) -> Self {
        self.passes = Passes { dead_nodes: on, fold_batch_norm: on, matmul_add_to_gemm: on, fuse_activations: on };
        self
    }

    /// Whether nodes none of whose outputs reaches a graph output are
    /// removed at load (default: yes). A removed node no longer runs, so
    /// an error it would have raised no longer stops a run.
    pub fn remove_dead_nodes(mut self, on: bool) -> Self {
        self.passes.dead_nodes = on;
        self
    }

    /// Whether a BatchNormalization (inference) that alone reads a Conv's,
    /// ConvTranspose's or Gemm's float32/float64 output, with constant
    /// weights and statistics, is folded into that op's weight and bias
    /// (Gemm: B and C) (default: yes). Computed in float64 and
    /// rounded once; results agree with the unfolded model within
    /// rounding, not bit for bit.
    pub fn fold_batch_norm(mut self, on: bool) -> Self {
        self.passes.fold_batch_norm = on;
        self
    }

    /// Whether a 2-D MatMul by a constant matrix followed by an Add of a
    /// constant row (or scalar) becomes one Gemm that adds it to each
    /// block of the product (default: yes; bit for bit the same).
    pub fn matmul_add_to_gemm(mut self, on: bool) -> Self {
        self.passes.matmul_add_to_gemm = on;
        self
    }

    /// Whether an elementwise activation (the declared ops: Relu,
    /// LeakyRelu, Sigmoid, Tanh, …) that alone reads a Conv, Gemm or
    /// MatMul output runs inside that op, on each block of the output as
    /// it is computed (default: yes; bit for bit the same).
    pub fn fuse_activations(mut self, on: bool) -> Self {
        self.passes.fuse_activations = on;
        self
    }

    /// Sets every limit at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Largest single tensor in bytes.
    pub fn max_tensor_bytes(mut self, bytes: u64) -> Self {
        self.limits.max_tensor_bytes = bytes;
        self
    }

    /// Total initializer bytes.
    pub fn max_initializer_bytes(mut self, bytes: u64) -> Self {
        self.limits.max_initializer_bytes = bytes;
        self
    }

    /// Total external-data bytes.
    pub fn max_external_bytes(mut self, bytes: u64) -> Self {
        self.limits.max_external_bytes = bytes;
        self
    }

    /// Most nodes.
    pub fn max_nodes(mut self, n: usize) -> Self {
        self.limits.max_nodes = n;
        self
    }

    /// Deepest nesting of local function calls.
    pub fn max_function_depth(mut self, depth: usize) -> Self {
        self.limits.max_function_depth = depth;
        self
    }

    /// Total bytes of the node copies made by expanding local functions.
    pub fn max_expanded_bytes(mut self, bytes: u64) -> Self {
        self.limits.max_expanded_bytes = bytes;
        self
    }

    /// Loads a model file; external data is read relative to its folder.
    ///
    /// # Errors
    /// [`Error::Load`] naming the file and what is wrong with it.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Model, Error> {
        let path = path.as_ref();
        let with_file = |source| Error::Load { file: Some(Box::from(path)), source };
        let bytes = std::fs::read(path).map_err(|err| with_file(LoadError::Io { reason: err.to_string() }))?;
        self.from_file_bytes(&bytes, path)
    }

    /// Loads a model from the bytes of the file at `path`, already read by
    /// the caller; external data is read relative to that file's folder.
    ///
    /// # Errors
    /// [`Error::Load`] naming the file and what is wrong with it.
    pub fn from_file_bytes(&self, bytes: &[u8], path: &Path) -> Result<Model, Error> {
        let base_dir = path.parent().map(|dir| if dir.as_os_str().is_empty() { Path::new(".") } else { dir });
        self.build(bytes, base_dir).map_err(|source| Error::Load { file: Some(Box::from(path)), source })
    }

    /// Loads a model from bytes. External data is refused (there is no
    /// folder to read it from).
    ///
    /// # Errors
    /// [`Error::Load`] saying what is wrong with the model.
    pub fn from_bytes(&self, bytes: &[u8]) -> Result<Model, Error> {
        self.build(bytes, None).map_err(Error::from)
    }

    fn build(&self, bytes: &[u8], base_dir: Option<&Path>) -> Result<Model, LoadError> {
        let (proto, nodes) = decode_model_lazily(bytes)?;
        if proto.ir_version() > MAX_IR_VERSION {
            return Err(LoadError::IrVersionTooNew { ir_version: proto.ir_version(), max: MAX_IR_VERSION });
        }
        let par = match &self.threads {
            Threads::Count(n) => Parallel::with_threads(*n)
                .map_err(|reason| LoadError::Io { reason: format!("cannot start threads: {reason}") })?,
            Threads::Pool(pool) => Parallel::with_pool(pool.clone()),
            Threads::Current => Parallel::global(),
        };
        let graph = build_graph(&proto, nodes, base_dir, &self.limits, !self.no_folding)?;
        let (graph, optimized) = optimize(graph, self.passes)?;
        Ok(Model { info: ModelInfo::from_proto(&proto), plan: graph, par, limits: self.limits.clone(), optimized })
    }
}

/// Facts about a model file, for `inspect` and messages.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// ONNX IR version.
    pub ir_version: i64,
    /// Producer name and version.
    pub producer: String,
    /// `opset_import` entries as (domain, version).
    pub opsets: Vec<(String, i64)>,
}

impl ModelInfo {
    fn from_proto(proto: &ModelProto) -> Self {
        let producer = format!("{} {}", proto.producer_name(), proto.producer_version()).trim().to_string();
        ModelInfo {
            ir_version: proto.ir_version(),
            producer,
            opsets: proto.opset_import.iter().map(|opset| (opset.domain().to_string(), opset.version())).collect(),
        }
    }
}

/// A loaded, validated model, ready to run from many threads at once.
#[derive(Debug)]
pub struct Model {
    info: ModelInfo,
    pub(crate) plan: Plan,
    pub(crate) par: Parallel,
    pub(crate) limits: Limits,
    optimized: Optimized,
}

impl Model {
    /// Options for loading (limits, threads).
    pub fn builder() -> ModelBuilder {
        ModelBuilder::default()
    }

    /// Loads a model file with default options.
    ///
    /// # Errors
    /// [`Error::Load`] naming the file and the cause.
    pub fn load(path: impl AsRef<Path>) -> Result<Model, Error> {
        ModelBuilder::default().load(path)
    }

    /// Loads a model from bytes with default options.
    ///
    /// # Errors
    /// [`Error::Load`] naming the cause.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, Error> {
        ModelBuilder::default().from_bytes(bytes)
    }

    /// What the load-time optimisation did: the node count before and
    /// after, and one line per rewrite.
    pub fn optimized(&self) -> &Optimized {
        &self.optimized
    }

    /// IR version, producer and opsets.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The graph inputs the caller may feed (initializer-backed ones are
    /// optional).
    pub fn inputs(&self) -> &[InputSpec] {
        &self.plan.inputs
    }

    /// The graph output names, in order.
    pub fn output_names(&self) -> Vec<&str> {
        self.plan.outputs.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The nodes in execution order, as (name, op_type, opset version).
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &str, i64)> {
        self.plan.nodes.iter().map(|node| (node.name.as_str(), node.op_type.as_str(), node.version))
    }

    /// Every value the plan holds or computes, with its static type where
    /// loading could infer it: graph inputs, constants (initializers and
    /// folded values), then each node's outputs in execution order.
    pub fn value_types(&self) -> Vec<(&str, Option<&ValueType>)> {
        let plan = &self.plan;
        let entry = |slot: usize| {
            (plan.names.get(slot).map_or("", |name| &**name), plan.types.get(slot).and_then(Option::as_ref))
        };
        let mut out: Vec<(&str, Option<&ValueType>)> = plan.input_slots.iter().map(|&slot| entry(slot)).collect();
        out.extend(plan.constants.iter().map(|(slot, _)| entry(*slot)));
        out.extend(plan.nodes.iter().flat_map(|node| node.outputs.iter().flatten().map(|&slot| entry(slot))));
        out
    }
}

/// One dimension of a declared input shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named size (`dim_param`), bound consistently across inputs.
    Symbolic(String),
    /// Any size.
    Any,
}

/// A graph input as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The input's name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Declared dims, or `None` when the rank is unknown.
    pub dims: Option<Vec<Dim>>,
    /// True when an initializer gives a default value.
    pub has_default: bool,
}

impl InputSpec {
    /// The declared shape as text, e.g. `[batch, 5]`.
    pub fn shape_text(&self) -> String {
        match &self.dims {
            None => "any".to_string(),
            Some(dims) => {
                let dims: Vec<String> = dims
                    .iter()
                    .map(|dim| match dim {
                        Dim::Fixed(size) => size.to_string(),
                        Dim::Symbolic(name) => name.clone(),
                        Dim::Any => "?".to_string(),
                    })
                    .collect();
                format!("[{}]", dims.join(", "))
            }
        }
    }
}
