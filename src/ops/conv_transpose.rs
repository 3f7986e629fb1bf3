//! ConvTranspose: the transposed (fractionally strided) convolution.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__ConvTranspose.html>
//!
//! | opset | change                                                        |
//! |-------|---------------------------------------------------------------|
//! | 1     | `auto_pad`, `dilations`, `group`, `kernel_shape`, `output_padding`, `output_shape`, `pads`, `strides` |
//! | 11    | `kernel_shape` may be omitted; same code path                 |
//! | 22    | bfloat16                                                      |
//!
//! `X` is `[N, C, D1…Dn]`, `W` is `[C, M/group, k1…kn]`, the bias `[M]`.
//! The output size along each axis is `stride·(in − 1) + output_padding +
//! dilation·(k − 1) + 1 − pads`, or `output_shape` when given. As in the
//! ONNX reference implementation, explicit (or absent) `pads` with
//! `auto_pad = NOTSET` are used as given even with `output_shape` (the
//! surplus output is zero), while `SAME_UPPER`/`SAME_LOWER` derive the pads
//! from `output_shape` (default `in·stride`). A derived pad that would be
//! negative at the beginning is refused.

use super::conv::{
    AutoPad, WindowAttrs, check_size, conv_dtypes, infer_from_shapes, read_group, run_typed, with_float,
};
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::conv::{self, ConvShape, Window};
use crate::tensor::{DType, Tensor};

/// Registers ConvTranspose.
pub fn register(reg: &mut Registry) {
    reg.add("", "ConvTranspose", &[1, 11, 22], conv_dtypes, ConvTranspose::from_node);
}

