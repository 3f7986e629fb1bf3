//! Attention: scaled dot-product attention over heads, with masks, a KV
//! cache, grouped-query heads and soft-capping.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Attention.html>
//!
//! | opset | change                                                        |
//! |-------|---------------------------------------------------------------|
//! | 23    | first version                                                 |
//! | 24    | `nonpad_kv_seqlen` input (an external KV cache)               |
//! | 25    | `left_window_size`, `right_window_size` (a sliding window);   |
//! |       | `q_num_heads`/`kv_num_heads` refused with 4-D inputs          |
//!
//! Per batch item `b` and query head `h` (key/value head `h / (Hq / Hkv)`,
//! so grouped-query and multi-query attention read their shared head in
//! place):
//!
//! ```text
//! S = (Q·√scale)(K·√scale)ᵀ          [Sq, T]   T = past + kv length
//! S = softcap·tanh(S / softcap)      when softcap > 0
//! S = S + bias                       mask, causal, padding, window
//! P = softmax(S) over keys           a row whose bias is all -inf is 0
//! Y = P·V                            [Sq, Dv]
//! ```
//!
//! The bias adds, in order, the mask (a bool mask gives 0 where true and
//! -inf where false; a numeric mask is added as it is; its last axis, when
//! shorter than T, is padded with -inf), the causal frontier (key `j` is
//! allowed for query `i` iff `j <= i + offset`), the padding of an external
//! cache (`j < nonpad_kv_seqlen[b]`) and the sliding window. `offset` is
//! the past length with a cache, `nonpad_kv_seqlen[b] - Sq` with an
//! external cache, 0 otherwise.
//!
//! Both products run on the GEMM kernel ([`crate::kernels::gemm`]) and the
//! softmax on the softmax kernel ([`crate::kernels::softmax`]), one job per
//! block of up to 128 query rows of a `(b, h)` pair (so a single long head
//! splits too) through
//! [`crate::kernels::Parallel::for_blocks_by_work`]: each job is serial
//! and the cut depends only on the sizes, so results
//! are bitwise the same for any thread count. Computation is in float32
//! (float64 for float64 inputs, or when `softmax_precision` asks for
//! double); float16 and bfloat16 values are rounded back to their type
//! where the reference rounds them (the scaled Q and K, the scores, the
//! softcap steps, the biased scores and the probabilities), so results
//! track it closely.
//!
//! `qk_matmul_output_mode` picks the fourth output: 0 the raw product, 1
//! after softcap, 2 after the bias, 3 the probabilities. Mode 0 with a
//! softcap is the product before softcap, as the spec and the schema's
//! function body have it (`onnx.reference`'s Python gives the softcapped
//! product there; no node test covers the pair). The fully-masked
//! row guard follows the spec's errata: such a row of `Y` and of the mode-3
//! output is zero, not NaN.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use num_traits::Float;

use super::{ExecCtx, FLOATS_BF16, Inputs, Op, OutputSet, Registry, check_dtype, first_output, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::Parallel;
use crate::kernels::gemm::{GemmElem, MatRef};
use crate::kernels::softmax::{SoftmaxFloat, softmax};
use crate::ops::cast::cast;
use crate::tensor::{DType, Element, Tensor};

const OP: &str = "Attention";

/// Query rows per job: enough that the GEMM kernel's packing of the keys
/// and values pays off (32 rows ran about 10% slower than 128 on 8 heads ×
/// 256 queries × 64, noisy machine), few enough that one long head splits.
const ROWS: usize = 128;

/// Registers Attention.
pub fn register(reg: &mut Registry) {
    reg.add("", "Attention", &[23, 24, 25], |_| FLOATS_BF16, Attention::from_node);
}

/// What the optional fourth output holds (`qk_matmul_output_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkOutput {
    /// 0: the scaled product of Q and K.
    Product,
    /// 1: after softcap.
    Softcapped,
    /// 2: after the mask and the other biases are added.
    Biased,
    /// 3: the softmax probabilities.
    Probabilities,
}

/// Attention.
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// The schema version (24 adds `nonpad_kv_seqlen`, 25 the window).
    pub version: i64,
    /// `is_causal`.
    pub is_causal: bool,
    /// `q_num_heads` (needed for 3-D inputs).
    pub q_num_heads: Option<usize>,
    /// `kv_num_heads` (needed for 3-D inputs).
    pub kv_num_heads: Option<usize>,
    /// `scale`; `1/sqrt(head_size)` when absent.
    pub scale: Option<f32>,
    /// `softcap`; 0 disables it.
    pub softcap: f32,
    /// What the fourth output holds.
    pub qk_output: QkOutput,
    /// Softmax in float64 (`softmax_precision` = double).
    pub softmax_f64: bool,
    /// No `softmax_precision`: the softmax runs at Q's precision (for
    /// float16 and bfloat16, each step rounded as the reference does).
    pub softmax_at_input: bool,
    /// `left_window_size` (-1: unbounded).
    pub left_window: i64,
    /// `right_window_size` (-1: unbounded).
    pub right_window: i64,
}

impl Attention {
    /// Reads the attributes of the version.
    ///
    /// # Errors
    /// A head count below 1, an unknown `qk_matmul_output_mode` or
    /// `softmax_precision`, a negative or non-finite softcap or scale, a
    /// window size below -1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let is_causal = match attrs.i64("is_causal")?.unwrap_or(0) {
            0 => false,
            1 => true,
            other => return Err(attrs.error("is_causal", format!("must be 0 or 1, got {other}"))),
        };
        let mut heads = |name: &str| -> Result<Option<usize>, LoadError> {
            match attrs.i64(name)? {
                None => Ok(None),
                Some(n) if n >= 1 => usize::try_from(n).map(Some).map_err(|_| attrs.error(name, "too large")),
                Some(n) => Err(attrs.error(name, format!("must be at least 1, got {n}"))),
            }
        };
        let q_num_heads = heads("q_num_heads")?;
        let kv_num_heads = heads("kv_num_heads")?;
        let scale = attrs.f32("scale")?;
        if let Some(scale) = scale
            && !(scale.is_finite() && scale >= 0.0)
        {
            return Err(attrs.error("scale", format!("must be a non-negative number, got {scale}")));
        }
        let softcap = attrs.f32("softcap")?.unwrap_or(0.0);
        if !(softcap.is_finite() && softcap >= 0.0) {
            return Err(attrs.error("softcap", format!("must be a non-negative number, got {softcap}")));
        }
        let qk_output = match attrs.i64("qk_matmul_output_mode")?.unwrap_or(0) {
            0 => QkOutput::Product,
            1 => QkOutput::Softcapped,
            2 => QkOutput::Biased,
            3 => QkOutput::Probabilities,
            other => return Err(attrs.error("qk_matmul_output_mode", format!("must be 0 to 3, got {other}"))),
        };
        let softmax_precision = attrs.i64("softmax_precision")?;
        let softmax_f64 = match softmax_precision {
            None => false,
            Some(code) => match i32::try_from(code).ok().and_then(DType::from_onnx_code) {
                Some(DType::F64) => true,
                Some(DType::F32 | DType::F16 | DType::BF16) => false,
                _ => return Err(attrs.error("softmax_precision", format!("must be a float type code, got {code}"))),
            },
        };
        let (mut left_window, mut right_window) = (-1, -1);
        if version >= 25 {
            for (name, slot) in [("left_window_size", &mut left_window), ("right_window_size", &mut right_window)] {
                let value = attrs.i64(name)?.unwrap_or(-1);
                if value < -1 {
                    return Err(attrs.error(name, format!("must be -1 or non-negative, got {value}")));
                }
                *slot = value;
            }
        }
        Ok(Attention {
            version,
            is_causal,
            q_num_heads,
            kv_num_heads,
            scale,
            softcap,
            qk_output,
            softmax_f64,
            softmax_at_input: softmax_precision.is_none(),
            left_window,
            right_window,
        })
    }
}

