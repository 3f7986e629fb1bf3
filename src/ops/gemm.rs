//! Gemm: `Y = alpha·A'·B' + beta·C`, with `A'` and `B'` optionally
//! transposed (`nn.Linear` exports as Gemm with `transB = 1`).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Gemm.html>
//!
//! | opset | change                                                          |
//! |-------|-----------------------------------------------------------------|
//! | 1     | `broadcast` flag: C must be exactly `[M, N]` unless it is 1     |
//! | 6     | same attributes, the same code path                             |
//! | 7     | C always broadcasts unidirectionally to `[M, N]`                |
//! | 9     | 32- and 64-bit integers                                         |
//! | 11    | C is optional                                                   |
//! | 13    | bfloat16                                                        |
//!
//! A transposed operand is read in place through its strides (no copy), so
//! a constant weight is never re-laid out per run. Integer types wrap on
//! overflow; `alpha` and `beta` are converted to them (truncated), as the
//! reference's `astype` does. float16 and bfloat16 compute in float32.

use std::borrow::Cow;

use ndarray::IxDyn;
use num_traits::NumCast;

use super::{ExecCtx, FLOATS, FLOATS_BF16_INTS_32_64, FLOATS_INTS_32_64, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::broadcast::unidirectional;
use crate::kernels::gemm::{self, GemmElem, MatRef};
use crate::ops::cast::cast;
use crate::ops::epilogue::Epilogue;
use crate::tensor::{DType, Element, Tensor};

/// Registers Gemm.
pub fn register(reg: &mut Registry) {
    reg.add("", "Gemm", &[1, 6, 7, 9, 11, 13], matmul_dtypes, Gemm::from_node);
}

/// Floats until opset 9, then 32/64-bit integers too, bfloat16 from 13
/// (Gemm and MatMul share this history).
pub(crate) fn matmul_dtypes(version: i64) -> &'static [DType] {
    match version {
        ..9 => FLOATS,
        9..13 => FLOATS_INTS_32_64,
        _ => FLOATS_BF16_INTS_32_64,
    }
}

/// How C may be shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CShape {
    /// Exactly `[M, N]` (opset 1 and 6 with `broadcast = 0`).
    Exact,
    /// Unidirectionally broadcastable to `[M, N]`.
    Broadcast,
}

/// Gemm.
#[derive(Debug, Clone, PartialEq)]
pub struct Gemm {
    /// `alpha` (default 1).
    pub alpha: f32,
    /// `beta` (default 1).
    pub beta: f32,
    /// `transA`.
    pub trans_a: bool,
    /// `transB`.
    pub trans_b: bool,
    /// How C may be shaped.
    pub c_shape: CShape,
    /// Whether C may be omitted (opset 11+).
    pub c_optional: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
    /// Adds C to each block of the product after computing it,
    /// `fl(A·B) + C` (set only with `alpha = beta = 1`, by the MatMul + Add
    /// rewrite of `graph::optimize`, so that the Gemm equals the MatMul
    /// then Add bit for bit) instead of accumulating onto `beta·C`.
    pub c_after_product: bool,
    /// An activation run on each block of the output (see
    /// [`crate::ops::epilogue`]).
    pub epilogue: Option<Epilogue>,
}

/// Reads a 0/1 flag.
fn flag(attrs: &mut Attrs<'_>, name: &str) -> Result<bool, LoadError> {
    match attrs.i64(name)?.unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(attrs.error(name, format!("{other} is not 0 or 1"))),
    }
}

