//! Opset imports and op resolution: which registered version of an op a
//! node gets, its attributes read and checked, its arity checked.

use std::collections::HashMap;

use crate::error::LoadError;
use crate::graph::attrs::Attrs;
use crate::graph::model::Limits;
use crate::onnx::{ModelProto, NodeProto};
use crate::ops::{MAX_OPSET, Op, Registry};

/// Opset versions by domain, with `"ai.onnx"` folded into `""`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Opsets(pub(crate) HashMap<String, i64>);

impl Opsets {
    pub(crate) fn from_imports<'a>(imports: impl Iterator<Item = (&'a str, i64)>) -> Result<Self, LoadError> {
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

pub(crate) fn canonical_domain(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

/// Reads the model's opset imports. A model need not import the default
/// domain when none of its nodes use it (an `ai.onnx.ml`-only model);
/// [`resolve_op`] refuses a default-domain node without the import.
pub(crate) fn model_opsets(proto: &ModelProto) -> Result<Opsets, LoadError> {
    Opsets::from_imports(proto.opset_import.iter().map(|opset| (opset.domain(), opset.version())))
}

/// Display name of a node: its name, or its position when unnamed.
pub(crate) fn node_label(proto: &NodeProto, idx: usize) -> String {
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
    if domain.is_empty() && opsets.get("").is_none() {
        return Err(LoadError::NoDefaultOpset);
    }
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
        return Err(LoadError::OpsetTooNew {
            node: label.to_string(),
            op_type: op_type.to_string(),
            opset,
            max: MAX_OPSET,
        });
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
    arity("outputs", op.n_outputs(), proto.output.len())?;
    Ok((op, version))
}
