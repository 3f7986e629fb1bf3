//! The scatter/gather and selection ops inside whole graphs: text moves
//! through them, a bad index or an absurd run-time size is a typed error
//! naming the node (at load when the node folds, at run time otherwise),
//! and attributes newer than the model's opset fail the load.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn, array};
use onnxi::onnx::TensorProto;
use onnxi::tensor::Str;
use onnxi::{Error, Model, Tensor};

const STRING: i32 = 8;

fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(INT64),
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

fn strs(shape: &[usize], values: &[&str]) -> Tensor {
    Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values.iter().map(|&v| Str::from(v)).collect()).unwrap())
}

fn err_text<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.expect_err("expected an error").to_string()
}

/// ScatterND writes text, GatherND reads it back, Compress and Unique
/// select it: the strings survive every step (and debug builds check each
/// node's inferred type against what it produced).
#[test]
fn text_moves_through_scatter_gather_compress_and_unique() {
    let nodes = vec![
        node("ScatterND", "scatter", &["x", "at", "words"], &["scattered"], vec![]),
        node("GatherND", "gather", &["scattered", "pick"], &["picked"], vec![]),
        node("Compress", "compress", &["picked", "keep"], &["kept"], vec![attr_i("axis", 0)]),
        node("Unique", "unique", &["kept"], &["y", "", "", "counts"], vec![attr_i("sorted", 0)]),
    ];
    let inputs = vec![
        value_info("x", STRING, Some(&[D::N(2), D::N(2)])),
        value_info("words", STRING, Some(&[D::N(2)])),
        value_info("keep", 9, Some(&[D::N(3)])),
    ];
    let mut g = graph(nodes, inputs, &["y", "counts"]);
    g.initializer = vec![tensor_i64("at", &[2, 2], &[0, 1, -1, 0]), tensor_i64("pick", &[3, 2], &[1, 0, 0, 1, -1, -2])];
    let loaded = Model::from_bytes(&bytes(&model(g, 18))).unwrap();
    let out = loaded
        .run([
            ("x", strs(&[2, 2], &["a", "b", "c", "d"])),
            ("words", strs(&[2], &["é", "中"])),
            ("keep", Tensor::from(array![true, true, true])),
        ])
        .unwrap();
    // scattered = [["a", "é"], ["中", "d"]]; picked = ["中", "é", "中"].
    assert_eq!(out["y"], strs(&[2], &["中", "é"]));
    assert_eq!(out["counts"], Tensor::from(array![2i64, 1]));
}

/// A OneHot whose constant depth asks for 2^40 columns is refused at load
/// (the node folds); with depth an input, on the run that passes it.
#[test]
fn an_absurd_one_hot_depth_is_a_size_error_not_an_allocation() {
    let nodes = vec![node("OneHot", "huge", &["indices", "depth", "values"], &["y"], vec![])];
    let mut g = graph(nodes.clone(), vec![], &["y"]);
    g.initializer = vec![
        tensor_i64("indices", &[2], &[0, 1]),
        tensor_i64("depth", &[], &[1 << 40]),
        tensor_f32("values", &[2], &[0.0, 1.0]),
    ];
    let text = err_text(Model::from_bytes(&bytes(&model(g, 11))));
    assert!(text.contains("huge") && text.contains("size limit"), "{text}");

    let inputs = vec![value_info("depth", INT64, Some(&[]))];
    let mut g = graph(nodes, inputs, &["y"]);
    g.initializer = vec![tensor_i64("indices", &[2], &[0, 1]), tensor_f32("values", &[2], &[0.0, 1.0])];
    let loaded = Model::from_bytes(&bytes(&model(g, 11))).unwrap();
    let text = err_text(loaded.run([("depth", Tensor::from(ndarray::arr0(1i64 << 40)))]));
    assert!(text.contains("huge") && text.contains("size limit"), "{text}");
    let small = loaded.run([("depth", Tensor::from(ndarray::arr0(3i64)))]).unwrap();
    assert_eq!(small["y"], Tensor::from(array![[1.0f32, 0.0, 0.0], [0.0, 1.0, 0.0]].into_dyn()));
}

