//! f32 math written once over [`VecF32`], compiled per instruction set:
//! exp, expm1, sigmoid, tanh, and the loops that map elementwise functions
//! over slices.
//!
//! Every function here is `#[inline(always)]`: the bodies must be inlined
//! into the `#[target_feature]` entry points of `unary.rs` and `softmax.rs`
//! to be compiled for AVX2 or AVX-512.
//!
//! The accuracy of each function over all 2^32 inputs is measured by
//! `examples/ulp_sweep.rs` and recorded in the README.

use super::simd::VecF32;

/// Largest lane count of any path (AVX-512), for per-lane scratch arrays.
pub(crate) const MAX_LANES: usize = 16;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// 1.5 * 2^23: adding it rounds any |y| < 2^22 to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;
// Cody–Waite split of ln 2. LN2_HI has 9 significant bits, so `k * LN2_HI`
// is exact for the |k| <= 151 used here, and `x - k * LN2_HI` is exact too
// (x is close to k ln 2), with or without FMA. LN2_LO is the rest of ln 2
// rounded to f32; the remaining error (~1e-11 * k) is far below 1 ULP.
const LN2_HI: f32 = 355.0 / 512.0;
const LN2_LO: f32 = -2.121_944_4e-4;
// exp(r) = 1 + r + r^2 Q(r) on |r| <= ln2/2; Q is a degree-4 Chebyshev fit
// of (exp(r) - 1 - r) / r^2 (max error 6.5e-8 on Q, so < 1e-8 relative on
// exp(r), about 0.1 ULP).
const EXP_Q0: f32 = 0.5;
const EXP_Q1: f32 = 0.166_665_77;
const EXP_Q2: f32 = 0.041_666_555;
const EXP_Q3: f32 = 0.008_363_173;
const EXP_Q4: f32 = 0.001_392_617_6;
/// Below this, exp(x) rounds to 0 in f32 (exp(-104) < 2^-150).
pub(crate) const EXP_MIN: f32 = -104.0;
/// From here down, k may fall below -125 and e^x below the normal range.
const SUBNORMAL_BELOW: f32 = -86.5;
// tanh(x) = x + x^3 P(x^2) for |x| < TANH_SMALL; P is a degree-4 Chebyshev
// fit of (tanh(x) - x) / x^3 in x^2 on [0, 0.55^2] (max error 1.3e-8 on P).
// Above 0.55 the formula 1 - 2 / (exp(2|x|) + 1) no longer cancels badly:
// its result is above 0.5, its subtrahend below.
const TANH_SMALL: f32 = 0.55;
const TANH_P0: f32 = -0.333_333_3;
const TANH_P1: f32 = 0.133_331_14;
const TANH_P2: f32 = -0.053_909_43;
const TANH_P3: f32 = 0.021_309_389;
const TANH_P4: f32 = -0.006_610_228;
/// Below -this, sigmoid(x) is e^x (1 + e^x rounds to 1 from e^-16.7 on).
const SIGMOID_TAIL: f32 = 20.0;
/// e^-87 is still normal (the smallest normal is e^-87.34), and far below
/// what changes 1 + e^-x (2^-25 ~ e^-17.3).
const SIGMOID_FLAT: f32 = 87.0;
/// From here on tanh(x) rounds to 1 in f32 (1 - tanh(9.1) < 2^-25).
const TANH_ONE: f32 = 9.1;

/// Splits `x = k ln2 + r` with integral `k` and |r| <= ~ln2/2 (|x| < 2^21).
#[inline(always)]
fn reduce<V: VecF32>(token: V::Token, x: V) -> (V, V) {
    reduce_scaled(token, x, 1.0)
}

/// [`reduce`] of `c * h` for `c` = 1, -1 or 2, returning `k` and `r / c`.
///
/// Scaling by a power of two, or negating, commutes with rounding (away
/// from the subnormals, which `r` never reaches when `c` = 2), so this
/// gives bit for bit `k` and `r / c` of the reduction of `c * h` computed
/// first, without the operation that computes it.
#[inline(always)]
fn reduce_scaled<V: VecF32>(token: V::Token, h: V, c: f32) -> (V, V) {
    // Adding 1.5 * 2^23 pushes the fraction of x * log2(e) out of the
    // mantissa, rounding to nearest even; subtracting it again leaves k.
    // Two FMA-port operations, where VRNDSCALEPS would compete with the
    // division and VSCALEFPS for port 0.
    let magic = V::splat(token, ROUND_MAGIC);
    let k = h.mul_add(V::splat(token, c * LOG2_E), magic) - magic;
    let r = k.mul_add(V::splat(token, -LN2_HI / c), h);
    let r = k.mul_add(V::splat(token, -LN2_LO / c), r);
    (k, r)
}

/// `e^r` for |r| <= ~ln2/2 (within 1 ULP).
#[inline(always)]
fn exp_reduced<V: VecF32>(token: V::Token, r: V) -> V {
    exp_reduced_scaled(token, r, 1.0)
}

/// [`exp_reduced`] of `r = c * h` for `c` = 1, -1 or 2, bit for bit.
///
/// The polynomial runs in `h` with each coefficient scaled by the power of
/// `c` that makes every intermediate the original one times a power of two
/// (or negated), which rounds the same; the last step multiplies by `c`
/// exactly inside the final addition.
#[inline(always)]
fn exp_reduced_scaled<V: VecF32>(token: V::Token, h: V, c: f32) -> V {
    let q = exp_q_scaled(token, h, c);
    // (e^r - 1) / c; adding 1 last keeps the small terms' rounding errors
    // small.
    let y = q.mul_add(h * h, h);
    let one = V::splat(token, 1.0);
    if c == 1.0 { y + one } else { y.mul_add(V::splat(token, c), one) }
}

/// `c Q(r)` for `r = c * h`, where `e^r = 1 + r + r^2 Q(r)`, by Horner's
/// rule in `h` with the coefficients scaled by powers of `c` (see
/// [`exp_reduced_scaled`]).
#[inline(always)]
fn exp_q_scaled<V: VecF32>(token: V::Token, h: V, c: f32) -> V {
    let (c2, c3) = (c * c, c * c * c);
    let q = V::splat(token, EXP_Q4 * c3 * c2).mul_add(h, V::splat(token, EXP_Q3 * c2 * c2));
    let q = q.mul_add(h, V::splat(token, EXP_Q2 * c3));
    let q = q.mul_add(h, V::splat(token, EXP_Q1 * c2));
    q.mul_add(h, V::splat(token, EXP_Q0 * c))
}

