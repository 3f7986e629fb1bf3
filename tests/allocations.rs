//! Execution without waste (issue 4): a Session's steady state allocates
//! nothing, and a chain of ops runs in place instead of allocating per node.
//! Counted with a global allocator that tallies every allocation.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use ndarray::{ArrayD, IxDyn};
use onnxi::onnx::{GraphProto, TensorProto};
use onnxi::{Model, Tensor};

struct Counting;

thread_local! {
    /// Per thread, so tests running in parallel do not count each other.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes requested, to tell a data buffer from bookkeeping.
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(size: usize) {
    ALLOCATIONS.with(|count| count.set(count.get() + 1));
    BYTES.with(|bytes| bytes.set(bytes.get() + size));
}

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(work: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

fn bytes_allocated_during(work: impl FnOnce()) -> usize {
    let before = BYTES.with(Cell::get);
    work();
    BYTES.with(Cell::get) - before
}

/// Relu → Sigmoid → Tanh → LeakyRelu → Softmax over `[batch, 1000]`.
fn chain_model() -> Model {
    let ops = ["Relu", "Sigmoid", "Tanh", "LeakyRelu", "Softmax"];
    let names = ["x", "a", "b", "c", "d", "y"];
    let nodes = ops
        .iter()
        .enumerate()
        .map(|(idx, op)| node(op, &format!("n{idx}"), &[names[idx]], &[names[idx + 1]], vec![]))
        .collect();
    let graph = GraphProto {
        name: Some("chain".into()),
        node: nodes,
        input: vec![value_info("x", FLOAT, Some(&[D::P("batch"), D::N(1000)]))],
        output: vec![value_info("y", FLOAT, None)],
        ..Default::default()
    };
    // One thread, so no pool bookkeeping is counted.
    Model::builder().threads(1).from_bytes(&bytes(&model(graph, 17))).unwrap()
}

fn input(batch: usize) -> Tensor {
    Tensor::from(ArrayD::from_shape_fn(IxDyn(&[batch, 1000]), |idx| (idx[1] as f32 - 500.0) * 0.01))
}

#[test]
fn a_session_in_its_steady_state_allocates_nothing() {
    let model = chain_model();
    let mut session = model.session();
    let x = input(8);
    // Warm-up runs fill the buffer pool and size the scratch vectors. The
    // clone shares the first run's output buffer, so the pool does not take
    // that one back (its next user would copy it on the first write): the
    // pool gets its first buffer one run later.
    let first = session.run([("x", &x)]).unwrap()["y"].clone();
    session.run([("x", &x)]).unwrap();
    session.run([("x", &x)]).unwrap();
    let allocations = allocations_during(|| {
        for _ in 0..10 {
            session.run([("x", &x)]).unwrap();
        }
    });
    assert_eq!(allocations, 0, "allocations in 10 steady-state runs of a 5-node chain");
    assert_eq!(session.run([("x", &x)]).unwrap()["y"], first);
}

#[test]
fn owned_inputs_flow_through_a_chain_without_a_buffer_per_node() {
    let model = chain_model();
    let reference = model.run([("x", input(4))]).unwrap();
    let x = input(4);
    let allocations = allocations_during(|| {
        let out = model.run([("x", x)]).unwrap();
        assert_eq!(out["y"], reference["y"]);
    });
    // The slot vectors, the node-input vector, the output list and its name:
    // a constant handful, none of them a tensor buffer per node.
    assert!(allocations <= 6, "{allocations} allocations for one run of a 5-node chain");
}

/// Identity → Reshape → Unsqueeze → Squeeze → Flatten over `[batch, 1000]`
/// float32: ops that move no data.
fn pass_through_model() -> Model {
    let int64s = |name: &str, values: &[i64]| TensorProto {
        name: Some(name.into()),
        dims: vec![values.len() as i64],
        data_type: Some(INT64),
        int64_data: values.to_vec(),
        ..Default::default()
    };
    let graph = GraphProto {
        name: Some("pass_through".into()),
        node: vec![
            node("Identity", "n0", &["x"], &["a"], vec![]),
            node("Reshape", "n1", &["a", "shape"], &["b"], vec![]),
            node("Unsqueeze", "n2", &["b", "axes"], &["c"], vec![]),
            node("Squeeze", "n3", &["c", "axes"], &["d"], vec![]),
            node("Flatten", "n4", &["d"], &["y"], vec![attr_i("axis", 0)]),
        ],
        initializer: vec![int64s("shape", &[-1, 500]), int64s("axes", &[0])],
        input: vec![value_info("x", FLOAT, Some(&[D::P("batch"), D::N(1000)]))],
        output: vec![value_info("y", FLOAT, None)],
        ..Default::default()
    };
    Model::builder().threads(1).from_bytes(&bytes(&model(graph, 17))).unwrap()
}

#[test]
fn pass_through_ops_allocate_no_data_buffer_and_hand_back_the_input_buffer() {
    let model = pass_through_model();
    let x = input(256);
    let data_bytes = x.n_bytes();
    let mut session = model.session();
    session.run([("x", &x)]).unwrap();
    let bytes = bytes_allocated_during(|| {
        let out = session.run([("x", &x)]).unwrap();
        assert_eq!(out["y"].shape(), [1, 256 * 1000]);
        assert!(out["y"].shares_data(&x), "a Session's output copied its lent input");
    });
    // Shape vectors only (about 1.3 kB measured), against a 1 MB input.
    assert!(bytes < 4096, "{bytes} bytes allocated in a run over {data_bytes} bytes of data");

    // Model::run takes the input over: the output is the same buffer.
    let x = input(256);
    let ptr = x.data_ptr();
    let bytes = bytes_allocated_during(|| {
        let out = model.run([("x", x)]).unwrap();
        assert_eq!(out["y"].data_ptr(), ptr, "Model::run copied its input");
    });
    assert!(bytes < 4096, "{bytes} bytes allocated in a run over {data_bytes} bytes of data");
}

#[test]
fn a_session_never_writes_into_a_buffer_its_caller_still_holds() {
    // Identity → Reshape → Relu on a lent input: Relu gets a value that
    // shares the caller's buffer, so it must compute into a new one.
    let graph = GraphProto {
        name: Some("share_then_write".into()),
        node: vec![
            node("Identity", "n0", &["x"], &["a"], vec![]),
            node("Flatten", "n1", &["a"], &["b"], vec![]),
            node("Relu", "n2", &["b"], &["y"], vec![]),
        ],
        input: vec![value_info("x", FLOAT, Some(&[D::N(2), D::N(1000)]))],
        output: vec![value_info("y", FLOAT, None)],
        ..Default::default()
    };
    let model = Model::builder().threads(1).from_bytes(&bytes(&model(graph, 17))).unwrap();
    let x = input(2);
    let before = x.to_le_bytes();
    let mut session = model.session();
    for _ in 0..3 {
        let out = session.run([("x", &x)]).unwrap();
        assert!(!out["y"].shares_data(&x));
        assert!(out["y"].as_f32().unwrap().iter().all(|&v| v >= 0.0));
    }
    assert_eq!(x.to_le_bytes(), before, "the caller's input changed");
    let kept = x.clone();
    let out = model.run([("x", x)]).unwrap();
    assert!(!out["y"].shares_data(&kept));
    assert_eq!(kept.to_le_bytes(), before, "a tensor sharing the input changed");
}
