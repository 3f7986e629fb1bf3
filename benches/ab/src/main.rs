//! Times one kernel of two onnxi versions in alternating batches on the
//! same inputs and prints their speeds and ratio (see run.sh).

use std::time::Instant;

/// Deterministic inputs uniform in [lo, hi) (xorshift, as the benches).
fn inputs(len: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * (hi - lo) + lo
        })
        .collect()
}

/// Best time of `reps` calls, each after `pause`, in seconds.
fn best_of(reps: usize, pause: std::time::Duration, mut call: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            let start = Instant::now();
            call();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn arg<T: std::str::FromStr>(args: &[String], idx: usize, default: T) -> T {
    args.get(idx).and_then(|arg| arg.parse().ok()).unwrap_or(default)
}

/// A one-node float32 model `op_type(x) -> y` over `[rows, n]` at opset 13
/// (22 for Elu), encoded once and loaded by both versions, so that any two
/// revisions with the public loading API can be compared whatever their
/// kernel API.
fn model_bytes(op_type: &str, rows: usize, n: usize) -> Vec<u8> {
    use head::onnx::{
        GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
        tensor_shape_proto, type_proto,
    };
    use prost::Message;
    let value = |name: &str| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: [rows, n]
                        .iter()
                        .map(|&size| tensor_shape_proto::Dimension {
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(size as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = NodeProto {
        op_type: Some(op_type.into()),
        input: vec!["x".into()],
        output: vec!["y".into()],
        ..Default::default()
    };
    let opset = if op_type == "Elu" { 22 } else { 13 };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(GraphProto {
            name: Some("ab".into()),
            node: vec![node],
            input: vec![value("x")],
            output: vec![value("y")],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kernel = args.first().map_or("", String::as_str).to_string();
    let n: usize = arg(&args, 1, 16_000);
    let lo: f32 = arg(&args, 2, -10.0);
    let hi: f32 = arg(&args, 3, 10.0);
    let rows: usize = arg(&args, 4, 1).max(1);
    let len = n * rows;
    let op_type = match kernel.as_str() {
        "relu" => "Relu",
        "leakyrelu" => "LeakyRelu",
        "sigmoid" => "Sigmoid",
        "tanh" => "Tanh",
        "elu" => "Elu",
        "softmax" => "Softmax",
        _ => {
            eprintln!("usage: benches/ab/run.sh REV relu|leakyrelu|sigmoid|tanh|elu|softmax [N] [LO HI] [ROWS]");
            std::process::exit(2);
        }
    };
    let bytes = model_bytes(op_type, rows, n);
    // AB_THREADS: threads per model (default 1); AB_PAUSE_MS: idle pause
    // before every timed call (default 0: calls back to back), to time calls
    // that arrive after the pool threads have gone to sleep.
    let threads: usize = std::env::var("AB_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let pause_ms: u64 = std::env::var("AB_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let pause = std::time::Duration::from_millis(pause_ms);
    let base_model = base::Model::builder().threads(threads).from_bytes(&bytes).unwrap_or_else(|err| {
        eprintln!("base: {err}");
        std::process::exit(1)
    });
    let head_model = head::Model::builder().threads(threads).from_bytes(&bytes).unwrap_or_else(|err| {
        eprintln!("head: {err}");
        std::process::exit(1)
    });
    let x = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[rows, n]), inputs(len, lo, hi)).unwrap_or_default();
    let (base_x, head_x) = (base::Tensor::from(x.clone()), head::Tensor::from(x));
    let (mut base_session, mut head_session) = (base_model.session(), head_model.session());
    // Batches of ~1M elements of work, 41 of each version, interleaved;
    // sessions reuse their output buffers, as a kernel call into `dst` did.
    let reps = if pause_ms > 0 { 5 } else { (1_000_000 / len.max(1)).clamp(3, 2000) };
    let rounds = 41;
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        times[0].push(best_of(reps, pause, || {
            std::hint::black_box(base_session.run([("x", &base_x)]).is_ok());
        }));
        times[1].push(best_of(reps, pause, || {
            std::hint::black_box(head_session.run([("x", &head_x)]).is_ok());
        }));
    }
    for series in &mut times {
        series.sort_by(f64::total_cmp);
    }
    let median = |series: &[f64]| series[series.len() / 2];
    let rate = |secs: f64| len as f64 / secs / 1e9;
    println!(
        "{op_type} [{rows},{n}] in [{lo},{hi}), {threads} thread(s), {pause_ms} ms pause before each call, {} ({rounds} alternating rounds, best of {reps} calls each):",
        head::kernels::simd::Isa::best().name()
    );
    println!(
        "  base {:.2} el/ns, head {:.2} el/ns (medians over rounds)",
        rate(median(&times[0])),
        rate(median(&times[1]))
    );
    println!(
        "  head/base speed {:.3} (medians), {:.3} (best rounds)",
        median(&times[0]) / median(&times[1]),
        times[0][0] / times[1][0]
    );
}
