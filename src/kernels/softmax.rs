//! Softmax over the middle axis of a `[outer, n, inner]` layout.
//!
//! Each lane subtracts its maximum before `exp`, so inputs like 1e4 do not
//! overflow. A lane holding NaN, or whose maximum is +inf or -inf (all -inf),
//! comes out all NaN, as in PyTorch.
//!
//! # float32
//!
//! float32 runs on the SIMD path chosen at run time (see [`super::simd`]).
//! A contiguous lane (`inner == 1`) is cut into blocks of [`BLOCK`]
//! elements, and each block makes two passes while it sits in L1: its
//! maximum `m_b`, then `e = exp(x - r_b)` written in place while its sum
//! `s_b` accumulates (four vectors added in f32, then f64 lanes). The
//! reference `r_b` is `m_b` rounded up to a multiple of 2^-9, which lets
//! the exp range reduction absorb the subtraction exactly. A block of
//! usual logits (all in [-86, 40]) that is its lane's only block needs no
//! reference at all: `exp(x)` itself can neither overflow nor turn
//! subnormal there, and its sum's reciprocal stays a normal f32, so it
//! computes `exp(x)` (reference 0), three vector operations fewer. The
//! lane's sum is
//! `S = sum_b s_b * exp(r_b - R)` with `R = max r_b` (in f64, in block
//! order), and a last pass multiplies block `b` by `f_b = exp(r_b - R) / S`
//! rounded once to f32. Memory is thus read twice and written twice; from
//! a lent source ([`softmax_into`]) the first two passes read the source
//! and the second writes the destination, so no copy pass is needed. The
//! blocks of a long lane run in parallel; the cut depends only on the lane
//! length, so the result is bitwise the same for any thread count (1, 2, 8
//! are tested).
//!
//! NaN needs no test in the hot loop: a NaN input makes its `e` NaN, hence
//! `S` and every factor NaN. An all -inf block uses 0 as its reference (its
//! `e` are 0, or NaN for a NaN input), and an infinite or NaN maximum makes
//! the whole lane NaN. Inputs more than 104 below the reference (-inf
//! included) give 0 without computing an underflow, which would cost a
//! ~150-cycle microcode assist each on Intel.
//!
//! Accuracy: `x - r_b` costs no rounding (see `math::exp_shifted`), exp
//! is within about 1 ULP, the sums add at most 2^-24 relative, and `f_b` and
//! the final product round once each, so each output is within 3 ULP of
//! softmax computed in f64 from the same f32 inputs (the largest error
//! seen over ~10M random elements per path, `softmax_bound_on_a_large_sample`,
//! is 3 ULP; PyTorch's own f32 softmax is off by up to 17 ULP on the
//! `[4, 1000]` conformance fixture, where onnxi is within 2).
//!
//! A strided lane (`inner > 1`) runs the same three passes on a vector of
//! `inner`-adjacent lanes at a time (the last `inner % LANES` lanes one by
//! one), parallel over `outer`.
//!
//! float64 uses a plain scalar loop with an f64 sum.

use num_traits::Float;

use super::Parallel;
use super::math::{self, Elementwise, MAX_LANES};
#[cfg(target_arch = "x86_64")]
use super::simd::avx2::{Avx2, F32x8};
#[cfg(target_arch = "x86_64")]
use super::simd::avx512::{Avx512, F32x16};
use super::simd::scalar::{F32x1, Scalar};
#[cfg(target_arch = "x86_64")]
use super::simd::sse2::{F32x4, Sse2};
use super::simd::{self, Isa, VecF32};

/// Elements per block of a contiguous f32 lane: 16 KiB, so a block's
/// passes after the first hit L1.
pub const BLOCK: usize = 4096;

/// Element types [`softmax`] accepts.
pub trait SoftmaxFloat: Float + Send + Sync {
    /// Softmax in place over axis 1 of `data` viewed as `[outer, n, inner]`.
    fn softmax_slice(data: &mut [Self], n: usize, inner: usize, par: &Parallel);

