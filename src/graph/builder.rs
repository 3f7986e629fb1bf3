//! Building the plan of the main graph: graph inputs and initializers,
//! nodes converted one at a time (local functions expanded), every value
//! produced exactly once, then constant folding and type inference.

use std::collections::HashMap;
use std::path::Path;

use crate::error::LoadError;
use crate::graph::functions::{ExpansionBudget, FunctionKey, expand_call, function_opsets_idx, function_table};
use crate::graph::model::{Dim, InputSpec, Limits};
use crate::graph::opsets::{Opsets, model_opsets, node_label, resolve_op};
use crate::graph::plan::{Plan, PlanNode};
use crate::io::decode::GraphNodes;
use crate::io::tensor_proto::{DecodeCtx, MAX_RANK, declared_bytes, tensor_from_proto};
use crate::onnx::{ModelProto, NodeProto, ValueInfoProto, type_proto};
use crate::tensor::{DType, Tensor, onnx_type_name};

/// Reads a graph input's declared type.
pub(crate) fn input_spec(info: &ValueInfoProto, has_default: bool) -> Result<InputSpec, LoadError> {
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
pub(crate) fn build_graph(
    proto: &ModelProto,
    nodes: GraphNodes<'_>,
    base_dir: Option<&Path>,
    limits: &Limits,
    fold: bool,
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
    let PlanBuilder {
        slots,
        producers,
        nodes,
        inputs,
        input_slots,
        input_defaults,
        constants,
        mut initializer_bytes,
        ..
    } = builder;
    // Names by slot, kept for `inspect` and messages; the map goes before
    // the plan's own working arrays are allocated.
    let mut names: Vec<Box<str>> = vec![Box::default(); producers.len()];
    for (name, slot) in slots {
        names[slot] = name.into_boxed_str();
    }
    let plan = Plan::new(nodes, producers.len(), inputs, input_slots, input_defaults, constants, outputs)?;
    let mut plan = if fold { fold_plan(plan, limits, &mut initializer_bytes)? } else { plan };
    plan.names = names;
    plan.infer_types();
    plan.check_types()?;
    Ok(plan)
}

/// Constant folding with the loader's limits (see `crate::graph::fold`).
pub(crate) fn fold_plan(plan: Plan, limits: &Limits, initializer_bytes: &mut ByteBudget) -> Result<Plan, LoadError> {
    crate::graph::fold::fold_constants(plan, limits.max_tensor_bytes, |value, node| {
        let bytes = value.n_bytes() as u64;
        if bytes > limits.max_tensor_bytes {
            return Err(LoadError::LimitExceeded {
                what: format!(
                    "value folded from node {node:?} ({}, shape {:?}) size in bytes",
                    value.dtype(),
                    value.shape()
                ),
                limit: limits.max_tensor_bytes,
                actual: bytes,
            });
        }
        initializer_bytes.charge(bytes, node)
    })
}

/// The running total of initializer and constant bytes.
pub(crate) struct ByteBudget {
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
pub(crate) enum Producer {
    /// Nothing yet: the value has only been read.
    Nobody,
    GraphInput,
    Initializer,
    /// A node of the plan, by index into `nodes`.
    Node(usize),
}

/// The plan under construction: names → slots, who produces each slot, and
/// the nodes converted so far.
pub(crate) struct PlanBuilder<'l> {
    limits: &'l Limits,
    slots: HashMap<String, usize>,
    producers: Vec<Producer>,
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
                Producer::Node(idx) => format!("node {:?}", self.nodes.get(idx).map_or(label, |node| &node.name)),
            };
            return Err(LoadError::DuplicateProducer {
                value: name,
                first: describe(first, label),
                second: match producer {
                    Producer::Node(_) => format!("node {label:?}"),
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
        // Values held in attributes (a Constant's `value`, `value_floats`,
        // any op's tensor attribute) count as constants: checked against
        // the budget from their declared size before they are decoded, and
        // charged. (Folding charges the outputs of nodes with inputs only.)
        let declared = node
            .attribute
            .iter()
            .map(|attr| {
                let tensor = attr.t.as_ref().and_then(declared_bytes).filter(|&bytes| bytes <= limits.max_tensor_bytes);
                let lists = (attr.floats.len() as u64)
                    .saturating_mul(4)
                    .saturating_add((attr.ints.len() as u64).saturating_mul(8));
                tensor.unwrap_or(0).saturating_add(lists)
            })
            .fold(0, u64::saturating_add);
        self.initializer_bytes.charge(declared, &label)?;
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
