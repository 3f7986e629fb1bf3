//! Elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh.
//!
//! Semantics follow PyTorch where ONNX leaves room: NaN propagates through
//! every function, LeakyRelu is `x > 0 ? x : alpha * x` (as `at::leaky_relu`).
//!
//! float32 runs on the SIMD path chosen at run time (see
//! [`super::simd`]); float64 and the integer Relu use the scalar functions
//! of this module.
//!
//! Accuracy of the f32 paths over all 2^32 inputs, against an f64 reference
//! rounded to f32 (`cargo run --release --example ulp_sweep`), the same on
//! every path: Relu and LeakyRelu are exact; Sigmoid is within 2 ULP and
//! Tanh within 1 ULP; both are monotone and stay in [0, 1] and [-1, 1];
//! Sigmoid keeps subnormal results down to x = -103.9.

use num_traits::Float;

use super::Parallel;
use super::math::{self, Elementwise};
#[cfg(target_arch = "x86_64")]
use super::simd::avx2::{Avx2, F32x8};
#[cfg(target_arch = "x86_64")]
use super::simd::avx512::{Avx512, F32x16};
use super::simd::scalar::{F32x1, Scalar};
#[cfg(target_arch = "x86_64")]
use super::simd::sse2::{F32x4, Sse2};
use super::simd::{self, Isa, VecF32};

/// Which elementwise function to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// `max(x, 0)`, NaN kept.
    Relu,
    /// `x` for `x > 0`, else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
}

/// Relu of one value; NaN stays NaN.
#[inline]
pub fn relu<T: PartialOrd + Default + Copy>(x: T) -> T {
    // `x < 0` is false for NaN and for -0.0, so both pass through unchanged,
    // as in PyTorch (`clamp_min`) and ONNX Runtime.
    if x < T::default() { T::default() } else { x }
}

/// LeakyRelu of one value.
#[inline]
pub fn leaky_relu<T: Float>(x: T, alpha: T) -> T {
    if x > T::zero() { x } else { x * alpha }
}

/// Sigmoid of one value, from `exp(-|x|)` so that neither branch overflows.
#[inline]
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// Tanh of one value.
#[inline]
pub fn tanh<T: Float>(x: T) -> T {
    x.tanh()
}

fn apply_scalar<T: Float + Default>(op: Unary, src: &[T], dst: &mut [T]) {
    let zip = src.iter().zip(dst.iter_mut());
    match op {
        Unary::Relu => zip.for_each(|(&x, y)| *y = relu(x)),
        Unary::LeakyRelu { alpha } => {
            let alpha = T::from(alpha).unwrap_or_else(T::zero);
            zip.for_each(|(&x, y)| *y = leaky_relu(x, alpha));
        }
        Unary::Sigmoid => zip.for_each(|(&x, y)| *y = sigmoid(x)),
        Unary::Tanh => zip.for_each(|(&x, y)| *y = tanh(x)),
    }
}

fn apply_scalar_inplace<T: Float + Default>(op: Unary, data: &mut [T]) {
    match op {
        Unary::Relu => data.iter_mut().for_each(|x| *x = relu(*x)),
        Unary::LeakyRelu { alpha } => {
            let alpha = T::from(alpha).unwrap_or_else(T::zero);
            data.iter_mut().for_each(|x| *x = leaky_relu(*x, alpha));
        }
        Unary::Sigmoid => data.iter_mut().for_each(|x| *x = sigmoid(*x)),
        Unary::Tanh => data.iter_mut().for_each(|x| *x = tanh(*x)),
    }
}

/// Outputs from this many elements (16 MiB of float32) on are written with
/// non-temporal stores: far larger than a core's share of cache, so the
/// lines would be evicted before anyone reads them, and a plain store
/// first reads each line it writes (a third memory stream). Relu over 16M
/// elements from a lent input: 7.6-9.3 ms -> 4.0-4.7 ms at 1 thread,
/// 2.8-3.1 -> 2.3-2.4 ms at 2 (`onnxi bench`, 2-core dev box). Fused
/// chains and in-place kernels keep plain stores (their data is read
/// again, or already in cache).
pub const STREAM_MIN_ELEMS: usize = 4 << 20;

/// The buffers of a kernel from `src` into `dst`: streaming stores for a
/// large output (see [`STREAM_MIN_ELEMS`]).
fn pair<'a>(src: &'a [f32], dst: &'a mut [f32], total: usize) -> Buffers<'a> {
    if total >= STREAM_MIN_ELEMS { Buffers::PairStream(src, dst) } else { Buffers::Pair(src, dst) }
}

