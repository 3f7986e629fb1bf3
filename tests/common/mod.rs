//! Builders for small ONNX models in tests, straight from the prost types.
#![allow(dead_code)]

use onnxi::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto, type_proto,
};
use prost::Message;

/// ONNX `TensorProto.DataType.FLOAT`.
pub const FLOAT: i32 = 1;
/// ONNX `TensorProto.DataType.DOUBLE`.
pub const DOUBLE: i32 = 11;
/// ONNX `TensorProto.DataType.FLOAT16`.
pub const FLOAT16: i32 = 10;
/// ONNX `TensorProto.DataType.INT64`.
pub const INT64: i32 = 7;

/// A dimension for `value_info`: a number or a symbolic name.
pub enum D {
    N(i64),
    P(&'static str),
}

/// A tensor-typed ValueInfoProto.
pub fn value_info(name: &str, elem_type: i32, dims: Option<&[D]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|dim| tensor_shape_proto::Dimension {
                value: Some(match dim {
                    D::N(size) => tensor_shape_proto::dimension::Value::DimValue(*size),
                    D::P(name) => tensor_shape_proto::dimension::Value::DimParam(name.to_string()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem_type), shape })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node.
pub fn node(op_type: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// An int attribute.
pub fn attr_i(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

/// A float attribute.
pub fn attr_f(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

/// A string attribute.
pub fn attr_s(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(value.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// A float32 tensor with raw data.
pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(FLOAT),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A model around a graph, importing the default domain at `opset`.
pub fn model(graph: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("onnxi-tests".into()),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(graph),
        ..Default::default()
    }
}

/// A graph with one node `op_type(x) -> y` over float32 `dims`.
pub fn single_op(op_type: &str, attrs: Vec<AttributeProto>, dims: &[D], opset: i64) -> ModelProto {
    single_op_typed(op_type, attrs, dims, opset, FLOAT)
}

/// Like [`single_op`] with another element type.
pub fn single_op_typed(
    op_type: &str,
    attrs: Vec<AttributeProto>,
    dims: &[D],
    opset: i64,
    elem_type: i32,
) -> ModelProto {
    let graph = GraphProto {
        name: Some("g".into()),
        node: vec![node(op_type, "the_node", &["x"], &["y"], attrs)],
        input: vec![value_info("x", elem_type, Some(dims))],
        output: vec![value_info("y", elem_type, None)],
        ..Default::default()
    };
    model(graph, opset)
}

/// A graph named `g` with float32 outputs of unknown shape.
pub fn graph(nodes: Vec<NodeProto>, inputs: Vec<ValueInfoProto>, outputs: &[&str]) -> GraphProto {
    GraphProto {
        name: Some("g".into()),
        node: nodes,
        input: inputs,
        output: outputs.iter().map(|name| value_info(name, FLOAT, None)).collect(),
        ..Default::default()
    }
}

/// A 1-D float32 tensor.
pub fn f32s(values: &[f32]) -> onnxi::Tensor {
    onnxi::Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[values.len()]), values.to_vec()).unwrap())
}

/// Encodes a model.
pub fn bytes(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
