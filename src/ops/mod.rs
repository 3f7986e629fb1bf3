//! Operators: ONNX semantics (versions, attributes, shapes, dtype dispatch)
//! over the kernels, and the registry table that maps `(domain, op_type,
//! opset)` to a constructor.

pub mod activation;
pub mod binary;
pub mod cast;
pub mod identity;
pub mod shape;
pub mod softmax;
pub mod transpose;

use std::borrow::Cow;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use ndarray::{ArrayD, IxDyn};

use crate::attrs::Attrs;
use crate::buffers::BufferPool;
use crate::error::{LoadError, OpError};
use crate::kernels::Parallel;
use crate::tensor::{DType, Element, Tensor};

/// A node's inputs as the interpreter hands them over: borrowed when the
/// value lives on, owned when this node is its last reader (so the op may
/// reuse its buffer). `None` is an omitted optional input. Ops take what
/// they need out of the slice.
pub type Inputs<'a> = [Option<Cow<'a, Tensor>>];

/// What an op sees of the run besides its inputs.
#[derive(Debug)]
pub struct ExecCtx<'a> {
    /// The parallelism policy for kernels.
    pub par: &'a Parallel,
    /// Buffers to reuse for outputs (a [`Session`](crate::Session) keeps one).
    pub pool: Option<&'a BufferPool>,
}

impl ExecCtx<'_> {
    /// An output buffer of `shape`: reused from the pool when one fits,
    /// else freshly allocated (zeroed). Callers overwrite every element.
    pub fn output<T: Element + Default>(&self, shape: &[usize]) -> ArrayD<T> {
        self.pool.and_then(|pool| pool.take(shape)).unwrap_or_else(|| ArrayD::from_elem(IxDyn(shape), T::default()))
    }
}

/// A configured operator, built once at load time.
pub trait Op: Send + Sync + fmt::Debug {
    /// How many inputs the op accepts.
    fn n_inputs(&self) -> RangeInclusive<usize> {
        1..=1
    }

    /// Computes the op's one output. (Every op onnxi implements has a single
    /// output; returning it directly spares an allocation per node.)
    ///
    /// # Errors
    /// An [`OpError`] when the inputs are unacceptable.
    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError>;

    /// Whether the op may join a fused chain (see [`ChainKernel`]): one
    /// input, one output of the same shape, and a float32 kernel that works
    /// on whole rows.
    fn chains(&self) -> bool {
        false
    }

    /// The float32 kernel this op runs on an input of `shape`, for a fused
    /// chain; `None` when it has none for that shape (its own [`Op::run`]
    /// then runs, with its own checks and errors). Must compute exactly
    /// what [`Op::run`] computes on float32.
    fn chain_kernel(&self, _shape: &[usize]) -> Option<ChainKernel> {
        None
    }
}

/// A float32 kernel that works on whole rows of the data, so that a chain
/// of them can run group of rows by group of rows while each group is in
/// cache (see `crate::fuse`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChainKernel {
    /// Each element on its own.
    Map(crate::kernels::unary::Unary),
    /// Softmax over contiguous lanes of this many elements.
    SoftmaxLanes(usize),
}

/// Builds an op from a node's attributes at a resolved opset version.
pub type Constructor = Box<dyn Fn(&mut Attrs<'_>, i64) -> Result<Box<dyn Op>, LoadError> + Send + Sync>;

/// One registered op: the versions at which its semantics or types changed.
pub struct Entry {
    /// ONNX domain (`""` is the default domain).
    pub domain: &'static str,
    /// ONNX op_type.
    pub op_type: &'static str,
    /// Every `since_version` of the op's schema that onnxi implements,
    /// ascending; each is a distinct code path or dtype set.
    pub versions: &'static [i64],
    /// Element types accepted, per version (same order as `versions`).
    pub dtypes: fn(i64) -> &'static [DType],
    constructor: Constructor,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("op_type", &self.op_type).field("versions", &self.versions).finish()
    }
}

/// The table of every op onnxi can run.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

/// The newest default-domain opset version onnxi knows (ONNX 1.23.2). Models
/// importing a newer one are refused: an op may have changed meaning.
pub const MAX_OPSET: i64 = 28;

impl Registry {
    /// Registers an op at the given schema versions.
    pub fn add<T: Op + 'static>(
        &mut self,
        domain: &'static str,
        op_type: &'static str,
        versions: &'static [i64],
        dtypes: fn(i64) -> &'static [DType],
        from_node: fn(&mut Attrs<'_>, i64) -> Result<T, LoadError>,
    ) {
        let constructor: Constructor =
            Box::new(move |attrs, version| Ok(Box::new(from_node(attrs, version)?) as Box<dyn Op>));
        self.entries.push(Entry { domain, op_type, versions, dtypes, constructor });
    }

