//! String tensors through the public API: `string_data` and `.npy` files
//! (references written by numpy and onnx.proto's rules), Cast to and from
//! numbers (figures from ONNX Runtime 1.32 where it and the spec agree),
//! and the ops that move elements carrying text unchanged.

mod common;

use std::path::Path;

use common::*;
use ndarray::{ArrayD, IxDyn};
use onnxi::io::tensor_file::{encode_npy, encode_pb, parse_npy, parse_pb};
use onnxi::onnx::TensorProto;
use onnxi::ops::cast::cast;
use onnxi::tensor::Str;
use onnxi::{DType, Error, Model, OpError, RunError, Tensor};
use prost::Message;

const STRING: i32 = 8;

fn strs(shape: &[usize], values: &[&str]) -> Tensor {
    Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values.iter().map(|&v| Str::from(v)).collect()).unwrap())
}

fn texts(tensor: &Tensor) -> Vec<String> {
    tensor.view::<Str>().unwrap().iter().map(|text| text.to_string()).collect()
}

#[test]
fn string_tensors_round_trip_through_tensor_protos() {
    let x = strs(&[2, 2], &["a", "é", "中文", ""]);
    let (back, name) = parse_pb(&encode_pb("x", &x), u64::MAX).unwrap();
    assert_eq!((back, name.as_deref()), (x.clone(), Some("x")));
    // onnx.proto keeps strings in string_data, never raw_data.
    let proto = TensorProto::decode(encode_pb("x", &x).as_slice()).unwrap();
    assert_eq!(proto.data_type, Some(STRING));
    assert_eq!(proto.string_data, [b"a".to_vec(), "é".into(), "中文".into(), Vec::new()]);
    assert!(proto.raw_data.is_none());
}

#[test]
fn broken_string_protos_get_clear_errors() {
    let base = TensorProto { name: Some("t".into()), data_type: Some(STRING), dims: vec![2], ..Default::default() };
    let not_utf8 = TensorProto { string_data: vec![b"ok".to_vec(), vec![0xff, 0xfe]], ..base.clone() };
    let err = parse_pb(&not_utf8.encode_to_vec(), u64::MAX).unwrap_err().to_string();
    assert!(err.contains("string element 1 is not UTF-8"), "{err}");
    let short = TensorProto { string_data: vec![b"ok".to_vec()], ..base.clone() };
    let err = parse_pb(&short.encode_to_vec(), u64::MAX).unwrap_err().to_string();
    assert!(err.contains("string_data holds 1 values"), "{err}");
    let raw = TensorProto { raw_data: Some(b"abcd".to_vec()), ..base.clone() };
    let err = parse_pb(&raw.encode_to_vec(), u64::MAX).unwrap_err().to_string();
    assert!(err.contains("not raw_data"), "{err}");
    // The text counts toward the size limit.
    let big = TensorProto { string_data: vec![vec![b'a'; 4000], vec![b'b'; 4000]], ..base };
    let err = parse_pb(&big.encode_to_vec(), 4096).unwrap_err().to_string();
    assert!(err.contains("limit") || err.contains("exceeds"), "{err}");
}

#[test]
fn numpy_unicode_arrays_read_and_write() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let read = |name: &str| parse_npy(&std::fs::read(data.join(name)).unwrap(), u64::MAX).unwrap();
    let x = read("strings_u.npy");
    assert_eq!(x, strs(&[3, 2], &["a", "é", "中文", "", "tab\there", "xxxxx"]));
    assert_eq!(read("strings_u_fortran.npy"), strs(&[2, 2], &["ab", "c", "d", "éf"]));
    assert_eq!(parse_npy(&encode_npy(&x), u64::MAX).unwrap(), x);
    // numpy writes <U1 for all-empty text, and reads it back as "".
    let empty = strs(&[2], &["", ""]);
    assert_eq!(parse_npy(&encode_npy(&empty), u64::MAX).unwrap(), empty);
    // A huge element count of empty text still counts toward the limit.
    let header = "{'descr': '<U0', 'fortran_order': False, 'shape': (1000000000,), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    assert!(parse_npy(&bytes, 1 << 20).unwrap_err().to_string().contains("limit"));
}

#[test]
fn cast_reads_numbers_as_the_spec_spells_them() {
    let x = strs(&[7], &["2.5e-3", " 1e-5", "1E8", "INF", "-inf", "NaN", "+INF"]);
    let y = cast(&x, DType::F32).unwrap();
    let want = [2.5e-3f32, 1e-5, 1e8, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::INFINITY];
    for (got, want) in y.view::<f32>().unwrap().iter().zip(want) {
        assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{got} vs {want}");
    }
    // Integers exactly (past 2^53); a float string truncates toward zero;
    // out-of-range integers keep their low bits (as ONNX Runtime: 300 -> 44).
    let ints = cast(&strs(&[3], &["100.5", "9007199254740993", "-3"]), DType::I64).unwrap();
    assert_eq!(ints.view::<i64>().unwrap().iter().copied().collect::<Vec<_>>(), [100, 9_007_199_254_740_993, -3]);
    let bytes = cast(&strs(&[2], &["300", "-1"]), DType::U8).unwrap();
    assert_eq!(bytes.view::<u8>().unwrap().iter().copied().collect::<Vec<_>>(), [44, 255]);
    match cast(&strs(&[2], &["1", "hello"]), DType::F32) {
        Err(OpError::Invalid { op: "Cast", reason }) => assert!(reason.contains("1 \"hello\""), "{reason}"),
        other => panic!("expected an error naming the element, got {other:?}"),
    }
}

