//! Fused chains give the same bits as running every node on its own.
//!
//! The interpreter runs consecutive activations (and a Softmax over
//! contiguous lanes) as one step, group of rows by group of rows. Each
//! case here runs a chain model through `Model::run` (owned input, in
//! place) and a `Session` (lent input), at 1 and 2 threads, and compares
//! the outputs bit for bit with the same nodes run one model per node.

mod common;

use common::*;
use ndarray::{ArrayD, IxDyn};
use onnxi::onnx::{AttributeProto, NodeProto};
use onnxi::{Error, LoadError, Model, Tensor};

/// Symbolic dimension names, one per axis.
const AXES: [&str; 4] = ["a", "b", "c", "e"];

/// One node of a chain: op type, attributes.
type Step = (&'static str, Vec<AttributeProto>);

/// The chain `x -> step0 -> step1 -> ... -> y` over float32 of rank
/// `rank`, with the intermediate named in `also_output` kept as a graph
/// output too.
fn chain(steps: &[Step], rank: usize, opset: i64, elem_type: i32, also_output: Option<usize>) -> Vec<u8> {
    let names: Vec<String> =
        (0..steps.len()).map(|idx| if idx + 1 == steps.len() { "y".into() } else { format!("t{idx}") }).collect();
    let mut nodes: Vec<NodeProto> = Vec::new();
    let mut prev = "x".to_string();
    for (idx, (op, attrs)) in steps.iter().enumerate() {
        nodes.push(node(op, &format!("n{idx}_{op}"), &[&prev], &[&names[idx]], attrs.clone()));
        prev = names[idx].clone();
    }
    let dims: Vec<D> = (0..rank).map(|axis| D::P(AXES[axis])).collect();
    let mut outputs = vec!["y".to_string()];
    if let Some(idx) = also_output {
        outputs.push(names[idx].clone());
    }
    let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let mut graph = graph(nodes, vec![value_info("x", elem_type, Some(&dims))], &outputs);
    for output in &mut graph.output {
        *output = value_info(output.name(), elem_type, None);
    }
    bytes(&model(graph, opset))
}

/// The chain run one node at a time: a model per node.
fn node_by_node(steps: &[Step], x: &Tensor, opset: i64, elem_type: i32) -> Result<Vec<Tensor>, Error> {
    let mut value = x.clone();
    let mut all = Vec::new();
    for (op, attrs) in steps {
        let dims: Vec<D> = (0..value.shape().len()).map(|axis| D::P(AXES[axis])).collect();
        let model = Model::from_bytes(&bytes(&single_op_typed(op, attrs.clone(), &dims, opset, elem_type)))?;
        value = model.run([("x", value)])?.into_vec().remove(0).1;
        all.push(value.clone());
    }
    Ok(all)
}

fn input(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 24.0 - 12.0
        })
        .collect();
    Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values).unwrap())
}

fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    a.dtype() == b.dtype() && a.shape() == b.shape() && a.to_le_bytes() == b.to_le_bytes()
}

/// Runs the chain model every way and compares with node by node.
fn check(steps: &[Step], shape: &[usize], opset: i64, also_output: Option<usize>) -> Result<(), Error> {
    let x = input(shape, shape.iter().sum::<usize>() as u32 + steps.len() as u32);
    let want = node_by_node(steps, &x, opset, FLOAT)?;
    let bytes = chain(steps, shape.len(), opset, FLOAT, also_output);
    for threads in [1, 2] {
        let model = Model::builder().threads(threads).from_bytes(&bytes)?;
        // Every link fuses except the one into a kept intermediate.
        let chains = model.fused_chains();
        let linked: usize = chains.iter().map(|chain| chain.len() - 1).sum();
        assert_eq!(linked, steps.len() - 1 - usize::from(also_output.is_some()), "{chains:?}");
        let owned = model.run([("x", x.clone())])?;
        let mut session = model.session();
        for round in 0..2 {
            let lent = session.run([("x", &x)])?;
            for out in [&owned, lent] {
                let last = want.last().unwrap();
                assert!(same_bits(out.require("y")?, last), "{steps:?} {shape:?} threads {threads} round {round}");
                if let Some(idx) = also_output {
                    assert!(same_bits(out.require(&format!("t{idx}"))?, &want[idx]), "{steps:?} t{idx}");
                }
            }
        }
    }
    Ok(())
}