    /// Softmax of `src` into `dst` (same length), both viewed as
    /// `[outer, n, inner]`. By default each group of lanes is copied and
    /// then normalised while it is still in cache.
    fn softmax_into_slice(src: &[Self], dst: &mut [Self], n: usize, inner: usize, par: &Parallel) {
        copy_then_softmax(src, dst, n, inner, par);
    }
}

impl SoftmaxFloat for f32 {
    fn softmax_slice(data: &mut [f32], n: usize, inner: usize, par: &Parallel) {
        softmax_f32(Paths { isa: simd::active() }, Lanes::InPlace(data), n, inner, par);
    }

    fn softmax_into_slice(src: &[f32], dst: &mut [f32], n: usize, inner: usize, par: &Parallel) {
        softmax_f32(Paths { isa: simd::active() }, Lanes::Into(src, dst), n, inner, par);
    }
}

impl SoftmaxFloat for f64 {
    fn softmax_slice(data: &mut [f64], n: usize, inner: usize, par: &Parallel) {
        if inner == 1 {
            par.rows(data, n, softmax_lane);
        } else {
            par.rows(data, n * inner, |block| softmax_block(block, n, inner));
        }
    }
}

/// Softmax in place over axis 1 of `data` viewed as `[outer, n, inner]`.
///
/// `data.len()` must equal `outer * n * inner`.
pub fn softmax<T: SoftmaxFloat>(data: &mut [T], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 {
        return;
    }
    T::softmax_slice(data, n, inner, par);
}

/// Softmax of `src` into `dst` over axis 1 of both viewed as
/// `[outer, n, inner]`: the same values as copying `src` to `dst` and
/// calling [`softmax`] on it, without the extra pass over memory (float32
/// contiguous lanes read `src` in their first pass and write `dst` in
/// their second).
///
/// `src` and `dst` must both hold `outer * n * inner` elements; nothing is
/// written when their lengths differ.
pub fn softmax_into<T: SoftmaxFloat>(src: &[T], dst: &mut [T], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 || src.len() != dst.len() {
        return;
    }
    T::softmax_into_slice(src, dst, n, inner, par);
}

/// [`softmax`] on float32 on the path `isa` (or the best path below it that
/// the CPU has); for tests and benches.
pub fn softmax_f32_isa(isa: Isa, data: &mut [f32], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 {
        return;
    }
    softmax_f32(Paths { isa: isa.lowered() }, Lanes::InPlace(data), n, inner, par);
}

/// [`softmax_into`] on float32 on the path `isa` (or the best path below
/// it that the CPU has); for tests and benches.
pub fn softmax_into_f32_isa(isa: Isa, src: &[f32], dst: &mut [f32], n: usize, inner: usize, par: &Parallel) {
    if n == 0 || inner == 0 || src.len() != dst.len() {
        return;
    }
    softmax_f32(Paths { isa: isa.lowered() }, Lanes::Into(src, dst), n, inner, par);
}

/// Softmax of a lent `src` into `dst`, copying group by group so that each
/// group is normalised while it is still in cache.
fn copy_then_softmax<T: SoftmaxFloat>(src: &[T], dst: &mut [T], n: usize, inner: usize, par: &Parallel) {
    let lane_group = n * inner;
    if src.len() <= lane_group {
        dst.copy_from_slice(src);
        T::softmax_slice(dst, n, inner, par);
        return;
    }
    par.map_rows(src, dst, lane_group, |src, dst| {
        dst.copy_from_slice(src);
        T::softmax_slice(dst, n, inner, &Parallel::serial());
    });
}

/// NaN-propagating maximum (`f32::max` would skip NaN).
#[inline]
fn nan_max<T: Float>(acc: T, x: T) -> T {
    if x > acc || x.is_nan() || acc.is_nan() { if acc.is_nan() { acc } else { x } } else { acc }
}