/// `e^x` for `x <= 89` (or NaN; the caller guarantees the bound), within
/// about 1 ULP, with correctly rounded subnormal results, and NaN kept;
/// lanes below `floor` (at least -104, where e^x rounds to 0) give 0.
#[inline(always)]
pub(crate) fn exp<V: VecF32>(token: V::Token, x: V, floor: V) -> V {
    let zero = V::splat(token, 0.0);
    // Lanes below the floor (-inf included) give 0, set at the end:
    // computing them would underflow, and each underflowing or subnormal
    // result costs a microcode assist of ~150 cycles on Intel (with FTZ
    // off, as Rust leaves it): sigmoid(95) ran 20x slower than sigmoid(50).
    let underflow = x.lt(floor);
    let x = V::select(underflow, zero, x);
    let (k, r) = reduce(token, x);
    V::select(underflow, zero, scale(token, exp_reduced(token, r), k, x))
}

/// `p * 2^k`, taking the cheap normal-range scaling unless some lane of
/// `x` (whose e^x this is) is below -87, where results turn subnormal
/// (rare: the branch is almost always predicted).
#[inline(always)]
fn scale<V: VecF32>(token: V::Token, p: V, k: V, x: V) -> V {
    if V::any(x.lt(V::splat(token, SUBNORMAL_BELOW))) { p.ldexp(k) } else { p.ldexp_normal(k) }
}

/// Largest |reference| for which [`exp_shifted`]'s grid form is exact.
pub(crate) const GRID_LIMIT: f32 = 32_000.0;

/// Rounds `max` up to the 2^-9 grid [`exp_shifted`] needs (when
/// |max| < [`GRID_LIMIT`]; else, and for NaN and inf, it is kept).
#[inline(always)]
pub(crate) fn grid_reference(max: f32) -> f32 {
    // Scaling by 512 and back is exact, and so is ceil.
    if max.abs() < GRID_LIMIT { (max * 512.0).ceil() / 512.0 } else { max }
}

/// `e^(x - reference)` for `x <= reference`, without the rounding error of
/// `x - reference` (which would cost |x - reference| * 2^-25 relative, e.g.
/// 5 ULP at -10), in two forms chosen per block:
///
/// - `GRID`: `reference` lies on the 2^-9 grid (see [`grid_reference`])
///   with |reference| < [`GRID_LIMIT`]. Then `reference + k * LN2_HI` is
///   exact (both on the grid, below 2^15), and `x` minus it, which is at
///   most ~0.35 in size, is exact or off by under 2^-26.
/// - otherwise |reference| >= 32000, and `x - reference` itself is exact
///   for every `x` within 104 of it (Sterbenz); farther ones give 0.
///
/// With `ALL_NORMAL`, the caller guarantees `x - reference >= `
/// [`NORMAL_FROM`] in every lane (or NaN): no result can underflow or be
/// subnormal, so the lanes are computed as they are, with the cheap
/// normal-range scaling. The results are the same bits as without it.
#[inline(always)]
pub(crate) fn exp_shifted<V: VecF32, const GRID: bool, const ALL_NORMAL: bool>(
    token: V::Token,
    x: V,
    reference: V,
) -> V {
    let zero = V::splat(token, 0.0);
    let approx = x - reference;
    if ALL_NORMAL {
        let (k, r) = shifted_reduce::<V, GRID>(token, x, approx, reference);
        return exp_reduced(token, r).ldexp_normal(k);
    }
    // As in `exp`, lanes that round to 0 (-inf, masked-out inputs, the
    // padding of a partial vector) are set at the end, without an
    // underflow assist; they compute e^0 meanwhile.
    let underflow = approx.lt(V::splat(token, EXP_MIN));
    let approx = V::select(underflow, zero, approx);
    // Underflowing lanes keep their x in the grid form: with k = 0 their r
    // is just x - reference (or -inf, or NaN), which makes the polynomial
    // large or NaN but never subnormal, and the select below drops it.
    let (k, r) = shifted_reduce::<V, GRID>(token, x, approx, reference);
    V::select(underflow, zero, scale(token, exp_reduced(token, r), k, approx))
}

/// Largest `x` for which [`exp_unshifted`] may be used in a softmax: the
/// sum of e^x over 2^48 elements stays below 2^106, so its reciprocal is
/// a normal f32. And for |x| <= 86 the part of ln 2 that
/// `LN2_HI + LN2_LO` misses (under 7.3e-12 per unit of `k`) shifts `r` by
/// at most 9e-10, 0.02 ULP of e^r.
pub(crate) const UNSHIFTED_MAX: f32 = 40.0;

/// `e^x` for `x` in [[`NORMAL_FROM`], [`UNSHIFTED_MAX`]] (or NaN; the
/// caller guarantees the range): the result is normal, so the cheap
/// normal-range scaling applies, and nothing is subtracted from `x`, hence
/// nothing rounded before the reduction. The polynomial ends in two FMAs,
/// `1 + r (1 + r Q(r))`, one operation fewer than [`exp_reduced`]'s form
/// and still within 1 ULP over the range (`exp_unshifted_within_one_ulp`):
/// three vector operations cheaper than [`exp_shifted`]'s grid form.
#[inline(always)]
pub(crate) fn exp_unshifted<V: VecF32>(token: V::Token, x: V) -> V {
    let (k, r) = reduce(token, x);
    let one = V::splat(token, 1.0);
    exp_q_scaled(token, r, 1.0).mul_add(r, one).mul_add(r, one).ldexp_normal(k)
}

/// Lowest `x - reference` for which [`exp_shifted`] may be told
/// `ALL_NORMAL` (e^-86 is normal, with room for the rounding of the
/// difference).
pub(crate) const NORMAL_FROM: f32 = -86.0;

/// The reduction `x - reference = k ln2 + r` of [`exp_shifted`], from
/// `approx = x - reference` rounded (which only chooses k).
#[inline(always)]
fn shifted_reduce<V: VecF32, const GRID: bool>(token: V::Token, x: V, approx: V, reference: V) -> (V, V) {
    if GRID {
        let magic = V::splat(token, ROUND_MAGIC);
        let k = approx.mul_add(V::splat(token, LOG2_E), magic) - magic;
        let shifted = k.mul_add(V::splat(token, LN2_HI), reference);
        (k, k.mul_add(V::splat(token, -LN2_LO), x - shifted))
    } else {
        reduce(token, approx)
    }
}