#[test]
fn cast_writes_numbers_as_plain_or_scientific_text() {
    let f = Tensor::from(
        ndarray::array![0.1f32, 1.0, 1e-7, 1e20, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 65504.0].into_dyn(),
    );
    // ONNX Runtime 1.32 writes the same, except that it prints 8 significant
    // digits where onnxi prints the shortest text that reads back exactly.
    assert_eq!(
        texts(&cast(&f, DType::String).unwrap()),
        ["0.1", "1", "1e-07", "1e+20", "NaN", "INF", "-INF", "-0", "65504"]
    );
    let d = Tensor::from(ndarray::array![0.1f64, 1.0, 1e-7, 1e20, 123456789.0].into_dyn());
    assert_eq!(texts(&cast(&d, DType::String).unwrap()), ["0.1", "1", "1e-07", "1e+20", "123456789"]);
    let h = Tensor::from(ndarray::array![half::f16::from_f32(0.1), half::f16::from_f32(65504.0)].into_dyn());
    assert_eq!(texts(&cast(&h, DType::String).unwrap()), ["0.099975586", "65504"]);
    let b = Tensor::from(ndarray::array![true, false].into_dyn());
    assert_eq!(texts(&cast(&b, DType::String).unwrap()), ["1", "0"]);
    let i = Tensor::from(ndarray::array![-5i64, 1 << 62].into_dyn());
    assert_eq!(texts(&cast(&i, DType::String).unwrap()), ["-5", "4611686018427387904"]);
    // Every float32 text reads back as the same float32.
    let odd = Tensor::from(ndarray::array![1.234_567_9_f32, 1.0e-38, f32::MAX, f32::MIN_POSITIVE, 1e-45].into_dyn());
    let back = cast(&cast(&odd, DType::String).unwrap(), DType::F32).unwrap();
    assert_eq!(back, odd);
}

/// A one-node model over a string input `x` of shape `[2, 3]`.
fn string_model(
    op: &str,
    extra: Vec<onnxi::onnx::NodeProto>,
    inputs: &[&str],
    attrs: Vec<onnxi::onnx::AttributeProto>,
    opset: i64,
) -> Model {
    let mut nodes = extra;
    nodes.push(node(op, "the_node", inputs, &["y"], attrs));
    let proto = model(graph(nodes, vec![value_info("x", STRING, Some(&[D::N(2), D::N(3)]))], &["y"]), opset);
    Model::from_bytes(&bytes(&proto)).unwrap()
}

#[test]
fn the_ops_that_move_elements_carry_text() {
    let x = strs(&[2, 3], &["a", "bb", "中", "", "e e", "f"]);
    let run = |model: Model| model.run([("x", x.clone())]).unwrap()["y"].clone();
    assert_eq!(run(string_model("Identity", vec![], &["x"], vec![], 21)), x);
    let transposed = run(string_model("Transpose", vec![], &["x"], vec![], 21));
    assert_eq!(transposed, strs(&[3, 2], &["a", "", "bb", "e e", "中", "f"]));
    let flat = run(string_model("Flatten", vec![], &["x"], vec![attr_i("axis", 0)], 21));
    assert_eq!(flat, strs(&[1, 6], &["a", "bb", "中", "", "e e", "f"]));
    let joined = run(string_model("Concat", vec![], &["x", "x"], vec![attr_i("axis", 0)], 13));
    assert_eq!(joined.shape(), [4, 3]);
    assert_eq!(texts(&joined)[6..], texts(&x));
    let equal = run(string_model("Equal", vec![], &["x", "x"], vec![], 19));
    assert_eq!(equal, Tensor::from(ArrayD::from_elem(IxDyn(&[2, 3]), true)));
    let shape = run(string_model("Shape", vec![], &["x"], vec![], 21));
    assert_eq!(shape, Tensor::from(ndarray::array![2i64, 3].into_dyn()));
}

#[test]
fn numeric_ops_refuse_text_with_a_typed_error() {
    let x = strs(&[2, 3], &["a", "b", "c", "d", "e", "f"]);
    for op in ["Relu", "Add", "Greater"] {
        let inputs: &[&str] = if op == "Relu" { &["x"] } else { &["x", "x"] };
        let nodes = vec![node(op, "the_node", inputs, &["y"], vec![])];
        let proto = model(graph(nodes, vec![value_info("x", STRING, Some(&[D::N(2), D::N(3)]))], &["y"]), 19);
        let source = match Model::from_bytes(&bytes(&proto)) {
            Err(Error::Load { source: onnxi::LoadError::InputType { source, .. }, .. }) => source,
            Err(other) => panic!("{op}: unexpected load error {other:?}"),
            Ok(model) => match model.run([("x", x.clone())]) {
                Err(Error::Run { source: RunError::Op { source, .. } }) => source,
                other => panic!("{op}: expected an error, got {other:?}"),
            },
        };
        assert!(
            matches!(source, OpError::UnsupportedDtype { op: name, dtype: DType::String } if name == op),
            "{op}: {source:?}"
        );
    }
}
