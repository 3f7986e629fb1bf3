//! Model-local functions: each call expanded into a copy of the function
//! body (depth first, iteratively, within the expansion budget), with
//! attribute references resolved.

use std::collections::HashMap;

use prost::Message;

use crate::error::LoadError;
use crate::graph::model::Limits;
use crate::graph::opsets::Opsets;
use crate::onnx::{AttributeProto, FunctionProto, ModelProto, NodeProto};

/// A model-local function's identity: (domain, name, overload).
pub(crate) type FunctionKey<'a> = (&'a str, &'a str, &'a str);

/// What function expansion has spent of [`Limits::max_expanded_bytes`].
pub(crate) struct ExpansionBudget {
    pub(crate) used: u64,
    pub(crate) limit: u64,
}

/// The model-local functions by (domain, name, overload), refusing a
/// duplicate definition.
pub(crate) fn function_table(proto: &ModelProto) -> Result<HashMap<FunctionKey<'_>, &FunctionProto>, LoadError> {
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
pub(crate) fn function_opsets_idx<'a>(
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
pub(crate) fn expand_call(
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
pub(crate) fn ref_source<'a>(
    reference: &str,
    call: &'a NodeProto,
    function: &'a FunctionProto,
) -> Option<&'a AttributeProto> {
    call.attribute
        .iter()
        .find(|given| given.name() == reference)
        .or_else(|| function.attribute_proto.iter().find(|default| default.name() == reference))
}

/// Substitutes `ref_attr_name` attributes with the caller's values, or the
/// function's defaults; drops them when neither exists.
pub(crate) fn resolve_attribute_refs(
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
