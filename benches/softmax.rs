//! Guards the f32 Softmax kernel `kernels::softmax::softmax` along the last
//! axis: the blockwise fused path (max, exp-and-sum, scale) on the SIMD
//! path chosen at run time, parallel over rows and over blocks of long
//! rows, against a naive scalar three-pass loop.
//!
//! Shapes: [1,5] (per-call overhead), [1,1000], [1000,1000], [64,32000]
//! (a language-model vocabulary) and [16,1000000] (long rows, memory
//! bound). The kernel runs in place on the same buffer every iteration
//! (softmax of a softmax costs the same), so no copy is timed; `into`
//! reads a lent input and writes a separate output, as a `Session` does. At
//! [1000,1000] each SIMD path also runs forced, one thread.
//!
//! `cargo bench --bench softmax`; throughput is in elements per second.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use onnxi::kernels::Parallel;
use onnxi::kernels::simd::Isa;
use onnxi::kernels::softmax;

const SHAPES: [(usize, usize); 5] = [(1, 5), (1, 1_000), (1_000, 1_000), (64, 32_000), (16, 1_000_000)];

/// The obvious per-row loop a user would write, as the baseline.
fn naive(data: &mut [f32], n: usize) {
    for row in data.chunks_mut(n) {
        let max = row.iter().fold(f32::NEG_INFINITY, |acc, &x| acc.max(x));
        let mut sum = 0f32;
        for x in row.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        for x in row.iter_mut() {
            *x /= sum;
        }
    }
}

/// Deterministic inputs in [-10, 10).
fn inputs(len: usize) -> Vec<f32> {
    common::uniform_inputs(len, 0x2545_f491_4f6c_dd1d)
}

fn softmax_shapes(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax");
    let global = Parallel::global();
    let serial = Parallel::serial();
    for (rows, n) in SHAPES {
        let len = rows * n;
        let label = format!("{rows}x{n}");
        let mut data = inputs(len);
        group.throughput(Throughput::Elements(len as u64));
        if len >= 1_000_000 {
            group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        } else {
            group.sample_size(30).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
        }
        group.bench_function(BenchmarkId::new("naive", &label), |b| b.iter(|| naive(black_box(&mut data), n)));
        group.bench_function(BenchmarkId::new("onnxi-1t", &label), |b| {
            b.iter(|| softmax::softmax(black_box(&mut data), n, 1, &serial))
        });
        group.bench_function(BenchmarkId::new("onnxi-pool", &label), |b| {
            b.iter(|| softmax::softmax(black_box(&mut data), n, 1, &global))
        });
        // From a lent input into a separate output, as a Session runs it.
        let source = inputs(len);
        let mut out = vec![0f32; len];
        group.bench_function(BenchmarkId::new("onnxi-into-pool", &label), |b| {
            b.iter(|| softmax::softmax_into(black_box(&source), black_box(&mut out), n, 1, &global))
        });
        if (rows, n) == (1_000, 1_000) {
            for isa in Isa::supported() {
                group.bench_function(BenchmarkId::new(format!("{}-1t", isa.name()), &label), |b| {
                    b.iter(|| softmax::softmax_f32_isa(isa, black_box(&mut data), n, 1, &serial))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, softmax_shapes);
criterion_main!(benches);
