//! The data-movement and shape ops inside whole graphs: a PyTorch-style
//! shape subgraph folds at load, and broken graphs fail with an error that
//! names the node (never a panic or an unbounded allocation).

mod common;

use common::*;
use onnxi::onnx::{GraphProto, TensorProto};
use onnxi::{Error, Model, Tensor};

fn tensor_i64(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![values.len() as i64],
        data_type: Some(INT64),
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

fn err_text<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.expect_err("expected an error").to_string()
}

fn ops(model: &Model) -> Vec<String> {
    model.nodes().map(|(_, op, _)| op.to_string()).collect()
}

/// `x.reshape(w.shape[0], -1)` as the TorchScript exporter writes it:
/// Shape → Gather → Unsqueeze → Concat → Reshape. With `w` an initializer
/// the whole shape computation runs once at load, leaving the Reshape.
#[test]
fn a_pytorch_shape_subgraph_over_a_constant_folds_at_load() {
    let nodes = vec![
        node("Shape", "shape", &["w"], &["w_shape"], vec![]),
        node("Gather", "gather", &["w_shape", "zero"], &["rows"], vec![attr_i("axis", 0)]),
        node("Unsqueeze", "unsqueeze", &["rows", "axes"], &["rows_1d"], vec![]),
        node("Concat", "concat", &["rows_1d", "minus_one"], &["target"], vec![attr_i("axis", 0)]),
        node("Reshape", "reshape", &["x", "target"], &["y"], vec![]),
    ];
    let mut g = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(6)]))], &["y"]);
    let zero =
        TensorProto { name: Some("zero".into()), data_type: Some(INT64), int64_data: vec![0], ..Default::default() };
    g.initializer =
        vec![tensor_f32("w", &[3, 5], &[0.0; 15]), zero, tensor_i64("axes", &[0]), tensor_i64("minus_one", &[-1])];
    let proto = model(g, 17);
    let folded = Model::from_bytes(&bytes(&proto)).unwrap();
    assert_eq!(ops(&folded), ["Reshape"]);
    let unfolded = Model::builder().fold_constants(false).from_bytes(&bytes(&proto)).unwrap();
    assert_eq!(ops(&unfolded).len(), 5);
    let x = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let (a, b) = (folded.run([("x", x.clone())]).unwrap(), unfolded.run([("x", x)]).unwrap());
    assert_eq!(a, b);
    assert_eq!(a["y"].shape(), [3, 2]);
    assert_eq!(a["y"].to_f64_vec(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

fn int_graph(nodes: Vec<onnxi::onnx::NodeProto>, inputs: Vec<onnxi::onnx::ValueInfoProto>) -> GraphProto {
    graph(nodes, inputs, &["y"])
}

/// A ConstantOfShape of [2^40, 2^40] is refused with a typed error: at load
/// when the shape is a constant, at run time when it is an input.
#[test]
fn an_absurd_constant_of_shape_is_an_error_not_an_abort() {
    let nodes = vec![node("ConstantOfShape", "huge", &["shape"], &["y"], vec![])];
    let mut g = int_graph(nodes.clone(), vec![]);
    g.initializer = vec![tensor_i64("shape", &[1 << 40, 1 << 40])];
    let text = err_text(Model::from_bytes(&bytes(&model(g, 17))));
    assert!(text.contains("huge") && text.contains("size limit"), "{text}");

    let g = int_graph(nodes, vec![value_info("shape", INT64, Some(&[D::N(2)]))]);
    let loaded = Model::from_bytes(&bytes(&model(g, 17))).unwrap();
    let shape = Tensor::from(ndarray::arr1(&[1i64 << 40, 1 << 40]));
    let text = err_text(loaded.run([("shape", shape)]));
    assert!(text.contains("huge") && text.contains("size limit"), "{text}");
    // The limit is the model's max_tensor_bytes.
    let small = Model::builder().max_tensor_bytes(1024).from_bytes(&bytes(&model(
        int_graph(
            vec![node("ConstantOfShape", "c", &["shape"], &["y"], vec![])],
            vec![value_info("shape", INT64, Some(&[D::N(1)]))],
        ),
        17,
    )));
    let small = small.unwrap();
    assert!(small.run([("shape", Tensor::from(ndarray::arr1(&[256i64])))]).is_ok());
    assert!(err_text(small.run([("shape", Tensor::from(ndarray::arr1(&[257i64])))])).contains("size limit"));
}

/// Expand, Tile, Range and Pad sized by run-time inputs obey the limit too.
#[test]
fn ops_sized_at_run_time_refuse_absurd_sizes() {
    let x = || value_info("x", FLOAT, Some(&[D::N(1)]));
    let cases: Vec<(&str, Vec<onnxi::onnx::NodeProto>, Tensor)> = vec![
        ("Expand", vec![node("Expand", "n", &["x", "s"], &["y"], vec![])], Tensor::from(ndarray::arr1(&[1i64 << 40]))),
        ("Tile", vec![node("Tile", "n", &["x", "s"], &["y"], vec![])], Tensor::from(ndarray::arr1(&[1i64 << 40]))),
        ("Pad", vec![node("Pad", "n", &["x", "s"], &["y"], vec![])], Tensor::from(ndarray::arr1(&[0i64, 1 << 40]))),
    ];
    for (op, nodes, sizes) in cases {
        let g = int_graph(nodes, vec![x(), value_info("s", INT64, Some(&[D::N(sizes.len() as i64)]))]);
        let loaded = Model::from_bytes(&bytes(&model(g, 17))).unwrap();
        let text = err_text(loaded.run([("x", f32s(&[1.0])), ("s", sizes)]));
        assert!(text.contains(op) && text.contains("size limit"), "{text}");
    }
    let scalar = |name: &str| value_info(name, INT64, Some(&[]));
    let g = int_graph(
        vec![node("Range", "n", &["a", "b", "c"], &["y"], vec![])],
        vec![scalar("a"), scalar("b"), scalar("c")],
    );
    let loaded = Model::from_bytes(&bytes(&model(g, 17))).unwrap();
    let t = |v: i64| Tensor::from(ndarray::arr0(v));
    let text = err_text(loaded.run([("a", t(0)), ("b", t(i64::MAX)), ("c", t(1))]));
    assert!(text.contains("Range") && text.contains("size limit"), "{text}");
}

/// Broken graphs: each an error naming the node and the reason.
#[test]
fn bad_indices_shapes_and_steps_are_errors_naming_the_node() {
    // Gather index out of range.
    let g = int_graph(
        vec![node("Gather", "pick", &["x", "i"], &["y"], vec![])],
        vec![value_info("x", FLOAT, Some(&[D::N(3)])), value_info("i", INT64, Some(&[D::N(1)]))],
    );
    let loaded = Model::from_bytes(&bytes(&model(g, 13))).unwrap();
    let text = err_text(loaded.run([("x", f32s(&[1.0, 2.0, 3.0])), ("i", Tensor::from(ndarray::arr1(&[7i64])))]));
    assert!(text.contains("pick") && text.contains("index 7 is out of range for axis 0 of size 3"), "{text}");

    // Reshape to an impossible shape.
    let mut g = int_graph(
        vec![node("Reshape", "reshape", &["x", "s"], &["y"], vec![])],
        vec![value_info("x", FLOAT, Some(&[D::P("n")]))],
    );
    g.initializer = vec![tensor_i64("s", &[4, -1])];
    let loaded = Model::from_bytes(&bytes(&model(g, 13))).unwrap();
    let text = err_text(loaded.run([("x", f32s(&[1.0, 2.0, 3.0]))]));
    assert!(text.contains("reshape") && text.contains("cannot infer the -1"), "{text}");

    // Concat of mismatched dims.
    let g = int_graph(
        vec![node("Concat", "join", &["a", "b"], &["y"], vec![attr_i("axis", 0)])],
        vec![value_info("a", FLOAT, Some(&[D::P("n")])), value_info("b", FLOAT, Some(&[D::P("m"), D::N(1)]))],
    );
    let loaded = Model::from_bytes(&bytes(&model(g, 13))).unwrap();
    let b = Tensor::from(ndarray::array![[1.0f32]]);
    let text = err_text(loaded.run([("a", f32s(&[1.0])), ("b", b)]));
    assert!(text.contains("join") && text.contains("does not match"), "{text}");

    // Slice with a zero step.
    let mut g = int_graph(
        vec![node("Slice", "cut", &["x", "starts", "ends", "axes", "steps"], &["y"], vec![])],
        vec![value_info("x", FLOAT, Some(&[D::P("n")]))],
    );
    g.initializer =
        vec![tensor_i64("starts", &[0]), tensor_i64("ends", &[2]), tensor_i64("axes", &[0]), tensor_i64("steps", &[0])];
    let loaded = Model::from_bytes(&bytes(&model(g, 13))).unwrap();
    let text = err_text(loaded.run([("x", f32s(&[1.0, 2.0, 3.0]))]));
    assert!(text.contains("cut") && text.contains("step is 0"), "{text}");

    // BatchNormalization in training mode is refused at load.
    let mut g = int_graph(
        vec![node("BatchNormalization", "bn", &["x", "p", "p", "p", "p"], &["y"], vec![attr_i("training_mode", 1)])],
        vec![value_info("x", FLOAT, Some(&[D::N(1), D::N(1)]))],
    );
    g.initializer = vec![tensor_f32("p", &[1], &[1.0])];
    let text = err_text(Model::from_bytes(&bytes(&model(g, 15))));
    assert!(text.contains("bn") && text.contains("training mode is not supported"), "{text}");
}