/// Where an f32 kernel reads and writes.
enum Buffers<'a> {
    /// From the first slice into the second.
    Pair(&'a [f32], &'a mut [f32]),
    /// From the first slice into the second, with non-temporal stores.
    PairStream(&'a [f32], &'a mut [f32]),
    /// In place.
    InPlace(&'a mut [f32]),
}

#[inline(always)]
fn run_func<V: VecF32, F: Elementwise>(token: V::Token, func: F, buffers: Buffers<'_>) {
    match buffers {
        Buffers::Pair(src, dst) => math::map::<V, F, false>(token, func, src, dst),
        Buffers::PairStream(src, dst) => math::map::<V, F, true>(token, func, src, dst),
        Buffers::InPlace(data) => math::map_inplace::<V, F>(token, func, data),
    }
}

/// The one generic body behind every f32 path.
#[inline(always)]
fn run_generic<V: VecF32>(token: V::Token, op: Unary, buffers: Buffers<'_>) {
    match op {
        Unary::Relu => run_func::<V, _>(token, math::Relu, buffers),
        Unary::LeakyRelu { alpha } => run_func::<V, _>(token, math::LeakyRelu { alpha }, buffers),
        Unary::Sigmoid => run_func::<V, _>(token, math::Sigmoid, buffers),
        Unary::Tanh => run_func::<V, _>(token, math::Tanh, buffers),
    }
}

fn run_portable(op: Unary, buffers: Buffers<'_>) {
    run_generic::<F32x1>(Scalar::new(), op, buffers);
}

