//! Chooses and guards the matrix multiplication behind Gemm, MatMul and
//! Conv: the candidate crates (`gemm` by Sarah Quinones, `matrixmultiply`)
//! called directly, single-threaded, against a naive triple loop, on the
//! shapes the exported networks produce:
//!
//! - 64×576×64: a 3×3 convolution of 64 channels by im2col on an 8×8 map
//!   (small resnet), `m × k × n` = output channels × (channels·3·3) × pixels;
//! - 1×512×10: a classifier head (`nn.Linear(512, 10)`, batch 1);
//! - 128×64×128: attention scores (128 tokens, head size 64);
//! - 256×256×256: a square middle size.
//!
//! Also `onnxi::kernels::gemm::gemm` (the wrapper the ops call) so its
//! overhead shows. f32 and f64. `cargo bench --bench gemm`; throughput is in
//! multiply-adds per second.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use onnxi::kernels::Parallel;
use onnxi::kernels::gemm::{Gemm, MatRef};

/// `(m, k, n)` of each case.
const SHAPES: [(usize, usize, usize); 4] = [(64, 576, 64), (1, 512, 10), (128, 64, 128), (256, 256, 256)];

/// The obvious `i, p, j` loop, as the baseline.
fn naive<T: Copy + std::ops::Mul<Output = T> + std::ops::AddAssign>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    b: &[T],
    c: &mut [T],
) {
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let a_ip = a[i * k + p];
            for (dst, &b_pj) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *dst += a_ip * b_pj;
            }
        }
    }
}

macro_rules! bench_type {
    ($c:expr, $ty:ty, $name:literal, $mm:path) => {{
        let mut group = $c.benchmark_group(concat!("gemm_", $name));
        let serial = Parallel::serial();
        for (m, k, n) in SHAPES {
            let a: Vec<$ty> = common::uniform_inputs(m * k, 0x9e37_79b9).iter().map(|&x| x as $ty).collect();
            let b: Vec<$ty> = common::uniform_inputs(k * n, 0x85eb_ca6b).iter().map(|&x| x as $ty).collect();
            let mut c: Vec<$ty> = vec![0 as $ty; m * n];
            let label = format!("{m}x{k}x{n}");
            group.throughput(Throughput::Elements((m * k * n) as u64));
            group.bench_function(BenchmarkId::new("naive", &label), |bench| {
                bench.iter(|| {
                    c.iter_mut().for_each(|x| *x = 0 as $ty);
                    naive(m, k, n, black_box(&a), black_box(&b), &mut c);
                })
            });
            group.bench_function(BenchmarkId::new("matrixmultiply", &label), |bench| {
                bench.iter(|| {
                    // SAFETY: the slices hold m×k, k×n and m×n elements, row-major.
                    unsafe {
                        $mm(
                            m,
                            k,
                            n,
                            1 as $ty,
                            black_box(a.as_ptr()),
                            k as isize,
                            1,
                            black_box(b.as_ptr()),
                            n as isize,
                            1,
                            0 as $ty,
                            c.as_mut_ptr(),
                            n as isize,
                            1,
                        )
                    }
                })
            });
            group.bench_function(BenchmarkId::new("gemm", &label), |bench| {
                bench.iter(|| {
                    // SAFETY: as above; `read_dst` false, so `c` is only written.
                    unsafe {
                        gemm::gemm(
                            m,
                            n,
                            k,
                            c.as_mut_ptr(),
                            1,
                            n as isize,
                            false,
                            black_box(a.as_ptr()),
                            1,
                            k as isize,
                            black_box(b.as_ptr()),
                            1,
                            n as isize,
                            0 as $ty,
                            1 as $ty,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        )
                    }
                })
            });
            group.bench_function(BenchmarkId::new("onnxi", &label), |bench| {
                let a = MatRef::row_major(&a, m, k);
                let b = MatRef::row_major(&b, k, n);
                bench.iter(|| Gemm::new(1 as $ty, 0 as $ty).run(black_box(a), black_box(b), &mut c, &serial))
            });
        }
        group.finish();
    }};
}

fn gemm_shapes(c: &mut Criterion) {
    bench_type!(c, f32, "f32", matrixmultiply::sgemm);
    bench_type!(c, f64, "f64", matrixmultiply::dgemm);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
    targets = gemm_shapes
}
criterion_main!(benches);
