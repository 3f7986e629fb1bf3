//! Tests of the machinery and of every declared operator, iterating over
//! the declarations (so a new declaration is tested by adding it).

use std::borrow::Cow;

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn, array};

use super::*;
use crate::kernels::par::PAR_MIN_ELEMS;
use crate::kernels::simd;
use crate::kernels::test_util::{Rng, isas, ulp_diff};
use crate::ops::activation::{Elu, LeakyRelu, Relu, Sigmoid, Tanh};

/// The node of the registered op `name` at `version`, default attributes.
fn op_at(name: &str, version: i64) -> Box<dyn Op> {
    let entry = Registry::builtin().find("", name).expect("registered");
    entry.build(&mut Attrs::new("", name, &[], 0), version).expect("builds")
}

fn newest(name: &str) -> i64 {
    *Registry::builtin().find("", name).expect("registered").versions.last().expect("a version")
}

fn handle(name: &str) -> Box<dyn Declared> {
    find_declared(name).expect("declared")
}

/// The f64 reference rounded to f32.
fn reference_f32(op: &dyn Declared, x: f32) -> f32 {
    op.reference(f64::from(x)) as f32
}

/// Runs `op` on `x`, once lending the input and once handing it over
/// (the in-place path), and checks both give the same bits.
fn run(op: &dyn Op, x: &Tensor) -> Result<Tensor, OpError> {
    let par = Parallel::global();
    let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
    let lent = op.run(&mut [Some(Cow::Borrowed(x))], &ctx);
    // A buffer of its own is overwritten in place; a clone shares the
    // caller's buffer, which must be read, not written.
    let owned = op.run(&mut [Some(Cow::Owned(x.deep_copy()))], &ctx);
    let shared = op.run(&mut [Some(Cow::Owned(x.clone()))], &ctx);
    for other in [&owned, &shared] {
        match (&lent, other) {
            (Ok(a), Ok(b)) => assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "lent and owned paths differ"),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("lent {lent:?} vs owned {other:?}"),
        }
    }
    if let Ok(out) = &shared {
        assert!(!out.shares_data(x), "a shared input was written in place");
    }
    lent
}

/// Inputs covering signs, zeros, NaN, infinities, denormals, tiny and huge magnitudes.
fn edge_inputs() -> Vec<f32> {
    let mut inputs = vec![
        -1.0,
        2.0,
        -3.0,
        4.0,
        0.0,
        -0.0,
        0.5,
        -0.5,
        1e-3,
        -1e-3,
        1e-8,
        -1e-8,
        1e-40,
        -1e-40,
        10.0,
        -10.0,
        20.0,
        -20.0,
        88.0,
        -88.0,
        100.0,
        -100.0,
        1e4,
        -1e4,
        3.4e38,
        -3.4e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
    ];
    inputs.extend([-f32::NAN, f32::from_bits(1), f32::from_bits(0x8000_0001), 88.72284, -87.33655, -103.9, -104.5]);
    inputs.extend([-150.0, f32::MAX, f32::MIN, 0.55, -0.55, 0.549_999_95, 9.0, 9.1, -9.1, 17.0, -17.0, -17.3, -17.4]);
    inputs.extend([-0.34, -0.35, -0.7, 1e-20, -1e-20, -16.9, -30.0, -31.0]);
    inputs.extend((-40..=40).map(|idx| idx as f32 * 0.25));
    inputs
}

fn check_against_reference(isa: Isa, op: &dyn Declared, inputs: &[f32]) {
    let mut outputs = vec![0f32; inputs.len()];
    op.apply_f32_isa(isa, inputs, &mut outputs);
    for (&x, &got) in inputs.iter().zip(&outputs) {
        let want = reference_f32(op, x);
        let error = ulp_diff(got, want);
        let name = op.name();
        assert!(error <= op.max_ulp(), "{name} on {isa:?}: f({x:e}) = {got:e}, want {want:e} ({error} ULP)");
        assert_eq!(got.is_nan(), want.is_nan(), "{name} on {isa:?}: f({x:e}) = {got:e}, want {want:e}");
        if op.max_ulp() == 0 {
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{name} on {isa:?}: f({x:e}) = {got:e}, want {want:e} bit for bit"
            );
        }
        if want == 0.0 {
            assert_eq!(got.to_bits(), want.to_bits(), "{name} on {isa:?}: f({x:e}) = {got:e}: sign of zero");
        }
    }
}

