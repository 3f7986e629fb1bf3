//! A readable summary of a model file, including which nodes onnxi cannot
//! run and why. Lenient: it reports problems instead of stopping at the first.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Error, LoadError};
use crate::graph::model::{ModelBuilder, ModelInfo};
use crate::graph::opsets::{Opsets, model_opsets, resolve_op};
use crate::graph::optimize::Optimized;
use crate::io::decode::decode_model;
use crate::onnx::attribute_proto::AttributeType;
use crate::onnx::{AttributeProto, ModelProto, ValueInfoProto, type_proto};
use crate::tensor::onnx_type_name;

/// One node as inspected.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    /// Node name (may be empty in the file).
    pub name: String,
    /// op_type.
    pub op_type: String,
    /// Domain (`""` is ONNX).
    pub domain: String,
    /// Attributes as `name=value` text.
    pub attributes: Vec<(String, String)>,
    /// Input value names; an omitted optional input is `""`.
    pub inputs: Vec<String>,
    /// Output value names; an omitted optional output is `""`.
    pub outputs: Vec<String>,
    /// `Ok(version)` when onnxi can run it at that schema version, or the
    /// reason it cannot.
    pub support: Result<String, String>,
}

/// A graph input or output as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueReport {
    /// Name.
    pub name: String,
    /// Element type name.
    pub dtype: String,
    /// Dims as text (`batch`, `5`, `?`), or `None` when the rank is unknown.
    pub dims: Option<Vec<String>>,
}

/// Everything `onnxi inspect` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// IR version, producer, opsets.
    pub info: ModelInfo,
    /// Graph inputs (initializer-backed ones excluded).
    pub inputs: Vec<ValueReport>,
    /// Graph outputs.
    pub outputs: Vec<ValueReport>,
    /// Number of initializers.
    pub n_initializers: usize,
    /// Names of model-local functions.
    pub functions: Vec<String>,
    /// Nodes in file order.
    pub nodes: Vec<NodeReport>,
    /// `None` when the model loads; else why it does not.
    pub load_error: Option<String>,
    /// When it loads: every value of the plan (after constant folding)
    /// with its inferred type as text (`float32 [batch, 5]`, or `unknown`).
    pub values: Vec<(String, String)>,
    /// When it loads: what the load-time optimisation did (node counts
    /// and one line per rewrite) and the optimised plan's nodes in
    /// execution order as (name, op_type).
    pub optimized: Option<(Optimized, Vec<(String, String)>)>,
}

/// Inspects a model file.
///
/// # Errors
/// [`Error::Load`] only when the file cannot be read or decoded at all;
/// other problems are reported inside the [`Report`].
pub fn inspect_file(path: &Path) -> Result<Report, Error> {
    let with_file = |source| Error::Load { file: Some(Box::from(path)), source };
    // Load first and drop the model, so the plan and the decoded protobuf
    // are never in memory together.
    let (load_error, values, optimized) = match ModelBuilder::default().threads(1).load(path) {
        Ok(model) => {
            let values = model
                .value_types()
                .into_iter()
                .map(|(name, ty)| (name.to_string(), ty.map_or_else(|| "unknown".to_string(), ToString::to_string)));
            let plan = model.nodes().map(|(name, op_type, _)| (name.to_string(), op_type.to_string())).collect();
            (None, values.collect(), Some((model.optimized().clone(), plan)))
        }
        Err(err) => (Some(err.to_string()), Vec::new(), None),
    };
    let bytes = std::fs::read(path).map_err(|err| with_file(LoadError::Io { reason: err.to_string() }))?;
    let proto = decode_model(&bytes).map_err(with_file)?;
    drop(bytes);
    let mut report = report(&proto, load_error);
    report.values = values;
    report.optimized = optimized;
    Ok(report)
}

fn report(proto: &ModelProto, load_error: Option<String>) -> Report {
    let empty = crate::onnx::GraphProto::default();
    let graph = proto.graph.as_ref().unwrap_or(&empty);
    let opsets = model_opsets(proto);
    let initializer_names: Vec<&str> = graph.initializer.iter().map(|init| init.name()).collect();
    let functions: Vec<String> =
        proto.functions.iter().map(|function| format!("{}::{}", function.domain(), function.name())).collect();
    let limits = crate::graph::model::Limits::default();
    let nodes = graph
        .node
        .iter()
        .enumerate()
        .map(|(idx, node)| {
            let label =
                if node.name().is_empty() { format!("#{idx} {}", node.op_type()) } else { node.name().to_string() };
            let is_function = proto
                .functions
                .iter()
                .any(|function| function.domain() == node.domain() && function.name() == node.op_type());
            let support = if is_function {
                Ok("local function (expanded at load)".to_string())
            } else {
                match &opsets {
                    Err(err) => Err(err.to_string()),
                    Ok(opsets) => support(node, &label, opsets, &limits),
                }
            };
            NodeReport {
                name: node.name().to_string(),
                op_type: node.op_type().to_string(),
                domain: node.domain().to_string(),
                attributes: node.attribute.iter().map(|attr| (attr.name().to_string(), attribute_text(attr))).collect(),
                inputs: node.input.clone(),
                outputs: node.output.clone(),
                support,
            }
        })
        .collect();
    Report {
        info: ModelInfo {
            ir_version: proto.ir_version(),
            producer: format!("{} {}", proto.producer_name(), proto.producer_version()).trim().to_string(),
            opsets: proto.opset_import.iter().map(|opset| (opset.domain().to_string(), opset.version())).collect(),
        },
        inputs: graph
            .input
            .iter()
            .filter(|input| !initializer_names.contains(&input.name()))
            .map(value_report)
            .collect(),
        outputs: graph.output.iter().map(value_report).collect(),
        n_initializers: graph.initializer.len(),
        functions,
        nodes,
        load_error,
        values: Vec::new(),
        optimized: None,
    }
}

