//! Typed attribute reader that notices attributes nobody read.
//!
//! An op reads what it implements; [`Attrs::finish`] then refuses the
//! leftovers, so a partial implementation fails loudly instead of computing
//! something else.

use crate::error::LoadError;
use crate::io::tensor_proto::{DecodeCtx, tensor_from_proto};
use crate::onnx::AttributeProto;
use crate::onnx::attribute_proto::AttributeType;
use crate::tensor::Tensor;

/// The attributes of one node, with a record of which were read.
#[derive(Debug)]
pub struct Attrs<'a> {
    node: &'a str,
    op_type: &'a str,
    attributes: Vec<(&'a AttributeProto, bool)>,
    max_tensor_bytes: u64,
}

impl<'a> Attrs<'a> {
    /// Wraps a node's attributes.
    pub(crate) fn new(
        node: &'a str,
        op_type: &'a str,
        attributes: &'a [AttributeProto],
        max_tensor_bytes: u64,
    ) -> Self {
        Attrs { node, op_type, attributes: attributes.iter().map(|attr| (attr, false)).collect(), max_tensor_bytes }
    }

    /// An attribute error naming this node.
    /// The largest tensor an attribute may hold, in bytes.
    pub(crate) fn max_tensor_bytes(&self) -> u64 {
        self.max_tensor_bytes
    }

    /// The node's display name.
    pub(crate) fn node(&self) -> &str {
        self.node
    }

    pub(crate) fn error(&self, attr: &str, reason: impl Into<String>) -> LoadError {
        LoadError::Attribute {
            node: self.node.to_string(),
            op_type: self.op_type.to_string(),
            attr: attr.to_string(),
            reason: reason.into(),
        }
    }

    /// Marks `name` read and returns it, checking its declared type.
    fn take(&mut self, name: &str, expected: AttributeType) -> Result<Option<&'a AttributeProto>, LoadError> {
        let mut found = None;
        for (attr, read) in &mut self.attributes {
            if attr.name() == name {
                if found.is_some() {
                    return Err(self.error(name, "is given twice"));
                }
                *read = true;
                found = Some(*attr);
            }
        }
        let Some(attr) = found else { return Ok(None) };
        // Function expansion resolves every reference (or drops it when
        // neither the call nor the function gives a value), so one left
        // here sits in the main graph, where it refers to nothing.
        if let Some(reference) = &attr.ref_attr_name {
            return Err(self.error(
                name,
                format!(
                    "refers to function attribute {reference:?}, but the node is not inside a function that has it"
                ),
            ));
        }
        let declared = attr.r#type.unwrap_or(0);
        let actual = if declared == 0 { infer_type(attr) } else { AttributeType::try_from(declared).ok() };
        if actual != Some(expected) {
            let actual = actual.map_or_else(|| format!("type code {declared}"), |t| t.as_str_name().to_string());
            return Err(self.error(name, format!("expected {}, got {actual}", expected.as_str_name())));
        }
        Ok(Some(attr))
    }

    /// A float attribute.
    ///
    /// # Errors
    /// [`LoadError::Attribute`] when it has another type.
    pub fn f32(&mut self, name: &str) -> Result<Option<f32>, LoadError> {
        Ok(self.take(name, AttributeType::Float)?.map(|attr| attr.f()))
    }

    /// An int attribute.
    ///
    /// # Errors
    /// [`LoadError::Attribute`] when it has another type.
    pub fn i64(&mut self, name: &str) -> Result<Option<i64>, LoadError> {
        Ok(self.take(name, AttributeType::Int)?.map(|attr| attr.i()))
    }

    /// A list-of-ints attribute.
    ///
    /// # Errors
    /// [`LoadError::Attribute`] when it has another type.
    pub fn ints(&mut self, name: &str) -> Result<Option<Vec<i64>>, LoadError> {
        Ok(self.take(name, AttributeType::Ints)?.map(|attr| attr.ints.clone()))
    }

    /// A string attribute (UTF-8).
    ///
    /// # Errors
    /// [`LoadError::Attribute`] when it has another type or is not UTF-8.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, LoadError> {
        let Some(attr) = self.take(name, AttributeType::String)? else {
            return Ok(None);
        };
        String::from_utf8(attr.s().to_vec()).map(Some).map_err(|_| self.error(name, "string is not valid UTF-8"))
    }

    /// A list-of-strings attribute (each UTF-8).
    ///
    /// # Errors
    /// [`LoadError::Attribute`] when it has another type or a string is
    /// not UTF-8.
    pub fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, LoadError> {
        let Some(attr) = self.take(name, AttributeType::Strings)? else {
            return Ok(None);
        };
        attr.strings
            .iter()
            .map(|bytes| String::from_utf8(bytes.clone()).map_err(|_| self.error(name, "string is not valid UTF-8")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A list-of-floats attribute.
    ///
    /// # Errors
    /// [`LoadError::Attribute`] when it has another type.
    pub fn floats(&mut self, name: &str) -> Result<Option<Vec<f32>>, LoadError> {
        Ok(self.take(name, AttributeType::Floats)?.map(|attr| attr.floats.clone()))
    }

    /// A tensor attribute, decoded.
    ///
    /// # Errors
    /// [`LoadError::Attribute`] for another type; [`LoadError::Tensor`] or
    /// [`LoadError::LimitExceeded`] when the tensor is invalid.
    pub fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, LoadError> {
        let Some(attr) = self.take(name, AttributeType::Tensor)? else {
            return Ok(None);
        };
        let proto = attr.t.as_ref().ok_or_else(|| self.error(name, "tensor attribute holds no tensor"))?;
        let mut ctx = DecodeCtx::standalone(self.max_tensor_bytes);
        // The tensor's own name is usually empty here: say whose it is.
        tensor_from_proto(proto, &mut ctx).map(Some).map_err(|err| match err {
            LoadError::LimitExceeded { what, limit, actual } => LoadError::LimitExceeded {
                what: format!("node {:?} (op {}) attribute {name:?}: {what}", self.node, self.op_type),
                limit,
                actual,
            },
            LoadError::Tensor { name: tensor, reason } => self.error(name, format!("tensor {tensor:?}: {reason}")),
            other => other,
        })
    }

    /// Names of attributes present on the node (read or not).
    pub fn names(&self) -> Vec<&'a str> {
        self.attributes.iter().map(|(attr, _)| attr.name()).collect()
    }

    /// Refuses any attribute that was not read.
    ///
    /// # Errors
    /// [`LoadError::UnexpectedAttribute`] naming the first unread attribute.
    pub fn finish(self) -> Result<(), LoadError> {
        match self.attributes.iter().find(|(_, read)| !read) {
            Some((attr, _)) => Err(LoadError::UnexpectedAttribute {
                node: self.node.to_string(),
                op_type: self.op_type.to_string(),
                attr: attr.name().to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// Old exporters leave `type` unset; infer it from the field that is filled.
fn infer_type(attr: &AttributeProto) -> Option<AttributeType> {
    if attr.f.is_some() {
        Some(AttributeType::Float)
    } else if attr.i.is_some() {
        Some(AttributeType::Int)
    } else if attr.s.is_some() {
        Some(AttributeType::String)
    } else if attr.t.is_some() {
        Some(AttributeType::Tensor)
    } else if attr.g.is_some() {
        Some(AttributeType::Graph)
    } else if !attr.floats.is_empty() {
        Some(AttributeType::Floats)
    } else if !attr.ints.is_empty() {
        Some(AttributeType::Ints)
    } else if !attr.strings.is_empty() {
        Some(AttributeType::Strings)
    } else {
        None
    }
}