/// Softmax of one contiguous lane, in place. Sums in f64 for accuracy on
/// long rows.
fn softmax_lane<T: Float>(lane: &mut [T]) {
    let max = lane.iter().fold(T::neg_infinity(), |acc, &x| nan_max(acc, x));
    let mut sum = 0f64;
    for x in lane.iter_mut() {
        *x = (*x - max).exp();
        sum += x.to_f64().unwrap_or(f64::NAN);
    }
    let sum = T::from(sum).unwrap_or_else(T::nan);
    for x in lane.iter_mut() {
        *x = *x / sum;
    }
}

/// Softmax along the strided axis of one `[n, inner]` block, in place.
fn softmax_block<T: Float>(block: &mut [T], n: usize, inner: usize) {
    let mut max = vec![T::neg_infinity(); inner];
    for row in block.chunks(inner) {
        for (acc, &x) in max.iter_mut().zip(row) {
            *acc = nan_max(*acc, x);
        }
    }
    let mut sum = vec![0f64; inner];
    for row in block.chunks_mut(inner) {
        for ((x, &m), s) in row.iter_mut().zip(&max).zip(sum.iter_mut()) {
            *x = (*x - m).exp();
            *s += x.to_f64().unwrap_or(f64::NAN);
        }
    }
    let sum: Vec<T> = sum.into_iter().map(|s| T::from(s).unwrap_or_else(T::nan)).collect();
    for row in block.chunks_mut(inner) {
        for (x, &s) in row.iter_mut().zip(&sum) {
            *x = *x / s;
        }
    }
    debug_assert_eq!(block.len(), n * inner);
}

/// What the first two passes learn about one block of a lane.
#[derive(Debug, Clone, Copy)]
struct BlockStats {
    /// The block's maximum (NaN inputs may or may not show here).
    max: f32,
    /// What was subtracted before exp: `max` rounded up to the grid of
    /// [`math::exp_shifted`], or 0 for an all -inf block and for the
    /// unshifted form (see [`math::exp_unshifted`]).
    reference: f64,
    /// Sum of `exp(x - reference)` over the block.
    sum: f64,
}

/// The reference [`math::exp_shifted`] subtracts for a lane or block whose
/// maximum is `max`.
#[inline(always)]
fn shifted_reference(max: f32) -> f32 {
    if max == f32::NEG_INFINITY { 0.0 } else { math::grid_reference(max) }
}

/// The factor each block of a lane is scaled by, `exp(ref_b - R) / S`
/// with `R` the largest reference, in block order (all NaN when the
/// lane's result is NaN).
fn lane_factors(stats: &[BlockStats]) -> impl Iterator<Item = f32> + '_ {
    let mut lane_max = f32::NEG_INFINITY;
    let mut lane_reference = f64::NEG_INFINITY;
    let mut nan = false;
    for block in stats {
        nan |= block.max.is_nan();
        if block.max > lane_max {
            lane_max = block.max;
        }
        if block.max > f32::NEG_INFINITY && block.reference > lane_reference {
            lane_reference = block.reference;
        }
    }
    let weight = move |block: &BlockStats| {
        if block.max == f32::NEG_INFINITY {
            // All -inf (or NaN, which `sum` carries): contributes nothing.
            0.0
        } else if block.reference == lane_reference {
            1.0
        } else {
            (block.reference - lane_reference).exp()
        }
    };
    let total: f64 =
        if nan || !lane_max.is_finite() { f64::NAN } else { stats.iter().map(|block| block.sum * weight(block)).sum() };
    stats.iter().map(move |block| (weight(block) / total) as f32)
}

/// Multiplies by a constant (the last softmax pass).
#[derive(Clone, Copy)]
struct Scale(f32);

impl Elementwise for Scale {
    #[inline(always)]
    fn apply<V: VecF32>(self, token: V::Token, x: V) -> V {
        x * V::splat(token, self.0)
    }
}

