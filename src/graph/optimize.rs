//! Load-time graph optimisation, after constant folding: rewrites of the
//! plan that keep what a model computes, each optional
//! ([`crate::ModelBuilder::optimize`] and the per-pass switches) and each
//! tested against the model run with it off (`tests/optimize.rs`).
//!
//! | pass | what | equal to the original |
//! |---|---|---|
//! | dead nodes | nodes none of whose outputs reaches a graph output are removed | bit for bit (a removed node's error no longer stops a run) |
//! | BatchNormalization folding | `Conv → BatchNormalization` with W, B, scale, bias, mean, var constant becomes one Conv: `s = scale/√(var + ε)`, `W' = W·s`, `B' = (B − mean)·s + bias`, in float64, rounded once | within rounding (the weights are rounded instead of the product) |
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
            let Some(conv_idx) = producer[*x] else { continue };
            let Some(conv) = &nodes[conv_idx] else { continue };
            let is_plain_conv =
                conv.op.as_any().and_then(|any| any.downcast_ref::<Conv>()).is_some_and(|conv| conv.epilogue.is_none());
            if !is_plain_conv || conv.outputs.len() != 1 {
                continue;
            }
            let constant = |input: Option<&Option<usize>>| -> Option<&Tensor> {
                input.copied().flatten().and_then(|slot| constant_of[slot]).map(|idx| &constants[idx].1)
            };
            let params: Option<Vec<&Tensor>> = (1..5).map(|idx| constant(bn.inputs.get(idx))).collect();
            let (Some(params), Some(w)) = (params, constant(conv.inputs.get(1))) else { continue };
            let b = match conv.inputs.get(2).copied().flatten() {
                None => None,
                Some(_) => match constant(conv.inputs.get(2)) {
                    Some(b) => Some(b),
                    None => continue,
                },
            };
            let Some((new_w, new_b)) = fold_into_conv(w, b, &params, epsilon) else { continue };
            let (conv_name, bn_name) = (conv.name.clone(), bn.name.clone());
            let bn_out = bn.outputs[0];
            let w_slot = conv.inputs[1].unwrap_or_default();
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
            if let Some(conv) = &mut nodes[conv_idx] {
                let x = conv.inputs[0];
                conv.inputs = vec![x, Some(w_slot), Some(b_slot)].into_boxed_slice();
                conv.outputs = vec![bn_out].into_boxed_slice();
                conv.consumes = vec![false; 3].into_boxed_slice();
            }
            rewrites.push(format!("Conv {conv_name} + BatchNormalization {bn_name} → Conv {conv_name} (folded)"));
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

/// The folded weight and bias of a Conv followed by a BatchNormalization
/// (`params`: scale, bias, mean, var), computed in float64 and rounded
/// once to W's type; `None` when the shapes or types do not fit.
fn fold_into_conv(w: &Tensor, b: Option<&Tensor>, params: &[&Tensor], epsilon: f64) -> Option<(Tensor, Tensor)> {
    let dtype = w.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) || w.shape().len() < 3 || b.is_some_and(|b| b.dtype() != dtype) {
        return None;
    }
    let m = w.shape()[0];
    let wide = |tensor: &Tensor| -> Option<Vec<f64>> {
        if !tensor.dtype().is_float() {
            return None;
        }
        let wide = cast(tensor, DType::F64);
        wide.view::<f64>().ok().map(|view| view.iter().copied().collect())
    };
    let params: Vec<Vec<f64>> = params.iter().map(|tensor| wide(tensor)).collect::<Option<_>>()?;
    if params.iter().any(|values| values.len() != m) {
        return None;
    }
    let (scale, bias, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
    let s: Vec<f64> = (0..m).map(|ch| scale[ch] / (var[ch] + epsilon).sqrt()).collect();
    let w_values = wide(w)?;
    let per_channel = w_values.len() / m.max(1);
    let new_w: Vec<f64> =
        w_values.iter().enumerate().map(|(idx, &value)| value * s[idx / per_channel.max(1)]).collect();
    let b_values = match b {
        Some(b) => wide(b).filter(|values| values.len() == m)?,
        None => vec![0.0; m],
    };
    let new_b: Vec<f64> = (0..m).map(|ch| (b_values[ch] - mean[ch]) * s[ch] + bias[ch]).collect();
    let new_w = Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(w.shape()), new_w).ok()?);
    let new_b = Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[m]), new_b).ok()?);
    Some((cast(&new_w, dtype), cast(&new_b, dtype)))
}
