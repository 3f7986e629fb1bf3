//! Matrix multiplication: `C = alpha·A·B + beta·C` on strided matrices.
//!
//! Floats go to the [`gemm`](https://docs.rs/gemm) crate (Sarah Quinones'
//! BLIS-style kernels, chosen over `matrixmultiply` by `benches/gemm.rs`;
//! figures in `benches/RESULTS.md`), always called single-threaded. The
//! parallelism is ours: the rows of `C` are cut into blocks whose size
//! depends only on the matrix sizes, and each block is one call, so the
//! result is bitwise the same for any thread count. Integers (Gemm and
//! MatMul accept 32- and 64-bit ones) use a plain loop with wrapping
//! arithmetic, as numpy's integer matmul wraps; float16 and bfloat16 are
//! converted to float32 by the ops before they get here.
//!
//! Operands are views with element strides, so a transposed operand (Gemm's
//! `transA`/`transB`, `nn.Linear`'s `[out, in]` weight) is read in place:
//! constant weights are never copied or re-laid out per run. The crate has
//! no pre-packing API, so there is nothing more to do with them at load.

use super::Parallel;

/// A read-only matrix: `rows × cols` elements of `data`, element `(i, j)` at
/// `i·row_stride + j·col_stride`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    ///
    /// # Panics
    /// When `data` holds fewer than `rows·cols` elements (a caller bug; the
    /// ops check shapes first).
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix of {rows}x{cols} over {} elements", data.len());
        MatRef { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose (no copy: the strides swap).
    #[must_use]
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Rows `start..start + n` (no copy).
    fn row_range(self, start: usize, n: usize) -> Self {
        let offset = if n == 0 { 0 } else { start * self.row_stride };
        MatRef { data: &self.data[offset.min(self.data.len())..], rows: n, ..self }
    }

    fn at(&self, row: usize, col: usize) -> T
    where
        T: Copy,
    {
        self.data[row * self.row_stride + col * self.col_stride]
    }
}

/// An element type the product supports.
pub trait GemmElem: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;

    /// `c = alpha·a·b + beta·c` on the calling thread; `c` is row-major
    /// `a.rows × b.cols`. `beta == 0` ignores what `c` held (even NaN).
    fn gemm_serial(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: &mut [Self], alpha: Self, beta: Self);
}

/// Calls the `gemm` crate, single-threaded.
macro_rules! crate_gemm {
    ($ty:ty) => {
        impl GemmElem for $ty {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;

            fn gemm_serial(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: &mut [Self], alpha: Self, beta: Self) {
                let (m, k, n) = (a.rows, a.cols, b.cols);
                debug_assert_eq!(b.rows, k);
                debug_assert!(c.len() >= m * n);
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    // The crate would leave `c` alone; the product of empty
                    // matrices is zero, so `c = beta·c`.
                    for value in &mut c[..m * n] {
                        *value = if beta == 0.0 { 0.0 } else { beta * *value };
                    }
                    return;
                }
                let stride = |s: usize| isize::try_from(s).unwrap_or(isize::MAX);
                // SAFETY: `a` and `b` index within their slices for every
                // `(i, p)` / `(p, j)` in range (MatRef's constructors and
                // `row_range` keep `rows·row_stride` inside the data), and
                // `c` holds `m·n` elements, written row-major. With
                // `read_dst` false the crate never reads `c`.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        stride(n),
                        beta != 0.0,
                        a.data.as_ptr(),
                        stride(a.col_stride),
                        stride(a.row_stride),
                        b.data.as_ptr(),
                        stride(b.col_stride),
                        stride(b.row_stride),
                        beta,
                        alpha,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
        }
    };
}

crate_gemm!(f32);
crate_gemm!(f64);

/// A plain `i, p, j` loop for integer types, wrapping on overflow.
macro_rules! int_gemm {
    ($ty:ty) => {
        impl GemmElem for $ty {
            const ZERO: Self = 0;
            const ONE: Self = 1;

            fn gemm_serial(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: &mut [Self], alpha: Self, beta: Self) {
                let (m, k, n) = (a.rows, a.cols, b.cols);
                for i in 0..m {
                    let row = &mut c[i * n..(i + 1) * n];
                    for value in row.iter_mut() {
                        *value = if beta == 0 { 0 } else { beta.wrapping_mul(*value) };
                    }
                    for p in 0..k {
                        let a_ip = alpha.wrapping_mul(a.at(i, p));
                        for (j, value) in row.iter_mut().enumerate() {
                            *value = value.wrapping_add(a_ip.wrapping_mul(b.at(p, j)));
                        }
                    }
                }
            }
        }
    };
}

int_gemm!(i32);
int_gemm!(i64);
int_gemm!(u32);
int_gemm!(u64);

/// Multiply-adds per block of rows: below about this much work a block is
/// not worth a job of its own.
pub const BLOCK_WORK: usize = 1 << 20;

/// Rows of `C` per block for an `m × k × n` product: enough rows for about
/// [`BLOCK_WORK`] multiply-adds, a multiple of 8 (the crate's register
/// tiles are multiples of that height). Depends only on the sizes.
pub fn rows_per_block(m: usize, k: usize, n: usize) -> usize {
    let per_row = k.max(1).saturating_mul(n.max(1));
    BLOCK_WORK.div_ceil(per_row).next_multiple_of(8).min(m.max(1))
}

