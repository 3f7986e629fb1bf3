//! The loading and running contract of the public API (issue 2): graph
//! validation, storage forms, opset semantics, input checks, errors.

// onnxi::Error carries names for its messages; its size is fine in tests.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn, array};
use onnxi::onnx::{GraphProto, OperatorSetIdProto, StringStringEntryProto, TensorProto};
use onnxi::{Error, LoadError, Model, RunError, Tensor};

fn load(model: &onnxi::onnx::ModelProto) -> Result<Model, Error> {
    Model::from_bytes(&bytes(model))
}

fn load_err(model: &onnxi::onnx::ModelProto) -> LoadError {
    match load(model) {
        Err(Error::Load { source, .. }) => source,
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn nodes_listed_out_of_order_run_in_dependency_order() {
    let nodes = vec![node("Sigmoid", "second", &["a"], &["y"], vec![]), node("Relu", "first", &["x"], &["a"], vec![])];
    let model = load(&model(graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(3)]))], &["y"]), 13)).unwrap();
    let out = model.run([("x", f32s(&[-1.0, 0.0, 2.0]))]).unwrap();
    let y = out["y"].as_f32().unwrap();
    let expected = [0.5f64, 0.5, 1.0 / (1.0 + (-2.0f64).exp())];
    for (got, want) in y.iter().zip(expected) {
        assert!((f64::from(*got) - want).abs() < 1e-7, "{got} vs {want}");
    }
    let order: Vec<&str> = model.nodes().map(|(name, _, _)| name).collect();
    assert_eq!(order, ["first", "second"]);
}

#[test]
fn a_cycle_is_refused_naming_a_node_in_it() {
    let nodes = vec![node("Relu", "left", &["c"], &["b"], vec![]), node("Relu", "right", &["b"], &["c"], vec![])];
    let err = load_err(&model(graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(1)]))], &["c"]), 13));
    assert!(matches!(&err, LoadError::Cycle { node, .. } if node == "left" || node == "right"), "{err}");
}

#[test]
fn an_input_nobody_produces_is_named() {
    let nodes = vec![node("Relu", "lonely", &["ghost"], &["y"], vec![])];
    let err = load_err(&model(graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(1)]))], &["y"]), 13));
    assert_eq!(
        err.to_string(),
        "node \"lonely\" (op Relu): input \"ghost\" is not produced by any node, initializer or graph input"
    );
}

#[test]
fn two_producers_of_one_value_are_refused() {
    let nodes = vec![node("Relu", "one", &["x"], &["y"], vec![]), node("Tanh", "two", &["x"], &["y"], vec![])];
    let err = load_err(&model(graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(1)]))], &["y"]), 13));
    assert!(matches!(&err, LoadError::DuplicateProducer { value, .. } if value == "y"), "{err}");
    assert!(err.to_string().contains("\"one\"") && err.to_string().contains("\"two\""), "{err}");
}

#[test]
fn unknown_op_names_op_domain_opset_and_what_onnxi_has() {
    let err = load_err(&single_op("TfIdfVectorizer", vec![], &[D::N(2)], 20));
    let text = err.to_string();
    for needle in ["\"TfIdfVectorizer\"", "domain \"\"", "opset 20", "Relu", "Softmax"] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}

#[test]
fn opset_older_than_the_first_version_and_newer_than_known_are_refused() {
    let err = load_err(&single_op("Unsqueeze", vec![], &[D::N(2)], 0));
    assert!(matches!(err, LoadError::InvalidOpsetVersion { .. }), "{err}");
    let err = load_err(&single_op("Relu", vec![], &[D::N(2)], 999));
    assert!(matches!(&err, LoadError::OpsetTooNew { opset: 999, max: 28, .. }), "{err}");
}

/// Issue 14: a future opset is named as such, not as a missing version of
/// the op.
#[test]
fn a_future_opset_says_which_opsets_onnxi_knows() {
    let err = load_err(&single_op("Relu", vec![], &[D::N(2)], 30));
    assert_eq!(
        err.to_string(),
        "node \"the_node\" (op Relu): the model imports default-domain opset 30, but onnxi knows opsets up to 28"
    );
    assert_eq!(onnxi::ops::MAX_OPSET, 28);
}

#[test]
fn a_model_without_a_default_domain_opset_is_refused() {
    let mut proto = single_op("Relu", vec![], &[D::N(2)], 13);
    proto.opset_import = vec![OperatorSetIdProto { domain: Some("com.example".into()), version: Some(1) }];
    assert_eq!(load_err(&proto), LoadError::NoDefaultOpset);
}

#[test]
fn ai_onnx_is_the_default_domain() {
    let mut proto = single_op("Relu", vec![], &[D::N(2)], 13);
    proto.opset_import = vec![OperatorSetIdProto { domain: Some("ai.onnx".into()), version: Some(13) }];
    let out = load(&proto).unwrap().run([("x", f32s(&[-1.0, 1.0]))]).unwrap();
    assert_eq!(out["y"].to_f64_vec(), [0.0, 1.0]);
}