/// `1 / (1 + e^-x)`, NaN kept, monotone, output in [0, 1].
///
/// For x >= -20 it is computed as written: e^-x <= e^20 cannot overflow,
/// and each step (exp, + 1, reciprocal) is monotone, so the result is too.
/// (The textbook `e^x / (1 + e^x)` for x < 0 is not: `1 + e^x` may round up
/// while `e^x` barely moves.) Below -20, `1 + e^x` rounds to 1, so the
/// result is e^x itself, computed directly down to the subnormals rather
/// than as the reciprocal of an overflowing e^-x.
///
/// A vector whose lanes all lie in [-20, 20] (the usual case) takes a
/// shortcut with the same results: no lane is in the tail, and e^-x can
/// neither underflow nor be subnormal, so the selects and the range test
/// of the general form are skipped.
#[inline(always)]
pub(crate) fn sigmoid<V: VecF32>(token: V::Token, x: V) -> V {
    let one = V::splat(token, 1.0);
    if !V::any(x.abs().gt_or_nan(V::splat(token, SIGMOID_TAIL))) {
        // e^-x, its negation folded into the reduction.
        let (k, r) = reduce_scaled(token, x, -1.0);
        return one / (one + exp_reduced_scaled(token, r, -1.0).ldexp_normal(k));
    }
    let tail = x.lt(V::splat(token, -SIGMOID_TAIL));
    // Above x = 87, e^-x is subnormal but vanishes in 1 + e^-x: it is taken
    // as 0 so as not to pay for subnormal arithmetic. Only the tail's
    // genuinely subnormal results (x in [-104, -87.3]) pay for it.
    let floor = V::select(tail, V::splat(token, EXP_MIN), V::splat(token, -SIGMOID_FLAT));
    // The argument is at most SIGMOID_TAIL, within exp's bound.
    let e = exp(token, V::select(tail, x, V::splat(token, 0.0) - x), floor);
    V::select(tail, e, one) / (one + e)
}

/// Hyperbolic tangent: an odd polynomial below |x| = 0.55 (exactly `x` for
/// tiny and subnormal x), `1 - 2 / (e^(2|x|) + 1)` above, capped at 1,
/// with the sign of `x` (so tanh(-0) = -0). NaN stays NaN.
///
/// A vector whose lanes all lie on one side of 0.55 computes only that
/// side's formula (same results; the other is dropped by the select
/// anyway; a NaN lane counts as large).
#[inline(always)]
pub(crate) fn tanh<V: VecF32>(token: V::Token, x: V) -> V {
    let ax = x.abs();
    let small_lanes = ax.lt(V::splat(token, TANH_SMALL));
    if !V::any(small_lanes) {
        return tanh_large(token, ax).copysign(x);
    }
    if V::all(small_lanes) {
        return tanh_small(token, ax).copysign(x);
    }
    V::select(small_lanes, tanh_small(token, ax), tanh_large(token, ax)).copysign(x)
}

/// `1 - 2 / (e^(2|x|) + 1)` from `ax = |x|`, capped at 1 (NaN kept).
#[inline(always)]
fn tanh_large<V: VecF32>(token: V::Token, ax: V) -> V {
    let one = V::splat(token, 1.0);
    // Capping |x| where tanh rounds to 1 keeps exp in range; NaN passes.
    let capped = ax.cap(V::splat(token, TANH_ONE));
    // e^(2|x|), its doubling folded into the reduction.
    let (k, r) = reduce_scaled(token, capped, 2.0);
    let e = exp_reduced_scaled(token, r, 2.0).ldexp_normal(k);
    one - V::splat(token, 2.0) / (e + one)
}

/// The odd polynomial `|x| + |x|^3 P(x^2)` for |x| < 0.55 (exactly `|x|`
/// for tiny and subnormal x).
#[inline(always)]
fn tanh_small<V: VecF32>(token: V::Token, ax: V) -> V {
    let u = ax * ax;
    let p = V::splat(token, TANH_P4).mul_add(u, V::splat(token, TANH_P3));
    let p = p.mul_add(u, V::splat(token, TANH_P2));
    let p = p.mul_add(u, V::splat(token, TANH_P1));
    let p = p.mul_add(u, V::splat(token, TANH_P0));
    (ax * u).mul_add(p, ax)
}

/// Below this, expm1(x) rounds to -1 in f32 (e^-17.4 < 2^-25), so the
/// argument is clamped here, keeping `2^k` normal.
const EXPM1_FLOOR: f32 = -30.0;

/// `e^x - 1` for `x <= 0` (or NaN; the caller caps positive lanes),
/// within about 1 ULP, and accurate for tiny |x| (no cancellation):
/// with `x = k ln2 + r`, it is `2^k (e^r - 1) + (2^k - 1)`, where
/// `e^r - 1` comes from the exp polynomial before its final `+ 1`, and
/// `2^k - 1` is exact for the k in [-24, 0] where it matters (below,
/// the result rounds to -1 anyway, give or take one ULP). The sign of
/// `x` is kept, so expm1(-0) = -0.
#[inline(always)]
pub(crate) fn expm1_nonpositive<V: VecF32>(token: V::Token, x: V) -> V {
    let floor = V::splat(token, EXPM1_FLOOR);
    let clamped = V::select(x.lt(floor), floor, x);
    let (k, r) = reduce(token, clamped);
    // e^r - 1, the exp polynomial without its final `+ 1`.
    let em1 = exp_q_scaled(token, r, 1.0).mul_add(r * r, r);
    let one = V::splat(token, 1.0);
    let scale = one.ldexp_normal(k);
    em1.mul_add(scale, scale - one).copysign(x)
}

/// Veltkamp's splitting constant for f32 (2^12 + 1): `a * SPLIT` splits
/// a 24-bit significand into two halves of at most 12 bits, whose
/// products are exact.
const SPLIT: f32 = 4097.0;
/// Below this magnitude neither `a * SPLIT` nor the partial products of
/// [`mul_add_accurate`] can overflow.
const SPLIT_LIMIT: f32 = 1.0e30;

/// `b` split into a high part of at most 12 significant bits and the rest
/// (`b` itself and 0 from [`SPLIT_LIMIT`] on, or for NaN).
fn split_scalar(b: f32) -> (f32, f32) {
    if b.is_nan() || b.abs() >= SPLIT_LIMIT {
        return (b, 0.0);
    }
    let t = b * SPLIT;
    let high = t - (t - b);
    (high, b - high)
}

