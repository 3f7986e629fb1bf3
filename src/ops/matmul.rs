//! MatMul: numpy `matmul` (batched, broadcast batch axes, 1-D operands).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__MatMul.html>
//!
//! | opset | change                          |
//! |-------|---------------------------------|
//! | 1     | float16/32/64                   |
//! | 9     | 32- and 64-bit integers         |
//! | 13    | bfloat16                        |
//!
//! A 1-D A is a row (`[1, K]`) and a 1-D B a column (`[K, 1]`), the added
//! axis removed from the result. The batch axes (all but the last two)
//! broadcast as numpy does. When B has no batch axes (a weight, as in
//! `x @ W` on `[batch, tokens, features]`) and A is row-major, A's batch
//! axes fold into its rows and the product is one GEMM. Integers wrap;
//! float16 and bfloat16 compute in float32.

use super::gemm::{data, matmul_dtypes};
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, broadcast_dims};
use crate::kernels::broadcast::multidirectional;
use crate::kernels::conv::MAX_ELEMS;
use crate::kernels::gemm::{self, GemmElem, MatRef, rows_per_block};
use crate::ops::cast::cast;
use crate::ops::epilogue::Epilogue;
use crate::tensor::{DType, Element, Tensor, checked_elems};

/// Registers MatMul.
pub fn register(reg: &mut Registry) {
    reg.add("", "MatMul", &[1, 9, 13], matmul_dtypes, MatMul::from_node);
}

/// MatMul.
#[derive(Debug, Clone, PartialEq)]
pub struct MatMul {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
    /// An activation run on each block of the output (see
    /// [`crate::ops::epilogue`]).
    pub epilogue: Option<Epilogue>,
}

/// The sizes of one product, checked.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    m: usize,
    k: usize,
    n: usize,
    /// The broadcast batch shape.
    batch: Vec<usize>,
    /// Per batch axis, A's and B's element stride (0 where broadcast).
    a_strides: Vec<usize>,
    b_strides: Vec<usize>,
    /// The result's shape (1-D operands' axes removed).
    out: Vec<usize>,
}

impl MatMul {
    /// MatMul has no attributes.
    ///
    /// # Errors
    /// Never.
    pub fn from_node(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(MatMul { dtypes: matmul_dtypes(version), epilogue: None })
    }

