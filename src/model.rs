//! Loading: ModelProto → validated execution plan. The only module that
//! walks protobuf graphs.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;

use crate::attrs::Attrs;
use crate::error::{Error, LoadError};
use crate::kernels::Parallel;
use crate::onnx::{AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, ValueInfoProto, type_proto};
use crate::ops::{MAX_OPSET, Op, Registry};
use crate::plan::{Plan, PlanNode};
use crate::tensor::{DType, Tensor, onnx_type_name};
use crate::tensor_proto::{DecodeCtx, MAX_RANK, declared_bytes, tensor_from_proto};

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
    threads: Option<usize>,
}

impl ModelBuilder {
    /// Runs kernels on a dedicated pool of `n` threads (1: the caller's
    /// thread only). Without this, the shared pool (one thread per core) is used.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
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
        let par = match self.threads {
            Some(n) => Parallel::with_threads(n)
                .map_err(|reason| LoadError::Io { reason: format!("cannot start threads: {reason}") })?,
            None => Parallel::global(),
        };
        let graph = build_graph(&proto, nodes, base_dir, &self.limits)?;
        Ok(Model { info: ModelInfo::from_proto(&proto), plan: graph, par, limits: self.limits.clone() })
    }
}

fn decode_error(err: prost::DecodeError) -> LoadError {
    LoadError::Decode { reason: err.to_string() }
}

/// Decodes ModelProto bytes.
pub(crate) fn decode_model(bytes: &[u8]) -> Result<ModelProto, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Decode { reason: "the file is empty".into() });
    }
    ModelProto::decode(bytes).map_err(decode_error)
}

/// The main graph's nodes: still encoded, to be decoded one at a time while
/// the plan is built (so a graph of a million nodes never exists as
/// `NodeProto`s all at once), or already decoded.
enum GraphNodes<'a> {
    Encoded(Vec<&'a [u8]>),
    Decoded(Vec<NodeProto>),
}

impl<'a> GraphNodes<'a> {
    fn len(&self) -> usize {
        match self {
            GraphNodes::Encoded(slices) => slices.len(),
            GraphNodes::Decoded(nodes) => nodes.len(),
        }
    }

    fn into_decoded(self) -> Box<dyn Iterator<Item = Result<NodeProto, LoadError>> + 'a> {
        match self {
            GraphNodes::Encoded(slices) => Box::new(slices.into_iter().enumerate().map(|(idx, slice)| {
                NodeProto::decode(slice)
                    .map_err(|err| LoadError::Decode { reason: format!("graph node #{idx}: {err}") })
            })),
            GraphNodes::Decoded(nodes) => Box::new(nodes.into_iter().map(Ok)),
        }
    }
}

/// A run of a message's encoded fields: the payload of the field asked
/// for, or other fields (kept together) to merge as they are.
enum Segment<'a> {
    Field(&'a [u8]),
    Others(&'a [u8]),
}

/// Splits a message's encoding into the length-delimited occurrences of
/// `field` and the runs of other fields between them; `None` when the
/// bytes are malformed or use wire forms this walker leaves to prost.
fn split_field(bytes: &[u8], field: u64) -> Option<Vec<Segment<'_>>> {
    fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *bytes.get(*pos)?;
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    let mut segments = Vec::new();
    let mut others_start = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let key = varint(bytes, &mut pos)?;
        let payload_start;
        let end = match key & 7 {
            0 => {
                varint(bytes, &mut pos)?;
                payload_start = pos;
                pos
            }
            1 => {
                payload_start = pos;
                pos.checked_add(8)?
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut pos)?).ok()?;
                payload_start = pos;
                pos.checked_add(len)?
            }
            5 => {
                payload_start = pos;
                pos.checked_add(4)?
            }
            _ => return None,
        };
        if end > bytes.len() {
            return None;
        }
        if key >> 3 == field && key & 7 == 2 {
            if let Some(others) = others_start.take() {
                segments.push(Segment::Others(&bytes[others..start]));
            }
            segments.push(Segment::Field(&bytes[payload_start..end]));
        } else if others_start.is_none() {
            others_start = Some(start);
        }
        pos = end;
    }
    if let Some(others) = others_start {
        segments.push(Segment::Others(&bytes[others..]));
    }
    Some(segments)
}

