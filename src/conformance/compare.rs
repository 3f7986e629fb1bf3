//! Comparing an output with its reference: dtype and shape exactly, values
//! within a [`Tolerance`] (a non-finite value matches only itself), with
//! the worst element and the largest absolute and ULP errors reported.

use super::Tolerance;
use crate::tensor::{SharedArray, Str, Tensor};

/// The result of comparing one output.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Largest absolute difference (NaN-vs-NaN and equal infinities count 0).
    pub max_abs: f64,
    /// Largest difference in units in the last place of the dtype.
    pub max_ulp: u64,
    /// Why it fails, naming the worst element, or `None`.
    pub failure: Option<String>,
    /// Elements per error in ULP (see [`ulp_bucket`]).
    pub ulp_histogram: [u64; ULP_BUCKETS],
    /// Elements per absolute error (see [`abs_bucket`]).
    pub abs_histogram: [u64; ABS_BUCKETS],
    /// The element farthest from its reference (most ULP, then largest
    /// absolute error), when any differs.
    pub worst: Option<WorstElement>,
}

/// One element that differs from its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct WorstElement {
    /// The output's name (empty when compared outside a model).
    pub output: String,
    /// Its index.
    pub index: Vec<usize>,
    /// The reference value.
    pub expected: f64,
    /// onnxi's value.
    pub actual: f64,
    /// Absolute error (infinite when one side is NaN or infinite).
    pub abs: f64,
    /// Error in ULP.
    pub ulp: u64,
}

/// Buckets of [`Comparison::ulp_histogram`].
pub const ULP_BUCKETS: usize = 12;
/// Buckets of [`Comparison::abs_histogram`].
pub const ABS_BUCKETS: usize = 15;

/// The bucket of an error of `ulp`: 0 for 0, 1 for 1, 2 for 2, then powers
/// of two (3–4, 5–8, …), the last everything above 512.
pub fn ulp_bucket(ulp: u64) -> usize {
    if ulp == 0 { 0 } else { (1 + (64 - (ulp - 1).leading_zeros()) as usize).min(ULP_BUCKETS - 1) }
}

/// The label of ULP bucket `idx` (`0`, `1`, `2`, `3–4`, …, `>512`).
pub fn ulp_bucket_label(idx: usize) -> String {
    match idx {
        0..=2 => idx.to_string(),
        _ if idx == ULP_BUCKETS - 1 => format!(">{}", 1u64 << (idx - 2)),
        _ => format!("{}–{}", (1u64 << (idx - 2)) + 1, 1u64 << (idx - 1)),
    }
}

/// The bucket of an absolute error: 0 for 0, then decades `≤1e-12`,
/// `≤1e-11`, …, `≤1`, and last `>1` (also NaN or infinite).
pub fn abs_bucket(abs: f64) -> usize {
    if abs == 0.0 {
        return 0;
    }
    if !abs.is_finite() {
        return ABS_BUCKETS - 1;
    }
    (abs.log10().ceil().clamp(-12.0, 1.0) as i64 + 13) as usize
}

/// The label of absolute-error bucket `idx`.
pub fn abs_bucket_label(idx: usize) -> String {
    match idx {
        0 => "0".into(),
        _ if idx == ABS_BUCKETS - 1 => ">1".into(),
        13 => "≤1".into(),
        _ => format!("≤1e{}", idx as i64 - 13),
    }
}

/// Compares `actual` to `expected`: dtype and shape exactly, values within
/// `tolerance` (NaN matches NaN, -0.0 matches 0.0).
pub fn compare(expected: &Tensor, actual: &Tensor, tolerance: Tolerance) -> Comparison {
    let mut result = Comparison {
        max_abs: 0.0,
        max_ulp: 0,
        failure: None,
        ulp_histogram: [0; ULP_BUCKETS],
        abs_histogram: [0; ABS_BUCKETS],
        worst: None,
    };
    if expected.dtype() != actual.dtype() {
        result.failure = Some(format!("dtype {} expected, got {}", expected.dtype(), actual.dtype()));
        return result;
    }
    if expected.shape() != actual.shape() {
        result.failure = Some(format!("shape {:?} expected, got {:?}", expected.shape(), actual.shape()));
        return result;
    }
    if let (Tensor::String(want), Tensor::String(got)) = (expected, actual) {
        compare_texts(want, got, &mut result);
        return result;
    }
    let expected_values = expected.to_f64_vec();
    let actual_values = actual.to_f64_vec();
    let expected_ordered = ordered_bits(expected);
    let actual_ordered = ordered_bits(actual);
    // Integers and bool match exactly, compared as integers: through f64,
    // int64 and uint64 values past 2^53 that differ could look equal.
    let integral = !expected.dtype().is_float() && !expected.dtype().is_small_float();
    let mut worst: Option<(usize, f64)> = None;
    let mut farthest: Option<(usize, u64, f64)> = None;
    for idx in 0..expected_values.len() {
        let (want, got) = (expected_values[idx], actual_values[idx]);
        let same = if integral {
            expected_ordered[idx] == actual_ordered[idx]
        } else {
            want == got || (want.is_nan() && got.is_nan())
        };
        let abs = if same { 0.0 } else { (want - got).abs() };
        let ulp = if same { 0 } else { expected_ordered[idx].abs_diff(actual_ordered[idx]) };
        let abs_for_stats = if abs.is_nan() { f64::INFINITY } else { abs };
        result.max_abs = result.max_abs.max(abs_for_stats);
        result.max_ulp = result.max_ulp.max(ulp);
        result.ulp_histogram[ulp_bucket(ulp)] += 1;
        result.abs_histogram[abs_bucket(abs_for_stats)] += 1;
        if !same && farthest.is_none_or(|(_, most, most_abs)| (ulp, abs_for_stats) > (most, most_abs)) {
            farthest = Some((idx, ulp, abs_for_stats));
        }
        // A non-finite value on either side matches only itself: NaN only
        // NaN, and an infinity only the same infinity. Without this rule
        // `rtol * |inf|` would accept any finite value, or even the other
        // infinity, and one ULP separates f32::MAX from +inf.
        let both_finite = want.is_finite() && got.is_finite() && !integral;
        let ok = same
            || (both_finite
                && match tolerance {
                    Tolerance::Exact => false,
                    Tolerance::Close { rtol, atol } => abs <= atol + rtol * want.abs(),
                    Tolerance::Ulp(n) => ulp <= n,
                });
        // Rank failures by how far past the tolerance they are.
        let excess = if ok { 0.0 } else { abs_for_stats };
        if !ok && worst.is_none_or(|(_, worst_excess)| excess > worst_excess) {
            worst = Some((idx, excess));
        }
    }
    result.worst = farthest.map(|(idx, ulp, abs)| WorstElement {
        output: String::new(),
        index: unravel(idx, expected.shape()),
        expected: expected_values[idx],
        actual: actual_values[idx],
        abs,
        ulp,
    });
    if let Some((idx, _)) = worst {
        let index = unravel(idx, expected.shape());
        result.failure = Some(format!(
            "worst element at index {index:?}: expected {}, got {} (abs err {:.3e}, {} ULP)",
            expected_values[idx],
            actual_values[idx],
            (expected_values[idx] - actual_values[idx]).abs(),
            expected_ordered[idx].abs_diff(actual_ordered[idx])
        ));
    }
    result
}