/// `a * b + c` within about 1 ULP on every path, with or without FMA.
///
/// The product's rounding error is recovered exactly (Dekker's product on
/// Veltkamp's split) and added after the sum: where `a * b` and `c`
/// nearly cancel, their rounded sum is exact (Sterbenz), so the result is
/// the exact `a * b + c` rounded once; a plain multiply-then-add would
/// lose the product's rounding error relative to a tiny result (many
/// ULP). Lanes where `|a|` or `|a * b|` reach 1e30 (or NaN) skip the
/// correction, which could overflow there and is negligible anyway.
///
/// Where the ISA has FMA ([`VecF32::FUSED`]) this is one fused
/// multiply-add: `a * b + c` rounded once, which is what the correction
/// approximates, at a fraction of the cost.
#[inline(always)]
pub(crate) fn mul_add_accurate<V: VecF32>(token: V::Token, a: V, b: f32, c: f32) -> V {
    if V::FUSED {
        return a.mul_add(V::splat(token, b), V::splat(token, c));
    }
    let (b_high, b_low) = split_scalar(b);
    let (b_high, b_low) = (V::splat(token, b_high), V::splat(token, b_low));
    let product = a * V::splat(token, b);
    let t = a * V::splat(token, SPLIT);
    let a_high = t - (t - a);
    let a_low = a - a_high;
    let error = (((a_high * b_high - product) + a_high * b_low) + a_low * b_high) + a_low * b_low;
    let zero = V::splat(token, 0.0);
    let limit = V::splat(token, SPLIT_LIMIT);
    let error = V::select(a.abs().lt(limit), error, zero);
    let error = V::select(product.abs().lt(limit), error, zero);
    (product + V::splat(token, c)) + error
}

/// `e^x = p 2^k` for `x` in [-104, 89] (or NaN): `k` integral, `p` in
/// about [0.7, 1.42], within 1 ULP, so that a caller can multiply `p` by
/// something before scaling by `2^k` once.
#[inline(always)]
pub(crate) fn exp_split<V: VecF32>(token: V::Token, x: V) -> (V, V) {
    let (k, r) = reduce(token, x);
    (k, exp_reduced(token, r))
}

/// Above this, e^x overflows f32 (e^88.73 > f32::MAX); capping here keeps
/// `k` at most 128, which [`VecF32::ldexp`] turns into inf.
const EXP_CAP: f32 = 89.0;

/// `e^x` for every `x`, within about 1 ULP: inf from ~88.72 on (and at
/// inf), correctly rounded subnormal results, 0 below -104 (and at -inf),
/// NaN kept. Vectors whose lanes all lie in [-86.5, 86.5] (the usual
/// case) take the cheap normal-range scaling.
#[inline(always)]
pub(crate) fn exp_any<V: VecF32>(token: V::Token, x: V) -> V {
    let zero = V::splat(token, 0.0);
    let capped = x.cap(V::splat(token, EXP_CAP));
    // As in `exp`: lanes that round to 0 compute e^0 meanwhile, so as not
    // to pay for underflow assists, and are set at the end.
    let underflow = capped.lt(V::splat(token, EXP_MIN));
    let capped = V::select(underflow, zero, capped);
    let (k, r) = reduce(token, capped);
    let p = exp_reduced(token, r);
    let y = if V::any(capped.abs().gt(V::splat(token, -SUBNORMAL_BELOW))) { p.ldexp(k) } else { p.ldexp_normal(k) };
    V::select(underflow, zero, y)
}

// log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) with s = f / (2 + f), for
// f in [sqrt(1/2) - 1, sqrt(2) - 1]: R's coefficients are those of
// FreeBSD's logf (max error 2.5e-11 relative on log(1 + f), checked
// against float64 log1p on 200,001 points).
const LOG_LG1: f32 = 0.666_666_6;
const LOG_LG2: f32 = 0.400_009_72;
const LOG_LG3: f32 = 0.284_987_87;
const LOG_LG4: f32 = 0.242_790_79;

/// `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)) and integral `e`, for
/// positive finite `x` (subnormals included).
///
/// [`VecF32`] has no access to the bits, so the exponent is found by a
/// binary search of exact power-of-two scalings: down by 2^64, ..., 2^1
/// while `m >= 2`, then up by 2^128 (as two steps of 2^64), 2^64, ...,
/// 2^1 while `m < 1`.
#[inline(always)]
fn split_exponent<V: VecF32>(token: V::Token, x: V) -> (V, V) {
    let mut m = x;
    let mut e = V::splat(token, 0.0);
    for step in [64, 32, 16, 8, 4, 2, 1] {
        let big = m.ge(V::splat(token, 2f32.powi(step)));
        m = V::select(big, m * V::splat(token, 2f32.powi(-step)), m);
        e = V::select(big, e + V::splat(token, step as f32), e);
    }
    let up = V::splat(token, 2f32.powi(64));
    let tiny = m.lt(V::splat(token, 2f32.powi(-127)));
    m = V::select(tiny, m * up * up, m);
    e = V::select(tiny, e - V::splat(token, 128.0), e);
    for step in [64, 32, 16, 8, 4, 2, 1] {
        let small = m.lt(V::splat(token, 2f32.powi(1 - step)));
        m = V::select(small, m * V::splat(token, 2f32.powi(step)), m);
        e = V::select(small, e - V::splat(token, step as f32), e);
    }
    let high = m.gt(V::splat(token, std::f32::consts::SQRT_2));
    (V::select(high, m * V::splat(token, 0.5), m), V::select(high, e + V::splat(token, 1.0), e))
}

