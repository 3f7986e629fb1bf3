//! The parallelism policy, in one place: thread pool, threshold, chunking.
//!
//! Work is split into chunks whose boundaries depend only on the data size,
//! never on the thread count, so every result is bitwise the same whatever
//! the pool size. Threads come from rayon (the pool the caller runs in,
//! rayon's global pool, or a pool the application gives); the calling
//! thread starts on the chunks at once and pool threads join as they become
//! free (`kernels::pool`), so a job never waits for a sleeping or
//! descheduled thread, which is what makes splitting pay off already for
//! mid-sized tensors.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::pool::{self, Target};

/// Below this many elements, threads cost more than they save.
pub const PAR_MIN_ELEMS: usize = 32 * 1024;

/// Elements per parallel chunk for elementwise work (a multiple of 64, so
/// SIMD loops see whole vectors except at the very end).
pub const CHUNK_ELEMS: usize = 16 * 1024;

/// Where a model's kernels run.
#[derive(Debug, Clone, Default)]
enum Engine {
    /// The calling thread only.
    #[default]
    Serial,
    /// The rayon pool the calling thread belongs to, or rayon's global pool
    /// (one thread per core unless `RAYON_NUM_THREADS` says otherwise).
    Current,
    /// A given rayon pool. `plus_caller`: onnxi made it for a thread count
    /// with one thread fewer, the caller being the last one; a pool the
    /// application gives counts as its own size (the caller, when outside
    /// it, stands in for one of its threads, so a pool sized to the cores
    /// does not oversubscribe them).
    Pool { pool: Arc<rayon::ThreadPool>, plus_caller: bool },
}

/// The size of rayon's global pool, which asking for starts it; 1 (so work
/// runs serially) when its threads cannot be started, where rayon panics
/// (a process at its thread limit, for example).
fn global_threads() -> usize {
    static N_THREADS: OnceLock<usize> = OnceLock::new();
    *N_THREADS.get_or_init(|| std::panic::catch_unwind(rayon::current_num_threads).unwrap_or(1))
}

/// How a model runs its kernels: on the caller's thread, the rayon pool it
/// runs in (or rayon's global pool), or a given rayon pool. The calling
/// thread always works on the job itself; pool threads join as they become
/// free (see `kernels::pool`).
#[derive(Debug, Clone, Default)]
pub struct Parallel {
    engine: Engine,
}

/// A raw pointer that may cross threads; the code using it hands each
/// thread a disjoint range.
struct SendPtr<T>(*mut T);

impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SendPtr<T> {}

// SAFETY: only used to reach disjoint chunks of one slice from pool threads,
// for element types that are themselves `Send`.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above; the pointer is only read (copied), never written through
// from two threads at the same address.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The `idx`-th chunk of `chunk` elements of a slice of `len` elements.
    ///
    /// # Safety
    /// `self` must point to a live slice of `len` elements, and no two
    /// callers may hold the same chunk at the same time.
    unsafe fn chunk<'a>(self, idx: usize, chunk: usize, len: usize) -> &'a mut [T] {
        let start = idx * chunk;
        let end = (start + chunk).min(len);
        // SAFETY: `start..end` lies inside the slice (the caller's chunk
        // index is below `len.div_ceil(chunk)`), and chunks are disjoint.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), end - start) }
    }
}

impl Parallel {
    /// Kernels use the rayon pool the calling thread runs in, or rayon's
    /// global pool (one thread per core), for large tensors.
    pub fn global() -> Self {
        Parallel { engine: Engine::Current }
    }

    /// Everything runs on the calling thread.
    pub fn serial() -> Self {
        Parallel { engine: Engine::Serial }
    }

    /// A dedicated rayon pool for `n_threads` threads, the caller included
    /// (so `n_threads - 1` pool threads; 1 means serial).
    ///
    /// # Errors
    /// The OS error when a thread cannot be started.
    pub fn with_threads(n_threads: usize) -> Result<Self, String> {
        if n_threads <= 1 {
            return Ok(Parallel::serial());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n_threads - 1)
            .thread_name(|idx| format!("onnxi-{}", idx + 1))
            .build()
            .map_err(|err| err.to_string())?;
        Ok(Parallel { engine: Engine::Pool { pool: Arc::new(pool), plus_caller: true } })
    }

    /// Kernels run on `pool`: as many threads at once as it has, the
    /// calling thread being one of them (it works on every job at once;
    /// pool threads join as they become free).
    pub fn with_pool(pool: Arc<rayon::ThreadPool>) -> Self {
        Parallel { engine: Engine::Pool { pool, plus_caller: false } }
    }

