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
///
/// At most `limit` are kept: a run hands back every output and every
/// intermediate it did not consume, but only ops that take their output
/// from the pool take buffers out again, so without a bound the list would
/// grow by the unclaimed ones on every run (memory that is never freed, and
/// a longer search per take). When full, the oldest buffer is dropped.
#[derive(Debug)]
pub struct BufferPool {
    free: RefCell<Vec<Tensor>>,
    limit: usize,
}

impl Default for BufferPool {
    /// A pool of at most [`BufferPool::DEFAULT_LIMIT`] buffers.
    fn default() -> Self {
        BufferPool::with_limit(BufferPool::DEFAULT_LIMIT)
    }
}

impl BufferPool {
    /// The bound of [`BufferPool::default`].
    pub const DEFAULT_LIMIT: usize = 64;

    /// A pool that keeps at most `limit` buffers (a session uses the number
    /// of values its model has: one buffer per value is all a run can use).
    pub fn with_limit(limit: usize) -> Self {
        BufferPool { free: RefCell::new(Vec::new()), limit }
    }

    /// Number of buffers waiting.
    pub fn len(&self) -> usize {
        self.free.borrow().len()
    }

    /// Whether no buffer is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offers a tensor's buffer for reuse; a shared or empty one is dropped,
    /// and so is the oldest waiting one when the pool is full.
    pub fn recycle(&self, tensor: Tensor) {
        if self.limit == 0 || tensor.is_empty() || !tensor.is_unique() {
            return;
        }
        let mut free = self.free.borrow_mut();
        if free.len() >= self.limit {
            free.remove(0);
        }
        free.push(tensor);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_at_most_its_limit_and_drops_the_oldest() {
        let pool = BufferPool::with_limit(3);
        for len in 1..=10usize {
            pool.recycle(Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[len]))));
        }
        assert_eq!(pool.len(), 3);
        // The newest three (8, 9, 10 elements) are kept.
        assert!(pool.take::<f32>(&[7]).is_none());
        assert!(pool.take::<f32>(&[8]).is_some());
        assert!(pool.take::<f32>(&[2, 5]).is_some());
        assert_eq!(pool.len(), 1);
    }
}