fn invalid(reason: String) -> OpError {
    OpError::Invalid { op: OP, reason }
}

/// The sizes of one run, checked.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    batch: usize,
    q_heads: usize,
    kv_heads: usize,
    q_len: usize,
    kv_len: usize,
    past_len: usize,
    head: usize,
    v_head: usize,
    /// Inputs are `[batch, seq, heads·head]` (else `[batch, heads, seq, head]`).
    three_d: bool,
}

impl Plan {
    fn total(&self) -> usize {
        self.past_len + self.kv_len
    }

    /// Query heads per key/value head.
    fn group(&self) -> usize {
        self.q_heads.checked_div(self.kv_heads).unwrap_or(1)
    }
}

/// A mask broadcast to `[batch, q_heads, q_len, total]`, its last axis
/// possibly shorter (the rest is -inf).
struct Mask<F> {
    values: Vec<F>,
    /// Element strides for `b`, `h`, `i`, `j` (0 on broadcast axes).
    strides: [usize; 4],
    len: usize,
}

impl<F: Float> Mask<F> {
    fn at(&self, b: usize, h: usize, i: usize, j: usize) -> F {
        if j >= self.len {
            return F::neg_infinity();
        }
        let [sb, sh, si, sj] = self.strides;
        self.values[b * sb + h * sh + i * si + j * sj]
    }
}

/// The computation type: float32 or float64.
trait Compute: GemmElem + SoftmaxFloat + Float + Element + Default {
    /// `self` rounded to `dtype`'s precision (kept as `Self`).
    fn round_to(self, dtype: DType) -> Self;
    /// Whether [`Compute::round_to`] changes values of this type for `dtype`.
    fn rounds_for(dtype: DType) -> bool;
    /// From float64.
    fn of(value: f64) -> Self;
}

impl Compute for f32 {
    #[inline]
    fn round_to(self, dtype: DType) -> Self {
        match dtype {
            DType::F16 => f16::from_f32(self).to_f32(),
            DType::BF16 => bf16::from_f32(self).to_f32(),
            _ => self,
        }
    }

    fn of(value: f64) -> Self {
        value as f32
    }

    fn rounds_for(dtype: DType) -> bool {
        matches!(dtype, DType::F16 | DType::BF16)
    }
}

impl Compute for f64 {
    #[inline]
    fn round_to(self, dtype: DType) -> Self {
        match dtype {
            DType::F32 => f64::from(self as f32),
            DType::F16 => f16::from_f64(self).to_f64(),
            DType::BF16 => bf16::from_f64(self).to_f64(),
            _ => self,
        }
    }

    fn of(value: f64) -> Self {
        value
    }

    fn rounds_for(dtype: DType) -> bool {
        dtype != DType::F64
    }
}

/// A tensor's elements in row-major order as `F`.
fn values<F: Compute>(tensor: &Tensor) -> Result<Vec<F>, OpError> {
    let converted = cast(tensor, F::DTYPE)?;
    let view = F::view(&converted).ok_or(OpError::UnsupportedDtype { op: OP, dtype: tensor.dtype() })?;
    Ok(view.as_slice().map_or_else(|| view.iter().copied().collect(), <[F]>::to_vec))
}

/// `[batch, seq, heads·head]` (3-D) or `[batch, heads, seq, head]` (4-D)
/// data as `[batch, heads, seq, head]`, each value mapped by `map`.
fn heads_first<F: Compute>(
    data: &[F],
    three_d: bool,
    [batch, heads, seq, head]: [usize; 4],
    map: impl Fn(F) -> F,
) -> Vec<F> {
    if !three_d || head == 0 {
        return data.iter().map(|&value| map(value)).collect();
    }
    let mut out = Vec::with_capacity(data.len());
    for b in 0..batch {
        for h in 0..heads {
            for s in 0..seq {
                let start = ((b * seq + s) * heads + h) * head;
                out.extend(data[start..start + head].iter().map(|&value| map(value)));
            }
        }
    }
    out
}

/// `past` then `new` along the sequence axis of `[batch, heads, seq, head]`.
fn concat_seq<F: Copy>(past: &[F], new: &[F], outer: usize, past_len: usize, new_len: usize, head: usize) -> Vec<F> {
    let mut out = Vec::with_capacity(outer * (past_len + new_len) * head);
    for index in 0..outer {
        out.extend_from_slice(&past[index * past_len * head..(index + 1) * past_len * head]);
        out.extend_from_slice(&new[index * new_len * head..(index + 1) * new_len * head]);
    }
    out
}

/// Everything one `(b, h)` job reads.
struct Job<'a, F> {
    plan: &'a Plan,
    op: &'a Attention,
    /// The dtype whose precision the reference computes in (Q's).
    /// `Some(dtype)` when values round to `dtype` (narrower than `F`).
    round: Option<DType>,
    q: &'a [F],
    k: &'a [F],
    v: &'a [F],
    mask: Option<&'a Mask<F>>,
    nonpad: Option<&'a [i64]>,
    keep_scores: bool,
    /// Query rows per job (the last job of a head may have fewer).
    rows: usize,
    /// Jobs per (batch item, head).
    blocks_per_head: usize,
}

