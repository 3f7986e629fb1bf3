//! Interleaved timing of several runners, and the machine's stream bandwidth.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::systems::Runner;

/// How the runners of one case are timed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Timed runs per batch are chosen so that a batch takes about this long.
    pub batch: Duration,
    /// Interleaved rounds; each round times one batch of every runner.
    pub rounds: usize,
    /// Pause after each batch, so that one runtime's spinning or waking
    /// worker threads do not eat into the next one's batch.
    pub gap: Duration,
    /// Idle pause before every timed run (zero: runs back to back). When
    /// set, a batch is [`IDLE_RUNS`] runs, each after this pause.
    pub pause_each: Duration,
}

/// One runner's figures: the median wall time per run, and the process's
/// CPU time (every thread, the idle pauses included) per run.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub ns: f64,
    pub cpu_ns: f64,
}

/// CPU time the whole process (every thread) has used, from
/// `/proc/self/stat` (user + system, in clock ticks of 10 ms); 0 where it
/// cannot be read. Coarse, so only sums over many batches are meaningful.
pub fn process_cpu_ns() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may hold spaces) start at ")".
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    ticks * 1e7
}

/// Timed runs per batch when every run follows an idle pause.
pub const IDLE_RUNS: usize = 3;

/// Cost of the `Instant::now()` / `elapsed()` pair around each timed run,
/// subtracted from every sample.
pub fn timer_overhead_ns() -> f64 {
    let mut samples: Vec<f64> = (0..31)
        .map(|_| {
            let n_pairs = 10_000;
            let mut total = Duration::ZERO;
            for _ in 0..n_pairs {
                let start = Instant::now();
                black_box(());
                total += start.elapsed();
            }
            total.as_nanos() as f64 / n_pairs as f64
        })
        .collect();
    median(&mut samples)
}

/// Mean nanoseconds per timed run over `n_runs` runs (each preceded by its
/// untimed `prepare`).
fn batch_ns(runner: &mut dyn Runner, n_runs: usize, pause: Duration, overhead_ns: f64) -> Result<f64> {
    let mut total = Duration::ZERO;
    for _ in 0..n_runs {
        runner.prepare()?;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let start = Instant::now();
        runner.run()?;
        total += start.elapsed();
    }
    Ok((total.as_nanos() as f64 / n_runs as f64 - overhead_ns).max(0.0))
}

/// Times every runner in interleaved rounds (the order rotates each round so
/// that no runner always follows the same one) and returns each runner's
/// median nanoseconds per run. A runner that fails gets an error.
pub fn measure(runners: &mut [&mut dyn Runner], plan: &Plan, overhead_ns: f64) -> Vec<Result<Timed>> {
    let n_runners = runners.len();
    let mut n_runs = vec![1usize; n_runners];
    let mut failed: Vec<Option<anyhow::Error>> = (0..n_runners).map(|_| None).collect();
    for (idx, runner) in runners.iter_mut().enumerate() {
        // Warm-up and estimate: the fastest of three single runs.
        let estimate = (0..3)
            .map(|_| batch_ns(&mut **runner, 1, Duration::ZERO, overhead_ns))
            .collect::<Result<Vec<f64>>>()
            .map(|v| v.into_iter().fold(f64::INFINITY, f64::min));
        match estimate {
            Ok(_) if !plan.pause_each.is_zero() => n_runs[idx] = IDLE_RUNS,
            Ok(ns) => {
                let wanted = plan.batch.as_nanos() as f64 / ns.max(1.0);
                n_runs[idx] = wanted.round().clamp(1.0, 1e6) as usize;
            }
            Err(e) => failed[idx] = Some(e),
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n_runners];
    let mut cpu_ns = vec![0.0f64; n_runners];
    let mut runs = vec![0usize; n_runners];
    for round in 0..plan.rounds {
        for offset in 0..n_runners {
            let idx = (round + offset) % n_runners;
            if failed[idx].is_some() {
                continue;
            }
            let cpu_before = process_cpu_ns();
            match batch_ns(&mut *runners[idx], n_runs[idx], plan.pause_each, overhead_ns) {
                Ok(ns) => samples[idx].push(ns),
                Err(e) => failed[idx] = Some(e),
            }
            cpu_ns[idx] += process_cpu_ns() - cpu_before;
            runs[idx] += n_runs[idx];
            std::thread::sleep(plan.gap);
        }
    }
    samples
        .into_iter()
        .zip(failed)
        .enumerate()
        .map(|(idx, (mut s, failure))| match failure {
            Some(e) => Err(e),
            None => Ok(Timed { ns: median(&mut s), cpu_ns: cpu_ns[idx] / runs[idx].max(1) as f64 }),
        })
        .collect()
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The two memory streams a 16M-element activation can be held against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamKind {
    /// `dst ← src`: a fresh output buffer (what ONNX Runtime and tract do).
    Copy,
    /// `x ← -x` over one buffer: an in-place update (what a runtime that
    /// consumes its input can do), with no separate destination to fetch.
    InPlace,
}

/// One stream measurement over `n_elems` float32 with `threads` threads.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    pub kind: StreamKind,
    pub threads: usize,
    pub n_elems: usize,
    /// Best time of one full pass.
    pub best: Duration,
}

impl Stream {
    /// Bytes read plus bytes written, per second, in GB/s (10^9).
    pub fn gb_per_s(&self) -> f64 {
        (2 * self.n_elems * 4) as f64 / self.best.as_secs_f64() / 1e9
    }
}

/// One pass of `kind` over `n_elems` float32 (buffers touched first, so no
/// page faults are timed), split evenly over `threads` threads; the best of
/// `n_repeats` passes.
pub fn stream(kind: StreamKind, n_elems: usize, threads: usize, n_repeats: usize) -> Stream {
    let src: Vec<f32> = (0..n_elems).map(|i| i as f32).collect();
    let mut dst: Vec<f32> = vec![1.0; n_elems];
    dst.iter_mut().for_each(|x| *x = black_box(2.0));
    let chunk = n_elems.div_ceil(threads);
    let pass = |d: &mut [f32], s: &[f32]| match kind {
        StreamKind::Copy => d.copy_from_slice(s),
        StreamKind::InPlace => d.iter_mut().for_each(|x| *x = -*x),
    };
    let mut best = Duration::MAX;
    for _ in 0..n_repeats {
        let start = Instant::now();
        std::thread::scope(|scope| {
            let mut pieces = dst.chunks_mut(chunk).zip(src.chunks(chunk));
            let first = pieces.next();
            for (d, s) in pieces {
                scope.spawn(move || pass(d, s));
            }
            if let Some((d, s)) = first {
                pass(d, s);
            }
        });
        best = best.min(start.elapsed());
        black_box(&dst);
    }
    Stream { kind, threads, n_elems, best }
}
