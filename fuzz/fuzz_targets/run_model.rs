//! Running: a small model of one op (its type, opset, attributes and input
//! dtype chosen by the fuzz input) on an arbitrary tensor, or an arbitrary
//! model on inputs built from its declared specs. Every run goes through
//! `Model::run` and twice through a `Session` (which reuses buffers), and
//! the three must agree bit for bit (any NaN matching any NaN: IEEE 754
//! leaves payloads open), errors included.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onnxi::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, type_proto,
};
use onnxi::{DType, Dim, Model, Tensor};
use prost::Message;

/// Reads the fuzz input front to back; past the end it yields zeros.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&first, rest)) => {
                self.0 = rest;
                first
            }
            None => 0,
        }
    }

    fn i64(&mut self) -> i64 {
        let mut bytes = [0u8; 8];
        bytes.iter_mut().for_each(|byte| *byte = self.u8());
        i64::from_le_bytes(bytes)
    }

    /// Mostly small values (axes, dims), sometimes any 64-bit value.
    fn small_or_wild(&mut self) -> i64 {
        let tag = self.u8();
        if tag < 224 { i64::from(tag as i8 % 6) } else { self.i64() }
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

const OPS: [&str; 12] = [
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Cast",
    "Identity",
];
const OPSETS: [i64; 12] = [1, 6, 9, 11, 13, 14, 16, 18, 20, 21, 25, 28];

fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(kind as i32), ..Default::default() }
}

fn value_info(name: &str, elem_type: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem_type), shape: None })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A tensor of `dtype` and `shape` whose bytes repeat `pattern`.
fn tensor(dtype: DType, shape: &[usize], pattern: &[u8]) -> Option<Tensor> {
    let n_bytes = shape.iter().product::<usize>() * dtype.size();
    let raw: Vec<u8> =
        if pattern.is_empty() { vec![0; n_bytes] } else { pattern.iter().copied().cycle().take(n_bytes).collect() };
    let proto = TensorProto {
        dims: shape.iter().map(|&dim| dim as i64).collect(),
        data_type: Some(dtype.onnx_code()),
        raw_data: Some(raw),
        ..Default::default()
    };
    onnxi::io::tensor_file::parse_pb(&proto.encode_to_vec(), u64::MAX).ok().map(|(tensor, _)| tensor)
}

fn int64s(values: &[i64]) -> Tensor {
    Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[values.len()]), values.to_vec()).expect("1-D"))
}

/// True when two tensors hold the same values bit for bit, except that any
/// two NaNs count as equal: IEEE 754 does not say which operand's payload
/// `x * alpha` keeps when both are NaN, and the in-place and copying kernel
/// paths may order the operands differently (found with a NaN alpha).
fn same_values(a: &Tensor, b: &Tensor) -> bool {
    if (a.dtype(), a.shape()) != (b.dtype(), b.shape()) {
        return false;
    }
    let size = a.dtype().size();
    let (a_bytes, b_bytes) = (a.to_le_bytes(), b.to_le_bytes());
    let (a_values, b_values) = (a.to_f64_vec(), b.to_f64_vec());
    a_bytes
        .chunks(size)
        .zip(b_bytes.chunks(size))
        .zip(a_values.iter().zip(&b_values))
        .all(|((a_bits, b_bits), (a_value, b_value))| a_bits == b_bits || (a_value.is_nan() && b_value.is_nan()))
}

/// Runs `feeds` three ways and checks that they agree.
fn run_checked(model: &Model, feeds: &[(String, Tensor)]) -> Option<Vec<(String, Tensor)>> {
    let once = model.run(feeds.iter().cloned());
    let mut session = model.session();
    for _ in 0..2 {
        let again = session.run(feeds.iter().map(|(name, tensor)| (name.as_str(), tensor)));
        match (&once, again) {
            (Ok(first), Ok(second)) => {
                assert_eq!(first.len(), second.len());
                for ((name_a, a), (name_b, b)) in first.iter().zip(second.iter()) {
                    assert_eq!(name_a, name_b);
                    assert_eq!((a.dtype(), a.shape()), (b.dtype(), b.shape()), "{name_a}");
                    assert!(same_values(a, b), "{name_a}: run and session differ:\n{a:?}\n{b:?}");
                }
            }
            (Err(first), Err(second)) => assert_eq!(first.to_string(), second.to_string()),
            (first, second) => panic!("run gave {first:?}, session gave {second:?}"),
        }
    }
    once.ok().map(onnxi::Outputs::into_vec)
}

