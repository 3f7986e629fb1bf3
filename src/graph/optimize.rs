//! Load-time graph optimisation, after constant folding: rewrites of the
//! plan that keep what a model computes, each optional
//! ([`crate::ModelBuilder::optimize`] and the per-pass switches) and each
//! tested against the model run with it off (`tests/optimize.rs`).
//!
//! | pass | what | equal to the original |
//! |---|---|---|
//! | dead nodes | nodes none of whose outputs reaches a graph output are removed | bit for bit (a removed node's error no longer stops a run) |
//! | BatchNormalization folding | `Conv`, `ConvTranspose` or `Gemm` → `BatchNormalization` (float32/float64, the BatchNormalization the only reader) with W, B, scale, bias, mean, var constant becomes one op: `s = scale/√(var + ε)`, each output channel's weights times `s` (ConvTranspose: `W[ci, j, …]` feeds channel `(ci / (C/group))·(M/group) + j`; Gemm: column n of B, row n with `transB`), `B' = (B − mean)·s + bias` (Gemm: `C' = beta·C·s + bias − mean·s`, then `beta = 1`), in float64, rounded once | within rounding (the weights are rounded instead of the product) |
//! | MatMul + Add → Gemm | a 2-D A times a constant 2-D B plus a constant C of shape `[]`, `[N]` or `[1, N]` | bit for bit: the Gemm adds C to each block after the product (`fl(A·B) + C`, as the Add did) |
//! | activation fusion | a declared elementwise op (Relu, Sigmoid, …) reading only a Conv, Gemm or MatMul output runs as that op's epilogue, on each block of rows once computed | bit for bit (the activation's own kernel, see [`crate::ops::epilogue`]) |
//!
//! The passes work on plan nodes (ops already built) and slots, then the
//! plan is ordered, marked and typed again by `Plan::new` and
//! `Plan::infer_types`.

use crate::error::{LoadError, OpError};
use crate::graph::plan::{Plan, PlanNode};
use crate::ops::cast::cast;
use crate::ops::conv::Conv;
use crate::ops::conv_transpose::ConvTranspose;
use crate::ops::epilogue::Epilogue;
use crate::ops::gemm::{CShape, Gemm, matmul_dtypes};
use crate::ops::matmul::MatMul;
use crate::ops::normalization::BatchNormalization;
use crate::tensor::{DType, Tensor};

/// Which passes run (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Passes {
    pub dead_nodes: bool,
    pub fold_batch_norm: bool,
    pub matmul_add_to_gemm: bool,
    pub fuse_activations: bool,
}

impl Default for Passes {
    fn default() -> Self {
        Passes { dead_nodes: true, fold_batch_norm: true, matmul_add_to_gemm: true, fuse_activations: true }
    }
}

impl Passes {
    fn any(&self) -> bool {
        self.dead_nodes || self.fold_batch_norm || self.matmul_add_to_gemm || self.fuse_activations
    }
}

/// What the optimiser did to a model, for `onnxi inspect`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Optimized {
    /// Nodes in the plan before the passes (after constant folding).
    pub nodes_before: usize,
    /// Nodes after.
    pub nodes_after: usize,
    /// One line per rewrite, e.g. `Relu r1 fused into Conv conv1`.
    pub rewrites: Vec<String>,
}