fn support(
    node: &crate::onnx::NodeProto,
    label: &str,
    opsets: &Opsets,
    limits: &crate::graph::model::Limits,
) -> Result<String, String> {
    resolve_op(node, label, opsets, limits)
        .map(|(_, version)| format!("Supported (version {version})"))
        .map_err(|err| err.to_string())
}

fn value_report(info: &ValueInfoProto) -> ValueReport {
    let (dtype, dims) = match info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(tensor)) => {
            let dims = tensor.shape.as_ref().map(|shape| {
                shape
                    .dim
                    .iter()
                    .map(|dim| match &dim.value {
                        Some(crate::onnx::tensor_shape_proto::dimension::Value::DimValue(size)) => size.to_string(),
                        Some(crate::onnx::tensor_shape_proto::dimension::Value::DimParam(param)) => param.clone(),
                        None => "?".to_string(),
                    })
                    .collect()
            });
            (onnx_type_name(tensor.elem_type()), dims)
        }
        Some(_) => ("non-tensor".to_string(), None),
        None => ("untyped".to_string(), None),
    };
    ValueReport { name: info.name().to_string(), dtype, dims }
}

fn attribute_text(attr: &AttributeProto) -> String {
    let kind = attr.r#type.and_then(|code| AttributeType::try_from(code).ok());
    let text = match kind {
        Some(AttributeType::Float) => format!("{}", attr.f()),
        Some(AttributeType::Int) => attr.i().to_string(),
        Some(AttributeType::String) => format!("{:?}", String::from_utf8_lossy(attr.s())),
        Some(AttributeType::Floats) => format!("{:?}", attr.floats),
        Some(AttributeType::Ints) => format!("{:?}", attr.ints),
        Some(AttributeType::Tensor) => match &attr.t {
            Some(tensor) => format!("tensor {} {:?}", onnx_type_name(tensor.data_type()), tensor.dims),
            None => "tensor (empty)".to_string(),
        },
        Some(AttributeType::Graph) => "graph".to_string(),
        Some(other) => other.as_str_name().to_lowercase(),
        None => "?".to_string(),
    };
    if let Some(reference) = &attr.ref_attr_name { format!("@{reference}") } else { text }
}

/// What an unsupported-op message appends: the whole list of supported ops.
/// The report prints it once, not after every node that needs it.
const OP_LIST: &str = "; onnxi supports: ";

/// `text` without the supported-op list at its end.
fn without_op_list(text: &str) -> &str {
    text.find(OP_LIST).map_or(text, |at| &text[..at])
}

/// A static dim as a JSON number, a symbolic or unknown one as a string.
fn dim_json(dim: &str) -> Value {
    dim.parse::<u64>().map_or_else(|_| json!(dim), |size| json!(size))
}

impl Report {
    /// Whether some node, or the load, failed for an op onnxi lacks: the
    /// report then lists the supported ops once.
    fn lacks_an_op(&self) -> bool {
        let reasons = self.nodes.iter().filter_map(|node| node.support.as_ref().err()).chain(&self.load_error);
        reasons.into_iter().any(|reason| reason.contains(OP_LIST))
    }

