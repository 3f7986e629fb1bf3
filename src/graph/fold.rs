//! Load-time constant folding: every node whose inputs are all constants
//! (initializers that are not graph inputs, Constant nodes, outputs of
//! nodes folded before it) runs once at load, and its outputs become
//! constants of the plan. PyTorch exports compute shapes this way
//! (`Shape → Gather → Concat → Reshape`), and weights pass through
//! `Transpose`/`Cast` before use.
//!
//! Folded values are paid for from the same budget as initializers
//! ([`crate::Limits::max_initializer_bytes`]) and each is held to
//! [`crate::Limits::max_tensor_bytes`]. Constants that no remaining node
//! reads and no graph output names are dropped.

use std::borrow::Cow;

use crate::error::LoadError;
use crate::graph::plan::{Plan, PlanNode};
use crate::kernels::Parallel;
use crate::ops::{ExecCtx, OutputSet};
use crate::tensor::Tensor;

/// Folds the constant nodes of `plan`, returning the smaller plan.
/// `charge(value, node)` pays for each folded output of a node with inputs
/// (and refuses it past the limits); a node without inputs (Constant)
/// outputs what its attributes held, which loading charged. Ops that size
/// an output from their inputs refuse one above `max_tensor_bytes`.
///
/// # Errors
/// [`LoadError::Fold`] when a node fails on its constant inputs (it would
/// fail on every run), or whatever `charge` refuses.
pub(crate) fn fold_constants(
    plan: Plan,
    max_tensor_bytes: u64,
    mut charge: impl FnMut(&Tensor, &str) -> Result<(), LoadError>,
) -> Result<Plan, LoadError> {
    let Plan { nodes, n_slots, inputs, input_slots, input_defaults, mut constants, outputs, .. } = plan;
    // Per slot, its index in `constants`.
    let mut constant_of: Vec<Option<usize>> = vec![None; n_slots];
    for (idx, (slot, _)) in constants.iter().enumerate() {
        constant_of[*slot] = Some(idx);
    }
    let par = Parallel::serial();
    let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes };
    let mut kept: Vec<PlanNode> = Vec::with_capacity(nodes.len());
    let mut folded_any = false;
    for node in nodes {
        let all_constant = node.inputs.iter().flatten().all(|&slot| constant_of[slot].is_some());
        if !all_constant || !node.op.foldable() {
            kept.push(node);
            continue;
        }
        folded_any = true;
        let mut produced: Vec<Option<Tensor>> = vec![None; node.outputs.len()];
        let wanted: Vec<bool> = node.outputs.iter().map(Option::is_some).collect();
        {
            let mut node_inputs: Vec<Option<Cow<'_, Tensor>>> = node
                .inputs
                .iter()
                .map(|input| input.and_then(|slot| constant_of[slot]).map(|idx| Cow::Borrowed(&constants[idx].1)))
                .collect();
            let result = node.op.run_outputs(&mut node_inputs, &ctx, &mut OutputSet::new(&mut produced, &wanted));
            result.map_err(|source| LoadError::Fold {
                node: node.name.clone(),
                op_type: node.op_type.clone(),
                source,
            })?;
        }
        for (output, value) in node.outputs.iter().zip(produced) {
            let (Some(slot), Some(value)) = (*output, value) else {
                continue;
            };
            // A node without inputs outputs what its attributes hold,
            // which loading already charged.
            if !node.inputs.is_empty() {
                charge(&value, &node.name)?;
            }
            constant_of[slot] = Some(constants.len());
            constants.push((slot, value));
        }
        if let Some((idx, _)) =
            node.outputs.iter().enumerate().find(|(_, slot)| slot.is_some_and(|slot| constant_of[slot].is_none()))
        {
            return Err(LoadError::Fold {
                node: node.name.clone(),
                op_type: node.op_type.clone(),
                source: crate::error::OpError::Invalid {
                    op: "graph",
                    reason: format!("output {idx} was not produced"),
                },
            });
        }
    }
    if !folded_any {
        // Order, last uses and links are those already computed.
        return Ok(Plan {
            nodes: kept,
            n_slots,
            inputs,
            input_slots,
            input_defaults,
            constants,
            outputs,
            names: Vec::new(),
            types: Vec::new(),
        });
    }
    // Keep the constants that something still reads.
    let mut used = vec![false; n_slots];
    for node in &kept {
        for &slot in node.inputs.iter().flatten() {
            used[slot] = true;
        }
    }
    for (_, slot) in &outputs {
        used[*slot] = true;
    }
    constants.retain(|(slot, _)| used[*slot]);
    Plan::new(kept, n_slots, inputs, input_slots, input_defaults, constants, outputs)
}
