//! Guards the broadcasting elementwise layer, `kernels::broadcast`, on f32
//! Add for the four shapes that matter most, each 1M output elements:
//!
//! - `same`: [1000000] + [1000000], a pure zip;
//! - `scalar`: [1000000] + [] (stride 0);
//! - `row`: [1000, 1000] + [1000], a bias over the last axis;
//! - `column`: [1000, 1000] + [1000, 1], one element of B per row of A.
//!
//! Each case first runs the obvious loop a user would write (`naive`), then
//! onnxi on one thread and on the global pool. For `same`, each SIMD path
//! also runs forced, one thread, next to a hand-written AVX2 intrinsics loop
//! (`explicit-avx2`), to show that the compiler's vectorisation of the
//! kernel's plain loops under `#[target_feature]` gives what explicit SIMD
//! gives, at 1M and at an L1-resident 4096 elements.
//!
//! `cargo bench --bench broadcast`; throughput is in elements per second.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use onnxi::kernels::Parallel;
use onnxi::kernels::broadcast;
use onnxi::kernels::simd::Isa;

const N: usize = 1_000_000;

fn array(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let len = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), common::uniform_inputs(len, seed)).expect("shape matches")
}

/// The obvious loops, as baselines.
fn naive(case: &str, a: &[f32], b: &[f32], dst: &mut [f32]) {
    match case {
        "same" => dst.iter_mut().zip(a.iter().zip(b)).for_each(|(y, (&p, &q))| *y = p + q),
        "scalar" => dst.iter_mut().zip(a).for_each(|(y, &p)| *y = p + b[0]),
        "row" => {
            for r in 0..1000 {
                for c in 0..1000 {
                    dst[r * 1000 + c] = a[r * 1000 + c] + b[c];
                }
            }
        }
        _ => {
            for r in 0..1000 {
                for c in 0..1000 {
                    dst[r * 1000 + c] = a[r * 1000 + c] + b[r];
                }
            }
        }
    }
}

/// An explicit AVX2 add, 8 lanes at a time, for comparison.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn explicit_avx2(a: &[f32], b: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::{_mm256_add_ps, _mm256_loadu_ps, _mm256_storeu_ps};
    let n = dst.len().min(a.len()).min(b.len());
    let whole = n - n % 8;
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= n, within all three slices; AVX2 is enabled here.
        unsafe {
            let sum = _mm256_add_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)));
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), sum);
        }
    }
    for i in whole..n {
        dst[i] = a[i] + b[i];
    }
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
}

fn add_cases(c: &mut Criterion) {
    let global = Parallel::global();
    let serial = Parallel::serial();
    let add = |x: f32, y: f32| x + y;
    let cases: [(&str, &[usize], &[usize]); 4] = [
        ("same", &[N], &[N]),
        ("scalar", &[N], &[]),
        ("row", &[1000, 1000], &[1000]),
        ("column", &[1000, 1000], &[1000, 1]),
    ];
    let mut group = c.benchmark_group("add_f32");
    configure(&mut group);
    group.throughput(Throughput::Elements(N as u64));
    for (name, sa, sb) in cases {
        let a = array(sa, 1);
        let b = array(sb, 2);
        let shape = broadcast::multidirectional(&[sa, sb]).expect("shapes broadcast");
        let mut dst = vec![0f32; N];
        let (av, bv) = (a.view(), b.view());
        let (a_slice, b_slice) = (a.as_slice().expect("row-major"), b.as_slice().expect("row-major"));
        group.bench_function(BenchmarkId::new("naive", name), |bench| {
            bench.iter(|| naive(name, black_box(a_slice), black_box(b_slice), &mut dst))
        });
        group.bench_function(BenchmarkId::new("onnxi-1t", name), |bench| {
            bench.iter(|| broadcast::binary_into(black_box(&av), &bv, &shape, &mut dst, add, &serial))
        });
        group.bench_function(BenchmarkId::new("onnxi-pool", name), |bench| {
            bench.iter(|| broadcast::binary_into(black_box(&av), &bv, &shape, &mut dst, add, &global))
        });
    }
    group.finish();
}

fn simd_paths(c: &mut Criterion) {
    let serial = Parallel::serial();
    let add = |x: f32, y: f32| x + y;
    let mut group = c.benchmark_group("add_f32_same_isa");
    configure(&mut group);
    for len in [4096, N] {
        group.throughput(Throughput::Elements(len as u64));
        let a = array(&[len], 3);
        let b = array(&[len], 4);
        let mut dst = vec![0f32; len];
        let (av, bv) = (a.view(), b.view());
        let (a_slice, b_slice) = (a.as_slice().expect("row-major"), b.as_slice().expect("row-major"));
        group.bench_function(BenchmarkId::new("naive", len), |bench| {
            bench.iter(|| naive("same", black_box(a_slice), black_box(b_slice), &mut dst))
        });
        for isa in Isa::supported() {
            group.bench_function(BenchmarkId::new(format!("{}-1t", isa.name()), len), |bench| {
                bench.iter(|| broadcast::binary_into_isa(isa, black_box(&av), &bv, &[len], &mut dst, add, &serial))
            });
        }
        #[cfg(target_arch = "x86_64")]
        if Isa::Avx2.is_supported() {
            group.bench_function(BenchmarkId::new("explicit-avx2", len), |bench| {
                // SAFETY: the CPU has AVX2 (checked just above).
                bench.iter(|| unsafe { explicit_avx2(black_box(a_slice), black_box(b_slice), &mut dst) })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, add_cases, simd_paths);
criterion_main!(benches);
