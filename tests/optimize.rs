//! Load-time optimisation passes: each one on gives the results of the
//! model loaded with it off (bit for bit where the pass claims it, within
//! stated rounding for BatchNormalization folding), on hand-built models
//! and on a PyTorch export (`tests/data/conv_bn_net.onnx`, whose PyTorch
//! output is the independent reference).

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn};
use onnxi::io::tensor_file::read_default;
use onnxi::onnx::{AttributeProto, GraphProto, NodeProto, TensorProto};
use onnxi::{Model, ModelBuilder, Tensor};

/// Deterministic values in [-1, 1).
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

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let len = shape.iter().product();
    Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values(len, seed)).expect("shape"))
}

fn init(name: &str, shape: &[usize], seed: u64) -> TensorProto {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    tensor_f32(name, &dims, &values(shape.iter().product(), seed))
}

fn model_bytes(nodes: Vec<NodeProto>, x_dims: &[i64], inits: Vec<TensorProto>, outputs: &[&str]) -> Vec<u8> {
    let dims: Vec<D> = x_dims.iter().map(|&d| D::N(d)).collect();
    let mut graph: GraphProto = graph(nodes, vec![value_info("x", FLOAT, Some(&dims))], outputs);
    graph.initializer = inits;
    bytes(&model(graph, 17))
}

fn load(bytes: &[u8], builder: ModelBuilder) -> Model {
    builder.from_bytes(bytes).expect("loads")
}

fn run(model: &Model, x: &Tensor) -> Vec<Tensor> {
    model.run([("x", x.clone())]).expect("runs").into_vec().into_iter().map(|(_, value)| value).collect()
}

fn f32_values(tensor: &Tensor) -> Vec<f32> {
    tensor.view::<f32>().expect("float32").iter().copied().collect()
}

fn assert_bitwise(got: &[Tensor], want: &[Tensor], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: output count");
    for (got, want) in got.iter().zip(want) {
        assert_eq!(got.shape(), want.shape(), "{what}: shape");
        let (got, want) = (f32_values(got), f32_values(want));
        for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {idx}: {g} vs {w}");
        }
    }
}

fn op_types(model: &Model) -> Vec<String> {
    model.nodes().map(|(_, op_type, _)| op_type.to_string()).collect()
}

/// Loads with every pass off and with `on`, at 1 and 2 threads, and
/// checks the outputs are bitwise equal; returns the optimised model.
fn check_bitwise(bytes: &[u8], x: &Tensor, on: fn(ModelBuilder) -> ModelBuilder, what: &str) -> Model {
    let reference = run(&load(bytes, Model::builder().optimize(false).threads(1)), x);
    for threads in [1, 2] {
        let model = load(bytes, on(Model::builder().optimize(false).threads(threads)));
        assert_bitwise(&run(&model, x), &reference, &format!("{what} at {threads} threads"));
    }
    load(bytes, on(Model::builder().optimize(false)))
}

#[test]
fn dead_nodes_are_removed_and_results_unchanged() {
    let nodes = vec![
        node("Relu", "r", &["x"], &["y"], vec![]),
        node("Sigmoid", "unused", &["x"], &["s"], vec![]),
        node("MatMul", "unused_mm", &["s", "w"], &["t"], vec![]),
    ];
    let bytes = model_bytes(nodes, &[4, 4], vec![init("w", &[4, 4], 1)], &["y"]);
    let x = tensor(&[4, 4], 2);
    let model = check_bitwise(&bytes, &x, |b| b.remove_dead_nodes(true), "dead nodes");
    assert_eq!(op_types(&model), ["Relu"]);
    assert_eq!(model.optimized().nodes_before, 3);
    assert_eq!(model.optimized().nodes_after, 1);
    let off = load(&bytes, Model::builder().optimize(false));
    assert_eq!(op_types(&off).len(), 3);
    // The default builder runs the pass.
    assert_eq!(op_types(&Model::from_bytes(&bytes).expect("loads")), ["Relu"]);
}

