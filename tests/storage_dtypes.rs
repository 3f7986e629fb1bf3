//! The low-precision storage dtypes (float8, float4e2m1, int4, uint4, int2,
//! uint2) through the public API: Cast and Identity take them, every op
//! with a numeric kernel refuses them with a typed error naming the op
//! (never a panic), and a data mover either moves them or refuses them.

mod common;

use common::*;
use onnxi::tensor::{DType, F4E2M1, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0, I2, I4, U2, U4};
use onnxi::{Error, LoadError, Model, OpError, RunError, Tensor};

/// A 2x2 tensor of each storage dtype.
fn tensors() -> Vec<Tensor> {
    use ndarray::array;
    vec![
        Tensor::from(array![[F8E4M3FN(0x38), F8E4M3FN(0x7e)], [F8E4M3FN(0x80), F8E4M3FN(0x01)]].into_dyn()),
        Tensor::from(array![[F8E4M3FNUZ(0x40), F8E4M3FNUZ(0x7f)], [F8E4M3FNUZ(0), F8E4M3FNUZ(0x81)]].into_dyn()),
        Tensor::from(array![[F8E5M2(0x3c), F8E5M2(0x7b)], [F8E5M2(0xfb), F8E5M2(0x01)]].into_dyn()),
        Tensor::from(array![[F8E5M2FNUZ(0x40), F8E5M2FNUZ(0x7f)], [F8E5M2FNUZ(0), F8E5M2FNUZ(0x81)]].into_dyn()),
        Tensor::from(array![[U4(0), U4(15)], [U4(7), U4(8)]].into_dyn()),
        Tensor::from(array![[I4(-8), I4(7)], [I4(0), I4(-1)]].into_dyn()),
        Tensor::from(array![[F4E2M1(0x7), F4E2M1(0xf)], [F4E2M1(0x1), F4E2M1(0x8)]].into_dyn()),
        // Not code 0: 2^-127 is a float32 subnormal, which the reference's
        // Cast back to float8e8m0 rounds up to 2^-126 (src/tensor/small.rs).
        Tensor::from(array![[F8E8M0(1), F8E8M0(127)], [F8E8M0(254), F8E8M0(255)]].into_dyn()),
        Tensor::from(array![[U2(0), U2(3)], [U2(1), U2(2)]].into_dyn()),
        Tensor::from(array![[I2(-2), I2(1)], [I2(0), I2(-1)]].into_dyn()),
    ]
}

fn one_input_model(op: &str, elem_type: i32, opset: i64) -> Model {
    Model::from_bytes(&bytes(&single_op_typed(op, vec![], &[D::N(2), D::N(2)], opset, elem_type))).unwrap()
}

#[test]
fn the_storage_types_are_exactly_the_low_precision_list() {
    let tensors = tensors();
    let dtypes: Vec<DType> = tensors.iter().map(Tensor::dtype).collect();
    assert_eq!(dtypes, DType::LOW_PRECISION);
    let codes: Vec<i32> = dtypes.iter().map(|d| d.onnx_code()).collect();
    assert_eq!(codes, [17, 18, 19, 20, 21, 22, 23, 24, 25, 26]);
}

/// Builds a one-node model over `elem_type` inputs: `Ok(model)`, or the
/// load error when the op's schema refuses the declared type at load.
fn try_model(op: &str, elem_type: i32, two_inputs: bool) -> Result<Model, Error> {
    let proto = if two_inputs {
        let nodes = vec![node(op, "the_node", &["x", "x"], &["y"], vec![])];
        model(graph(nodes, vec![value_info("x", elem_type, Some(&[D::N(2), D::N(2)]))], &["y"]), 25)
    } else {
        single_op_typed(op, vec![], &[D::N(2), D::N(2)], 25, elem_type)
    };
    Model::from_bytes(&bytes(&proto))
}

/// Every numeric op refuses the storage types with a typed error naming
/// the op and the dtype: at load where the op checks its declared input
/// types (the elementwise declarations), else when it runs.
#[test]
fn numeric_ops_refuse_storage_types_with_a_typed_error() {
    let ops = [
        ("Relu", false),
        ("Sqrt", false),
        ("Softmax", false),
        ("ReduceSum", false),
        ("ArgMax", false),
        ("Add", true),
        ("Equal", true),
        ("MatMul", true),
        ("Max", true),
    ];
    for x in tensors() {
        let dtype = x.dtype();
        for (op, two_inputs) in ops {
            let source = match try_model(op, dtype.onnx_code(), two_inputs) {
                Err(Error::Load { source: LoadError::InputType { op_type, source, .. }, .. }) => {
                    assert_eq!(op_type, op);
                    source
                }
                Err(other) => panic!("{op} on {dtype}: unexpected load error {other:?}"),
                Ok(model) => match model.run([("x", x.clone())]) {
                    Err(Error::Run { source: RunError::Op { source, .. } }) => source,
                    other => panic!("{op} on {dtype}: expected an error, got {other:?}"),
                },
            };
            match source {
                OpError::UnsupportedDtype { op: name, dtype: d } => assert_eq!((name, d), (op, dtype)),
                other => panic!("{op} on {dtype}: expected UnsupportedDtype, got {other:?}"),
            }
        }
    }
}

#[test]
fn identity_and_cast_carry_the_storage_types() {
    for x in tensors() {
        let code = x.dtype().onnx_code();
        let y = one_input_model("Identity", code, 25).run([("x", x.clone())]).unwrap();
        assert_eq!(y["y"], x);
        // To float32 and back: every value survives.
        let proto = single_op_typed("Cast", vec![attr_i("to", 1)], &[D::N(2), D::N(2)], 25, code);
        let wide = Model::from_bytes(&bytes(&proto)).unwrap().run([("x", x.clone())]).unwrap();
        let wide = wide["y"].clone();
        assert_eq!(wide.dtype(), DType::F32);
        let want = x.to_f64_vec();
        let got = wide.to_f64_vec();
        assert!(want.iter().zip(&got).all(|(a, b)| a == b || (a.is_nan() && b.is_nan())), "{want:?} vs {got:?}");
        let nodes = vec![node("Cast", "back", &["w"], &["y"], vec![attr_i("to", i64::from(code))])];
        let proto = model(graph(nodes, vec![value_info("w", FLOAT, Some(&[D::N(2), D::N(2)]))], &["y"]), 25);
        let back = Model::from_bytes(&bytes(&proto)).unwrap().run([("w", wide)]).unwrap();
        let back = back["y"].to_f64_vec();
        assert!(want.iter().zip(&back).all(|(a, b)| a == b || (a.is_nan() && b.is_nan())), "{want:?} vs {back:?}");
    }
}