/// Maximum and minimum of a block (NaN lanes may or may not show in
/// either).
#[inline(always)]
fn block_range<V: VecF32>(token: V::Token, block: &[f32]) -> (f32, f32) {
    let lanes = V::LANES;
    let mut max = [V::splat(token, f32::NEG_INFINITY); 4];
    let mut min = [V::splat(token, f32::INFINITY); 4];
    let mut steps = block.chunks_exact(4 * lanes);
    for step in &mut steps {
        // The data ahead, into the next rows: this pass is the first to
        // touch them, and the hardware prefetcher does not cross 4 KiB
        // pages ([1000, 1000] at 1 thread: +5 %, in-process A/B).
        simd::prefetch_read(step.as_ptr(), 2048, 4 * lanes * size_of::<f32>());
        for (idx, (max, min)) in max.iter_mut().zip(&mut min).enumerate() {
            let x = V::load(token, &step[idx * lanes..]);
            *max = max.max(x);
            *min = min.cap(x);
        }
    }
    let mut vecs = steps.remainder().chunks_exact(lanes);
    for vec in &mut vecs {
        let x = V::load(token, vec);
        max[0] = max[0].max(x);
        min[0] = min[0].cap(x);
    }
    let rest = vecs.remainder();
    if !rest.is_empty() {
        max[1] = max[1].max(V::load_partial(token, rest, f32::NEG_INFINITY));
        min[1] = min[1].cap(V::load_partial(token, rest, f32::INFINITY));
    }
    let zero = V::splat(token, 0.0);
    let min = min[0].cap(min[1]).cap(min[2].cap(min[3]));
    (max[0].max(max[1]).max(max[2].max(max[3])).reduce_max(), -(zero - min).reduce_max())
}

/// Where the exp pass of a block reads its inputs.
trait Input: Copy {
    /// `LANES` inputs from element `at` of the block, whose output `own`
    /// holds from element `start` on.
    fn load<V: VecF32>(self, token: V::Token, own: &[f32], start: usize, at: usize) -> V;
    /// The inputs from element `start` of the block to its end (fewer than
    /// `LANES`), padded with `pad`.
    fn load_rest<V: VecF32>(self, token: V::Token, own: &[f32], start: usize, pad: f32) -> V;
}

/// In place: the inputs are the block being written.
#[derive(Clone, Copy)]
struct Own;

impl Input for Own {
    #[inline(always)]
    fn load<V: VecF32>(self, token: V::Token, own: &[f32], _start: usize, at: usize) -> V {
        V::load(token, &own[at..])
    }

    #[inline(always)]
    fn load_rest<V: VecF32>(self, token: V::Token, own: &[f32], _start: usize, pad: f32) -> V {
        V::load_partial(token, own, pad)
    }
}

/// From a lent source of the block's length.
#[derive(Clone, Copy)]
struct Lent<'a>(&'a [f32]);

impl Input for Lent<'_> {
    #[inline(always)]
    fn load<V: VecF32>(self, token: V::Token, _own: &[f32], start: usize, at: usize) -> V {
        V::load(token, &self.0[start + at..])
    }

    #[inline(always)]
    fn load_rest<V: VecF32>(self, token: V::Token, _own: &[f32], start: usize, pad: f32) -> V {
        V::load_partial(token, &self.0[start..], pad)
    }
}

/// How the exp pass of a block maps its inputs: `exp(x - reference)` with
/// some reference per block.
trait ExpForm: Copy {
    /// A whole vector of inputs.
    fn exp<V: VecF32>(self, token: V::Token, x: V) -> V;
    /// The last, partial vector of a block (`rest` of its elements),
    /// written to `dst`; returns the sum of what it wrote.
    fn exp_rest<V: VecF32, I: Input>(self, token: V::Token, input: I, dst: &mut [f32], start: usize) -> f64;
}

/// [`math::exp_shifted`] from a reference on the grid (`GRID`) or far
/// from 0.
#[derive(Clone, Copy)]
struct Shifted<const GRID: bool, const ALL_NORMAL: bool>(f32);