impl Gemm {
    /// Reads `alpha`, `beta`, `transA`, `transB` and (opsets 1 and 6)
    /// `broadcast`.
    ///
    /// # Errors
    /// Flags other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let alpha = attrs.f32("alpha")?.unwrap_or(1.0);
        let beta = attrs.f32("beta")?.unwrap_or(1.0);
        let trans_a = flag(attrs, "transA")?;
        let trans_b = flag(attrs, "transB")?;
        let c_shape = if version < 7 && !flag(attrs, "broadcast")? { CShape::Exact } else { CShape::Broadcast };
        Ok(Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
            c_shape,
            c_optional: version >= 11,
            dtypes: matmul_dtypes(version),
            c_after_product: false,
            epilogue: None,
        })
    }

    /// `(M, K, N)`, checked.
    fn dims(&self, a: &[usize], b: &[usize], c: Option<&[usize]>) -> Result<(usize, usize, usize), OpError> {
        let invalid = |reason: String| OpError::Invalid { op: "Gemm", reason };
        if a.len() != 2 || b.len() != 2 {
            return Err(invalid(format!("A {a:?} and B {b:?} must both be 2-D")));
        }
        let (m, k) = if self.trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
        let (k_b, n) = if self.trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
        if k != k_b {
            return Err(invalid(format!(
                "inner dimensions differ: A {a:?}{} has {k} columns, B {b:?}{} has {k_b} rows",
                if self.trans_a { " (transposed)" } else { "" },
                if self.trans_b { " (transposed)" } else { "" }
            )));
        }
        if let Some(c) = c {
            let ok = match self.c_shape {
                CShape::Exact => c == [m, n],
                CShape::Broadcast => unidirectional(&[m, n], c).is_ok(),
            };
            if !ok {
                return Err(invalid(format!("C of shape {c:?} does not broadcast to [{m}, {n}]")));
            }
        }
        Ok((m, k, n))
    }

    /// The product of one element type; `then(first_row, block)` runs on
    /// each block of output rows once it is complete.
    fn typed<T: GemmElem + Element + Default + NumCast + std::ops::Add<Output = T>>(
        &self,
        a: &Tensor,
        b: &Tensor,
        c: Option<&Tensor>,
        ctx: &ExecCtx<'_>,
        then: &(dyn Fn(usize, &mut [T]) + Sync),
    ) -> Result<Tensor, OpError> {
        let (m, _, n) = self.dims(a.shape(), b.shape(), c.map(Tensor::shape))?;
        let a_data = data::<T>(a)?;
        let b_data = data::<T>(b)?;
        let a_mat = MatRef::row_major(&a_data, a.shape()[0], a.shape()[1]);
        let b_mat = MatRef::row_major(&b_data, b.shape()[0], b.shape()[1]);
        let a_mat = if self.trans_a { a_mat.t() } else { a_mat };
        let b_mat = if self.trans_b { b_mat.t() } else { b_mat };
        let scalar = |value: f32| -> T { T::from(value).unwrap_or(T::ZERO) };
        let mut out = ctx.output::<T>(&[m, n]);
        if self.c_after_product
            && let Some(c) = c
        {
            let c = T::view(c).ok_or(OpError::UnsupportedDtype { op: "Gemm", dtype: c.dtype() })?;
            let c = c.broadcast(IxDyn(&[m, n])).ok_or_else(|| OpError::Invalid {
                op: "Gemm",
                reason: format!("C of shape {:?} does not broadcast to [{m}, {n}]", c.shape()),
            })?;
            let Some(slice) = out.as_slice_mut() else {
                return Err(OpError::Invalid { op: "Gemm", reason: "output buffer is not contiguous".into() });
            };
            let c = c.into_dimensionality::<ndarray::Ix2>().map_err(|err| OpError::Invalid {
                op: "Gemm",
                reason: format!("C does not broadcast to [{m}, {n}]: {err}"),
            })?;
            let add_c = |start: usize, block: &mut [T]| {
                for (row, values) in block.chunks_mut(n.max(1)).enumerate() {
                    let c_row = c.row(start + row);
                    match c_row.as_slice() {
                        // Contiguous C rows (C of shape [N]): slices, so the loop vectorises.
                        Some(c_row) => values.iter_mut().zip(c_row).for_each(|(value, &c)| *value = *value + c),
                        None => values.iter_mut().zip(c_row).for_each(|(value, &c)| *value = *value + c),
                    }
                }
                then(start, block);
            };
            gemm::Gemm::new(T::ONE, T::ZERO).run_then(a_mat, b_mat, slice, ctx.par, &add_c);
            return Ok(T::wrap(out));
        }
        let beta = match c {
            Some(c) if self.beta != 0.0 => {
                let c = T::view(c).ok_or(OpError::UnsupportedDtype { op: "Gemm", dtype: c.dtype() })?;
                let c = c.broadcast(IxDyn(&[m, n])).ok_or_else(|| OpError::Invalid {
                    op: "Gemm",
                    reason: format!("C of shape {:?} does not broadcast to [{m}, {n}]", c.shape()),
                })?;
                out.assign(&c);
                scalar(self.beta)
            }
            _ => T::ZERO,
        };
        let Some(slice) = out.as_slice_mut() else {
            return Err(OpError::Invalid { op: "Gemm", reason: "output buffer is not contiguous".into() });
        };
        gemm::Gemm::new(scalar(self.alpha), beta).run_then(a_mat, b_mat, slice, ctx.par, then);
        Ok(T::wrap(out))
    }
}

/// A tensor's elements in row-major order (borrowed when already so).
pub(crate) fn data<T: Element>(tensor: &Tensor) -> Result<Cow<'_, [T]>, OpError> {
    super::conv::standard::<T>(tensor).ok_or(OpError::Invalid {
        op: "Gemm",
        reason: format!("operand of type {} where {} was expected", tensor.dtype(), T::DTYPE),
    })
}