/// Decodes ModelProto bytes but leaves the main graph's nodes encoded.
/// Occurrences of a message field merge as if concatenated, so the graph's
/// other fields are merged occurrence by occurrence and its nodes kept in
/// order: the result is what `ModelProto::decode` gives.
fn decode_model_lazily(bytes: &[u8]) -> Result<(ModelProto, GraphNodes<'_>), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Decode { reason: "the file is empty".into() });
    }
    let eager = || -> Result<(ModelProto, GraphNodes<'_>), LoadError> {
        let mut proto = decode_model(bytes)?;
        let nodes = proto.graph.as_mut().map(|graph| std::mem::take(&mut graph.node)).unwrap_or_default();
        Ok((proto, GraphNodes::Decoded(nodes)))
    };
    let Some(model_segments) = split_field(bytes, 7) else {
        // Malformed (prost says how) or unusual wire forms (prost copes).
        return eager();
    };
    let mut proto = ModelProto::default();
    let mut graph: Option<GraphProto> = None;
    let mut node_slices = Vec::new();
    for segment in model_segments {
        match segment {
            Segment::Others(others) => proto.merge(others).map_err(decode_error)?,
            Segment::Field(graph_bytes) => {
                let Some(graph_segments) = split_field(graph_bytes, 1) else {
                    return eager();
                };
                let graph = graph.get_or_insert_with(GraphProto::default);
                for graph_segment in graph_segments {
                    match graph_segment {
                        Segment::Others(others) => graph.merge(others).map_err(decode_error)?,
                        Segment::Field(node) => node_slices.push(node),
                    }
                }
            }
        }
    }
    proto.graph = graph;
    Ok((proto, GraphNodes::Encoded(node_slices)))
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

/// Opset versions by domain, with `"ai.onnx"` folded into `""`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Opsets(HashMap<String, i64>);

impl Opsets {
    fn from_imports<'a>(imports: impl Iterator<Item = (&'a str, i64)>) -> Result<Self, LoadError> {
        let mut map = HashMap::new();
        for (domain, version) in imports {
            let domain = canonical_domain(domain);
            if !(1..=i64::from(u16::MAX)).contains(&version) {
                return Err(LoadError::InvalidOpsetVersion { domain: domain.to_string(), version });
            }
            // `""` and `"ai.onnx"` at different versions (or one domain
            // listed twice) leave the op semantics ambiguous.
            if let Some(first) = map.insert(domain.to_string(), version)
                && first != version
            {
                return Err(LoadError::DuplicateOpset { domain: domain.to_string(), first, second: version });
            }
        }
        Ok(Opsets(map))
    }

    pub(crate) fn get(&self, domain: &str) -> Option<i64> {
        self.0.get(canonical_domain(domain)).copied()
    }
}

fn canonical_domain(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

/// Reads the model's default-domain opsets.
pub(crate) fn model_opsets(proto: &ModelProto) -> Result<Opsets, LoadError> {
    let opsets = Opsets::from_imports(proto.opset_import.iter().map(|opset| (opset.domain(), opset.version())))?;
    if opsets.get("").is_none() {
        return Err(LoadError::NoDefaultOpset);
    }
    Ok(opsets)
}

/// Display name of a node: its name, or its position when unnamed.
fn node_label(proto: &NodeProto, idx: usize) -> String {
    match proto.name() {
        "" => format!("#{idx} {}", proto.op_type()),
        name => name.to_string(),
    }
}

/// Resolves a node to a built op: registry lookup, opset check, attributes.
pub(crate) fn resolve_op(
    proto: &NodeProto,
    label: &str,
    opsets: &Opsets,
    limits: &Limits,
) -> Result<(Box<dyn Op>, i64), LoadError> {
    let domain = canonical_domain(proto.domain());
    let op_type = proto.op_type();
    let opset = opsets.get(domain).ok_or_else(|| LoadError::UnknownDomain {
        node: label.to_string(),
        op_type: op_type.to_string(),
        domain: domain.to_string(),
    })?;
    let registry = Registry::builtin();
    let entry = registry.find(domain, op_type).ok_or_else(|| LoadError::UnsupportedOp {
        node: label.to_string(),
        op_type: op_type.to_string(),
        domain: domain.to_string(),
        opset,
        supported: registry.op_names().into(),
    })?;
    let unsupported = || LoadError::UnsupportedOpset {
        node: label.to_string(),
        op_type: op_type.to_string(),
        domain: domain.to_string(),
        opset,
        versions: entry.versions_text().into(),
    };
    if domain.is_empty() && opset > MAX_OPSET {
        return Err(unsupported());
    }
    let version = entry.resolve(opset).ok_or_else(unsupported)?;
    let mut attrs = Attrs::new(label, op_type, &proto.attribute, limits.max_tensor_bytes);
    let op = entry.build(&mut attrs, version)?;
    attrs.finish()?;
    let arity = |what: &str, range: std::ops::RangeInclusive<usize>, actual: usize| -> Result<(), LoadError> {
        if range.contains(&actual) {
            return Ok(());
        }
        let expected = if range.start() == range.end() {
            range.start().to_string()
        } else {
            format!("{} to {}", range.start(), range.end())
        };
        Err(LoadError::Arity {
            node: label.to_string(),
            op_type: op_type.to_string(),
            reason: format!("expects {expected} {what}, got {actual}"),
        })
    };
    arity("inputs", op.n_inputs(), proto.input.len())?;
    arity("outputs", 1..=1, proto.output.len())?;
    Ok((op, version))
}

/// A model-local function's identity: (domain, name, overload).
type FunctionKey<'a> = (&'a str, &'a str, &'a str);