    fn plan(a: &[usize], b: &[usize]) -> Result<Plan, OpError> {
        let invalid = |reason: String| OpError::Invalid { op: "MatMul", reason };
        if a.is_empty() || b.is_empty() {
            return Err(invalid(format!("A {a:?} and B {b:?} must have at least one axis each")));
        }
        let a2: Vec<usize> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
        let b2: Vec<usize> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let (k_b, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
        if k != k_b {
            return Err(invalid(format!("inner dimensions differ: A {a:?} has {k} columns, B {b:?} has {k_b} rows")));
        }
        let a_batch = &a2[..a2.len() - 2];
        let b_batch = &b2[..b2.len() - 2];
        let batch = multidirectional(&[a_batch, b_batch])
            .map_err(|_| invalid(format!("batch axes of A {a:?} and B {b:?} do not broadcast")))?;
        let strides = |own: &[usize], matrix: usize| -> Vec<usize> {
            // Row-major strides of `own`, aligned right with `batch`; 0 on
            // broadcast axes.
            let mut strides = vec![0; batch.len()];
            let mut step = matrix;
            for (axis, &size) in own.iter().enumerate().rev() {
                let target = batch.len() - own.len() + axis;
                strides[target] = if size == 1 { 0 } else { step };
                step *= size;
            }
            strides
        };
        let a_strides = strides(a_batch, m * k);
        let b_strides = strides(b_batch, k * n);
        let mut out = batch.clone();
        if a.len() > 1 {
            out.push(m);
        }
        if b.len() > 1 {
            out.push(n);
        }
        match checked_elems(&out) {
            Some(len) if len <= MAX_ELEMS => {}
            _ => return Err(invalid(format!("the output of shape {out:?} is too large"))),
        }
        Ok(Plan { m, k, n, batch, a_strides, b_strides, out })
    }

    /// The product of one element type; `then(block)` runs on each block
    /// of output rows once it is complete.
    fn typed<T: GemmElem + Element + Default>(
        &self,
        a: &Tensor,
        b: &Tensor,
        ctx: &ExecCtx<'_>,
        then: &(dyn Fn(&mut [T]) + Sync),
    ) -> Result<Tensor, OpError> {
        let plan = Self::plan(a.shape(), b.shape())?;
        let (m, k, n) = (plan.m, plan.k, plan.n);
        let a_data = data::<T>(a)?;
        let b_data = data::<T>(b)?;
        let mut out = ctx.output::<T>(&plan.out);
        let Some(dst) = out.as_slice_mut() else {
            return Err(OpError::Invalid { op: "MatMul", reason: "output buffer is not contiguous".into() });
        };
        let product = gemm::Gemm::new(T::ONE, T::ZERO);
        let n_batch: usize = plan.batch.iter().product();
        if b.shape().len() <= 2 && n_batch > 0 {
            // One product: A's batch axes folded into its rows.
            let rows = n_batch * m;
            product.run_then(
                MatRef::row_major(&a_data, rows, k),
                MatRef::row_major(&b_data, k, n),
                dst,
                ctx.par,
                &|_, block| then(block),
            );
            return Ok(T::wrap(out));
        }
        if dst.is_empty() {
            return Ok(T::wrap(out));
        }
        let offset = |mut index: usize, strides: &[usize]| -> usize {
            let mut offset = 0;
            for (axis, &size) in plan.batch.iter().enumerate().rev() {
                offset += (index % size) * strides[axis];
                index /= size;
            }
            offset
        };
        if m <= rows_per_block(m, k, n) {
            // Small matrices: one job per batch item, in parallel over them.
            let work = n_batch.saturating_mul(m).saturating_mul(k).saturating_mul(n);
            ctx.par.for_blocks_by_work(dst, m * n, work, |index, block| {
                let a_mat = MatRef::row_major(&a_data[offset(index, &plan.a_strides)..], m, k);
                let b_mat = MatRef::row_major(&b_data[offset(index, &plan.b_strides)..], k, n);
                T::gemm_serial(a_mat, b_mat, block, T::ONE, T::ZERO);
                then(block);
            });
        } else {
            // Large matrices: each product splits over its own rows.
            for (index, block) in dst.chunks_mut(m * n).enumerate() {
                let a_mat = MatRef::row_major(&a_data[offset(index, &plan.a_strides)..], m, k);
                let b_mat = MatRef::row_major(&b_data[offset(index, &plan.b_strides)..], k, n);
                product.run_then(a_mat, b_mat, block, ctx.par, &|_, rows| then(rows));
            }
        }
        Ok(T::wrap(out))
    }
}

impl Op for MatMul {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = |index: usize| inputs.get(index).and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        let out = match (dims(0), dims(1)) {
            (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                let a_batch = if a.len() > 2 { &a[..a.len() - 2] } else { &[] };
                let b_batch = if b.len() > 2 { &b[..b.len() - 2] } else { &[] };
                broadcast_dims(&[Some(a_batch), Some(b_batch)]).map(|mut out| {
                    if a.len() > 1 {
                        out.push(a[a.len() - 2].clone());
                    }
                    if b.len() > 1 {
                        out.push(b[b.len() - 1].clone());
                    }
                    out
                })
            }
            _ => None,
        };
        vec![Some(ValueType { dtype: ty.dtype, dims: out })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let a = required(inputs, 0, "MatMul")?;
        let b = required(inputs, 1, "MatMul")?;
        let dtype = a.dtype();
        check_dtype("MatMul", dtype, self.dtypes)?;
        if b.dtype() != dtype {
            return Err(OpError::Invalid {
                op: "MatMul",
                reason: format!("inputs of types {dtype} and {} (must be one)", b.dtype()),
            });
        }
        if let (DType::F32, Some(epilogue)) = (dtype, &self.epilogue) {
            return self.typed::<f32>(&a, &b, ctx, &|block| epilogue.apply_f32(block));
        }
        let out = match dtype {
            DType::F32 => self.typed::<f32>(&a, &b, ctx, &|_| {}),
            DType::F64 => self.typed::<f64>(&a, &b, ctx, &|_| {}),
            DType::I32 => self.typed::<i32>(&a, &b, ctx, &|_| {}),
            DType::I64 => self.typed::<i64>(&a, &b, ctx, &|_| {}),
            DType::U32 => self.typed::<u32>(&a, &b, ctx, &|_| {}),
            DType::U64 => self.typed::<u64>(&a, &b, ctx, &|_| {}),
            DType::F16 | DType::BF16 => {
                let out = self.typed::<f32>(&cast(&a, DType::F32)?, &cast(&b, DType::F32)?, ctx, &|_| {})?;
                cast(&out, dtype)
            }
            dtype => Err(OpError::UnsupportedDtype { op: "MatMul", dtype }),
        }?;
        match &self.epilogue {
            Some(epilogue) => epilogue.apply_tensor(out, ctx),
            None => Ok(out),
        }
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn fuse_epilogue(&mut self, epilogue: Epilogue) -> Result<(), Epilogue> {
        crate::ops::epilogue::fuse_into(&mut self.epilogue, epilogue)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::kernels::Parallel;

    fn values(shape: &[usize], seed: usize) -> Tensor {
        let len: usize = shape.iter().product();
        let data: Vec<f64> = (0..len).map(|idx| ((idx * 7 + seed * 13) % 19) as f64 * 0.25 - 2.0).collect();
        Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data).expect("shape"))
    }