/// Runs the enabled passes over `plan`.
///
/// # Errors
/// Only what re-ordering the plan can report (which a valid plan never
/// does).
pub(crate) fn optimize(plan: Plan, passes: Passes) -> Result<(Plan, Optimized), LoadError> {
    let nodes_before = plan.nodes.len();
    if !passes.any() {
        return Ok((plan, Optimized { nodes_before, nodes_after: nodes_before, rewrites: Vec::new() }));
    }
    let Plan { nodes, mut n_slots, inputs, input_slots, input_defaults, mut constants, outputs, mut names, types } =
        plan;
    let mut nodes: Vec<Option<PlanNode>> = nodes.into_iter().map(Some).collect();
    let mut rewrites = Vec::new();
    let output_slots: Vec<usize> = outputs.iter().map(|(_, slot)| *slot).collect();

    if passes.dead_nodes {
        let mut live = vec![false; n_slots];
        for &slot in &output_slots {
            live[slot] = true;
        }
        // Plan order is topological: a node's readers come after it.
        for entry in nodes.iter_mut().rev() {
            let Some(node) = entry else { continue };
            if node.outputs.iter().flatten().any(|&slot| live[slot]) {
                for &slot in node.inputs.iter().flatten() {
                    live[slot] = true;
                }
            } else {
                rewrites.push(format!("{} {} removed (nothing reads its outputs)", node.op_type, node.name));
                *entry = None;
            }
        }
    }

    if passes.fold_batch_norm {
        let constant_of = constant_index(&constants, n_slots);
        let (readers, producer) = readers_and_producer(&nodes, &output_slots, n_slots);
        for bn_idx in 0..nodes.len() {
            let Some(bn) = &nodes[bn_idx] else { continue };
            let Some(epsilon) = bn
                .op
                .as_any()
                .and_then(|any| any.downcast_ref::<BatchNormalization>())
                .filter(|bn| !bn.per_element)
                .map(|bn| bn.epsilon)
            else {
                continue;
            };
            let (Some(Some(x)), [Some(_), rest @ ..]) = (bn.inputs.first(), &*bn.outputs) else { continue };
            if rest.iter().any(Option::is_some) || bn.inputs.len() != 5 || readers[*x] != 1 {
                continue;
            }
            let Some(src_idx) = producer[*x] else { continue };
            let Some(src) = &nodes[src_idx] else { continue };
            let Some(target) = fold_target(src.op.as_ref()) else { continue };
            if src.outputs.len() != 1 {
                continue;
            }
            let constant = |input: Option<&Option<usize>>| -> Option<&Tensor> {
                input.copied().flatten().and_then(|slot| constant_of[slot]).map(|idx| &constants[idx].1)
            };
            let params: Option<Vec<&Tensor>> = (1..5).map(|idx| constant(bn.inputs.get(idx))).collect();
            let (Some(params), Some(w)) = (params, constant(src.inputs.get(1))) else { continue };
            // The optional third input (Conv's and ConvTranspose's B,
            // Gemm's C) must be a constant when present.
            let b = match src.inputs.get(2).copied().flatten() {
                None => None,
                Some(_) => match constant(src.inputs.get(2)) {
                    Some(b) => Some(b),
                    None => continue,
                },
            };
            let folded = match &target {
                FoldTarget::Conv => fold_into_conv(w, b, &params, epsilon, None),
                FoldTarget::ConvTranspose(group) => fold_into_conv(w, b, &params, epsilon, Some(*group)),
                FoldTarget::Gemm(gemm) => fold_into_gemm(gemm, w, b, &params, epsilon),
            };
            let Some((new_w, new_b)) = folded else { continue };
            let (src_name, bn_name, op_type) = (src.name.clone(), bn.name.clone(), src.op_type.clone());
            let bn_out = bn.outputs[0];
            let w_slot = src.inputs[1].unwrap_or_default();
            let w_name = format!("{}_bn_folded", names.get(w_slot).map_or("", |name| &**name));
            let mut new_slot = |tensor: Tensor, name: String| {
                let slot = n_slots;
                n_slots += 1;
                names.push(name.into_boxed_str());
                constants.push((slot, tensor));
                slot
            };
            let w_slot = new_slot(new_w, w_name);
            let b_slot = new_slot(new_b, format!("{bn_name}_bias_folded"));
            nodes[bn_idx] = None;
            if let Some(src) = &mut nodes[src_idx] {
                let x = src.inputs[0];
                src.inputs = vec![x, Some(w_slot), Some(b_slot)].into_boxed_slice();
                src.outputs = vec![bn_out].into_boxed_slice();
                src.consumes = vec![false; 3].into_boxed_slice();
                if let FoldTarget::Gemm(gemm) = target {
                    // beta·C is folded into the new C, which may broadcast
                    // where the old one had to be exactly [M, N].
                    src.op = Box::new(Gemm { beta: 1.0, c_shape: CShape::Broadcast, ..gemm });
                }
            }
            rewrites
                .push(format!("{op_type} {src_name} + BatchNormalization {bn_name} → {op_type} {src_name} (folded)"));
        }
    }

    if passes.matmul_add_to_gemm {
        let constant_of = constant_index(&constants, n_slots);
        let (readers, producer) = readers_and_producer(&nodes, &output_slots, n_slots);
        for add_idx in 0..nodes.len() {
            let Some(add) = &nodes[add_idx] else { continue };
            // Add before opset 7 broadcast only with its `broadcast`
            // attribute: left alone.
            if add.op_type != "Add" || add.version < 7 || add.inputs.len() != 2 || add.outputs.len() != 1 {
                continue;
            }
            let (Some(first), Some(second)) = (add.inputs[0], add.inputs[1]) else { continue };
            // Which side is the MatMul's output, which the constant C.
            let found = [(first, second), (second, first)].into_iter().find_map(|(product, c)| {
                let mm_idx = producer[product]?;
                let mm = nodes[mm_idx].as_ref()?;
                let plain = mm.op.as_any()?.downcast_ref::<MatMul>()?.epilogue.is_none();
                let c_idx = constant_of[c]?;
                (plain && readers[product] == 1).then_some((mm_idx, c, c_idx))
            });
            let Some((mm_idx, c_slot, c_idx)) = found else { continue };
            let Some(mm) = &nodes[mm_idx] else { continue };
            let (Some(Some(a)), Some(Some(b))) = (mm.inputs.first(), mm.inputs.get(1)) else { continue };
            let Some(b_idx) = constant_of[*b] else { continue };
            let (b_tensor, c_tensor) = (&constants[b_idx].1, &constants[c_idx].1);
            let a_is_matrix = types.get(*a).and_then(Option::as_ref).and_then(|ty| ty.dims.as_ref()).map(Vec::len);
            let n = b_tensor.shape().last().copied().unwrap_or(0);
            let c_fits = match c_tensor.shape() {
                [] => true,
                [len] | [1, len] => *len == n || *len == 1,
                _ => false,
            };
            let float = matches!(b_tensor.dtype(), DType::F32 | DType::F64);
            if a_is_matrix != Some(2) || b_tensor.shape().len() != 2 || !c_fits || !float {
                continue;
            }
            if c_tensor.dtype() != b_tensor.dtype() {
                continue;
            }
            let gemm = Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: false,
                c_shape: CShape::Broadcast,
                c_optional: true,
                dtypes: matmul_dtypes(13),
                c_after_product: true,
                epilogue: None,
            };
            let (a, b, add_out) = (*a, *b, add.outputs[0]);
            let add_name = add.name.clone();
            nodes[add_idx] = None;
            if let Some(mm) = &mut nodes[mm_idx] {
                rewrites.push(format!(
                    "MatMul {} + Add {add_name} → Gemm {} (C added after the product)",
                    mm.name, mm.name
                ));
                mm.op = Box::new(gemm);
                mm.op_type = "Gemm".into();
                mm.version = 13;
                mm.inputs = vec![Some(a), Some(b), Some(c_slot)].into_boxed_slice();
                mm.outputs = vec![add_out].into_boxed_slice();
                mm.consumes = vec![false; 3].into_boxed_slice();
            }
        }
    }

    if passes.fuse_activations {
        let (readers, producer) = readers_and_producer(&nodes, &output_slots, n_slots);
        for act_idx in 0..nodes.len() {
            let Some(act) = &nodes[act_idx] else { continue };
            let ([Some(input)], [Some(_)]) = (&*act.inputs, &*act.outputs) else { continue };
            if !act.op.chains() || act.op.chain_kernel(&[1]) != Some(crate::ops::ChainKernel::Map) {
                continue;
            }
            let Some(src_idx) = producer[*input] else { continue };
            let Some(src) = &nodes[src_idx] else { continue };
            if readers[*input] != 1 || src.outputs.len() != 1 || !takes_epilogue(src.op.as_ref()) {
                continue;
            }
            let Some(act) = nodes[act_idx].take() else { continue };
            let Ok(epilogue) = Epilogue::new(act.op) else {
                return Err(internal(&act.name, &act.op_type, "its op is not elementwise"));
            };
            let Some(src) = &mut nodes[src_idx] else { continue };
            if src.op.fuse_epilogue(epilogue).is_err() {
                return Err(internal(&src.name, &src.op_type, "its op refused the epilogue"));
            }
            src.outputs = act.outputs;
            rewrites.push(format!("{} {} fused into {} {}", act.op_type, act.name, src.op_type, src.name));
        }
    }

    let nodes: Vec<PlanNode> = nodes.into_iter().flatten().collect();
    let nodes_after = nodes.len();
    // Constants nothing reads any more (a folded BatchNormalization's
    // parameters, a dead node's weights) are dropped, as folding does.
    let mut used = vec![false; n_slots];
    for node in &nodes {
        for &slot in node.inputs.iter().flatten() {
            used[slot] = true;
        }
    }
    for &slot in &output_slots {
        used[slot] = true;
    }
    constants.retain(|(slot, _)| used[*slot]);
    let mut plan = Plan::new(nodes, n_slots, inputs, input_slots, input_defaults, constants, outputs)?;
    names.resize(n_slots, Box::default());
    plan.names = names;
    plan.infer_types();
    Ok((plan, Optimized { nodes_before, nodes_after, rewrites }))
}

