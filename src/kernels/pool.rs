//! A small thread pool where the caller works too.
//!
//! Handing a job to a sleeping rayon pool from outside costs 10–15 µs of
//! wake-up before any work starts, more than a whole 100k-element Relu. Here
//! the calling thread starts on the chunks at once; workers that are awake
//! (they spin for a while after each job before parking) join in by claiming
//! chunks from an atomic counter, and a worker that wakes after the chunks
//! are gone never touches the job. The caller waits only for workers that
//! actually joined, so a mid-sized job never waits for a wake-up.
//!
//! Chunk boundaries are chosen by the caller from the data size alone, so
//! which thread runs a chunk never changes a result.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before parking. Back-to-back runs (the
/// common case in serving and benchmarks) then find their workers awake.
const SPIN: Duration = Duration::from_micros(200);

/// The job workers see: a chunk runner and its chunk count. The reference is
/// only valid while `Shared::job` holds it (see `run`'s safety comment).
#[derive(Clone, Copy)]
struct JobRef {
    work: *const (dyn Fn(usize) + Sync),
    n_chunks: usize,
}

// SAFETY: the pointee is `Sync`, and `run` keeps it alive until every worker
// that obtained the pointer has let go of it.
unsafe impl Send for JobRef {}

struct Shared {
    /// The current job, set and cleared by the caller under this lock.
    job: Mutex<Option<JobRef>>,
    /// Bumped for every new job, so spinning workers notice one quickly.
    epoch: AtomicU64,
    next_chunk: AtomicUsize,
    done_chunks: AtomicUsize,
    /// Workers currently holding the job pointer.
    active: AtomicUsize,
    /// The first panic payload from a chunk run by a worker, handed back to
    /// the caller so it unwinds with the kernel's own message.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    shutdown: AtomicBool,
    wake: Condvar,
    /// Workers parked on `wake`; changed only under the `job` lock, so a
    /// submitter that reads it under that lock knows whether to notify
    /// (a notification is a system call even when nobody waits).
    parked: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fixed set of worker threads plus the caller.
pub struct Pool {
    shared: Arc<Shared>,
    /// One job at a time; a caller that finds the pool busy runs serially.
    submit: Mutex<()>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("n_threads", &self.n_threads()).finish()
    }
}