/// What function expansion has spent of [`Limits::max_expanded_bytes`].
struct ExpansionBudget {
    used: u64,
    limit: u64,
}

/// The model-local functions by (domain, name, overload), refusing a
/// duplicate definition.
fn function_table(proto: &ModelProto) -> Result<HashMap<FunctionKey<'_>, &FunctionProto>, LoadError> {
    let mut functions = HashMap::with_capacity(proto.functions.len());
    for function in &proto.functions {
        let key = (function.domain(), function.name(), function.overload());
        if functions.insert(key, function).is_some() {
            return Err(LoadError::Function {
                function: function.name().to_string(),
                reason: format!(
                    "is defined twice (domain {:?}, overload {:?}); the pair must be unique",
                    function.domain(),
                    function.overload()
                ),
            });
        }
    }
    Ok(functions)
}

/// Checks the nesting depth of a call to `function` and returns the index
/// of the opset table its body uses (built on first use).
fn function_opsets_idx<'a>(
    function: &'a FunctionProto,
    depth: usize,
    limits: &Limits,
    opset_tables: &mut Vec<Opsets>,
    function_opsets: &mut HashMap<FunctionKey<'a>, usize>,
) -> Result<usize, LoadError> {
    if depth >= limits.max_function_depth {
        return Err(LoadError::Function {
            function: function.name().to_string(),
            reason: format!("calls nest deeper than {} (recursive function?)", limits.max_function_depth),
        });
    }
    let key = (function.domain(), function.name(), function.overload());
    if let Some(&idx) = function_opsets.get(&key) {
        return Ok(idx);
    }
    let table = Opsets::from_imports(function.opset_import.iter().map(|opset| (opset.domain(), opset.version())))?;
    // A function without its own imports uses the model's.
    let table = if table.0.is_empty() { opset_tables[0].clone() } else { table };
    opset_tables.push(table);
    function_opsets.insert(key, opset_tables.len() - 1);
    Ok(opset_tables.len() - 1)
}