#[test]
fn truncated_and_empty_files_are_decode_errors() {
    let full = bytes(&single_op("Relu", vec![], &[D::N(2)], 13));
    for cut in [0, 1, full.len() / 2, full.len() - 1] {
        let err = Model::from_bytes(&full[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Load {
                    source: LoadError::Decode { .. }
                        | LoadError::MissingGraph
                        | LoadError::NoDefaultOpset
                        | LoadError::BadOutput { .. },
                    ..
                }
            ),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.onnx");
    std::fs::write(&path, b"\x08").unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
}

#[test]
fn inputs_are_checked_for_dtype_rank_and_fixed_dims() {
    let model = load(&single_op("Relu", vec![], &[D::P("batch"), D::N(3)], 13)).unwrap();
    let wrong_dtype = Tensor::from(ArrayD::<f64>::zeros(IxDyn(&[2, 3])));
    assert!(matches!(model.run([("x", wrong_dtype)]), Err(Error::Run { source: RunError::InputDtype { .. } })));
    let wrong_rank = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[3])));
    let err = model.run([("x", wrong_rank)]).unwrap_err();
    assert_eq!(err.to_string(), "input \"x\": expected shape [batch, 3] (rank 2), got [3]");
    let wrong_dim = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 4])));
    assert!(err_text(model.run([("x", wrong_dim)])).contains("dimension 1 must be 3"));
    // The symbolic batch accepts any size.
    for batch in [0, 1, 7] {
        let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[batch, 3])));
        assert_eq!(model.run([("x", x)]).unwrap()["y"].shape(), [batch, 3]);
    }
    assert!(matches!(
        model.run(Vec::<(&str, Tensor)>::new()),
        Err(Error::Run { source: RunError::MissingInput { .. } })
    ));
    let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[1, 3])));
    assert!(matches!(model.run([("nope", x)]), Err(Error::Run { source: RunError::UnknownInput { .. } })));
}

fn err_text<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn symbolic_dims_bind_consistently_across_inputs() {
    let nodes = vec![node("Relu", "r1", &["a"], &["ya"], vec![]), node("Relu", "r2", &["b"], &["yb"], vec![])];
    let inputs = vec![value_info("a", FLOAT, Some(&[D::P("n")])), value_info("b", FLOAT, Some(&[D::P("n")]))];
    let model = load(&model(graph(nodes, inputs, &["ya", "yb"]), 14)).unwrap();
    let ok = model.run([("a", f32s(&[1.0, 2.0])), ("b", f32s(&[3.0, -4.0]))]).unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok["yb"].to_f64_vec(), [3.0, 0.0]);
    let err = err_text(model.run([("a", f32s(&[1.0, 2.0])), ("b", f32s(&[3.0]))]));
    assert!(err.contains("n = 2 from input \"a\""), "{err}");
}

#[test]
fn outputs_may_be_graph_inputs_or_initializers() {
    let mut g = graph(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![value_info("x", FLOAT, Some(&[D::N(2)]))],
        &["y", "x", "w"],
    );
    g.initializer.push(tensor_f32("w", &[2], &[0.25, -0.5]));
    let model = load(&model(g, 13)).unwrap();
    let out = model.run([("x", f32s(&[-1.0, 3.0]))]).unwrap();
    let names: Vec<&str> = out.iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["y", "x", "w"]);
    assert_eq!(out["x"].to_f64_vec(), [-1.0, 3.0]);
    assert_eq!(out["w"].to_f64_vec(), [0.25, -0.5]);
}

#[test]
fn an_initializer_that_is_also_an_input_is_a_default_the_caller_may_override() {
    let mut g =
        graph(vec![node("Relu", "r", &["x"], &["y"], vec![])], vec![value_info("x", FLOAT, Some(&[D::N(2)]))], &["y"]);
    g.initializer.push(tensor_f32("x", &[2], &[-2.0, 5.0]));
    let model = load(&model(g, 13)).unwrap();
    assert!(model.inputs()[0].has_default);
    assert_eq!(model.run(Vec::<(&str, Tensor)>::new()).unwrap()["y"].to_f64_vec(), [0.0, 5.0]);
    assert_eq!(model.run([("x", f32s(&[7.0, -7.0]))]).unwrap()["y"].to_f64_vec(), [7.0, 0.0]);
}

/// Relu over an initializer stored in `proto`, returning the output as f64.
fn relu_of_initializer(proto: TensorProto) -> Result<Vec<f64>, Error> {
    let elem_type = proto.data_type.unwrap();
    let mut g = GraphProto {
        name: Some("g".into()),
        node: vec![node("Relu", "r", &["w"], &["y"], vec![])],
        output: vec![value_info("y", elem_type, None)],
        ..Default::default()
    };
    g.initializer.push(TensorProto { name: Some("w".into()), ..proto });
    Ok(load(&model(g, 14))?.run(Vec::<(&str, Tensor)>::new())?["y"].to_f64_vec())
}

