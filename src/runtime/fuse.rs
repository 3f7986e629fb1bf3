//! Fused chains: consecutive nodes that each map float32 data row by row
//! (the activations, and Softmax over contiguous lanes) run as one step,
//! group of rows by group of rows, so each group passes through every op
//! while it is in cache instead of every op making its own pass over
//! memory. A chain Relu→Sigmoid→Tanh→LeakyRelu→Softmax thus reads its
//! input once and writes its output once.
//!
//! Fusion never changes a result: each op runs the same kernel on the same
//! elements as it would alone (the kernels are exact per row, whatever the
//! cut), which `tests/fusion.rs` checks bit for bit. It only applies when
//! the data is float32 and every op in the chain offers a kernel for its
//! shape ([`Op::chain_kernel`](crate::ops::Op::chain_kernel)); otherwise
//! the interpreter runs the nodes one by one, with their own checks and
//! errors.

use std::borrow::Cow;

use crate::graph::plan::PlanNode;
use crate::kernels::Parallel;
use crate::kernels::par::CHUNK_ELEMS;
use crate::kernels::softmax::{softmax, softmax_into};
use crate::ops::elementwise::{inplace, mapped};
use crate::ops::{ChainKernel, ExecCtx, Op};
use crate::tensor::{SharedArray, Tensor};

/// Most nodes fused into one step; longer chains run as several steps (the
/// kernels live in a fixed array, so a run allocates nothing).
pub(crate) const MAX_CHAIN: usize = 16;

/// Runs `nodes` (a chain the plan linked, see `PlanNode::links`, at most
/// [`MAX_CHAIN`] long) as one step over the value slots. Returns false,
/// having touched nothing, when the chain cannot be fused for this input.
pub(crate) fn run_chain<'a>(nodes: &[PlanNode], values: &mut [Option<Cow<'a, Tensor>>], ctx: &ExecCtx<'_>) -> bool {
    let (Some(first), Some(last)) = (nodes.first(), nodes.last()) else {
        return false;
    };
    let (Some(Some(in_slot)), Some(Some(out_slot))) = (first.inputs.first(), last.outputs.first()) else {
        return false;
    };
    let Some(Tensor::F32(input)) = values[*in_slot].as_deref() else {
        return false;
    };
    let Some((kernels, unit)) = kernels(nodes, input.shape()) else {
        return false;
    };
    let kernels = &kernels[..nodes.len()];
    let lent = |input: &SharedArray<f32>| {
        mapped(input, ctx, |src, dst, par| {
            par.map_rows(src, dst, unit, |src, dst| run_group(kernels, nodes, Some(src), dst));
        })
    };
    // The value moves in when this chain is its last reader, and is then
    // overwritten in place if the run owns it (a Session lends its inputs)
    // and no other tensor shares its buffer (else the write would copy it).
    let output = match (first.consumes.first(), values[*in_slot].take()) {
        (Some(true), Some(Cow::Owned(Tensor::F32(array)))) if array.is_unique() => {
            inplace(array, ctx.par, |data, par| {
                par.row_groups(data, unit, |group| run_group(kernels, nodes, None, group));
            })
        }
        (Some(true), Some(Cow::Owned(Tensor::F32(array)))) => lent(&array),
        (Some(true), Some(Cow::Borrowed(Tensor::F32(array)))) => lent(array),
        (_, value) => {
            values[*in_slot] = value;
            match values[*in_slot].as_deref() {
                Some(Tensor::F32(array)) => lent(array),
                _ => return false,
            }
        }
    };
    values[*out_slot] = Some(Cow::Owned(Tensor::F32(output)));
    true
}

/// Every node's kernel for `shape`, and the row length groups must be made
/// of (a multiple of every Softmax lane); `None` when some node has no
/// kernel, the lanes do not nest, or they are too long to gain.
fn kernels(nodes: &[PlanNode], shape: &[usize]) -> Option<([ChainKernel; MAX_CHAIN], usize)> {
    if nodes.len() > MAX_CHAIN {
        return None;
    }
    let mut kernels = [ChainKernel::SoftmaxLanes(1); MAX_CHAIN];
    let mut unit = 1;
    for (slot, node) in kernels.iter_mut().zip(nodes) {
        let kernel = node.op.chain_kernel(shape)?;
        if let ChainKernel::SoftmaxLanes(n) = kernel {
            if n == 0 || (unit % n != 0 && n % unit != 0) {
                return None;
            }
            unit = unit.max(n);
        }
        *slot = kernel;
    }
    // Lanes longer than a parallel chunk would make each group one long
    // row that neither fits in cache nor splits across threads (the
    // Softmax kernel alone splits a long lane into blocks): run node by node.
    (unit <= CHUNK_ELEMS).then_some((kernels, unit))
}

/// One group of whole rows through every node's kernel: the first reads
/// `src` when the input is lent, the others work in place in `dst`.
fn run_group(kernels: &[ChainKernel], nodes: &[PlanNode], src: Option<&[f32]>, dst: &mut [f32]) {
    let serial = Parallel::serial();
    for (pos, (kernel, node)) in kernels.iter().zip(nodes).enumerate() {
        let op: &dyn Op = node.op.as_ref();
        match (*kernel, src.filter(|_| pos == 0)) {
            (ChainKernel::Map, src) => op.chain_map(src, dst),
            (ChainKernel::SoftmaxLanes(n), Some(src)) => softmax_into(src, dst, n, 1, &serial),
            (ChainKernel::SoftmaxLanes(n), None) => softmax(dst, n, 1, &serial),
        }
    }
}