    /// numpy matmul on float64, written out: broadcast batch, 1-D rules.
    fn reference(a: &Tensor, b: &Tensor) -> (Vec<f64>, Vec<usize>) {
        let (a_shape, b_shape) = (a.shape().to_vec(), b.shape().to_vec());
        let a = a.as_f64().expect("f64").to_owned();
        let b = b.as_f64().expect("f64").to_owned();
        let a2 = if a_shape.len() == 1 {
            a.clone().into_shape_with_order(vec![1, a_shape[0]]).expect("r")
        } else {
            a.clone()
        };
        let b2 = if b_shape.len() == 1 {
            b.clone().into_shape_with_order(vec![b_shape[0], 1]).expect("r")
        } else {
            b.clone()
        };
        let (ar, br) = (a2.ndim(), b2.ndim());
        let rank = ar.max(br);
        let (m, k, n) = (a2.shape()[ar - 2], a2.shape()[ar - 1], b2.shape()[br - 1]);
        let pad = |shape: &[usize]| {
            let mut out = vec![1; rank - shape.len()];
            out.extend_from_slice(shape);
            out
        };
        let (ap, bp) = (pad(a2.shape()), pad(b2.shape()));
        let batch: Vec<usize> = (0..rank - 2).map(|axis| ap[axis].max(bp[axis])).collect();
        let a2 = a2.into_shape_with_order(ap.clone()).expect("r");
        let b2 = b2.into_shape_with_order(bp.clone()).expect("r");
        let n_batch: usize = batch.iter().product();
        let mut out = Vec::new();
        for index in 0..n_batch {
            let mut rest = index;
            let mut coords = vec![0; batch.len()];
            for axis in (0..batch.len()).rev() {
                coords[axis] = rest % batch[axis];
                rest /= batch[axis];
            }
            for i in 0..m {
                for j in 0..n {
                    let mut sum = 0.0;
                    for p in 0..k {
                        let mut ai: Vec<usize> =
                            coords.iter().zip(&ap).map(|(&c, &s)| if s == 1 { 0 } else { c }).collect();
                        ai.extend([i, p]);
                        let mut bi: Vec<usize> =
                            coords.iter().zip(&bp).map(|(&c, &s)| if s == 1 { 0 } else { c }).collect();
                        bi.extend([p, j]);
                        sum += a2[IxDyn(&ai)] * b2[IxDyn(&bi)];
                    }
                    out.push(sum);
                }
            }
        }
        let mut shape = batch;
        if a_shape.len() > 1 {
            shape.push(m);
        }
        if b_shape.len() > 1 {
            shape.push(n);
        }
        (out, shape)
    }

    #[test]
    fn matches_numpy_rules_on_float64_loops() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[3, 4], &[4, 5]),
            (&[4], &[4, 5]),
            (&[3, 4], &[4]),
            (&[4], &[4]),
            (&[2, 3, 4], &[4, 5]),
            (&[2, 1, 3, 4], &[5, 4, 2]),
            (&[4], &[2, 4, 3]),
            (&[2, 3, 4], &[2, 4, 5]),
            (&[1, 3, 4], &[6, 4, 5]),
            (&[2, 0, 4], &[4, 5]),
            (&[2, 40, 300], &[2, 300, 50]),
        ];
        let par = Parallel::global();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        for &(a_shape, b_shape) in cases {
            let (a, b) = (values(a_shape, 1), values(b_shape, 2));
            let (want, want_shape) = reference(&a, &b);
            for dtype in [DType::F64, DType::F32, DType::I64] {
                let mut inputs = [Some(cast(&a, dtype).unwrap().into()), Some(cast(&b, dtype).unwrap().into())];
                let got = MatMul { dtypes: matmul_dtypes(13), epilogue: None }.run(&mut inputs, &ctx).expect("runs");
                assert_eq!(got.shape(), want_shape.as_slice(), "{a_shape:?} @ {b_shape:?}");
                if dtype == DType::I64 {
                    continue;
                }
                for (got, want) in got.to_f64_vec().iter().zip(&want) {
                    assert!((got - want).abs() < 1e-3, "{a_shape:?} @ {b_shape:?} {dtype}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn mismatches_are_errors() {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let run = |a: &[usize], b: &[usize]| {
            let mut inputs = [Some(Tensor::zeros(DType::F32, a).into()), Some(Tensor::zeros(DType::F32, b).into())];
            MatMul { dtypes: matmul_dtypes(13), epilogue: None }.run(&mut inputs, &ctx).expect_err("fails").to_string()
        };
        assert!(run(&[2, 3], &[4, 5]).starts_with("MatMul: inner dimensions differ"));
        assert!(run(&[2, 2, 3], &[3, 3, 5]).contains("do not broadcast"));
        assert!(run(&[], &[3]).contains("at least one axis"));
    }
}