#[test]
fn initializers_load_from_every_storage_form() {
    let base = TensorProto { dims: vec![3], ..Default::default() };
    let raw = TensorProto {
        data_type: Some(FLOAT),
        raw_data: Some([-1.5f32, 2.5, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..base.clone()
    };
    assert_eq!(relu_of_initializer(raw).unwrap(), [0.0, 2.5, 0.0]);
    let floats = TensorProto { data_type: Some(FLOAT), float_data: vec![-1.5, 2.5, 3.0], ..base.clone() };
    assert_eq!(relu_of_initializer(floats).unwrap(), [0.0, 2.5, 3.0]);
    let doubles = TensorProto { data_type: Some(DOUBLE), double_data: vec![-1.0, 0.125, 9.0], ..base.clone() };
    assert_eq!(relu_of_initializer(doubles).unwrap(), [0.0, 0.125, 9.0]);
    // float16 travels as bit patterns in int32_data: 0xBC00 = -1, 0x3C00 = 1, 0x4200 = 3.
    let halves = TensorProto { data_type: Some(FLOAT16), int32_data: vec![0xBC00, 0x3C00, 0x4200], ..base.clone() };
    assert_eq!(relu_of_initializer(halves).unwrap(), [0.0, 1.0, 3.0]);
    let bf16 = TensorProto { data_type: Some(16), int32_data: vec![0xBF80, 0x3F80, 0x4040], ..base.clone() };
    assert_eq!(relu_of_initializer(bf16).unwrap(), [0.0, 1.0, 3.0]);
    let int32 = TensorProto { data_type: Some(6), int32_data: vec![-5, 6, 0], ..base.clone() };
    assert_eq!(relu_of_initializer(int32).unwrap(), [0.0, 6.0, 0.0]);
    let int64 = TensorProto { data_type: Some(INT64), int64_data: vec![-5, i64::MAX, 0], ..base.clone() };
    assert_eq!(relu_of_initializer(int64).unwrap(), [0.0, i64::MAX as f64, 0.0]);
    let int8 = TensorProto { data_type: Some(3), int32_data: vec![-128, 127, 1], ..base.clone() };
    assert_eq!(relu_of_initializer(int8).unwrap(), [0.0, 127.0, 1.0]);
}

#[test]
fn broken_initializers_are_refused_with_the_reason() {
    let base = TensorProto { dims: vec![3], data_type: Some(FLOAT), ..Default::default() };
    let short = TensorProto { raw_data: Some(vec![0; 11]), ..base.clone() };
    assert!(relu_of_initializer(short).unwrap_err().to_string().contains("11 bytes of data"));
    let both = TensorProto { raw_data: Some(vec![0; 12]), float_data: vec![1.0; 3], ..base.clone() };
    assert!(relu_of_initializer(both).unwrap_err().to_string().contains("several fields"));
    let huge = TensorProto { dims: vec![1_000_000, 1_000_000], raw_data: Some(vec![0; 8]), ..base.clone() };
    assert!(relu_of_initializer(huge).unwrap_err().to_string().contains("exceeds the limit"));
    let negative = TensorProto { dims: vec![-3], ..base.clone() };
    assert!(relu_of_initializer(negative).unwrap_err().to_string().contains("negative dimension"));
    let count = TensorProto { float_data: vec![1.0; 2], ..base.clone() };
    assert!(relu_of_initializer(count).unwrap_err().to_string().contains("float_data holds 2 values"));
}

#[test]
fn constant_nodes_accept_every_value_form() {
    let cases: Vec<(onnxi::onnx::AttributeProto, Vec<f64>)> = vec![
        (
            onnxi::onnx::AttributeProto {
                name: Some("value".into()),
                r#type: Some(4),
                t: Some(tensor_f32("", &[2], &[-3.0, 4.0])),
                ..Default::default()
            },
            vec![0.0, 4.0],
        ),
        (attr_f("value_float", -2.0), vec![0.0]),
        (
            onnxi::onnx::AttributeProto {
                name: Some("value_floats".into()),
                r#type: Some(6),
                floats: vec![1.0, -1.0],
                ..Default::default()
            },
            vec![1.0, 0.0],
        ),
        (attr_i("value_int", -9), vec![0.0]),
        (
            onnxi::onnx::AttributeProto {
                name: Some("value_ints".into()),
                r#type: Some(7),
                ints: vec![3, -3],
                ..Default::default()
            },
            vec![3.0, 0.0],
        ),
    ];
    for (attr, expected) in cases {
        let elem_type = if attr.name().contains("int") { INT64 } else { FLOAT };
        let g = GraphProto {
            name: Some("g".into()),
            node: vec![
                node("Constant", "c", &[], &["k"], vec![attr.clone()]),
                node("Relu", "r", &["k"], &["y"], vec![]),
            ],
            output: vec![value_info("y", elem_type, None)],
            ..Default::default()
        };
        let out = load(&model(g, 14)).unwrap().run(Vec::<(&str, Tensor)>::new()).unwrap();
        assert_eq!(out["y"].to_f64_vec(), expected, "{}", attr.name());
    }
}

#[test]
fn leaky_relu_alpha_of_the_wrong_type_is_refused() {
    let err = load_err(&single_op("LeakyRelu", vec![attr_i("alpha", 1)], &[D::N(2)], 16));
    assert_eq!(err.to_string(), "node \"the_node\" (op LeakyRelu): attribute \"alpha\": expected FLOAT, got INT");
    let err = load_err(&single_op("LeakyRelu", vec![attr_s("alpha", "0.1")], &[D::N(2)], 16));
    assert!(matches!(err, LoadError::Attribute { .. }));
    let err = load_err(&single_op("Relu", vec![attr_f("alpha", 0.1)], &[D::N(2)], 14));
    assert!(matches!(&err, LoadError::UnexpectedAttribute { attr, .. } if attr == "alpha"), "{err}");
}

#[test]
fn softmax_axis_out_of_range_names_node_op_and_opset() {
    let model = load(&single_op("Softmax", vec![attr_i("axis", 1i64 << 62)], &[D::N(2), D::N(3)], 13)).unwrap();
    let err = model.run([("x", Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 3]))))]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node \"the_node\" (op Softmax, opset 13) failed: Softmax: axis 4611686018427387904 out of range for rank 2. Inputs were (float32 [2, 3])"
    );
}