fn one_op(reader: &mut Reader<'_>) {
    let op_type = OPS[usize::from(reader.u8()) % OPS.len()];
    let opset = OPSETS[usize::from(reader.u8()) % OPSETS.len()];
    let dtype = DType::ALL[usize::from(reader.u8()) % DType::ALL.len()];
    let mut attributes = Vec::new();
    let mut second: Option<Vec<i64>> = None;
    let wants_attr = reader.u8();
    match op_type {
        "LeakyRelu" if wants_attr % 2 == 1 => {
            let mut alpha = attr("alpha", AttributeType::Float);
            alpha.f = Some(f32::from_bits(reader.i64() as u32));
            attributes.push(alpha);
        }
        "Softmax" | "Flatten" if wants_attr % 2 == 1 => {
            let mut axis = attr("axis", AttributeType::Int);
            axis.i = Some(reader.small_or_wild());
            attributes.push(axis);
        }
        "Transpose" if wants_attr % 2 == 1 => {
            let mut perm = attr("perm", AttributeType::Ints);
            perm.ints = (0..reader.u8() % 6).map(|_| reader.small_or_wild()).collect();
            attributes.push(perm);
        }
        "Cast" => {
            let mut to = attr("to", AttributeType::Int);
            to.i = Some(match wants_attr % 3 {
                0 => i64::from(DType::ALL[usize::from(reader.u8()) % DType::ALL.len()].onnx_code()),
                1 => reader.small_or_wild(),
                _ => i64::from(reader.u8() % 24),
            });
            if opset < 6 {
                to = attr("to", AttributeType::String);
                to.s =
                    Some(["FLOAT", "DOUBLE", "FLOAT16", "INT64", "INT8", "BOOL"][usize::from(reader.u8()) % 6].into());
            }
            attributes.push(to);
        }
        "Squeeze" | "Unsqueeze" | "Reshape" => {
            let values: Vec<i64> = (0..reader.u8() % 6).map(|_| reader.small_or_wild()).collect();
            let name = if op_type == "Reshape" { "shape" } else { "axes" };
            let as_attr = (op_type == "Reshape" && opset < 5) || (op_type != "Reshape" && opset < 13);
            if as_attr {
                if wants_attr % 4 != 0 {
                    let mut list = attr(name, AttributeType::Ints);
                    list.ints = values;
                    attributes.push(list);
                }
            } else if op_type == "Reshape" || wants_attr % 4 != 0 {
                second = Some(values);
            }
            if op_type == "Reshape" && opset >= 14 && wants_attr % 3 == 0 {
                let mut allow_zero = attr("allowzero", AttributeType::Int);
                allow_zero.i = Some(1);
                attributes.push(allow_zero);
            }
        }
        _ => {}
    }
    let rank = usize::from(reader.u8() % 5);
    let big = reader.u8() % 32 == 0;
    let mut shape: Vec<usize> = (0..rank).map(|_| usize::from(reader.u8() % 6)).collect();
    if big {
        // Past the threshold where kernels split work across threads.
        shape = vec![3, 17_000];
    }
    let mut inputs = vec![value_info("x", dtype.onnx_code())];
    let mut node_inputs = vec!["x".to_string()];
    if second.is_some() {
        inputs.push(value_info("s", 7));
        node_inputs.push("s".into());
    }
    let graph = GraphProto {
        name: Some("fuzz".into()),
        node: vec![NodeProto {
            op_type: Some(op_type.into()),
            name: Some("the_node".into()),
            input: node_inputs,
            output: vec!["y".into()],
            attribute: attributes,
            ..Default::default()
        }],
        input: inputs,
        output: vec![value_info("y", dtype.onnx_code())],
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(graph),
        ..Default::default()
    };
    let Ok(model) = Model::from_bytes(&proto.encode_to_vec()) else { return };
    let Some(x) = tensor(dtype, &shape, reader.0) else { return };
    let mut feeds = vec![("x".to_string(), x)];
    if let Some(values) = second {
        feeds.push(("s".to_string(), int64s(&values)));
    }
    if let Some(outputs) = run_checked(&model, &feeds)
        && matches!(op_type, "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Softmax" | "Identity" | "Cast")
    {
        assert_eq!(outputs[0].1.shape(), &shape[..], "{op_type} changed the shape");
    }
}

fn any_model(reader: &mut Reader<'_>, bytes: &[u8]) {
    let Ok(model) = Model::from_bytes(bytes) else { return };
    let mut symbols: Vec<(String, usize)> = Vec::new();
    let mut feeds = Vec::new();
    let mut total = 0usize;
    for spec in model.inputs() {
        if spec.has_default && reader.u8() % 2 == 0 {
            continue;
        }
        let shape: Vec<usize> = match &spec.dims {
            None => (0..reader.u8() % 4).map(|_| usize::from(reader.u8() % 4)).collect(),
            Some(dims) => dims
                .iter()
                .map(|dim| match dim {
                    Dim::Fixed(size) => *size,
                    Dim::Symbolic(name) => match symbols.iter().find(|(known, _)| known == name) {
                        Some((_, size)) => *size,
                        None => {
                            let size = usize::from(reader.u8() % 4);
                            symbols.push((name.clone(), size));
                            size
                        }
                    },
                    Dim::Any => usize::from(reader.u8() % 4),
                })
                .collect(),
        };
        let Some(n_elems) = shape.iter().try_fold(1usize, |acc, &dim| acc.checked_mul(dim)) else { return };
        total = total.saturating_add(n_elems);
        if total > 1 << 16 {
            return;
        }
        let Some(tensor) = tensor(spec.dtype, &shape, &[0x3f, 0x80, 0x01, 0xc0]) else { return };
        feeds.push((spec.name.clone(), tensor));
    }
    run_checked(&model, &feeds);
}

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader(data);
    if reader.u8() % 2 == 0 {
        one_op(&mut reader);
    } else {
        // Two bytes steer the input shapes; the rest is the model.
        let rest = reader.rest();
        let (steer, model) = rest.split_at(rest.len().min(2));
        any_model(&mut Reader(steer), model);
    }
});