/// The body of `function` as called by `call`: formal names bound to actual
/// ones, internal names made unique, attribute references resolved. The
/// size of each copied node is charged to `budget` before it is built.
fn expand_call(
    function: &FunctionProto,
    call: &NodeProto,
    call_idx: usize,
    budget: &mut ExpansionBudget,
) -> Result<Vec<NodeProto>, LoadError> {
    let error = |reason: String| LoadError::Function { function: function.name().to_string(), reason };
    if call.input.len() > function.input.len() || call.output.len() > function.output.len() {
        return Err(error(format!(
            "called by node {:?} with {} inputs and {} outputs, but declares {} and {}",
            call.name(),
            call.input.len(),
            call.output.len(),
            function.input.len(),
            function.output.len()
        )));
    }
    let mut rename: HashMap<&str, &str> = HashMap::new();
    for (idx, formal) in function.input.iter().enumerate() {
        rename.insert(formal, call.input.get(idx).map_or("", String::as_str));
    }
    for (idx, formal) in function.output.iter().enumerate() {
        rename.insert(formal, call.output.get(idx).map_or("", String::as_str));
    }
    let prefix = format!(
        "{}::{}#{call_idx}",
        if call.name().is_empty() { function.name() } else { call.name() },
        function.name()
    );
    let bound_len = |name: &str| -> u64 {
        match rename.get(name) {
            _ if name.is_empty() => 0,
            Some(actual) => actual.len() as u64,
            None => (prefix.len() + 1 + name.len()) as u64,
        }
    };
    let bind = |name: &str| -> String {
        if name.is_empty() {
            return String::new();
        }
        match rename.get(name) {
            Some(actual) => actual.to_string(),
            None => format!("{prefix}/{name}"),
        }
    };
    let mut body = Vec::with_capacity(function.node.len());
    for inner in &function.node {
        // What the copy will hold, counted before anything is allocated:
        // the struct, its strings (with their headers) and its attributes.
        const STRING_HEADER: u64 = std::mem::size_of::<String>() as u64;
        let n_strings = (inner.input.len() + inner.output.len() + 3) as u64;
        let attr_bytes: u64 = inner
            .attribute
            .iter()
            .map(|attr| match attr.ref_attr_name.as_deref() {
                None => attr.encoded_len() as u64,
                Some(reference) => {
                    ref_source(reference, call, function).map_or(0, |source| source.encoded_len() as u64)
                }
            })
            .sum();
        let cost = std::mem::size_of::<NodeProto>() as u64
            + n_strings * STRING_HEADER
            + (prefix.len() + 1 + inner.name().len() + inner.op_type().len() + inner.domain().len()) as u64
            + inner.input.iter().chain(&inner.output).map(|name| bound_len(name)).sum::<u64>()
            + attr_bytes;
        budget.used = budget.used.saturating_add(cost);
        if budget.used > budget.limit {
            return Err(LoadError::LimitExceeded {
                what: format!(
                    "bytes of nodes copied by expanding local functions (at the call of {:?} by node {:?})",
                    function.name(),
                    call.name()
                ),
                limit: budget.limit,
                actual: budget.used,
            });
        }
        body.push(NodeProto {
            input: inner.input.iter().map(|name| bind(name)).collect(),
            output: inner.output.iter().map(|name| bind(name)).collect(),
            name: Some(format!("{prefix}/{}", inner.name())),
            op_type: inner.op_type.clone(),
            domain: inner.domain.clone(),
            overload: inner.overload.clone(),
            attribute: resolve_attribute_refs(&inner.attribute, call, function),
            ..Default::default()
        });
    }
    Ok(body)
}

/// The attribute a `ref_attr_name` refers to: the caller's, or the
/// function's default.
fn ref_source<'a>(reference: &str, call: &'a NodeProto, function: &'a FunctionProto) -> Option<&'a AttributeProto> {
    call.attribute
        .iter()
        .find(|given| given.name() == reference)
        .or_else(|| function.attribute_proto.iter().find(|default| default.name() == reference))
}

/// Substitutes `ref_attr_name` attributes with the caller's values, or the
/// function's defaults; drops them when neither exists.
fn resolve_attribute_refs(
    attributes: &[AttributeProto],
    call: &NodeProto,
    function: &FunctionProto,
) -> Vec<AttributeProto> {
    attributes
        .iter()
        .filter_map(|attr| {
            let Some(reference) = attr.ref_attr_name.as_deref() else {
                return Some(attr.clone());
            };
            let mut resolved = ref_source(reference, call, function)?.clone();
            resolved.name = attr.name.clone();
            Some(resolved)
        })
        .collect()
}

