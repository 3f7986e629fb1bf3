//! Operators: ONNX semantics (versions, attributes, shapes, dtype dispatch)
//! over the kernels, and the registry table that maps `(domain, op_type,
//! opset)` to a constructor.

pub mod activation;
pub mod argminmax;
pub mod attention;
pub mod binary;
pub mod bitwise;
pub mod cast;
pub mod cast_like;
pub mod center_crop_pad;
pub mod col2im;
pub mod compare;
pub mod concat;
pub mod constant;
pub mod conv;
pub mod conv_transpose;
pub mod cumulative;
pub mod depth_space;
pub mod dft;
pub mod dropout;
pub mod einsum;
pub mod elementwise;
pub mod epilogue;
pub mod expand;
pub mod float_class;
pub mod gather;
pub mod gemm;
pub mod generate;
pub mod identity;
pub mod log_softmax;
pub mod logical;
pub mod loss;
pub mod lp;
pub mod lp_pool;
pub mod matmul;
pub mod ml;
pub mod normalization;
pub mod one_hot;
pub mod pad;
pub mod pool;
pub mod qlinear;
pub mod quantize;
pub mod reduce;
pub mod resize;
pub mod reverse_sequence;
pub mod rms_normalization;
pub mod rnn;
pub mod rotary_embedding;
pub mod scatter;
pub mod select;
pub mod shape;
pub mod slice;
pub mod softmax;
pub mod split;
pub mod strings;
pub mod transpose;
pub mod trig;
pub mod trilu;
pub mod unique;
pub mod values;
pub mod variadic;
pub mod windows;

use std::borrow::Cow;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use ndarray::{ArrayD, IxDyn};

use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::Parallel;
use crate::runtime::buffers::BufferPool;
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
    /// The largest tensor, in bytes, that an op may create from sizes it
    /// reads at run time (a shape input, repeats, pads, a range): the
    /// model's [`Limits::max_tensor_bytes`](crate::Limits). Ops check it
    /// with [`ExecCtx::checked_elems`] before they allocate.
    pub max_tensor_bytes: u64,
}

impl ExecCtx<'_> {
    /// The element count of an output of `shape` and `dtype` that `op` is
    /// about to allocate, refused when the count overflows or the bytes
    /// exceed [`ExecCtx::max_tensor_bytes`].
    ///
    /// # Errors
    /// [`OpError::Invalid`] naming the op, the shape and the limit.
    pub fn checked_elems(&self, op: &'static str, dtype: DType, shape: &[usize]) -> Result<usize, OpError> {
        let n_elems = crate::tensor::checked_elems(shape);
        let n_bytes = n_elems.and_then(|n| u64::try_from(n).ok()).and_then(|n| n.checked_mul(dtype.size() as u64));
        match (n_elems, n_bytes) {
            (Some(n_elems), Some(n_bytes)) if n_bytes <= self.max_tensor_bytes => Ok(n_elems),
            _ => Err(OpError::Invalid {
                op,
                reason: format!(
                    "output of shape {shape:?} ({dtype}) would exceed the tensor size limit of {} bytes",
                    self.max_tensor_bytes
                ),
            }),
        }
    }

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

    /// How many outputs a node of this op may declare. Trailing optional
    /// outputs may be left off; one in the middle is omitted by an empty
    /// name (the node's output slot is then `None`).
    fn n_outputs(&self) -> RangeInclusive<usize> {
        1..=1
    }

    /// Computes the op's first output. Returning it directly spares an
    /// allocation per node; this is all the interpreter calls when a node
    /// declares exactly one output. An op with several outputs computes
    /// the first one here too (usually by calling [`first_output`]), and
    /// all of them in [`Op::run_outputs`].
    ///
    /// # Errors
    /// An [`OpError`] when the inputs are unacceptable.
    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError>;

    /// Computes the outputs the node wants ([`OutputSet::wanted`]) and
    /// stores each with [`OutputSet::set`]. The default, for ops with one
    /// output, stores what [`Op::run`] returns.
    ///
    /// # Errors
    /// An [`OpError`] when the inputs are unacceptable.
    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let first = self.run(inputs, ctx)?;
        outputs.set(0, first);
        Ok(())
    }

    /// The types of the outputs, from what is known of the inputs (one
    /// entry per output; `None` or a short vector where unknown). The
    /// default knows nothing. Must agree with what [`Op::run`] produces
    /// whenever the inputs have the given types (debug builds check every
    /// output against it).
    fn infer(&self, _inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        Vec::new()
    }

    /// The load-time type check: refuses inputs whose declared or inferred
    /// types (`None` where unknown) the op's schema never accepts at this
    /// version, so an invalid model fails to load instead of on its first
    /// run. The default accepts everything (the op checks when it runs).
    ///
    /// # Errors
    /// An [`OpError`] naming the op and the refused type.
    fn check_types(&self, _inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        Ok(())
    }

    /// Whether a node of this op whose inputs are all constants may run
    /// once at load instead of on every run (see `crate::graph::fold`). False
    /// only for ops whose result is not a function of their inputs
    /// (random generators).
    fn foldable(&self) -> bool {
        true
    }

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

    /// For an op whose [`Op::chain_kernel`] is [`ChainKernel::Map`]: its
    /// float32 function on one group of rows, from `src` into `dst` (same
    /// length), or in place in `dst` when `src` is `None`, on the calling
    /// thread. Must compute exactly what [`Op::run`] computes on float32.
    /// The default leaves `dst` as it is; only ops offering `Map` are asked.
    fn chain_map(&self, _src: Option<&[f32]>, _dst: &mut [f32]) {}

    /// The op as [`std::any::Any`], for load-time rewrites that need its
    /// attributes (`graph::optimize`: a BatchNormalization's epsilon, a
    /// Conv's or Gemm's settings); `None` for ops no rewrite reads.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// Takes `epilogue` to run on this op's output, block by block as it
    /// is computed (see [`epilogue`]); gives it back when the op cannot
    /// (the default). An op that takes it must produce exactly what
    /// running the epilogue's op on its output would.
    ///
    /// # Errors
    /// The epilogue itself, when refused.
    fn fuse_epilogue(&mut self, epilogue: epilogue::Epilogue) -> Result<(), epilogue::Epilogue> {
        Err(epilogue)
    }
}

