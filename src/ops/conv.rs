//! Conv: N-dimensional convolution, and the window attributes it shares
//! with ConvTranspose and the pooling ops.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Conv.html>
//!
//! | opset | change                                                        |
//! |-------|---------------------------------------------------------------|
//! | 1     | `auto_pad`, `dilations`, `group`, `kernel_shape`, `pads`, `strides`; float16/32/64 |
//! | 11    | `kernel_shape` may be omitted (taken from W); same code path  |
//! | 22    | bfloat16                                                      |
//!
//! `X` is `[N, C, D1…Dn]` (n = 1, 2, 3 or more), `W` is `[M, C/group,
//! k1…kn]`, the optional bias `B` is `[M]`. The kernel is
//! `kernels::conv::conv`: im2col + GEMM, the 1×1 case straight to GEMM,
//! depthwise convolutions (`group == C == M`) by a direct loop. float16 and
//! bfloat16 are computed in float32 and rounded once at the end.

use std::borrow::Cow;

use ndarray::{ArrayD, IxDyn};

use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::conv::{self, ConvShape, MAX_ELEMS, Window};
use crate::kernels::gemm::GemmElem;
use crate::ops::cast::cast;
use crate::ops::epilogue::Epilogue;
use crate::tensor::{DType, Element, Tensor, checked_elems};

/// Registers Conv.
pub fn register(reg: &mut Registry) {
    reg.add("", "Conv", &[1, 11, 22], conv_dtypes, Conv::from_node);
}

/// Float types; bfloat16 from opset 22 (Conv, ConvTranspose and the
/// pooling ops share this history).
pub(crate) fn conv_dtypes(version: i64) -> &'static [DType] {
    if version >= 22 { FLOATS_BF16 } else { FLOATS }
}

/// How the pads are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoPad {
    /// The `pads` attribute (default zeros).
    NotSet,
    /// Output `ceil(in / stride)`; an odd total pad puts the extra at the end.
    SameUpper,
    /// As `SameUpper`, the extra at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

/// The window attributes of Conv, ConvTranspose, MaxPool and AveragePool,
/// checked at load; their lengths are checked against the input's rank at
/// run time.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowAttrs {
    /// `auto_pad`.
    pub auto_pad: AutoPad,
    /// `kernel_shape` (required by the pooling ops; Conv may take it from W).
    pub kernel_shape: Option<Vec<usize>>,
    /// `strides` (default 1 per spatial dimension).
    pub strides: Option<Vec<usize>>,
    /// `dilations` (default 1 per spatial dimension).
    pub dilations: Option<Vec<usize>>,
    /// `pads` as `[begin…, end…]` (default zeros).
    pub pads: Option<Vec<usize>>,
}