impl<const GRID: bool, const ALL_NORMAL: bool> ExpForm for Shifted<GRID, ALL_NORMAL> {
    #[inline(always)]
    fn exp<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::exp_shifted::<V, GRID, ALL_NORMAL>(token, x, V::splat(token, self.0))
    }

    #[inline(always)]
    fn exp_rest<V: VecF32, I: Input>(self, token: V::Token, input: I, dst: &mut [f32], start: usize) -> f64 {
        // Padding with -inf adds exp(-inf) = 0 to the sum; the padding
        // underflows, so this vector takes the general form.
        let x = input.load_rest::<V>(token, dst, start, f32::NEG_INFINITY);
        let e = math::exp_shifted::<V, GRID, false>(token, x, V::splat(token, self.0));
        e.store_partial(dst);
        V::acc_total(V::acc_add(V::acc_zero(token), e))
    }
}

/// [`math::exp_unshifted`], for a block whose inputs lie in
/// [[`math::NORMAL_FROM`], [`math::UNSHIFTED_MAX`]]; `max` is the block's
/// maximum.
#[derive(Clone, Copy)]
struct Unshifted {
    max: f32,
}

impl ExpForm for Unshifted {
    #[inline(always)]
    fn exp<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::exp_unshifted(token, x)
    }

    #[inline(always)]
    fn exp_rest<V: VecF32, I: Input>(self, token: V::Token, input: I, dst: &mut [f32], start: usize) -> f64 {
        // The padding (the block's maximum, within the form's range) is
        // computed but neither stored nor summed.
        let x = input.load_rest::<V>(token, dst, start, self.max);
        self.exp::<V>(token, x).store_partial(dst);
        dst.iter().map(|&e| f64::from(e)).sum()
    }
}

/// Writes `exp(x - reference)` over `dst` (the reference chosen by `form`)
/// and returns its sum, with `x` read from `input`.
///
/// Each step's four vectors are added in f32 (as two pairs, then the
/// pairs: at most 2^-24 of their sum) before being widened into the f64
/// accumulator, which quarters the conversion work (+3 % at [1000, 1000],
/// +5 % in L2 over adding pairs; the bound stays 3 ULP on the large
/// sample).
#[inline(always)]
fn block_exp_sum<V: VecF32, I: Input, F: ExpForm>(token: V::Token, input: I, dst: &mut [f32], form: F) -> f64 {
    let lanes = V::LANES;
    let exp = |x: V| form.exp::<V>(token, x);
    let mut acc = V::acc_zero(token);
    let mut start = 0;
    let mut steps = dst.chunks_exact_mut(4 * lanes);
    for step in &mut steps {
        let e0 = exp(input.load::<V>(token, step, start, 0));
        let e1 = exp(input.load::<V>(token, step, start, lanes));
        let e2 = exp(input.load::<V>(token, step, start, 2 * lanes));
        let e3 = exp(input.load::<V>(token, step, start, 3 * lanes));
        e0.store(step);
        e1.store(&mut step[lanes..]);
        e2.store(&mut step[2 * lanes..]);
        e3.store(&mut step[3 * lanes..]);
        acc = V::acc_add(acc, (e0 + e1) + (e2 + e3));
        start += 4 * lanes;
    }
    let mut vecs = steps.into_remainder().chunks_exact_mut(lanes);
    for vec in &mut vecs {
        let e = exp(input.load::<V>(token, vec, start, 0));
        e.store(vec);
        acc = V::acc_add(acc, e);
        start += lanes;
    }
    let rest = vecs.into_remainder();
    let rest_sum = if rest.is_empty() { 0.0 } else { form.exp_rest::<V, I>(token, input, rest, start) };
    V::acc_total(acc) + rest_sum
}