/// The outputs of one run of a node with several outputs: one entry per
/// output the node declares, and which of them something reads.
#[derive(Debug)]
pub struct OutputSet<'o> {
    values: &'o mut [Option<Tensor>],
    wanted: &'o [bool],
}

impl<'o> OutputSet<'o> {
    /// Output entries to fill (all `None`) and, per entry, whether the
    /// node names that output (an op may skip work for the others).
    ///
    /// # Panics
    /// Never on model input; `values` and `wanted` have the node's output
    /// count, so mismatched lengths are an interpreter bug (debug assert).
    pub fn new(values: &'o mut [Option<Tensor>], wanted: &'o [bool]) -> Self {
        debug_assert_eq!(values.len(), wanted.len());
        OutputSet { values, wanted }
    }

    /// How many outputs the node declares (named or omitted).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the node declares no output.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether output `index` is declared with a name (so someone reads it).
    pub fn wanted(&self, index: usize) -> bool {
        self.wanted.get(index).copied().unwrap_or(false)
    }

    /// Stores output `index`; an output past the node's declared count is
    /// dropped (the node left it off).
    pub fn set(&mut self, index: usize, tensor: Tensor) {
        if let Some(entry) = self.values.get_mut(index) {
            *entry = Some(tensor);
        }
    }

    /// Takes output `index` back (for [`first_output`]).
    pub fn take(&mut self, index: usize) -> Option<Tensor> {
        self.values.get_mut(index).and_then(Option::take)
    }
}

/// [`Op::run`] for an op with several outputs: runs [`Op::run_outputs`]
/// wanting only the first output, and returns it.
///
/// # Errors
/// Whatever `run_outputs` returns, or [`OpError::Invalid`] if it did not
/// produce the first output.
pub fn first_output(
    op: &(impl Op + ?Sized),
    inputs: &mut Inputs<'_>,
    ctx: &ExecCtx<'_>,
    name: &'static str,
) -> Result<Tensor, OpError> {
    let n_outputs = *op.n_outputs().start().max(&1);
    let mut values: Vec<Option<Tensor>> = vec![None; n_outputs];
    let mut wanted = vec![false; n_outputs];
    wanted[0] = true;
    let mut outputs = OutputSet::new(&mut values, &wanted);
    op.run_outputs(inputs, ctx, &mut outputs)?;
    outputs.take(0).ok_or(OpError::Invalid { op: name, reason: "produced no first output".into() })
}