/// Reads a list of integers, each at least `min`.
fn positive_ints(attrs: &mut Attrs<'_>, name: &str, min: i64) -> Result<Option<Vec<usize>>, LoadError> {
    let Some(values) = attrs.ints(name)? else { return Ok(None) };
    values
        .iter()
        .map(|&value| {
            if value < min || value > i64::from(i32::MAX) {
                return Err(attrs.error(name, format!("{values:?}: each value must be in {min}..=2147483647")));
            }
            Ok(value as usize)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

impl WindowAttrs {
    /// Reads `auto_pad`, `kernel_shape`, `strides`, `pads` and, when
    /// `with_dilations`, `dilations`.
    ///
    /// # Errors
    /// An unknown `auto_pad`; a kernel size, stride or dilation below 1; a
    /// negative pad; an odd number of pads.
    pub fn from_node(attrs: &mut Attrs<'_>, with_dilations: bool) -> Result<Self, LoadError> {
        let auto_pad = match attrs.string("auto_pad")?.as_deref() {
            None | Some("NOTSET") => AutoPad::NotSet,
            Some("SAME_UPPER") => AutoPad::SameUpper,
            Some("SAME_LOWER") => AutoPad::SameLower,
            Some("VALID") => AutoPad::Valid,
            Some(other) => {
                return Err(
                    attrs.error("auto_pad", format!("{other:?} is not NOTSET, SAME_UPPER, SAME_LOWER or VALID"))
                );
            }
        };
        let kernel_shape = positive_ints(attrs, "kernel_shape", 1)?;
        let strides = positive_ints(attrs, "strides", 1)?;
        let dilations = if with_dilations { positive_ints(attrs, "dilations", 1)? } else { None };
        let pads = positive_ints(attrs, "pads", 0)?;
        if let Some(pads) = &pads
            && pads.len() % 2 != 0
        {
            return Err(attrs.error("pads", format!("{pads:?} has an odd length (begin and end per axis)")));
        }
        Ok(WindowAttrs { auto_pad, kernel_shape, strides, dilations, pads })
    }

    /// The window over `input` spatial sizes, with `weight_kernel` the
    /// kernel sizes W gives (Conv) or `None` (pooling: `kernel_shape` is
    /// required), and the output spatial sizes.
    ///
    /// # Errors
    /// Attribute lengths that do not match the spatial rank, a
    /// `kernel_shape` that disagrees with W, a kernel larger than the
    /// padded input, or an absurd output size.
    pub fn resolve(
        &self,
        op: &'static str,
        input: &[usize],
        weight_kernel: Option<&[usize]>,
        ceil_mode: bool,
    ) -> Result<(Window, Vec<usize>), OpError> {
        let invalid = |reason: String| OpError::Invalid { op, reason };
        let rank = input.len();
        let per_axis = |name: &str, values: &Option<Vec<usize>>| -> Result<Vec<usize>, OpError> {
            match values {
                None => Ok(vec![1; rank]),
                Some(values) if values.len() == rank => Ok(values.clone()),
                Some(values) => {
                    Err(invalid(format!("{name} {values:?} has {} values for {rank} spatial dimensions", values.len())))
                }
            }
        };
        let kernel = match (&self.kernel_shape, weight_kernel) {
            (Some(given), Some(weight)) if given.as_slice() != weight => {
                return Err(invalid(format!("kernel_shape {given:?} disagrees with the weight's kernel {weight:?}")));
            }
            (_, Some(weight)) => weight.to_vec(),
            (Some(given), None) => per_axis("kernel_shape", &Some(given.clone()))?,
            (None, None) => return Err(invalid("kernel_shape is required".into())),
        };
        if kernel.contains(&0) {
            return Err(invalid(format!("kernel {kernel:?} has a zero size")));
        }
        check_size(op, "the kernel", &kernel)?;
        let strides = per_axis("strides", &self.strides)?;
        let dilations = per_axis("dilations", &self.dilations)?;
        let mut window = Window { kernel, strides, dilations, pads_begin: vec![0; rank], pads_end: vec![0; rank] };
        match self.auto_pad {
            AutoPad::NotSet => {
                if let Some(pads) = &self.pads {
                    if pads.len() != 2 * rank {
                        return Err(invalid(format!(
                            "pads {pads:?} has {} values for {rank} spatial dimensions (begin and end per axis)",
                            pads.len()
                        )));
                    }
                    window.pads_begin = pads[..rank].to_vec();
                    window.pads_end = pads[rank..].to_vec();
                }
            }
            AutoPad::Valid => {}
            AutoPad::SameUpper | AutoPad::SameLower => {
                for (dim, &size) in input.iter().enumerate() {
                    let out = size.div_ceil(window.strides[dim]);
                    let needed = (out.max(1) - 1).saturating_mul(window.strides[dim]).saturating_add(window.span(dim));
                    let total = needed.saturating_sub(size);
                    let small = total / 2;
                    let (begin, end) = if self.auto_pad == AutoPad::SameUpper {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    window.pads_begin[dim] = begin;
                    window.pads_end[dim] = end;
                }
            }
        }
        let output = window.output_dims(input, ceil_mode).map_err(invalid)?;
        Ok((window, output))
    }
}

/// Refuses a buffer of more than [`MAX_ELEMS`] elements.
pub(crate) fn check_size(op: &'static str, what: &str, shape: &[usize]) -> Result<usize, OpError> {
    match checked_elems(shape) {
        Some(n) if n <= MAX_ELEMS => Ok(n),
        _ => Err(OpError::Invalid { op, reason: format!("{what} of shape {shape:?} is too large") }),
    }
}

/// Output types for ops whose output shape is a function of the input
/// shapes: exact dims when every input shape is fixed and `shape_of`
/// accepts them, else the dtype of input 0 and `rank` unknown dims (or no
/// dims when `rank` is unknown).
pub(crate) fn infer_from_shapes(
    inputs: &[InferInput<'_>],
    rank: Option<usize>,
    shape_of: impl Fn(&[Vec<usize>]) -> Option<Vec<usize>>,
) -> Vec<Option<ValueType>> {
    let Some(ty) = inputs.first().and_then(|input| input.ty) else {
        return Vec::new();
    };
    let fixed: Option<Vec<Vec<usize>>> = inputs.iter().map(|input| input.ty.and_then(ValueType::fixed_shape)).collect();
    if let Some(shape) = fixed.and_then(|shapes| shape_of(&shapes)) {
        return vec![Some(ValueType::fixed(ty.dtype, &shape))];
    }
    vec![Some(ValueType { dtype: ty.dtype, dims: rank.map(|rank| vec![Dim::Any; rank]) })]
}

/// Runs `compute` on float32 or float64 data; float16 and bfloat16 inputs
/// are widened to float32 first and the result rounded back.
pub(crate) fn with_float<F>(op: &'static str, inputs: &[Option<&Tensor>], compute: F) -> Result<Tensor, OpError>
where
    F: FnOnce(&[Option<&Tensor>]) -> Result<Tensor, OpError>,
{
    let dtype = inputs.iter().flatten().next().map_or(DType::F32, |tensor| tensor.dtype());
    if let Some(other) = inputs.iter().flatten().find(|tensor| tensor.dtype() != dtype) {
        return Err(OpError::Invalid {
            op,
            reason: format!("inputs of types {dtype} and {} (must be one)", other.dtype()),
        });
    }
    match dtype {
        DType::F32 | DType::F64 => compute(inputs),
        DType::F16 | DType::BF16 => {
            let wide: Vec<Option<Tensor>> = inputs
                .iter()
                .map(|input| input.map(|tensor| cast(tensor, DType::F32)).transpose())
                .collect::<Result<_, _>>()?;
            let wide_refs: Vec<Option<&Tensor>> = wide.iter().map(Option::as_ref).collect();
            cast(&compute(&wide_refs)?, dtype)
        }
        other => Err(OpError::UnsupportedDtype { op, dtype: other }),
    }
}

/// A row-major copy of a tensor's data as a slice (borrowed when already
/// row-major).
pub(crate) fn standard<T: Element>(tensor: &Tensor) -> Option<Cow<'_, [T]>> {
    let view = T::view(tensor)?;
    Some(match view.to_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(view.iter().copied().collect()),
    })
}

/// Convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Window attributes.
    pub window: WindowAttrs,
    /// `group` (at least 1).
    pub group: usize,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
    /// An activation run on the output (see [`crate::ops::epilogue`]).
    pub epilogue: Option<Epilogue>,
}

impl Conv {
    /// Reads the window attributes and `group`.
    ///
    /// # Errors
    /// As [`WindowAttrs::from_node`]; a `group` below 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let window = WindowAttrs::from_node(attrs, true)?;
        let group = read_group(attrs)?;
        Ok(Conv { window, group, dtypes: conv_dtypes(version), epilogue: None })
    }

    /// The sizes of a convolution of `x` by `w` (and `bias`), checked.
    fn plan(&self, x: &[usize], w: &[usize], bias: Option<&[usize]>) -> Result<(ConvShape, Window), OpError> {
        let invalid = |reason: String| OpError::Invalid { op: "Conv", reason };
        if x.len() < 3 {
            return Err(invalid(format!("X has shape {x:?}; expected [N, C, D1, …] with at least one spatial axis")));
        }
        if w.len() != x.len() {
            return Err(invalid(format!("W has shape {w:?}, of rank {}, but X has rank {}", w.len(), x.len())));
        }
        let (batch, in_channels, out_channels) = (x[0], x[1], w[0]);
        let group = self.group;
        if w[1].checked_mul(group) != Some(in_channels) {
            return Err(invalid(format!(
                "W has {} input channels per group and group is {group}, but X has {in_channels} channels (W {w:?}, X {x:?})",
                w[1]
            )));
        }
        if !out_channels.is_multiple_of(group) {
            return Err(invalid(format!("W's {out_channels} output channels do not divide into {group} groups")));
        }
        if let Some(bias) = bias
            && bias != [out_channels]
        {
            return Err(invalid(format!("B has shape {bias:?}; expected [{out_channels}]")));
        }
        let (window, output) = self.window.resolve("Conv", &x[2..], Some(&w[2..]), false)?;
        let mut out_shape = vec![batch, out_channels];
        out_shape.extend(&output);
        check_size("Conv", "the output", &out_shape)?;
        let n_kernel: usize = window.kernel.iter().product();
        check_size("Conv", "the im2col buffer", &[w[1], n_kernel, output.iter().product()])?;
        Ok((ConvShape { batch, in_channels, out_channels, group, input: x[2..].to_vec(), output }, window))
    }
}

/// Reads `group` (default 1).
pub(crate) fn read_group(attrs: &mut Attrs<'_>) -> Result<usize, LoadError> {
    let group = attrs.i64("group")?.unwrap_or(1);
    match usize::try_from(group) {
        Ok(group) if group >= 1 && group <= i32::MAX as usize => Ok(group),
        _ => Err(attrs.error("group", format!("{group} is not a positive count"))),
    }
}

/// The output shape `[N, M, out…]`.
fn out_shape(shape: &ConvShape) -> Vec<usize> {
    let mut out = vec![shape.batch, shape.out_channels];
    out.extend(&shape.output);
    out
}

/// A convolution kernel: `(x, w, bias, shape, window, par) -> output`.
pub(crate) type ConvKernel<T> = fn(&[T], &[T], Option<&[T]>, &ConvShape, &Window, &crate::kernels::Parallel) -> Vec<T>;

/// Runs a convolution kernel on typed, row-major data.
pub(crate) fn run_typed<T: GemmElem + num_traits::Float + Element>(
    op: &'static str,
    inputs: &[Option<&Tensor>],
    shape: &ConvShape,
    window: &Window,
    ctx: &ExecCtx<'_>,
    kernel: ConvKernel<T>,
) -> Result<Tensor, OpError> {
    let data = |index: usize| -> Result<Option<Cow<'_, [T]>>, OpError> {
        match inputs.get(index).copied().flatten() {
            None => Ok(None),
            Some(tensor) => {
                standard::<T>(tensor).map(Some).ok_or(OpError::UnsupportedDtype { op, dtype: tensor.dtype() })
            }
        }
    };
    let (Some(x), Some(w)) = (data(0)?, data(1)?) else {
        return Err(OpError::MissingInput { op, index: 0 });
    };
    let bias = data(2)?;
    let out = kernel(&x, &w, bias.as_deref(), shape, window, ctx.par);
    let array = ArrayD::from_shape_vec(IxDyn(&out_shape(shape)), out)
        .map_err(|err| OpError::Invalid { op, reason: err.to_string() })?;
    Ok(T::wrap(array))
}

impl Op for Conv {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(ValueType::rank);
        infer_from_shapes(inputs, rank, |shapes| {
            let (shape, _) = self.plan(&shapes[0], shapes.get(1)?, shapes.get(2).map(Vec::as_slice)).ok()?;
            Some(out_shape(&shape))
        })
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Conv")?;
        let w = required(inputs, 1, "Conv")?;
        let bias = inputs.get_mut(2).and_then(Option::take);
        check_dtype("Conv", x.dtype(), self.dtypes)?;
        let (shape, window) = self.plan(x.shape(), w.shape(), bias.as_ref().map(|bias| bias.shape()))?;
        let out =
            with_float("Conv", &[Some(&x), Some(&w), bias.as_deref()], |inputs| match inputs[0].map(Tensor::dtype) {
                Some(DType::F64) => run_typed::<f64>("Conv", inputs, &shape, &window, ctx, conv::conv),
                _ => run_typed::<f32>("Conv", inputs, &shape, &window, ctx, conv::conv),
            })?;
        match (&self.epilogue, out) {
            (None, out) => Ok(out),
            (Some(epilogue), Tensor::F32(mut array)) => {
                match array.as_slice_mut() {
                    Some(data) => epilogue.apply_f32_all(data, ctx),
                    None => return epilogue.apply_tensor(Tensor::F32(array), ctx),
                }
                Ok(Tensor::F32(array))
            }
            (Some(epilogue), out) => epilogue.apply_tensor(out, ctx),
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
    use crate::kernels::test_util::values;
    use ndarray::ArrayD;

    use super::*;
    use crate::kernels::Parallel;

    fn ctx(par: &Parallel) -> ExecCtx<'_> {
        ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX }
    }

    fn conv_op(
        group: usize,
        strides: Option<Vec<usize>>,
        pads: Option<Vec<usize>>,
        dilations: Option<Vec<usize>>,
    ) -> Conv {
        Conv {
            window: WindowAttrs { auto_pad: AutoPad::NotSet, kernel_shape: None, strides, dilations, pads },
            group,
            dtypes: FLOATS_BF16,
            epilogue: None,
        }
    }

    /// Direct 2-D convolution in float64, written from the definition.
    #[allow(clippy::too_many_arguments)]
    fn reference_2d(
        x: &[f64],
        xs: [usize; 4],
        w: &[f64],
        ws: [usize; 4],
        bias: &[f64],
        group: usize,
        stride: [usize; 2],
        pads: [usize; 4],
        dil: [usize; 2],
    ) -> (Vec<f64>, Vec<usize>) {
        let [n, c, h, wd] = xs;
        let [m, cg, kh, kw] = ws;
        let oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / stride[0] + 1;
        let ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / stride[1] + 1;
        let mut out = vec![0.0; n * m * oh * ow];
        let mg = m / group;
        for b in 0..n {
            for o in 0..m {
                let g = o / mg;
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut sum = bias.get(o).copied().unwrap_or(0.0);
                        for ci in 0..cg {
                            let ch = g * cg + ci;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (y * stride[0] + ky * dil[0]) as isize - pads[0] as isize;
                                    let ix = (xx * stride[1] + kx * dil[1]) as isize - pads[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    sum += w[((o * cg + ci) * kh + ky) * kw + kx]
                                        * x[((b * c + ch) * h + iy as usize) * wd + ix as usize];
                                }
                            }
                        }
                        out[((b * m + o) * oh + y) * ow + xx] = sum;
                    }
                }
            }
        }
        (out, vec![n, m, oh, ow])
    }

    fn check(group: usize, xs: [usize; 4], ws: [usize; 4], stride: [usize; 2], pads: [usize; 4], dil: [usize; 2]) {
        let x = values(xs.iter().product(), 3);
        let w = values(ws.iter().product(), 5);
        let bias = values(ws[0], 7);
        let (want, want_shape) = reference_2d(&x, xs, &w, ws, &bias, group, stride, pads, dil);
        let op = conv_op(group, Some(stride.to_vec()), Some(pads.to_vec()), Some(dil.to_vec()));
        for dtype in [DType::F64, DType::F32] {
            let to = |data: &[f64], shape: &[usize]| {
                cast(&Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("shape")), dtype).unwrap()
            };
            let mut inputs = [Some(to(&x, &xs).into()), Some(to(&w, &ws).into()), Some(to(&bias, &[ws[0]]).into())];
            let par = Parallel::global();
            let got = op.run(&mut inputs, &ctx(&par)).expect("conv runs");
            assert_eq!(got.shape(), want_shape.as_slice());
            let tol = if dtype == DType::F64 { 1e-12 } else { 1e-4 };
            for (idx, (got, want)) in got.to_f64_vec().iter().zip(&want).enumerate() {
                assert!((got - want).abs() <= tol * (1.0 + want.abs()), "{dtype} {idx}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn im2col_path_with_strides_pads_dilations() {
        check(1, [2, 3, 9, 8], [4, 3, 3, 3], [2, 1], [1, 0, 2, 1], [1, 2]);
    }

    #[test]
    fn pointwise_path() {
        check(1, [2, 8, 5, 5], [6, 8, 1, 1], [1, 1], [0, 0, 0, 0], [1, 1]);
    }

    #[test]
    fn grouped_and_depthwise() {
        check(2, [1, 4, 7, 7], [6, 2, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1]);
        check(4, [2, 4, 7, 6], [4, 1, 3, 3], [2, 2], [1, 1, 1, 1], [1, 1]);
        // A depth multiplier of 2 goes through im2col.
        check(4, [1, 4, 6, 6], [8, 1, 3, 3], [1, 1], [0, 0, 0, 0], [1, 1]);
    }

    /// 3-D convolution (one group) in float64 from the definition, with
    /// `auto_pad` SAME_UPPER or SAME_LOWER pads worked out by hand.
    #[test]
    fn three_d_and_one_d_with_same_padding() {
        let (c, m, d, h, w, k, stride) = (2, 3, 5, 4, 6, 2, 2);
        let x = values(c * d * h * w, 9);
        let wt = values(m * c * k * k * k, 10);
        for (auto_pad, lower) in [(AutoPad::SameUpper, false), (AutoPad::SameLower, true)] {
            // out = ceil(in / stride); total pad = (out - 1)·stride + k - in.
            let dims = [d, h, w];
            let outs: Vec<usize> = dims.iter().map(|&n| n.div_ceil(stride)).collect();
            let begin: Vec<isize> = dims
                .iter()
                .zip(&outs)
                .map(|(&n, &o)| {
                    let total = ((o - 1) * stride + k).saturating_sub(n);
                    (if lower { total - total / 2 } else { total / 2 }) as isize
                })
                .collect();
            let mut want = vec![0.0; m * outs.iter().product::<usize>()];
            for o in 0..m {
                for (flat, idx) in ndarray::indices(&outs[..]).into_iter().enumerate() {
                    let mut sum = 0.0;
                    for ci in 0..c {
                        for kk in ndarray::indices(&[k, k, k][..]) {
                            let pos: Vec<isize> =
                                (0..3).map(|a| (idx[a] * stride + kk[a]) as isize - begin[a]).collect();
                            if (0..3).any(|a| pos[a] < 0 || pos[a] >= dims[a] as isize) {
                                continue;
                            }
                            let (pd, ph, pw) = (pos[0] as usize, pos[1] as usize, pos[2] as usize);
                            sum += wt[(((o * c + ci) * k + kk[0]) * k + kk[1]) * k + kk[2]]
                                * x[((ci * d + pd) * h + ph) * w + pw];
                        }
                    }
                    want[o * outs.iter().product::<usize>() + flat] = sum;
                }
            }
            let op = Conv {
                window: WindowAttrs {
                    auto_pad,
                    kernel_shape: None,
                    strides: Some(vec![stride; 3]),
                    dilations: None,
                    pads: None,
                },
                group: 1,
                dtypes: FLOATS_BF16,
                epilogue: None,
            };
            let tensor = |data: &[f64], shape: &[usize]| {
                Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("shape"))
            };
            let mut inputs = [Some(tensor(&x, &[1, c, d, h, w]).into()), Some(tensor(&wt, &[m, c, k, k, k]).into())];
            let par = Parallel::serial();
            let got = op.run(&mut inputs, &ctx(&par)).expect("conv runs");
            assert_eq!(got.shape(), [1, m, outs[0], outs[1], outs[2]]);
            for (got, want) in got.to_f64_vec().iter().zip(&want) {
                assert!((got - want).abs() < 1e-12, "{auto_pad:?}: {got} vs {want}");
            }
        }
        // 1-D (rank-3 tensors): the 2-D reference on a height-1 input.
        let (x, w) = (values(2 * 3 * 11, 3), values(4 * 3 * 3, 5));
        let (want, _) = reference_2d(&x, [2, 3, 1, 11], &w, [4, 3, 1, 3], &[], 1, [1, 2], [0, 1, 0, 2], [1, 2]);
        let op = conv_op(1, Some(vec![2]), Some(vec![1, 2]), Some(vec![2]));
        let tensor = |data: &[f64], shape: &[usize]| {
            Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("shape"))
        };
        let mut inputs = [Some(tensor(&x, &[2, 3, 11]).into()), Some(tensor(&w, &[4, 3, 3]).into())];
        let par = Parallel::serial();
        let got = op.run(&mut inputs, &ctx(&par)).expect("conv runs");
        assert_eq!(got.shape(), [2, 4, 5]);
        assert_eq!(want.len(), 2 * 4 * 5);
        for (got, want) in got.to_f64_vec().iter().zip(&want) {
            assert!((got - want).abs() < 1e-12, "1-D: {got} vs {want}");
        }
    }

    #[test]
    fn large_conv_is_bitwise_independent_of_threads() {
        let x = Tensor::from(
            ArrayD::from_shape_vec(
                IxDyn(&[1, 16, 32, 32]),
                values(16 * 32 * 32, 1).iter().map(|&v| v as f32).collect(),
            )
            .expect("shape"),
        );
        let w = Tensor::from(
            ArrayD::from_shape_vec(IxDyn(&[32, 16, 3, 3]), values(32 * 16 * 9, 2).iter().map(|&v| v as f32).collect())
                .expect("shape"),
        );
        let op = conv_op(1, None, Some(vec![1, 1, 1, 1]), None);
        let run = |par: &Parallel| {
            let mut inputs = [Some((&x).into()), Some((&w).into())];
            op.run(&mut inputs, &ctx(par)).expect("conv runs")
        };
        let serial = run(&Parallel::serial());
        assert_eq!(run(&Parallel::with_threads(3).expect("threads")), serial);
    }

    fn run_err(op: &Conv, x: &[usize], w: &[usize]) -> String {
        let x = Tensor::zeros(DType::F32, x);
        let w = Tensor::zeros(DType::F32, w);
        let mut inputs = [Some((&x).into()), Some((&w).into())];
        op.run(&mut inputs, &ctx(&Parallel::serial())).expect_err("must fail").to_string()
    }

    #[test]
    fn bad_shapes_are_errors() {
        let op = conv_op(1, None, None, None);
        assert!(run_err(&op, &[1, 3, 5, 5], &[2, 4, 3, 3]).contains("W has 4 input channels per group"));
        assert!(run_err(&conv_op(2, None, None, None), &[1, 4, 5, 5], &[3, 2, 3, 3]).contains("do not divide into 2"));
        assert!(run_err(&op, &[1, 3, 5], &[2, 3, 3, 3]).contains("rank"));
        assert!(run_err(&op, &[1, 3, 2, 2], &[2, 3, 3, 3]).contains("larger than the padded input"));
        assert!(run_err(&conv_op(1, Some(vec![1]), None, None), &[1, 3, 5, 5], &[2, 3, 3, 3]).contains("strides"));
        assert!(run_err(&conv_op(1, None, Some(vec![0, 0]), None), &[1, 3, 5, 5], &[2, 3, 3, 3]).contains("pads"));
        let huge = conv_op(1, None, Some(vec![1 << 30, 1 << 30, 1 << 30, 1 << 30]), None);
        assert!(run_err(&huge, &[1, 3, 5, 5], &[2, 3, 3, 3]).contains("too large"));
        let x = Tensor::zeros(DType::F32, &[1, 3, 5, 5]);
        let w = Tensor::zeros(DType::F64, &[2, 3, 3, 3]);
        let mut inputs = [Some((&x).into()), Some((&w).into())];
        assert!(op.run(&mut inputs, &ctx(&Parallel::serial())).is_err());
    }

    #[test]
    fn infers_the_output_shape() {
        let op = conv_op(1, Some(vec![2, 2]), Some(vec![1, 1, 1, 1]), None);
        let x = ValueType::fixed(DType::F32, &[1, 3, 8, 8]);
        let w = ValueType::fixed(DType::F32, &[5, 3, 3, 3]);
        let out = op.infer(&[InferInput { ty: Some(&x), value: None }, InferInput { ty: Some(&w), value: None }], 1);
        assert_eq!(out, [Some(ValueType::fixed(DType::F32, &[1, 5, 4, 4]))]);
    }
}