#[test]
fn softmax_before_13_normalises_the_flattened_tail_and_from_13_one_axis() {
    let x = Tensor::from(array![[[1.0f32, 2.0], [3.0, 4.0]]].into_dyn());
    let legacy = load(&single_op("Softmax", vec![attr_i("axis", 1)], &[D::N(1), D::N(2), D::N(2)], 11)).unwrap();
    let modern = load(&single_op("Softmax", vec![attr_i("axis", 1)], &[D::N(1), D::N(2), D::N(2)], 13)).unwrap();
    let legacy_out = legacy.run([("x", x.clone())]).unwrap()["y"].to_f64_vec();
    let modern_out = modern.run([("x", x)]).unwrap()["y"].to_f64_vec();
    // Legacy: one softmax over all four values. Opset 13: over axis 1 per column.
    let total: f64 = [1.0f64, 2.0, 3.0, 4.0].iter().map(|v| v.exp()).sum();
    for (got, value) in legacy_out.iter().zip([1.0f64, 2.0, 3.0, 4.0]) {
        assert!((got - value.exp() / total).abs() < 1e-6);
    }
    let column = 1.0 / (1.0 + 2.0f64.exp());
    for (got, want) in modern_out.iter().zip([column, column, 1.0 - column, 1.0 - column]) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}

#[test]
fn external_data_is_read_inside_the_model_folder_only() {
    let dir = tempfile::tempdir().unwrap();
    let values = [-1.0f32, 2.0, -3.0, 4.0];
    let mut data = vec![0u8; 16];
    data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.path().join("weights.bin"), &data).unwrap();
    let external = |location: &str, offset: &str| TensorProto {
        name: Some("w".into()),
        dims: vec![4],
        data_type: Some(FLOAT),
        data_location: Some(1),
        external_data: vec![
            StringStringEntryProto { key: Some("location".into()), value: Some(location.into()) },
            StringStringEntryProto { key: Some("offset".into()), value: Some(offset.into()) },
            StringStringEntryProto { key: Some("length".into()), value: Some("16".into()) },
        ],
        ..Default::default()
    };
    let write_model = |tensor: TensorProto| {
        let g = GraphProto {
            name: Some("g".into()),
            node: vec![node("Relu", "r", &["w"], &["y"], vec![])],
            initializer: vec![tensor],
            output: vec![value_info("y", FLOAT, None)],
            ..Default::default()
        };
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, bytes(&model(g, 14))).unwrap();
        Model::load(&path)
    };
    let loaded = write_model(external("weights.bin", "16")).unwrap();
    assert_eq!(loaded.run(Vec::<(&str, Tensor)>::new()).unwrap()["y"].to_f64_vec(), [0.0, 2.0, 0.0, 4.0]);
    for (location, offset, needle) in [
        ("../../etc/passwd", "0", "must be a relative path"),
        ("/etc/passwd", "0", "must be a relative path"),
        ("weights.bin", "24", "reaches 40"),
        ("missing.bin", "0", "cannot open"),
    ] {
        let err = write_model(external(location, offset)).unwrap_err().to_string();
        assert!(err.contains(needle), "{location}: {err}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.bin")).unwrap();
        let err = write_model(external("link.bin", "0")).unwrap_err().to_string();
        assert!(err.contains("outside the model's folder") || err.contains("cannot open"), "{err}");
    }
    // From bytes there is no folder, so external data is refused.
    let g = GraphProto {
        name: Some("g".into()),
        initializer: vec![external("weights.bin", "16")],
        output: vec![value_info("w", FLOAT, None)],
        ..Default::default()
    };
    assert!(err_text(load(&model(g, 14))).contains("needs the model's folder"));
}

