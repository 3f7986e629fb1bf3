//! Softmax kernel tests: every path against a float64 reference, edge
//! values, thread-count independence, and the large-sample bound.

use super::*;
use crate::kernels::math;
use crate::kernels::par::PAR_MIN_ELEMS;
use crate::kernels::simd::VecF32;
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::avx2::{Avx2, F32x8};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::avx512::{Avx512, F32x16};
use crate::kernels::simd::scalar::{F32x1, Scalar};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::sse2::{F32x4, Sse2};
use crate::kernels::test_util::{Rng, isas, ulp_diff};

/// Softmax of each `[n, inner]`-strided lane in f64, rounded to f32.
fn reference(data: &[f32], n: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for (slab_idx, slab) in data.chunks(n * inner).enumerate() {
        for col in 0..inner {
            let lane: Vec<f64> = (0..n).map(|row| f64::from(slab[row * inner + col])).collect();
            let max = lane.iter().fold(f64::NEG_INFINITY, |acc, &x| if x > acc || x.is_nan() { x } else { acc });
            let sum: f64 = lane.iter().map(|&x| (x - max).exp()).sum();
            for (row, &x) in lane.iter().enumerate() {
                out[slab_idx * n * inner + row * inner + col] = ((x - max).exp() / sum) as f32;
            }
        }
    }
    out
}

fn run(isa: Isa, data: &[f32], n: usize, inner: usize, par: &Parallel) -> Vec<f32> {
    let mut out = data.to_vec();
    softmax_f32_isa(isa, &mut out, n, inner, par);
    out
}

/// Largest ULP error against the f64 reference.
fn max_ulp(got: &[f32], want: &[f32]) -> u64 {
    got.iter().zip(want).map(|(&g, &w)| ulp_diff(g, w)).max().unwrap_or(0)
}

/// The bound stated in the module docs.
const MAX_ULP: u64 = 3;

#[test]
fn contiguous_lanes_within_bound_and_sum_to_one() {
    let mut rng = Rng::new(3);
    for isa in isas() {
        for n in [1, 2, 5, 7, 16, 17, 33, 1000, BLOCK, BLOCK + 3, 3 * BLOCK + 17] {
            let outer = 3;
            // A wide spread, so that x - max is far from exact in f32.
            let data = rng.vec(outer * n, -60.0, 40.0);
            let got = run(isa, &data, n, 1, &Parallel::serial());
            let error = max_ulp(&got, &reference(&data, n, 1));
            assert!(error <= MAX_ULP, "{isa:?} n={n}: {error} ULP");
            for lane in got.chunks(n) {
                let sum: f64 = lane.iter().map(|&y| f64::from(y)).sum();
                assert!((sum - 1.0).abs() < 1e-5, "{isa:?} n={n}: lane sums to {sum}");
            }
        }
    }
}

#[test]
fn strided_lanes_within_bound() {
    let mut rng = Rng::new(5);
    for isa in isas() {
        for (outer, n, inner) in [(2, 5, 3), (1, 7, 16), (3, 33, 19), (2, 1, 40), (1, 300, 8)] {
            let data = rng.vec(outer * n * inner, -30.0, 30.0);
            let got = run(isa, &data, n, inner, &Parallel::serial());
            let error = max_ulp(&got, &reference(&data, n, inner));
            assert!(error <= MAX_ULP, "{isa:?} [{outer},{n},{inner}]: {error} ULP");
        }
    }
}

#[test]
fn large_references_use_the_exact_difference_form() {
    // Maxima beyond GRID_LIMIT: x - max is exact there (Sterbenz).
    let mut rng = Rng::new(13);
    for isa in isas() {
        for center in [5e4f32, -1e5, 3e6, -32_100.0] {
            let data: Vec<f32> = rng.vec(2 * 700, -40.0, 40.0).iter().map(|x| center + x).collect();
            let got = run(isa, &data, 700, 1, &Parallel::serial());
            let error = max_ulp(&got, &reference(&data, 700, 1));
            assert!(error <= MAX_ULP, "{isa:?} around {center}: {error} ULP");
        }
    }
}

