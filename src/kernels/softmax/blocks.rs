//! The contiguous-lane float32 machinery: per-block statistics, the
//! reference each block's exp is taken from, the exp-and-sum pass in its
//! cheapest exact form, and the factors of the last pass.

use crate::kernels::math::{self, Elementwise};
use crate::kernels::simd::{self, VecF32};

/// What the first two passes learn about one block of a lane.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockStats {
    /// The block's maximum (NaN inputs may or may not show here).
    pub(super) max: f32,
    /// What was subtracted before exp: `max` rounded up to the grid of
    /// [`math::exp_shifted`], or 0 for an all -inf block and for the
    /// unshifted form (see [`math::exp_unshifted`]).
    pub(super) reference: f64,
    /// Sum of `exp(x - reference)` over the block.
    pub(super) sum: f64,
}

/// The reference [`math::exp_shifted`] subtracts for a lane or block whose
/// maximum is `max`.
#[inline(always)]
pub(super) fn shifted_reference(max: f32) -> f32 {
    if max == f32::NEG_INFINITY { 0.0 } else { math::grid_reference(max) }
}

/// The factor each block of a lane is scaled by, `exp(ref_b - R) / S`
/// with `R` the largest reference, in block order (all NaN when the
/// lane's result is NaN).
pub(super) fn lane_factors(stats: &[BlockStats]) -> impl Iterator<Item = f32> + '_ {
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
pub(super) struct Scale(pub(super) f32);

impl Elementwise for Scale {
    #[inline(always)]
    fn apply<V: VecF32>(self, token: V::Token, x: V) -> V {
        x * V::splat(token, self.0)
    }
}

/// Maximum and minimum of a block (NaN lanes may or may not show in
/// either).
#[inline(always)]
pub(super) fn block_range<V: VecF32>(token: V::Token, block: &[f32]) -> (f32, f32) {
    let lanes = V::LANES;
    let mut max = [V::splat(token, f32::NEG_INFINITY); 4];
    let mut min = [V::splat(token, f32::INFINITY); 4];
    let mut steps = block.chunks_exact(4 * lanes);
    for step in &mut steps {
        // The data ahead, into the next rows: this pass is the first to
        // touch them, and the hardware prefetcher does not cross 4 KiB
        // pages.
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
pub(super) trait Input: Copy {
    /// `LANES` inputs from element `at` of the block, whose output `own`
    /// holds from element `start` on.
    fn load<V: VecF32>(self, token: V::Token, own: &[f32], start: usize, at: usize) -> V;
    /// The inputs from element `start` of the block to its end (fewer than
    /// `LANES`), padded with `pad`.
    fn load_rest<V: VecF32>(self, token: V::Token, own: &[f32], start: usize, pad: f32) -> V;
}

/// In place: the inputs are the block being written.
#[derive(Clone, Copy)]
pub(super) struct Own;

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
pub(super) struct Lent<'a>(pub(super) &'a [f32]);

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
pub(super) trait ExpForm: Copy {
    /// A whole vector of inputs.
    fn exp<V: VecF32>(self, token: V::Token, x: V) -> V;
    /// The last, partial vector of a block (`rest` of its elements),
    /// written to `dst`; returns the sum of what it wrote.
    fn exp_rest<V: VecF32, I: Input>(self, token: V::Token, input: I, dst: &mut [f32], start: usize) -> f64;
}

/// [`math::exp_shifted`] from a reference on the grid (`GRID`) or far
/// from 0.
#[derive(Clone, Copy)]
pub(super) struct Shifted<const GRID: bool, const ALL_NORMAL: bool>(pub(super) f32);

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
pub(super) struct Unshifted {
    pub(super) max: f32,
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
/// accumulator, which quarters the conversion work.
#[inline(always)]
pub(super) fn block_exp_sum<V: VecF32, I: Input, F: ExpForm>(
    token: V::Token,
    input: I,
    dst: &mut [f32],
    form: F,
) -> f64 {
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
pub(super) fn block_stats<V: VecF32, I: Input, const WHOLE_LANE: bool>(
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