// SSE2 is part of x86-64, so this needs no #[target_feature].
#[cfg(target_arch = "x86_64")]
fn run_sse2(token: Sse2, op: Unary, buffers: Buffers<'_>) {
    run_generic::<F32x4>(token, op, buffers);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(token: Avx2, op: Unary, buffers: Buffers<'_>) {
    run_generic::<F32x8>(token, op, buffers);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512(token: Avx512, op: Unary, buffers: Buffers<'_>) {
    run_generic::<F32x16>(token, op, buffers);
}

/// Runs `op` on the path `isa`, or the portable one if the CPU lacks it.
fn run_f32(isa: Isa, op: Unary, buffers: Buffers<'_>) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            if let Some(token) = Avx512::new() {
                // SAFETY: the token proves AVX-512F, the feature run_avx512
                // is compiled for.
                return unsafe { run_avx512(token, op, buffers) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            if let Some(token) = Avx2::new() {
                // SAFETY: the token proves AVX2 and FMA, the features
                // run_avx2 is compiled for.
                return unsafe { run_avx2(token, op, buffers) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2 => {
            if let Some(token) = Sse2::new() {
                return run_sse2(token, op, buffers);
            }
        }
        _ => {}
    }
    run_portable(op, buffers);
}

/// Applies `op` to float32 `src`, writing `dst` (same length).
pub fn apply_f32(op: Unary, src: &[f32], dst: &mut [f32], par: &Parallel) {
    let isa = simd::active();
    let total = dst.len();
    par.map(src, dst, |src, dst| run_f32(isa, op, pair(src, dst, total)));
}

/// Applies `op` to float32 data in place.
pub fn apply_f32_inplace(op: Unary, data: &mut [f32], par: &Parallel) {
    let isa = simd::active();
    par.map_inplace(data, |data| run_f32(isa, op, Buffers::InPlace(data)));
}

/// Applies `op` to float32 `src` on one thread, on the path `isa` (or the
/// best path below it that the CPU has); for tests, sweeps and benches.
pub fn apply_f32_isa(isa: Isa, op: Unary, src: &[f32], dst: &mut [f32]) {
    let total = dst.len();
    run_f32(isa.lowered(), op, pair(src, dst, total));
}

/// In-place form of [`apply_f32_isa`].
pub fn apply_f32_inplace_isa(isa: Isa, op: Unary, data: &mut [f32]) {
    run_f32(isa.lowered(), op, Buffers::InPlace(data));
}

/// Applies `op` to float64 `src`, writing `dst` (same length).
pub fn apply_f64(op: Unary, src: &[f64], dst: &mut [f64], par: &Parallel) {
    par.map(src, dst, |src, dst| apply_scalar(op, src, dst));
}

/// Applies `op` to float64 data in place.
pub fn apply_f64_inplace(op: Unary, data: &mut [f64], par: &Parallel) {
    par.map_inplace(data, |data| apply_scalar_inplace(op, data));
}

/// Relu on integers, in place.
pub fn relu_int_inplace<T: PartialOrd + Default + Copy + Send>(data: &mut [T], par: &Parallel) {
    par.map_inplace(data, |data| data.iter_mut().for_each(|x| *x = relu(*x)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::par::PAR_MIN_ELEMS;
    use crate::kernels::test_util::{Rng, isas, ulp_diff};

    /// The f64 reference, rounded to f32.
    fn reference(op: Unary, x: f32) -> f32 {
        match op {
            Unary::Relu => relu(x),
            Unary::LeakyRelu { alpha } => leaky_relu(x, alpha),
            Unary::Sigmoid => sigmoid(f64::from(x)) as f32,
            Unary::Tanh => f64::from(x).tanh() as f32,
        }
    }

    const OPS: [Unary; 4] = [Unary::Relu, Unary::LeakyRelu { alpha: 0.01 }, Unary::Sigmoid, Unary::Tanh];

    /// 0 for the exact functions, 4 ULP for Sigmoid and Tanh.
    fn allowed_ulp(op: Unary) -> u64 {
        match op {
            Unary::Relu | Unary::LeakyRelu { .. } => 0,
            Unary::Sigmoid | Unary::Tanh => 4,
        }
    }

    #[test]
    fn large_outputs_written_with_streaming_stores_match_in_place() {
        let mut rng = Rng::new(37);
        // One element more than the threshold, and starting one element
        // into the buffers so that the head and tail take plain stores.
        let src = rng.vec(STREAM_MIN_ELEMS + 2, -12.0, 12.0);
        for isa in isas() {
            for op in [Unary::LeakyRelu { alpha: 0.1 }, Unary::Relu] {
                let mut want = src[1..].to_vec();
                apply_f32_inplace_isa(isa, op, &mut want);
                let mut got = vec![0f32; src.len()];
                apply_f32_isa(isa, op, &src[1..], &mut got[1..]);
                assert!(got[1..].iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{op:?} {isa:?}");
                // And split across threads.
                let mut pooled = vec![0f32; src.len() - 1];
                let par = Parallel::with_threads(2).unwrap_or_else(|_| Parallel::serial());
                apply_f32(op, &src[1..], &mut pooled, &par);
                let mut active = src[1..].to_vec();
                apply_f32_inplace(op, &mut active, &Parallel::serial());
                assert!(pooled.iter().zip(&active).all(|(a, b)| a.to_bits() == b.to_bits()), "{op:?} pooled");
            }
        }
    }

    /// Sigmoid and Tanh take per-vector shortcuts when every lane is in
    /// one range; a value must give the same bits whether its vector
    /// takes a shortcut (vectors of like values) or the general form
    /// (every vector mixed with values from the other ranges).
    #[test]
    fn per_vector_shortcuts_give_the_same_bits_as_the_general_form() {
        let mut rng = Rng::new(31);
        // Sigmoid: |x| <= 20 (shortcut) against 20 < |x| < 120; Tanh:
        // |x| < 0.55 and |x| >= 0.55 (each a shortcut) mixed.
        let cases = [
            (Unary::Sigmoid, rng.vec(4096, -20.0, 20.0), [-119.0f32, 25.0, -21.0, 90.0]),
            (Unary::Tanh, rng.vec(4096, -0.55, 0.55), [3.0, -0.6, 9.5, -20.0]),
            (Unary::Tanh, rng.vec(4096, -12.0, 12.0), [0.1, -0.3, 1e-30, 0.5]),
        ];
        for isa in isas() {
            for (op, values, others) in &cases {
                let mut pure = vec![0f32; values.len()];
                apply_f32_isa(isa, *op, values, &mut pure);
                // A value from the other range after every third one: no 4
                // consecutive lanes are alike.
                let mixed_in: Vec<f32> = values
                    .iter()
                    .enumerate()
                    .flat_map(|(idx, &value)| {
                        [value, others[idx % 4]].into_iter().take(if idx % 3 == 0 { 2 } else { 1 })
                    })
                    .collect();
                let mut mixed_out = vec![0f32; mixed_in.len()];
                apply_f32_isa(isa, *op, &mixed_in, &mut mixed_out);
                let mut at = 0;
                for (idx, &want) in pure.iter().enumerate() {
                    assert_eq!(mixed_out[at].to_bits(), want.to_bits(), "{op:?} {isa:?} f({:e})", values[idx]);
                    at += if idx % 3 == 0 { 2 } else { 1 };
                }
            }
        }
    }

    fn check_against_reference(isa: Isa, op: Unary, inputs: &[f32]) {
        let mut outputs = vec![0f32; inputs.len()];
        apply_f32_isa(isa, op, inputs, &mut outputs);
        let mut worst = (0, 0f32);
        for (&x, &got) in inputs.iter().zip(&outputs) {
            let want = reference(op, x);
            let error = ulp_diff(got, want);
            assert!(error <= allowed_ulp(op), "{op:?} on {isa:?}: f({x:e}) = {got:e}, want {want:e} ({error} ULP)");
            if op == Unary::Relu || matches!(op, Unary::LeakyRelu { .. }) {
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{op:?} on {isa:?}: f({x:e}) = {got:e}, want {want:e}"
                );
            }
            if error > worst.0 {
                worst = (error, x);
            }
        }
    }

    #[test]
    fn dense_sample_within_bounds_on_every_path() {
        // Every 4099th bit pattern: about a million inputs covering every
        // binade, subnormals, infinities and NaNs.
        let inputs: Vec<f32> = (0..=u32::MAX / 4099).map(|idx| f32::from_bits(idx * 4099)).collect();
        for isa in isas() {
            for op in OPS {
                check_against_reference(isa, op, &inputs);
            }
        }
    }

    fn special_inputs() -> Vec<f32> {
        let mut inputs = vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::from_bits(0x8000_0001),
            1e-40,
            -1e-40,
            1e-20,
            -1e-20,
            88.7,
            -88.7,
            88.72284,
            -87.33655,
            -87.5,
            -100.0,
            -103.9,
            -104.5,
            -150.0,
            1e4,
            -1e4,
            f32::MAX,
            f32::MIN,
            0.55,
            -0.55,
            0.549_999_95,
            9.0,
            9.1,
            -9.1,
            17.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
        ];
        inputs.extend((-40..=40).map(|idx| idx as f32 * 0.25));
        inputs
    }

    #[test]
    fn special_values_on_every_path() {
        let inputs = special_inputs();
        for isa in isas() {
            for op in OPS {
                check_against_reference(isa, op, &inputs);
            }
            let run = |op, x: f32| {
                let mut out = [0f32];
                apply_f32_isa(isa, op, &[x], &mut out);
                out[0]
            };
            assert!(run(Unary::Sigmoid, f32::NAN).is_nan());
            assert_eq!(run(Unary::Sigmoid, f32::NEG_INFINITY), 0.0);
            assert_eq!(run(Unary::Sigmoid, f32::INFINITY), 1.0);
            assert_eq!(run(Unary::Sigmoid, 0.0), 0.5);
            // A subnormal result, not flushed to zero.
            let tiny = run(Unary::Sigmoid, -95.0);
            assert!(tiny > 0.0 && tiny < f32::MIN_POSITIVE, "sigmoid(-95) = {tiny:e} on {isa:?}");
            assert!(run(Unary::Tanh, f32::NAN).is_nan());
            assert_eq!(run(Unary::Tanh, f32::INFINITY), 1.0);
            assert_eq!(run(Unary::Tanh, f32::NEG_INFINITY), -1.0);
            assert_eq!(run(Unary::Tanh, -0.0).to_bits(), (-0.0f32).to_bits());
            assert_eq!(run(Unary::Tanh, 1e-30), 1e-30);
            assert_eq!(run(Unary::Tanh, -1e-40), -1e-40);
            assert!(run(Unary::Relu, f32::NAN).is_nan());
            // -0.0 passes through, as in PyTorch and ONNX Runtime.
            assert_eq!(run(Unary::Relu, -0.0).to_bits(), (-0.0f32).to_bits());
            assert!(run(Unary::LeakyRelu { alpha: 0.01 }, f32::NAN).is_nan());
            assert_eq!(run(Unary::LeakyRelu { alpha: 0.1 }, -2.0), -0.2f32 * 1.0 + 0.0);
        }
    }

    #[test]
    fn outputs_in_range_and_monotone() {
        // Sorted inputs across the interesting range, including the tanh
        // branch point and the sigmoid subnormal tail.
        let inputs: Vec<f32> = (0..20_000).map(|idx| -110.0 + idx as f32 * 0.011).collect();
        for isa in isas() {
            for op in [Unary::Sigmoid, Unary::Tanh] {
                let mut out = vec![0f32; inputs.len()];
                apply_f32_isa(isa, op, &inputs, &mut out);
                let (lo, hi) = if op == Unary::Sigmoid { (0.0, 1.0) } else { (-1.0, 1.0) };
                assert!(out.iter().all(|y| (lo..=hi).contains(y)), "{op:?} out of range on {isa:?}");
                assert!(out.windows(2).all(|pair| pair[0] <= pair[1]), "{op:?} not monotone on {isa:?}");
            }
        }
    }

    #[test]
    fn monotone_over_consecutive_floats() {
        // Runs of consecutive f32 values where outputs move by about one ULP
        // per input step, so that any rounding wobble would show. The
        // textbook e^x / (1 + e^x) fails here near x = -1.1.
        for start in [-1.1f32, -0.3, -3e-7, 0.7, 2.5, -5.0, 0.55] {
            let bits = start.to_bits();
            let inputs: Vec<f32> = if start < 0.0 {
                // Decreasing bit patterns of a negative number: increasing x.
                (0..20_000).map(|idx| f32::from_bits(bits - idx)).collect()
            } else {
                (0..20_000).map(|idx| f32::from_bits(bits + idx)).collect()
            };
            for isa in isas() {
                for op in [Unary::Sigmoid, Unary::Tanh] {
                    let mut out = vec![0f32; inputs.len()];
                    apply_f32_isa(isa, op, &inputs, &mut out);
                    let bad = out.windows(2).position(|pair| pair[0] > pair[1]);
                    assert!(bad.is_none(), "{op:?} on {isa:?} decreases after x = {:e}", inputs[bad.unwrap_or(0)]);
                }
            }
        }
    }

    #[test]
    fn odd_lengths_match_the_vector_body() {
        let mut rng = Rng::new(7);
        let inputs = rng.vec(200, -20.0, 20.0);
        for isa in isas() {
            for op in OPS {
                let mut full = vec![0f32; inputs.len()];
                apply_f32_isa(isa, op, &inputs, &mut full);
                for len in [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129] {
                    let mut out = vec![f32::NAN; len];
                    apply_f32_isa(isa, op, &inputs[..len], &mut out);
                    let mut in_place = inputs[..len].to_vec();
                    apply_f32_inplace_isa(isa, op, &mut in_place);
                    for idx in 0..len {
                        assert_eq!(out[idx].to_bits(), full[idx].to_bits(), "{op:?} {isa:?} len {len} at {idx}");
                        assert_eq!(in_place[idx].to_bits(), full[idx].to_bits(), "{op:?} {isa:?} len {len} at {idx}");
                    }
                }
            }
        }
    }

    #[test]
    fn parallel_runs_match_serial_bitwise() -> Result<(), String> {
        let mut rng = Rng::new(11);
        let inputs = rng.vec(PAR_MIN_ELEMS * 3 + 5, -30.0, 30.0);
        for op in OPS {
            let mut serial = vec![0f32; inputs.len()];
            apply_f32(op, &inputs, &mut serial, &Parallel::serial());
            for n_threads in [2, 8] {
                let par = Parallel::with_threads(n_threads)?;
                let mut out = vec![0f32; inputs.len()];
                apply_f32(op, &inputs, &mut out, &par);
                let mut in_place = inputs.clone();
                apply_f32_inplace(op, &mut in_place, &par);
                assert!(out.iter().zip(&serial).all(|(a, b)| a.to_bits() == b.to_bits()), "{op:?} x{n_threads}");
                assert!(
                    in_place.iter().zip(&serial).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{op:?} x{n_threads} in place"
                );
            }
            check_against_reference(simd::active(), op, &inputs[..1000]);
        }
        Ok(())
    }

    #[test]
    fn float64_and_integer_paths() {
        let src = [-2.0f64, -0.0, 0.0, 3.0, f64::NAN, f64::NEG_INFINITY];
        let mut dst = [0f64; 6];
        apply_f64(Unary::Sigmoid, &src, &mut dst, &Parallel::serial());
        assert!((dst[0] - 1.0 / (1.0 + 2f64.exp())).abs() < 1e-15);
        assert!(dst[4].is_nan());
        assert_eq!(dst[5], 0.0);
        let mut data = src;
        apply_f64_inplace(Unary::LeakyRelu { alpha: 0.5 }, &mut data, &Parallel::serial());
        assert_eq!(data[0], -1.0);
        assert_eq!(data[3], 3.0);
        let mut ints = [-3i32, 0, 5, i32::MIN];
        relu_int_inplace(&mut ints, &Parallel::serial());
        assert_eq!(ints, [0, 0, 5, 0]);
    }
}
