//! Runs a plan. Knows no op names: it moves values between slots, checks
//! the caller's inputs, and wraps op failures with the node's context.

use std::borrow::Cow;
use std::ops::Index;

use ndarray::{Dimension, IxDyn};

use crate::error::{Error, OpError, RunError};
use crate::graph::model::{Dim, Model};
use crate::graph::plan::PlanNode;
use crate::ops::{ExecCtx, OutputSet};
use crate::runtime::buffers::BufferPool;
use crate::runtime::fuse;
use crate::tensor::{DType, Tensor};

/// The outputs of a run, in the graph's output order.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    // `None` only inside a Session between runs (its buffers are then
    // lent to the pool); every entry is `Some` once a run returns.
    entries: Vec<(String, Option<Tensor>)>,
}

impl Outputs {
    /// The output called `name`, if the graph has one.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(entry, _)| entry == name).and_then(|(_, tensor)| tensor.as_ref())
    }

    /// The output called `name`, or an error naming the outputs there are.
    ///
    /// # Errors
    /// [`Error::UnknownOutput`] when the graph has no such output.
    pub fn require(&self, name: &str) -> Result<&Tensor, Error> {
        self.get(name).ok_or_else(|| Error::UnknownOutput {
            name: name.to_string(),
            available: self.entries.iter().map(|(entry, _)| entry.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// (name, tensor) pairs in graph order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().filter_map(|(name, tensor)| Some((name.as_str(), tensor.as_ref()?)))
    }

    /// Number of outputs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no outputs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the (name, tensor) pairs.
    pub fn into_vec(self) -> Vec<(String, Tensor)> {
        self.entries.into_iter().filter_map(|(name, tensor)| Some((name, tensor?))).collect()
    }
}

impl Index<&str> for Outputs {
    type Output = Tensor;

    /// `outputs["name"]`, as in the README's embedding example, for names the
    /// caller knows the model has.
    ///
    /// # Panics
    /// When the graph has no output called `name`, like indexing a
    /// `HashMap`: a mistake in the calling code, not in the model. Use
    /// [`Outputs::require`] (an [`Error`]) or [`Outputs::get`] (an `Option`)
    /// for names that come from elsewhere.
    fn index(&self, name: &str) -> &Tensor {
        match self.require(name) {
            Ok(tensor) => tensor,
            Err(err) => panic!("{err}"),
        }
    }
}

/// Shapes and dtypes of the owned inputs a node consumed (moved into the
/// op), kept for an error message without allocating (an `IxDyn` of rank
/// ≤ 4 lives inline); the other inputs are still in their slots.
type InputSummary = [Option<(DType, IxDyn)>; STACK_INPUTS];

/// Most inputs a node gets on the stack; more go in a vector.
const STACK_INPUTS: usize = 4;

/// Runs one node: values read for the last time move into the op (which
/// may then reuse their buffers), the rest are lent. `moved` records the
/// owned ones moved in, for [`describe`].
fn run_node<'a, R>(
    node: &PlanNode,
    values: &mut [Option<Cow<'a, Tensor>>],
    moved: &mut Option<InputSummary>,
    call: impl FnOnce(&mut [Option<Cow<'_, Tensor>>]) -> Result<R, OpError>,
) -> Result<R, OpError> {
    let n_inputs = node.inputs.len();
    let mut on_stack: [Option<Cow<'_, Tensor>>; STACK_INPUTS] = Default::default();
    let mut on_heap: Vec<Option<Cow<'_, Tensor>>> = Vec::new();
    let node_inputs: &mut [Option<Cow<'_, Tensor>>] = match on_stack.get_mut(..n_inputs) {
        Some(inputs) => inputs,
        None => {
            on_heap.resize_with(n_inputs, || None);
            &mut on_heap
        }
    };
    for (pos, (input, &consume)) in node.inputs.iter().zip(&node.consumes).enumerate() {
        if let (Some(slot), true) = (*input, consume) {
            node_inputs[pos] = match values[slot].take() {
                // A borrowed value costs nothing to keep: it stays in its
                // slot too (nobody reads it after this node), for `describe`.
                Some(Cow::Borrowed(value)) => {
                    values[slot] = Some(Cow::Borrowed(value));
                    Some(Cow::Borrowed(value))
                }
                Some(Cow::Owned(value)) => {
                    if let Some(entry) = moved.get_or_insert_with(Default::default).get_mut(pos) {
                        *entry = Some((value.dtype(), IxDyn(value.shape())));
                    }
                    Some(Cow::Owned(value))
                }
                None => None,
            };
        }
    }
    for (pos, (input, &consume)) in node.inputs.iter().zip(&node.consumes).enumerate() {
        if let (Some(slot), false) = (*input, consume) {
            node_inputs[pos] = values[slot].as_ref().map(|value| Cow::Borrowed(&**value));
        }
    }
    call(node_inputs)
}

/// Debug builds check every output against the type loading inferred for
/// it, so that the test suite (every fixture, every op) catches an
/// [`crate::ops::Op::infer`] that disagrees with [`crate::ops::Op::run`].
#[cfg(debug_assertions)]
fn check_inferred_types(
    node: &PlanNode,
    values: &[Option<Cow<'_, Tensor>>],
    types: &[Option<crate::graph::shapes::ValueType>],
) -> Result<(), OpError> {
    for &slot in node.outputs.iter().flatten() {
        let (Some(value), Some(Some(ty))) = (values[slot].as_deref(), types.get(slot)) else {
            continue;
        };
        let dims_agree = ty.dims.as_ref().is_none_or(|dims| {
            dims.len() == value.shape().len()
                && dims
                    .iter()
                    .zip(value.shape())
                    .all(|(dim, &size)| !matches!(dim, Dim::Fixed(fixed) if *fixed != size))
        });
        if ty.dtype != value.dtype() || !dims_agree {
            return Err(OpError::Invalid {
                op: "shape inference",
                reason: format!(
                    "inferred {ty} for output slot {slot}, the op produced {} {:?}",
                    value.dtype(),
                    value.shape()
                ),
            });
        }
    }
    Ok(())
}

/// Most outputs a node gets on the stack; more go in a vector.
const STACK_OUTPUTS: usize = 4;

/// Runs a node that declares several outputs (or one it leaves unnamed)
/// and stores the outputs something reads.
fn run_multi_output<'a>(
    node: &PlanNode,
    values: &mut [Option<Cow<'a, Tensor>>],
    ctx: &ExecCtx<'_>,
    moved: &mut Option<InputSummary>,
) -> Result<(), OpError> {
    let n_outputs = node.outputs.len();
    let (mut on_stack, mut wanted_on_stack): ([Option<Tensor>; STACK_OUTPUTS], [bool; STACK_OUTPUTS]) =
        Default::default();
    let (mut on_heap, mut wanted_on_heap) = (Vec::new(), Vec::new());
    let (produced, wanted): (&mut [Option<Tensor>], &mut [bool]) =
        match (on_stack.get_mut(..n_outputs), wanted_on_stack.get_mut(..n_outputs)) {
            (Some(produced), Some(wanted)) => (produced, wanted),
            _ => {
                on_heap.resize_with(n_outputs, || None);
                wanted_on_heap.resize(n_outputs, false);
                (&mut on_heap, &mut wanted_on_heap)
            }
        };
    for (want, slot) in wanted.iter_mut().zip(&node.outputs) {
        *want = slot.is_some();
    }
    run_node(node, values, moved, |inputs| node.op.run_outputs(inputs, ctx, &mut OutputSet::new(produced, wanted)))?;
    for (idx, slot) in node.outputs.iter().enumerate() {
        if let Some(slot) = *slot {
            let value = produced[idx].take().ok_or_else(|| OpError::Invalid {
                op: "graph",
                reason: format!("the op did not produce its output {idx}, which the graph reads"),
            })?;
            values[slot] = Some(Cow::Owned(value));
        }
    }
    Ok(())
}

/// The dtypes and shapes of a failed node's inputs, for its error: from
/// their slots, or for owned values moved into the op, from `moved`.
fn describe(node: &PlanNode, values: &[Option<Cow<'_, Tensor>>], moved: Option<&InputSummary>) -> String {
    let mut parts: Vec<String> = node
        .inputs
        .iter()
        .enumerate()
        .take(STACK_INPUTS)
        .map(|(pos, input)| {
            let in_slot = input.and_then(|slot| values[slot].as_deref());
            match (in_slot, moved.and_then(|moved| moved[pos].as_ref())) {
                (Some(value), _) => format!("{} {:?}", value.dtype(), value.shape()),
                (None, Some((dtype, shape))) => format!("{dtype} {:?}", shape.slice()),
                (None, None) => "none".to_string(),
            }
        })
        .collect();
    if node.inputs.len() > STACK_INPUTS {
        parts.push("…".to_string());
    }
    parts.join(", ")
}

impl Model {
    /// Runs the model on named inputs: owned tensors, which it takes over
    /// (so the first node may work in their buffers), or borrowed ones
    /// (`&Tensor`, left as they are), or a mix (any `Into<Cow<Tensor>>`).
    ///
    /// ```
    /// # fn main() -> Result<(), onnxi::Error> {
    /// let model = onnxi::Model::load("fixtures/seed/test_seed_sigmoid/model.onnx")?;
    /// let x = ndarray::array![-1.0f64, 2.0, -3.0, 4.0, 0.0].into_dyn();
    /// let out = model.run([("input", onnxi::Tensor::from(x))])?;
    /// let y = out["output"].as_f64()?;
    /// assert_eq!(y[[4]], 0.5);
    ///
    /// // Borrowed inputs stay with the caller.
    /// let x = onnxi::Tensor::from(ndarray::array![0.0f64, 0.0, 0.0, 0.0, 0.0].into_dyn());
    /// let out = model.run([("input", &x)])?;
    /// assert_eq!(out["output"].as_f64()?[[0]], 0.5);
    /// assert_eq!(x.shape(), [5]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Run`]: a missing, unknown, mistyped or misshapen input, or a
    /// node that failed (named with its op, opset and input shapes).
    pub fn run<'t, I, S, T>(&self, inputs: I) -> Result<Outputs, Error>
    where
        I: IntoIterator<Item = (S, T)>,
        S: AsRef<str>,
        T: Into<Cow<'t, Tensor>>,
    {
        let feeds = inputs.into_iter().map(|(name, tensor)| (name, tensor.into()));
        let mut scratch = Scratch::default();
        let mut values = self.bind(feeds, &mut scratch)?;
        let ctx = ExecCtx { par: &self.par, pool: None, max_tensor_bytes: self.limits.max_tensor_bytes };
        self.execute(&mut values, &ctx, None)?;
        let mut entries = Vec::with_capacity(self.plan.outputs.len());
        for (name, slot) in &self.plan.outputs {
            entries.push((name.clone(), Some(take_output(&mut values, *slot, name)?)));
        }
        Ok(Outputs { entries })
    }

    /// The chains of nodes the plan may run as fused steps (see the
    /// README's "Fused chains"), each as its node names in order. A chain
    /// runs fused when its input is float32 and every op has a kernel for
    /// the shape (Softmax over contiguous lanes); otherwise node by node.
    pub fn fused_chains(&self) -> Vec<Vec<&str>> {
        let nodes = &self.plan.nodes;
        let mut chains = Vec::new();
        let mut idx = 0;
        while let Some(node) = nodes.get(idx) {
            let chain = &nodes[idx..=(idx + node.links).min(nodes.len() - 1)];
            if node.links > 0 {
                chains.push(chain.iter().map(|node| node.name.as_str()).collect());
            }
            idx += chain.len();
        }
        chains
    }

    /// A reusable runner for one thread: it keeps its output buffers between
    /// runs and lends the outputs out, so repeated runs allocate nothing.
    pub fn session(&self) -> Session<'_> {
        let entries = self.plan.outputs.iter().map(|(name, _)| (name.clone(), None)).collect();
        // One buffer per value is the most a run can reuse.
        let pool = BufferPool::with_limit(self.plan.n_slots);
        Session { model: self, last: Outputs { entries }, pool, scratch: Scratch::default() }
    }

    /// Fills the value slots: constants lent, inputs checked and bound,
    /// defaults for inputs not given.
    fn bind<'a, I, S>(&'a self, feeds: I, scratch: &mut Scratch) -> Result<Vec<Option<Cow<'a, Tensor>>>, Error>
    where
        I: Iterator<Item = (S, Cow<'a, Tensor>)>,
        S: AsRef<str>,
    {
        let plan = &self.plan;
        let mut values: Vec<Option<Cow<'a, Tensor>>> =
            std::mem::take(&mut scratch.values).into_iter().map(|_| None).collect();
        values.resize_with(plan.n_slots, || None);
        for (slot, tensor) in &plan.constants {
            values[*slot] = Some(Cow::Borrowed(tensor));
        }
        let bound = &mut scratch.bound;
        bound.clear();
        for (name, tensor) in feeds {
            let name = name.as_ref();
            let Some(idx) = plan.inputs.iter().position(|spec| spec.name == name) else {
                return Err(RunError::UnknownInput { name: name.into(), expected: self.expected_inputs() }.into());
            };
            self.check_input(idx, &tensor, bound)?;
            values[plan.input_slots[idx]] = Some(tensor);
        }
        for (idx, spec) in plan.inputs.iter().enumerate() {
            let slot = plan.input_slots[idx];
            if values[slot].is_some() {
                continue;
            }
            match &plan.input_defaults[idx] {
                Some(default) => values[slot] = Some(Cow::Borrowed(default)),
                None => {
                    return Err(
                        RunError::MissingInput { name: spec.name.clone(), expected: self.expected_inputs() }.into()
                    );
                }
            }
        }
        Ok(values)
    }

    /// Runs every node in plan order over the value slots; with a
    /// profile, times each step into it (without one, no clock is read).
    fn execute<'a>(
        &'a self,
        values: &mut [Option<Cow<'a, Tensor>>],
        ctx: &ExecCtx<'_>,
        mut profile: Option<&mut Profile>,
    ) -> Result<(), Error> {
        let nodes = &self.plan.nodes;
        if let Some(profile) = profile.as_deref_mut() {
            profile.prepare(nodes);
        }
        // Nodes before `fused_until` ran inside a fused step; nodes before
        // `unfused_until` run one by one (a chain that could not be fused is
        // not retried from each of its nodes).
        let (mut fused_until, mut unfused_until) = (0, 0);
        for (idx, node) in nodes.iter().enumerate() {
            if idx < fused_until {
                continue;
            }
            let started = profile.is_some().then(std::time::Instant::now);
            if idx >= unfused_until && node.links > 0 {
                let chain = nodes.get(idx..=idx + node.links.min(fuse::MAX_CHAIN - 1)).unwrap_or_default();
                if fuse::run_chain(chain, values, ctx) {
                    fused_until = idx + chain.len();
                    if let (Some(profile), Some(started)) = (profile.as_deref_mut(), started) {
                        profile.record(idx, chain.len(), started.elapsed());
                    }
                    continue;
                }
                unfused_until = idx + chain.len();
            }
            let mut moved = None;
            let result = match *node.outputs {
                [Some(slot)] => run_node(node, values, &mut moved, |inputs| node.op.run(inputs, ctx))
                    .map(|produced| values[slot] = Some(Cow::Owned(produced))),
                _ => run_multi_output(node, values, ctx, &mut moved),
            };
            #[cfg(debug_assertions)]
            let result = result.and_then(|()| check_inferred_types(node, values, &self.plan.types));
            result.map_err(|source| RunError::Op {
                node: node.name.clone(),
                op_type: node.op_type.clone(),
                opset: node.version,
                inputs: describe(node, values, moved.as_ref()).into(),
                source,
            })?;
            if let (Some(profile), Some(started)) = (profile.as_deref_mut(), started) {
                profile.record(idx, 1, started.elapsed());
            }
        }
        Ok(())
    }

    fn expected_inputs(&self) -> String {
        let names: Vec<String> =
            self.plan.inputs.iter().map(|spec| format!("{} {} {}", spec.name, spec.dtype, spec.shape_text())).collect();
        names.join(", ")
    }

    /// The `dim_param` a binding refers to.
    fn symbol(&self, binding: &SymbolBinding) -> Option<&str> {
        match self.plan.inputs.get(binding.input_idx)?.dims.as_ref()?.get(binding.axis)? {
            Dim::Symbolic(param) => Some(param),
            _ => None,
        }
    }

    fn check_input(&self, input_idx: usize, tensor: &Tensor, bound: &mut Vec<SymbolBinding>) -> Result<(), RunError> {
        let spec = &self.plan.inputs[input_idx];
        if tensor.dtype() != spec.dtype {
            return Err(RunError::InputDtype { name: spec.name.clone(), expected: spec.dtype, actual: tensor.dtype() });
        }
        let bytes = tensor.n_bytes() as u64;
        if bytes > self.limits.max_tensor_bytes {
            return Err(RunError::TooLarge {
                what: format!("input {:?}", spec.name),
                limit: self.limits.max_tensor_bytes,
                actual: bytes,
            });
        }
        let Some(dims) = &spec.dims else {
            return Ok(());
        };
        let shape = tensor.shape();
        let mismatch = |detail: String| RunError::InputShape {
            name: spec.name.clone(),
            expected: format!("{}{detail}", spec.shape_text()),
            actual: shape.to_vec(),
        };
        if dims.len() != shape.len() {
            return Err(mismatch(format!(" (rank {})", dims.len())));
        }
        for (axis, (dim, &size)) in dims.iter().zip(shape).enumerate() {
            match dim {
                Dim::Fixed(expected) if *expected != size => {
                    return Err(mismatch(format!(" (dimension {axis} must be {expected})")));
                }
                Dim::Symbolic(param) => match bound.iter().find(|binding| self.symbol(binding) == Some(param.as_str()))
                {
                    Some(binding) if binding.size != size => {
                        let first = &self.plan.inputs[binding.input_idx].name;
                        return Err(mismatch(format!(" ({param} = {} from input {first:?})", binding.size)));
                    }
                    Some(_) => {}
                    None => bound.push(SymbolBinding { input_idx, axis, size }),
                },
                _ => {}
            }
        }
        Ok(())
    }
}

fn take_output(values: &mut [Option<Cow<'_, Tensor>>], slot: usize, name: &str) -> Result<Tensor, Error> {
    values[slot].take().map(Cow::into_owned).ok_or_else(|| {
        RunError::Op {
            node: String::new(),
            op_type: String::new(),
            opset: 0,
            inputs: Box::default(),
            source: crate::error::OpError::Invalid { op: "graph", reason: format!("output {name:?} was not computed") },
        }
        .into()
    })
}

/// A per-thread runner that reuses its buffers: outputs of one run become
/// the output buffers of the next, and inputs are borrowed, not moved.
///
/// ```
/// # fn main() -> Result<(), onnxi::Error> {
/// let model = onnxi::Model::load("fixtures/seed/test_seed_relu/model.onnx")?;
/// let mut session = model.session();
/// let x = onnxi::Tensor::from(ndarray::array![-1.0f64, 2.0, -3.0, 4.0, 0.0].into_dyn());
/// for _ in 0..3 {
///     let out = session.run([("input", &x)])?;
///     assert_eq!(out["output"].as_f64()?[[1]], 2.0);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Session<'m> {
    model: &'m Model,
    last: Outputs,
    pool: BufferPool,
    scratch: Scratch,
}

/// A `dim_param` bound by an input: which input and axis, and the size.
#[derive(Debug, Clone, Copy)]
struct SymbolBinding {
    input_idx: usize,
    axis: usize,
    size: usize,
}

/// Vectors kept between runs so that a run allocates nothing. They are
/// always empty between uses and change lifetime by an in-place `collect`
/// (same layout, so the allocation is kept).
#[derive(Debug, Default)]
struct Scratch {
    bound: Vec<SymbolBinding>,
    values: Vec<Option<Cow<'static, Tensor>>>,
}

impl Session<'_> {
    /// Runs the model on borrowed inputs; the outputs are lent until the
    /// next run.
    ///
    /// # Errors
    /// As [`Model::run`].
    pub fn run<'t, I, S>(&mut self, inputs: I) -> Result<&Outputs, Error>
    where
        I: IntoIterator<Item = (S, &'t Tensor)>,
        S: AsRef<str>,
    {
        self.run_with(inputs, None)
    }

    /// As [`Session::run`], and adds the wall time of each node (or fused
    /// chain) to `profile`; call it for several runs with one profile to
    /// accumulate. Only this call reads the clock per node: [`Session::run`]
    /// and [`Model::run`] pay nothing for profiling.
    ///
    /// ```
    /// # fn main() -> Result<(), onnxi::Error> {
    /// let model = onnxi::Model::load("fixtures/seed/test_seed_relu/model.onnx")?;
    /// let mut session = model.session();
    /// let mut profile = onnxi::Profile::default();
    /// let x = onnxi::Tensor::from(ndarray::array![-1.0f64, 2.0, -3.0, 4.0, 0.0].into_dyn());
    /// session.run_profiled([("input", &x)], &mut profile)?;
    /// assert_eq!(profile.nodes()[0].calls, 1);
    /// assert_eq!(profile.by_op_type()[0].op_type, "Relu");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Model::run`].
    pub fn run_profiled<'t, I, S>(&mut self, inputs: I, profile: &mut Profile) -> Result<&Outputs, Error>
    where
        I: IntoIterator<Item = (S, &'t Tensor)>,
        S: AsRef<str>,
    {
        profile.runs += 1;
        self.run_with(inputs, Some(profile))
    }

    fn run_with<'t, I, S>(&mut self, inputs: I, profile: Option<&mut Profile>) -> Result<&Outputs, Error>
    where
        I: IntoIterator<Item = (S, &'t Tensor)>,
        S: AsRef<str>,
    {
        let model = self.model;
        for (_, tensor) in &mut self.last.entries {
            if let Some(done) = tensor.take() {
                self.pool.recycle(done);
            }
        }
        let feeds = inputs.into_iter().map(|(name, tensor)| (name, Cow::Borrowed(tensor)));
        let mut values = model.bind(feeds, &mut self.scratch)?;
        let ctx = ExecCtx { par: &model.par, pool: Some(&self.pool), max_tensor_bytes: model.limits.max_tensor_bytes };
        let mut result = model.execute(&mut values, &ctx, profile);
        if result.is_ok() {
            for ((name, slot), (_, out)) in model.plan.outputs.iter().zip(&mut self.last.entries) {
                match take_output(&mut values, *slot, name) {
                    Ok(tensor) => *out = Some(tensor),
                    Err(err) => result = Err(err),
                }
            }
        }
        // Intermediate values that were not consumed go back to the pool,
        // and the emptied slot vector is kept for the next run.
        for value in values.iter_mut().filter_map(Option::take) {
            if let Cow::Owned(tensor) = value {
                self.pool.recycle(tensor);
            }
        }
        values.clear();
        self.scratch.values = values.into_iter().map(|_| None).collect();
        result?;
        Ok(&self.last)
    }
}

/// Time spent per node over profiled runs ([`Session::run_profiled`]). A
/// fused chain counts as one step, named after its nodes joined by `+`,
/// with the op type `Fused(A+B)`.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    runs: usize,
    // One entry per plan node, in plan order (filled on first use).
    by_node: Vec<NodeTime>,
}

/// One node's (or fused chain's) accumulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTime {
    /// The node's name (a fused chain: its nodes' names joined by `+`).
    pub name: String,
    /// The op type (a fused chain: `Fused(A+B)`).
    pub op_type: String,
    /// How many times it ran.
    pub calls: u64,
    /// Total wall time over those calls.
    pub total: std::time::Duration,
}

impl NodeTime {
    /// The mean time per call.
    pub fn mean(&self) -> std::time::Duration {
        self.total.checked_div(u32::try_from(self.calls.max(1)).unwrap_or(u32::MAX)).unwrap_or_default()
    }
}

impl Profile {
    fn prepare(&mut self, nodes: &[PlanNode]) {
        if self.by_node.len() != nodes.len() {
            self.by_node = nodes
                .iter()
                .map(|node| NodeTime {
                    name: node.name.clone(),
                    op_type: node.op_type.clone(),
                    calls: 0,
                    total: std::time::Duration::ZERO,
                })
                .collect();
        }
    }

    fn record(&mut self, idx: usize, len: usize, elapsed: std::time::Duration) {
        if len > 1
            && self.by_node.get(idx).is_some_and(|entry| entry.calls == 0 && !entry.op_type.starts_with("Fused("))
        {
            let chain = self.by_node.get(idx..idx + len).unwrap_or_default();
            let name = chain.iter().map(|entry| entry.name.as_str()).collect::<Vec<_>>().join("+");
            let ops = chain.iter().map(|entry| entry.op_type.as_str()).collect::<Vec<_>>().join("+");
            if let Some(entry) = self.by_node.get_mut(idx) {
                *entry = NodeTime { name, op_type: format!("Fused({ops})"), calls: 0, total: entry.total };
            }
        }
        if let Some(entry) = self.by_node.get_mut(idx) {
            entry.calls += 1;
            entry.total += elapsed;
        }
    }

    /// How many profiled runs this profile holds.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// The total time over all steps.
    pub fn total(&self) -> std::time::Duration {
        self.by_node.iter().map(|entry| entry.total).sum()
    }

    /// The steps that ran, most total time first.
    pub fn nodes(&self) -> Vec<NodeTime> {
        let mut nodes: Vec<NodeTime> = self.by_node.iter().filter(|entry| entry.calls > 0).cloned().collect();
        nodes.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
        nodes
    }

    /// The time per op type (`name` is the op type too), most total first.
    pub fn by_op_type(&self) -> Vec<NodeTime> {
        let mut ops: Vec<NodeTime> = Vec::new();
        for entry in self.by_node.iter().filter(|entry| entry.calls > 0) {
            match ops.iter_mut().find(|op| op.op_type == entry.op_type) {
                Some(op) => {
                    op.calls += entry.calls;
                    op.total += entry.total;
                }
                None => ops.push(NodeTime {
                    name: entry.op_type.clone(),
                    op_type: entry.op_type.clone(),
                    calls: entry.calls,
                    total: entry.total,
                }),
            }
        }
        ops.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.op_type.cmp(&b.op_type)));
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Model>();
        fn assert_send<T: Send>() {}
        assert_send::<Session<'static>>();
    }
}