/// Compares string tensors of one shape: every element must be the same
/// text (a tolerance means nothing for text). A differing element counts
/// in the last bucket of both histograms, with an infinite absolute error;
/// the failure names the first one.
fn compare_texts(expected: &SharedArray<Str>, actual: &SharedArray<Str>, result: &mut Comparison) {
    let mut first_difference = None;
    for (idx, (want, got)) in expected.iter().zip(actual.iter()).enumerate() {
        if want == got {
            result.ulp_histogram[0] += 1;
            result.abs_histogram[0] += 1;
        } else {
            result.ulp_histogram[ULP_BUCKETS - 1] += 1;
            result.abs_histogram[ABS_BUCKETS - 1] += 1;
            result.max_abs = f64::INFINITY;
            first_difference.get_or_insert((idx, want, got));
        }
    }
    if let Some((idx, want, got)) = first_difference {
        let index = unravel(idx, expected.shape());
        result.failure = Some(format!("first differing element at index {index:?}: expected {want:?}, got {got:?}"));
    }
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (axis, &dim) in shape.iter().enumerate().rev() {
        if dim > 0 {
            index[axis] = flat % dim;
            flat /= dim;
        }
    }
    index
}

/// Maps each element to an integer whose difference counts representable
/// values between two floats (the ULP distance). Integers map to themselves.
fn ordered_bits(tensor: &Tensor) -> Vec<i64> {
    fn order(bits: u64, sign_bit: u64) -> i64 {
        if bits & sign_bit != 0 { -((bits & !sign_bit) as i64) } else { bits as i64 }
    }
    match tensor {
        Tensor::F32(array) => array.iter().map(|v| order(u64::from(v.to_bits()), 1 << 31)).collect(),
        Tensor::F64(array) => array.iter().map(|v| order(v.to_bits(), 1 << 63)).collect(),
        Tensor::F16(array) => array.iter().map(|v| order(u64::from(v.to_bits()), 1 << 15)).collect(),
        Tensor::BF16(array) => array.iter().map(|v| order(u64::from(v.to_bits()), 1 << 15)).collect(),
        Tensor::I8(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::I16(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::I32(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::I64(array) => array.iter().copied().collect(),
        Tensor::U8(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::U16(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::U32(array) => array.iter().map(|&v| i64::from(v)).collect(),
        // Shifted by 2^63 so that the order and differences stay exact.
        Tensor::U64(array) => array.iter().map(|&v| (v ^ (1 << 63)) as i64).collect(),
        Tensor::Bool(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::F8E4M3FN(array) => array.iter().map(|v| order(u64::from(v.0), 1 << 7)).collect(),
        Tensor::F8E4M3FNUZ(array) => array.iter().map(|v| order(u64::from(v.0), 1 << 7)).collect(),
        Tensor::F8E5M2(array) => array.iter().map(|v| order(u64::from(v.0), 1 << 7)).collect(),
        Tensor::F8E5M2FNUZ(array) => array.iter().map(|v| order(u64::from(v.0), 1 << 7)).collect(),
        Tensor::F4E2M1(array) => array.iter().map(|v| order(u64::from(v.0), 1 << 3)).collect(),
        // Unsigned powers of two: the code is the order.
        Tensor::F8E8M0(array) => array.iter().map(|v| i64::from(v.0)).collect(),
        Tensor::I4(array) => array.iter().map(|v| i64::from(v.0)).collect(),
        Tensor::U4(array) => array.iter().map(|v| i64::from(v.0)).collect(),
        Tensor::I2(array) => array.iter().map(|v| i64::from(v.0)).collect(),
        Tensor::U2(array) => array.iter().map(|v| i64::from(v.0)).collect(),
        // Text has no numeric order (`compare` checks strings for equality
        // in `compare_texts` instead).
        Tensor::String(array) => vec![0; array.len()],
    }
}