/// Natural logarithm, within about 1 ULP: log(±0) = -inf, log(x < 0) =
/// NaN, log(inf) = inf, NaN kept, subnormal inputs exact in their
/// exponent. FreeBSD's logf reduction: `x = m 2^e`, `f = m - 1` (exact),
/// `log x = e ln2 + log(1 + f)`, with ln 2 split as in [`reduce`] so that
/// `e * LN2_HI` is exact.
#[inline(always)]
pub(crate) fn log<V: VecF32>(token: V::Token, x: V) -> V {
    let zero = V::splat(token, 0.0);
    let one = V::splat(token, 1.0);
    let inf = V::splat(token, f32::INFINITY);
    // Zeros, negatives, inf and NaN take 1 through the computation and
    // are set at the end.
    let finite = V::select(x.gt(zero), x, one);
    let (m, e) = split_exponent(token, V::select(finite.eq(inf), one, finite));
    let f = m - one;
    let s = f / (V::splat(token, 2.0) + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * V::splat(token, LOG_LG4).mul_add(w, V::splat(token, LOG_LG2));
    let t2 = z * V::splat(token, LOG_LG3).mul_add(w, V::splat(token, LOG_LG1));
    let r = t2 + t1;
    let hfsq = V::splat(token, 0.5) * f * f;
    let y = e * V::splat(token, LN2_HI) - ((hfsq - s.mul_add(hfsq + r, e * V::splat(token, LN2_LO))) - f);
    let y = V::select(x.lt(zero), V::splat(token, f32::NAN), y);
    let y = V::select(x.eq(zero), V::splat(token, f32::NEG_INFINITY), y);
    let y = V::select(x.eq(inf), inf, y);
    // `!(x <= x)` holds exactly for NaN.
    V::select(x.gt_or_nan(x), x, y)
}

/// `log(1 + y)` for `y >= 0` (or NaN) below 2^100, within about 1 ULP
/// also for tiny `y` (where `1 + y` rounds): `log(u) + (y - (u - 1)) / u`
/// with `u = 1 + y` rounded, the second term restoring what the rounding
/// of `u` lost (`u - 1` is exact).
#[inline(always)]
pub(crate) fn log1p_nonnegative<V: VecF32>(token: V::Token, y: V) -> V {
    let one = V::splat(token, 1.0);
    let u = one + y;
    log(token, u) + (y - (u - one)) / u
}

/// `a * b` as `(p, err)` with `p` the rounded product and `p + err`
/// exactly `a * b` (Dekker's product on Veltkamp's split; no FMA needed),
/// for |a|, |b| below 1e30 with a normal product.
#[inline(always)]
fn two_product<V: VecF32>(token: V::Token, a: V, b: V) -> (V, V) {
    let split = V::splat(token, SPLIT);
    let (ta, tb) = (a * split, b * split);
    let (a_high, b_high) = (ta - (ta - a), tb - (tb - b));
    let (a_low, b_low) = (a - a_high, b - b_high);
    let product = a * b;
    let error = (((a_high * b_high - product) + a_high * b_low) + a_low * b_high) + a_low * b_low;
    (product, error)
}

/// Square root, correctly rounded: the vector instruction (IEEE
/// `sqrt`), so +0 and -0 are kept, sqrt(x < 0) = NaN, sqrt(inf) = inf,
/// NaN kept.
#[inline(always)]
pub(crate) fn sqrt<V: VecF32>(_token: V::Token, x: V) -> V {
    x.sqrt()
}

// erf(x) = x + x R(x^2) for |x| < 1: R is a degree-7 weighted
// least-squares fit of erf(x)/x - 1 in x^2 on Chebyshev nodes of [0, 1]
// (3.4e-11 relative on erf(x)/x; the final `x + x R` rounds once, so the
// result is within 1 ULP on a 1/37 sample of [0, 1]).
const ERF_R: [f32; 8] = [
    -9.634_993e-6,
    1.125_464_5e-4,
    -8.482_509e-4,
    5.220_923e-3,
    -2.686_539_3e-2,
    0.112_837_82,
    -0.376_126_38,
    0.128_379_17,
];
// erfc(x) e^(x^2) = G(x - 2.5) for 1 <= x <= 4: G is a degree-11 weighted
// least-squares fit on Chebyshev nodes of [1, 4] (3.3e-8 relative, which
// erf = 1 - e^(-x^2) G shrinks by erfc/erf <= 0.19).
const ERF_G: [f32; 12] = [
    -3.835_844_2e-7,
    1.658_862_3e-6,
    -4.009_326e-6,
    1.442_567_6e-5,
    -5.894_272e-5,
    2.128_322_2e-4,
    -7.337_13e-4,
    2.466_092_8e-3,
    -8.001_475e-3,
    2.493_817_4e-2,
    -7.434_736e-2,
    0.210_806_35,
];
/// From here on erf(x) rounds to ±1 in f32 (erfc(4) = 1.5e-8 < 2^-25).
const ERF_ONE: f32 = 4.0;

/// Horner's rule over `coefficients`, highest degree first.
#[inline(always)]
fn horner<V: VecF32>(token: V::Token, t: V, coefficients: &[f32]) -> V {
    let mut acc = V::splat(token, coefficients[0]);
    for &c in &coefficients[1..] {
        acc = acc.mul_add(t, V::splat(token, c));
    }
    acc
}

/// The error function, odd (erf(-0) = -0), ±1 from |x| = 4 on (and at
/// ±inf), NaN kept: `x + x R(x^2)` below |x| = 1, `1 - e^(-x^2) G(|x|)`
/// with the sign of `x` from 1 to 4 (the polynomials are above).
#[inline(always)]
pub(crate) fn erf<V: VecF32>(token: V::Token, x: V) -> V {
    let one = V::splat(token, 1.0);
    let ax = x.abs().cap(V::splat(token, ERF_ONE));
    let small_lanes = ax.lt(one);
    let small = x.mul_add(horner(token, x * x, &ERF_R), x);
    if V::all(small_lanes) {
        return small;
    }
    let g = horner(token, ax - V::splat(token, 2.5), &ERF_G);
    // -x^2 >= -16: e^(-x^2) is normal.
    let e = exp_any(token, V::splat(token, 0.0) - ax * ax);
    let large = (one - e * g).copysign(x);
    V::select(small_lanes, small, large)
}

// Gelu, exact form: y = x Φ(x), Φ the standard normal distribution.
//
// Φ(x) = 1/2 + x S(x^2) for |x| < 1: S is a degree-6 weighted
// least-squares fit of (Φ(x) - 1/2) / x in x^2 on 200 Chebyshev nodes of
// [0, 1] (within 1.4 * 2^-24 relative, rounding of the f32 evaluation
// included, on 200,001 points).
const GELU_S: [f32; 7] =
    [5.367_329_5e-7, -9.272_799e-6, 1.153_189_3e-4, -1.187_287_9e-3, 9.973_55e-3, -6.649_038e-2, 0.398_942_3];
// For a = |x| >= 1, the tail a Φ(-a) = C e^(-a^2/2) F(a), C = 1/sqrt(2π),
// F(a) = a Φ(-a) / φ(a) (a times Mills' ratio, 0.66 at 1, 0.995 at 14.4):
// F is a degree-14 weighted least-squares fit in t = 1/a - 1/2 on 400
// Chebyshev nodes of a in [1, 14.4] (within 1.4 * 2^-24 relative, rounding
// of 1/a and of the f32 evaluation included, on 200,001 points).
const GELU_F: [f32; 15] = [
    -4.077_718,
    5.219_112_4,
    -0.475_882_92,
    -2.245_663_6,
    1.594_483_5,
    -0.833_154_44,
    0.484_997_57,
    -0.099_664_964,
    -0.246_057_08,
    0.424_619_8,
    -0.418_742_1,
    0.249_021_8,
    0.048_124_123,
    -0.427_384_56,
    0.842_738_45,
];
/// 1/sqrt(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;
/// Below -this, exact Gelu rounds to -0 in f32 (14.4 C e^(-14.4^2/2) F
/// < 2^-150), and the tail's e^(-a^2/2) stays within [`exp_split`]'s range.
const GELU_ZERO: f32 = 14.4;

/// `a + b` as `(s, err)` with `s` the rounded sum and `s + err` exactly
/// `a + b` (Knuth's two-sum, any order of magnitudes).
#[inline(always)]
fn two_sum<V: VecF32>(a: V, b: V) -> (V, V) {
    let sum = a + b;
    let b_virtual = sum - a;
    let a_virtual = sum - b_virtual;
    (sum, (a - a_virtual) + (b - b_virtual))
}

/// Exact Gelu, `x Φ(x)` (ONNX `approximate = "none"`,
/// `0.5 x (1 + erf(x / sqrt(2)))`), within a few ULP everywhere:
/// `x (1/2 + x S(x^2))` below |x| = 1; from there the tail
/// `m = C e^(-x^2/2) F(|x|)`, with `x^2` split exactly into two floats so
/// that e^(-x^2/2) is accurate where it is tiny, scaled by `2^k` once
/// (correctly rounded subnormal results); `x - m` above 1 and `-m` below
/// -1; -0 below -14.4 (NaN at -inf, as PyTorch's formula gives), NaN kept.
// Inlined into each instruction set's loop in release builds, like every
// function here; in debug builds kept out of line, where inlining its
// unoptimised body into the six call sites of each loop took over 1 MiB
// of stack (a test thread has 2 MiB).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) fn gelu_erf<V: VecF32>(token: V::Token, x: V) -> V {
    let one = V::splat(token, 1.0);
    let ax = x.abs();
    let small_lanes = ax.lt(one);
    let small = x * x.mul_add(horner(token, x * x, &GELU_S), V::splat(token, 0.5));
    if V::all(small_lanes) {
        return small;
    }
    // |x| capped where the result is -0 or x anyway; NaN passes.
    let a = ax.cap(V::splat(token, GELU_ZERO)).max(one);
    let f = horner(token, one / a - V::splat(token, 0.5), &GELU_F);
    let (square, square_low) = two_product(token, a, a);
    let half = V::splat(token, -0.5);
    let (k, p) = exp_split(token, square * half);
    // e^(-(square + square_low)/2) = p 2^k e^(-square_low/2), the last
    // factor 1 - square_low/2 to well below an ULP.
    let m = (V::splat(token, INV_SQRT_2PI) * f * p * square_low.mul_add(half, one)).ldexp(k);
    let zero = V::splat(token, 0.0);
    let tail = V::select(x.lt(zero), m.copysign(x), x - m);
    let tail = V::select(x.lt(V::splat(token, -GELU_ZERO)), x * zero, tail);
    V::select(small_lanes, small, tail)
}