impl<F: Compute> Job<'_, F> {
    /// The keys `lo..hi` that query `i` of batch item `b` may attend by the
    /// causal frontier (`j <= i + offset`), the external cache's padding
    /// (`j < nonpad_kv_seqlen[b]`) and the window; the others get -inf.
    fn allowed(&self, b: usize, i: usize) -> (usize, usize) {
        let total = self.plan.total() as i64;
        let offset = match (self.plan.past_len, self.nonpad) {
            (0, Some(nonpad)) => nonpad[b].saturating_sub(self.plan.q_len as i64),
            (past, _) => past as i64,
        };
        let frontier = (i as i64).saturating_add(offset);
        let (mut lo, mut hi) = (0, total);
        if self.op.is_causal {
            hi = hi.min(frontier.saturating_add(1));
        }
        if let Some(nonpad) = self.nonpad {
            hi = hi.min(nonpad[b]);
        }
        if self.op.left_window >= 0 {
            lo = lo.max(frontier.saturating_sub(self.op.left_window));
        }
        if self.op.right_window >= 0 {
            hi = hi.min(frontier.saturating_add(self.op.right_window).saturating_add(1));
        }
        let clamp = |value: i64| value.clamp(0, total) as usize;
        (clamp(lo), clamp(hi))
    }

    /// Adds the bias to query `i`'s row of scores; returns whether every
    /// key is masked (the bias is -inf throughout).
    fn add_bias(&self, row: &mut [F], b: usize, h: usize, i: usize) -> bool {
        let neg_inf = F::neg_infinity();
        let (lo, hi) = self.allowed(b, i);
        let round = |value: F| self.round.map_or(value, |dtype| value.round_to(dtype));
        let Some(mask) = self.mask else {
            for (j, value) in row.iter_mut().enumerate() {
                let bias = if j < lo || j >= hi { neg_inf } else { F::zero() };
                *value = round(*value + bias);
            }
            return lo >= hi;
        };
        let mut bias_max = neg_inf;
        for (j, value) in row.iter_mut().enumerate() {
            let value_of_mask = mask.at(b, h, i, j);
            let bias = if j < lo || j >= hi { value_of_mask + neg_inf } else { value_of_mask };
            bias_max = bias_max.max(bias);
            *value = round(*value + bias);
        }
        bias_max == neg_inf
    }

    /// Computes job `index` (query rows `r·R..` of head `b·Hq + h`, `R`
    /// rows per job) into `block`: scores `[R, T]`, then `Y` `[R, Dv]`,
    /// then (when kept) the pre-softmax scores `[R, T]`; a head's last job
    /// may fill fewer rows.
    fn run(&self, index: usize, block: &mut [F]) {
        let plan = self.plan;
        let (q_len, total, head, v_head) = (plan.q_len, plan.total(), plan.head, plan.v_head);
        let (head_index, row_block) = (index / self.blocks_per_head, index % self.blocks_per_head);
        let (b, h) = (head_index / plan.q_heads, head_index % plan.q_heads);
        let kv = b * plan.kv_heads + h / plan.group();
        let first = row_block * self.rows;
        let n_rows = self.rows.min(q_len - first);
        let (scores, rest) = block.split_at_mut(self.rows * total);
        let (y, kept) = rest.split_at_mut(self.rows * v_head);
        let (scores, y) = (&mut scores[..n_rows * total], &mut y[..n_rows * v_head]);
        let kept = if self.keep_scores { &mut kept[..n_rows * total] } else { kept };
        let round = |value: F| self.round.map_or(value, |dtype| value.round_to(dtype));
        let q = MatRef::row_major(&self.q[(head_index * q_len + first) * head..], n_rows, head);
        let k_t = MatRef::row_major(&self.k[kv * total * head..], head, total);
        F::gemm_serial(q, k_t, scores, F::ONE, F::ZERO);
        if self.round.is_some() {
            scores.iter_mut().for_each(|value| *value = round(*value));
        }
        if self.keep_scores && self.op.qk_output == QkOutput::Product {
            kept.copy_from_slice(scores);
        }
        if self.op.softcap > 0.0 {
            let cap = round(F::of(f64::from(self.op.softcap)));
            for value in scores.iter_mut() {
                *value = round(round(round(*value / cap).tanh()) * cap);
            }
        }
        if self.keep_scores && self.op.qk_output == QkOutput::Softcapped {
            kept.copy_from_slice(scores);
        }
        let mut masked_rows = vec![false; n_rows];
        for (i, row) in scores.chunks_mut(total.max(1)).enumerate() {
            masked_rows[i] = self.add_bias(row, b, h, first + i);
        }
        if self.keep_scores && self.op.qk_output == QkOutput::Biased {
            kept.copy_from_slice(scores);
        }
        // A row of -inf scores (without a fully masking bias) gives 0, as
        // in the reference, where the softmax kernel would give NaN.
        for row in scores.chunks(total.max(1)).zip(masked_rows.iter_mut()) {
            if row.0.iter().all(|&value| value == F::neg_infinity()) {
                *row.1 = true;
            }
        }
        let half = self.round.filter(|dtype| matches!(dtype, DType::F16 | DType::BF16));
        if let (true, true, Some(dtype)) = (total > 0, self.op.softmax_at_input, half) {
            scores.chunks_mut(total).for_each(|row| softmax_rounded(row, dtype));
        } else if total > 0 {
            softmax(scores, total, 1, &Parallel::serial());
        }
        for (row, &masked) in scores.chunks_mut(total.max(1)).zip(&masked_rows) {
            if masked {
                row.fill(F::zero());
            } else if self.round.is_some() {
                row.iter_mut().for_each(|value| *value = round(*value));
            }
        }
        let v = MatRef::row_major(&self.v[kv * total * v_head..], total, v_head);
        F::gemm_serial(MatRef::row_major(scores, n_rows, total), v, y, F::ONE, F::ZERO);
    }
}

/// Softmax of one row at the precision of `dtype` (float16 or bfloat16),
/// each step rounded as numpy rounds it on such arrays: the maximum (0 for
/// an all -inf row), `exp(x - max)`, the sum (bfloat16 adds in its own
/// precision one element after the other; float16 sums in float32 and
/// rounds once), and the quotient.
fn softmax_rounded<F: Compute>(row: &mut [F], dtype: DType) {
    let round = |value: F| value.round_to(dtype);
    let max = row
        .iter()
        .fold(F::neg_infinity(), |max, &value| if value.is_nan() || max.is_nan() { F::nan() } else { max.max(value) });
    let max = if max == F::neg_infinity() { F::zero() } else { max };
    for value in row.iter_mut() {
        *value = round(round(*value - max).exp());
    }
    let sum = if dtype == DType::BF16 {
        row.iter().fold(F::zero(), |sum, &value| round(sum + value))
    } else {
        round(row.iter().fold(F::zero(), |sum, &value| sum + value))
    };
    let sum = if sum == F::zero() { F::one() } else { sum };
    for value in row.iter_mut() {
        *value = round(*value / sum);
    }
}

