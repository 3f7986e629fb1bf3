//! The benchmark cases, as ONNX models built in Rust (no Python needed).
//!
//! Every model has one float32 input `input` and one float32 output `output`
//! with fixed shapes, at opset 13 (so Softmax works along `axis` only),
//! except the one-op rows of every elementwise activation onnxi declares
//! (opset 22, the newest version of most of them) and the broadcasting
//! Add/Mul rows, whose second operand is an initializer.

use onnxi::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
    attribute_proto::AttributeType,
    tensor_proto::DataType,
    tensor_shape_proto::{Dimension, dimension},
    type_proto,
};
use prost::Message;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use ndarray::ArrayD;

const OPSET: i64 = 13;
// IR 8 is what PyTorch's exporter writes for opset 13..17, and every runtime
// compared here reads it.
const IR_VERSION: i64 = 8;

/// One operator with its attributes.
#[derive(Debug, Clone)]
pub enum Op {
    Relu,
    Sigmoid,
    Tanh,
    LeakyRelu { alpha: f32 },
    Softmax { axis: i64 },
    /// A one-input op with its default attributes.
    Named(&'static str),
    /// `op_type(x, b)` with `b` an initializer of shape `operand`
    /// (broadcast against `x`), deterministic values in [0.5, 1.5).
    Binary { op_type: &'static str, operand: Vec<usize> },
}

impl Op {
    fn op_type(&self) -> &'static str {
        match self {
            Op::Relu => "Relu",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Softmax { .. } => "Softmax",
            Op::Named(op_type) | Op::Binary { op_type, .. } => op_type,
        }
    }

    fn attributes(&self) -> Vec<AttributeProto> {
        match self {
            Op::LeakyRelu { alpha } => vec![AttributeProto {
                name: Some("alpha".into()),
                r#type: Some(AttributeType::Float as i32),
                f: Some(*alpha),
                ..Default::default()
            }],
            Op::Softmax { axis } => vec![AttributeProto {
                name: Some("axis".into()),
                r#type: Some(AttributeType::Int as i32),
                i: Some(*axis),
                ..Default::default()
            }],
            _ => Vec::new(),
        }
    }
}

/// A benchmark case: a chain of ops applied to one input of `shape`.
#[derive(Debug, Clone)]
pub struct Case {
    pub label: String,
    pub shape: Vec<usize>,
    pub ops: Vec<Op>,
    /// Issue 4 holds this case against the machine's stream bandwidth.
    pub stream_bound: bool,
    /// Default-domain opset of the model.
    pub opset: i64,
    /// Inputs in (0, 10] instead of [-10, 10) (Log, Sqrt, …).
    pub positive: bool,
    /// A network fixture run as exported, instead of a model built here.
    pub network: Option<Network>,
}

/// A network fixture of `fixtures/networks/`: its model file and the
/// input of its first test data set, with the names the model uses.
#[derive(Debug, Clone)]
pub struct Network {
    /// The fixture's `model.onnx`.
    pub model: PathBuf,
    /// The model's input name and the test data set's input.
    pub input_name: String,
    pub input: ArrayD<f32>,
    /// The model's first output.
    pub output_name: String,
}

impl Case {
    fn new(label: &str, shape: &[usize], ops: Vec<Op>) -> Case {
        Case {
            label: label.into(),
            shape: shape.to_vec(),
            ops,
            stream_bound: false,
            opset: OPSET,
            positive: false,
            network: None,
        }
    }

    fn stream_bound(mut self) -> Case {
        self.stream_bound = true;
        self
    }

    pub fn n_elems(&self) -> usize {
        self.shape.iter().product()
    }

    /// The names of the model's (only) input and its first output.
    pub fn io_names(&self) -> (&str, &str) {
        match &self.network {
            Some(net) => (&net.input_name, &net.output_name),
            None => ("input", "output"),
        }
    }

    /// The model, encoded as ONNX protobuf bytes.
    pub fn model_bytes(&self) -> Result<Vec<u8>> {
        if let Some(net) = &self.network {
            return std::fs::read(&net.model).with_context(|| format!("reading {}", net.model.display()));
        }
        Ok(self.built_model_bytes())
    }