#[test]
fn usual_logits_take_the_unshifted_form_within_bound() {
    // Lanes in [-86, 40] (the unshifted form), right up to both limits,
    // with partial last vectors, in place and into a destination.
    let mut rng = Rng::new(31);
    for isa in isas() {
        for (center, spread, n) in
            [(0.0f32, 10.0, 1000), (3.5, 36.0, 17), (-40.0, 42.0, 33), (20.0, 19.9, 5), (-60.0, 25.0, 1)]
        {
            let data: Vec<f32> = rng.vec(3 * n, -spread, spread).iter().map(|x| center + x).collect();
            let want = reference(&data, n, 1);
            let got = run(isa, &data, n, 1, &Parallel::serial());
            assert!(max_ulp(&got, &want) <= MAX_ULP, "{isa:?} around {center}: {} ULP", max_ulp(&got, &want));
            let mut into = vec![0f32; data.len()];
            softmax_into_f32_isa(isa, &data, &mut into, n, 1, &Parallel::serial());
            assert_eq!(into, got, "{isa:?} around {center}: into differs from in place");
        }
        // The edges of the form: e^-85.9 is still normal, and the sum
        // of e^40 still has a normal reciprocal.
        let mut data = vec![0.0f32, -85.9, -1.0, 40.0, -85.9, 39.99];
        data.extend(rng.vec(40, -85.0, 0.0));
        for (n, offset) in [(3, 0), (3, 3), (40, 6)] {
            let lane = &data[offset..offset + n];
            let got = run(isa, lane, n, 1, &Parallel::serial());
            let error = max_ulp(&got, &reference(lane, n, 1));
            assert!(error <= MAX_ULP, "{isa:?} {lane:?}: {error} ULP");
        }
    }
    // The form taken: reference 0 inside the range, the grid outside.
    for (lane, want) in
        [(vec![40.0f32, -85.9, 3.0], 0.0), (vec![40.5f32, 0.0], 40.5), (vec![0.3f32, -86.5], 0.30078125)]
    {
        let mut lane = lane;
        let range = block_range::<F32x1>(Scalar::new(), &lane);
        let stats = block_stats::<F32x1, _, true>(Scalar::new(), Own, range, &mut lane);
        assert_eq!(stats.reference, want, "{lane:?}");
    }
}

#[test]
fn special_values_among_usual_logits() {
    // A NaN or +inf hidden in full vectors of logits the unshifted form
    // would take makes the lane NaN; a -inf sends it to the grid form
    // and gives 0 there.
    let mut rng = Rng::new(41);
    let base = rng.vec(100, -5.0, 5.0);
    for isa in isas() {
        for (at, special) in [(37, f32::NAN), (0, f32::NAN), (99, f32::NAN), (64, f32::INFINITY)] {
            let mut data = base.clone();
            data[at] = special;
            let got = run(isa, &data, 100, 1, &Parallel::serial());
            assert!(got.iter().all(|y| y.is_nan()), "{isa:?} {special} at {at}");
        }
        let mut data = base.clone();
        data[37] = f32::NEG_INFINITY;
        let got = run(isa, &data, 100, 1, &Parallel::serial());
        assert_eq!(got[37], 0.0, "{isa:?}");
        let error = max_ulp(&got, &reference(&data, 100, 1));
        assert!(error <= MAX_ULP, "{isa:?} -inf: {error} ULP");
    }
}

#[test]
fn a_lane_of_blocks_with_far_apart_references() -> Result<(), String> {
    // Blocks of usual logits (which would be unshifted in a lane of
    // their own), one spread wider than 86 (grid form, underflow
    // handled), one above 40 (grid form, all normal), and last a
    // partial block of 7 under a maximum 110 away: its outputs are
    // normal floats although exp(-110) / S is not.
    let mut rng = Rng::new(37);
    let mut data = rng.vec(BLOCK, -5.0, 5.0);
    data.extend(rng.vec(BLOCK, -150.0, 3.0));
    data.extend(rng.vec(BLOCK, 30.0, 45.0));
    data.extend(rng.vec(BLOCK, 60.0, 110.0));
    data.extend([36.8f32, 30.0, 1.0, -5.0, 0.0, 20.0, 35.0]);
    let n = data.len();
    for isa in isas() {
        for threads in [1, 2] {
            let got = run(isa, &data, n, 1, &Parallel::with_threads(threads)?);
            let error = max_ulp(&got, &reference(&data, n, 1));
            assert!(error <= MAX_ULP, "{isa:?}, {threads} threads: {error} ULP");
        }
    }
    Ok(())
}

/// A larger sample than `cargo test` can afford in debug mode:
/// `cargo test --release -- --ignored softmax_bound`.
#[test]
#[ignore]
fn softmax_bound_on_a_large_sample() {
    let mut rng = Rng::new(17);
    for isa in isas() {
        let mut worst = 0;
        // Centers within 1000 of 0; the last two cases stay in the
        // unshifted form's range, [-86, 40].
        let cases = [
            (3, 200.0, 1000.0),
            (100, 60.0, 1000.0),
            (1000, 30.0, 1000.0),
            (BLOCK + 7, 100.0, 1000.0),
            (5 * BLOCK, 20.0, 1000.0),
            (1000, 38.0, 2.0),
            (BLOCK + 7, 20.0, 20.0),
        ];
        for (n, spread, centers) in cases {
            for _ in 0..(2_000_000 / n).max(1) {
                let center = rng.uniform(-centers, centers);
                let data: Vec<f32> = rng.vec(n, -spread, spread).iter().map(|x| center + x).collect();
                let got = run(isa, &data, n, 1, &Parallel::serial());
                worst = worst.max(max_ulp(&got, &reference(&data, n, 1)));
            }
        }
        println!("{isa:?}: softmax max error {worst} ULP");
        assert!(worst <= MAX_ULP, "{isa:?}: {worst} ULP");
    }
}