    /// Every problem found, in file order, one complete line each: each
    /// node onnxi cannot run (with why), the load error when it says more
    /// than those, and each value whose type loading could not infer.
    /// Empty when the model is runnable and fully typed (`onnxi check`).
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = Vec::new();
        for (idx, node) in self.nodes.iter().enumerate() {
            if let Err(reason) = &node.support {
                let reason = without_op_list(reason);
                // A bad opset import fails every node alike: said once.
                if !problems.iter().any(|said| said == reason) {
                    let label =
                        if node.name.is_empty() { format!("#{idx} {}", node.op_type) } else { node.name.clone() };
                    let named = reason.contains(&format!("{label:?}"));
                    problems.push(if named { reason.to_string() } else { format!("node {label:?}: {reason}") });
                }
            }
        }
        if let Some(reason) = &self.load_error {
            let reason = without_op_list(reason);
            // An unsupported node fails the load too: its line says it already.
            let said = self.nodes.iter().filter_map(|node| node.support.as_ref().err()).any(|node_reason| {
                let node_reason = without_op_list(node_reason);
                reason.contains(node_reason) || node_reason.contains(reason)
            });
            if !said {
                problems.push(format!("does not load: {reason}"));
            }
        }
        for (name, ty) in &self.values {
            if ty == "unknown" {
                problems.push(format!("value {name:?}: no type could be inferred"));
            }
        }
        problems
    }

    /// The report as text, one fact per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("ir_version: {}\nproducer: {}\n", self.info.ir_version, self.info.producer));
        let opsets: Vec<String> = self
            .info
            .opsets
            .iter()
            .map(|(domain, version)| format!("{}={version}", if domain.is_empty() { "ai.onnx" } else { domain }))
            .collect();
        out.push_str(&format!("opsets: {}\n", opsets.join(", ")));
        let value_line = |value: &ValueReport| {
            let dims = value.dims.as_ref().map_or("any".to_string(), |dims| format!("[{}]", dims.join(", ")));
            format!("  {}: {} {dims}\n", value.name, value.dtype)
        };
        out.push_str("inputs:\n");
        self.inputs.iter().for_each(|value| out.push_str(&value_line(value)));
        out.push_str("outputs:\n");
        self.outputs.iter().for_each(|value| out.push_str(&value_line(value)));
        out.push_str(&format!("initializers: {}\n", self.n_initializers));
        if !self.functions.is_empty() {
            out.push_str(&format!("functions: {}\n", self.functions.join(", ")));
        }
        out.push_str(&format!("nodes: {}\n", self.nodes.len()));
        for node in &self.nodes {
            let attrs: Vec<String> = node.attributes.iter().map(|(name, value)| format!("{name}={value}")).collect();
            let op = if node.domain.is_empty() {
                node.op_type.clone()
            } else {
                format!("{}::{}", node.domain, node.op_type)
            };
            let status = match &node.support {
                Ok(text) => text.clone(),
                Err(reason) => format!("UNSUPPORTED: {}", without_op_list(reason)),
            };
            // An omitted optional value shows as `_`.
            let values = |names: &[String]| {
                let names: Vec<&str> =
                    names.iter().map(|name| if name.is_empty() { "_" } else { name.as_str() }).collect();
                names.join(", ")
            };
            out.push_str(&format!(
                "  {op} {:?} {}{} -> {} -- {status}\n",
                node.name,
                if attrs.is_empty() { String::new() } else { format!("({}) ", attrs.join(", ")) },
                values(&node.inputs),
                values(&node.outputs),
            ));
        }
        if !self.values.is_empty() {
            out.push_str("values (after constant folding):\n");
            for (name, ty) in &self.values {
                out.push_str(&format!("  {name}: {ty}\n"));
            }
        }
        if let Some((optimized, plan)) = &self.optimized {
            out.push_str(&format!(
                "optimised plan: {} nodes after constant folding, {} after the passes\n",
                optimized.nodes_before, optimized.nodes_after
            ));
            for rewrite in &optimized.rewrites {
                out.push_str(&format!("  rewrite: {rewrite}\n"));
            }
            for (name, op_type) in plan {
                out.push_str(&format!("  node: {op_type} {name:?}\n"));
            }
        }
        if self.lacks_an_op() {
            out.push_str(&format!("onnxi supports: {}\n", crate::ops::Registry::builtin().op_names()));
        }
        match &self.load_error {
            None => out.push_str("runnable: yes\n"),
            Some(reason) => out.push_str(&format!("runnable: no: {}\n", without_op_list(reason))),
        }
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let value_json = |value: &ValueReport| {
            let dims = value.dims.as_ref().map(|dims| dims.iter().map(|dim| dim_json(dim)).collect::<Vec<_>>());
            json!({"name": value.name, "dtype": value.dtype, "dims": dims})
        };
        json!({
            "ir_version": self.info.ir_version,
            "producer": self.info.producer,
            "opsets": self.info.opsets.iter().map(|(domain, version)| json!({"domain": domain, "version": version})).collect::<Vec<_>>(),
            "inputs": self.inputs.iter().map(value_json).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(value_json).collect::<Vec<_>>(),
            "initializers": self.n_initializers,
            "functions": self.functions,
            "nodes": self.nodes.iter().map(|node| json!({
                "name": node.name,
                "op_type": node.op_type,
                "domain": node.domain,
                "attributes": node.attributes.iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>(),
                "inputs": node.inputs,
                "outputs": node.outputs,
                "supported": node.support.is_ok(),
                "detail": match &node.support { Ok(text) => text.as_str(), Err(text) => without_op_list(text) },
            })).collect::<Vec<_>>(),
            "runnable": self.load_error.is_none(),
            "load_error": self.load_error.as_deref().map(without_op_list),
            "supported_ops": self.lacks_an_op().then(|| crate::ops::Registry::builtin().op_names()),
            "values": self.values.iter().map(|(name, ty)| json!({"name": name, "type": ty})).collect::<Vec<_>>(),
            "optimized": self.optimized.as_ref().map(|(optimized, plan)| json!({
                "nodes_before": optimized.nodes_before,
                "nodes_after": optimized.nodes_after,
                "rewrites": optimized.rewrites,
                "plan": plan.iter().map(|(name, op_type)| json!({"name": name, "op_type": op_type})).collect::<Vec<_>>(),
            })),
        })
    }
}
