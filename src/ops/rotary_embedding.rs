//! RotaryEmbedding: rotary positional embeddings (RoPE).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__RotaryEmbedding.html>
//!
//! | opset | change        |
//! |-------|---------------|
//! | 23    | first version |
//!
//! X is `[batch, heads, seq, head]` or, with the `num_heads` attribute,
//! `[batch, seq, heads·head]`. The first `rotary_embedding_dim` elements
//! of each head vector (all of them by default) form pairs `(x1, x2)`:
//! the two halves, or with `interleaved` the even and odd elements. Each
//! pair becomes `(cos·x1 - sin·x2, sin·x1 + cos·x2)`, with `cos` and `sin`
//! from row `position_ids[b, s]` of caches of shape `[positions, dim/2]`,
//! or without `position_ids` from caches of shape `[batch, seq, dim/2]`.
//! The rest of each vector passes through. Computed in float32 (the
//! reference's operations in its order, so float32 results match it
//! exactly), rounded once for float16 and bfloat16; head vectors run in
//! parallel.

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::ops::cast::cast;
use crate::tensor::{DType, Item, Tensor};

const OP: &str = "RotaryEmbedding";

/// The element types RotaryEmbedding accepts.
const DTYPES: &[DType] = &[DType::F32, DType::F16, DType::BF16];

/// Registers RotaryEmbedding.
pub fn register(reg: &mut Registry) {
    reg.add("", "RotaryEmbedding", &[23], |_| DTYPES, RotaryEmbedding::from_node);
}

/// RotaryEmbedding.
#[derive(Debug, Clone, PartialEq)]
pub struct RotaryEmbedding {
    /// Pairs are (even, odd) elements instead of (first half, second half).
    pub interleaved: bool,
    /// How many leading elements of each head rotate; 0 means all.
    pub rotary_dim: usize,
    /// Heads of a 3-D input.
    pub num_heads: Option<usize>,
}

fn invalid(reason: String) -> OpError {
    OpError::Invalid { op: OP, reason }
}

impl RotaryEmbedding {
    /// Reads `interleaved`, `rotary_embedding_dim` and `num_heads`.
    ///
    /// # Errors
    /// A negative `rotary_embedding_dim`, a `num_heads` below 1, an
    /// `interleaved` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        let interleaved = match attrs.i64("interleaved")?.unwrap_or(0) {
            0 => false,
            1 => true,
            other => return Err(attrs.error("interleaved", format!("must be 0 or 1, got {other}"))),
        };
        let rotary_dim = attrs.i64("rotary_embedding_dim")?.unwrap_or(0);
        let rotary_dim = usize::try_from(rotary_dim)
            .map_err(|_| attrs.error("rotary_embedding_dim", format!("must be non-negative, got {rotary_dim}")))?;
        let num_heads = match attrs.i64("num_heads")? {
            None => None,
            Some(n) if n >= 1 => Some(usize::try_from(n).map_err(|_| attrs.error("num_heads", "too large"))?),
            Some(n) => return Err(attrs.error("num_heads", format!("must be at least 1, got {n}"))),
        };
        Ok(RotaryEmbedding { interleaved, rotary_dim, num_heads })
    }
}

/// A float tensor's elements in row-major order as float32.
fn f32_values(tensor: &Tensor) -> Vec<f32> {
    cast(tensor, DType::F32)
        .ok()
        .and_then(|wide| wide.as_f32().ok().map(|view| view.iter().copied().collect()))
        .unwrap_or_default()
}