/// `C = alpha·A·B + beta·C`, with the scalars fixed.
#[derive(Debug, Clone, Copy)]
pub struct Gemm<T> {
    /// Scale of the product.
    pub alpha: T,
    /// Scale of `C`'s previous contents (0: ignored, even NaN).
    pub beta: T,
}

impl<T: GemmElem> Gemm<T> {
    /// A product with these scalars.
    pub fn new(alpha: T, beta: T) -> Self {
        Gemm { alpha, beta }
    }

    /// Computes into `c` (row-major `a.rows() × b.cols()`), in parallel over
    /// blocks of rows when the product is large.
    ///
    /// # Panics
    /// When the inner dimensions differ or `c` has the wrong length (caller
    /// bugs: the ops check shapes and return errors first).
    pub fn run(&self, a: MatRef<'_, T>, b: MatRef<'_, T>, c: &mut [T], par: &Parallel) {
        self.run_then(a, b, c, par, &|_, _| {});
    }

    /// As [`Gemm::run`], then calls `then(first_row, block)` on each block
    /// of rows of `c` right after computing it, on the same thread, while
    /// the block is in cache (an epilogue: a bias, an activation). The
    /// blocks are those of `run`, fixed by the sizes.
    ///
    /// # Panics
    /// As [`Gemm::run`].
    pub fn run_then(
        &self,
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        c: &mut [T],
        par: &Parallel,
        then: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        assert_eq!(b.rows, k, "inner dimensions differ");
        assert_eq!(c.len(), m * n, "output has the wrong length");
        if m == 0 || n == 0 {
            return;
        }
        let rows = rows_per_block(m, k, n);
        let work = m.saturating_mul(k).saturating_mul(n);
        par.for_blocks_by_work(c, rows * n, work, |idx, block| {
            let start = idx * rows;
            T::gemm_serial(a.row_range(start, block.len() / n), b, block, self.alpha, self.beta);
            then(start, block);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::values;

    /// The float64 product written out, as the reference.
    fn reference(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn f32_matches_float64_loops_on_network_shapes() {
        for (m, k, n) in [(1, 512, 10), (64, 576, 64), (128, 64, 128), (3, 0, 2), (7, 5, 1), (300, 40, 70)] {
            let a = values(m * k, 7);
            let b = values(k * n, 11);
            let want = reference(&a, &b, m, k, n);
            let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
            let mut c = vec![f32::NAN; m * n];
            Gemm::new(1.0, 0.0).run(
                MatRef::row_major(&a32, m, k),
                MatRef::row_major(&b32, k, n),
                &mut c,
                &Parallel::global(),
            );
            for (got, want) in c.iter().zip(&want) {
                assert!(
                    (f64::from(*got) - want).abs() <= 1e-4 * (k as f64).sqrt().max(1.0),
                    "{m}x{k}x{n}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn transposed_operands_alpha_and_beta() {
        let (m, k, n) = (5, 4, 3);
        let a = values(k * m, 3); // stored k × m
        let b = values(n * k, 5); // stored n × k
        let c0 = values(m * n, 9);
        let at: Vec<f64> = (0..m * k).map(|idx| a[(idx % k) * m + idx / k]).collect();
        let bt: Vec<f64> = (0..k * n).map(|idx| b[(idx % n) * k + idx / n]).collect();
        let product = reference(&at, &bt, m, k, n);
        let mut c = c0.clone();
        Gemm::new(0.5, 2.0).run(
            MatRef::row_major(&a, k, m).t(),
            MatRef::row_major(&b, n, k).t(),
            &mut c,
            &Parallel::serial(),
        );
        for idx in 0..m * n {
            let want = 0.5 * product[idx] + 2.0 * c0[idx];
            assert!((c[idx] - want).abs() < 1e-12, "{idx}: {} vs {want}", c[idx]);
        }
    }

    #[test]
    fn integers_wrap() {
        let a = [i32::MAX, 2];
        let b = [2, 3];
        let mut c = [0i32];
        Gemm::new(1, 0).run(MatRef::row_major(&a, 1, 2), MatRef::row_major(&b, 2, 1), &mut c, &Parallel::serial());
        assert_eq!(c[0], i32::MAX.wrapping_mul(2).wrapping_add(6));
    }

    #[test]
    fn bitwise_independent_of_thread_count() {
        let (m, k, n) = (256, 256, 256);
        let a: Vec<f32> = values(m * k, 1).iter().map(|&x| x as f32).collect();
        let b: Vec<f32> = values(k * n, 2).iter().map(|&x| x as f32).collect();
        let run = |par: &Parallel| {
            let mut c = vec![0f32; m * n];
            Gemm::new(1.0, 0.0).run(MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n), &mut c, par);
            c
        };
        let serial = run(&Parallel::serial());
        for threads in [2, 3] {
            let par = Parallel::with_threads(threads).expect("threads");
            assert!(run(&par).iter().zip(&serial).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
