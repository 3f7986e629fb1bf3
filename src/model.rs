//! Loading: ModelProto → validated execution plan. The only module that
//! walks protobuf graphs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    /// thread only). Without this, rayon's global pool is used.
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
        let with_file = |source| Error::Load { file: Some(path.to_path_buf()), source };
        let bytes = std::fs::read(path).map_err(|err| with_file(LoadError::Io { reason: err.to_string() }))?;
        let base_dir = path.parent().map(|dir| if dir.as_os_str().is_empty() { Path::new(".") } else { dir });
        self.build(&bytes, base_dir).map_err(with_file)
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
        let proto = decode_model(bytes)?;
        let par = match self.threads {
            Some(n) => Parallel::with_threads(n)
                .map_err(|reason| LoadError::Io { reason: format!("cannot start threads: {reason}") })?,
            None => Parallel::global(),
        };
        let graph = build_graph(&proto, base_dir, &self.limits)?;
        Ok(Model { info: ModelInfo::from_proto(&proto), plan: graph, par, limits: self.limits.clone() })
    }
}

/// Decodes ModelProto bytes.
pub(crate) fn decode_model(bytes: &[u8]) -> Result<ModelProto, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Decode { reason: "the file is empty".into() });
    }
    ModelProto::decode(bytes).map_err(|err| LoadError::Decode { reason: err.to_string() })
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