// The tanh form: 0.5 x (1 + tanh(u)) = x sigmoid(2u), with
// 2u = x (K1 + K3 x^2), K1 = 2 sqrt(2/π) and K3 = 0.044715 K1, each split
// into two floats so that 2u is known to far below an ULP where e^(2u) is
// tiny and the relative error of e^(2u) is |2u| times that of 2u.
const GELU_K1: f32 = 1.595_769_2;
const GELU_K1_LOW: f32 = -4.534_068e-8;
const GELU_K3: f32 = 0.071_354_814;
const GELU_K3_LOW: f32 = 2.398_832_5e-9;
/// Below -this, tanh-form Gelu rounds to -0 in f32 (2u < -106.4), and 2u
/// stays above -110, where [`exp_split`] is still exact in its reduction.
const GELU_TANH_ZERO: f32 = 10.9;

/// Gelu's tanh approximation (ONNX `approximate = "tanh"`), as
/// `x sigmoid(2u)`: for x >= -0.5 (NaN included) through [`sigmoid`] of
/// the plainly rounded 2u (|2u| < 0.85 or sigmoid(2u) > 1/2, so 2u's
/// rounding barely shows); below, with 2u as an unevaluated sum of two floats,
/// `x e^(2u) / (1 + e^(2u))` scaled by `2^k` once (correctly rounded
/// subnormal results); -0 below -10.9 (NaN at -inf, as PyTorch's formula
/// gives).
// Inlined into each instruction set's loop in release builds, like every
// function here; in debug builds kept out of line, where inlining its
// unoptimised body into the six call sites of each loop took over 1 MiB
// of stack (a test thread has 2 MiB).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) fn gelu_tanh<V: VecF32>(token: V::Token, x: V) -> V {
    let zero = V::splat(token, 0.0);
    let (k1, k3) = (V::splat(token, GELU_K1), V::splat(token, GELU_K3));
    // Down to x = -0.5 (2u = -0.85) the plain form is accurate too; below
    // it the error of 2u would be multiplied by |2u|.
    let negative_lanes = x.lt(V::splat(token, -0.5));
    let positive = x * sigmoid(token, x * (x * x).mul_add(k3, k1));
    if !V::any(negative_lanes) {
        return positive;
    }
    let xc = V::select(x.lt(V::splat(token, -GELU_TANH_ZERO)), V::splat(token, -GELU_TANH_ZERO), x);
    let xc = V::select(negative_lanes, xc, zero);
    // inner = K1 + K3 x^2 as inner + inner_low.
    let (square, square_low) = two_product(token, xc, xc);
    let (term, term_low) = two_product(token, k3, square);
    let term_low = term_low + k3 * square_low + V::splat(token, GELU_K3_LOW) * square;
    let (inner, inner_low) = two_sum(k1, term);
    let inner_low = inner_low + term_low + V::splat(token, GELU_K1_LOW);
    // 2u = s + s_low.
    let (s, s_low) = two_product(token, xc, inner);
    let s_low = xc.mul_add(inner_low, s_low);
    let (k, p) = exp_split(token, s);
    let one = V::splat(token, 1.0);
    // e^(2u) only matters in 1 + e^(2u); below 2^-151 it is 0 there.
    let e = p.ldexp(k.max(V::splat(token, -151.0)));
    // x p e^(s_low) / (1 + e^(2u)), below 16 in magnitude, scaled by 2^-8
    // first so that 2^(k + 8) stays within `ldexp`'s range.
    let scaled = xc * p * s_low.mul_add(one, one) / (one + e) * V::splat(token, 1.0 / 256.0);
    let negative = scaled.ldexp(k + V::splat(token, 8.0));
    let negative = V::select(x.lt(V::splat(token, -GELU_TANH_ZERO)), x * zero, negative);
    V::select(negative_lanes, negative, positive)
}