/// The second pass over one block whose inputs span `[min, max]`: their
/// exponentials into `dst`, in the cheapest form that is exact for them.
///
/// With `WHOLE_LANE` (the block is its lane's only one), usual logits (in
/// [-86, 40]) need no reference at all: the lane's factor is then `1/S`, a
/// normal f32. In a longer lane another block's reference `R` may exceed
/// this block's maximum by so much that `exp(-R) / S` leaves the f32 range
/// while the outputs do not, so those blocks keep a reference. Otherwise,
/// when no result can be subnormal or zero, the grid form skips its
/// underflow handling.
#[inline(always)]
fn block_stats<V: VecF32, I: Input, const WHOLE_LANE: bool>(
    token: V::Token,
    input: I,
    (max, min): (f32, f32),
    dst: &mut [f32],
) -> BlockStats {
    // False for NaN bounds.
    if WHOLE_LANE && max <= math::UNSHIFTED_MAX && min >= math::NORMAL_FROM {
        let sum = block_exp_sum::<V, I, _>(token, input, dst, Unshifted { max });
        return BlockStats { max, reference: 0.0, sum };
    }
    let reference = shifted_reference(max);
    let all_normal = min - reference >= math::NORMAL_FROM;
    let sum = match (reference.abs() < math::GRID_LIMIT, all_normal) {
        (true, true) => block_exp_sum::<V, I, _>(token, input, dst, Shifted::<true, true>(reference)),
        (true, false) => block_exp_sum::<V, I, _>(token, input, dst, Shifted::<true, false>(reference)),
        (false, true) => block_exp_sum::<V, I, _>(token, input, dst, Shifted::<false, true>(reference)),
        (false, false) => block_exp_sum::<V, I, _>(token, input, dst, Shifted::<false, false>(reference)),
    };
    BlockStats { max, reference: f64::from(reference), sum }
}

/// All three passes over `n` lanes of `inner`-strided data starting at
/// column `col` of a `[n, inner]` slab, `V::LANES` lanes at once.
#[inline(always)]
fn strided_lanes<V: VecF32>(token: V::Token, slab: &mut [f32], n: usize, inner: usize, col: usize) {
    let lanes = V::LANES;
    let mut max = V::splat(token, f32::NEG_INFINITY);
    for row in 0..n {
        max = max.max(V::load(token, &slab[row * inner + col..]));
    }
    let mut max_lanes = [0f32; MAX_LANES];
    max.store(&mut max_lanes);
    let mut reference_lanes = [0f32; MAX_LANES];
    for (reference, &max) in reference_lanes.iter_mut().zip(&max_lanes[..lanes]) {
        *reference = shifted_reference(max);
    }
    let reference = V::load(token, &reference_lanes);
    let grid = reference_lanes[..lanes].iter().all(|reference| reference.abs() < math::GRID_LIMIT);
    let mut acc = V::acc_zero(token);
    for row in 0..n {
        let at = row * inner + col;
        let x = V::load(token, &slab[at..]);
        let e = if grid {
            math::exp_shifted::<V, true, false>(token, x, reference)
        } else {
            math::exp_shifted::<V, false, false>(token, x, reference)
        };
        e.store(&mut slab[at..]);
        acc = V::acc_add(acc, e);
    }
    let mut sum_lanes = [0f64; MAX_LANES];
    V::acc_store(acc, &mut sum_lanes);
    let mut factor_lanes = [0f32; MAX_LANES];
    for lane in 0..lanes {
        let stats =
            BlockStats { max: max_lanes[lane], reference: f64::from(reference_lanes[lane]), sum: sum_lanes[lane] };
        factor_lanes[lane] = lane_factors(&[stats]).next().unwrap_or(f32::NAN);
    }
    let factor = V::load(token, &factor_lanes);
    for row in 0..n {
        let at = row * inner + col;
        (V::load(token, &slab[at..]) * factor).store(&mut slab[at..]);
    }
}

/// Softmax along the strided axis of one `[n, inner]` slab.
#[inline(always)]
fn strided_slab<V: VecF32>(token: V::Token, slab: &mut [f32], n: usize, inner: usize) {
    let mut col = 0;
    while col + V::LANES <= inner {
        strided_lanes::<V>(token, slab, n, inner, col);
        col += V::LANES;
    }
    // The last few lanes one at a time, with the same algorithm.
    for col in col..inner {
        strided_lanes::<F32x1>(Scalar::new(), slab, n, inner, col);
    }
}