/// Conv (NCHW, `group`) then BatchNormalization, in float64 written out.
#[allow(clippy::too_many_arguments)]
fn conv_bn_reference(
    x: &[f32],
    (n, c, h, w_): (usize, usize, usize, usize),
    w: &[f32],
    m: usize,
    k: usize,
    group: usize,
    b: Option<&[f32]>,
    bn: [&[f32]; 4],
    eps: f64,
) -> Vec<f64> {
    let (oh, ow) = (h - k + 1, w_ - k + 1);
    let cg = c / group;
    let mut out = vec![0.0; n * m * oh * ow];
    for img in 0..n {
        for oc in 0..m {
            let g = oc / (m / group);
            for i in 0..oh {
                for j in 0..ow {
                    let mut sum = b.map_or(0.0, |b| f64::from(b[oc]));
                    for ic in 0..cg {
                        for p in 0..k {
                            for q in 0..k {
                                let xv = x[((img * c + g * cg + ic) * h + i + p) * w_ + j + q];
                                let wv = w[((oc * cg + ic) * k + p) * k + q];
                                sum += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    let [scale, bias, mean, var] = bn.map(|values| f64::from(values[oc]));
                    out[((img * m + oc) * oh + i) * ow + j] = (sum - mean) / (var + eps).sqrt() * scale + bias;
                }
            }
        }
    }
    out
}

#[test]
fn batch_norm_folds_into_conv_within_rounding() {
    for (group, with_bias) in [(1, true), (2, false)] {
        let (n, c, h, w, m, k) = (2, 4, 7, 6, 6, 3);
        let mut conv_inputs = vec!["x", "w"];
        let mut inits = vec![init("w", &[m, c / group, k, k], 3)];
        if with_bias {
            conv_inputs.push("b");
            inits.push(init("b", &[m], 4));
        }
        let scale: Vec<f32> = values(m, 5).iter().map(|v| v + 1.5).collect();
        let var: Vec<f32> = values(m, 6).iter().map(|v| v + 1.2).collect();
        inits.push(tensor_f32("scale", &[m as i64], &scale));
        inits.push(init("bias", &[m], 7));
        inits.push(init("mean", &[m], 8));
        inits.push(tensor_f32("var", &[m as i64], &var));
        let eps = 1e-3f32;
        let nodes = vec![
            node("Conv", "conv1", &conv_inputs, &["c"], vec![attr_i("group", group as i64)]),
            node(
                "BatchNormalization",
                "bn1",
                &["c", "scale", "bias", "mean", "var"],
                &["y"],
                vec![attr_f("epsilon", eps)],
            ),
        ];
        let bytes = model_bytes(nodes, &[n as i64, c as i64, h as i64, w as i64], inits, &["y"]);
        let x = tensor(&[n, c, h, w], 9);
        let off = load(&bytes, Model::builder().optimize(false));
        let on = load(&bytes, Model::builder().optimize(false).fold_batch_norm(true));
        assert_eq!(op_types(&off), ["Conv", "BatchNormalization"]);
        assert_eq!(op_types(&on), ["Conv"]);
        assert_eq!(on.optimized().rewrites, ["Conv conv1 + BatchNormalization bn1 → Conv conv1 (folded)"]);
        let want = conv_bn_reference(
            &f32_values(&x),
            (n, c, h, w),
            &values(m * (c / group) * k * k, 3),
            m,
            k,
            group,
            with_bias.then(|| values(m, 4)).as_deref(),
            [&scale, &values(m, 7), &values(m, 8), &var],
            f64::from(eps),
        );
        let (got_off, got_on) = (f32_values(&run(&off, &x)[0]), f32_values(&run(&on, &x)[0]));
        assert_eq!(got_on.len(), want.len());
        for idx in 0..want.len() {
            let (a, b, r) = (f64::from(got_off[idx]), f64::from(got_on[idx]), want[idx]);
            // Both within float32 rounding of the float64 reference (the
            // sums have 36 terms of magnitude ≤ 1), and of each other.
            assert!((a - r).abs() <= 1e-5 * (1.0 + r.abs()), "unfolded {idx}: {a} vs {r}");
            assert!((b - r).abs() <= 1e-5 * (1.0 + r.abs()), "folded {idx}: {b} vs {r}");
        }
    }
}

#[test]
fn batch_norm_not_folded_when_the_conv_output_is_also_read_elsewhere() {
    let inits = vec![
        init("w", &[2, 2, 1, 1], 1),
        init("scale", &[2], 2),
        init("bias", &[2], 3),
        init("mean", &[2], 4),
        tensor_f32("var", &[2], &[1.0, 2.0]),
    ];
    let nodes = vec![
        node("Conv", "conv", &["x", "w"], &["c"], vec![]),
        node("BatchNormalization", "bn", &["c", "scale", "bias", "mean", "var"], &["y"], vec![]),
    ];
    let bytes = model_bytes(nodes, &[1, 2, 3, 3], inits, &["y", "c"]);
    let model = check_bitwise(&bytes, &tensor(&[1, 2, 3, 3], 5), |b| b.optimize(true), "conv output shared");
    assert_eq!(op_types(&model), ["Conv", "BatchNormalization"]);
}

#[test]
fn matmul_add_becomes_a_bitwise_equal_gemm() {
    // K large enough for the GEMM to split K into several passes, M over
    // several row blocks; C as [N], [1, N] and a scalar, on either side.
    for (m, k, n, c_shape, c_first) in [
        (100, 600, 64, vec![64], false),
        (7, 5, 3, vec![1, 3], true),
        (33, 1100, 17, vec![], false),
        (4, 8, 9, vec![1], true),
    ] {
        let add_inputs: [&str; 2] = if c_first { ["c", "p"] } else { ["p", "c"] };
        let nodes =
            vec![node("MatMul", "mm", &["x", "w"], &["p"], vec![]), node("Add", "add", &add_inputs, &["y"], vec![])];
        let inits = vec![init("w", &[k, n], 11), init("c", &c_shape, 12)];
        let bytes = model_bytes(nodes, &[m as i64, k as i64], inits, &["y"]);
        let x = tensor(&[m, k], 13);
        let model = check_bitwise(&bytes, &x, |b| b.matmul_add_to_gemm(true), "MatMul + Add");
        assert_eq!(op_types(&model), ["Gemm"], "{m}x{k}x{n} C {c_shape:?}");
        assert_eq!(model.optimized().rewrites, ["MatMul mm + Add add → Gemm mm (C added after the product)"]);
    }
}

#[test]
fn matmul_add_with_batched_a_is_left_alone() {
    let nodes =
        vec![node("MatMul", "mm", &["x", "w"], &["p"], vec![]), node("Add", "add", &["p", "c"], &["y"], vec![])];
    let bytes = model_bytes(nodes, &[2, 3, 4], vec![init("w", &[4, 5], 1), init("c", &[5], 2)], &["y"]);
    let model = check_bitwise(&bytes, &tensor(&[2, 3, 4], 3), |b| b.matmul_add_to_gemm(true), "batched");
    assert_eq!(op_types(&model), ["MatMul", "Add"]);
}

fn act(op: &str) -> (&str, Vec<AttributeProto>) {
    match op {
        "LeakyRelu" => (op, vec![attr_f("alpha", 0.07)]),
        _ => (op, vec![]),
    }
}

#[test]
fn activations_fuse_into_conv_gemm_and_matmul_bit_for_bit() {
    for activation in ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "HardSwish"] {
        let (op, attrs) = act(activation);
        // Conv → act.
        let nodes = vec![
            node("Conv", "conv", &["x", "w", "b"], &["c"], vec![attr_s("auto_pad", "SAME_UPPER")]),
            node(op, "act", &["c"], &["y"], attrs.clone()),
        ];
        let inits = vec![init("w", &[8, 3, 3, 3], 1), init("b", &[8], 2)];
        let bytes = model_bytes(nodes, &[2, 3, 40, 40], inits, &["y"]);
        let model = check_bitwise(&bytes, &tensor(&[2, 3, 40, 40], 3), |b| b.fuse_activations(true), op);
        assert_eq!(op_types(&model), ["Conv"], "{op}");
        assert_eq!(model.optimized().rewrites, [format!("{op} act fused into Conv conv")]);
        // Gemm (transB, C) → act, several row blocks.
        let nodes = vec![
            node("Gemm", "gemm", &["x", "w", "c"], &["g"], vec![attr_i("transB", 1), attr_f("beta", 0.5)]),
            node(op, "act", &["g"], &["y"], attrs.clone()),
        ];
        let bytes = model_bytes(nodes, &[300, 200], vec![init("w", &[70, 200], 4), init("c", &[70], 5)], &["y"]);
        let model = check_bitwise(&bytes, &tensor(&[300, 200], 6), |b| b.fuse_activations(true), op);
        assert_eq!(op_types(&model), ["Gemm"], "{op}");
        // Batched MatMul (3-D B: one product per item) → act.
        let nodes =
            vec![node("MatMul", "mm", &["x", "w"], &["p"], vec![]), node(op, "act", &["p"], &["y"], attrs.clone())];
        let bytes = model_bytes(nodes, &[3, 50, 20], vec![init("w", &[3, 20, 30], 7)], &["y"]);
        let model = check_bitwise(&bytes, &tensor(&[3, 50, 20], 8), |b| b.fuse_activations(true), op);
        assert_eq!(op_types(&model), ["MatMul"], "{op}");
    }
}

#[test]
fn activation_reading_a_shared_output_is_not_fused() {
    let nodes = vec![node("MatMul", "mm", &["x", "w"], &["p"], vec![]), node("Relu", "r", &["p"], &["y"], vec![])];
    let bytes = model_bytes(nodes, &[3, 4], vec![init("w", &[4, 2], 1)], &["y", "p"]);
    let model = check_bitwise(&bytes, &tensor(&[3, 4], 2), |b| b.optimize(true), "shared");
    assert_eq!(op_types(&model), ["MatMul", "Relu"]);
}

#[test]
fn fused_activation_on_float64_runs_the_activation_op() {
    let dims = [D::N(3), D::N(4)];
    let mut graph = graph(
        vec![node("MatMul", "mm", &["x", "w"], &["p"], vec![]), node("Relu", "r", &["p"], &["y"], vec![])],
        vec![value_info("x", DOUBLE, Some(&dims)), value_info("w", DOUBLE, Some(&[D::N(4), D::N(2)]))],
        &["y"],
    );
    graph.output = vec![value_info("y", DOUBLE, None)];
    let bytes = bytes(&model(graph, 17));
    let x =
        Tensor::from(ArrayD::from_shape_vec(IxDyn(&[3, 4]), (0..12).map(|v| f64::from(v) - 5.5).collect()).unwrap());
    let w =
        Tensor::from(ArrayD::from_shape_vec(IxDyn(&[4, 2]), vec![1.0, -1.0, 0.5, 2.0, -0.25, 1.0, 3.0, -2.0]).unwrap());
    let model = Model::from_bytes(&bytes).expect("loads");
    assert_eq!(op_types(&model), ["MatMul"]);
    let y = model.run([("x", x.clone()), ("w", w.clone())]).expect("runs").into_vec().remove(0).1;
    let got: Vec<f64> = y.view::<f64>().expect("f64").iter().copied().collect();
    let (xv, wv) = (x.view::<f64>().unwrap(), w.view::<f64>().unwrap());
    for i in 0..3 {
        for j in 0..2 {
            let sum: f64 = (0..4).map(|p| xv[[i, p]] * wv[[p, j]]).sum();
            assert_eq!(got[i * 2 + j], sum.max(0.0), "({i}, {j})");
        }
    }
}

/// The PyTorch export: every pass on against every pass off, and both
/// against PyTorch's own output.
#[test]
fn pytorch_conv_bn_net_matches_with_and_without_the_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let x = read_default(dir.join("conv_bn_net_input.npy")).expect("input").0;
    let want = f32_values(&read_default(dir.join("conv_bn_net_output.npy")).expect("output").0);
    let path = dir.join("conv_bn_net.onnx");
    let off = Model::builder().optimize(false).load(&path).expect("loads");
    let on = Model::load(&path).expect("loads");
    assert_eq!(
        op_types(&off),
        ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Relu", "Flatten", "Gemm", "Relu", "Gemm"]
    );
    assert_eq!(op_types(&on), ["Conv", "Conv", "Flatten", "Gemm", "Gemm"]);
    assert_eq!(on.optimized().rewrites.len(), 5, "{:?}", on.optimized().rewrites);
    let (got_off, got_on) = (f32_values(&run(&off, &x)[0]), f32_values(&run(&on, &x)[0]));
    for idx in 0..want.len() {
        let (a, b, w) = (got_off[idx], got_on[idx], want[idx]);
        assert!((a - w).abs() <= 1e-4 + 1e-3 * w.abs(), "unoptimised {idx}: {a} vs PyTorch {w}");
        assert!((b - w).abs() <= 1e-4 + 1e-3 * w.abs(), "optimised {idx}: {b} vs PyTorch {w}");
        assert!((a - b).abs() <= 1e-5 * (1.0 + w.abs()), "optimised vs not {idx}: {b} vs {a}");
    }
}

#[test]
fn inspect_shows_the_rewrites_and_the_optimised_plan() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conv_bn_net.onnx");
    let report = onnxi::graph::inspect::inspect_file(&path).expect("inspects");
    let text = report.to_text();
    assert!(text.contains("optimised plan: 10 nodes after constant folding, 5 after the passes\n"), "{text}");
    assert!(
        text.contains(
            "  rewrite: Conv /conv1/Conv + BatchNormalization /bn1/BatchNormalization → Conv /conv1/Conv (folded)\n"
        ),
        "{text}"
    );
    assert!(text.contains("  rewrite: Relu /Relu_2 fused into Gemm /fc1/Gemm\n"), "{text}");
    assert!(text.contains("  node: Flatten \"/Flatten\"\n"), "{text}");
    let json = report.to_json();
    assert_eq!(json["optimized"]["nodes_before"], 10);
    assert_eq!(json["optimized"]["nodes_after"], 5);
    assert_eq!(json["optimized"]["rewrites"].as_array().map(Vec::len), Some(5));
    assert_eq!(json["optimized"]["plan"][0]["op_type"], "Conv");
}
