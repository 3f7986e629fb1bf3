//! Epilogues: an elementwise activation that a Conv, Gemm or MatMul runs
//! on its own output, block by block, right after computing each block
//! (while it is in cache), instead of a separate node making another pass
//! over memory. Set at load by `graph::optimize`.
//!
//! An epilogue never changes a bit: on float32 it runs the activation's own
//! fused-chain kernel ([`Op::chain_map`], which computes exactly what the
//! activation's [`Op::run`] computes on float32, whatever the cut into
//! blocks); on any other element type it runs the activation's [`Op::run`]
//! on the whole output, as the separate node would have.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::{ChainKernel, ExecCtx, Op};
use crate::error::OpError;
use crate::kernels::par::CHUNK_ELEMS;
use crate::tensor::Tensor;

/// An elementwise op applied to another op's output.
#[derive(Clone)]
pub struct Epilogue {
    op: Arc<dyn Op>,
}

impl fmt::Debug for Epilogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epilogue({:?})", self.op)
    }
}

impl PartialEq for Epilogue {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.op, &other.op)
    }
}

/// Puts `epilogue` into an op's slot for one, the shared body of
/// [`Op::fuse_epilogue`] for Conv, Gemm and
/// MatMul; an op that already has one hands the new one back.
///
/// # Errors
/// The epilogue itself, when the slot is taken.
pub fn fuse_into(slot: &mut Option<Epilogue>, epilogue: Epilogue) -> Result<(), Epilogue> {
    if slot.is_some() {
        return Err(epilogue);
    }
    *slot = Some(epilogue);
    Ok(())
}

impl Epilogue {
    /// Wraps `op` when it maps float32 elements one by one
    /// ([`ChainKernel::Map`], the declared elementwise ops); gives it back
    /// otherwise.
    ///
    /// # Errors
    /// `op` itself, when it has no elementwise float32 kernel.
    pub fn new(op: Box<dyn Op>) -> Result<Self, Box<dyn Op>> {
        if op.chains() && op.chain_kernel(&[1]) == Some(ChainKernel::Map) {
            Ok(Epilogue { op: Arc::from(op) })
        } else {
            Err(op)
        }
    }

    /// Applies the activation in place to one block of float32 output,
    /// on the calling thread.
    pub fn apply_f32(&self, block: &mut [f32]) {
        self.op.chain_map(None, block);
    }

    /// Applies the activation to a whole float32 output in place, in
    /// parallel over fixed-size blocks (for kernels that hand back the
    /// whole output at once).
    pub fn apply_f32_all(&self, data: &mut [f32], ctx: &ExecCtx<'_>) {
        let len = data.len();
        ctx.par.for_blocks_by_work(data, CHUNK_ELEMS, len, |_, block| self.apply_f32(block));
    }

    /// Applies the activation to an output of any element type by running
    /// its op, as the separate node would.
    ///
    /// # Errors
    /// What the activation's op returns (an element type it refuses).
    pub fn apply_tensor(&self, output: Tensor, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let mut inputs = [Some(Cow::Owned(output))];
        self.op.run(&mut inputs, ctx)
    }
}