/// Evaluates a Constant node's value.
fn constant_value(proto: &NodeProto, label: &str, limits: &Limits) -> Result<Tensor, LoadError> {
    let mut attrs = Attrs::new(label, "Constant", &proto.attribute, limits.max_tensor_bytes);
    let mut values = Vec::new();
    if let Some(tensor) = attrs.tensor("value")? {
        values.push(tensor);
    }
    if let Some(value) = attrs.f32("value_float")? {
        values.push(Tensor::from(ndarray::arr0(value).into_dyn()));
    }
    if let Some(list) = attrs.floats("value_floats")? {
        values.push(Tensor::from(ndarray::Array1::from(list).into_dyn()));
    }
    if let Some(value) = attrs.i64("value_int")? {
        values.push(Tensor::from(ndarray::arr0(value).into_dyn()));
    }
    if let Some(list) = attrs.ints("value_ints")? {
        values.push(Tensor::from(ndarray::Array1::from(list).into_dyn()));
    }
    attrs.finish()?;
    // value_floats / value_ints are not decoded by the tensor reader, so
    // the single-tensor limit is applied here.
    if let Some(value) = values.iter().find(|value| value.n_bytes() as u64 > limits.max_tensor_bytes) {
        return Err(LoadError::LimitExceeded {
            what: format!(
                "value of Constant node {label:?} ({}, shape {:?}) size in bytes",
                value.dtype(),
                value.shape()
            ),
            limit: limits.max_tensor_bytes,
            actual: value.n_bytes() as u64,
        });
    }
    if values.len() != 1 {
        return Err(LoadError::Attribute {
            node: label.to_string(),
            op_type: "Constant".into(),
            attr: "value".into(),
            reason: format!("exactly one value attribute must be set, found {}", values.len()),
        });
    }
    Ok(values.remove(0))
}