#[test]
fn model_is_shared_across_threads() {
    let model = std::sync::Arc::new(load(&single_op("Tanh", vec![], &[D::P("n")], 13)).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|idx| {
            let model = model.clone();
            std::thread::spawn(move || {
                let x = f32s(&[idx as f32, -(idx as f32)]);
                model.run([("x", x)]).unwrap()["y"].to_f64_vec()
            })
        })
        .collect();
    for (idx, handle) in handles.into_iter().enumerate() {
        let y = handle.join().unwrap();
        assert!((y[0] - (idx as f64).tanh()).abs() < 1e-6);
    }
}

#[test]
fn asking_for_an_output_the_model_lacks_is_an_error_naming_the_outputs() {
    let model = load(&single_op("Relu", vec![], &[D::N(1)], 14)).unwrap();
    let out = model.run([("x", f32s(&[1.0]))]).unwrap();
    let err = out.require("z").unwrap_err();
    assert_eq!(err.to_string(), "the model has no output named \"z\" (its outputs: y)");
    assert!(out.get("z").is_none());
    assert_eq!(out.require("y").unwrap().to_f64_vec(), [1.0]);
}

#[test]
fn errors_stay_below_clippys_large_error_threshold() {
    // Callers that return `Result<_, onnxi::Error>` would otherwise need
    // `#[allow(clippy::result_large_err)]` (the lint fires from 128 bytes).
    let size = std::mem::size_of::<onnxi::Error>();
    assert!(size < 128, "onnxi::Error is {size} bytes");
}

/// A Split with three outputs, the middle one omitted (empty name), feeding
/// a Relu and a graph output; sessions and `Model::run` agree.
fn split_model(outputs: &[&str], split_sizes: Option<&[i64]>) -> onnxi::onnx::ModelProto {
    let mut inputs = vec!["x"];
    let mut initializers = vec![];
    if let Some(sizes) = split_sizes {
        inputs.push("sizes");
        initializers.push(TensorProto {
            name: Some("sizes".into()),
            dims: vec![sizes.len() as i64],
            data_type: Some(INT64),
            int64_data: sizes.to_vec(),
            ..Default::default()
        });
    }
    let nodes = vec![
        node("Split", "split", &inputs, outputs, vec![attr_i("axis", 1)]),
        node("Relu", "relu", &["a"], &["ra"], vec![]),
    ];
    let mut graph = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(2), D::N(6)]))], &["ra", "c"]);
    graph.initializer = initializers;
    model(graph, 13)
}

#[test]
fn a_node_with_several_outputs_and_an_omitted_one_runs() {
    let model = load(&split_model(&["a", "", "c"], Some(&[2, 1, 3]))).unwrap();
    let x: Vec<f32> = (0..12).map(|v| v as f32 - 6.0).collect();
    let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 6]), x).unwrap());
    let out = model.run([("x", x.clone())]).unwrap();
    // Columns 0-1, through Relu; columns 3-5 as they are.
    assert_eq!(out["ra"].to_f64_vec(), [0.0, 0.0, 0.0, 1.0]);
    assert_eq!(out["ra"].shape(), [2, 2]);
    assert_eq!(out["c"].to_f64_vec(), [-3.0, -2.0, -1.0, 3.0, 4.0, 5.0]);
    let mut session = model.session();
    for _ in 0..2 {
        let again = session.run([("x", &x)]).unwrap();
        assert_eq!(again["c"], out["c"]);
        assert_eq!(again["ra"], out["ra"]);
    }
    // Equal parts when the optional sizes input is left off.
    let model = load(&split_model(&["a", "b", "c"], None)).unwrap();
    let out = model.run([("x", x)]).unwrap();
    assert_eq!(out["c"].to_f64_vec(), [-2.0, -1.0, 4.0, 5.0]);
}

#[test]
fn a_multi_output_node_that_cannot_split_names_node_and_op() {
    let split = load(&split_model(&["a", "b", "c"], Some(&[2, 2, 3]))).unwrap();
    let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 6])));
    let text = err_text(split.run([("x", x)]));
    assert!(text.contains("\"split\"") && text.contains("Split") && text.contains("do not add up"), "{text}");
    // More outputs than the op has are refused at load (Relu has one).
    let nodes = vec![node("Relu", "two", &["x"], &["y", "z"], vec![])];
    let err = load_err(&model(graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(2)]))], &["y"]), 13));
    assert!(err.to_string().contains("expects 1 outputs, got 2"), "{err}");
}

#[test]
fn inspect_lists_inputs_and_outputs_with_omitted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.onnx");
    std::fs::write(&path, bytes(&split_model(&["a", "", "c"], Some(&[2, 1, 3])))).unwrap();
    let report = onnxi::graph::inspect::inspect_file(&path).unwrap();
    let text = report.to_text();
    assert!(text.contains("Split \"split\" (axis=1) x, sizes -> a, _, c -- Supported (version 13)"), "{text}");
    let json = report.to_json();
    assert_eq!(json["nodes"][0]["outputs"], serde_json::json!(["a", "", "c"]));
}

