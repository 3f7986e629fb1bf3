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

/// A small deterministic sweep of shapes and index values (in and out of
/// range, some shapes that do not fit) through every kernel here: each
/// call returns a value or a typed error, never panics; and where
/// GatherND reads what ScatterND wrote at distinct in-range positions, it
/// reads the updates back.
#[test]
fn random_shapes_and_indices_give_values_or_errors_never_panics() {
    use onnxi::ops::{depth_space, one_hot, reverse_sequence, scatter, select, unique};
    let par = onnxi::kernels::Parallel::serial();
    let ctx = onnxi::ops::ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 16 };
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut round_trips = 0;
    for _ in 0..3000 {
        let rank = next(4) as usize;
        let shape: Vec<usize> = (0..rank).map(|_| next(4) as usize).collect();
        let n: usize = shape.iter().product();
        let data = Tensor::from(ArrayD::from_shape_vec(IxDyn(&shape), (0..n as i32).collect()).unwrap());
        let index_rank = 1 + next(3) as usize;
        let mut index_shape: Vec<usize> = (0..index_rank).map(|_| next(3) as usize).collect();
        if next(2) == 0 {
            *index_shape.last_mut().unwrap() = 1 + next(rank as u64 + 1) as usize;
        }
        let n_indices: usize = index_shape.iter().product();
        let values: Vec<i64> = (0..n_indices).map(|_| next(9) as i64 - 4).collect();
        let indices = Tensor::from(ArrayD::from_shape_vec(IxDyn(&index_shape), values).unwrap());
        let update_shape: Vec<usize> = if next(3) == 0 {
            index_shape.clone()
        } else {
            let k = *index_shape.last().unwrap();
            index_shape[..index_rank - 1].iter().chain(shape.get(k..).unwrap_or(&[])).copied().collect()
        };
        let m: usize = update_shape.iter().product();
        let updates = Tensor::from(ArrayD::from_shape_vec(IxDyn(&update_shape), vec![-1i32; m]).unwrap());
        let axis = next(5) as i64 - 2;
        let reduction = [scatter::Reduction::None, scatter::Reduction::Add, scatter::Reduction::Max][next(3) as usize];
        let written = scatter::scatter_nd(data.clone(), &indices, &updates, reduction);
        let _ = scatter::scatter_elements("ScatterElements", data.clone(), &indices, &updates, axis, reduction);
        let batch_dims = next(2) as i64;
        let read = scatter::gather_nd(&data, &indices, batch_dims, &ctx);
        if let (Ok(written), Ok(_), scatter::Reduction::None, 0) = (&written, &read, reduction, batch_dims) {
            let k = *index_shape.last().unwrap();
            let tuples: Vec<Vec<i64>> = indices
                .view::<i64>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>()
                .chunks(k)
                .map(|c| c.iter().zip(&shape).map(|(&i, &d)| if i < 0 { i + d as i64 } else { i }).collect())
                .collect();
            let distinct = tuples.iter().enumerate().all(|(a, t)| tuples[..a].iter().all(|u| u != t));
            if distinct {
                let back = scatter::gather_nd(written, &indices, 0, &ctx).unwrap();
                assert!(back.view::<i32>().unwrap().iter().all(|&v| v == -1), "{shape:?} {index_shape:?}");
                round_trips += usize::from(!back.is_empty());
            }
        }
        let condition = Tensor::from(ndarray::Array1::from_iter((0..next(5)).map(|_| next(2) == 0)));
        let _ = select::compress(&data, &condition, (next(2) == 0).then_some(axis), &ctx);
        let _ = select::non_zero(&data, &ctx);
        let _ = unique::unique(&data, (next(2) == 0).then_some(axis), next(2) == 0, &ctx);
        let depth = Tensor::from(ndarray::arr0(next(6) as i64 - 1));
        let _ = one_hot::one_hot(&indices, &depth, &Tensor::from(ndarray::array![0u8, 1]), axis, next(2) == 0, &ctx);
        let lens = Tensor::from(ndarray::Array1::from_iter(
            (0..shape.get(1).copied().unwrap_or(0)).map(|_| next(5) as i64 - 1),
        ));
        let _ = reverse_sequence::reverse_sequence(&data, &lens, 1, 0);
        for direction in [depth_space::Direction::SpaceToDepth, depth_space::Direction::DepthToSpace] {
            let op = depth_space::DepthSpace {
                direction,
                blocksize: 1 + next(3) as usize,
                mode: depth_space::Mode::Crd,
                dtypes: &[],
            };
            let _ = depth_space::depth_space(&op, &data);
        }
    }
    // The sweep reaches a non-empty round trip often enough to mean
    // something (22 times with this seed).
    assert!(round_trips >= 20, "only {round_trips} round trips");
}