/// Reads a graph input's declared type.
fn input_spec(info: &ValueInfoProto, has_default: bool) -> Result<InputSpec, LoadError> {
    let name = info.name().to_string();
    let bad = |reason: String| LoadError::BadInput { input: name.clone(), reason };
    let tensor_type = match info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(tensor)) => tensor,
        Some(_) => return Err(bad("only tensor inputs are supported".into())),
        None => return Err(bad("has no type".into())),
    };
    let code = tensor_type.elem_type();
    let dtype = DType::from_onnx_code(code)
        .ok_or_else(|| bad(format!("element type {} is not supported by onnxi", onnx_type_name(code))))?;
    let dims = match &tensor_type.shape {
        None => None,
        Some(shape) if shape.dim.len() > MAX_RANK => {
            return Err(bad(format!("rank {} is more than the {MAX_RANK} dimensions onnxi allows", shape.dim.len())));
        }
        Some(shape) => Some(
            shape
                .dim
                .iter()
                .map(|dim| match &dim.value {
                    Some(crate::onnx::tensor_shape_proto::dimension::Value::DimValue(size)) => {
                        usize::try_from(*size).map(Dim::Fixed).map_err(|_| bad(format!("negative dimension {size}")))
                    }
                    Some(crate::onnx::tensor_shape_proto::dimension::Value::DimParam(param)) if !param.is_empty() => {
                        Ok(Dim::Symbolic(param.clone()))
                    }
                    _ => Ok(Dim::Any),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(InputSpec { name, dtype, dims, has_default })
}

/// Builds the execution plan of the model's main graph, decoding and
/// converting one node at a time. Calls to local functions are expanded
/// depth first, iteratively (a deep or recursive call chain cannot overflow
/// the stack), each copy of a body paid for from
/// [`Limits::max_expanded_bytes`] before it is made.
fn build_graph(
    proto: &ModelProto,
    nodes: GraphNodes<'_>,
    base_dir: Option<&Path>,
    limits: &Limits,
) -> Result<Plan, LoadError> {
    let opsets = model_opsets(proto)?;
    let graph = proto.graph.as_ref().ok_or(LoadError::MissingGraph)?;
    if nodes.len() > limits.max_nodes {
        return Err(LoadError::LimitExceeded {
            what: "number of nodes".into(),
            limit: limits.max_nodes as u64,
            actual: nodes.len() as u64,
        });
    }
    let mut builder = PlanBuilder::new(limits);
    let mut ctx =
        DecodeCtx { base_dir, max_tensor_bytes: limits.max_tensor_bytes, external_budget: limits.max_external_bytes };

    let mut initializers: HashMap<String, Tensor> = HashMap::new();
    for init in &graph.initializer {
        // Charged from the declared dims before the data is decoded. One
        // over the single-tensor limit is left to the decoder, which
        // refuses it with that (more specific) reason.
        let declared = declared_bytes(init).unwrap_or(0);
        if declared <= limits.max_tensor_bytes {
            builder.initializer_bytes.charge(declared, init.name())?;
        }
        let tensor = tensor_from_proto(init, &mut ctx)?;
        if initializers.insert(init.name().to_string(), tensor).is_some() {
            return Err(LoadError::DuplicateProducer {
                value: init.name().into(),
                first: "an initializer".into(),
                second: "another initializer".into(),
            });
        }
    }
    if !graph.sparse_initializer.is_empty() {
        return Err(LoadError::Tensor {
            name: "sparse_initializer".into(),
            reason: "sparse initializers are not supported".into(),
        });
    }
    for info in &graph.input {
        let name = info.name();
        let default = initializers.remove(name);
        let spec = input_spec(info, default.is_some())?;
        let slot = builder.define(name.to_string(), Producer::GraphInput, "")?;
        builder.inputs.push(spec);
        builder.input_slots.push(slot);
        builder.input_defaults.push(default);
    }
    let mut initializers: Vec<(String, Tensor)> = initializers.into_iter().collect();
    initializers.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, tensor) in initializers {
        let slot = builder.define(name, Producer::Initializer, "")?;
        builder.constants.push((slot, tensor));
    }

    let functions = function_table(proto)?;
    let mut opset_tables = vec![opsets];
    let mut function_opsets: HashMap<FunctionKey<'_>, usize> = HashMap::new();
    let mut budget = ExpansionBudget { used: 0, limit: limits.max_expanded_bytes };
    let mut n_calls = 0usize;
    // Calls still to expand, depth first, so the stack holds at most one
    // body per nesting level.
    let mut stack: Vec<(NodeProto, usize, usize)> = Vec::new();
    for top in nodes.into_decoded() {
        stack.push((top?, 0, 0));
        while let Some((node, opsets_idx, depth)) = stack.pop() {
            let Some(&function) = functions.get(&(node.domain(), node.op_type(), node.overload())) else {
                builder.add_node(node, &opset_tables[opsets_idx])?;
                continue;
            };
            let fn_opsets = function_opsets_idx(function, depth, limits, &mut opset_tables, &mut function_opsets)?;
            n_calls += 1;
            let body = expand_call(function, &node, n_calls, &mut budget)?;
            stack.extend(body.into_iter().rev().map(|inner| (inner, fn_opsets, depth + 1)));
        }
    }
    builder.check_reads()?;

    let mut outputs = Vec::with_capacity(graph.output.len());
    for info in &graph.output {
        let name = info.name();
        let slot = builder.slots.get(name).copied().filter(|&slot| builder.producers[slot] != Producer::Nobody);
        let Some(slot) = slot else {
            return Err(LoadError::BadOutput {
                output: name.into(),
                reason: "no node, initializer or input produces it".into(),
            });
        };
        if outputs.iter().any(|(existing, _): &(String, usize)| existing == name) {
            return Err(LoadError::BadOutput {
                output: name.into(),
                reason: "is listed twice among the graph outputs".into(),
            });
        }
        outputs.push((name.to_string(), slot));
    }
    if outputs.is_empty() {
        return Err(LoadError::BadOutput { output: String::new(), reason: "the graph declares no outputs".into() });
    }
    // The name table is not needed past this point: free it before the
    // plan's own working arrays are allocated.
    let PlanBuilder { slots, producers, nodes, inputs, input_slots, input_defaults, constants, .. } = builder;
    drop(slots);
    Plan::new(nodes, producers.len(), inputs, input_slots, input_defaults, constants, outputs)
}

/// The running total of initializer and constant bytes.
struct ByteBudget {
    used: u64,
    limit: u64,
}

impl ByteBudget {
    /// Refuses `extra` more bytes if they would exceed the limit.
    fn check(&self, extra: u64, name: &str) -> Result<(), LoadError> {
        let total = self.used.saturating_add(extra);
        if total > self.limit {
            return Err(LoadError::LimitExceeded {
                what: format!("total initializer and constant bytes (at {name:?})"),
                limit: self.limit,
                actual: total,
            });
        }
        Ok(())
    }

    /// Adds `bytes` to the total, refusing it past the limit.
    fn charge(&mut self, bytes: u64, name: &str) -> Result<(), LoadError> {
        self.check(bytes, name)?;
        self.used += bytes;
        Ok(())
    }
}

/// What produces a value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Producer {
    /// Nothing yet: the value has only been read.
    Nobody,
    GraphInput,
    Initializer,
    /// A Constant node, by index into `constant_labels`.
    Constant(usize),
    /// A node of the plan, by index into `nodes`.
    Node(usize),
}

/// The plan under construction: names → slots, who produces each slot, and
/// the nodes converted so far.
struct PlanBuilder<'l> {
    limits: &'l Limits,
    slots: HashMap<String, usize>,
    producers: Vec<Producer>,
    constant_labels: Vec<String>,
    nodes: Vec<PlanNode>,
    n_flat: usize,
    initializer_bytes: ByteBudget,
    inputs: Vec<InputSpec>,
    input_slots: Vec<usize>,
    input_defaults: Vec<Option<Tensor>>,
    constants: Vec<(usize, Tensor)>,
}