    /// Number of threads the work may use, the caller included: the size
    /// of the pool (of the one the caller runs in, else rayon's global
    /// pool, else the given one), plus the caller for a pool made by
    /// [`Parallel::with_threads`].
    pub fn n_threads(&self) -> usize {
        match &self.engine {
            Engine::Serial => 1,
            Engine::Current if rayon::current_thread_index().is_some() => rayon::current_num_threads(),
            Engine::Current => global_threads(),
            Engine::Pool { pool, plus_caller } => pool.current_num_threads() + usize::from(*plus_caller),
        }
    }

    fn worth_splitting(&self, n_elems: usize) -> bool {
        !matches!(self.engine, Engine::Serial) && n_elems >= PAR_MIN_ELEMS && self.n_threads() > 1
    }

    /// Runs `work(0..n_chunks)` on the caller and the pool, or here when
    /// there is none.
    fn run_chunks(&self, n_chunks: usize, work: &(dyn Fn(usize) + Sync)) {
        let helpers = self.n_threads() - 1;
        match &self.engine {
            Engine::Serial => (0..n_chunks).for_each(work),
            Engine::Current => pool::run(Target::Current, helpers, n_chunks, work),
            Engine::Pool { pool, .. } => pool::run(Target::Pool(pool), helpers, n_chunks, work),
        }
    }

    /// Whether work on `n_elems` elements would be split across threads.
    pub fn splits(&self, n_elems: usize) -> bool {
        self.worth_splitting(n_elems)
    }

    /// Chunk length for elementwise work on `len` elements: [`CHUNK_ELEMS`]
    /// for mid-sized data (fine-grained, so a late or busy thread delays
    /// little), and for large data about 8 chunks per thread, so that each
    /// thread streams long contiguous ranges, as the hardware prefetchers
    /// like. Elementwise results do not depend on the cut.
    fn stream_chunk(&self, len: usize) -> usize {
        let per_thread = len / (8 * self.n_threads());
        per_thread.next_multiple_of(64).max(CHUNK_ELEMS)
    }

    /// Runs `kernel` over matching chunks of `src` and `dst` (same length);
    /// `kernel` must treat each element on its own.
    pub fn map<T: Sync, U: Send>(&self, src: &[T], dst: &mut [U], kernel: impl Fn(&[T], &mut [U]) + Sync + Send) {
        debug_assert_eq!(src.len(), dst.len());
        if !self.worth_splitting(dst.len()) || src.len() != dst.len() {
            kernel(src, dst);
            return;
        }
        let len = dst.len();
        let chunk = self.stream_chunk(len);
        let out = SendPtr(dst.as_mut_ptr());
        self.run_chunks(len.div_ceil(chunk), &|idx| {
            let start = idx * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: `dst` outlives `run_chunks`, and chunk `idx` is handed
            // to exactly one call.
            let dst = unsafe { out.chunk(idx, chunk, len) };
            kernel(&src[start..end], dst);
        });
    }

    /// Runs `kernel` over chunks of `data` in place; `kernel` must treat
    /// each element on its own.
    pub fn map_inplace<T: Send>(&self, data: &mut [T], kernel: impl Fn(&mut [T]) + Sync + Send) {
        if !self.worth_splitting(data.len()) {
            kernel(data);
            return;
        }
        let len = data.len();
        let chunk = self.stream_chunk(len);
        let ptr = SendPtr(data.as_mut_ptr());
        self.run_chunks(len.div_ceil(chunk), &|idx| {
            // SAFETY: `data` outlives `run_chunks`; chunks are disjoint.
            kernel(unsafe { ptr.chunk(idx, chunk, len) });
        });
    }

    /// Runs `kernel` on each row of `row_len` elements, in parallel over
    /// groups of whole rows.
    pub fn rows<T: Send>(&self, data: &mut [T], row_len: usize, kernel: impl Fn(&mut [T]) + Sync + Send) {
        if row_len == 0 || data.is_empty() {
            return;
        }
        if !self.worth_splitting(data.len()) {
            data.chunks_mut(row_len).for_each(&kernel);
            return;
        }
        self.row_groups(data, row_len, |rows| rows.chunks_mut(row_len).for_each(&kernel));
    }

    /// Runs `kernel` on groups of whole rows of `row_len` elements (about
    /// [`CHUNK_ELEMS`] each, so a group stays in cache while the kernel
    /// makes several passes over it), in parallel when worth it.
    pub fn row_groups<T: Send>(&self, data: &mut [T], row_len: usize, kernel: impl Fn(&mut [T]) + Sync + Send) {
        if row_len == 0 || data.is_empty() {
            return;
        }
        let group = CHUNK_ELEMS.div_ceil(row_len).max(1) * row_len;
        if !self.worth_splitting(data.len()) {
            data.chunks_mut(group).for_each(&kernel);
            return;
        }
        let len = data.len();
        let ptr = SendPtr(data.as_mut_ptr());
        self.run_chunks(len.div_ceil(group), &|idx| {
            // SAFETY: `data` outlives `run_chunks`; groups are disjoint.
            kernel(unsafe { ptr.chunk(idx, group, len) });
        });
    }