/// Softmax of each contiguous lane of `n` (at most [`BLOCK`]) elements of
/// `dst`, read from `src` when given: all passes of a lane while it is in
/// L1, with one dispatch for the whole group.
#[inline(always)]
fn short_lanes<V: VecF32>(token: V::Token, src: Option<&[f32]>, dst: &mut [f32], n: usize) {
    let mut src_rows = rows_of(src, n);
    for lane in dst.chunks_mut(n) {
        let stats = match src_rows.as_mut().and_then(Iterator::next) {
            Some(src) => block_stats::<V, _, true>(token, Lent(src), block_range::<V>(token, src), lane),
            None => {
                let range = block_range::<V>(token, lane);
                block_stats::<V, _, true>(token, Own, range, lane)
            }
        };
        let factor = lane_factors(&[stats]).next().unwrap_or(f32::NAN);
        math::map_inplace::<V, _>(token, Scale(factor), lane);
    }
}

/// One softmax pass on one piece of data, for dispatch to an ISA.
enum Job<'a> {
    /// The first two passes over a block of a contiguous lane: read from
    /// the source when there is one, else in place.
    Stats(Option<&'a [f32]>, &'a mut [f32], &'a mut BlockStats),
    /// The last pass over a block.
    Scale(&'a mut [f32], f32),
    /// Every pass over a group of contiguous lanes of at most [`BLOCK`]
    /// elements (the given length), read from the source when there is one.
    Lanes(Option<&'a [f32]>, &'a mut [f32], usize),
    /// A whole `[n, inner]` slab of strided lanes.
    Strided(&'a mut [f32], usize, usize),
}

/// The one generic body behind every f32 path.
#[inline(always)]
fn run_generic<V: VecF32>(token: V::Token, job: Job<'_>) {
    match job {
        Job::Stats(Some(src), dst, stats) => {
            *stats = block_stats::<V, _, false>(token, Lent(src), block_range::<V>(token, src), dst);
        }
        Job::Stats(None, dst, stats) => {
            let range = block_range::<V>(token, dst);
            *stats = block_stats::<V, _, false>(token, Own, range, dst);
        }
        Job::Scale(block, factor) => math::map_inplace::<V, _>(token, Scale(factor), block),
        Job::Lanes(src, dst, n) => short_lanes::<V>(token, src, dst, n),
        Job::Strided(slab, n, inner) => strided_slab::<V>(token, slab, n, inner),
    }
}

// SSE2 is part of x86-64, so this needs no #[target_feature].
#[cfg(target_arch = "x86_64")]
fn run_sse2(token: Sse2, job: Job<'_>) {
    run_generic::<F32x4>(token, job);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(token: Avx2, job: Job<'_>) {
    run_generic::<F32x8>(token, job);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn run_avx512(token: Avx512, job: Job<'_>) {
    run_generic::<F32x16>(token, job);
}

/// The chosen ISA, with one method per job.
#[derive(Debug, Clone, Copy)]
struct Paths {
    isa: Isa,
}

impl Paths {
    fn run(self, job: Job<'_>) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                if let Some(token) = Avx512::new() {
                    // SAFETY: the token proves AVX-512F, the feature
                    // run_avx512 is compiled for.
                    return unsafe { run_avx512(token, job) };
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                if let Some(token) = Avx2::new() {
                    // SAFETY: the token proves AVX2 and FMA, the features
                    // run_avx2 is compiled for.
                    return unsafe { run_avx2(token, job) };
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => {
                if let Some(token) = Sse2::new() {
                    return run_sse2(token, job);
                }
            }
            _ => {}
        }
        run_generic::<F32x1>(Scalar::new(), job);
    }

    /// The first two passes over a block, from `src` when given.
    fn stats(self, src: Option<&[f32]>, block: &mut [f32]) -> BlockStats {
        // Overwritten by the job.
        let mut stats = BlockStats { max: f32::NAN, reference: f64::NAN, sum: f64::NAN };
        self.run(Job::Stats(src, block, &mut stats));
        stats
    }

    fn scale(self, block: &mut [f32], factor: f32) {
        self.run(Job::Scale(block, factor));
    }

    /// Softmax of one contiguous lane, serially.
    fn lane(self, src: Option<&[f32]>, lane: &mut [f32], stats: &mut Vec<BlockStats>) {
        stats.clear();
        let mut src_blocks = src.map(|src| src.chunks(BLOCK));
        for block in lane.chunks_mut(BLOCK) {
            let from = src_blocks.as_mut().and_then(Iterator::next);
            stats.push(self.stats(from, block));
        }
        for (block, factor) in lane.chunks_mut(BLOCK).zip(lane_factors(stats)) {
            self.scale(block, factor);
        }
    }
}

/// What a float32 softmax normalises: one buffer in place, or a lent
/// source into a destination of the same length.
enum Lanes<'a> {
    /// In place.
    InPlace(&'a mut [f32]),
    /// From the first slice into the second.
    Into(&'a [f32], &'a mut [f32]),
}

impl<'a> Lanes<'a> {
    /// The source (`None` in place) and the destination.
    fn split(self) -> (Option<&'a [f32]>, &'a mut [f32]) {
        match self {
            Lanes::InPlace(data) => (None, data),
            Lanes::Into(src, dst) => (Some(src), dst),
        }
    }
}

/// Runs `kernel(src_group, dst_group)` on groups of whole rows of
/// `row_len` elements, in parallel when worth it; `src_group` is `None` in
/// place.
fn row_groups(
    par: &Parallel,
    src: Option<&[f32]>,
    dst: &mut [f32],
    row_len: usize,
    kernel: impl Fn(Option<&[f32]>, &mut [f32]) + Sync + Send,
) {
    match src {
        Some(src) => par.map_rows(src, dst, row_len, |src, dst| kernel(Some(src), dst)),
        None => par.rows(dst, row_len, |row| kernel(None, row)),
    }
}

/// The rows of `len` elements of a source group, if there is one.
fn rows_of(group: Option<&[f32]>, len: usize) -> Option<std::slice::Chunks<'_, f32>> {
    group.map(|group| group.chunks(len))
}

fn softmax_f32(paths: Paths, lanes: Lanes<'_>, n: usize, inner: usize, par: &Parallel) {
    let (src, dst) = lanes.split();
    if inner > 1 {
        // Strided lanes are read three times wherever they are: copying a
        // lent source first costs one pass while the slab is in cache.
        row_groups(par, src, dst, n * inner, |src, dst| {
            if let Some(src) = src {
                dst.copy_from_slice(src);
            }
            dst.chunks_mut(n * inner).for_each(|slab| paths.run(Job::Strided(slab, n, inner)));
        });
    } else if n <= BLOCK {
        // One block per lane: the lanes are the parallel unit already.
        row_groups(par, src, dst, n, |src, dst| paths.run(Job::Lanes(src, dst, n)));
    } else if !par.splits(dst.len()) {
        let mut stats = Vec::with_capacity(n.div_ceil(BLOCK));
        let mut src_rows = rows_of(src, n);
        for lane in dst.chunks_mut(n) {
            paths.lane(src_rows.as_mut().and_then(Iterator::next), lane, &mut stats);
        }
    } else {
        // Long lanes: the blocks of every lane in parallel, then the
        // per-lane reduction in block order, then the scaling in parallel.
        let blocks_per_lane = n.div_ceil(BLOCK);
        let stats = par.map_row_blocks(dst, n, BLOCK, |idx, block| {
            let start = idx / blocks_per_lane * n + idx % blocks_per_lane * BLOCK;
            paths.stats(src.map(|src| &src[start..start + block.len()]), block)
        });
        let factors: Vec<f32> = stats.chunks(blocks_per_lane).flat_map(lane_factors).collect();
        par.for_row_blocks(dst, n, BLOCK, |idx, block| {
            paths.scale(block, factors.get(idx).copied().unwrap_or(f32::NAN));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::par::PAR_MIN_ELEMS;
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
}