impl<'l> PlanBuilder<'l> {
    fn new(limits: &'l Limits) -> Self {
        PlanBuilder {
            limits,
            slots: HashMap::new(),
            producers: Vec::new(),
            constant_labels: Vec::new(),
            nodes: Vec::new(),
            n_flat: 0,
            initializer_bytes: ByteBudget { used: 0, limit: limits.max_initializer_bytes },
            inputs: Vec::new(),
            input_slots: Vec::new(),
            input_defaults: Vec::new(),
            constants: Vec::new(),
        }
    }

    /// The slot of a value being read (made on first mention, produced
    /// later or never, which [`Self::check_reads`] reports).
    fn read(&mut self, name: &str) -> usize {
        if let Some(&slot) = self.slots.get(name) {
            return slot;
        }
        let slot = self.producers.len();
        self.slots.insert(name.to_string(), slot);
        self.producers.push(Producer::Nobody);
        slot
    }

    /// Records `producer` as the one producer of `name`; `label` names it
    /// when it is a node not yet in `nodes`.
    fn define(&mut self, name: String, producer: Producer, label: &str) -> Result<usize, LoadError> {
        let slot = match self.slots.get(name.as_str()) {
            Some(&slot) => slot,
            None => {
                let slot = self.producers.len();
                self.slots.insert(name, slot);
                self.producers.push(producer);
                return Ok(slot);
            }
        };
        let first = self.producers[slot];
        if first != Producer::Nobody {
            let describe = |producer: Producer, label: &str| match producer {
                Producer::Nobody => String::new(),
                Producer::GraphInput => "graph input".to_string(),
                Producer::Initializer => "an initializer".to_string(),
                Producer::Constant(idx) => format!("node {:?}", self.constant_labels[idx]),
                Producer::Node(idx) => format!("node {:?}", self.nodes.get(idx).map_or(label, |node| &node.name)),
            };
            return Err(LoadError::DuplicateProducer {
                value: name,
                first: describe(first, label),
                second: match producer {
                    Producer::Constant(_) | Producer::Node(_) => format!("node {label:?}"),
                    other => describe(other, label),
                },
            });
        }
        self.producers[slot] = producer;
        Ok(slot)
    }

    /// Converts one node (after function expansion) into a plan node or a
    /// bound constant, and drops its protobuf form.
    fn add_node(&mut self, mut node: NodeProto, opsets: &Opsets) -> Result<(), LoadError> {
        let limits = self.limits;
        if self.n_flat >= limits.max_nodes {
            return Err(LoadError::LimitExceeded {
                what: "number of nodes (after expanding local functions)".into(),
                limit: limits.max_nodes as u64,
                actual: self.n_flat as u64 + 1,
            });
        }
        let label = node_label(&node, self.n_flat);
        self.n_flat += 1;
        if node.op_type() == "Constant" && canonical_domain(node.domain()).is_empty() {
            // A `value` tensor is checked against the total from its dims
            // before it is decoded; the value itself is charged after.
            let declared = node.attribute.iter().filter_map(|attr| attr.t.as_ref()).filter_map(declared_bytes);
            let declared = declared.filter(|&bytes| bytes <= limits.max_tensor_bytes);
            self.initializer_bytes.check(declared.fold(0, u64::saturating_add), &label)?;
            let value = constant_value(&node, &label, limits)?;
            self.initializer_bytes.charge(value.n_bytes() as u64, &label)?;
            if node.output.len() != 1 {
                return Err(LoadError::Arity {
                    node: label,
                    op_type: "Constant".into(),
                    reason: format!("expects 1 output, got {}", node.output.len()),
                });
            }
            let name = std::mem::take(&mut node.output[0]);
            let slot = self.define(name, Producer::Constant(self.constant_labels.len()), &label)?;
            self.constant_labels.push(label);
            self.constants.push((slot, value));
            return Ok(());
        }
        let (op, version) = resolve_op(&node, &label, opsets, limits)?;
        let node_idx = self.nodes.len();
        let mut outputs = Vec::with_capacity(node.output.len());
        for output in std::mem::take(&mut node.output) {
            outputs.push(match output.is_empty() {
                true => None,
                false => Some(self.define(output, Producer::Node(node_idx), &label)?),
            });
        }
        let mut inputs = Vec::with_capacity(node.input.len());
        for input in &node.input {
            inputs.push((!input.is_empty()).then(|| self.read(input)));
        }
        self.nodes.push(PlanNode {
            name: label,
            op_type: node.op_type.take().unwrap_or_default(),
            version,
            op,
            inputs: inputs.into_boxed_slice(),
            outputs: outputs.into_boxed_slice(),
            consumes: Box::default(),
            links: 0,
        });
        Ok(())
    }

