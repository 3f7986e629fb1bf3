//! Running one split job on rayon, with the calling thread working at once.
//!
//! A job is `n_chunks` numbered chunks. The caller publishes the job, asks
//! the rayon pool for up to `n_threads - 1` helpers (`spawn`: each helper
//! is a rayon task that starts when a pool thread becomes free) and starts
//! claiming chunks from an atomic counter itself, without waiting for
//! anyone. A helper that starts while the job is still open claims chunks
//! too; a helper that starts after the caller has closed the job (the
//! chunks were all done, e.g. because the pool threads were asleep,
//! descheduled or busy with other work) returns without touching it. So
//! the caller waits only for chunks that a helper has actually claimed,
//! never for a thread that has not started: a job on a sleeping or busy
//! pool costs what the serial loop costs plus the hand-off (a queue push
//! and, when a pool thread sleeps, one wake-up call).
//!
//! While it waits for a claimed chunk, the caller spins only briefly and
//! then yields its core, so on a loaded machine it does not keep the core
//! the helper needs to finish. The pool's own threads sleep as rayon makes
//! them (a few yields, then a futex), never a long spin.
//!
//! Chunk boundaries are chosen by the caller from the data size alone, so
//! which thread runs a chunk never changes a result.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The chunk runner helpers see. Valid only while the job is open (see
/// `run`'s safety comment).
struct WorkPtr(*const (dyn Fn(usize) + Sync));

// SAFETY: the pointee is `Sync`; `run` keeps it alive while any helper can
// reach it (the job's `state` is open or has a joined helper).
unsafe impl Send for WorkPtr {}
// SAFETY: as above; the pointer is only read.
unsafe impl Sync for WorkPtr {}

/// One job, shared by the caller and its helper tasks. Helper tasks may
/// outlive `run` (a task that starts late), so this lives in an `Arc`.
struct Job {
    work: WorkPtr,
    n_chunks: usize,
    next_chunk: AtomicUsize,
    done_chunks: AtomicUsize,
    /// Bit 0: the job is open to helpers. Above it, twice the number of
    /// helpers currently inside the job.
    state: AtomicUsize,
    /// The first panic payload of a chunk run by a helper, handed back to
    /// the caller so it unwinds with the kernel's own message.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

const OPEN: usize = 1;
const HELPER: usize = 2;

impl Job {
    /// Claims and runs chunks until none are left. A panicking chunk still
    /// counts as done and the loop goes on, so every chunk is claimed and
    /// the caller never waits forever; the first panic is kept.
    fn claim_chunks(&self, work: &(dyn Fn(usize) + Sync)) {
        loop {
            let idx = self.next_chunk.fetch_add(1, Ordering::Relaxed);
            if idx >= self.n_chunks {
                return;
            }
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| work(idx))) {
                self.panic.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(payload);
            }
            self.done_chunks.fetch_add(1, Ordering::Release);
        }
    }

    /// What a helper task does when a pool thread gets to it.
    fn help(&self) {
        // Announce first, then look: once the caller has closed the job it
        // waits until every announced helper has left, so a helper that saw
        // the job open can use the pointer safely.
        let state = self.state.fetch_add(HELPER, Ordering::AcqRel);
        if state & OPEN != 0 && self.next_chunk.load(Ordering::Relaxed) < self.n_chunks {
            // SAFETY: the job was open after this helper announced itself,
            // so the caller is still inside `run` and keeps `work` alive
            // until this helper leaves (below).
            let work = unsafe { &*self.work.0 };
            self.claim_chunks(work);
        }
        self.state.fetch_sub(HELPER, Ordering::Release);
    }
}

/// Waits until `done()` holds: a short spin (the common case is a helper
/// finishing its last chunk within microseconds), then yielding the core on
/// every check, so a helper that the OS has descheduled can get it back.
fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        if spins < 256 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Where helper tasks go.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    /// The pool the calling thread belongs to, or rayon's global pool.
    Current,
    /// A given pool.
    Pool(&'a rayon::ThreadPool),
}