/// An error for a rewrite that went against its own checks.
fn internal(node: &str, op_type: &str, reason: &str) -> LoadError {
    LoadError::Fold {
        node: node.into(),
        op_type: op_type.into(),
        source: OpError::Invalid { op: "graph", reason: format!("optimisation failed: {reason}") },
    }
}

/// Whether `op` runs an epilogue (a Conv, Gemm or MatMul without one yet).
fn takes_epilogue(op: &dyn crate::ops::Op) -> bool {
    let Some(any) = op.as_any() else { return false };
    if let Some(conv) = any.downcast_ref::<Conv>() {
        return conv.epilogue.is_none();
    }
    if let Some(gemm) = any.downcast_ref::<Gemm>() {
        return gemm.epilogue.is_none();
    }
    any.downcast_ref::<MatMul>().is_some_and(|matmul| matmul.epilogue.is_none())
}

/// Per slot, its index in `constants`.
fn constant_index(constants: &[(usize, Tensor)], n_slots: usize) -> Vec<Option<usize>> {
    let mut index = vec![None; n_slots];
    for (idx, (slot, _)) in constants.iter().enumerate() {
        index[*slot] = Some(idx);
    }
    index
}

/// Per slot: how many node inputs and graph outputs read it, and which
/// node produces it.
fn readers_and_producer(
    nodes: &[Option<PlanNode>],
    output_slots: &[usize],
    n_slots: usize,
) -> (Vec<usize>, Vec<Option<usize>>) {
    let mut readers = vec![0usize; n_slots];
    let mut producer = vec![None; n_slots];
    for (idx, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        for &slot in node.inputs.iter().flatten() {
            readers[slot] += 1;
        }
        for &slot in node.outputs.iter().flatten() {
            producer[slot] = Some(idx);
        }
    }
    for &slot in output_slots {
        readers[slot] += 1;
    }
    (readers, producer)
}