/// Below -this, `x e^(αx)` rounds to 0 for every float `x` (e^-220 <
/// 2^-317); half of it stays within [`exp_split`]'s exact range.
const SWISH_ZERO: f32 = 220.0;
/// Down to -this, e^(αx) comes from one [`exp_split`] (its exact range);
/// below, from two halves.
const SWISH_SINGLE: f32 = 110.0;

/// Swish, `x sigmoid(αx)` (SiLU at α = 1), for any α: `x / (1 + e^(-αx))`
/// while αx >= -20; below, `x e^(αx)` (1 + e^(αx) rounds to 1) scaled by
/// `2^k` once, and below αx = -110 (only reached with α != 1 by results
/// that are not 0) with e^(αx) = (p 2^k)^2 from e^(αx/2), scaled twice. αx is taken as the exact sum of two floats (its
/// rounding error would be multiplied by |αx| in e^(αx)). NaN kept; `x`
/// where αx is large.
// Inlined into each instruction set's loop in release builds, like every
// function here; in debug builds kept out of line, where inlining its
// unoptimised body into the six call sites of each loop took over 1 MiB
// of stack (a test thread has 2 MiB).
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline(never))]
pub(crate) fn swish<V: VecF32>(token: V::Token, x: V, alpha: f32) -> V {
    let zero = V::splat(token, 0.0);
    let one = V::splat(token, 1.0);
    let alpha_v = V::splat(token, alpha);
    let (s, s_low) = if alpha.abs() < SPLIT_LIMIT {
        let (s, s_low) = two_product(token, alpha_v, x);
        // The split is only valid for moderate products; elsewhere
        // e^(αx) is 0 or inf anyway and the low part does not matter.
        let s_low = V::select(s.abs().lt(V::splat(token, 2.0 * SWISH_ZERO)), s_low, zero);
        (s, V::select(x.abs().lt(V::splat(token, SPLIT_LIMIT)), s_low, zero))
    } else {
        (alpha_v * x, zero)
    };
    let tail_lanes = s.lt(V::splat(token, -SIGMOID_TAIL));
    // e^(-αx) within [e^-80, e^20]: normal, no overflow; from αx = 17 on
    // 1 + e^(-αx) rounds to 1 anyway.
    let body_s = V::select(tail_lanes, zero, s).cap(V::splat(token, 80.0));
    let (k, p) = exp_split(token, zero - body_s);
    let e_minus = p.ldexp_normal(k) * (one - s_low);
    let body = x / (one + e_minus);
    if !V::any(tail_lanes) {
        return body;
    }
    let below = s.lt(V::splat(token, -SWISH_ZERO));
    let single_from = V::splat(token, -SWISH_SINGLE);
    let tail_s = V::select(tail_lanes, s.max(single_from), zero);
    // x p e^(s_low) 2^k, scaled by 2^-8 first so that 2^(k + 8) stays in
    // `ldexp`'s range (k >= -159).
    let (k, p) = exp_split(token, tail_s);
    let low = s_low.mul_add(one, one);
    let tail = (x * V::splat(token, 1.0 / 256.0) * p * low).ldexp(k + V::splat(token, 8.0));
    let tail = if V::any(s.lt(single_from)) {
        // e^(αx) = (p 2^k)^2 from e^(αx/2): (x/4) p^2 2^(2k), k <= -55,
        // the first scaling rounding only far below the normal range.
        let half = V::splat(token, 0.5);
        let half_s = V::select(below, V::splat(token, -SWISH_ZERO), s).cap(single_from) * half;
        let (k, p) = exp_split(token, half_s);
        let scaled = x * half * half * p * p * low;
        let far = scaled.ldexp(k + V::splat(token, 2.0)).ldexp(k);
        V::select(s.lt(single_from), far, tail)
    } else {
        tail
    };
    let tail = V::select(below, x * zero, tail);
    V::select(tail_lanes, tail, body)
}

/// How far ahead [`map`] prefetches: far enough for an L3 or memory
/// access to complete while the steps between run, near enough to stay in
/// L1.
const PREFETCH_BYTES: usize = 2048;

/// From this many elements (64 KiB of float32 per buffer) on, [`map`]
/// prefetches for functions that ask for it; it is per call of `map`, so a
/// 1M-element input cut into ~62K-element chunks per thread still
/// prefetches. Below it the data sits in L2 and prefetching gains nothing;
/// it pays only for functions with long per-element work (see
/// [`Elementwise::PREFETCH`]).
const PREFETCH_MIN_ELEMS: usize = 1 << 14;

/// An elementwise f32 function that the slice loops can map.
pub(crate) trait Elementwise: Copy + Send + Sync {
    /// Whether [`map`] should prefetch for it: true where that measurably
    /// pays (sigmoid and tanh, long per element, gain; relu does not).
    const PREFETCH: bool = false;

    /// The function on one vector.
    fn apply<V: VecF32>(self, token: V::Token, x: V) -> V;
}

/// Applies `func` to fewer than `V::LANES` elements with partial loads and
/// stores.
#[inline(always)]
fn map_partial<V: VecF32, F: Elementwise>(token: V::Token, func: F, src: &[f32], dst: &mut [f32]) {
    func.apply(token, V::load_partial(token, src, 0.0)).store_partial(dst);
}

/// [`map_partial`] in place.
#[inline(always)]
fn map_partial_inplace<V: VecF32, F: Elementwise>(token: V::Token, func: F, data: &mut [f32]) {
    func.apply(token, V::load_partial(token, data, 0.0)).store_partial(data);
}

