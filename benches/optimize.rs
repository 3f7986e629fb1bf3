//! The load-time optimisation passes on and off (`ModelBuilder::optimize`),
//! same model, same input, through sessions that reuse their buffers:
//!
//! - `cnn`: [1, 16, 64, 64] → (Conv 3×3 → BatchNormalization → Relu) × 2,
//!   32 channels (BatchNormalization folded, Relu fused into the Conv);
//! - `mlp`: [256, 512] → (MatMul 512×512 → Add → Relu) × 2 (MatMul + Add
//!   → Gemm, Relu fused into its row blocks);
//! - `conv_bn_net`: the small PyTorch export of `tests/data`.
//!
//! `cargo bench --bench optimize`. On a shared machine quote the ratio of
//! the two timings, not the timings.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{attr_ints, initializer, model_bytes, untyped, value};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use onnxi::onnx::{AttributeProto, NodeProto, TensorProto};
use onnxi::{Model, Tensor};

fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn init(name: &str, dims: &[i64], seed: u64, offset: f32) -> TensorProto {
    let len = dims.iter().product::<i64>() as usize;
    let values: Vec<f32> = values(len, seed).iter().map(|v| v + offset).collect();
    initializer(name, dims, &values)
}

/// A node named after its output.
fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    common::node(op, Some(output), inputs, output, attrs)
}

fn model(nodes: Vec<NodeProto>, x: &[i64], inits: Vec<TensorProto>, y: &str) -> Vec<u8> {
    model_bytes("g", nodes, vec![value("x", x)], vec![untyped(y)], inits, 17)
}

fn cnn() -> (Vec<u8>, Vec<usize>) {
    let pads = attr_ints("pads", &[1, 1, 1, 1]);
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut prev = "x".to_string();
    for (layer, c_in) in [(0u64, 16i64), (1, 32)] {
        let p = |name: &str| format!("{name}{layer}");
        inits.push(init(&p("w"), &[32, c_in, 3, 3], 10 * layer + 1, 0.0));
        inits.push(init(&p("b"), &[32], 10 * layer + 2, 0.0));
        inits.push(init(&p("scale"), &[32], 10 * layer + 3, 1.5));
        inits.push(init(&p("bias"), &[32], 10 * layer + 4, 0.0));
        inits.push(init(&p("mean"), &[32], 10 * layer + 5, 0.0));
        inits.push(init(&p("var"), &[32], 10 * layer + 6, 1.5));
        nodes.push(node("Conv", &[&prev, &p("w"), &p("b")], &p("conv"), vec![pads.clone()]));
        nodes.push(node(
            "BatchNormalization",
            &[&p("conv"), &p("scale"), &p("bias"), &p("mean"), &p("var")],
            &p("bn"),
            vec![],
        ));
        nodes.push(node("Relu", &[&p("bn")], &p("relu"), vec![]));
        prev = p("relu");
    }
    (model(nodes, &[1, 16, 64, 64], inits, &prev), vec![1, 16, 64, 64])
}

fn mlp() -> (Vec<u8>, Vec<usize>) {
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut prev = "x".to_string();
    for layer in 0..2u64 {
        let p = |name: &str| format!("{name}{layer}");
        inits.push(init(&p("w"), &[512, 512], 10 * layer + 1, 0.0));
        inits.push(init(&p("b"), &[512], 10 * layer + 2, 0.0));
        nodes.push(node("MatMul", &[&prev, &p("w")], &p("mm"), vec![]));
        nodes.push(node("Add", &[&p("mm"), &p("b")], &p("add"), vec![]));
        nodes.push(node("Relu", &[&p("add")], &p("relu"), vec![]));
        prev = p("relu");
    }
    (model(nodes, &[256, 512], inits, &prev), vec![256, 512])
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimize");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    let torch = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conv_bn_net.onnx")).expect("model");
    let cases: Vec<(&str, Vec<u8>, Vec<usize>)> =
        vec![("cnn", cnn().0, cnn().1), ("mlp", mlp().0, mlp().1), ("conv_bn_net", torch, vec![2, 3, 8, 8])];
    for (name, bytes, shape) in cases {
        let len = shape.iter().product();
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&shape), values(len, 99)).expect("shape"));
        for on in [false, true] {
            let model = Model::builder().optimize(on).from_bytes(&bytes).expect("loads");
            let mut session = model.session();
            let id = BenchmarkId::new(name, if on { "passes on" } else { "passes off" });
            group.bench_function(id, |b| {
                b.iter(|| black_box(session.run([("x", &x)]).expect("runs").len()));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
