//! The parallelism policy, in one place: thread pool, threshold, chunking.
//!
//! Work is split into chunks whose boundaries depend only on the data size,
//! never on the thread count, so every result is bitwise the same whatever
//! the pool size.

use std::sync::Arc;

use rayon::prelude::*;

/// Below this many elements, threads cost more than they save.
pub const PAR_MIN_ELEMS: usize = 32 * 1024;

/// Elements per parallel chunk for elementwise work (a multiple of 64, so
/// SIMD loops see whole vectors except at the very end).
pub const CHUNK_ELEMS: usize = 16 * 1024;

/// How a model runs its kernels: on the caller's thread, rayon's global
/// pool, or a pool of its own.
#[derive(Debug, Clone, Default)]
pub struct Parallel {
    pool: Option<Arc<rayon::ThreadPool>>,
    serial: bool,
}

impl Parallel {
    /// Kernels use rayon's global pool for large tensors.
    pub fn global() -> Self {
        Parallel { pool: None, serial: false }
    }

    /// Everything runs on the calling thread.
    pub fn serial() -> Self {
        Parallel { pool: None, serial: true }
    }

    /// A dedicated pool of `n_threads` threads (1 means serial).
    ///
    /// # Errors
    /// The message from rayon when the pool cannot be built.
    pub fn with_threads(n_threads: usize) -> Result<Self, String> {
        if n_threads <= 1 {
            return Ok(Parallel::serial());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n_threads)
            .thread_name(|idx| format!("onnxi-{idx}"))
            .build()
            .map_err(|err| err.to_string())?;
        Ok(Parallel { pool: Some(Arc::new(pool)), serial: false })
    }

    /// Number of threads the work may use.
    pub fn n_threads(&self) -> usize {
        match (&self.pool, self.serial) {
            (_, true) => 1,
            (Some(pool), _) => pool.current_num_threads(),
            (None, false) => rayon::current_num_threads(),
        }
    }

    fn worth_splitting(&self, n_elems: usize) -> bool {
        !self.serial && n_elems >= PAR_MIN_ELEMS && self.n_threads() > 1
    }

    fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Runs `kernel` over matching chunks of `src` and `dst` (same length).
    pub fn map<T: Sync, U: Send>(&self, src: &[T], dst: &mut [U], kernel: impl Fn(&[T], &mut [U]) + Sync + Send) {
        debug_assert_eq!(src.len(), dst.len());
        if !self.worth_splitting(dst.len()) {
            kernel(src, dst);
            return;
        }
        self.install(|| {
            src.par_chunks(CHUNK_ELEMS).zip(dst.par_chunks_mut(CHUNK_ELEMS)).for_each(|(src, dst)| kernel(src, dst));
        });
    }

    /// Runs `kernel` over chunks of `data` in place.
    pub fn map_inplace<T: Send>(&self, data: &mut [T], kernel: impl Fn(&mut [T]) + Sync + Send) {
        if !self.worth_splitting(data.len()) {
            kernel(data);
            return;
        }
        self.install(|| data.par_chunks_mut(CHUNK_ELEMS).for_each(&kernel));
    }

    /// Runs `kernel` on groups of whole rows of `row_len` elements each.
    pub fn rows<T: Send>(&self, data: &mut [T], row_len: usize, kernel: impl Fn(&mut [T]) + Sync + Send) {
        if row_len == 0 || data.is_empty() {
            return;
        }
        if !self.worth_splitting(data.len()) {
            data.chunks_mut(row_len).for_each(&kernel);
            return;
        }
        let rows_per_chunk = CHUNK_ELEMS.div_ceil(row_len).max(1);
        self.install(|| {
            data.par_chunks_mut(rows_per_chunk * row_len).for_each(|group| group.chunks_mut(row_len).for_each(&kernel));
        });
    }

    /// Maps fixed-size blocks of `data` to values in parallel, in block order.
    pub fn map_blocks<T: Sync, R: Send>(
        &self,
        data: &[T],
        block: usize,
        kernel: impl Fn(&[T]) -> R + Sync + Send,
    ) -> Vec<R> {
        if !self.worth_splitting(data.len()) {
            return data.chunks(block.max(1)).map(kernel).collect();
        }
        self.install(|| data.par_chunks(block.max(1)).map(kernel).collect())
    }

    /// Runs `kernel` on fixed-size blocks of `data` in place, in parallel,
    /// passing each block's index.
    pub fn for_blocks<T: Send>(&self, data: &mut [T], block: usize, kernel: impl Fn(usize, &mut [T]) + Sync + Send) {
        if !self.worth_splitting(data.len()) {
            data.chunks_mut(block.max(1)).enumerate().for_each(|(idx, chunk)| kernel(idx, chunk));
            return;
        }
        self.install(|| {
            data.par_chunks_mut(block.max(1)).enumerate().for_each(|(idx, chunk)| kernel(idx, chunk));
        });
    }

    /// Whether work on `n_elems` elements would be split across threads.
    pub fn splits(&self, n_elems: usize) -> bool {
        self.worth_splitting(n_elems)
    }

    /// Cuts each row of `row_len` elements into blocks of `block` elements
    /// (the last block of a row may be shorter; no block straddles two
    /// rows) and maps each block to a value, in parallel when worth it.
    /// The values come back in row-major block order, and the cut depends
    /// only on `row_len` and `block`, so a reduction over them in order
    /// gives the same result for any thread count.
    pub fn map_row_blocks<T: Send, R: Send>(
        &self,
        data: &mut [T],
        row_len: usize,
        block: usize,
        kernel: impl Fn(&mut [T]) -> R + Sync + Send,
    ) -> Vec<R> {
        let n_elems = data.len();
        let blocks = data.chunks_mut(row_len.max(1)).flat_map(|row| row.chunks_mut(block.max(1)));
        if !self.worth_splitting(n_elems) {
            return blocks.map(kernel).collect();
        }
        let mut blocks: Vec<&mut [T]> = blocks.collect();
        let min_blocks = (CHUNK_ELEMS / block.max(1)).max(1);
        self.install(|| blocks.par_iter_mut().with_min_len(min_blocks).map(|block| kernel(block)).collect())
    }

    /// Runs `kernel` on each block of each row, cut as in
    /// [`Parallel::map_row_blocks`], passing the block's index in that order.
    pub fn for_row_blocks<T: Send>(
        &self,
        data: &mut [T],
        row_len: usize,
        block: usize,
        kernel: impl Fn(usize, &mut [T]) + Sync + Send,
    ) {
        let n_elems = data.len();
        let blocks = data.chunks_mut(row_len.max(1)).flat_map(|row| row.chunks_mut(block.max(1)));
        if !self.worth_splitting(n_elems) {
            blocks.enumerate().for_each(|(idx, block)| kernel(idx, block));
            return;
        }
        let mut blocks: Vec<&mut [T]> = blocks.collect();
        let min_blocks = (CHUNK_ELEMS / block.max(1)).max(1);
        self.install(|| {
            blocks.par_iter_mut().with_min_len(min_blocks).enumerate().for_each(|(idx, block)| kernel(idx, block));
        });
    }
}