    /// Runs `kernel` on matching groups of whole rows of `src` and `dst`
    /// (same length), in parallel over the groups.
    pub fn map_rows<T: Sync, U: Send>(
        &self,
        src: &[T],
        dst: &mut [U],
        row_len: usize,
        kernel: impl Fn(&[T], &mut [U]) + Sync + Send,
    ) {
        if row_len == 0 || dst.is_empty() || src.len() != dst.len() {
            return;
        }
        let group = CHUNK_ELEMS.div_ceil(row_len).max(1) * row_len;
        if !self.worth_splitting(dst.len()) {
            src.chunks(group).zip(dst.chunks_mut(group)).for_each(|(src, dst)| kernel(src, dst));
            return;
        }
        let len = dst.len();
        let out = SendPtr(dst.as_mut_ptr());
        self.run_chunks(len.div_ceil(group), &|idx| {
            let start = idx * group;
            // SAFETY: `dst` outlives `run_chunks`; groups are disjoint.
            let dst = unsafe { out.chunk(idx, group, len) };
            kernel(&src[start..start + dst.len()], dst);
        });
    }

    /// Cuts each row of `row_len` elements into blocks of `block` elements
    /// (the last block of a row may be shorter; no block straddles two
    /// rows) and maps each block, with its index in row-major order, to a
    /// value, in parallel when worth it. The values come back in that
    /// order, and the cut depends only on `row_len` and `block`, so a
    /// reduction over them in order gives the same result for any thread
    /// count.
    pub fn map_row_blocks<T: Send, R: Send>(
        &self,
        data: &mut [T],
        row_len: usize,
        block: usize,
        kernel: impl Fn(usize, &mut [T]) -> R + Sync + Send,
    ) -> Vec<R> {
        let n_elems = data.len();
        let blocks = data.chunks_mut(row_len.max(1)).flat_map(|row| row.chunks_mut(block.max(1)));
        if !self.worth_splitting(n_elems) {
            return blocks.enumerate().map(|(idx, block)| kernel(idx, block)).collect();
        }
        let blocks: Vec<Mutex<(&mut [T], Option<R>)>> = blocks.map(|block| Mutex::new((block, None))).collect();
        let per_chunk = (CHUNK_ELEMS / block.max(1)).max(1);
        self.run_chunks(blocks.len().div_ceil(per_chunk), &|chunk| {
            for (idx, slot) in blocks.iter().enumerate().skip(chunk * per_chunk).take(per_chunk) {
                let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                let value = kernel(idx, slot.0);
                slot.1 = Some(value);
            }
        });
        blocks.into_iter().filter_map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner).1).collect()
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
        let blocks: Vec<Mutex<&mut [T]>> = blocks.map(Mutex::new).collect();
        let per_chunk = (CHUNK_ELEMS / block.max(1)).max(1);
        self.run_chunks(blocks.len().div_ceil(per_chunk), &|chunk| {
            for (offset, slot) in blocks.iter().enumerate().skip(chunk * per_chunk).take(per_chunk) {
                let mut block = slot.lock().unwrap_or_else(PoisonError::into_inner);
                kernel(offset, &mut block);
            }
        });
    }

    /// Runs `kernel` on consecutive blocks of `block` elements of `data`
    /// (the last may be shorter), passing each block's index, one block per
    /// job, in parallel when `work` (the caller's count of scalar operations
    /// for all of `data`) is worth splitting. For kernels that do much work
    /// per output element, such as the row blocks of a matrix product,
    /// where the output's size says little about the cost. The cut depends
    /// only on `block`.
    pub fn for_blocks_by_work<T: Send>(
        &self,
        data: &mut [T],
        block: usize,
        work: usize,
        kernel: impl Fn(usize, &mut [T]) + Sync + Send,
    ) {
        let block = block.max(1);
        let len = data.len();
        if !self.worth_splitting(work) || len <= block {
            data.chunks_mut(block).enumerate().for_each(|(idx, chunk)| kernel(idx, chunk));
            return;
        }
        let ptr = SendPtr(data.as_mut_ptr());
        self.run_chunks(len.div_ceil(block), &|idx| {
            // SAFETY: `data` outlives `run_chunks`; blocks are disjoint.
            kernel(idx, unsafe { ptr.chunk(idx, block, len) });
        });
    }
}