/// Weights that pass through Transpose and Cast, and a Reshape whose shape
/// is a Constant, run once at load; the model then holds only the node
/// that reads the graph input, and gives what the unfolded model gives.
#[test]
fn nodes_with_only_constant_inputs_are_folded_at_load_with_equal_results() {
    let weights = tensor_f32("w", &[2, 3], &[-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]);
    let shape = TensorProto {
        name: Some("shape".into()),
        dims: vec![2],
        data_type: Some(INT64),
        int64_data: vec![3, 2],
        ..Default::default()
    };
    let nodes = vec![
        node("Transpose", "t", &["w"], &["wt"], vec![]),
        node("Cast", "cast", &["wt"], &["w64"], vec![attr_i("to", DOUBLE as i64)]),
        node("Sigmoid", "sig", &["w64"], &["ws"], vec![]),
        node("Reshape", "reshape", &["x", "shape"], &["xr"], vec![]),
        node("Relu", "relu", &["xr"], &["y"], vec![]),
    ];
    let mut graph = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(6)]))], &["y", "ws"]);
    graph.initializer = vec![weights, shape];
    let proto = model(graph, 13);
    let folded = load(&proto).unwrap();
    let unfolded = Model::builder().fold_constants(false).from_bytes(&bytes(&proto)).unwrap();
    let ops = |model: &Model| model.nodes().map(|(_, op, _)| op.to_string()).collect::<Vec<_>>();
    assert_eq!(ops(&folded), ["Reshape", "Relu"]);
    let mut all = ops(&unfolded);
    all.sort();
    assert_eq!(all, ["Cast", "Relu", "Reshape", "Sigmoid", "Transpose"]);
    let x = f32s(&[-1.0, 1.0, -2.0, 2.0, -3.0, 3.0]);
    let (a, b) = (folded.run([("x", x.clone())]).unwrap(), unfolded.run([("x", x)]).unwrap());
    assert_eq!(a, b);
    // sigmoid(transpose(w)) in float64: w^T = [[-1, 4], [2, -5], [-3, 6]].
    let expected: Vec<f64> = [-1.0f64, 4.0, 2.0, -5.0, -3.0, 6.0].iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
    let got = a["ws"].to_f64_vec();
    assert!(got.iter().zip(&expected).all(|(g, e)| (g - e).abs() < 1e-15), "{got:?}");
    assert_eq!(a["y"].to_f64_vec(), [0.0, 1.0, 0.0, 2.0, 0.0, 3.0]);
    assert_eq!(a["y"].shape(), [3, 2]);
}

#[test]
fn a_constant_node_that_always_fails_is_refused_at_load_and_folded_values_obey_the_limits() {
    // Transpose with a perm of the wrong length, on a constant.
    let nodes = vec![
        node("Transpose", "bad_perm", &["w"], &["wt"], vec![onnxi_ints("perm", &[0, 1, 2])]),
        node("Relu", "relu", &["x"], &["y"], vec![]),
    ];
    let mut g = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(2)]))], &["y", "wt"]);
    g.initializer = vec![tensor_f32("w", &[2, 3], &[0.0; 6])];
    let err = load_err(&model(g.clone(), 13));
    let text = err.to_string();
    assert!(text.contains("bad_perm") && text.contains("Transpose") && text.contains("constant"), "{text}");
    // Unfolded, the same node fails when run, naming it.
    let unfolded = Model::builder().fold_constants(false).from_bytes(&bytes(&model(g, 13))).unwrap();
    assert!(err_text(unfolded.run([("x", f32s(&[1.0, 2.0]))])).contains("bad_perm"));
    // A folded value counts against the initializer budget: 24 bytes of
    // weights plus 48 of Cast output are over a 64-byte budget.
    let nodes = vec![node("Cast", "widen", &["w"], &["w64"], vec![attr_i("to", DOUBLE as i64)])];
    let mut g = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(2)]))], &["w64"]);
    g.initializer = vec![tensor_f32("w", &[2, 3], &[0.0; 6])];
    let result = Model::builder().max_initializer_bytes(64).from_bytes(&bytes(&model(g, 13)));
    assert!(err_text(result).contains("widen"));
}

