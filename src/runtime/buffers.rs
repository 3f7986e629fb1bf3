//! Reusable output buffers for [`Session`](crate::Session): tensors from the
//! previous run come back here and are handed to ops that need a fresh
//! output, so a steady stream of runs allocates nothing.
//!
//! Only buffers no other tensor shares are kept: a run's output may share
//! its data with the caller's input (Identity, Reshape) or with a copy the
//! caller kept, and handing such a buffer out would make its first write
//! copy it (copy-on-write) instead of saving an allocation.

use std::cell::RefCell;

use ndarray::{ArrayD, IxDyn};

use crate::tensor::{Element, SharedArray, Tensor};

/// Tensors waiting to be reused, matched by dtype and element count.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: RefCell<Vec<Tensor>>,
}

impl BufferPool {
    /// Offers a tensor's buffer for reuse; a shared or empty one is dropped.
    pub fn recycle(&self, tensor: Tensor) {
        if !tensor.is_empty() && tensor.is_unique() {
            self.free.borrow_mut().push(tensor);
        }
    }

    /// A buffer of `shape` from the pool, if one of the same dtype and size
    /// is free. Its contents are whatever the last run left.
    pub fn take<T: Element>(&self, shape: &[usize]) -> Option<ArrayD<T>> {
        self.take_shared(shape)?.try_into_owned_nocopy().ok()
    }

    /// As [`BufferPool::take`], but kept in the shared form a [`Tensor`]
    /// holds, which spares the handle's allocation on the way back in.
    pub fn take_shared<T: Element>(&self, shape: &[usize]) -> Option<SharedArray<T>> {
        let n_elems: usize = shape.iter().product();
        let mut free = self.free.borrow_mut();
        let idx = free.iter().position(|tensor| tensor.dtype() == T::DTYPE && tensor.len() == n_elems)?;
        let array = T::unwrap_shared(free.swap_remove(idx)).ok()?;
        if !array.is_standard_layout() || !array.is_unique() {
            return None;
        }
        // Same shape as last time (the steady state): no reshape needed.
        if array.shape() == shape {
            return Some(array);
        }
        array.into_shape_with_order(IxDyn(shape)).ok()
    }
}

/// An output buffer of `shape`, from `pool` when one fits, else freshly
/// allocated (filled with `T::default()`). Callers overwrite every element.
pub(crate) fn output_shared<T: Element + Default>(pool: Option<&BufferPool>, shape: &[usize]) -> SharedArray<T> {
    pool.and_then(|pool| pool.take_shared(shape))
        .unwrap_or_else(|| ArrayD::from_elem(IxDyn(shape), T::default()).into_shared())
}