/// A float32 kernel that works on whole rows of the data, so that a chain
/// of them can run group of rows by group of rows while each group is in
/// cache (see `crate::runtime::fuse`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChainKernel {
    /// Each element on its own, by the op's [`Op::chain_map`].
    Map,
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
            compare::register(&mut reg);
            logical::register(&mut reg);
            softmax::register(&mut reg);
            identity::register(&mut reg);
            cast::register(&mut reg);
            cast_like::register(&mut reg);
            constant::register(&mut reg);
            transpose::register(&mut reg);
            shape::register(&mut reg);
            split::register(&mut reg);
            strings::register(&mut reg);
            ml::register(&mut reg);
            reduce::register(&mut reg);
            log_softmax::register(&mut reg);
            variadic::register(&mut reg);
            concat::register(&mut reg);
            slice::register(&mut reg);
            gather::register(&mut reg);
            expand::register(&mut reg);
            generate::register(&mut reg);
            pad::register(&mut reg);
            dropout::register(&mut reg);
            normalization::register(&mut reg);
            argminmax::register(&mut reg);
            resize::register(&mut reg);
            gemm::register(&mut reg);
            matmul::register(&mut reg);
            conv::register(&mut reg);
            conv_transpose::register(&mut reg);
            pool::register(&mut reg);
            einsum::register(&mut reg);
            rnn::register(&mut reg);
            attention::register(&mut reg);
            rms_normalization::register(&mut reg);
            rotary_embedding::register(&mut reg);
            scatter::register(&mut reg);
            depth_space::register(&mut reg);
            select::register(&mut reg);
            one_hot::register(&mut reg);
            reverse_sequence::register(&mut reg);
            unique::register(&mut reg);
            loss::register(&mut reg);
            trilu::register(&mut reg);
            lp::register(&mut reg);
            trig::register(&mut reg);
            float_class::register(&mut reg);
            bitwise::register(&mut reg);
            cumulative::register(&mut reg);
            windows::register(&mut reg);
            dft::register(&mut reg);
            lp_pool::register(&mut reg);
            center_crop_pad::register(&mut reg);
            col2im::register(&mut reg);
            quantize::register(&mut reg);
            qlinear::register(&mut reg);
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

/// The load-time form of [`check_dtype`] for input `index`: refuses its
/// inferred or declared type when known and outside `allowed`.
pub(crate) fn check_input_type(
    op: &'static str,
    inputs: &[InferInput<'_>],
    index: usize,
    allowed: &[DType],
) -> Result<(), OpError> {
    match inputs.get(index).and_then(|input| input.ty) {
        Some(ty) => check_dtype(op, ty.dtype, allowed),
        None => Ok(()),
    }
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
/// Floats and the 32- and 64-bit integers, signed and unsigned (the
/// arithmetic and reduction schemas of opsets 6 to 12).
pub(crate) const FLOATS_INTS_32_64: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::I32, DType::I64, DType::U32, DType::U64];
/// [`FLOATS_INTS_32_64`] with bfloat16.
pub(crate) const FLOATS_BF16_INTS_32_64: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U32, DType::U64];
/// Floats and the signed integers.
pub(crate) const FLOATS_SIGNED: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::I8, DType::I16, DType::I32, DType::I64];
/// [`FLOATS_SIGNED`] with bfloat16.
pub(crate) const FLOATS_BF16_SIGNED: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I8, DType::I16, DType::I32, DType::I64];
/// Every number type but bfloat16: floats and all integers.
pub(crate) const NUMBERS: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];
/// Every number type.
pub(crate) const NUMBERS_BF16: &[DType] = &[
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
];
/// Every type but bfloat16 (numbers and bool; schemas before opset 13).
pub(crate) const ALL_BUT_BF16: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
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

/// [`ALL_BUT_BF16`] and string: what the schemas of the ops that only
/// move elements list before opset 13.
pub(crate) const ALL_BUT_BF16_AND_STRING: &[DType] = &{
    let mut out = [DType::String; 13];
    let mut index = 0;
    while index < ALL_BUT_BF16.len() {
        out[index + 1] = ALL_BUT_BF16[index];
        index += 1;
    }
    out
};

/// String, then [`DType::EVERY`] in the order ONNX added them.
static STRING_THEN_EVERY: [DType; 24] = {
    let mut every = [DType::String; 24];
    let mut index = 1;
    while index < 24 {
        every[index] = DType::EVERY[index - 1];
        index += 1;
    }
    every
};

/// The element types of the ops that only move or convert elements
/// (Identity, Reshape, Transpose, Gather, Concat, Where, Cast, …) at a
/// schema version: string and every number and bool, bfloat16 from 13,
/// float8 from 19, int4 and uint4 from 21, float4e2m1 from 23, float8e8m0
/// from 24, int2 and uint2 from 25. An op whose schema stopped before one of those versions
/// never reaches its types.
pub(crate) fn moved_types(version: i64) -> &'static [DType] {
    match version {
        25.. => &STRING_THEN_EVERY,
        24 => &STRING_THEN_EVERY[..22],
        23 => &STRING_THEN_EVERY[..21],
        21..=22 => &STRING_THEN_EVERY[..20],
        19..=20 => &STRING_THEN_EVERY[..18],
        13..=18 => &STRING_THEN_EVERY[..14],
        _ => ALL_BUT_BF16_AND_STRING,
    }
}

/// The element types of the ops that move elements but whose schemas keep
/// the list of opset 9 (every number, bool and string; never the float8,
/// 4-bit or 2-bit storage types): [`moved_types`] of opset 11, with
/// bfloat16 from the version `bf16_since` on (ScatterND, OneHot, Compress,
/// DepthToSpace, …).
pub(crate) fn classic_moved_types(version: i64, bf16_since: i64) -> &'static [DType] {
    if version >= bf16_since { moved_types(13) } else { moved_types(11) }
}

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
    out
}
