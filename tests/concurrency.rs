//! Concurrency and determinism (issue 5): one `Model` serves many threads
//! with results bitwise identical to running the same inputs one by one,
//! and every op gives bitwise identical results whatever the thread count,
//! on inputs large enough to be split across threads.

// onnxi::Error carries names for its messages (see src/lib.rs).

mod common;

use std::sync::Arc;

use common::*;
use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use onnxi::onnx::{AttributeProto, GraphProto, ModelProto};
use onnxi::{DType, Model, Tensor};

/// Deterministic values in about [-12, 12] (xorshift64), with NaN, ±inf,
/// -0.0 and a huge value sprinkled in.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|idx| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match idx % 997 {
                3 => f64::NAN,
                5 => f64::INFINITY,
                7 => f64::NEG_INFINITY,
                11 => -0.0,
                13 => 3e38,
                _ => (state >> 11) as f64 / (1u64 << 53) as f64 * 24.0 - 12.0,
            }
        })
        .collect()
}

fn tensor(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let wide = values(n, seed);
    let shape = IxDyn(shape);
    match dtype {
        DType::F32 => Tensor::from(ArrayD::from_shape_vec(shape, wide.iter().map(|&v| v as f32).collect()).unwrap()),
        DType::F64 => Tensor::from(ArrayD::from_shape_vec(shape, wide).unwrap()),
        DType::F16 => {
            Tensor::from(ArrayD::from_shape_vec(shape, wide.iter().map(|&v| f16::from_f64(v)).collect()).unwrap())
        }
        DType::BF16 => {
            Tensor::from(ArrayD::from_shape_vec(shape, wide.iter().map(|&v| bf16::from_f64(v)).collect()).unwrap())
        }
        DType::I64 => Tensor::from(
            ArrayD::from_shape_vec(shape, wide.iter().map(|&v| if v.is_finite() { v as i64 } else { 0 }).collect())
                .unwrap(),
        ),
        other => panic!("no generator for {other}"),
    }
}

/// The output of a run as (dtype, shape, bytes), for bitwise comparison
/// (NaN payloads and -0.0 included).
fn fingerprint(tensor: &Tensor) -> (DType, Vec<usize>, Vec<u8>) {
    (tensor.dtype(), tensor.shape().to_vec(), tensor.to_le_bytes())
}

/// `x: float[batch, 37]` → Softmax → Sigmoid → LeakyRelu(0.1) → Tanh, with
/// the Softmax output also a graph output.
fn chain_model() -> ModelProto {
    let graph = GraphProto {
        name: Some("chain".into()),
        node: vec![
            node("Softmax", "softmax", &["x"], &["p"], vec![attr_i("axis", -1)]),
            node("Sigmoid", "sigmoid", &["p"], &["s"], vec![]),
            node("LeakyRelu", "leaky", &["s"], &["l"], vec![attr_f("alpha", 0.1)]),
            node("Tanh", "tanh", &["l"], &["y"], vec![]),
        ],
        input: vec![value_info("x", FLOAT, Some(&[D::P("batch"), D::N(37)]))],
        output: vec![value_info("y", FLOAT, None), value_info("p", FLOAT, None)],
        ..Default::default()
    };
    model(graph, 13)
}

fn chain_input(thread: usize, run: usize) -> Tensor {
    let batch = (thread * 7 + run) % 5 + 1;
    tensor(DType::F32, &[batch, 37], (thread * 1000 + run) as u64)
}

type Fingerprints = Vec<(DType, Vec<usize>, Vec<u8>)>;

fn run_fingerprints(model: &Model, x: Tensor) -> Fingerprints {
    let out = model.run([("x", x)]).unwrap();
    out.iter().map(|(_, tensor)| fingerprint(tensor)).collect()
}