impl Op for RotaryEmbedding {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=4
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, OP)?;
        let cos = required(inputs, 1, OP)?;
        let sin = required(inputs, 2, OP)?;
        let position_ids = inputs.get_mut(3).and_then(Option::take);
        let dtype = x.dtype();
        check_dtype(OP, dtype, DTYPES)?;
        if cos.dtype() != dtype || sin.dtype() != dtype {
            return Err(invalid(format!(
                "X ({dtype}), cos_cache ({}) and sin_cache ({}) must have one type",
                cos.dtype(),
                sin.dtype()
            )));
        }
        let shape = x.shape().to_vec();
        // (batch, heads, seq, head) and whether X is [batch, seq, hidden].
        let (batch, heads, seq, head, three_d) = match (shape.as_slice(), self.num_heads) {
            (&[batch, seq, hidden], Some(heads)) => {
                if hidden % heads != 0 {
                    return Err(invalid(format!("hidden size {hidden} is not a multiple of num_heads {heads}")));
                }
                (batch, heads, seq, hidden / heads, true)
            }
            (&[_, _, _], None) => return Err(invalid("a 3-D input needs the num_heads attribute".into())),
            (&[batch, heads, seq, head], num_heads) => {
                if num_heads.is_some_and(|n| n != heads) {
                    return Err(invalid(format!("num_heads {num_heads:?} disagrees with X {shape:?}")));
                }
                (batch, heads, seq, head, false)
            }
            _ => return Err(invalid(format!("X {shape:?} must be 3-D or 4-D"))),
        };
        let rotary_dim = if self.rotary_dim == 0 { head } else { self.rotary_dim };
        if rotary_dim > head || rotary_dim % 2 != 0 {
            return Err(invalid(format!(
                "rotary_embedding_dim {rotary_dim} must be even and at most the head size {head}"
            )));
        }
        let half = rotary_dim / 2;
        let (cos_shape, sin_shape) = (cos.shape().to_vec(), sin.shape().to_vec());
        if cos_shape != sin_shape {
            return Err(invalid(format!("cos_cache {cos_shape:?} and sin_cache {sin_shape:?} differ in shape")));
        }
        // The cache row of each (batch, seq) position.
        let rows: Vec<usize> = match &position_ids {
            Some(ids) => {
                if ids.shape() != [batch, seq] || ids.dtype() != DType::I64 {
                    return Err(invalid(format!(
                        "position_ids must be int64 of shape [{batch}, {seq}], got {} {:?}",
                        ids.dtype(),
                        ids.shape()
                    )));
                }
                let [positions, last] = cos_shape[..] else {
                    return Err(invalid(format!("with position_ids the caches must be 2-D, got {cos_shape:?}")));
                };
                if last != half {
                    return Err(invalid(format!(
                        "the caches' last axis {last} is not rotary_embedding_dim/2 = {half}"
                    )));
                }
                let flat: Vec<i64> = i64::view(ids).map(|view| view.iter().copied().collect()).unwrap_or_default();
                flat.iter()
                    .map(|&id| {
                        usize::try_from(id).ok().filter(|&id| id < positions).ok_or_else(|| {
                            invalid(format!("position id {id} is outside the caches' {positions} positions"))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            None => {
                if cos_shape != [batch, seq, half] {
                    return Err(invalid(format!(
                        "without position_ids the caches must be [{batch}, {seq}, {half}], got {cos_shape:?}"
                    )));
                }
                (0..batch * seq).collect()
            }
        };
        let (cos, sin) = (f32_values(&cos), f32_values(&sin));
        let mut data = f32_values(&x);
        let interleaved = self.interleaved;
        ctx.par.for_row_blocks(&mut data, head, head.max(1), |index, vector| {
            let (b, s) = if three_d {
                (index / (seq * heads), (index / heads) % seq)
            } else {
                (index / (heads * seq), index % seq)
            };
            let row = rows[b * seq + s] * half;
            let (cos, sin) = (&cos[row..row + half], &sin[row..row + half]);
            for pair in 0..half {
                let (i1, i2) = if interleaved { (2 * pair, 2 * pair + 1) } else { (pair, pair + half) };
                let (x1, x2) = (vector[i1], vector[i2]);
                vector[i1] = cos[pair] * x1 - sin[pair] * x2;
                vector[i2] = sin[pair] * x1 + cos[pair] * x2;
            }
        });
        let out =
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), data).map_err(|err| invalid(err.to_string()))?;
        cast(&Tensor::from(out), dtype)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::kernels::Parallel;

    fn tensor(shape: &[usize], seed: usize) -> Tensor {
        let len: usize = shape.iter().product();
        let data: Vec<f32> = (0..len).map(|idx| (((idx * 7 + seed * 13) % 23) as f32 - 11.0) / 8.0).collect();
        Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data).expect("shape"))
    }

    fn run(op: &RotaryEmbedding, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|tensor| Some(tensor.into())).collect();
        op.run(&mut inputs, &ctx)
    }

    /// RoPE in float64, on a `[b, h, s, d]` input, written from the
    /// pairing rule: pair `p` is (p, p + dim/2), or (2p, 2p + 1).
    #[test]
    fn rotates_pairs_as_the_formula_says() {
        let (b, h, s, d, dim) = (2, 3, 4, 8, 6);
        let x = tensor(&[b, h, s, d], 1);
        let (cos, sin) = (tensor(&[10, dim / 2], 2), tensor(&[10, dim / 2], 3));
        let ids: Vec<i64> = (0..b * s).map(|idx| ((idx * 3) % 10) as i64).collect();
        let ids = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[b, s]), ids.clone()).expect("shape"));
        for interleaved in [false, true] {
            let op = RotaryEmbedding { interleaved, rotary_dim: dim, num_heads: None };
            let got = run(&op, vec![x.clone(), cos.clone(), sin.clone(), ids.clone()]).expect("runs").to_f64_vec();
            let (xv, cv, sv, iv) = (x.to_f64_vec(), cos.to_f64_vec(), sin.to_f64_vec(), ids.to_f64_vec());
            for bi in 0..b {
                for hi in 0..h {
                    for si in 0..s {
                        let base = ((bi * h + hi) * s + si) * d;
                        let pos = iv[bi * s + si] as usize;
                        let mut want = xv[base..base + d].to_vec();
                        for p in 0..dim / 2 {
                            let (i1, i2) = if interleaved { (2 * p, 2 * p + 1) } else { (p, p + dim / 2) };
                            let (c, sn) = (cv[pos * dim / 2 + p], sv[pos * dim / 2 + p]);
                            want[i1] = c * xv[base + i1] - sn * xv[base + i2];
                            want[i2] = sn * xv[base + i1] + c * xv[base + i2];
                        }
                        for k in 0..d {
                            assert!((got[base + k] - want[k]).abs() < 1e-6, "{interleaved} {bi} {hi} {si} {k}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = tensor(&[1, 2, 3, 8], 1);
        let (cos, sin) = (tensor(&[5, 4], 2), tensor(&[5, 4], 3));
        let ids = |values: Vec<i64>| Tensor::from(ArrayD::from_shape_vec(IxDyn(&[1, 3]), values).expect("shape"));
        let op = RotaryEmbedding { interleaved: false, rotary_dim: 0, num_heads: None };
        let err = run(&op, vec![x.clone(), cos.clone(), sin.clone(), ids(vec![0, 5, 1])]).expect_err("id");
        assert!(err.to_string().contains("position id 5 is outside"), "{err}");
        let odd = RotaryEmbedding { rotary_dim: 3, ..op.clone() };
        let err = run(&odd, vec![x.clone(), cos.clone(), sin.clone(), ids(vec![0, 1, 2])]).expect_err("odd");
        assert!(err.to_string().contains("must be even"), "{err}");
        let err = run(&op, vec![tensor(&[1, 3, 16], 1), cos.clone(), sin.clone()]).expect_err("3-D");
        assert!(err.to_string().contains("num_heads"), "{err}");
        let err = run(&op, vec![x.clone(), cos.clone(), sin.clone()]).expect_err("cache shape");
        assert!(err.to_string().contains("without position_ids"), "{err}");
        let err = run(&op, vec![x, tensor(&[5, 3], 2), tensor(&[5, 3], 3), ids(vec![0, 1, 2])]).expect_err("half");
        assert!(err.to_string().contains("rotary_embedding_dim/2"), "{err}");
    }
}