/// A node after function expansion, with the opsets that apply to it: the
/// main graph's nodes are borrowed, copies of function bodies owned.
struct FlatNode<'a> {
    proto: Cow<'a, NodeProto>,
    opsets: usize,
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
        supported: registry.op_names(),
    })?;
    let unsupported = || LoadError::UnsupportedOpset {
        node: label.to_string(),
        op_type: op_type.to_string(),
        domain: domain.to_string(),
        opset,
        versions: entry.versions_text(),
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

/// Expands calls to model-local functions into their bodies, iteratively
/// (a deep or recursive call chain cannot overflow the stack). Every copy of
/// a body is paid for from [`Limits::max_expanded_bytes`] before it is made.
fn flatten_nodes<'a>(
    proto: &'a ModelProto,
    graph: &'a GraphProto,
    opsets: Opsets,
    limits: &Limits,
) -> Result<(Vec<FlatNode<'a>>, Vec<Opsets>), LoadError> {
    let mut functions: HashMap<FunctionKey<'_>, &FunctionProto> = HashMap::with_capacity(proto.functions.len());
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
    let mut opset_tables = vec![opsets];
    let mut function_opsets: HashMap<FunctionKey<'_>, usize> = HashMap::new();
    let mut flat = Vec::with_capacity(graph.node.len());
    let mut n_calls = 0usize;
    let mut budget = ExpansionBudget { used: 0, limit: limits.max_expanded_bytes };
    // Calls still to expand, depth first, so the stack holds at most one
    // body per nesting level.
    let mut stack: Vec<(Cow<'a, NodeProto>, usize, usize)> = Vec::new();
    for top in &graph.node {
        stack.push((Cow::Borrowed(top), 0, 0));
        while let Some((node, opsets_idx, depth)) = stack.pop() {
            let key = (node.domain(), node.op_type(), node.overload());
            let Some(&function) = functions.get(&key) else {
                if flat.len() >= limits.max_nodes {
                    return Err(LoadError::LimitExceeded {
                        what: "number of nodes (after expanding local functions)".into(),
                        limit: limits.max_nodes as u64,
                        actual: flat.len() as u64 + 1,
                    });
                }
                flat.push(FlatNode { proto: node, opsets: opsets_idx });
                continue;
            };
            let fn_opsets = function_opsets_idx(function, depth, limits, &mut opset_tables, &mut function_opsets)?;
            n_calls += 1;
            let body = expand_call(function, &node, n_calls, &mut budget)?;
            stack.extend(body.into_iter().rev().map(|inner| (Cow::Owned(inner), fn_opsets, depth + 1)));
        }
    }
    Ok((flat, opset_tables))
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
        values.push(Tensor::F32(ndarray::arr0(value).into_dyn()));
    }
    if let Some(list) = attrs.floats("value_floats")? {
        values.push(Tensor::F32(ndarray::Array1::from(list).into_dyn()));
    }
    if let Some(value) = attrs.i64("value_int")? {
        values.push(Tensor::I64(ndarray::arr0(value).into_dyn()));
    }
    if let Some(list) = attrs.ints("value_ints")? {
        values.push(Tensor::I64(ndarray::Array1::from(list).into_dyn()));
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

/// Builds the execution plan of the model's main graph.
fn build_graph(proto: &ModelProto, base_dir: Option<&Path>, limits: &Limits) -> Result<Plan, LoadError> {
    let opsets = model_opsets(proto)?;
    let graph = proto.graph.as_ref().ok_or(LoadError::MissingGraph)?;
    if graph.node.len() > limits.max_nodes {
        return Err(LoadError::LimitExceeded {
            what: "number of nodes".into(),
            limit: limits.max_nodes as u64,
            actual: graph.node.len() as u64,
        });
    }
    let mut builder = PlanBuilder::default();
    let mut ctx =
        DecodeCtx { base_dir, max_tensor_bytes: limits.max_tensor_bytes, external_budget: limits.max_external_bytes };
    let mut initializer_bytes = ByteBudget { used: 0, limit: limits.max_initializer_bytes };

    let mut initializers: HashMap<String, Tensor> = HashMap::new();
    for init in &graph.initializer {
        // Charged from the declared dims before the data is decoded.
        initializer_bytes.charge(declared_bytes(init).unwrap_or(0), init.name())?;
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
        builder.define(name, "graph input")?;
        let slot = builder.slot(name);
        builder.inputs.push(spec);
        builder.input_slots.push(slot);
        builder.input_defaults.push(default);
    }
    let mut initializers: Vec<(String, Tensor)> = initializers.into_iter().collect();
    initializers.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, tensor) in initializers {
        builder.define(&name, "an initializer")?;
        let slot = builder.slot(&name);
        builder.constants.push((slot, tensor));
    }

    let (flat, opset_tables) = flatten_nodes(proto, graph, opsets, limits)?;
    let mut pending: Vec<(FlatNode, String)> = Vec::with_capacity(flat.len());
    for (idx, node) in flat.into_iter().enumerate() {
        let label = node_label(&node.proto, idx);
        let is_constant = node.proto.op_type() == "Constant" && canonical_domain(node.proto.domain()).is_empty();
        if is_constant {
            // A `value` tensor is checked against the total from its dims
            // before it is decoded; the value itself is charged after.
            let declared = node.proto.attribute.iter().filter_map(|attr| attr.t.as_ref()).filter_map(declared_bytes);
            initializer_bytes.check(declared.fold(0, u64::saturating_add), &label)?;
            let value = constant_value(&node.proto, &label, limits)?;
            initializer_bytes.charge(value.n_bytes() as u64, &label)?;
            if node.proto.output.len() != 1 {
                return Err(LoadError::Arity {
                    node: label,
                    op_type: "Constant".into(),
                    reason: format!("expects 1 output, got {}", node.proto.output.len()),
                });
            }
            let name = node.proto.output[0].clone();
            builder.define(&name, &format!("node {label:?}"))?;
            let slot = builder.slot(&name);
            builder.constants.push((slot, value));
            continue;
        }
        for output in node.proto.output.iter().filter(|name| !name.is_empty()) {
            builder.define(output, &format!("node {label:?}"))?;
        }
        pending.push((node, label));
    }

    let mut nodes = Vec::with_capacity(pending.len());
    for (node, label) in pending {
        let (op, version) = resolve_op(&node.proto, &label, &opset_tables[node.opsets], limits)?;
        let mut inputs = Vec::with_capacity(node.proto.input.len());
        for input in &node.proto.input {
            if input.is_empty() {
                inputs.push(None);
                continue;
            }
            if !builder.defined.contains_key(input.as_str()) {
                return Err(LoadError::UndefinedInput {
                    node: label,
                    op_type: node.proto.op_type().into(),
                    input: input.clone(),
                });
            }
            inputs.push(Some(builder.slot(input)));
        }
        let outputs = node.proto.output.iter().map(|name| (!name.is_empty()).then(|| builder.slot(name))).collect();
        nodes.push(PlanNode {
            name: label,
            op_type: node.proto.op_type().to_string(),
            version,
            op,
            inputs,
            outputs,
            consumes: Vec::new(),
        });
    }

    let mut outputs = Vec::with_capacity(graph.output.len());
    for info in &graph.output {
        let name = info.name();
        if !builder.defined.contains_key(name) {
            return Err(LoadError::BadOutput {
                output: name.into(),
                reason: "no node, initializer or input produces it".into(),
            });
        }
        if outputs.iter().any(|(existing, _): &(String, usize)| existing == name) {
            return Err(LoadError::BadOutput {
                output: name.into(),
                reason: "is listed twice among the graph outputs".into(),
            });
        }
        outputs.push((name.to_string(), builder.slot(name)));
    }
    if outputs.is_empty() {
        return Err(LoadError::BadOutput { output: String::new(), reason: "the graph declares no outputs".into() });
    }
    Plan::new(
        nodes,
        builder.n_slots(),
        builder.inputs,
        builder.input_slots,
        builder.input_defaults,
        builder.constants,
        outputs,
    )
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

/// Names → slots, and who defined each name.
#[derive(Default)]
struct PlanBuilder {
    slots: HashMap<String, usize>,
    defined: HashMap<String, String>,
    inputs: Vec<InputSpec>,
    input_slots: Vec<usize>,
    input_defaults: Vec<Option<Tensor>>,
    constants: Vec<(usize, Tensor)>,
}

impl PlanBuilder {
    fn slot(&mut self, name: &str) -> usize {
        let next = self.slots.len();
        *self.slots.entry(name.to_string()).or_insert(next)
    }

    fn n_slots(&self) -> usize {
        self.slots.len()
    }

    fn define(&mut self, name: &str, producer: &str) -> Result<(), LoadError> {
        if let Some(first) = self.defined.get(name) {
            return Err(LoadError::DuplicateProducer {
                value: name.into(),
                first: first.clone(),
                second: producer.into(),
            });
        }
        self.defined.insert(name.to_string(), producer.to_string());
        Ok(())
    }
}

/// The folder a model path's external data is read from.
pub fn model_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