/// An index out of range is a run error naming the node, the op, the index
/// and the axis.
#[test]
fn a_bad_index_names_the_node_and_the_index() {
    for (op, indices_dims, updates_dims) in
        [("ScatterND", vec![1i64, 2], vec![1i64]), ("ScatterElements", vec![1, 1], vec![1, 1])]
    {
        let nodes = vec![node(op, "writer", &["x", "at", "u"], &["y"], attr_i_if(op, "axis", 1))];
        let inputs = vec![
            value_info("x", FLOAT, Some(&[D::N(2), D::N(3)])),
            value_info("at", INT64, Some(&indices_dims.iter().map(|&d| D::N(d)).collect::<Vec<_>>())),
            value_info("u", FLOAT, Some(&updates_dims.iter().map(|&d| D::N(d)).collect::<Vec<_>>())),
        ];
        let loaded = Model::from_bytes(&bytes(&model(graph(nodes, inputs, &["y"]), 18))).unwrap();
        let at = ArrayD::from_shape_vec(IxDyn(&indices_dims.iter().map(|&d| d as usize).collect::<Vec<_>>()), {
            if op == "ScatterND" { vec![0i64, 3] } else { vec![3i64] }
        })
        .unwrap();
        let u = ArrayD::from_elem(IxDyn(&updates_dims.iter().map(|&d| d as usize).collect::<Vec<_>>()), 1.0f32);
        let x = ArrayD::<f32>::zeros(IxDyn(&[2, 3]));
        let text = err_text(loaded.run([("x", Tensor::from(x)), ("at", Tensor::from(at)), ("u", Tensor::from(u))]));
        assert!(
            text.contains("writer") && text.contains(&format!("{op}: index 3 is out of range for axis 1 of size 3")),
            "{text}"
        );
    }
}

fn attr_i_if(op: &str, name: &str, value: i64) -> Vec<onnxi::onnx::AttributeProto> {
    if op == "ScatterElements" { vec![attr_i(name, value)] } else { Vec::new() }
}

/// `reduction` exists from opset 16 (max and min from 18): a model of an
/// older opset that sets it fails the load instead of being ignored.
#[test]
fn reductions_newer_than_the_opset_fail_the_load() {
    let load = |op: &str, reduction: &str, opset: i64| {
        let nodes = vec![node(op, "s", &["x", "at", "u"], &["y"], vec![attr_s("reduction", reduction)])];
        let inputs = vec![
            value_info("x", FLOAT, Some(&[D::N(2)])),
            value_info("at", INT64, Some(&[D::N(1), D::N(1)])),
            value_info("u", FLOAT, Some(&[D::N(1)])),
        ];
        Model::from_bytes(&bytes(&model(graph(nodes, inputs, &["y"]), opset)))
    };
    assert!(load("ScatterND", "add", 16).is_ok());
    assert!(err_text(load("ScatterND", "add", 13)).contains("reduction"));
    assert!(err_text(load("ScatterND", "max", 16)).contains("unknown reduction \"max\" at version 16"));
    assert!(load("ScatterND", "max", 18).is_ok());
    assert!(err_text(load("Scatter", "add", 10)).contains("reduction"));
}

/// A type the op's schema lacks at the model's opset fails the load, not
/// the first run: bfloat16 reaches EyeLike at 22, OneHot's values at 28.
#[test]
fn types_newer_than_the_opset_fail_the_load() {
    const BFLOAT16: i32 = 16;
    let eye = |opset| {
        let nodes = vec![node("EyeLike", "eye", &["x"], &["y"], vec![])];
        Model::from_bytes(&bytes(&model(
            graph(nodes, vec![value_info("x", BFLOAT16, Some(&[D::N(2), D::N(2)]))], &["y"]),
            opset,
        )))
    };
    assert!(err_text(eye(21)).contains("EyeLike: unsupported dtype bfloat16"));
    assert!(eye(22).is_ok());
    let one_hot = |opset| {
        let nodes = vec![node("OneHot", "hot", &["i", "d", "v"], &["y"], vec![])];
        let inputs = vec![
            value_info("i", INT64, Some(&[D::N(2)])),
            value_info("d", INT64, Some(&[])),
            value_info("v", BFLOAT16, Some(&[D::N(2)])),
        ];
        Model::from_bytes(&bytes(&model(graph(nodes, inputs, &["y"]), opset)))
    };
    assert!(err_text(one_hot(27)).contains("OneHot: unsupported dtype bfloat16"));
    assert!(one_hot(28).is_ok());
}