#[test]
fn special_lanes() {
    let inf = f32::INFINITY;
    let cases: Vec<(Vec<f32>, Vec<f32>)> = vec![
        (vec![1.0, f32::NAN, 2.0], vec![f32::NAN; 3]),
        (vec![f32::NAN], vec![f32::NAN]),
        (vec![-inf, -inf, -inf], vec![f32::NAN; 3]),
        (vec![1.0, inf, 2.0], vec![f32::NAN; 3]),
        (vec![-inf, 0.0, -inf], vec![0.0, 1.0, 0.0]),
        (vec![3.5], vec![1.0]),
        (vec![1e4, 1e4], vec![0.5, 0.5]),
        (vec![-1e4, 0.0], vec![0.0, 1.0]),
        (vec![f32::MAX, f32::MIN], vec![1.0, 0.0]),
    ];
    for isa in isas() {
        for (input, want) in &cases {
            let got = run(isa, input, input.len(), 1, &Parallel::serial());
            assert!(max_ulp(&got, want) <= MAX_ULP, "{isa:?} {input:?}: {got:?}");
            // The same lane strided across 17 columns.
            let inner = 17;
            let strided: Vec<f32> = input.iter().flat_map(|&x| std::iter::repeat_n(x, inner)).collect();
            let got = run(isa, &strided, input.len(), inner, &Parallel::serial());
            for col in 0..inner {
                let lane: Vec<f32> = (0..input.len()).map(|row| got[row * inner + col]).collect();
                assert!(max_ulp(&lane, want) <= MAX_ULP, "{isa:?} strided {input:?}: {lane:?}");
            }
        }
    }
}

#[test]
fn long_lane_with_special_blocks() {
    for isa in isas() {
        // A whole block of -inf next to finite blocks gives zeros there.
        let mut data = vec![0.5f32; 3 * BLOCK];
        data[..BLOCK].fill(f32::NEG_INFINITY);
        data[2 * BLOCK] = 2.0;
        let got = run(isa, &data, data.len(), 1, &Parallel::serial());
        assert!(got[..BLOCK].iter().all(|&y| y == 0.0), "{isa:?}");
        assert!(max_ulp(&got, &reference(&data, data.len(), 1)) <= MAX_ULP, "{isa:?}");
        // One NaN anywhere makes the whole lane NaN.
        let mut with_nan = data.clone();
        with_nan[BLOCK - 1] = f32::NAN;
        let got = run(isa, &with_nan, with_nan.len(), 1, &Parallel::serial());
        assert!(got.iter().all(|y| y.is_nan()), "{isa:?}");
        // The lane maximum in a later block than tiny values.
        let mut spread = vec![-3e38f32; 2 * BLOCK];
        spread[2 * BLOCK - 1] = 0.0;
        let got = run(isa, &spread, spread.len(), 1, &Parallel::serial());
        assert_eq!(got[2 * BLOCK - 1], 1.0);
        assert!(got[..2 * BLOCK - 1].iter().all(|&y| y == 0.0));
    }
}

#[test]
fn same_bits_for_any_thread_count() -> Result<(), String> {
    let mut rng = Rng::new(9);
    let pars = [Parallel::serial(), Parallel::with_threads(2)?, Parallel::with_threads(8)?];
    // One long lane, several long lanes, many short lanes, strided.
    let shapes = [(1, 9 * BLOCK + 123, 1), (6, 3 * BLOCK, 1), (200, 300, 1), (4, 100, 130)];
    for isa in isas() {
        for (outer, n, inner) in shapes {
            let data = rng.vec(outer * n * inner, -20.0, 20.0);
            assert!(data.len() >= PAR_MIN_ELEMS, "the shape must be large enough to split");
            let results: Vec<Vec<f32>> = pars.iter().map(|par| run(isa, &data, n, inner, par)).collect();
            for result in &results[1..] {
                assert!(
                    result.iter().zip(&results[0]).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} [{outer},{n},{inner}] differs across thread counts"
                );
            }
            assert!(max_ulp(&results[0], &reference(&data, n, inner)) <= MAX_ULP);
        }
    }
    Ok(())
}

