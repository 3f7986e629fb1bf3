//! Whole-model runs through the interpreter: per-call overhead on a
//! 5-element Relu, and the chain Relu→Sigmoid→Tanh→LeakyRelu→Softmax on
//! [1000, 1000], fused (one model, the interpreter runs the chain group of
//! rows by group of rows) against the same five nodes run as five models
//! one after another (one full pass over memory per node, as before
//! fusion), both through sessions that reuse their buffers.
//!
//! `cargo bench --bench models`; throughput is in elements per second.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{attr_f, attr_i, model_bytes, value};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use onnxi::onnx::NodeProto;
use onnxi::{Model, Tensor};

/// The node `op`, with LeakyRelu's alpha and Softmax's axis set.
fn node(op: &str, input: &str, output: &str) -> NodeProto {
    let attribute = match op {
        "LeakyRelu" => vec![attr_f("alpha", 0.01)],
        "Softmax" => vec![attr_i("axis", -1)],
        _ => Vec::new(),
    };
    common::node(op, None, &[input], output, attribute)
}

/// `x -> ops[0] -> ... -> y` over float32 `dims`, opset 13.
fn chain(ops: &[&str], dims: &[i64]) -> Model {
    let names: Vec<String> =
        (0..ops.len()).map(|idx| if idx + 1 == ops.len() { "y".into() } else { format!("t{idx}") }).collect();
    let nodes = ops
        .iter()
        .enumerate()
        .map(|(idx, op)| node(op, if idx == 0 { "x" } else { &names[idx - 1] }, &names[idx]))
        .collect();
    let bytes = model_bytes("bench", nodes, vec![value("x", dims)], vec![value("y", dims)], Vec::new(), 13);
    Model::from_bytes(&bytes).expect("the bench model loads")
}

/// Deterministic inputs in [-10, 10).
fn input(dims: &[usize]) -> Tensor {
    let values = common::uniform_inputs(dims.iter().product(), 0x2545_f491_4f6c_dd1d);
    Tensor::from(ArrayD::from_shape_vec(IxDyn(dims), values).expect("the shape matches"))
}

fn per_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("model");
    let relu = chain(&["Relu"], &[5]);
    let x = input(&[5]);
    let mut session = relu.session();
    group.bench_function("relu-5-session", |b| b.iter(|| black_box(session.run([("x", &x)]).is_ok())));
    group.bench_function("relu-5-model-run", |b| {
        b.iter_batched(|| x.clone(), |x| black_box(relu.run([("x", x)]).is_ok()), criterion::BatchSize::SmallInput)
    });
    group.finish();
}

fn five_op_chain(c: &mut Criterion) {
    const OPS: [&str; 5] = ["Relu", "Sigmoid", "Tanh", "LeakyRelu", "Softmax"];
    let mut group = c.benchmark_group("chain-1000x1000");
    group.throughput(Throughput::Elements(1_000_000));
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let x = input(&[1000, 1000]);
    let fused = chain(&OPS, &[1000, 1000]);
    assert_eq!(fused.fused_chains().len(), 1, "the bench chain must fuse");
    let mut session = fused.session();
    group.bench_function(BenchmarkId::new("fused", "session"), |b| {
        b.iter(|| black_box(session.run([("x", &x)]).is_ok()))
    });
    // Node by node: five one-node models, each with its own session (so
    // buffers are reused too), each reading the previous one's output.
    let singles: Vec<Model> = OPS.iter().map(|op| chain(&[op], &[1000, 1000])).collect();
    let mut sessions: Vec<_> = singles.iter().map(Model::session).collect();
    group.bench_function(BenchmarkId::new("node-by-node", "session"), |b| {
        b.iter(|| {
            let mut value = &x;
            for session in &mut sessions {
                value = session.run([("x", value)]).and_then(|out| out.require("y")).expect("runs");
            }
            black_box(value.len())
        })
    });
    group.finish();
}

criterion_group!(benches, per_call, five_op_chain);
criterion_main!(benches);