impl Attention {
    /// Checks the shapes and attributes against each other.
    fn plan(&self, q: &[usize], k: &[usize], v: &[usize]) -> Result<Plan, OpError> {
        if q.len() != k.len() || q.len() != v.len() || !(q.len() == 3 || q.len() == 4) {
            return Err(invalid(format!(
                "Q {q:?}, K {k:?} and V {v:?} must all be 3-D or all be 4-D (or differ in rank)"
            )));
        }
        let three_d = q.len() == 3;
        let (q_heads, kv_heads, q_len, kv_len, head, v_head) = if three_d {
            let (Some(q_heads), Some(kv_heads)) = (self.q_num_heads, self.kv_num_heads) else {
                return Err(invalid("3-D inputs need the q_num_heads and kv_num_heads attributes".into()));
            };
            for (name, shape, heads) in [("Q", q, q_heads), ("K", k, kv_heads), ("V", v, kv_heads)] {
                if shape[2] % heads != 0 {
                    return Err(invalid(format!(
                        "{name}'s hidden size {} is not a multiple of its {heads} heads",
                        shape[2]
                    )));
                }
            }
            (q_heads, kv_heads, q[1], k[1], q[2] / q_heads, v[2] / kv_heads)
        } else {
            if self.version >= 25 && (self.q_num_heads.is_some() || self.kv_num_heads.is_some()) {
                return Err(invalid("q_num_heads and kv_num_heads must not be given with 4-D inputs".into()));
            }
            for (name, attr, dim) in
                [("q_num_heads", self.q_num_heads, q[1]), ("kv_num_heads", self.kv_num_heads, k[1])]
            {
                if attr.is_some_and(|attr| attr != dim) {
                    return Err(invalid(format!("{name} {attr:?} disagrees with the inputs' {dim} heads")));
                }
            }
            if v[1] != k[1] {
                return Err(invalid(format!("K {k:?} and V {v:?} have different head counts")));
            }
            (q[1], k[1], q[2], k[2], q[3], v[3])
        };
        if k[0] != q[0] || v[0] != q[0] {
            return Err(invalid(format!("Q {q:?}, K {k:?} and V {v:?} have different batch sizes")));
        }
        let k_head = if three_d { k[2] / kv_heads } else { k[3] };
        if k_head != head {
            return Err(invalid(format!("Q's head size {head} differs from K's {k_head}")));
        }
        let v_len = if three_d { v[1] } else { v[2] };
        if v_len != kv_len {
            return Err(invalid(format!("K {k:?} and V {v:?} have different sequence lengths")));
        }
        if (kv_heads == 0 && q_heads != 0) || (kv_heads != 0 && q_heads % kv_heads != 0) {
            return Err(invalid(format!("{q_heads} query heads are not a multiple of {kv_heads} key/value heads")));
        }
        Ok(Plan { batch: q[0], q_heads, kv_heads, q_len, kv_len, past_len: 0, head, v_head, three_d })
    }

    /// The mask as `F`, broadcast to `[batch, q_heads, q_len, ≤ total]`.
    fn mask<F: Compute>(&self, mask: &Tensor, plan: &Plan) -> Result<Mask<F>, OpError> {
        let shape = mask.shape();
        if shape.is_empty() || shape.len() > 4 {
            return Err(invalid(format!("attn_mask {shape:?} must have 1 to 4 axes")));
        }
        let mut dims = vec![1; 4 - shape.len()];
        dims.extend_from_slice(shape);
        let targets = [plan.batch, plan.q_heads, plan.q_len];
        let total = plan.total();
        if (0..3).any(|axis| dims[axis] != 1 && dims[axis] != targets[axis]) || dims[3] > total {
            return Err(invalid(format!(
                "attn_mask {shape:?} does not broadcast to [batch {}, heads {}, queries {}, keys {total}]",
                plan.batch, plan.q_heads, plan.q_len
            )));
        }
        let mut strides = [0; 4];
        let mut step = 1;
        for axis in (0..4).rev() {
            strides[axis] = if dims[axis] == 1 { 0 } else { step };
            step *= dims[axis];
        }
        let values = match mask {
            Tensor::Bool(array) => {
                array.iter().map(|&allowed| if allowed { F::zero() } else { F::neg_infinity() }).collect()
            }
            other => values::<F>(other)?,
        };
        Ok(Mask { values, strides, len: dims[3] })
    }

