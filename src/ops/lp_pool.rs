//! LpPool: the Lp norm of each pooling window.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__LpPool.html>
//!
//! | opset | change                                                      |
//! |-------|-------------------------------------------------------------|
//! | 1     | `p` a float attribute (default 2.0); `auto_pad`, `kernel_shape`, `pads`, `strides` |
//! | 2     | `p` an int attribute (default 2)                            |
//! | 11    | same code path (pads semantics clarified)                   |
//! | 18    | `ceil_mode`, `dilations`                                    |
//! | 22    | bfloat16                                                    |
//!
//! `Y = (Σ |x|^p)^(1/p)` over the window's taps inside the input (a padded
//! tap reads 0, as the ONNX test generator pads with zeros). The window
//! geometry is MaxPool's and AveragePool's (`WindowAttrs`, the tap rows of
//! `kernels::taps`); the powers and sums run in float64 in kernel order,
//! rounded once to the input type.

use ndarray::{ArrayD, IxDyn};

use super::conv::{WindowAttrs, check_size, infer_from_shapes};
use super::values::{float_array, float_tensor};
use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, check_input_type, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::conv::Window;
use crate::kernels::taps::Taps;
use crate::tensor::{DType, Tensor};

/// Registers LpPool.
pub fn register(reg: &mut Registry) {
    reg.add("", "LpPool", &[1, 2, 11, 18, 22], lp_pool_dtypes, LpPool::from_node);
}

fn lp_pool_dtypes(version: i64) -> &'static [DType] {
    if version < 22 { FLOATS } else { FLOATS_BF16 }
}

/// LpPool.
#[derive(Debug, Clone, PartialEq)]
pub struct LpPool {
    /// Window attributes (`dilations` from opset 18).
    pub window: WindowAttrs,
    /// `ceil_mode` (opset 18+).
    pub ceil_mode: bool,
    /// The norm's order (float at opset 1, int from 2; default 2).
    pub p: f64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl LpPool {
    /// Reads the attributes the version defines.
    ///
    /// # Errors
    /// As [`WindowAttrs::from_node`]; a missing `kernel_shape`; a `p` that
    /// is not positive and finite; `ceil_mode` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let window = WindowAttrs::from_node(attrs, version >= 18)?;
        if window.kernel_shape.is_none() {
            return Err(attrs.error("kernel_shape", "is required"));
        }
        let p =
            if version < 2 { f64::from(attrs.f32("p")?.unwrap_or(2.0)) } else { attrs.i64("p")?.unwrap_or(2) as f64 };
        if !(p.is_finite() && p > 0.0) {
            return Err(attrs.error("p", format!("must be positive, got {p}")));
        }
        let ceil_mode = if version >= 18 {
            match attrs.i64("ceil_mode")?.unwrap_or(0) {
                0 => false,
                1 => true,
                other => return Err(attrs.error("ceil_mode", format!("{other} is not 0 or 1"))),
            }
        } else {
            false
        };
        Ok(LpPool { window, ceil_mode, p, dtypes: lp_pool_dtypes(version) })
    }

    /// The window and output shape over an input of shape `x`.
    fn plan(&self, x: &[usize]) -> Result<(Window, Vec<usize>), OpError> {
        const OP: &str = "LpPool";
        if x.len() < 3 {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!("X has shape {x:?}; expected [N, C, D1, …] with at least one spatial axis"),
            });
        }
        let (window, output) = self.window.resolve(OP, &x[2..], None, self.ceil_mode)?;
        let mut shape = x[..2].to_vec();
        shape.extend(&output);
        check_size(OP, "the output", &shape)?;
        check_size(OP, "the window table", &[window.kernel.iter().product(), output.iter().product()])?;
        Ok((window, shape))
    }
}

/// Lp pooling of `planes` planes of `input` sizes (row-major float64) into
/// `output` sizes: `(Σ |x|^p)^(1/p)` over each window's taps inside the
/// input, summed in kernel order.
pub fn lp_pool(
    x: &[f64],
    planes: usize,
    input: &[usize],
    output: &[usize],
    window: &Window,
    p: f64,
    ctx: &ExecCtx<'_>,
) -> Vec<f64> {
    let in_size: usize = input.iter().product();
    let out_size: usize = output.iter().product();
    let taps = Taps::new(window, input, output);
    let power = |value: f64| if p == 2.0 { value * value } else { value.abs().powf(p) };
    let powered: Vec<f64> = x.iter().map(|&value| power(value)).collect();
    let mut out = vec![0.0; planes * out_size];
    let work = out.len().saturating_mul(taps.n_kernel());
    ctx.par.for_blocks_by_work(&mut out, out_size.max(1), work, |plane, dst| {
        let src = &powered[plane * in_size..(plane + 1) * in_size];
        taps.for_each_tap(src, dst, |_, out_row, input_row, span| {
            taps.zip_span(out_row, input_row, span, |sum, value| *sum += value);
        });
        for value in dst.iter_mut() {
            *value = if p == 2.0 { value.sqrt() } else { value.powf(1.0 / p) };
        }
    });
    out
}