fn onnxi_ints(name: &str, values: &[i64]) -> onnxi::onnx::AttributeProto {
    onnxi::onnx::AttributeProto {
        name: Some(name.into()),
        r#type: Some(onnxi::onnx::attribute_proto::AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// Constant goes through the registry: its value forms follow the opset
/// (value_float and friends from 12), and it folds into a plan constant.
#[test]
fn constant_value_forms_follow_the_opset_and_fold_away() {
    let constant_model = |opset: i64| {
        let nodes = vec![
            node("Constant", "c", &[], &["k"], vec![attr_f("value_float", 2.5)]),
            node("Relu", "relu", &["k"], &["y"], vec![]),
        ];
        model(graph(nodes, vec![], &["y"]), opset)
    };
    let err = load_err(&constant_model(11));
    assert!(err.to_string().contains("value_float") && err.to_string().contains("\"c\""), "{err}");
    let loaded = load(&constant_model(12)).unwrap();
    assert_eq!(loaded.nodes().count(), 0, "Constant and Relu both fold");
    assert_eq!(loaded.run(Vec::<(&str, Tensor)>::new()).unwrap()["y"].to_f64_vec(), [2.5]);
    let unfolded = Model::builder().fold_constants(false).from_bytes(&bytes(&constant_model(12))).unwrap();
    assert_eq!(unfolded.nodes().count(), 2);
    assert_eq!(unfolded.run(Vec::<(&str, Tensor)>::new()).unwrap()["y"].to_f64_vec(), [2.5]);
}

/// Types inferred at load through shape ops, with a symbolic batch axis;
/// debug builds also check each against what the ops produce.
#[test]
fn value_types_are_inferred_through_the_plan() {
    let axes = TensorProto {
        name: Some("axes".into()),
        dims: vec![1],
        data_type: Some(INT64),
        int64_data: vec![1],
        ..Default::default()
    };
    let shape = TensorProto {
        name: Some("shape".into()),
        dims: vec![3],
        data_type: Some(INT64),
        int64_data: vec![0, 4, -1],
        ..Default::default()
    };
    let nodes = vec![
        node("Flatten", "flat", &["x"], &["f"], vec![]),
        node("Reshape", "reshape", &["f", "shape"], &["r"], vec![]),
        node("Transpose", "t", &["r"], &["rt"], vec![onnxi_ints("perm", &[2, 0, 1])]),
        node("Split", "split", &["rt"], &["s0", "s1"], vec![attr_i("axis", 2)]),
        node("Unsqueeze", "unsq", &["s1", "axes"], &["u"], vec![]),
        node("Cast", "cast", &["u"], &["y"], vec![attr_i("to", DOUBLE as i64)]),
    ];
    let mut g = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::P("batch"), D::N(3), D::N(4)]))], &["y", "s0"]);
    g.initializer = vec![axes, shape];
    let loaded = load(&model(g, 13)).unwrap();
    let types: Vec<String> = loaded
        .value_types()
        .into_iter()
        .map(|(name, ty)| format!("{name}: {}", ty.map_or("unknown".into(), |ty| ty.to_string())))
        .collect();
    assert_eq!(
        types,
        [
            "x: float32 [batch, 3, 4]",
            "axes: int64 [1]",
            "shape: int64 [3]",
            "f: float32 [batch, 12]",
            "r: float32 [batch, 4, ?]",
            "rt: float32 [?, batch, 4]",
            "s0: float32 [?, batch, 2]",
            "s1: float32 [?, batch, 2]",
            "u: float32 [?, 1, batch, 2]",
            "y: float64 [?, 1, batch, 2]",
        ]
    );
    let out = loaded.run([("x", Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 3, 4]))))]).unwrap();
    assert_eq!(out["y"].shape(), [3, 1, 2, 2]);
}

/// What `anyhow`'s `{:#}` prints: each error of the `source()` chain, joined
/// by ": ".
fn chain_text(err: &dyn std::error::Error) -> String {
    std::iter::successors(Some(err), |err| err.source()).map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// Issue 14: messages are self-contained and `source()` is `None`, so a
/// chain printer shows each cause once (it printed "cannot read model"
/// twice).
#[test]
fn chain_printers_show_each_cause_once() {
    let missing = Model::load("no/such/model.onnx").unwrap_err();
    let softmax = load(&single_op("Softmax", vec![attr_i("axis", 5)], &[D::N(2), D::N(3)], 13)).unwrap();
    let run = softmax.run([("x", Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 3]))))]).unwrap_err();
    let nodes = vec![node("Transpose", "bad_perm", &["w"], &["wt"], vec![onnxi_ints("perm", &[0, 1, 2])])];
    let mut g = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(2)]))], &["wt"]);
    g.initializer = vec![tensor_f32("w", &[2, 3], &[0.0; 6])];
    let fold = load(&model(g, 13)).unwrap_err();
    for (err, once) in [(&missing, "cannot read model"), (&run, "out of range"), (&fold, "is not a permutation")] {
        let text = chain_text(err);
        assert_eq!(text, err.to_string());
        assert_eq!(text.matches(once).count(), 1, "{text}");
        assert_eq!(format!("{:#}", anyhow::Error::from(err.clone())), text);
    }
    if let Error::Load { source, .. } = &fold {
        assert_eq!(chain_text(source), source.to_string());
    }
    if let Error::Run { source } = &run {
        assert_eq!(chain_text(source), source.to_string());
    }
}

/// Issue 14: an error returned from `main` prints with `Debug`; it reads as
/// the message, not as the variant's fields.
#[test]
fn debug_of_an_error_is_its_message() {
    let err = Model::load("no/such/model.onnx").unwrap_err();
    assert_eq!(format!("{err:?}"), err.to_string());
    assert!(format!("{err:?}").starts_with("no/such/model.onnx: cannot read model: "), "{err:?}");
}

