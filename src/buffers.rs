//! Reusable output buffers for [`Session`](crate::Session): tensors from the
//! previous run come back here and are handed to ops that need a fresh
//! output, so a steady stream of runs allocates nothing.

use std::cell::RefCell;

use ndarray::{ArrayD, IxDyn};

use crate::tensor::{Element, Tensor};

/// Tensors waiting to be reused, matched by dtype and element count.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: RefCell<Vec<Tensor>>,
}

impl BufferPool {
    /// Offers a tensor's buffer for reuse.
    pub fn recycle(&self, tensor: Tensor) {
        if !tensor.is_empty() {
            self.free.borrow_mut().push(tensor);
        }
    }

    /// A buffer of `shape` from the pool, if one of the same dtype and size
    /// is free. Its contents are whatever the last run left.
    pub fn take<T: Element>(&self, shape: &[usize]) -> Option<ArrayD<T>> {
        let n_elems: usize = shape.iter().product();
        let mut free = self.free.borrow_mut();
        let idx = free.iter().position(|tensor| tensor.dtype() == T::DTYPE && tensor.len() == n_elems)?;
        let array = T::unwrap(free.swap_remove(idx)).ok()?;
        if !array.is_standard_layout() {
            return None;
        }
        // Same shape as last time (the steady state): no reshape needed.
        if array.shape() == shape {
            return Some(array);
        }
        array.into_shape_with_order(IxDyn(shape)).ok()
    }
}