fn relu() -> Step {
    ("Relu", vec![])
}
fn sigmoid() -> Step {
    ("Sigmoid", vec![])
}
fn tanh() -> Step {
    ("Tanh", vec![])
}
fn leaky(alpha: f32) -> Step {
    ("LeakyRelu", vec![attr_f("alpha", alpha)])
}
fn softmax(axis: i64) -> Step {
    ("Softmax", vec![attr_i("axis", axis)])
}

#[test]
fn the_five_op_chain_matches_node_by_node_small_and_large() -> Result<(), Error> {
    let steps = [relu(), sigmoid(), tanh(), leaky(0.2), softmax(-1)];
    // Small (one group), and large enough to split across threads, with
    // rows that do not divide the group size.
    for shape in [vec![3, 5], vec![1000, 1000], vec![70, 1001]] {
        check(&steps, &shape, 13, None)?;
    }
    Ok(())
}

#[test]
fn softmax_first_or_in_the_middle_and_two_softmaxes() -> Result<(), Error> {
    check(&[softmax(-1), tanh(), sigmoid()], &[40, 2000], 13, None)?;
    check(&[tanh(), softmax(1), leaky(0.01), softmax(1)], &[300, 129], 13, None)?;
    // Softmax over the last axis (lanes of 7), then the legacy flattening
    // from axis 1 (lanes of 5 * 7): the groups hold whole lanes of both.
    check(&[softmax(-1), sigmoid(), softmax(1)], &[900, 5, 7], 11, None)?;
    Ok(())
}

#[test]
fn chains_that_do_not_fuse_still_match() -> Result<(), Error> {
    // Softmax over a strided axis has no chain kernel: the nodes run alone.
    check(&[relu(), softmax(0), tanh()], &[64, 600], 13, None)?;
    // An intermediate that is also a graph output breaks the chain there.
    check(&[sigmoid(), tanh(), relu(), leaky(0.3)], &[50, 1000], 13, Some(1))?;
    // Softmax lanes longer than a parallel chunk (the chain runs node by
    // node, so the Softmax can split its long lanes across threads).
    check(&[sigmoid(), softmax(-1), tanh()], &[2, 40_000], 13, None)?;
    // Longer than one fused step.
    let long: Vec<Step> = (0..37).map(|idx| [relu(), sigmoid(), tanh(), leaky(0.5)][idx % 4].clone()).collect();
    check(&long, &[20, 3000], 13, None)?;
    // Empty and 0-d inputs.
    check(&[relu(), sigmoid(), softmax(-1)], &[0, 4], 13, None)?;
    check(&[tanh(), softmax(-1)], &[], 13, None)?;
    Ok(())
}

#[test]
fn other_dtypes_run_node_by_node_with_the_same_errors() -> Result<(), Error> {
    let steps = [relu(), sigmoid(), tanh()];
    let x64 = Tensor::from(ArrayD::from_shape_fn(IxDyn(&[4, 3]), |idx| idx[0] as f64 - idx[1] as f64 * 0.7));
    let model = Model::from_bytes(&chain(&steps, 2, 13, DOUBLE, None))?;
    let got = model.run([("x", x64.clone())])?;
    let want = node_by_node(&steps, &x64, 13, DOUBLE)?;
    assert!(same_bits(got.require("y")?, want.last().unwrap()));

    // Relu 14 takes int64, Sigmoid does not: the load-time type check
    // refuses the model, naming the Sigmoid node.
    match Model::from_bytes(&chain(&steps, 1, 14, INT64, None)) {
        Err(Error::Load { source: LoadError::InputType { node, op_type, .. }, .. }) => {
            assert_eq!((node.as_str(), op_type.as_str()), ("n1_Sigmoid", "Sigmoid"));
        }
        other => panic!("expected the Sigmoid node's error, got {other:?}"),
    }
    Ok(())
}
