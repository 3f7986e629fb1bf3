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

/// An ints attribute.
fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(onnxi::onnx::attribute_proto::AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// BatchNormalization parameters over `m` channels (scale, bias, mean,
/// var; var and scale kept away from 0) as initializers named `scale`,
/// `bias`, `mean`, `var`, and their values.
fn bn_params(m: usize, seed: u64) -> (Vec<TensorProto>, [Vec<f32>; 4]) {
    let scale: Vec<f32> = values(m, seed).iter().map(|v| v + 1.5).collect();
    let bias = values(m, seed + 1);
    let mean = values(m, seed + 2);
    let var: Vec<f32> = values(m, seed + 3).iter().map(|v| v + 1.2).collect();
    let inits = [("scale", &scale), ("bias", &bias), ("mean", &mean), ("var", &var)]
        .map(|(name, values)| tensor_f32(name, &[m as i64], values))
        .to_vec();
    (inits, [scale, bias, mean, var])
}

/// `(value − mean)/√(var + ε)·scale + bias` of channel `ch`, in float64,
/// and the magnitude `|value·s| + |mean·s| + |bias|` its rounding is
/// relative to (`value` is given as its magnitude too).
fn bn_reference(value: f64, magnitude: f64, ch: usize, bn: &[Vec<f32>; 4], eps: f64) -> (f64, f64) {
    let [scale, bias, mean, var] = bn.each_ref().map(|values| f64::from(values[ch]));
    let s = scale / (var + eps).sqrt();
    ((value - mean) * s + bias, (magnitude * s).abs() + (mean * s).abs() + bias.abs())
}

/// Checks the model loaded with every pass off and with only BatchNormalization
/// folding on against a float64 reference (value, magnitude) per element:
/// each within a few float32 ULP of the magnitude the result is rounded
/// from; returns the folded model.
fn check_folded(bytes: &[u8], x: &Tensor, want: &[(f64, f64)], op_types_off: &[&str], what: &str) -> Model {
    let off = load(bytes, Model::builder().optimize(false));
    let on = load(bytes, Model::builder().optimize(false).fold_batch_norm(true));
    assert_eq!(op_types(&off), op_types_off, "{what}");
    assert_eq!(op_types(&on), op_types_off[..1], "{what}");
    let (got_off, got_on) = (f32_values(&run(&off, x)[0]), f32_values(&run(&on, x)[0]));
    assert_eq!(got_on.len(), want.len(), "{what}");
    assert_eq!(got_off.len(), want.len(), "{what}");
    for (idx, &(r, magnitude)) in want.iter().enumerate() {
        // 8 ULP of the magnitude: the float32 sums round each partial
        // sum, the folded weights are rounded once more.
        let tolerance = 8.0 * f64::from(f32::EPSILON) * magnitude.max(f64::from(f32::MIN_POSITIVE));
        let (a, b) = (f64::from(got_off[idx]), f64::from(got_on[idx]));
        assert!((a - r).abs() <= tolerance, "{what}: unfolded {idx}: {a} vs {r} (±{tolerance})");
        assert!((b - r).abs() <= tolerance, "{what}: folded {idx}: {b} vs {r} (±{tolerance})");
    }
    on
}

#[test]
fn batch_norm_folds_into_gemm_within_a_few_ulp() {
    // transB either way; no C, C of [N], [1, N], [M, 1] and [M, N]; alpha and beta.
    let (m, k, n) = (37, 23, 11);
    let eps = 1e-5f32;
    for (trans_b, c_shape, alpha, beta) in [
        (false, None, 1.0, 1.0),
        (true, None, 0.5, 1.0),
        (false, Some(vec![n]), 1.0, 1.0),
        (true, Some(vec![n]), 1.5, 0.25),
        (true, Some(vec![1, n]), 1.0, 2.0),
        (false, Some(vec![m, 1]), 1.0, -0.5),
        (true, Some(vec![m, n]), 0.75, 1.0),
    ] {
        let what = format!("Gemm transB={trans_b} C {c_shape:?} alpha {alpha} beta {beta}");
        let b_shape = if trans_b { [n, k] } else { [k, n] };
        let mut inits = vec![init("w", &b_shape, 21)];
        let mut gemm_inputs = vec!["x", "w"];
        if let Some(shape) = &c_shape {
            inits.push(init("c", shape, 22));
            gemm_inputs.push("c");
        }
        let (bn_inits, bn) = bn_params(n, 23);
        inits.extend(bn_inits);
        let attrs = vec![attr_i("transB", i64::from(trans_b)), attr_f("alpha", alpha), attr_f("beta", beta)];
        let nodes = vec![
            node("Gemm", "fc", &gemm_inputs, &["g"], attrs),
            node(
                "BatchNormalization",
                "bn",
                &["g", "scale", "bias", "mean", "var"],
                &["y"],
                vec![attr_f("epsilon", eps)],
            ),
        ];
        let bytes = model_bytes(nodes, &[m as i64, k as i64], inits, &["y"]);
        let x = tensor(&[m, k], 24);
        let (xv, wv) = (f32_values(&x), values(k * n, 21));
        let cv = c_shape.as_ref().map(|shape| values(shape.iter().product(), 22));
        let mut want = Vec::new();
        for row in 0..m {
            for col in 0..n {
                let (mut sum, mut magnitude) = (0.0, 0.0);
                for p in 0..k {
                    let w = if trans_b { wv[col * k + p] } else { wv[p * n + col] };
                    let term = f64::from(alpha) * f64::from(xv[row * k + p]) * f64::from(w);
                    sum += term;
                    magnitude += term.abs();
                }
                if let (Some(shape), Some(cv)) = (&c_shape, &cv) {
                    let c = match shape.as_slice() {
                        [_] | [1, _] => cv[col],
                        [_, 1] => cv[row],
                        _ => cv[row * n + col],
                    };
                    let term = f64::from(beta) * f64::from(c);
                    sum += term;
                    magnitude += term.abs();
                }
                want.push(bn_reference(sum, magnitude, col, &bn, f64::from(eps)));
            }
        }
        let on = check_folded(&bytes, &x, &want, &["Gemm", "BatchNormalization"], &what);
        assert_eq!(on.optimized().rewrites, ["Gemm fc + BatchNormalization bn → Gemm fc (folded)"], "{what}");
    }
}

/// ConvTranspose (1-D, `group`, `stride`) then BatchNormalization, in
/// float64 by scattering: input channel `ci` of group `ci / (C/group)`
/// adds `x·W[ci, j, kk]` to output channel `g·(M/group) + j` at
/// `i·stride + kk`.
#[allow(clippy::too_many_arguments)]
fn conv_transpose_bn_reference(
    x: &[f32],
    (n, c, len): (usize, usize, usize),
    w: &[f32],
    (m_group, k): (usize, usize),
    group: usize,
    stride: usize,
    b: Option<&[f32]>,
    bn: &[Vec<f32>; 4],
    eps: f64,
) -> Vec<(f64, f64)> {
    let m = m_group * group;
    let out_len = stride * (len - 1) + k;
    let mut sums = vec![(0.0f64, 0.0f64); n * m * out_len];
    for img in 0..n {
        for ci in 0..c {
            let g = ci / (c / group);
            for j in 0..m_group {
                for i in 0..len {
                    for kk in 0..k {
                        let term = f64::from(x[(img * c + ci) * len + i]) * f64::from(w[(ci * m_group + j) * k + kk]);
                        let out = &mut sums[(img * m + g * m_group + j) * out_len + i * stride + kk];
                        out.0 += term;
                        out.1 += term.abs();
                    }
                }
            }
        }
    }
    sums.iter()
        .enumerate()
        .map(|(idx, &(sum, magnitude))| {
            let oc = idx / out_len % m;
            let bias = b.map_or(0.0, |b| f64::from(b[oc]));
            bn_reference(sum + bias, magnitude + bias.abs(), oc, bn, eps)
        })
        .collect()
}

#[test]
fn batch_norm_folds_into_conv_transpose_per_output_channel() {
    let (n, len, k, stride, eps) = (2, 9, 3, 2, 1e-3f32);
    // (C, M/group, group, bias): grouped with C/group ≠ M/group, so a
    // wrong channel mapping changes the result.
    for (c, m_group, group, with_bias) in [(4, 3, 1, true), (6, 2, 3, false), (4, 5, 2, true)] {
        let what = format!("ConvTranspose C={c} M/group={m_group} group={group} bias={with_bias}");
        let m = m_group * group;
        let mut inits = vec![init("w", &[c, m_group, k], 31)];
        let mut inputs = vec!["x", "w"];
        if with_bias {
            inits.push(init("b", &[m], 32));
            inputs.push("b");
        }
        let (bn_inits, bn) = bn_params(m, 33);
        inits.extend(bn_inits);
        let attrs = vec![attr_i("group", group as i64), attr_ints("strides", &[stride as i64])];
        let nodes = vec![
            node("ConvTranspose", "up", &inputs, &["t"], attrs),
            node(
                "BatchNormalization",
                "bn",
                &["t", "scale", "bias", "mean", "var"],
                &["y"],
                vec![attr_f("epsilon", eps)],
            ),
        ];
        let bytes = model_bytes(nodes, &[n as i64, c as i64, len as i64], inits, &["y"]);
        let x = tensor(&[n, c, len], 34);
        let want = conv_transpose_bn_reference(
            &f32_values(&x),
            (n, c, len),
            &values(c * m_group * k, 31),
            (m_group, k),
            group,
            stride,
            with_bias.then(|| values(m, 32)).as_deref(),
            &bn,
            f64::from(eps),
        );
        let on = check_folded(&bytes, &x, &want, &["ConvTranspose", "BatchNormalization"], &what);
        assert_eq!(
            on.optimized().rewrites,
            ["ConvTranspose up + BatchNormalization bn → ConvTranspose up (folded)"],
            "{what}"
        );
    }
}

#[test]
fn batch_norm_not_folded_into_gemm_when_its_params_or_c_are_not_constants() {
    let n = 3;
    let (bn_inits, _) = bn_params(n, 41);
    // The BatchNormalization's mean is a graph input.
    let nodes = vec![
        node("Gemm", "fc", &["x", "w"], &["g"], vec![]),
        node("BatchNormalization", "bn", &["g", "scale", "bias", "x_mean", "var"], &["y"], vec![]),
    ];
    let mut inits = vec![init("w", &[4, n], 42)];
    inits.extend(bn_inits.iter().cloned());
    let dims = [D::N(2), D::N(4)];
    let mut g = graph(
        nodes,
        vec![value_info("x", FLOAT, Some(&dims)), value_info("x_mean", FLOAT, Some(&[D::N(n as i64)]))],
        &["y"],
    );
    g.initializer = inits;
    let loaded = Model::from_bytes(&bytes(&model(g, 17))).expect("loads");
    assert_eq!(op_types(&loaded), ["Gemm", "BatchNormalization"]);
    // Gemm's C is a graph input.
    let nodes = vec![
        node("Gemm", "fc", &["x", "w", "c"], &["g"], vec![]),
        node("BatchNormalization", "bn", &["g", "scale", "bias", "mean", "var"], &["y"], vec![]),
    ];
    let mut inits = vec![init("w", &[4, n], 42)];
    inits.extend(bn_inits);
    let mut g = graph(
        nodes,
        vec![value_info("x", FLOAT, Some(&dims)), value_info("c", FLOAT, Some(&[D::N(n as i64)]))],
        &["y"],
    );
    g.initializer = inits;
    let loaded = Model::from_bytes(&bytes(&model(g, 17))).expect("loads");
    assert_eq!(op_types(&loaded), ["Gemm", "BatchNormalization"]);
}

#[test]
fn inspect_shows_batch_norm_folded_into_gemm_and_conv_transpose() {
    let (bn_inits, _) = bn_params(4, 51);
    let mut inits = vec![init("w", &[4, 6], 52), init("c", &[4], 53), init("wt", &[1, 4, 2], 54)];
    inits.extend(bn_inits);
    inits.extend(bn_params(4, 55).0.into_iter().map(|mut tensor| {
        tensor.name = tensor.name.map(|name| format!("{name}2"));
        tensor
    }));
    let nodes = vec![
        node("Gemm", "fc", &["x", "w", "c"], &["g"], vec![attr_i("transB", 1)]),
        node("BatchNormalization", "bn", &["g", "scale", "bias", "mean", "var"], &["h"], vec![]),
        node("Unsqueeze", "unsq", &["h", "axis0"], &["u"], vec![]),
        node("ConvTranspose", "up", &["u", "wt"], &["t"], vec![]),
        node("BatchNormalization", "bn2", &["t", "scale2", "bias2", "mean2", "var2"], &["y"], vec![]),
    ];
    inits.push(TensorProto {
        name: Some("axis0".into()),
        dims: vec![1],
        data_type: Some(INT64),
        int64_data: vec![0],
        ..Default::default()
    });
    // x: [1, 6] → Gemm [1, 4] → Unsqueeze [1, 1, 4] → ConvTranspose [1, 4, 5].
    let bytes = model_bytes(nodes, &[1, 6], inits, &["y"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gemm_bn_up_bn.onnx");
    std::fs::write(&path, &bytes).expect("writes");
    let text = onnxi::graph::inspect::inspect_file(&path).expect("inspects").to_text();
    assert!(text.contains("optimised plan: 5 nodes after constant folding, 3 after the passes\n"), "{text}");
    assert!(text.contains("  rewrite: Gemm fc + BatchNormalization bn → Gemm fc (folded)\n"), "{text}");
    assert!(
        text.contains("  rewrite: ConvTranspose up + BatchNormalization bn2 → ConvTranspose up (folded)\n"),
        "{text}"
    );
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