/// How many leading elements to handle apart so that the vector stores
/// that follow are aligned: an unaligned 64-byte store spans two cache
/// lines, which costs memory-bound loops about a fifth of their speed.
/// Each lane is computed on its own, so this never changes a result.
#[inline(always)]
fn head_len<V: VecF32>(dst: *const f32, len: usize) -> usize {
    let head = dst.align_offset(V::LANES * size_of::<f32>());
    if head < V::LANES { head.min(len) } else { 0 }
}

/// `dst[i] = func(src[i])` over the common length; with `STREAM`, the
/// aligned body is written with non-temporal stores (and fenced).
#[inline(always)]
pub(crate) fn map<V: VecF32, F: Elementwise, const STREAM: bool>(
    token: V::Token,
    func: F,
    src: &[f32],
    dst: &mut [f32],
) {
    let len = src.len().min(dst.len());
    let (src, dst) = (&src[..len], &mut dst[..len]);
    let head = head_len::<V>(dst.as_ptr(), len);
    let (src_head, src) = src.split_at(head);
    let (dst_head, dst) = dst.split_at_mut(head);
    if head > 0 {
        map_partial::<V, F>(token, func, src_head, dst_head);
    }
    let lanes = V::LANES;
    // Prefetching pays when the data comes from beyond L2 and the work per
    // element is long; streamed outputs must not be pulled into cache.
    let prefetch = F::PREFETCH && !STREAM && len >= PREFETCH_MIN_ELEMS;
    // Four independent vectors per step hide the latency of the long
    // dependency chains (exp, division) and the loop overhead.
    let mut src_steps = src.chunks_exact(4 * lanes);
    let mut dst_steps = dst.chunks_exact_mut(4 * lanes);
    for (src, dst) in (&mut src_steps).zip(&mut dst_steps) {
        if prefetch {
            super::simd::prefetch_ahead(src.as_ptr(), dst.as_ptr(), PREFETCH_BYTES, 4 * lanes * size_of::<f32>());
        }
        let x0 = V::load(token, src);
        let x1 = V::load(token, &src[lanes..]);
        let x2 = V::load(token, &src[2 * lanes..]);
        let x3 = V::load(token, &src[3 * lanes..]);
        let y = [func.apply(token, x0), func.apply(token, x1), func.apply(token, x2), func.apply(token, x3)];
        for (idx, y) in y.into_iter().enumerate() {
            if STREAM {
                y.store_stream(&mut dst[idx * lanes..]);
            } else {
                y.store(&mut dst[idx * lanes..]);
            }
        }
    }
    if STREAM {
        super::simd::store_fence();
    }
    let mut src_vecs = src_steps.remainder().chunks_exact(lanes);
    let mut dst_vecs = dst_steps.into_remainder().chunks_exact_mut(lanes);
    for (src, dst) in (&mut src_vecs).zip(&mut dst_vecs) {
        func.apply(token, V::load(token, src)).store(dst);
    }
    let (src, dst) = (src_vecs.remainder(), dst_vecs.into_remainder());
    if !src.is_empty() {
        map_partial::<V, F>(token, func, src, dst);
    }
}

/// `data[i] = func(data[i])`.
#[inline(always)]
pub(crate) fn map_inplace<V: VecF32, F: Elementwise>(token: V::Token, func: F, data: &mut [f32]) {
    let head = head_len::<V>(data.as_ptr(), data.len());
    let (data_head, data) = data.split_at_mut(head);
    if head > 0 {
        map_partial_inplace::<V, F>(token, func, data_head);
    }
    let lanes = V::LANES;
    let mut steps = data.chunks_exact_mut(4 * lanes);
    for step in &mut steps {
        let x0 = V::load(token, step);
        let x1 = V::load(token, &step[lanes..]);
        let x2 = V::load(token, &step[2 * lanes..]);
        let x3 = V::load(token, &step[3 * lanes..]);
        func.apply(token, x0).store(step);
        func.apply(token, x1).store(&mut step[lanes..]);
        func.apply(token, x2).store(&mut step[2 * lanes..]);
        func.apply(token, x3).store(&mut step[3 * lanes..]);
    }
    let mut vecs = steps.into_remainder().chunks_exact_mut(lanes);
    for vec in &mut vecs {
        func.apply(token, V::load(token, vec)).store(vec);
    }
    let rest = vecs.into_remainder();
    if !rest.is_empty() {
        map_partial_inplace::<V, F>(token, func, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::scalar::{F32x1, Scalar};
    #[cfg(target_arch = "x86_64")]
    use crate::kernels::simd::{
        avx2::{Avx2, F32x8},
        avx512::{Avx512, F32x16},
        sse2::{F32x4, Sse2},
    };
    use crate::kernels::test_util::ulp_diff;

    /// Largest ULP error of [`exp_unshifted`] against f64 `exp`, rounded,
    /// on every `stride`-th float of its range [-86, 40].
    fn unshifted_error<V: VecF32>(token: V::Token, stride: u32) -> u64 {
        let inputs: Vec<f32> = (0u32..)
            .map(|step| step * stride)
            .take_while(|&bits| bits < 0x8000_0000)
            .flat_map(|bits| [f32::from_bits(bits), -f32::from_bits(bits)])
            .filter(|x| (NORMAL_FROM..=UNSHIFTED_MAX).contains(x))
            .collect();
        let mut worst = 0;
        for chunk in inputs.chunks(V::LANES) {
            let mut got = [0f32; MAX_LANES];
            exp_unshifted(token, V::load_partial(token, chunk, 0.0)).store_partial(&mut got[..chunk.len()]);
            for (&x, &y) in chunk.iter().zip(&got) {
                worst = worst.max(ulp_diff(y, f64::from(x).exp() as f32));
            }
        }
        worst
    }

    #[test]
    fn exp_unshifted_within_one_ulp() {
        // About 4M inputs of each sign; the release-mode sweep of
        // `examples/ulp_sweep.rs` covers the functions built on the same
        // reduction over all inputs.
        let stride = if cfg!(debug_assertions) { 4099 } else { 257 };
        let mut errors = vec![unshifted_error::<F32x1>(Scalar::new(), stride)];
        #[cfg(target_arch = "x86_64")]
        {
            errors.extend(Sse2::new().map(|token| unshifted_error::<F32x4>(token, stride)));
            errors.extend(Avx2::new().map(|token| unshifted_error::<F32x8>(token, stride)));
            errors.extend(Avx512::new().map(|token| unshifted_error::<F32x16>(token, stride)));
        }
        println!("exp_unshifted max error per ISA: {errors:?} ULP");
        assert!(errors.iter().all(|&error| error <= 1), "{errors:?} ULP");
    }
}