    /// The built-in table.
    pub fn builtin() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            let mut reg = Registry::default();
            activation::register(&mut reg);
            binary::register(&mut reg);
            softmax::register(&mut reg);
            identity::register(&mut reg);
            cast::register(&mut reg);
            transpose::register(&mut reg);
            shape::register(&mut reg);
            reg
        })
    }

    /// Every registered op.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry for `(domain, op_type)`, if any.
    pub fn find(&self, domain: &str, op_type: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.domain == domain && entry.op_type == op_type)
    }

    /// Comma-separated op types, for error messages.
    pub fn op_names(&self) -> String {
        let mut names: Vec<&str> = self.entries.iter().map(|entry| entry.op_type).collect();
        names.push("Constant");
        names.sort_unstable();
        names.join(", ")
    }
}

impl Entry {
    /// The schema version that applies at `opset`: the newest registered
    /// version not newer than it.
    pub fn resolve(&self, opset: i64) -> Option<i64> {
        self.versions.iter().rev().copied().find(|&version| version <= opset)
    }

    /// Builds the op at a resolved version.
    ///
    /// # Errors
    /// Whatever the op's `from_node` refuses.
    pub fn build(&self, attrs: &mut Attrs<'_>, version: i64) -> Result<Box<dyn Op>, LoadError> {
        (self.constructor)(attrs, version)
    }

    /// Versions as text (`1, 6, 13, 14`).
    pub fn versions_text(&self) -> String {
        self.versions.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Takes input `index`, refusing an omitted one.
pub(crate) fn required<'a>(
    inputs: &mut Inputs<'a>,
    index: usize,
    op: &'static str,
) -> Result<Cow<'a, Tensor>, OpError> {
    inputs.get_mut(index).and_then(Option::take).ok_or(OpError::MissingInput { op, index })
}

/// Refuses a dtype outside `allowed`.
pub(crate) fn check_dtype(op: &'static str, dtype: DType, allowed: &[DType]) -> Result<(), OpError> {
    if allowed.contains(&dtype) { Ok(()) } else { Err(OpError::UnsupportedDtype { op, dtype }) }
}

/// Turns a possibly negative axis into an index in `0..rank`.
pub(crate) fn normalize_axis(op: &'static str, axis: i64, rank: usize) -> Result<usize, OpError> {
    let rank_i = i64::try_from(rank).unwrap_or(i64::MAX);
    let resolved = if axis < 0 { axis.checked_add(rank_i) } else { Some(axis) };
    match resolved {
        Some(index) if (0..rank_i).contains(&index) => Ok(index as usize),
        _ => Err(OpError::AxisOutOfRange { op, axis, rank }),
    }
}

/// Float types, without bfloat16 (schemas before bfloat16 was added).
pub(crate) const FLOATS: &[DType] = &[DType::F32, DType::F64, DType::F16];
/// Float types with bfloat16.
pub(crate) const FLOATS_BF16: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16];

/// The support table printed by `onnxi ops` and kept in the README:
/// op, versions, dtypes per version. Generated from the registry.
pub fn support_table() -> String {
    let mut out = String::from("| op | domain | opset versions | dtypes |\n|---|---|---|---|\n");
    let registry = Registry::builtin();
    let mut entries: Vec<&Entry> = registry.entries().iter().collect();
    entries.sort_by_key(|entry| entry.op_type);
    for entry in entries {
        // Versions with the same dtypes share one line: `1, 6: float32, …`.
        let mut groups: Vec<(Vec<i64>, &[DType])> = Vec::new();
        for &version in entry.versions {
            let dtypes = (entry.dtypes)(version);
            match groups.last_mut() {
                Some((versions, last)) if *last == dtypes => versions.push(version),
                _ => groups.push((vec![version], dtypes)),
            }
        }
        let groups: Vec<String> = groups
            .iter()
            .map(|(versions, dtypes)| {
                let versions: Vec<String> = versions.iter().map(i64::to_string).collect();
                let dtypes: Vec<&str> = dtypes.iter().map(|dtype| dtype.name()).collect();
                format!("{}: {}", versions.join(", "), dtypes.join(", "))
            })
            .collect();
        let domain = if entry.domain.is_empty() { "ai.onnx" } else { entry.domain };
        out.push_str(&format!(
            "| {} | {domain} | {} | {} |\n",
            entry.op_type,
            entry.versions_text(),
            groups.join("; ")
        ));
    }
    out.push_str("| Constant | ai.onnx | 1, 9, 11, 12, 13, 19, 21, 23, 24, 25 | evaluated at load: `value`, `value_float(s)`, `value_int(s)` |\n");
    out
}