#[test]
fn into_a_destination_gives_the_same_bits_as_in_place() -> Result<(), String> {
    let mut rng = Rng::new(21);
    let pars = [Parallel::serial(), Parallel::with_threads(2)?];
    // Short lanes, long lanes (serial and split), strided, a ragged end.
    let shapes = [(3, 5, 1), (40, 1000, 1), (2, 3 * BLOCK + 17, 1), (1, 9 * BLOCK + 5, 1), (3, 7, 19), (5, 33, 1)];
    for isa in isas() {
        for (outer, n, inner) in shapes {
            let src = rng.vec(outer * n * inner, -30.0, 30.0);
            for par in &pars {
                let want = run(isa, &src, n, inner, par);
                let mut dst = vec![f32::NAN; src.len()];
                softmax_into_f32_isa(isa, &src, &mut dst, n, inner, par);
                assert!(
                    dst.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} [{outer},{n},{inner}] threads {}",
                    par.n_threads()
                );
            }
        }
    }
    // float64 takes the copying default, and mismatched lengths write nothing.
    let src = [1.0f64, 2.0, 3.0, 4.0];
    let mut dst = [0.0f64; 4];
    softmax_into(&src, &mut dst, 2, 1, &Parallel::serial());
    let mut want = src;
    softmax(&mut want, 2, 1, &Parallel::serial());
    assert_eq!(dst, want);
    let mut short = [7.0f32; 3];
    softmax_into(&[1.0f32, 2.0, 3.0, 4.0], &mut short, 2, 1, &Parallel::serial());
    assert_eq!(short, [7.0; 3]);
    Ok(())
}

/// The exp pass with and without `ALL_NORMAL` on one block.
fn both_forms<V: VecF32, const GRID: bool>(token: V::Token, data: &[f32], reference: f32) -> [(Vec<u32>, u64); 2] {
    let mut fast = data.to_vec();
    let fast_sum = block_exp_sum::<V, Own, _>(token, Own, &mut fast, Shifted::<GRID, true>(reference));
    let mut general = data.to_vec();
    let general_sum = block_exp_sum::<V, Own, _>(token, Own, &mut general, Shifted::<GRID, false>(reference));
    let bits = |values: Vec<f32>| values.into_iter().map(f32::to_bits).collect();
    [(bits(fast), fast_sum.to_bits()), (bits(general), general_sum.to_bits())]
}

fn check_forms<V: VecF32>(token: V::Token, rng: &mut Rng) {
    for (center, len) in [(3.0f32, 1000), (-20.5, 77), (41_000.0, 333), (-7.0, 4096)] {
        let reference = grid_or_exact(center);
        // Within 86 below the reference (what the max/min test allows),
        // with a NaN in one case.
        let mut data: Vec<f32> = rng.vec(len, -85.9, 0.0).iter().map(|d| reference + d).collect();
        if len == 77 {
            data[40] = f32::NAN;
        }
        let [fast, general] = if reference.abs() < math::GRID_LIMIT {
            both_forms::<V, true>(token, &data, reference)
        } else {
            both_forms::<V, false>(token, &data, reference)
        };
        assert!(fast == general, "{} lanes, around {center}", V::LANES);
    }
}

fn grid_or_exact(max: f32) -> f32 {
    shifted_reference(max)
}

#[test]
fn the_all_normal_exp_gives_the_same_bits_as_the_general_form() {
    let mut rng = Rng::new(29);
    check_forms::<F32x1>(Scalar::new(), &mut rng);
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(token) = Sse2::new() {
            check_forms::<F32x4>(token, &mut rng);
        }
        if let Some(token) = Avx2::new() {
            check_forms::<F32x8>(token, &mut rng);
        }
        if let Some(token) = Avx512::new() {
            check_forms::<F32x16>(token, &mut rng);
        }
    }
}

#[test]
fn empty_and_degenerate_shapes() {
    let mut empty: [f32; 0] = [];
    softmax(&mut empty, 0, 1, &Parallel::serial());
    softmax(&mut empty, 5, 0, &Parallel::serial());
    let mut one = [f32::NEG_INFINITY];
    softmax(&mut one, 1, 1, &Parallel::serial());
    assert!(one[0].is_nan());
}

#[test]
fn float64_path() {
    let mut data = [1.0f64, 2.0, 3.0, f64::NEG_INFINITY];
    softmax(&mut data, 4, 1, &Parallel::serial());
    let sum: f64 = data.iter().sum();
    assert!((sum - 1.0).abs() < 1e-15);
    assert_eq!(data[3], 0.0);
    let mut nan = [1.0f64, f64::NAN];
    softmax(&mut nan, 2, 1, &Parallel::serial());
    assert!(nan.iter().all(|y| y.is_nan()));
    let mut strided = [0.0f64, 1.0, 0.0, 1.0];
    softmax(&mut strided, 2, 2, &Parallel::serial());
    assert_eq!(strided, [0.5, 0.5, 0.5, 0.5]);
}