/// Runs `work(0..n_chunks)`, each index exactly once, on the caller and up
/// to `helpers` rayon tasks sent to `target`. Returns when every chunk is
/// done; a panic in any chunk is resumed here after all chunks ran.
pub(crate) fn run(target: Target<'_>, helpers: usize, n_chunks: usize, work: &(dyn Fn(usize) + Sync)) {
    let helpers = helpers.min(n_chunks.saturating_sub(1));
    if helpers == 0 {
        (0..n_chunks).for_each(work);
        return;
    }
    // SAFETY: the lifetime of `work` is erased so helper tasks can carry it.
    // It stays valid: before returning, this function closes the job (no
    // helper that announces itself later touches `work`) and waits until no
    // announced helper is left inside it.
    let work_static: *const (dyn Fn(usize) + Sync) =
        unsafe { std::mem::transmute(work as *const (dyn Fn(usize) + Sync + '_)) };
    let job = Arc::new(Job {
        work: WorkPtr(work_static),
        n_chunks,
        next_chunk: AtomicUsize::new(0),
        done_chunks: AtomicUsize::new(0),
        state: AtomicUsize::new(OPEN),
        panic: Mutex::new(None),
    });
    for _ in 0..helpers {
        let job = job.clone();
        let task = move || job.help();
        match target {
            Target::Current => rayon::spawn(task),
            Target::Pool(pool) => pool.spawn(task),
        }
    }
    job.claim_chunks(work);
    wait_until(|| job.done_chunks.load(Ordering::Acquire) >= n_chunks);
    job.state.fetch_and(!OPEN, Ordering::AcqRel);
    wait_until(|| job.state.load(Ordering::Acquire) & !OPEN == 0);
    let payload = job.panic.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(payload) = payload {
        resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n_threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(n_threads).build().unwrap()
    }

    #[test]
    fn every_chunk_runs_exactly_once_across_many_jobs() {
        let pool = pool(3);
        for target in [Target::Current, Target::Pool(&pool)] {
            for n_chunks in [0, 1, 2, 7, 64, 1000] {
                let counts: Vec<AtomicUsize> = (0..n_chunks).map(|_| AtomicUsize::new(0)).collect();
                run(target, 3, n_chunks, &|idx| {
                    counts[idx].fetch_add(1, Ordering::Relaxed);
                });
                assert!(counts.iter().all(|count| count.load(Ordering::Relaxed) == 1), "{n_chunks}");
            }
        }
    }

    #[test]
    fn concurrent_callers_share_the_pool_and_all_work_is_done() {
        let pool = Arc::new(pool(2));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let total = AtomicUsize::new(0);
                        run(Target::Pool(&pool), 2, 16, &|idx| {
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
    fn a_job_finishes_while_every_pool_thread_is_blocked() {
        // The only pool thread is held until the job is done: the caller
        // must do all chunks itself and not wait for the helper task.
        let pool = pool(1);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        pool.spawn(move || {
            started_tx.send(()).unwrap();
            blocked.recv().unwrap();
        });
        started.recv().unwrap();
        let total = AtomicUsize::new(0);
        run(Target::Pool(&pool), 1, 8, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 8);
        release.send(()).unwrap();
    }

    #[test]
    fn inside_a_pool_the_job_runs_on_that_pool() {
        let pool = pool(2);
        let seen = Mutex::new(Vec::new());
        pool.install(|| {
            run(Target::Current, 1, 64, &|_| {
                std::thread::sleep(std::time::Duration::from_micros(50));
                seen.lock().unwrap().push(rayon::current_thread_index());
            });
        });
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 64);
        // Every chunk ran on a thread of that pool, none on rayon's global one.
        assert!(seen.iter().all(|idx| matches!(idx, Some(0 | 1))), "{seen:?}");
    }

    #[test]
    fn a_panicking_chunk_reaches_the_caller_and_the_pool_survives() {
        let pool = pool(2);
        let result = catch_unwind(AssertUnwindSafe(|| run(Target::Pool(&pool), 1, 8, &|idx| assert_ne!(idx, 5))));
        assert!(result.is_err());
        let total = AtomicUsize::new(0);
        run(Target::Pool(&pool), 1, 8, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(total.load(Ordering::Relaxed), 8);
    }
}
