//! Guards the f32 elementwise activation kernels: `kernels::unary::apply_f32`
//! (Relu, LeakyRelu, Sigmoid, Tanh) on the SIMD path chosen at run time, on
//! one thread and on the global pool, against a naive scalar loop.
//!
//! Sizes: 5 (per-call overhead), 1k, 100k, 1M (in cache) and 16M (memory
//! bound: 64 MiB in, 64 MiB out). At 1M each SIMD path also runs forced,
//! one thread, to show what each instruction set gives, and from 1M on a
//! plain copy shows the memory-bound ceiling.
//!
//! `cargo bench --bench activation`; throughput is in elements per second.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use onnxi::kernels::Parallel;
use onnxi::kernels::simd::Isa;
use onnxi::kernels::unary::{self, Unary};

const SIZES: [usize; 5] = [5, 1_000, 100_000, 1_000_000, 16_000_000];

/// The obvious loop a user would write, as the baseline.
fn naive(op: Unary, src: &[f32], dst: &mut [f32]) {
    let zip = src.iter().zip(dst.iter_mut());
    match op {
        Unary::Relu => zip.for_each(|(&x, y)| *y = if x > 0.0 || x.is_nan() { x } else { 0.0 }),
        Unary::LeakyRelu { alpha } => zip.for_each(|(&x, y)| *y = if x > 0.0 { x } else { alpha * x }),
        Unary::Sigmoid => zip.for_each(|(&x, y)| *y = 1.0 / (1.0 + (-x).exp())),
        Unary::Tanh => zip.for_each(|(&x, y)| *y = x.tanh()),
    }
}

/// Deterministic inputs in [-10, 10).
fn inputs(len: usize) -> Vec<f32> {
    common::uniform_inputs(len, 0x9e37_79b9_7f4a_7c15)
}

fn bench_op(c: &mut Criterion, name: &str, op: Unary) {
    let mut group = c.benchmark_group(name);
    let global = Parallel::global();
    let serial = Parallel::serial();
    for len in SIZES {
        let src = inputs(len);
        let mut dst = vec![0f32; len];
        group.throughput(Throughput::Elements(len as u64));
        if len >= 1_000_000 {
            group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        } else {
            group.sample_size(30).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
        }
        group.bench_function(BenchmarkId::new("naive", len), |b| b.iter(|| naive(op, black_box(&src), &mut dst)));
        group.bench_function(BenchmarkId::new("onnxi-1t", len), |b| {
            b.iter(|| unary::apply_f32(op, black_box(&src), &mut dst, &serial))
        });
        group.bench_function(BenchmarkId::new("onnxi-pool", len), |b| {
            b.iter(|| unary::apply_f32(op, black_box(&src), &mut dst, &global))
        });
        if len >= 1_000_000 {
            // The memory-bound ceiling: the same reads and writes, no math.
            group.bench_function(BenchmarkId::new("memcpy-1t", len), |b| {
                b.iter(|| dst.copy_from_slice(black_box(&src)))
            });
        }
        if len == 1_000_000 {
            for isa in Isa::supported() {
                group.bench_function(BenchmarkId::new(format!("{}-1t", isa.name()), len), |b| {
                    b.iter(|| unary::apply_f32_isa(isa, op, black_box(&src), &mut dst))
                });
            }
        }
    }
    group.finish();
}

fn activations(c: &mut Criterion) {
    bench_op(c, "relu", Unary::Relu);
    bench_op(c, "leaky_relu", Unary::LeakyRelu { alpha: 0.01 });
    bench_op(c, "sigmoid", Unary::Sigmoid);
    bench_op(c, "tanh", Unary::Tanh);
}

criterion_group!(benches, activations);
criterion_main!(benches);