    fn typed<F: Compute>(
        &self,
        tensors: &Tensors<'_>,
        plan: &Plan,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let round = tensors.q.dtype();
        let (batch, q_heads, kv_heads) = (plan.batch, plan.q_heads, plan.kv_heads);
        let (q_len, kv_len, past_len, total) = (plan.q_len, plan.kv_len, plan.past_len, plan.total());
        let (head, v_head) = (plan.head, plan.v_head);
        let scale = self.scale.map_or_else(|| 1.0 / (head as f64).sqrt(), f64::from);
        let factor = F::of(scale.sqrt()).round_to(round);
        let scaled = |value: F| (value * factor).round_to(round);
        let q = heads_first(&values::<F>(tensors.q)?, plan.three_d, [batch, q_heads, q_len, head], scaled);
        let k_new = heads_first(&values::<F>(tensors.k)?, plan.three_d, [batch, kv_heads, kv_len, head], |x| x);
        let v_new = heads_first(&values::<F>(tensors.v)?, plan.three_d, [batch, kv_heads, kv_len, v_head], |x| x);
        let outer = batch * kv_heads;
        let (k_all, v_all) = match (tensors.past_key, tensors.past_value) {
            (Some(past_key), Some(past_value)) => (
                concat_seq(&values::<F>(past_key)?, &k_new, outer, past_len, kv_len, head),
                concat_seq(&values::<F>(past_value)?, &v_new, outer, past_len, kv_len, v_head),
            ),
            _ => (k_new, v_new),
        };
        if outputs.wanted(1) {
            let present = ArrayD::from_shape_vec(IxDyn(&[batch, kv_heads, total, head]), k_all.clone())
                .map_err(|err| invalid(err.to_string()))?;
            outputs.set(1, cast(&F::wrap(present), tensors.k.dtype())?);
        }
        if outputs.wanted(2) {
            let present = ArrayD::from_shape_vec(IxDyn(&[batch, kv_heads, total, v_head]), v_all.clone())
                .map_err(|err| invalid(err.to_string()))?;
            outputs.set(2, cast(&F::wrap(present), tensors.v.dtype())?);
        }
        // The scaled keys transposed per head, `[batch·kv_heads, head, total]`,
        // so the first product reads a row-major right operand.
        let mut k = vec![F::zero(); k_all.len()];
        for (src, dst) in k_all.chunks((total * head).max(1)).zip(k.chunks_mut((total * head).max(1))) {
            for (j, key) in src.chunks(head.max(1)).enumerate() {
                for (d, &value) in key.iter().enumerate() {
                    dst[d * total + j] = scaled(value);
                }
            }
        }
        let mask = tensors.mask.map(|mask| self.mask::<F>(mask, plan)).transpose()?;
        let keep_scores = outputs.wanted(3) && self.qk_output != QkOutput::Probabilities;
        // Jobs of up to ROWS query rows of one head: the cut depends only
        // on the sizes, so results do not depend on the thread count, and
        // one long head still splits across threads.
        let rows = q_len.min(ROWS);
        let blocks_per_head = if rows == 0 { 0 } else { q_len.div_ceil(rows) };
        let scores_len = rows * total;
        let block = scores_len + rows * v_head + if keep_scores { scores_len } else { 0 };
        let n_jobs = batch * q_heads * blocks_per_head;
        let work_len = n_jobs.checked_mul(block).ok_or_else(|| invalid("the work space is too large".into()))?;
        ctx.checked_elems(OP, F::DTYPE, &[work_len])?;
        let mut work = vec![F::zero(); work_len];
        let job = Job {
            plan,
            op: self,
            round: F::rounds_for(round).then_some(round),
            q: &q,
            k: &k,
            v: &v_all,
            mask: mask.as_ref(),
            nonpad: tensors.nonpad.as_deref(),
            keep_scores,
            rows,
            blocks_per_head,
        };
        let flops = n_jobs.saturating_mul(scores_len).saturating_mul(head + v_head + 1);
        ctx.par.for_blocks_by_work(&mut work, block, flops, |index, block| job.run(index, block));

        // Where row `i` of head `head_index` starts in `work`, `offset`
        // into its job's block, with `width` elements per row there.
        let row_at = |head_index: usize, i: usize, offset: usize, width: usize| {
            (head_index * blocks_per_head + i / rows) * block + offset + (i % rows) * width
        };
        let mut y = Vec::with_capacity(batch * q_heads * q_len * v_head);
        for b in 0..batch {
            if plan.three_d {
                for i in 0..q_len {
                    for h in 0..q_heads {
                        let start = row_at(b * q_heads + h, i, scores_len, v_head);
                        y.extend_from_slice(&work[start..start + v_head]);
                    }
                }
            } else {
                for h in 0..q_heads {
                    for i in 0..q_len {
                        let start = row_at(b * q_heads + h, i, scores_len, v_head);
                        y.extend_from_slice(&work[start..start + v_head]);
                    }
                }
            }
        }
        let y_shape =
            if plan.three_d { vec![batch, q_len, q_heads * v_head] } else { vec![batch, q_heads, q_len, v_head] };
        let y = ArrayD::from_shape_vec(IxDyn(&y_shape), y).map_err(|err| invalid(err.to_string()))?;
        outputs.set(0, cast(&F::wrap(y), tensors.q.dtype())?);
        if outputs.wanted(3) {
            let from = if keep_scores { scores_len + rows * v_head } else { 0 };
            let mut qk = Vec::with_capacity(batch * q_heads * q_len * total);
            for head_index in 0..batch * q_heads {
                for i in 0..q_len {
                    let start = row_at(head_index, i, from, total);
                    qk.extend_from_slice(&work[start..start + total]);
                }
            }
            let qk = ArrayD::from_shape_vec(IxDyn(&[batch, q_heads, q_len, total]), qk)
                .map_err(|err| invalid(err.to_string()))?;
            outputs.set(3, cast(&F::wrap(qk), tensors.q.dtype())?);
        }
        Ok(())
    }
}

/// The inputs of one run.
struct Tensors<'a> {
    q: &'a Tensor,
    k: &'a Tensor,
    v: &'a Tensor,
    mask: Option<&'a Tensor>,
    past_key: Option<&'a Tensor>,
    past_value: Option<&'a Tensor>,
    nonpad: Option<Vec<i64>>,
}