/// An op a following BatchNormalization can be folded into.
enum FoldTarget {
    /// A Conv without an epilogue: W is `[M, C/group, k…]`.
    Conv,
    /// A ConvTranspose with this `group`: W is `[C, M/group, k…]`.
    ConvTranspose(usize),
    /// A Gemm without an epilogue (a copy of it): the BatchNormalization
    /// runs over the columns of its `[M, N]` output.
    Gemm(Gemm),
}

/// What `op` is for BatchNormalization folding, if anything.
fn fold_target(op: &dyn crate::ops::Op) -> Option<FoldTarget> {
    let any = op.as_any()?;
    if let Some(conv) = any.downcast_ref::<Conv>() {
        return conv.epilogue.is_none().then_some(FoldTarget::Conv);
    }
    if let Some(conv) = any.downcast_ref::<ConvTranspose>() {
        return Some(FoldTarget::ConvTranspose(conv.group));
    }
    let gemm = any.downcast_ref::<Gemm>()?;
    gemm.epilogue.is_none().then(|| FoldTarget::Gemm(gemm.clone()))
}

/// A float tensor's values in float64 (row-major), `None` for other types.
fn wide(tensor: &Tensor) -> Option<Vec<f64>> {
    if !tensor.dtype().is_float() {
        return None;
    }
    let wide = cast(tensor, DType::F64).ok()?;
    wide.view::<f64>().ok().map(|view| view.iter().copied().collect())
}

/// The per-channel factor `s = scale/√(var + ε)` and shift
/// `bias − mean·s` of a BatchNormalization (`params`: scale, bias, mean,
/// var) over `m` channels; `None` when a parameter is not a float vector
/// of `m` values.
fn bn_affine(params: &[&Tensor], epsilon: f64, m: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let params: Vec<Vec<f64>> = params.iter().map(|tensor| wide(tensor)).collect::<Option<_>>()?;
    if params.len() != 4 || params.iter().any(|values| values.len() != m) {
        return None;
    }
    let (scale, bias, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
    let s: Vec<f64> = (0..m).map(|ch| scale[ch] / (var[ch] + epsilon).sqrt()).collect();
    let shift = (0..m).map(|ch| bias[ch] - mean[ch] * s[ch]).collect();
    Some((s, shift))
}

/// Builds a tensor of `shape` from float64 values, rounded once to `dtype`.
fn rounded(shape: &[usize], values: Vec<f64>, dtype: DType) -> Option<Tensor> {
    let wide = Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values).ok()?);
    cast(&wide, dtype).ok()
}