    /// Refuses a value that some node reads but nothing produces, naming
    /// the first such node in file order.
    fn check_reads(&self) -> Result<(), LoadError> {
        if !self.producers.contains(&Producer::Nobody) {
            return Ok(());
        }
        for node in &self.nodes {
            for &slot in node.inputs.iter().flatten() {
                if self.producers[slot] == Producer::Nobody {
                    let input = self.slots.iter().find(|(_, other)| **other == slot).map(|(name, _)| name.clone());
                    return Err(LoadError::UndefinedInput {
                        node: node.name.clone(),
                        op_type: node.op_type.clone(),
                        input: input.unwrap_or_default(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lazy decoder's model with its nodes decoded and put back.
    fn lazily(bytes: &[u8]) -> Result<ModelProto, LoadError> {
        let (mut proto, nodes) = decode_model_lazily(bytes)?;
        let nodes: Vec<NodeProto> = nodes.into_decoded().collect::<Result<_, _>>()?;
        if let Some(graph) = proto.graph.as_mut() {
            graph.node = nodes;
        }
        Ok(proto)
    }

    fn fixture_models(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                fixture_models(&path, out);
            } else if path.file_name().is_some_and(|name| name == "model.onnx") {
                out.push(path);
            }
        }
    }

    #[test]
    fn lazy_decoding_gives_what_prost_gives_for_every_fixture() {
        let mut models = Vec::new();
        fixture_models(Path::new("fixtures"), &mut models);
        assert!(models.len() > 400, "{} fixture models", models.len());
        for path in models {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(lazily(&bytes).unwrap(), decode_model(&bytes).unwrap(), "{}", path.display());
        }
    }

    #[test]
    fn lazy_decoding_merges_repeated_fields_like_prost() {
        let node =
            |name: &str| NodeProto { name: Some(name.into()), op_type: Some("Relu".into()), ..Default::default() };
        let part = |graph_name: &str, nodes: Vec<NodeProto>, ir: i64| ModelProto {
            ir_version: Some(ir),
            graph: Some(GraphProto { name: Some(graph_name.into()), node: nodes, ..Default::default() }),
            ..Default::default()
        };
        // Two encodings back to back: every field merges, nodes in order,
        // the last singular value wins.
        let mut bytes = part("first", vec![node("a"), node("b")], 7).encode_to_vec();
        bytes.extend(part("second", vec![node("c")], 8).encode_to_vec());
        let merged = decode_model(&bytes).unwrap();
        assert_eq!(merged.graph.as_ref().unwrap().node.len(), 3);
        assert_eq!(lazily(&bytes).unwrap(), merged);
        // Broken input is refused either way.
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(lazily(&bytes[..cut]).is_err() == decode_model(&bytes[..cut]).is_err(), "cut {cut}");
        }
        // A group wire type (which this walker leaves to prost).
        let mut grouped = vec![0x0b, 0x0c];
        grouped.extend(part("g", vec![node("a")], 7).encode_to_vec());
        assert_eq!(lazily(&grouped).is_ok(), decode_model(&grouped).is_ok());
        if let Ok(proto) = decode_model(&grouped) {
            assert_eq!(lazily(&grouped).unwrap(), proto);
        }
    }
}