/// Transposed convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvTranspose {
    /// Window attributes (`pads` and `auto_pad` as described above).
    pub window: WindowAttrs,
    /// `group` (at least 1).
    pub group: usize,
    /// `output_padding`: extra size at the end of each axis.
    pub output_padding: Option<Vec<usize>>,
    /// `output_shape`: the spatial output sizes.
    pub output_shape: Option<Vec<usize>>,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl ConvTranspose {
    /// Reads the attributes.
    ///
    /// # Errors
    /// As [`WindowAttrs::from_node`]; a `group` below 1; a negative
    /// `output_padding` or `output_shape` entry.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let window = WindowAttrs::from_node(attrs, true)?;
        let group = read_group(attrs)?;
        let mut non_negative = |name: &str| -> Result<Option<Vec<usize>>, LoadError> {
            let Some(values) = attrs.ints(name)? else { return Ok(None) };
            values
                .iter()
                .map(|&value| {
                    usize::try_from(value)
                        .ok()
                        .filter(|&value| value <= i32::MAX as usize)
                        .ok_or_else(|| attrs.error(name, format!("{values:?} has a negative or absurd entry")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        };
        let output_padding = non_negative("output_padding")?;
        let output_shape = non_negative("output_shape")?;
        Ok(ConvTranspose { window, group, output_padding, output_shape, dtypes: conv_dtypes(version) })
    }

    fn plan(&self, x: &[usize], w: &[usize], bias: Option<&[usize]>) -> Result<(ConvShape, Window), OpError> {
        let invalid = |reason: String| OpError::Invalid { op: "ConvTranspose", reason };
        if x.len() < 3 {
            return Err(invalid(format!("X has shape {x:?}; expected [N, C, D1, …] with at least one spatial axis")));
        }
        if w.len() != x.len() {
            return Err(invalid(format!("W has shape {w:?}, of rank {}, but X has rank {}", w.len(), x.len())));
        }
        let (batch, in_channels) = (x[0], x[1]);
        let group = self.group;
        if w[0] != in_channels || !in_channels.is_multiple_of(group) {
            return Err(invalid(format!(
                "W has {} input channels but X has {in_channels} (group {group}; W {w:?}, X {x:?})",
                w[0]
            )));
        }
        let out_channels =
            w[1].checked_mul(group).ok_or_else(|| invalid(format!("W {w:?} times group {group} overflows")))?;
        if let Some(bias) = bias
            && bias != [out_channels]
        {
            return Err(invalid(format!("B has shape {bias:?}; expected [{out_channels}]")));
        }
        let rank = x.len() - 2;
        let input = &x[2..];
        // The strides, dilations and kernel, checked, from the window
        // attributes (their pads are handled here, not by `resolve`).
        let plain = WindowAttrs { auto_pad: AutoPad::Valid, pads: None, ..self.window.clone() };
        let kernel_window = match plain.resolve("ConvTranspose", &vec![usize::MAX / 4; rank], Some(&w[2..]), false) {
            Ok((window, _)) => window,
            Err(err) => return Err(err),
        };
        let output_padding = match &self.output_padding {
            None => vec![0; rank],
            Some(values) if values.len() == rank => values.clone(),
            Some(values) => {
                return Err(invalid(format!("output_padding {values:?} has the wrong length for {rank} axes")));
            }
        };
        let output_shape = match &self.output_shape {
            None => None,
            Some(values) if values.len() >= rank => Some(values[values.len() - rank..].to_vec()),
            Some(values) => return Err(invalid(format!("output_shape {values:?} has fewer than {rank} values"))),
        };
        // The full size before any padding is removed, per axis.
        let full: Vec<usize> = (0..rank)
            .map(|dim| {
                input[dim]
                    .saturating_sub(1)
                    .saturating_mul(kernel_window.strides[dim])
                    .saturating_add(output_padding[dim])
                    .saturating_add(kernel_window.span(dim))
            })
            .collect();
        let mut pads_begin = vec![0; rank];
        let output: Vec<usize> = match (self.window.auto_pad, &self.window.pads) {
            (AutoPad::SameUpper | AutoPad::SameLower, None) => {
                let target = output_shape.unwrap_or_else(|| {
                    (0..rank).map(|dim| input[dim].saturating_mul(kernel_window.strides[dim])).collect()
                });
                for dim in 0..rank {
                    let total = full[dim] as i128 - target[dim] as i128;
                    let half = total.div_euclid(2);
                    let begin = if self.window.auto_pad == AutoPad::SameUpper { half } else { total - half };
                    pads_begin[dim] = usize::try_from(begin).map_err(|_| {
                        invalid(format!("output size {} needs negative padding on axis {dim}", target[dim]))
                    })?;
                }
                target
            }
            (_, pads) => {
                let pads = pads.clone().unwrap_or_else(|| vec![0; 2 * rank]);
                if pads.len() != 2 * rank {
                    return Err(invalid(format!("pads {pads:?} has the wrong length for {rank} axes")));
                }
                pads_begin = pads[..rank].to_vec();
                match output_shape {
                    Some(shape) => shape,
                    None => (0..rank)
                        .map(|dim| {
                            full[dim].checked_sub(pads[dim] + pads[rank + dim]).ok_or_else(|| {
                                invalid(format!(
                                    "pads {pads:?} remove more than the {} outputs of axis {dim}",
                                    full[dim]
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                }
            }
        };
        let mut out_shape = vec![batch, out_channels];
        out_shape.extend(&output);
        check_size("ConvTranspose", "the output", &out_shape)?;
        let n_kernel: usize = kernel_window.kernel.iter().product();
        check_size("ConvTranspose", "the column buffer", &[w[1], n_kernel, input.iter().product()])?;
        let window = Window { pads_begin, pads_end: vec![0; rank], ..kernel_window };
        Ok((ConvShape { batch, in_channels, out_channels, group, input: input.to_vec(), output }, window))
    }
}

impl Op for ConvTranspose {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(ValueType::rank);
        infer_from_shapes(inputs, rank, |shapes| {
            let (shape, _) = self.plan(&shapes[0], shapes.get(1)?, shapes.get(2).map(Vec::as_slice)).ok()?;
            let mut out = vec![shape.batch, shape.out_channels];
            out.extend(&shape.output);
            Some(out)
        })
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "ConvTranspose")?;
        let w = required(inputs, 1, "ConvTranspose")?;
        let bias = inputs.get_mut(2).and_then(Option::take);
        check_dtype("ConvTranspose", x.dtype(), self.dtypes)?;
        let (shape, window) = self.plan(x.shape(), w.shape(), bias.as_ref().map(|bias| bias.shape()))?;
        with_float("ConvTranspose", &[Some(&x), Some(&w), bias.as_deref()], |inputs| {
            match inputs[0].map(Tensor::dtype) {
                Some(DType::F64) => {
                    run_typed::<f64>("ConvTranspose", inputs, &shape, &window, ctx, conv::conv_transpose)
                }
                _ => run_typed::<f32>("ConvTranspose", inputs, &shape, &window, ctx, conv::conv_transpose),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::kernels::test_util::values;
    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::kernels::Parallel;
    use crate::ops::FLOATS_BF16;

    /// 1-D transposed convolution in float64 by scattering, from the
    /// definition: each input element adds `x·w[k]` at `i·s + k·d − pad`.
    #[allow(clippy::too_many_arguments)]
    fn reference_1d(
        x: &[f64],
        [n, c, len]: [usize; 3],
        w: &[f64],
        [_, mg, k]: [usize; 3],
        group: usize,
        stride: usize,
        dil: usize,
        pad: usize,
        out_len: usize,
    ) -> Vec<f64> {
        let m = mg * group;
        let cg = c / group;
        let mut out = vec![0.0; n * m * out_len];
        for b in 0..n {
            for ci in 0..c {
                let g = ci / cg;
                for o in 0..mg {
                    for i in 0..len {
                        for kk in 0..k {
                            let pos = (i * stride + kk * dil) as isize - pad as isize;
                            if pos >= 0 && (pos as usize) < out_len {
                                out[(b * m + g * mg + o) * out_len + pos as usize] +=
                                    x[(b * c + ci) * len + i] * w[(ci * mg + o) * k + kk];
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_float64_scatter_with_groups_strides_and_padding() {
        let (xs, ws, group, stride, dil, pad, out_pad) = ([2, 4, 5], [4, 3, 3], 2, 2, 2, 1, 1);
        let x = values(xs.iter().product(), 3);
        let w = values(ws.iter().product(), 4);
        let out_len = stride * (xs[2] - 1) + out_pad + dil * (ws[2] - 1) + 1 - 2 * pad;
        let want = reference_1d(&x, xs, &w, ws, group, stride, dil, pad, out_len);
        let op = ConvTranspose {
            window: WindowAttrs {
                auto_pad: AutoPad::NotSet,
                kernel_shape: None,
                strides: Some(vec![stride]),
                dilations: Some(vec![dil]),
                pads: Some(vec![pad, pad]),
            },
            group,
            output_padding: Some(vec![out_pad]),
            output_shape: None,
            dtypes: FLOATS_BF16,
        };
        let tensor = |data: &[f64], shape: &[usize]| {
            Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("shape"))
        };
        let mut inputs = [Some(tensor(&x, &xs).into()), Some(tensor(&w, &ws).into())];
        let par = Parallel::serial();
        let got = op.run(&mut inputs, &ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX }).expect("runs");
        assert_eq!(got.shape(), [2, 6, out_len]);
        for (got, want) in got.to_f64_vec().iter().zip(&want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn mismatched_weight_is_an_error() {
        let op = ConvTranspose {
            window: WindowAttrs {
                auto_pad: AutoPad::NotSet,
                kernel_shape: None,
                strides: None,
                dilations: None,
                pads: None,
            },
            group: 1,
            output_padding: None,
            output_shape: None,
            dtypes: FLOATS_BF16,
        };
        let x = Tensor::zeros(DType::F32, &[1, 3, 4, 4]);
        let w = Tensor::zeros(DType::F32, &[2, 2, 3, 3]);
        let mut inputs = [Some((&x).into()), Some((&w).into())];
        let par = Parallel::serial();
        let err =
            op.run(&mut inputs, &ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX }).expect_err("fails");
        assert!(err.to_string().contains("ConvTranspose: W has 2 input channels but X has 3"), "{err}");
    }
}