#[test]
fn one_model_shared_by_8_threads_matches_the_runs_one_by_one() {
    const THREADS: usize = 8;
    const RUNS: usize = 1000;
    let model = Arc::new(Model::from_bytes(&bytes(&chain_model())).unwrap());
    let expected: Arc<Vec<Vec<Fingerprints>>> = Arc::new(
        (0..THREADS)
            .map(|thread| (0..RUNS).map(|run| run_fingerprints(&model, chain_input(thread, run))).collect())
            .collect(),
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let model = Arc::clone(&model);
            let expected = Arc::clone(&expected);
            std::thread::spawn(move || {
                // Half the threads reuse a Session (recycled buffers), half
                // call Model::run (fresh buffers each time).
                let mut session = model.session();
                for run in 0..RUNS {
                    let x = chain_input(thread, run);
                    let got: Fingerprints = if thread % 2 == 0 {
                        run_fingerprints(&model, x)
                    } else {
                        session.run([("x", &x)]).unwrap().iter().map(|(_, tensor)| fingerprint(tensor)).collect()
                    };
                    assert!(got == expected[thread][run], "thread {thread}, run {run} differs from the serial run");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("a thread failed");
    }
}

/// One node of `op_type` over `x` of `dtype` (any shape), opset `opset`.
fn one_op(op_type: &str, attrs: Vec<AttributeProto>, dtype: DType, opset: i64) -> Vec<u8> {
    let elem = dtype.onnx_code();
    let graph = GraphProto {
        name: Some("one".into()),
        node: vec![node(op_type, "the_node", &["x"], &["y"], attrs)],
        input: vec![value_info("x", elem, None)],
        output: vec![value_info("y", elem, None)],
        ..Default::default()
    };
    bytes(&model(graph, opset))
}

struct OpCase {
    what: String,
    model: Vec<u8>,
    input: Tensor,
}

/// Every op and dtype on an input above the split threshold; with `huge`,
/// Softmax on the huge rows instead.
fn op_cases(huge: bool) -> Vec<OpCase> {
    let softmax = |shape: &[usize], axis: i64, dtype: DType, opset: i64| OpCase {
        what: format!("Softmax opset {opset} axis {axis} {dtype} {shape:?}"),
        model: one_op("Softmax", vec![attr_i("axis", axis)], dtype, opset),
        input: tensor(dtype, shape, 4),
    };
    if huge {
        return vec![
            softmax(&[1, 2_000_000], -1, DType::F32, 13),
            softmax(&[1, 2_000_000], -1, DType::F64, 13),
            softmax(&[16, 200_000], -1, DType::F32, 13),
            softmax(&[16, 200_000], 0, DType::F32, 13),
            softmax(&[16, 200_000], 0, DType::F32, 11),
        ];
    }
    let mut cases = Vec::new();
    let big = [8, 5003];
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for (op, attrs, opset) in [
            ("Relu", vec![], 14),
            ("LeakyRelu", vec![attr_f("alpha", 0.1)], 16),
            ("Sigmoid", vec![], 13),
            ("Tanh", vec![], 13),
            ("Softmax", vec![attr_i("axis", -1)], 13),
            ("Softmax", vec![attr_i("axis", 0)], 13),
            ("Transpose", vec![], 13),
            ("Identity", vec![], 16),
            ("Flatten", vec![attr_i("axis", 1)], 13),
        ] {
            let names: Vec<&str> = attrs.iter().map(AttributeProto::name).collect();
            cases.push(OpCase {
                what: format!("{op} {names:?} opset {opset} {dtype} {big:?}"),
                model: one_op(op, attrs, dtype, opset),
                input: tensor(dtype, &big, 1),
            });
        }
        let cast_to = if dtype == DType::F32 { DType::F16 } else { DType::F32 };
        cases.push(OpCase {
            what: format!("Cast {dtype} -> {cast_to}"),
            model: one_op("Cast", vec![attr_i("to", i64::from(cast_to.onnx_code()))], dtype, 13),
            input: tensor(dtype, &big, 2),
        });
    }
    cases.push(OpCase {
        what: "Relu int64".into(),
        model: one_op("Relu", vec![], DType::I64, 14),
        input: tensor(DType::I64, &big, 3),
    });
    // A long lane, a strided axis, a middle axis, the opset-11 flattening.
    cases.push(softmax(&[1, 100_000], -1, DType::F32, 13));
    cases.push(softmax(&[2, 40_000], 0, DType::F32, 13));
    cases.push(softmax(&[3, 1000, 67], 1, DType::F32, 13));
    cases.push(softmax(&[4, 50, 400], 1, DType::F32, 11));
    cases.push(softmax(&[4, 50, 400], 1, DType::F64, 11));
    cases
}

#[test]
fn every_op_is_bitwise_identical_at_1_2_and_8_threads() {
    assert_identical_across_thread_counts(op_cases(false));
}

/// The huge Softmax rows (2M elements in one row, and [16, 200000])
/// take long in a debug build; run them with `cargo test --release --test
/// concurrency -- --ignored`.
#[test]
#[ignore = "slow in debug builds; run in release mode"]
fn softmax_on_huge_rows_is_bitwise_identical_at_1_2_and_8_threads() {
    assert_identical_across_thread_counts(op_cases(true));
}

fn assert_identical_across_thread_counts(cases: Vec<OpCase>) {
    let mut failures = Vec::new();
    for case in cases {
        let started = std::time::Instant::now();
        assert!(case.input.len() > 32 * 1024, "{}: too small to be split", case.what);
        let mut reference: Option<(DType, Vec<usize>, Vec<u8>)> = None;
        for threads in [1, 2, 8] {
            let model = Model::builder().threads(threads).from_bytes(&case.model).unwrap();
            let out = model.run([("x", case.input.clone())]).unwrap();
            let got = fingerprint(&out["y"]);
            // And through a Session, whose second run works in the first
            // run's recycled buffers.
            let mut session = model.session();
            session.run([("x", &case.input)]).unwrap();
            let again = fingerprint(&session.run([("x", &case.input)]).unwrap()["y"]);
            if again != got {
                failures.push(format!("{}: Session differs from run at {threads} threads", case.what));
            }
            match &reference {
                None => reference = Some(got),
                Some(first) if *first != got => {
                    let differing = first.2.iter().zip(&got.2).filter(|(a, b)| a != b).count();
                    failures.push(format!("{}: {threads} threads differ from 1 thread ({differing} bytes)", case.what));
                }
                Some(_) => {}
            }
        }
        if std::env::var_os("ONNXI_VERBOSE").is_some() {
            eprintln!("{:>8.1} ms  {}", started.elapsed().as_secs_f64() * 1e3, case.what);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Issue 13: an application's own rayon pool, given to the builder or
/// simply run in, gives the same bits as one thread, and the work runs on
/// that pool's threads.
#[test]
fn a_given_rayon_pool_and_the_pool_the_caller_runs_in_give_the_same_bits() {
    let pool = std::sync::Arc::new(
        onnxi::rayon::ThreadPoolBuilder::new().num_threads(3).thread_name(|idx| format!("app-{idx}")).build().unwrap(),
    );
    let mut failures = Vec::new();
    for case in op_cases(false).into_iter().step_by(3) {
        let serial = Model::builder().threads(1).from_bytes(&case.model).unwrap();
        let reference = fingerprint(&serial.run([("x", case.input.clone())]).unwrap()["y"]);
        let given = Model::builder().pool(pool.clone()).from_bytes(&case.model).unwrap();
        if fingerprint(&given.run([("x", case.input.clone())]).unwrap()["y"]) != reference {
            failures.push(format!("{}: a given pool differs from 1 thread", case.what));
        }
        let default = Model::from_bytes(&case.model).unwrap();
        let inside = pool.install(|| fingerprint(&default.run([("x", case.input.clone())]).unwrap()["y"]));
        if inside != reference {
            failures.push(format!("{}: run inside a rayon pool differs from 1 thread", case.what));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