impl Op for Gemm {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.c_optional { 2..=3 } else { 3..=3 }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dim = |input: usize, axis: usize| -> Dim {
            inputs
                .get(input)
                .and_then(|input| input.ty)
                .and_then(|ty| ty.dims.as_ref())
                .filter(|dims| dims.len() == 2)
                .map_or(Dim::Any, |dims| dims[axis].clone())
        };
        let m = dim(0, if self.trans_a { 1 } else { 0 });
        let n = dim(1, if self.trans_b { 0 } else { 1 });
        vec![Some(ValueType { dtype: ty.dtype, dims: Some(vec![m, n]) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let a = required(inputs, 0, "Gemm")?;
        let b = required(inputs, 1, "Gemm")?;
        let c =
            if self.c_optional { inputs.get_mut(2).and_then(Option::take) } else { Some(required(inputs, 2, "Gemm")?) };
        let dtype = a.dtype();
        check_dtype("Gemm", dtype, self.dtypes)?;
        for other in [Some(&b), c.as_ref()].into_iter().flatten() {
            if other.dtype() != dtype {
                return Err(OpError::Invalid {
                    op: "Gemm",
                    reason: format!("inputs of types {dtype} and {} (must be one)", other.dtype()),
                });
            }
        }
        let c = c.as_deref();
        if let (DType::F32, Some(epilogue)) = (dtype, &self.epilogue) {
            return self.typed::<f32>(&a, &b, c, ctx, &|_, block| epilogue.apply_f32(block));
        }
        let out = match dtype {
            DType::F32 => self.typed::<f32>(&a, &b, c, ctx, &|_, _| {}),
            DType::F64 => self.typed::<f64>(&a, &b, c, ctx, &|_, _| {}),
            DType::I32 => self.typed::<i32>(&a, &b, c, ctx, &|_, _| {}),
            DType::I64 => self.typed::<i64>(&a, &b, c, ctx, &|_, _| {}),
            DType::U32 => self.typed::<u32>(&a, &b, c, ctx, &|_, _| {}),
            DType::U64 => self.typed::<u64>(&a, &b, c, ctx, &|_, _| {}),
            DType::F16 | DType::BF16 => {
                let wide = |tensor: &Tensor| cast(tensor, DType::F32);
                let c = c.map(wide).transpose()?;
                let out = self.typed::<f32>(&wide(&a)?, &wide(&b)?, c.as_ref(), ctx, &|_, _| {})?;
                cast(&out, dtype)
            }
            dtype => Err(OpError::UnsupportedDtype { op: "Gemm", dtype }),
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
    use ndarray::ArrayD;

    use super::*;
    use crate::kernels::Parallel;

    fn tensor(data: &[f64], shape: &[usize]) -> Tensor {
        Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("shape"))
    }

    fn op(trans_a: bool, trans_b: bool, alpha: f32, beta: f32) -> Gemm {
        Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
            c_shape: CShape::Broadcast,
            c_optional: true,
            dtypes: FLOATS_BF16_INTS_32_64,
            c_after_product: false,
            epilogue: None,
        }
    }

    fn run(op: &Gemm, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let mut inputs: Vec<_> = inputs.into_iter().map(|tensor| Some(tensor.into())).collect();
        op.run(&mut inputs, &ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX })
    }

    #[test]
    fn transposes_scalars_and_broadcast_c_against_float64_loops() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f64> = (0..m * k).map(|idx| idx as f64 * 0.25 - 1.0).collect(); // stored k × m
        let b: Vec<f64> = (0..k * n).map(|idx| 2.0 - idx as f64 * 0.125).collect(); // stored n × k
        let c: Vec<f64> = (0..n).map(|idx| idx as f64).collect();
        let mut want = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a[p * m + i] * b[j * k + p]).sum();
                want[i * n + j] = 0.5 * dot + 2.0 * c[j];
            }
        }
        for dtype in [DType::F64, DType::F32, DType::F16] {
            let inputs = [tensor(&a, &[k, m]), tensor(&b, &[n, k]), tensor(&c, &[n])];
            let inputs = inputs.iter().map(|t| cast(t, dtype).unwrap()).collect();
            let got = run(&op(true, true, 0.5, 2.0), inputs).expect("runs");
            assert_eq!(got.shape(), [m, n]);
            assert_eq!(got.dtype(), dtype);
            let tol = if dtype == DType::F16 { 2e-2 } else { 1e-5 };
            for (got, want) in got.to_f64_vec().iter().zip(&want) {
                assert!((got - want).abs() <= tol * (1.0 + want.abs()), "{dtype}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn integers() {
        let a = Tensor::from(ndarray::array![[1i64, 2], [3, 4]].into_dyn());
        let b = Tensor::from(ndarray::array![[5i64, 6], [7, 8]].into_dyn());
        let got = run(&op(false, false, 1.0, 1.0), vec![a, b]).expect("runs");
        assert_eq!(got, Tensor::from(ndarray::array![[19i64, 22], [43, 50]].into_dyn()));
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let err = run(
            &op(false, false, 1.0, 1.0),
            vec![Tensor::zeros(DType::F32, &[2, 3]), Tensor::zeros(DType::F32, &[4, 5])],
        )
        .expect_err("fails");
        assert!(err.to_string().starts_with("Gemm: inner dimensions differ"), "{err}");
        let err = run(
            &op(false, false, 1.0, 1.0),
            vec![
                Tensor::zeros(DType::F32, &[2, 3]),
                Tensor::zeros(DType::F32, &[3, 4]),
                Tensor::zeros(DType::F32, &[3]),
            ],
        )
        .expect_err("fails");
        assert!(err.to_string().contains("does not broadcast to [2, 4]"), "{err}");
        let err = run(
            &op(false, false, 1.0, 1.0),
            vec![Tensor::zeros(DType::F32, &[2, 3, 1]), Tensor::zeros(DType::F32, &[3, 4])],
        )
        .expect_err("fails");
        assert!(err.to_string().contains("2-D"), "{err}");
    }
}