impl Op for Attention {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=if self.version >= 24 { 7 } else { 6 }
    }

    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=4
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let ty = |index: usize| inputs.get(index).and_then(|input| input.ty);
        let dims = |index: usize| ty(index).and_then(|ty| ty.dims.clone());
        // Y: Q's dims with V's head size ([B, H, S, Dv], or [B, S, Hq·Dv]
        // when V's hidden size is fixed); the other outputs' dims are left
        // unknown (sums of sequence lengths).
        let y_dims = match (dims(0), dims(2)) {
            (Some(q), Some(v)) if q.len() == 4 && v.len() == 4 => {
                Some(vec![q[0].clone(), q[1].clone(), q[2].clone(), v[3].clone()])
            }
            (Some(q), Some(v)) if q.len() == 3 && v.len() == 3 => match (&v[2], self.q_num_heads, self.kv_num_heads) {
                (Dim::Fixed(hidden), Some(q_heads), Some(kv_heads)) if hidden % kv_heads == 0 => {
                    Some(vec![q[0].clone(), q[1].clone(), Dim::Fixed(hidden / kv_heads * q_heads)])
                }
                _ => None,
            },
            _ => None,
        };
        let dtype = |index: usize| ty(index).map(|ty| ty.dtype);
        [(dtype(0), y_dims), (dtype(1), None), (dtype(2), None), (dtype(0), None)]
            .into_iter()
            .take(n_outputs)
            .map(|(dtype, dims)| dtype.map(|dtype| ValueType { dtype, dims }))
            .collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, OP)
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let q = required(inputs, 0, OP)?;
        let k = required(inputs, 1, OP)?;
        let v = required(inputs, 2, OP)?;
        let mut optional = (3..7).map(|index| inputs.get_mut(index).and_then(Option::take)).collect::<Vec<_>>();
        let nonpad = optional.pop().flatten();
        let past_value = optional.pop().flatten();
        let past_key = optional.pop().flatten();
        let mask = optional.pop().flatten();
        for tensor in [&q, &k, &v] {
            check_dtype(OP, tensor.dtype(), FLOATS_BF16)?;
        }
        if k.dtype() != q.dtype() {
            return Err(invalid(format!("Q ({}) and K ({}) must have one type", q.dtype(), k.dtype())));
        }
        let mut plan = self.plan(q.shape(), k.shape(), v.shape())?;
        match (&past_key, &past_value) {
            (None, None) => {}
            (Some(past_key), Some(past_value)) => {
                let (pk, pv) = (past_key.shape(), past_value.shape());
                let past_len = pk.get(2).copied().unwrap_or(0);
                if pk != [plan.batch, plan.kv_heads, past_len, plan.head]
                    || pv != [plan.batch, plan.kv_heads, past_len, plan.v_head]
                {
                    return Err(invalid(format!(
                        "past_key {pk:?} and past_value {pv:?} must be [batch {}, kv heads {}, past, {}] and [.., {}]",
                        plan.batch, plan.kv_heads, plan.head, plan.v_head
                    )));
                }
                if past_key.dtype() != k.dtype() || past_value.dtype() != v.dtype() {
                    return Err(invalid("past_key and past_value must have the types of K and V".into()));
                }
                plan.past_len = past_len;
            }
            _ => return Err(invalid("past_key and past_value must be given together".into())),
        }
        let nonpad = match nonpad {
            None => None,
            Some(_) if past_key.is_some() => {
                return Err(invalid("nonpad_kv_seqlen cannot be combined with past_key and past_value".into()));
            }
            Some(tensor) => match &*tensor {
                Tensor::I64(array) if array.shape() == [plan.batch] => Some(array.iter().copied().collect()),
                other => {
                    return Err(invalid(format!(
                        "nonpad_kv_seqlen must be int64 of shape [{}], got {} {:?}",
                        plan.batch,
                        other.dtype(),
                        other.shape()
                    )));
                }
            },
        };
        let total = plan.total();
        let (batch, q_heads, kv_heads, q_len) = (plan.batch, plan.q_heads, plan.kv_heads, plan.q_len);
        // Every (batch, head, query) row and (batch, kv head, key) costs
        // work even when the head size is 0, so their counts are bounded
        // too.
        for shape in [
            vec![batch, q_heads, q_len],
            vec![batch, kv_heads, total],
            vec![batch, q_heads, q_len, plan.v_head],
            vec![batch, kv_heads, total, plan.head.max(plan.v_head)],
            vec![batch, q_heads, q_len, total],
            // One job's block (scores, kept scores, Y), bounded even when
            // the batch or the head count is 0.
            vec![3, q_len, total.max(plan.v_head)],
            vec![total, plan.head.max(plan.v_head)],
        ] {
            ctx.checked_elems(OP, DType::F64, &shape)?;
        }
        let tensors = Tensors {
            q: &q,
            k: &k,
            v: &v,
            mask: mask.as_deref(),
            past_key: past_key.as_deref(),
            past_value: past_value.as_deref(),
            nonpad,
        };
        if q.dtype() == DType::F64 || self.softmax_f64 {
            self.typed::<f64>(&tensors, &plan, ctx, outputs)
        } else {
            self.typed::<f32>(&tensors, &plan, ctx, outputs)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::ArrayD;

    use super::*;

    /// Deterministic values in [-2, 2).
    fn values(shape: &[usize], seed: u64) -> ArrayD<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        ArrayD::from_shape_fn(IxDyn(shape), |_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
        })
    }

    /// One configuration; the reference below reads it independently of
    /// the op's code.
    #[derive(Clone)]
    struct Case {
        batch: usize,
        q_heads: usize,
        kv_heads: usize,
        q_len: usize,
        kv_len: usize,
        past_len: usize,
        head: usize,
        v_head: usize,
        three_d: bool,
        /// Shape and whether the mask is bool (true where the value > -1.2).
        mask: Option<(Vec<usize>, bool)>,
        nonpad: Option<Vec<i64>>,
        op: Attention,
    }

    fn op() -> Attention {
        Attention {
            version: 25,
            is_causal: false,
            q_num_heads: None,
            kv_num_heads: None,
            scale: None,
            softcap: 0.0,
            qk_output: QkOutput::Product,
            softmax_f64: false,
            softmax_at_input: true,
            left_window: -1,
            right_window: -1,
        }
    }

    fn case() -> Case {
        Case {
            batch: 2,
            q_heads: 4,
            kv_heads: 2,
            q_len: 3,
            kv_len: 5,
            past_len: 0,
            head: 4,
            v_head: 3,
            three_d: false,
            mask: None,
            nonpad: None,
            op: op(),
        }
    }

    struct Data {
        q: ArrayD<f64>,
        k: ArrayD<f64>,
        v: ArrayD<f64>,
        mask: Option<ArrayD<f64>>,
        past_key: Option<ArrayD<f64>>,
        past_value: Option<ArrayD<f64>>,
    }

    fn data(case: &Case) -> Data {
        let (b, hq, hk) = (case.batch, case.q_heads, case.kv_heads);
        let shape = |heads: usize, len: usize, size: usize| {
            if case.three_d { vec![b, len, heads * size] } else { vec![b, heads, len, size] }
        };
        let past = case.past_len > 0;
        Data {
            q: values(&shape(hq, case.q_len, case.head), 1),
            k: values(&shape(hk, case.kv_len, case.head), 2),
            v: values(&shape(hk, case.kv_len, case.v_head), 3),
            mask: case.mask.as_ref().map(|(shape, _)| values(shape, 4)),
            past_key: past.then(|| values(&[b, hk, case.past_len, case.head], 5)),
            past_value: past.then(|| values(&[b, hk, case.past_len, case.v_head], 6)),
        }
    }

    /// Attention in float64, element by element: `(Y [b, h, i, dv], the
    /// qk output [b, h, i, j])`.
    fn reference(case: &Case, data: &Data) -> (Vec<f64>, Vec<f64>) {
        let op = &case.op;
        let total = case.past_len + case.kv_len;
        // Element (b, h, s, d) of a [b, h, s, d] or [b, s, h·d] input whose
        // heads have `size` elements, the past cache coming first.
        let read =
            |array: &ArrayD<f64>, past: Option<&ArrayD<f64>>, size: usize, b: usize, h: usize, s: usize, d: usize| {
                let s = match past {
                    Some(past) if s < case.past_len => return past[[b, h, s, d]],
                    Some(_) => s - case.past_len,
                    None => s,
                };
                if case.three_d { array[[b, s, h * size + d]] } else { array[[b, h, s, d]] }
            };
        let scale = op.scale.map_or(1.0 / (case.head as f64).sqrt(), f64::from);
        let (mut y, mut qk) = (Vec::new(), Vec::new());
        for b in 0..case.batch {
            for h in 0..case.q_heads {
                let kvh = h / (case.q_heads / case.kv_heads);
                for i in 0..case.q_len {
                    let mut raw = vec![0.0; total];
                    let mut capped = vec![0.0; total];
                    let mut bias = vec![0.0; total];
                    for j in 0..total {
                        let dot: f64 = (0..case.head)
                            .map(|d| {
                                read(&data.q, None, case.head, b, h, i, d)
                                    * read(&data.k, data.past_key.as_ref(), case.head, b, kvh, j, d)
                            })
                            .sum();
                        raw[j] = dot * scale;
                        capped[j] = if op.softcap > 0.0 {
                            f64::from(op.softcap) * (raw[j] / f64::from(op.softcap)).tanh()
                        } else {
                            raw[j]
                        };
                        if let (Some((shape, is_bool)), Some(mask)) = (&case.mask, &data.mask) {
                            let last = shape[shape.len() - 1];
                            let value = if j >= last {
                                f64::NEG_INFINITY
                            } else {
                                let full = [b, h, i, j];
                                let index: Vec<usize> = shape
                                    .iter()
                                    .enumerate()
                                    .map(|(axis, &size)| if size == 1 { 0 } else { full[4 - shape.len() + axis] })
                                    .collect();
                                let value = mask[IxDyn(&index)];
                                if *is_bool { if value > -1.2 { 0.0 } else { f64::NEG_INFINITY } } else { value }
                            };
                            bias[j] += value;
                        }
                        let offset = match &case.nonpad {
                            Some(nonpad) if case.past_len == 0 => nonpad[b] - case.q_len as i64,
                            _ => case.past_len as i64,
                        };
                        let frontier = i as i64 + offset;
                        if op.is_causal && j as i64 > frontier {
                            bias[j] = f64::NEG_INFINITY;
                        }
                        if case.nonpad.as_ref().is_some_and(|nonpad| j as i64 >= nonpad[b]) {
                            bias[j] = f64::NEG_INFINITY;
                        }
                        let diff = frontier - j as i64;
                        if (op.left_window >= 0 && diff > op.left_window)
                            || (op.right_window >= 0 && -diff > op.right_window)
                        {
                            bias[j] = f64::NEG_INFINITY;
                        }
                    }
                    let logits: Vec<f64> = capped.iter().zip(&bias).map(|(x, b)| x + b).collect();
                    let masked = bias.iter().all(|&b| b == f64::NEG_INFINITY);
                    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exps: Vec<f64> = logits.iter().map(|&x| (x - max).exp()).collect();
                    let sum: f64 = exps.iter().sum();
                    let probs: Vec<f64> = exps.iter().map(|&e| if masked { 0.0 } else { e / sum }).collect();
                    qk.extend(match op.qk_output {
                        QkOutput::Product => raw,
                        QkOutput::Softcapped => capped,
                        QkOutput::Biased => logits,
                        QkOutput::Probabilities => probs.clone(),
                    });
                    for d in 0..case.v_head {
                        y.push(
                            (0..total)
                                .map(|j| probs[j] * read(&data.v, data.past_value.as_ref(), case.v_head, b, kvh, j, d))
                                .sum(),
                        );
                    }
                }
            }
        }
        (y, qk)
    }

    fn run(case: &Case, data: &Data, dtype: DType, par: &Parallel) -> Result<Vec<Tensor>, OpError> {
        let tensor = |array: &ArrayD<f64>| cast(&Tensor::from(array.clone()), dtype).unwrap();
        let mask = match (&case.mask, &data.mask) {
            (Some((_, true)), Some(mask)) => Some(Tensor::from(mask.mapv(|v| v > -1.2))),
            (Some(_), Some(mask)) => Some(tensor(mask)),
            _ => None,
        };
        let nonpad = case
            .nonpad
            .as_ref()
            .map(|nonpad| Tensor::from(ArrayD::from_shape_vec(IxDyn(&[nonpad.len()]), nonpad.clone()).expect("shape")));
        let mut inputs: Vec<Option<Cow<'_, Tensor>>> = vec![
            Some(Cow::Owned(tensor(&data.q))),
            Some(Cow::Owned(tensor(&data.k))),
            Some(Cow::Owned(tensor(&data.v))),
            mask.map(Cow::Owned),
            data.past_key.as_ref().map(|array| Cow::Owned(tensor(array))),
            data.past_value.as_ref().map(|array| Cow::Owned(tensor(array))),
            nonpad.map(Cow::Owned),
        ];
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        let mut values: Vec<Option<Tensor>> = vec![None; 4];
        let wanted = [true; 4];
        let mut outputs = OutputSet::new(&mut values, &wanted);
        let mut op = case.op.clone();
        if case.three_d {
            op.q_num_heads = Some(case.q_heads);
            op.kv_num_heads = Some(case.kv_heads);
        }
        op.run_outputs(&mut inputs, &ctx, &mut outputs)?;
        Ok(values.into_iter().map(|value| value.expect("output")).collect())
    }

    /// Y as `[b, h, i, dv]` whatever the input rank.
    fn y_heads_first(case: &Case, y: &Tensor) -> Vec<f64> {
        let values = y.to_f64_vec();
        if !case.three_d {
            return values;
        }
        let mut out = Vec::new();
        for b in 0..case.batch {
            for h in 0..case.q_heads {
                for i in 0..case.q_len {
                    let start = ((b * case.q_len + i) * case.q_heads + h) * case.v_head;
                    out.extend_from_slice(&values[start..start + case.v_head]);
                }
            }
        }
        out
    }

    fn check(case: &Case) {
        let data = data(case);
        let (want_y, want_qk) = reference(case, &data);
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-5)] {
            let got = run(case, &data, dtype, &Parallel::serial()).expect("runs");
            for (what, got, want) in
                [("Y", y_heads_first(case, &got[0]), &want_y), ("qk", got[3].to_f64_vec(), &want_qk)]
            {
                assert_eq!(got.len(), want.len(), "{what} {dtype}");
                for (idx, (got, want)) in got.iter().zip(want).enumerate() {
                    let same = got == want || (got - want).abs() <= tol * (1.0 + want.abs());
                    assert!(same, "{what} {dtype} [{idx}]: {got} vs {want}");
                }
            }
            let total = case.past_len + case.kv_len;
            assert_eq!(got[1].shape(), [case.batch, case.kv_heads, total, case.head]);
            assert_eq!(got[2].shape(), [case.batch, case.kv_heads, total, case.v_head]);
        }
    }

    #[test]
    fn matches_float64_loops() {
        check(&case());
        check(&Case { three_d: true, ..case() });
        check(&Case { op: Attention { is_causal: true, qk_output: QkOutput::Probabilities, ..op() }, ..case() });
        check(&Case { op: Attention { softcap: 1.5, qk_output: QkOutput::Softcapped, ..op() }, ..case() });
        // More query rows than one job takes: heads split into row blocks.
        check(&Case {
            q_len: 130,
            kv_len: 9,
            past_len: 3,
            three_d: true,
            mask: Some((vec![2, 1, 130, 12], false)),
            op: Attention { is_causal: true, qk_output: QkOutput::Biased, ..op() },
            ..case()
        });
        check(&Case { q_len: 129, op: Attention { qk_output: QkOutput::Probabilities, ..op() }, ..case() });
        // Mode 0 is the product before softcap (as the function body has it).
        check(&Case { op: Attention { softcap: 1.5, ..op() }, ..case() });
        check(&Case {
            op: Attention { scale: Some(0.3), qk_output: QkOutput::Biased, ..op() },
            mask: Some((vec![3, 5], false)),
            ..case()
        });
        check(&Case {
            mask: Some((vec![2, 1, 3, 4], true)),
            op: Attention { qk_output: QkOutput::Biased, ..op() },
            ..case()
        });
        check(&Case {
            past_len: 2,
            mask: Some((vec![4, 1, 6], false)),
            op: Attention { is_causal: true, ..op() },
            three_d: true,
            ..case()
        });
        check(&Case {
            nonpad: Some(vec![4, 2]),
            q_len: 3,
            op: Attention { is_causal: true, qk_output: QkOutput::Probabilities, ..op() },
            ..case()
        });
        check(&Case { nonpad: Some(vec![1, 5]), q_len: 3, op: Attention { is_causal: true, ..op() }, ..case() });
        check(&Case {
            op: Attention { left_window: 1, right_window: 0, ..op() },
            mask: Some((vec![5], true)),
            ..case()
        });
        check(&Case { kv_heads: 1, kv_len: 0, op: Attention { qk_output: QkOutput::Probabilities, ..op() }, ..case() });
    }

    #[test]
    fn threads_do_not_change_bits() {
        let many_heads = Case {
            batch: 2,
            q_heads: 8,
            kv_heads: 2,
            q_len: 40,
            kv_len: 48,
            head: 32,
            v_head: 24,
            op: Attention { is_causal: true, softcap: 4.0, ..op() },
            mask: Some((vec![40, 48], false)),
            ..case()
        };
        // One long head: its query rows split across threads.
        let one_head = Case { batch: 1, q_heads: 1, kv_heads: 1, q_len: 150, kv_len: 160, ..many_heads.clone() };
        let one_head = Case { mask: Some((vec![150, 160], false)), ..one_head };
        for case in [many_heads, one_head] {
            let data = data(&case);
            let serial = run(&case, &data, DType::F32, &Parallel::serial()).expect("runs");
            for n_threads in [2, 3] {
                let par = Parallel::with_threads(n_threads).expect("pool");
                assert!(par.splits(case.batch * case.q_heads * case.q_len * case.kv_len * (case.head + case.v_head)));
                let threaded = run(&case, &data, DType::F32, &par).expect("runs");
                for (a, b) in serial.iter().zip(&threaded) {
                    assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "{n_threads} threads");
                }
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let par = Parallel::serial();
        let err = |case: &Case, data: &Data| run(case, data, DType::F32, &par).expect_err("refused").to_string();
        let base = case();
        let mut bad = data(&base);
        bad.k = values(&[2, 3, 5, 4], 2);
        bad.v = values(&[2, 3, 5, 3], 3);
        assert!(err(&base, &bad).contains("not a multiple of 3 key/value heads"), "{}", err(&base, &bad));
        let mut bad = data(&base);
        bad.q = values(&[2, 4, 3], 1);
        assert!(err(&base, &bad).contains("all be 4-D"));
        let mut bad = data(&base);
        bad.v = values(&[2, 2, 6, 3], 3);
        assert!(err(&base, &bad).contains("different sequence lengths"));
        let masked = Case { mask: Some((vec![2, 5], false)), ..case() };
        assert!(err(&masked, &data(&masked)).contains("does not broadcast"));
        let long = Case { mask: Some((vec![3, 6], false)), ..case() };
        assert!(err(&long, &data(&long)).contains("does not broadcast"));
        let mut half_cache = data(&base);
        half_cache.past_key = Some(values(&[2, 2, 1, 4], 5));
        assert!(err(&base, &half_cache).contains("given together"));
        let cached = Case { past_len: 1, nonpad: Some(vec![1, 1]), ..case() };
        assert!(err(&cached, &data(&cached)).contains("cannot be combined"));
        let three_d = Case { three_d: true, q_heads: 3, kv_heads: 3, head: 5, ..case() };
        let mut odd = data(&three_d);
        odd.q = values(&[2, 3, 14], 1);
        assert!(err(&three_d, &odd).contains("not a multiple"));
        let mut no_heads = case();
        no_heads.op.q_num_heads = Some(4);
        assert!(err(&no_heads, &data(&no_heads)).contains("must not be given with 4-D"));
        // An absurd size is refused before anything is allocated.
        let data = data(&base);
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 64 };
        let mut inputs = [
            Some(Cow::Owned(Tensor::from(data.q.clone()))),
            Some(Cow::Owned(Tensor::from(data.k.clone()))),
            Some(Cow::Owned(Tensor::from(data.v.clone()))),
        ];
        let err = base.op.run(&mut inputs, &ctx).expect_err("too large").to_string();
        assert!(err.contains("tensor size limit"), "{err}");
        // Empty inputs with absurd head and sequence counts: refused, not
        // a loop over 2^70 empty rows.
        let empty = |shape: &[usize]| Some(Cow::Owned(Tensor::zeros(DType::F32, shape)));
        let mut inputs = [empty(&[1, 1 << 30, 0]), empty(&[1, 0, 0]), empty(&[1, 0, 0])];
        let huge = Attention { q_num_heads: Some(1 << 40), kv_num_heads: Some(1 << 40), ..op() };
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 30 };
        let err = huge.run(&mut inputs, &ctx).expect_err("too large").to_string();
        assert!(err.contains("tensor size limit"), "{err}");
        // No batch, but a block per job of 2^80 scores: refused too.
        let mut inputs = [empty(&[0, 1, 1 << 40, 0]), empty(&[0, 1, 1 << 40, 0]), empty(&[0, 1, 1 << 40, 0])];
        let err = op().run(&mut inputs, &ctx).expect_err("too large").to_string();
        assert!(err.contains("tensor size limit"), "{err}");
    }
}