impl Op for LpPool {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("LpPool", inputs, 0, self.dtypes)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(ValueType::rank);
        infer_from_shapes(inputs, rank, |shapes| self.plan(&shapes[0]).ok().map(|(_, shape)| shape))
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "LpPool";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), self.dtypes)?;
        let (window, shape) = self.plan(x.shape())?;
        let dtype = x.dtype();
        let data: Vec<f64> = float_array(OP, &x)?.iter().copied().collect();
        let input = x.shape()[2..].to_vec();
        drop(x);
        if data.is_empty() || shape.iter().product::<usize>() == 0 {
            return Ok(float_tensor(dtype, ArrayD::zeros(IxDyn(&shape))));
        }
        let values = lp_pool(&data, shape[0] * shape[1], &input, &shape[2..], &window, self.p, ctx);
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        Ok(float_tensor(dtype, array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Parallel;
    use crate::ops::conv::AutoPad;

    fn pool(kernel: &[usize], strides: &[usize], pads: &[usize], p: f64) -> LpPool {
        LpPool {
            window: WindowAttrs {
                auto_pad: AutoPad::NotSet,
                kernel_shape: Some(kernel.to_vec()),
                strides: Some(strides.to_vec()),
                dilations: None,
                pads: Some(pads.to_vec()),
            },
            ceil_mode: false,
            p,
            dtypes: FLOATS,
        }
    }

    fn run(op: &LpPool, x: ArrayD<f64>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 30 };
        op.run(&mut [Some(std::borrow::Cow::Owned(Tensor::from(x)))], &ctx)
    }

    /// Lp pooling by its definition: every window position, every tap,
    /// zero outside the input (1-D, written out here).
    fn reference_1d(x: &[f64], kernel: usize, stride: usize, pad: usize, p: f64) -> Vec<f64> {
        let padded: Vec<f64> =
            std::iter::repeat_n(0.0, pad).chain(x.iter().copied()).chain(std::iter::repeat_n(0.0, pad)).collect();
        let n_out = (padded.len() - kernel) / stride + 1;
        (0..n_out)
            .map(|o| {
                padded[o * stride..o * stride + kernel].iter().map(|v: &f64| v.abs().powf(p)).sum::<f64>().powf(1.0 / p)
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_in_1d_and_2d() {
        let x: Vec<f64> = (0..11).map(|i| (i as f64 * 0.37).sin() * 3.0 - 0.5).collect();
        for (kernel, stride, pad, p) in [(3, 1, 0, 2.0), (2, 2, 1, 3.0), (4, 3, 2, 1.0)] {
            let op = pool(&[kernel], &[stride], &[pad, pad], p);
            let out = run(&op, ArrayD::from_shape_vec(IxDyn(&[1, 1, 11]), x.clone()).unwrap()).unwrap();
            let want = reference_1d(&x, kernel, stride, pad, p);
            let got = out.to_f64_vec();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "k{kernel} s{stride} p{pad}: {got:?} vs {want:?}");
            }
        }
        // 2-D, 2×2 kernel, p = 2 on [[1, 2], [3, 4]] padded by 1: corners
        // see one value, the centre all four (√30).
        let op = pool(&[2, 2], &[1, 1], &[1, 1, 1, 1], 2.0);
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, 2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let got = run(&op, x).unwrap().to_f64_vec();
        let want = [1.0, 5f64.sqrt(), 2.0, 10f64.sqrt(), 30f64.sqrt(), 20f64.sqrt(), 3.0, 5.0, 4.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn refuses_a_kernel_larger_than_the_input_and_a_flat_input() {
        let op = pool(&[5], &[1], &[0, 0], 2.0);
        assert!(run(&op, ArrayD::zeros(IxDyn(&[1, 1, 3]))).is_err());
        assert!(run(&op, ArrayD::zeros(IxDyn(&[3, 3]))).is_err());
    }
}