/// The folded weight and bias of a Conv (`group: None`) or ConvTranspose
/// (`Some(group)`) followed by a BatchNormalization (`params`: scale,
/// bias, mean, var), computed in float64 and rounded once to W's type;
/// `None` when the shapes or types do not fit.
fn fold_into_conv(
    w: &Tensor,
    b: Option<&Tensor>,
    params: &[&Tensor],
    epsilon: f64,
    transposed: Option<usize>,
) -> Option<(Tensor, Tensor)> {
    let dtype = w.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) || w.shape().len() < 3 || b.is_some_and(|b| b.dtype() != dtype) {
        return None;
    }
    let per_kernel: usize = w.shape()[2..].iter().product();
    // The output channel of each weight element, from its flat index.
    let (m, channel_of): (usize, Box<dyn Fn(usize) -> usize>) = match transposed {
        None => {
            // W is [M, C/group, k…]: one output channel per row.
            let per_channel = w.shape()[1] * per_kernel;
            (w.shape()[0], Box::new(move |idx| idx / per_channel.max(1)))
        }
        Some(group) => {
            // W is [C, M/group, k…]: input channel ci (of group
            // ci / (C/group)) feeds output channels g·(M/group) + j.
            let (c, m_group) = (w.shape()[0], w.shape()[1]);
            if group == 0 || c % group != 0 {
                return None;
            }
            let c_group = c / group;
            let channel = move |idx: usize| {
                let j = idx / per_kernel.max(1);
                let (ci, j) = (j / m_group.max(1), j % m_group.max(1));
                ci / c_group * m_group + j
            };
            (m_group.checked_mul(group)?, Box::new(channel))
        }
    };
    let (s, shift) = bn_affine(params, epsilon, m)?;
    let new_w: Vec<f64> = wide(w)?.iter().enumerate().map(|(idx, &value)| value * s[channel_of(idx)]).collect();
    let b_values = match b {
        Some(b) => wide(b).filter(|values| values.len() == m)?,
        None => vec![0.0; m],
    };
    let new_b: Vec<f64> = (0..m).map(|ch| b_values[ch] * s[ch] + shift[ch]).collect();
    Some((rounded(w.shape(), new_w, dtype)?, rounded(&[m], new_b, dtype)?))
}

/// The folded B and C of a Gemm followed by a BatchNormalization over
/// the N columns of its output: `B'` is B with column n (row n with
/// `transB`) times `s[n]`, and `C' = beta·C·s + bias − mean·s` broadcast
/// to `[N]` (or `[M, N]` when C varies along M), for a Gemm with
/// `beta = 1`; in float64, rounded once to B's type.
fn fold_into_gemm(
    gemm: &Gemm,
    b: &Tensor,
    c: Option<&Tensor>,
    params: &[&Tensor],
    epsilon: f64,
) -> Option<(Tensor, Tensor)> {
    let dtype = b.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) || c.is_some_and(|c| c.dtype() != dtype) {
        return None;
    }
    let &[rows, cols] = b.shape() else { return None };
    let n = if gemm.trans_b { rows } else { cols };
    let (s, shift) = bn_affine(params, epsilon, n)?;
    let new_b: Vec<f64> = wide(b)?
        .iter()
        .enumerate()
        .map(|(idx, &value)| value * s[if gemm.trans_b { idx / cols.max(1) } else { idx % cols.max(1) }])
        .collect();
    let beta = f64::from(gemm.beta);
    // C as a [M_C, N] matrix (M_C = 1 unless C varies along M).
    let (c_rows, c_values) = match c {
        Some(c) if beta != 0.0 => {
            let m_c = match c.shape() {
                [] | [_] => 1,
                [m_c, _] => *m_c,
                _ => return None,
            };
            let values = wide(c)?;
            let c_cols = match c.shape() {
                [] => 1,
                [len] | [_, len] => *len,
                _ => return None,
            };
            if c_cols != 1 && c_cols != n {
                return None;
            }
            let full: Vec<f64> = (0..m_c * n)
                .map(|idx| {
                    let (row, col) = (idx / n.max(1), idx % n.max(1));
                    values[row * c_cols + if c_cols == 1 { 0 } else { col }] * beta
                })
                .collect();
            (m_c, full)
        }
        _ => (1, vec![0.0; n]),
    };
    let new_c: Vec<f64> =
        c_values.iter().enumerate().map(|(idx, &value)| value * s[idx % n.max(1)] + shift[idx % n.max(1)]).collect();
    let c_shape: Vec<usize> = if c_rows == 1 { vec![n] } else { vec![c_rows, n] };
    Some((rounded(b.shape(), new_b, dtype)?, rounded(&c_shape, new_c, dtype)?))
}