#[test]
fn every_declaration_is_registered_with_a_spec_version_list() {
    let declared = declared();
    assert!(declared.len() >= 5);
    for op in &declared {
        let entry = Registry::builtin().find("", op.name()).expect("registered");
        assert!(entry.versions.windows(2).all(|pair| pair[0] < pair[1]), "{}", op.name());
        assert!((entry.dtypes)(newest(op.name())).contains(&DType::F32));
    }
}

#[test]
fn special_and_edge_values_within_bounds_on_every_path() {
    let inputs = edge_inputs();
    for isa in isas() {
        for op in declared() {
            check_against_reference(isa, op.as_ref(), &inputs);
        }
    }
}

#[test]
fn dense_sample_within_bounds_on_every_path() {
    // Every 4099th bit pattern: about a million inputs covering every
    // binade, subnormals, infinities and NaNs.
    let inputs: Vec<f32> = (0..=u32::MAX / 4099).map(|idx| f32::from_bits(idx * 4099)).collect();
    for isa in isas() {
        for op in declared() {
            check_against_reference(isa, op.as_ref(), &inputs);
        }
    }
}

#[test]
fn float32_ops_match_the_reference_through_run() {
    for op in declared() {
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[edge_inputs().len()]), edge_inputs()).unwrap());
        let y = run(op.node(newest(op.name())).as_ref(), &x).unwrap();
        for (&input, &got) in edge_inputs().iter().zip(y.as_f32().unwrap().iter()) {
            let want = reference_f32(op.as_ref(), input);
            assert!(ulp_diff(got, want) <= op.max_ulp(), "{}({input:e}) = {got:e}, want {want:e}", op.name());
        }
    }
}

#[test]
fn float64_matches_float64_reference_closely() {
    for op in declared() {
        let inputs: Vec<f64> = edge_inputs().into_iter().map(f64::from).chain([1e-300, -700.0, 700.0]).collect();
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[inputs.len()]), inputs.clone()).unwrap());
        let y = run(op.node(newest(op.name())).as_ref(), &x).unwrap();
        for (&input, got) in inputs.iter().zip(y.as_f64().unwrap().iter()) {
            let want = op.reference(input);
            assert!(
                got == &want
                    || (got.is_nan() && want.is_nan())
                    || (got.is_nan() && want.is_nan())
                    || (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                "{}({input}) = {got}, want {want}",
                op.name()
            );
        }
    }
}

#[test]
fn half_types_compute_in_f32_and_round_once() {
    for op in declared() {
        let inputs = [-3.0f32, -0.5, 0.0, 0.25, 2.0, 9.5, -60000.0, 60000.0];
        let halves = Tensor::from(
            ArrayD::from_shape_vec(IxDyn(&[8]), inputs.iter().map(|&v| f16::from_f32(v)).collect()).unwrap(),
        );
        let version = newest(op.name());
        let Tensor::F16(y) = run(op.node(version).as_ref(), &halves).unwrap() else {
            panic!("float16 in, float16 out")
        };
        for (&input, got) in inputs.iter().zip(y.iter()) {
            let want = f16::from_f64(op.reference(f64::from(f16::from_f32(input).to_f32())));
            assert!(
                got == &want
                    || (got.is_nan() && want.is_nan())
                    || (got.to_f64() - want.to_f64()).abs() <= f64::from(f16::EPSILON) * want.to_f64().abs().max(1e-4),
                "{}({input}) = {got}, want {want}",
                op.name()
            );
        }
        let entry = Registry::builtin().find("", op.name()).expect("registered");
        if !(entry.dtypes)(version).contains(&DType::BF16) {
            continue;
        }
        let brains = Tensor::from(
            ArrayD::from_shape_vec(IxDyn(&[8]), inputs.iter().map(|&v| bf16::from_f32(v)).collect()).unwrap(),
        );
        let Tensor::BF16(y) = run(op.node(version).as_ref(), &brains).unwrap() else {
            panic!("bfloat16 in, bfloat16 out")
        };
        for (&input, got) in inputs.iter().zip(y.iter()) {
            let want = bf16::from_f64(op.reference(f64::from(bf16::from_f32(input).to_f32())));
            assert!(
                got == &want
                    || (got.is_nan() && want.is_nan())
                    || (got.to_f64() - want.to_f64()).abs() <= f64::from(bf16::EPSILON) * want.to_f64().abs().max(1e-4),
                "{}({input}) = {got}, want {want}",
                op.name()
            );
        }
    }
}