    fn built_model_bytes(&self) -> Vec<u8> {
        let n_ops = self.ops.len();
        let value_name = |idx: usize| {
            if idx == 0 {
                "input".to_string()
            } else if idx == n_ops {
                "output".to_string()
            } else {
                format!("t{idx}")
            }
        };
        let mut initializer = Vec::new();
        let node = self
            .ops
            .iter()
            .enumerate()
            .map(|(idx, op)| NodeProto {
                input: match op {
                    Op::Binary { operand, .. } => {
                        let name = format!("b{idx}");
                        initializer.push(operand_tensor(&name, operand));
                        vec![value_name(idx), name]
                    }
                    _ => vec![value_name(idx)],
                },
                output: vec![value_name(idx + 1)],
                name: Some(format!("{}_{idx}", op.op_type())),
                op_type: Some(op.op_type().into()),
                domain: Some(String::new()),
                attribute: op.attributes(),
                ..Default::default()
            })
            .collect();
        let graph = GraphProto {
            node,
            name: Some(self.label.clone()),
            input: vec![value_info("input", &self.shape)],
            output: vec![value_info("output", &self.shape)],
            initializer,
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(self.opset) }],
            producer_name: Some("onnxi-compare".into()),
            graph: Some(graph),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}

/// A float32 initializer of `shape`, values in [0.5, 1.5).
fn operand_tensor(name: &str, shape: &[usize]) -> TensorProto {
    let n: usize = shape.iter().product();
    TensorProto {
        name: Some(name.into()),
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        float_data: (0..n).map(|idx| 0.5 + (idx * 7919 % 1000) as f32 / 1000.0).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&d| Dimension { value: Some(dimension::Value::DimValue(d as i64)), ..Default::default() })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Elementwise ops whose inputs must be positive for ordinary values.
const POSITIVE_DOMAIN: &[&str] = &["Log", "Sqrt", "Reciprocal"];

/// The cases: those of issue 4 (smallest first), then one row per
/// elementwise activation onnxi declares (`onnxi::ops::elementwise::declared`,
/// so ops added later get a row) at 1M elements, then Add and Mul with
/// broadcasting over [1000, 1000] (issue 11).
pub fn all_cases() -> Vec<Case> {
    let mut cases = issue_4_cases();
    for op in onnxi::ops::elementwise::declared() {
        let name = op.name();
        let label = format!("{name} [1000000]");
        if cases.iter().any(|case| case.label == label) {
            continue;
        }
        let mut case = Case::new(&label, &[1_000_000], vec![Op::Named(name)]);
        // Opset 22, or the op's first version when it is newer (Swish, 24).
        case.opset = op.versions().first().map_or(ACTIVATION_OPSET, |&first| first.max(ACTIVATION_OPSET));
        case.positive = POSITIVE_DOMAIN.contains(&name);
        cases.push(case);
    }
    for (op_type, operand, sign) in [("Add", vec![1000], "+"), ("Mul", vec![1000, 1], "*")] {
        let label = format!("{op_type} [1000,1000] {sign} {operand:?}");
        cases.push(Case::new(&label, &[1000, 1000], vec![Op::Binary { op_type, operand }]));
    }
    cases
}

/// Opset of the one-op activation rows: the newest version of most of them
/// (Elu, Selu, HardSwish, Softplus, Mish, … were revised in 22), which ONNX
/// Runtime 1.32 runs.
const ACTIVATION_OPSET: i64 = 22;

fn issue_4_cases() -> Vec<Case> {
    let leaky = Op::LeakyRelu { alpha: 0.01 };
    let softmax = Op::Softmax { axis: -1 };
    vec![
        Case::new("Relu [5] (per-call overhead)", &[5], vec![Op::Relu]),
        Case::new("Sigmoid [1000]", &[1000], vec![Op::Sigmoid]),
        Case::new("Relu [100000]", &[100_000], vec![Op::Relu]),
        Case::new("LeakyRelu [100000]", &[100_000], vec![leaky.clone()]),
        Case::new("Sigmoid [1000000]", &[1_000_000], vec![Op::Sigmoid]),
        Case::new("Tanh [1000000]", &[1_000_000], vec![Op::Tanh]),
        Case::new("Softmax [1000,1000]", &[1000, 1000], vec![softmax.clone()]),
        Case::new("Relu [16000000]", &[16_000_000], vec![Op::Relu]).stream_bound(),
        Case::new("LeakyRelu [16000000]", &[16_000_000], vec![leaky.clone()]).stream_bound(),
        Case::new("Softmax [16,1000000]", &[16, 1_000_000], vec![softmax.clone()]),
        Case::new(
            "Relu→Sigmoid→Tanh→LeakyRelu→Softmax [1000,1000]",
            &[1000, 1000],
            vec![Op::Relu, Op::Sigmoid, Op::Tanh, leaky, softmax],
        ),
    ]
}

/// The network fixtures timed, as `fixtures/networks/test_<name>_ts17`
/// (the TorchScript export at opset 17, one fixed batch size); each is a
/// case labelled `net <name> <input shape>`.
pub const NETWORKS: &[&str] = &[
    "mlp_act",
    "conv_act",
    "resnet18",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "vit",
    "transformer_relu",
    "transformer_gelu",
    "lstm",
    "gru",
];

/// One case per entry of [`NETWORKS`] found under `fixtures_dir`.
///
/// # Errors
/// A fixture whose model or input cannot be read.
pub fn network_cases(fixtures_dir: &Path) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for name in NETWORKS {
        let dir = fixtures_dir.join(format!("test_{name}_ts17"));
        let model = dir.join("model.onnx");
        let bytes = std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
        let proto = onnxi::onnx::ModelProto::decode(&bytes[..]).with_context(|| format!("decoding {}", model.display()))?;
        let graph = proto.graph.as_ref().context("model without a graph")?;
        let initializers: Vec<&str> = graph.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
        let inputs: Vec<&str> =
            graph.input.iter().filter_map(|v| v.name.as_deref()).filter(|n| !initializers.contains(n)).collect();
        let [input_name] = inputs[..] else {
            return Err(anyhow!("{}: {} inputs, the harness feeds one", model.display(), inputs.len()));
        };
        let output_name = graph.output.first().and_then(|v| v.name.clone()).context("model without outputs")?;
        let (tensor, _) = onnxi::io::tensor_file::read_default(dir.join("test_data_set_0/input_0.pb"))
            .map_err(|e| anyhow!("{}: {e}", dir.display()))?;
        let input = tensor.as_f32().map_err(|e| anyhow!("{}: {e}", dir.display()))?.to_owned();
        let shape = input.shape().to_vec();
        let mut case = Case::new(&format!("net {name} {shape:?}"), &shape, Vec::new());
        case.network = Some(Network { model, input_name: input_name.to_string(), input, output_name });
        cases.push(case);
    }
    Ok(cases)
}