impl Pool {
    /// A pool using `n_threads` threads in all: the caller and
    /// `n_threads - 1` workers.
    ///
    /// # Errors
    /// The OS error when a thread cannot be started.
    pub fn new(n_threads: usize) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            epoch: AtomicU64::new(0),
            next_chunk: AtomicUsize::new(0),
            done_chunks: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            panic: Mutex::new(None),
            shutdown: AtomicBool::new(false),
            wake: Condvar::new(),
            parked: AtomicUsize::new(0),
        });
        let mut workers = Vec::new();
        for idx in 1..n_threads.max(1) {
            let shared = shared.clone();
            workers.push(std::thread::Builder::new().name(format!("onnxi-{idx}")).spawn(move || worker(&shared))?);
        }
        Ok(Pool { shared, submit: Mutex::new(()), workers })
    }

    /// Threads that share the work, the caller included.
    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `work(0..n_chunks)`, each index exactly once, on the caller and
    /// whichever workers join. Returns when every chunk is done.
    pub fn run(&self, n_chunks: usize, work: &(dyn Fn(usize) + Sync)) {
        let _turn = match self.submit.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another thread's job is running: do this one here instead of
            // queueing behind it.
            Err(TryLockError::WouldBlock) => {
                (0..n_chunks).for_each(work);
                return;
            }
        };
        if self.workers.is_empty() || n_chunks <= 1 {
            (0..n_chunks).for_each(work);
            return;
        }
        let shared = &*self.shared;
        shared.next_chunk.store(0, Ordering::Relaxed);
        shared.done_chunks.store(0, Ordering::Relaxed);
        // SAFETY: the lifetime of `work` is erased so workers can hold it.
        // It stays valid: before returning, this function clears `job` under
        // its lock (so no worker can pick it up afterwards) and waits until
        // `active` is zero (so no worker still holds it).
        let work_static: *const (dyn Fn(usize) + Sync) =
            unsafe { std::mem::transmute(work as *const (dyn Fn(usize) + Sync + '_)) };
        let any_parked = {
            // Publish and bump the epoch under the lock that parked workers
            // check it under, so none can miss the notification.
            let mut job = lock(&shared.job);
            *job = Some(JobRef { work: work_static, n_chunks });
            shared.epoch.fetch_add(1, Ordering::Release);
            shared.parked.load(Ordering::Relaxed) > 0
        };
        if any_parked {
            shared.wake.notify_all();
        }

        claim_chunks(shared, work, n_chunks);
        while shared.done_chunks.load(Ordering::Acquire) < n_chunks {
            std::hint::spin_loop();
        }
        *lock(&shared.job) = None;
        while shared.active.load(Ordering::Acquire) > 0 {
            std::hint::spin_loop();
        }
        if let Some(payload) = lock(&shared.panic).take() {
            resume_unwind(payload);
        }
    }
}

/// Claims and runs chunks until none are left. A panicking chunk still
/// counts as done and the loop goes on, so every chunk is claimed and the
/// caller never waits forever; the first panic is kept for the caller.
fn claim_chunks(shared: &Shared, work: &(dyn Fn(usize) + Sync), n_chunks: usize) {
    loop {
        let idx = shared.next_chunk.fetch_add(1, Ordering::Relaxed);
        if idx >= n_chunks {
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(|| work(idx)));
        if let Err(payload) = result {
            lock(&shared.panic).get_or_insert(payload);
        }
        shared.done_chunks.fetch_add(1, Ordering::Release);
    }
}

fn worker(shared: &Shared) {
    let mut seen_epoch = 0;
    loop {
        // Spin briefly for the next job, then park until notified.
        let spin_until = Instant::now() + SPIN;
        while shared.epoch.load(Ordering::Acquire) == seen_epoch && !shared.shutdown.load(Ordering::Relaxed) {
            if Instant::now() >= spin_until {
                let mut guard = lock(&shared.job);
                shared.parked.fetch_add(1, Ordering::Relaxed);
                while shared.epoch.load(Ordering::Acquire) == seen_epoch && !shared.shutdown.load(Ordering::Relaxed) {
                    guard = shared.wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
                }
                shared.parked.fetch_sub(1, Ordering::Relaxed);
                break;
            }
            std::hint::spin_loop();
        }
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        seen_epoch = shared.epoch.load(Ordering::Acquire);
        // Join the job only while the caller still publishes it.
        let job = {
            let guard = lock(&shared.job);
            let job = *guard;
            if job.is_some() {
                shared.active.fetch_add(1, Ordering::AcqRel);
            }
            job
        };
        let Some(job) = job else { continue };
        // SAFETY: `active` was raised while the job was published, so the
        // caller keeps the closure alive until this worker lowers it.
        let work = unsafe { &*job.work };
        claim_chunks(shared, work, job.n_chunks);
        shared.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        {
            let _guard = lock(&self.shared.job);
            self.shared.wake.notify_all();
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_runs_exactly_once_across_many_jobs() {
        let pool = Pool::new(4).unwrap();
        for n_chunks in [0, 1, 2, 7, 64, 1000] {
            let counts: Vec<AtomicUsize> = (0..n_chunks).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n_chunks, &|idx| {
                counts[idx].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|count| count.load(Ordering::Relaxed) == 1), "{n_chunks}");
        }
    }

    #[test]
    fn concurrent_callers_never_block_each_other_and_all_work_is_done() {
        let pool = Arc::new(Pool::new(2).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let total = AtomicUsize::new(0);
                        pool.run(16, &|idx| {
                            total.fetch_add(idx, Ordering::Relaxed);
                        });
                        assert_eq!(total.load(Ordering::Relaxed), 120);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    }

    #[test]
    fn a_panicking_chunk_reaches_the_caller_and_the_pool_survives() {
        let pool = Pool::new(2).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| pool.run(8, &|idx| assert_ne!(idx, 5))));
        assert!(result.is_err());
        let total = AtomicUsize::new(0);
        pool.run(8, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 8);
    }
}