#[test]
fn a_handed_over_buffer_is_overwritten_in_place_and_a_shared_one_never() {
    let par = Parallel::serial();
    let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
    let inputs = [
        Tensor::from(array![-1.0f32, 2.0].into_dyn()),
        Tensor::from(array![-1.0f64, 2.0].into_dyn()),
        Tensor::from(array![-1i32, 2].into_dyn()),
    ];
    for x in inputs {
        let op = op_at("Relu", 14);
        let ptr = x.data_ptr();
        let kept = x.clone();
        // Shared with `kept`: computed into a new buffer, `kept` intact.
        let y = op.run(&mut [Some(Cow::Owned(x))], &ctx).unwrap();
        assert!(!y.shares_data(&kept) && kept.to_f64_vec() == [-1.0, 2.0], "{:?}", kept.dtype());
        // Handed over and unique: the same buffer, overwritten.
        let y = op.run(&mut [Some(Cow::Owned(kept))], &ctx).unwrap();
        assert_eq!((y.data_ptr(), y.to_f64_vec()), (ptr, vec![0.0, 2.0]), "{:?}", y.dtype());
    }
}

#[test]
fn dtypes_follow_the_schema_of_each_version() {
    let brain = Tensor::from(array![bf16::ONE].into_dyn());
    let ints = Tensor::from(array![-3i32, 0, 5].into_dyn());
    let unsupported = |op: &'static str, dtype| Err(OpError::UnsupportedDtype { op, dtype });
    type Case = (&'static str, i64, Tensor, Result<Vec<f64>, OpError>);
    let cases: Vec<Case> = vec![
        ("Relu", 6, brain.clone(), unsupported("Relu", DType::BF16)),
        ("Relu", 13, brain.clone(), Ok(vec![1.0])),
        ("Relu", 13, ints.clone(), unsupported("Relu", DType::I32)),
        ("Relu", 14, ints.clone(), Ok(vec![0.0, 0.0, 5.0])),
        ("Relu", 14, Tensor::from(array![i8::MIN, i8::MAX].into_dyn()), Ok(vec![0.0, 127.0])),
        ("Relu", 14, Tensor::from(array![i64::MIN, 7].into_dyn()), Ok(vec![0.0, 7.0])),
        ("Relu", 14, Tensor::from(array![-1i16, 300].into_dyn()), Ok(vec![0.0, 300.0])),
        ("LeakyRelu", 6, brain.clone(), unsupported("LeakyRelu", DType::BF16)),
        ("LeakyRelu", 16, brain.clone(), Ok(vec![1.0])),
        ("Sigmoid", 6, brain.clone(), unsupported("Sigmoid", DType::BF16)),
        ("Tanh", 13, ints.clone(), unsupported("Tanh", DType::I32)),
        ("Sigmoid", 1, Tensor::from(array![0.0f64].into_dyn()), Ok(vec![0.5])),
        ("Elu", 6, brain.clone(), unsupported("Elu", DType::BF16)),
        ("Elu", 22, brain.clone(), Ok(vec![1.0])),
        ("Elu", 22, ints.clone(), unsupported("Elu", DType::I32)),
        ("Elu", 1, Tensor::from(array![-1.0f64, 0.0].into_dyn()), Ok(vec![(-1.0f64).exp_m1(), 0.0])),
        ("Celu", 12, Tensor::from(array![1.0f64].into_dyn()), unsupported("Celu", DType::F64)),
        ("Celu", 28, Tensor::from(array![1.0f64].into_dyn()), Ok(vec![1.0])),
        ("Softsign", 1, brain.clone(), unsupported("Softsign", DType::BF16)),
        ("Softsign", 22, brain.clone(), Ok(vec![0.5])),
        ("Shrink", 9, brain.clone(), unsupported("Shrink", DType::BF16)),
        ("Shrink", 9, ints.clone(), Ok(vec![-3.0, 0.0, 5.0])),
        ("Shrink", 9, Tensor::from(array![0u8, 1, 255].into_dyn()), Ok(vec![0.0, 1.0, 255.0])),
        ("Neg", 1, ints.clone(), unsupported("Neg", DType::I32)),
        ("Neg", 6, ints.clone(), Ok(vec![3.0, 0.0, -5.0])),
        ("Neg", 13, Tensor::from(array![i8::MIN, 1].into_dyn()), Ok(vec![-128.0, -1.0])),
        ("Neg", 13, Tensor::from(array![1u8].into_dyn()), unsupported("Neg", DType::U8)),
        ("Abs", 6, brain.clone(), unsupported("Abs", DType::BF16)),
        ("Abs", 6, Tensor::from(array![i16::MIN, -7].into_dyn()), Ok(vec![-32768.0, 7.0])),
        ("Abs", 13, Tensor::from(array![0u64, u64::from(u32::MAX)].into_dyn()), Ok(vec![0.0, 4294967295.0])),
        ("Exp", 6, brain.clone(), unsupported("Exp", DType::BF16)),
        ("Reciprocal", 13, ints.clone(), unsupported("Reciprocal", DType::I32)),
        ("Softplus", 1, brain.clone(), unsupported("Softplus", DType::BF16)),
        ("Mish", 18, brain.clone(), unsupported("Mish", DType::BF16)),
        ("Mish", 22, brain.clone(), Ok(vec![f64::from(bf16::from_f64(1f64.exp().ln_1p().tanh()))])),
        ("Log", 6, brain.clone(), unsupported("Log", DType::BF16)),
        ("Erf", 9, brain.clone(), unsupported("Erf", DType::BF16)),
        ("Erf", 9, Tensor::from(array![-2i32, 0, 3].into_dyn()), Ok(vec![0.0, 0.0, 0.0])),
        ("Erf", 13, ints.clone(), unsupported("Erf", DType::I32)),
    ];
    for (name, version, input, expected) in cases {
        let result = run(op_at(name, version).as_ref(), &input).map(|t| t.to_f64_vec());
        assert_eq!(result, expected, "{name} v{version}");
    }
}

#[test]
fn attributes_have_their_onnx_defaults_and_legacy_consumed_inputs_is_read_at_opset_1() {
    assert_eq!(format!("{:?}", handle("LeakyRelu")), format!("{:?}", Handle(LeakyRelu { alpha: 0.01 })));
    assert_eq!(format!("{:?}", handle("Elu")), format!("{:?}", Handle(Elu { alpha: 1.0 })));
    let consumed = crate::onnx::AttributeProto {
        name: Some("consumed_inputs".into()),
        r#type: Some(crate::onnx::attribute_proto::AttributeType::Ints as i32),
        ints: vec![0],
        ..Default::default()
    };
    for op in declared() {
        let entry = Registry::builtin().find("", op.name()).expect("registered");
        let attrs = [consumed.clone()];
        // Read (and accepted) at opset 1 where that schema had it, unknown from 6 on.
        let mut at_1 = Attrs::new("n", op.name(), &attrs, 0);
        let read_at_1 = entry.build(&mut at_1, 1).is_ok() && at_1.finish().is_ok();
        assert_eq!(read_at_1, op.consumed_inputs_at_1(), "{}", op.name());
        let mut at_6 = Attrs::new("n", op.name(), &attrs, 0);
        assert!(entry.build(&mut at_6, 6).is_ok() && at_6.finish().is_err(), "{}", op.name());
    }
}

#[test]
fn elu_keeps_nan_signed_zero_and_small_inputs_accurate() {
    for isa in isas() {
        let run = |alpha: f32, x: f32| {
            let mut out = [0f32];
            Handle(Elu { alpha }).apply_f32_isa(isa, &[x], &mut out);
            out[0]
        };
        assert!(run(1.0, f32::NAN).is_nan());
        assert_eq!(run(1.0, -0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(run(1.0, 0.0).to_bits(), 0f32.to_bits());
        assert_eq!(run(1.0, f32::NEG_INFINITY), -1.0);
        assert_eq!(run(1.0, f32::INFINITY), f32::INFINITY);
        assert_eq!(run(2.0, -1e-30), -2e-30);
        assert_eq!(run(1.0, -1e-40), -1e-40);
        assert_eq!(run(0.5, -100.0), -0.5);
        assert_eq!(run(0.5, 3.0), 3.0);
    }
}

#[test]
fn special_values_of_sigmoid_tanh_relu_and_leaky_relu() {
    for isa in isas() {
        let run = |op: &dyn Declared, x: f32| {
            let mut out = [0f32];
            op.apply_f32_isa(isa, &[x], &mut out);
            out[0]
        };
        let (sigmoid, tanh, relu) = (Handle(Sigmoid), Handle(Tanh), Handle(Relu));
        assert!(run(&sigmoid, f32::NAN).is_nan());
        assert_eq!(run(&sigmoid, f32::NEG_INFINITY), 0.0);
        assert_eq!(run(&sigmoid, f32::INFINITY), 1.0);
        assert_eq!(run(&sigmoid, 0.0), 0.5);
        // A subnormal result, not flushed to zero.
        let tiny = run(&sigmoid, -95.0);
        assert!(tiny > 0.0 && tiny < f32::MIN_POSITIVE, "sigmoid(-95) = {tiny:e} on {isa:?}");
        assert!(run(&tanh, f32::NAN).is_nan());
        assert_eq!(run(&tanh, f32::INFINITY), 1.0);
        assert_eq!(run(&tanh, f32::NEG_INFINITY), -1.0);
        assert_eq!(run(&tanh, -0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(run(&tanh, 1e-30), 1e-30);
        assert_eq!(run(&tanh, -1e-40), -1e-40);
        assert!(run(&relu, f32::NAN).is_nan());
        // -0.0 passes through, as in PyTorch and ONNX Runtime.
        assert_eq!(run(&relu, -0.0).to_bits(), (-0.0f32).to_bits());
        assert!(run(&Handle(LeakyRelu { alpha: 0.01 }), f32::NAN).is_nan());
        assert_eq!(run(&Handle(LeakyRelu { alpha: 0.1 }), -2.0), -0.2f32 * 1.0 + 0.0);
    }
}

#[test]
fn large_outputs_written_with_streaming_stores_match_in_place() {
    let mut rng = Rng::new(37);
    // One element more than the threshold, and starting one element
    // into the buffers so that the head and tail take plain stores.
    let src = rng.vec(unary::STREAM_MIN_ELEMS + 2, -12.0, 12.0);
    for isa in isas() {
        let ops: [Box<dyn Declared>; 2] = [Box::new(Handle(LeakyRelu { alpha: 0.1 })), Box::new(Handle(Relu))];
        for op in &ops {
            let mut want = src[1..].to_vec();
            op.apply_f32_inplace_isa(isa, &mut want);
            let mut got = vec![0f32; src.len()];
            op.apply_f32_isa(isa, &src[1..], &mut got[1..]);
            assert!(got[1..].iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{op:?} {isa:?}");
            // And split across threads.
            let mut pooled = vec![0f32; src.len() - 1];
            let par = Parallel::with_threads(2).unwrap_or_else(|_| Parallel::serial());
            op.apply_f32(&src[1..], &mut pooled, &par);
            let mut active = src[1..].to_vec();
            op.apply_f32_inplace(&mut active, &Parallel::serial());
            assert!(pooled.iter().zip(&active).all(|(a, b)| a.to_bits() == b.to_bits()), "{op:?} pooled");
        }
    }
}

/// Sigmoid and Tanh take per-vector shortcuts when every lane is in
/// one range; a value must give the same bits whether its vector
/// takes a shortcut (vectors of like values) or the general form
/// (every vector mixed with values from the other ranges).
#[test]
fn per_vector_shortcuts_give_the_same_bits_as_the_general_form() {
    let mut rng = Rng::new(31);
    // Sigmoid: |x| <= 20 (shortcut) against 20 < |x| < 120; Tanh:
    // |x| < 0.55 and |x| >= 0.55 (each a shortcut) mixed.
    let cases = [
        ("Sigmoid", rng.vec(4096, -20.0, 20.0), [-119.0f32, 25.0, -21.0, 90.0]),
        ("Tanh", rng.vec(4096, -0.55, 0.55), [3.0, -0.6, 9.5, -20.0]),
        ("Tanh", rng.vec(4096, -12.0, 12.0), [0.1, -0.3, 1e-30, 0.5]),
    ];
    for isa in isas() {
        for (name, values, others) in &cases {
            let op = handle(name);
            let mut pure = vec![0f32; values.len()];
            op.apply_f32_isa(isa, values, &mut pure);
            // A value from the other range after every third one: no 4
            // consecutive lanes are alike.
            let mixed_in: Vec<f32> = values
                .iter()
                .enumerate()
                .flat_map(|(idx, &value)| [value, others[idx % 4]].into_iter().take(if idx % 3 == 0 { 2 } else { 1 }))
                .collect();
            let mut mixed_out = vec![0f32; mixed_in.len()];
            op.apply_f32_isa(isa, &mixed_in, &mut mixed_out);
            let mut at = 0;
            for (idx, &want) in pure.iter().enumerate() {
                assert_eq!(mixed_out[at].to_bits(), want.to_bits(), "{name} {isa:?} f({:e})", values[idx]);
                at += if idx % 3 == 0 { 2 } else { 1 };
            }
        }
    }
}

#[test]
fn outputs_in_range_and_monotone() {
    // Sorted inputs across the interesting range, including the tanh
    // branch point, the sigmoid subnormal tail and the expm1 floor.
    let inputs: Vec<f32> = (0..20_000).map(|idx| -110.0 + idx as f32 * 0.011).collect();
    for isa in isas() {
        for (name, lo, hi) in [("Sigmoid", 0.0, 1.0), ("Tanh", -1.0, 1.0), ("Elu", -1.0, f32::INFINITY)] {
            let mut out = vec![0f32; inputs.len()];
            handle(name).apply_f32_isa(isa, &inputs, &mut out);
            assert!(out.iter().all(|y| (lo..=hi).contains(y)), "{name} out of range on {isa:?}");
            assert!(out.windows(2).all(|pair| pair[0] <= pair[1]), "{name} not monotone on {isa:?}");
        }
    }
}

#[test]
fn monotone_over_consecutive_floats() {
    // Runs of consecutive f32 values where outputs move by about one ULP
    // per input step, so that any rounding wobble would show. The
    // textbook e^x / (1 + e^x) fails here near x = -1.1.
    for start in [-1.1f32, -0.3, -3e-7, 0.7, 2.5, -5.0, 0.55, -0.35, -17.0] {
        let bits = start.to_bits();
        let inputs: Vec<f32> = if start < 0.0 {
            // Decreasing bit patterns of a negative number: increasing x.
            (0..20_000).map(|idx| f32::from_bits(bits - idx)).collect()
        } else {
            (0..20_000).map(|idx| f32::from_bits(bits + idx)).collect()
        };
        for isa in isas() {
            for name in ["Sigmoid", "Tanh", "Elu"] {
                let mut out = vec![0f32; inputs.len()];
                handle(name).apply_f32_isa(isa, &inputs, &mut out);
                let bad = out.windows(2).position(|pair| pair[0] > pair[1]);
                assert!(bad.is_none(), "{name} on {isa:?} decreases after x = {:e}", inputs[bad.unwrap_or(0)]);
            }
        }
    }
}

#[test]
fn odd_lengths_match_the_vector_body() {
    let mut rng = Rng::new(7);
    let inputs = rng.vec(200, -20.0, 20.0);
    for isa in isas() {
        for op in declared() {
            let mut full = vec![0f32; inputs.len()];
            op.apply_f32_isa(isa, &inputs, &mut full);
            for len in [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129] {
                let mut out = vec![f32::NAN; len];
                op.apply_f32_isa(isa, &inputs[..len], &mut out);
                let mut in_place = inputs[..len].to_vec();
                op.apply_f32_inplace_isa(isa, &mut in_place);
                for idx in 0..len {
                    assert_eq!(out[idx].to_bits(), full[idx].to_bits(), "{op:?} {isa:?} len {len} at {idx}");
                    assert_eq!(in_place[idx].to_bits(), full[idx].to_bits(), "{op:?} {isa:?} len {len} at {idx}");
                }
            }
        }
    }
}

#[test]
fn parallel_runs_match_serial_bitwise() -> Result<(), String> {
    let mut rng = Rng::new(11);
    let inputs = rng.vec(PAR_MIN_ELEMS * 3 + 5, -30.0, 30.0);
    for op in declared() {
        let mut serial = vec![0f32; inputs.len()];
        op.apply_f32(&inputs, &mut serial, &Parallel::serial());
        for n_threads in [2, 8] {
            let par = Parallel::with_threads(n_threads)?;
            let mut out = vec![0f32; inputs.len()];
            op.apply_f32(&inputs, &mut out, &par);
            let mut in_place = inputs.clone();
            op.apply_f32_inplace(&mut in_place, &par);
            assert!(out.iter().zip(&serial).all(|(a, b)| a.to_bits() == b.to_bits()), "{op:?} x{n_threads}");
            assert!(in_place.iter().zip(&serial).all(|(a, b)| a.to_bits() == b.to_bits()), "{op:?} x{n_threads}");
        }
        check_against_reference(simd::active(), op.as_ref(), &inputs[..1000]);
    }
    Ok(())
}

/// The special values of the declarations after Elu, on every path: the
/// signs of zeros, NaN, infinities, the PyTorch forms.
#[test]
fn special_values_of_the_wider_activation_family() {
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    #[rustfmt::skip]
    let cases: [(&str, f32, f32); 59] = [
        ("Softsign", -0.0, -0.0), ("Softsign", inf, nan), ("Softsign", -3.0, -0.75),
        ("Selu", -0.0, -0.0), ("Selu", -inf, -1.673_263_2 * 1.050_701), ("Selu", nan, nan),
        ("Celu", -0.0, -0.0), ("Celu", -inf, -1.0), ("Celu", 2.0, 2.0),
        ("ThresholdedRelu", 1.0, 0.0), ("ThresholdedRelu", nan, nan), ("ThresholdedRelu", 1.5, 1.5),
        ("HardSigmoid", -2.5, 0.0), ("HardSigmoid", nan, nan), ("HardSigmoid", inf, 1.0),
        ("HardSwish", -4.0, -0.0), ("HardSwish", f32::MAX, f32::MAX), ("HardSwish", -inf, nan),
        ("Shrink", 0.5, 0.0), ("Shrink", -0.75, -0.75), ("Shrink", nan, nan),
        ("Neg", 0.0, -0.0), ("Neg", -inf, inf), ("Abs", -0.0, 0.0),
        ("Exp", 89.0, inf), ("Exp", -inf, 0.0), ("Exp", 88.7, f64::from(88.7f32).exp() as f32),
        ("Reciprocal", -0.0, -inf), ("Reciprocal", 4.0, 0.25), ("Exp", nan, nan),
        ("Softplus", 100.0, 100.0), ("Softplus", -inf, 0.0), ("Softplus", inf, inf), ("Softplus", nan, nan),
        ("Mish", -0.0, -0.0), ("Mish", -inf, nan), ("Mish", 50.0, 50.0), ("Mish", -200.0, -0.0),
        ("Log", 0.0, -inf), ("Log", -0.0, -inf), ("Log", -1.0, nan), ("Log", inf, inf), ("Log", 1.0, 0.0),
        ("Log", f32::from_bits(1), -103.278_93), ("Log", f32::MAX, 88.722_84), ("Log", nan, nan),
        ("Sqrt", -0.0, -0.0), ("Sqrt", 0.0, 0.0), ("Sqrt", -1.0, nan), ("Sqrt", inf, inf), ("Sqrt", 4.0, 2.0),
        ("Sqrt", 2.0, std::f32::consts::SQRT_2), ("Sqrt", f32::from_bits(1), 3.743_392e-23), ("Sqrt", nan, nan),
        ("Erf", -0.0, -0.0), ("Erf", inf, 1.0), ("Erf", -inf, -1.0), ("Erf", nan, nan), ("Erf", -4.5, -1.0),
    ];
    for isa in isas() {
        for (name, x, want) in cases {
            let mut out = [0f32];
            handle(name).apply_f32_isa(isa, &[x], &mut out);
            let got = out[0];
            let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
            assert!(
                same || (want != 0.0 && ulp_diff(got, want) <= 2),
                "{name}({x:e}) on {isa:?} = {got:e}, want {want:e}"
            );
        }
    }
}

#[test]
fn float64_and_integer_paths() {
    let src = [-2.0f64, -0.0, 0.0, 3.0, f64::NAN, f64::NEG_INFINITY];
    let mut dst = [0f64; 6];
    handle("Sigmoid").apply_f64(&src, &mut dst, &Parallel::serial());
    assert!((dst[0] - 1.0 / (1.0 + 2f64.exp())).abs() < 1e-15);
    assert!(dst[4].is_nan());
    assert_eq!(dst[5], 0.0);
    Handle(LeakyRelu { alpha: 0.5 }).apply_f64(&src, &mut dst, &Parallel::serial());
    assert_eq!((dst[0], dst[3]), (-1.0, 3.0));
    let mut ints = [-3i32, 0, 5, i32::MIN];
    unary::map_scalar_inplace(|v| Relu.int(v).unwrap_or(v), &mut ints, &Parallel::serial());
    assert_eq!(ints, [0, 0, 5, 0]);
}

#[test]
fn shapes_survive_empty_scalar_transposed_and_large_inputs() {
    for op in declared() {
        let boxed = op.node(newest(op.name()));
        let empty = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[0, 5])));
        assert_eq!(run(boxed.as_ref(), &empty).unwrap().shape(), [0, 5]);
        let scalar = Tensor::from(ndarray::arr0(-2.0f32).into_dyn());
        let y = run(boxed.as_ref(), &scalar).unwrap();
        assert_eq!(y.shape(), &[] as &[usize]);
        assert!(ulp_diff(y.to_f64_vec()[0] as f32, reference_f32(op.as_ref(), -2.0)) <= op.max_ulp());
        // A transposed (non-contiguous) input keeps its logical order.
        let matrix = array![[1.0f32, -2.0, 3.0], [-4.0, 5.0, -6.0]];
        let transposed = Tensor::from(matrix.t().to_owned().into_dyn());
        let view_input = Tensor::from(matrix.clone().reversed_axes().into_dyn());
        let (a, b) = (run(boxed.as_ref(), &transposed).unwrap(), run(boxed.as_ref(), &view_input).unwrap());
        assert_eq!(a.to_le_bytes(), b.to_le_bytes());
        assert_eq!(b.shape(), [3, 2]);
        assert!(ulp_diff(b.to_f64_vec()[1] as f32, reference_f32(op.as_ref(), -4.0)) <= op.max_ulp());
        // Above the parallel threshold, every element is still computed.
        let n = PAR_MIN_ELEMS * 3 + 17;
        let big: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 1e-3).collect();
        let y = run(boxed.as_ref(), &Tensor::from(ArrayD::from_shape_vec(IxDyn(&[n]), big.clone()).unwrap())).unwrap();
        for (idx, (&input, got)) in big.iter().zip(y.as_f32().unwrap().iter()).enumerate().step_by(997) {
            assert!(ulp_diff(*got, reference_f32(op.as_ref(), input)) <= op.max_ulp(), "{op:?} at {idx}");
        }
    }
}
