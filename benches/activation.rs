//! Guards the f32 kernels of every declared elementwise operator
//! (`onnxi::ops::elementwise::declared`: Relu, LeakyRelu, Sigmoid, Tanh,
//! Elu, ...) with default attributes, on the SIMD path chosen at run time,
//! on one thread and on the global pool, against a naive scalar loop of
//! the float64 reference.
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
use onnxi::ops::elementwise::{Declared, declared};

const SIZES: [usize; 5] = [5, 1_000, 100_000, 1_000_000, 16_000_000];

/// The obvious loop a user would write, as the baseline: the reference
/// formula, one element at a time.
fn naive(op: &dyn Declared, src: &[f32], dst: &mut [f32]) {
    src.iter().zip(dst.iter_mut()).for_each(|(&x, y)| *y = op.reference(f64::from(x)) as f32);
}

/// Deterministic inputs in [-10, 10).
fn inputs(len: usize) -> Vec<f32> {
    common::uniform_inputs(len, 0x9e37_79b9_7f4a_7c15)
}

fn bench_op(c: &mut Criterion, op: &dyn Declared) {
    let mut group = c.benchmark_group(group_name(&op.label()));
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
            b.iter(|| op.apply_f32(black_box(&src), &mut dst, &serial))
        });
        group.bench_function(BenchmarkId::new("onnxi-pool", len), |b| {
            b.iter(|| op.apply_f32(black_box(&src), &mut dst, &global))
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
                    b.iter(|| op.apply_f32_isa(isa, black_box(&src), &mut dst))
                });
            }
        }
    }
    group.finish();
}

/// `LeakyRelu` -> `leaky_relu`: the group names earlier runs used.
fn group_name(op_type: &str) -> String {
    let mut name = String::new();
    for (idx, ch) in op_type.chars().enumerate() {
        if ch.is_uppercase() && idx > 0 {
            name.push('_');
        }
        name.push(ch.to_ascii_lowercase());
    }
    // A label with an attribute setting (`Gelu (approximate = tanh)`)
    // becomes `gelu_approximate_tanh`.
    let words: Vec<&str> =
        name.split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_').filter(|w| !w.is_empty()).collect();
    words.join("_")
}

fn activations(c: &mut Criterion) {
    for op in declared() {
        bench_op(c, op.as_ref());
    }
}

criterion_group!(benches, activations);
criterion_main!(benches);