/// `.npy` bytes with the given header fields and data.
fn npy_bytes(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let header = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Issue 14: Fortran-order and big-endian `.npy` files read as numpy reads
/// them; an unsupported dtype names the supported ones; a `.npz` archive
/// says what to do.
#[test]
fn npy_files_in_fortran_order_or_big_endian_read_correctly_and_errors_say_what_to_do() {
    use onnxi::io::tensor_file::parse_npy;
    // np.asfortranarray([[1, 2, 3], [4, 5, 6]], dtype='<i4'): column by column.
    let data: Vec<u8> = [1i32, 4, 2, 5, 3, 6].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensor = parse_npy(&npy_bytes("<i4", true, "(2, 3)", &data), u64::MAX).unwrap();
    assert_eq!(tensor, Tensor::from(array![[1i32, 2, 3], [4, 5, 6]].into_dyn()));
    // Three axes, big-endian float64, Fortran order.
    let values = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |idx| (idx[0] * 100 + idx[1] * 10 + idx[2]) as f64);
    let data: Vec<u8> = values.t().iter().flat_map(|v| v.to_be_bytes()).collect();
    let tensor = parse_npy(&npy_bytes(">f8", true, "(2, 3, 4)", &data), u64::MAX).unwrap();
    assert_eq!(tensor, Tensor::from(values));
    let data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let tensor = parse_npy(&npy_bytes(">f4", false, "(2,)", &data), u64::MAX).unwrap();
    assert_eq!(tensor, Tensor::from(array![1.5f32, -2.0].into_dyn()));

    let err = parse_npy(&npy_bytes("<c8", false, "(1,)", &[0; 8]), u64::MAX).unwrap_err().to_string();
    assert!(
        err.contains("unsupported .npy dtype \"<c8\"") && err.contains("float32 (f4)") && err.contains("astype"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("arrays.npz");
    std::fs::write(&npz, b"PK\x03\x04rest of a zip").unwrap();
    let err = onnxi::io::tensor_file::read(&npz, u64::MAX).unwrap_err().to_string();
    assert!(err.contains(".npz archive") && err.contains("numpy.save"), "{err}");
}

/// Issue 14: the README's Rust example pastes into a new crate as it is: a
/// whole program, no rustdoc-hidden lines, ndarray through `onnxi::ndarray`
/// (it runs as a doctest, `src/lib.rs`).
#[test]
fn readme_rust_example_is_a_whole_program() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme.find("```rust\n").expect("a Rust example") + "```rust\n".len();
    let code = &readme[start..start + readme[start..].find("```").unwrap()];
    assert!(code.contains("fn main() -> Result<(), onnxi::Error> {"), "{code}");
    assert!(!code.lines().any(|line| line.trim_start().starts_with("# ") || line.trim() == "#"), "{code}");
    assert!(!code.contains("ndarray::") || code.contains("onnxi::ndarray::"), "{code}");
}

#[test]
fn tensors_come_from_arrays_of_any_dimension() {
    let matrix = Tensor::from(onnxi::ndarray::array![[1.0f32, 2.0], [3.0, 4.0]]);
    assert_eq!(matrix.shape(), [2, 2]);
    assert_eq!(Tensor::from(onnxi::ndarray::arr0(5i64)).shape(), [] as [usize; 0]);
    assert_eq!(matrix, Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn()));
}

/// Issue 14: embedding in the simple case: `read_default` reads `.npy` and
/// `.pb` without a byte cap argument, `Model::run` takes borrowed tensors
/// as well as owned ones (the caller's tensor is left as it was), and
/// `.npz` archives round-trip through `write_npz` and `read_npz`.
#[test]
fn run_borrows_inputs_and_tensor_files_read_with_default_limits() {
    use onnxi::io::tensor_file::{read_default, read_npz, write_npz};
    let model = onnxi::Model::load("fixtures/seed/test_seed_relu/model.onnx").unwrap();
    let (x, name) = read_default("fixtures/seed/test_seed_relu/input.npy").unwrap();
    assert_eq!(name, None);
    let borrowed = model.run([("input", &x)]).unwrap();
    let owned = model.run([("input", x.clone())]).unwrap();
    assert_eq!(borrowed, owned);
    assert_eq!(read_default("fixtures/seed/test_seed_relu/input.npy").unwrap().0, x);

    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("x.pb");
    std::fs::write(&pb, onnxi::io::tensor_file::encode_pb("input", &x)).unwrap();
    assert_eq!(read_default(&pb).unwrap(), (x.clone(), Some("input".to_string())));

    let npz = dir.path().join("all.npz");
    write_npz(&npz, borrowed.iter()).unwrap();
    assert_eq!(read_npz(&npz, u64::MAX).unwrap(), borrowed.clone().into_vec());
    let err = read_npz(&npz, 8).unwrap_err().to_string();
    assert!(err.contains("all.npz") && err.contains("output.npy"), "{err}");
}
