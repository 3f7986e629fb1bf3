//! Resize and Upsample: nearest, linear and cubic resampling, one axis
//! after another (the interpolation is separable).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Resize.html>
//! - <https://onnx.ai/onnx/operators/onnx__Upsample.html>
//!
//! | op       | opset | change                                                        |
//! |----------|-------|---------------------------------------------------------------|
//! | Upsample | 1     | `height_scale`, `width_scale` of a 4-D input; nearest/bilinear |
//! | Upsample | 7     | `scales` attribute, one per axis; nearest/linear               |
//! | Upsample | 9, 10 | `scales` input (10 deprecates the op; same code path)          |
//! | Resize   | 10    | `scales` input; nearest/linear, as Upsample                    |
//! | Resize   | 11    | `roi`, `sizes` inputs; coordinate modes, `nearest_mode`, cubic |
//! | Resize   | 13    | bfloat16; `roi` and `scales` optional                          |
//! | Resize   | 18    | `axes`, `keep_aspect_ratio_policy`, `antialias`                |
//! | Resize   | 19    | `half_pixel_symmetric` coordinate mode                         |
//!
//! Upsample and Resize-10 map output coordinate `x` to `x / scale`
//! (asymmetric) and pick the nearest pixel as ONNX Runtime does for them:
//! the floor when upsampling, the ceiling when downsampling. From opset 11
//! the attributes say. Samples past the edge repeat the edge pixel (the
//! spec's reference pads in `edge` mode), except in `tf_crop_and_resize`
//! where they take `extrapolation_value`. `antialias` = 1 is refused at
//! load. Work is done in float64 and rounded once to the output type.

use ndarray::{ArrayD, IxDyn};

use super::identity::all_from_13;
use super::values::by_dtype;
use super::{ALL_BUT_BF16, ExecCtx, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Tensor};

/// Registers Resize and Upsample.
pub fn register(reg: &mut Registry) {
    reg.add("", "Resize", &[10, 11, 13, 18, 19], resize_dtypes, Resize::from_node);
    reg.add("", "Upsample", &[1, 7, 9, 10], upsample_dtypes, Resize::upsample);
}

fn resize_dtypes(version: i64) -> &'static [DType] {
    if version < 13 { ALL_BUT_BF16 } else { all_from_13(version) }
}

fn upsample_dtypes(version: i64) -> &'static [DType] {
    if version < 7 { &[DType::Bool, DType::I32, DType::I64, DType::F16, DType::F32, DType::F64] } else { ALL_BUT_BF16 }
}

/// How an output coordinate maps to an input coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordinates {
    /// `(x + 0.5) / scale - 0.5` (the default from 11).
    HalfPixel,
    /// Half pixel, centred when the output length was rounded (19).
    HalfPixelSymmetric,
    /// Half pixel, but 0 for an output of length 1 (PyTorch's).
    PytorchHalfPixel,
    /// `x * (in - 1) / (out - 1)`.
    AlignCorners,
    /// `x / scale` (Upsample and Resize-10).
    Asymmetric,
    /// Within the `roi` box; outside it, `extrapolation_value`.
    TfCropAndResize,
}

/// How nearest mode rounds a coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Halves go down (default).
    PreferFloor,
    /// Halves go up.
    PreferCeil,
    /// Always down.
    Floor,
    /// Always up.
    Ceil,
    /// Upsample and Resize-10: down when upsampling, up when downsampling.
    Legacy,
}

/// The interpolation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Interpolation {
    /// The nearest input sample.
    Nearest(Rounding),
    /// Linear between the two neighbours.
    Linear,
    /// Cubic convolution with coefficient `a` over four neighbours.
    Cubic(f64),
}

/// How `sizes` are applied (opset 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AspectPolicy {
    /// Each axis to its size.
    Stretch,
    /// One scale for all axes, so that none exceeds its size.
    NotLarger,
    /// One scale for all axes, so that none falls short of its size.
    NotSmaller,
}

/// Where the scales come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Form {
    /// Attribute scales (Upsample 1 and 7).
    ScalesAttribute(Vec<f32>),
    /// Scales as input 1 (Upsample 9/10, Resize 10).
    ScalesInput,
    /// `roi`, `scales`, `sizes` as inputs 1 to 3 (Resize 11+).
    Full,
}

/// Resize (and Upsample, which is Resize with fewer options).
#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    /// The op's name, for errors.
    pub name: &'static str,
    /// Where the scales come from.
    pub form: Form,
    /// The interpolation.
    pub interpolation: Interpolation,
    /// The coordinate transformation.
    pub coordinates: Coordinates,
    /// Zero the weight of samples outside the input and renormalise.
    pub exclude_outside: bool,
    /// The value outside the `roi` box (`tf_crop_and_resize`).
    pub extrapolation_value: f64,
    /// How sizes are applied.
    pub aspect: AspectPolicy,
    /// The axes that scales and sizes refer to (opset 18), else all.
    pub axes: Option<Vec<i64>>,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Resize {
    /// Resize from a node.
    ///
    /// # Errors
    /// Unknown mode names, or `antialias` = 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let mode = attrs.string("mode")?.unwrap_or_else(|| "nearest".into());
        if version < 11 {
            let interpolation = match mode.as_str() {
                "nearest" => Interpolation::Nearest(Rounding::Legacy),
                "linear" => Interpolation::Linear,
                other => return Err(attrs.error("mode", format!("unknown mode {other:?}"))),
            };
            return Ok(Resize::legacy("Resize", Form::ScalesInput, interpolation, resize_dtypes(version)));
        }
        let rounding = match attrs.string("nearest_mode")?.as_deref().unwrap_or("round_prefer_floor") {
            "round_prefer_floor" => Rounding::PreferFloor,
            "round_prefer_ceil" => Rounding::PreferCeil,
            "floor" => Rounding::Floor,
            "ceil" => Rounding::Ceil,
            other => return Err(attrs.error("nearest_mode", format!("unknown mode {other:?}"))),
        };
        let cubic_a = f64::from(attrs.f32("cubic_coeff_a")?.unwrap_or(-0.75));
        let interpolation = match mode.as_str() {
            "nearest" => Interpolation::Nearest(rounding),
            "linear" => Interpolation::Linear,
            "cubic" => Interpolation::Cubic(cubic_a),
            other => return Err(attrs.error("mode", format!("unknown mode {other:?}"))),
        };
        let coordinates = match attrs.string("coordinate_transformation_mode")?.as_deref().unwrap_or("half_pixel") {
            "half_pixel" => Coordinates::HalfPixel,
            "half_pixel_symmetric" if version >= 19 => Coordinates::HalfPixelSymmetric,
            "pytorch_half_pixel" => Coordinates::PytorchHalfPixel,
            "align_corners" => Coordinates::AlignCorners,
            "asymmetric" => Coordinates::Asymmetric,
            "tf_crop_and_resize" => Coordinates::TfCropAndResize,
            // Opset 11's tf_half_pixel_for_nn was dropped from the spec at 13.
            other => {
                return Err(attrs.error("coordinate_transformation_mode", format!("unsupported mode {other:?}")));
            }
        };
        let exclude_outside = attrs.i64("exclude_outside")?.unwrap_or(0) != 0;
        let extrapolation_value = f64::from(attrs.f32("extrapolation_value")?.unwrap_or(0.0));
        let (aspect, axes) = if version >= 18 {
            if attrs.i64("antialias")?.unwrap_or(0) != 0 {
                return Err(attrs.error("antialias", "antialiasing is not supported"));
            }
            let aspect = match attrs.string("keep_aspect_ratio_policy")?.as_deref().unwrap_or("stretch") {
                "stretch" => AspectPolicy::Stretch,
                "not_larger" => AspectPolicy::NotLarger,
                "not_smaller" => AspectPolicy::NotSmaller,
                other => return Err(attrs.error("keep_aspect_ratio_policy", format!("unknown policy {other:?}"))),
            };
            (aspect, attrs.ints("axes")?)
        } else {
            (AspectPolicy::Stretch, None)
        };
        Ok(Resize {
            name: "Resize",
            form: Form::Full,
            interpolation,
            coordinates,
            exclude_outside,
            extrapolation_value,
            aspect,
            axes,
            dtypes: resize_dtypes(version),
        })
    }

    fn legacy(name: &'static str, form: Form, interpolation: Interpolation, dtypes: &'static [DType]) -> Self {
        Resize {
            name,
            form,
            interpolation,
            coordinates: Coordinates::Asymmetric,
            exclude_outside: false,
            extrapolation_value: 0.0,
            aspect: AspectPolicy::Stretch,
            axes: None,
            dtypes,
        }
    }

    /// Upsample from a node.
    ///
    /// # Errors
    /// An unknown mode, or missing scales.
    pub fn upsample(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let mode = attrs.string("mode")?.unwrap_or_else(|| "nearest".into());
        let interpolation = match mode.as_str() {
            "nearest" => Interpolation::Nearest(Rounding::Legacy),
            "bilinear" if version < 7 => Interpolation::Linear,
            "linear" if version >= 7 => Interpolation::Linear,
            other => return Err(attrs.error("mode", format!("unknown mode {other:?}"))),
        };
        let form = match version {
            ..7 => {
                let height = attrs.f32("height_scale")?.ok_or_else(|| attrs.error("height_scale", "is required"))?;
                let width = attrs.f32("width_scale")?.ok_or_else(|| attrs.error("width_scale", "is required"))?;
                Form::ScalesAttribute(vec![1.0, 1.0, height, width])
            }
            7..9 => Form::ScalesAttribute(attrs.floats("scales")?.ok_or_else(|| attrs.error("scales", "is required"))?),
            _ => Form::ScalesInput,
        };
        Ok(Resize::legacy("Upsample", form, interpolation, upsample_dtypes(version)))
    }
}

/// The per-axis plan: output length and the scale used for coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AxisPlan {
    out_len: usize,
    scale: f64,
    roi: (f64, f64),
}

/// Output sizes and scales for an input of `shape`.
fn plan_axes(
    op: &'static str,
    shape: &[usize],
    axes: &[usize],
    scales: Option<&[f64]>,
    sizes: Option<&[i64]>,
    aspect: AspectPolicy,
    roi: Option<&[f64]>,
) -> Result<Vec<AxisPlan>, OpError> {
    let invalid = |reason: String| OpError::Invalid { op, reason };
    let rank = shape.len();
    let mut plans: Vec<AxisPlan> =
        shape.iter().map(|&dim| AxisPlan { out_len: dim, scale: 1.0, roi: (0.0, 1.0) }).collect();
    if let Some(roi) = roi {
        if roi.len() != 2 * axes.len() {
            return Err(invalid(format!("roi has {} values for {} axes (need two per axis)", roi.len(), axes.len())));
        }
        for (idx, &axis) in axes.iter().enumerate() {
            plans[axis].roi = (roi[idx], roi[idx + axes.len()]);
        }
    }
    match (scales, sizes) {
        (Some(scales), None) => {
            if scales.len() != axes.len() {
                return Err(invalid(format!("{} scales for {} axes", scales.len(), axes.len())));
            }
            for (&axis, &scale) in axes.iter().zip(scales) {
                if !(scale > 0.0 && scale.is_finite()) {
                    return Err(invalid(format!("scale {scale} is not a positive number")));
                }
                // floor(in * scale), as the spec's reference computes it (it
                // leaves the roi out of the output size).
                let out = (shape[axis] as f64 * scale).floor();
                if out >= usize::MAX as f64 {
                    return Err(invalid(format!("scale {scale} gives an output too large to index")));
                }
                plans[axis].out_len = out as usize;
                plans[axis].scale = scale;
            }
        }
        (None, Some(sizes)) => {
            if sizes.len() != axes.len() {
                return Err(invalid(format!("{} sizes for {} axes", sizes.len(), axes.len())));
            }
            let sizes: Vec<usize> = sizes
                .iter()
                .map(|&size| usize::try_from(size).map_err(|_| invalid(format!("size {size} is negative"))))
                .collect::<Result<_, _>>()?;
            if let Some(&axis) = axes.iter().find(|&&axis| shape[axis] == 0) {
                return Err(invalid(format!("axis {axis} is empty: no scale can be derived from sizes")));
            }
            let ratios: Vec<f64> =
                axes.iter().zip(&sizes).map(|(&axis, &size)| size as f64 / shape[axis] as f64).collect();
            let common = match aspect {
                AspectPolicy::Stretch => None,
                AspectPolicy::NotLarger => ratios.iter().copied().reduce(f64::min),
                AspectPolicy::NotSmaller => ratios.iter().copied().reduce(f64::max),
            };
            for (idx, &axis) in axes.iter().enumerate() {
                match common {
                    None => {
                        plans[axis].out_len = sizes[idx];
                        plans[axis].scale = ratios[idx];
                    }
                    Some(scale) => {
                        // round_int in the spec: halves go up.
                        plans[axis].out_len = (scale * shape[axis] as f64 + 0.5).floor() as usize;
                        plans[axis].scale = scale;
                    }
                }
            }
        }
        (Some(_), Some(_)) => return Err(invalid("both scales and sizes are given".into())),
        (None, None) => return Err(invalid("neither scales nor sizes is given".into())),
    }
    debug_assert_eq!(plans.len(), rank);
    Ok(plans)
}

/// Cubic convolution weights for the four neighbours of a sample at
/// fraction `t` past the first of the middle two.
fn cubic_weights(t: f64, a: f64) -> [f64; 4] {
    let near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// For output coordinate `idx` of one axis: the weighted input samples, or
/// `None` where the extrapolation value goes. Computed per coordinate (not
/// kept for the whole axis), so resampling needs no memory beyond its output.
fn taps(resize: &Resize, in_len: usize, plan: AxisPlan, idx: usize) -> Option<Vec<(usize, f64)>> {
    let scale = plan.scale;
    let in_f = in_len as f64;
    let out_width = scale * in_f;
    let last = in_len.saturating_sub(1) as i64;
    let x = idx as f64;
    let source = match resize.coordinates {
        Coordinates::HalfPixel => (x + 0.5) / scale - 0.5,
        Coordinates::HalfPixelSymmetric => {
            let adjustment = plan.out_len as f64 / out_width;
            let offset = in_f / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
        Coordinates::PytorchHalfPixel if out_width == 1.0 => -0.5,
        Coordinates::PytorchHalfPixel => (x + 0.5) / scale - 0.5,
        Coordinates::AlignCorners if out_width == 1.0 => 0.0,
        Coordinates::AlignCorners => x * (in_f - 1.0) / (out_width - 1.0),
        Coordinates::Asymmetric => x / scale,
        Coordinates::TfCropAndResize => {
            let (start, end) = plan.roi;
            let source = if out_width == 1.0 {
                (end - start) * (in_f - 1.0) / 2.0
            } else {
                x * (end - start) * (in_f - 1.0) / (out_width - 1.0)
            } + start * (in_f - 1.0);
            if source < 0.0 || source > in_f - 1.0 {
                return None;
            }
            source
        }
    };
    let floor = source.floor();
    let frac = source - floor;
    let base = floor as i64;
    let mut weights: Vec<(i64, f64)> = match resize.interpolation {
        Interpolation::Nearest(rounding) => {
            let up = frac > 0.0
                && match rounding {
                    Rounding::PreferFloor => frac > 0.5,
                    Rounding::PreferCeil => frac >= 0.5,
                    Rounding::Floor => false,
                    Rounding::Ceil => true,
                    Rounding::Legacy => scale < 1.0,
                };
            vec![(base + i64::from(up), 1.0)]
        }
        Interpolation::Linear => vec![(base, 1.0 - frac), (base + 1, frac)],
        Interpolation::Cubic(a) => {
            let w = cubic_weights(frac, a);
            (0..4).map(|k| (base - 1 + k as i64, w[k])).collect()
        }
    };
    if resize.exclude_outside {
        weights.iter_mut().filter(|(pos, _)| *pos < 0 || *pos > last).for_each(|(_, w)| *w = 0.0);
        let sum: f64 = weights.iter().map(|(_, w)| w).sum();
        if sum != 0.0 {
            weights.iter_mut().for_each(|(_, w)| *w /= sum);
        }
    }
    Some(weights.into_iter().map(|(pos, w)| (pos.clamp(0, last) as usize, w)).collect())
}

/// Resamples axis `axis` of contiguous float64 data of `shape`.
fn resample_axis(resize: &Resize, data: &[f64], shape: &[usize], axis: usize, plan: AxisPlan) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let dim = shape[axis];
    let out_len = plan.out_len;
    let mut out = vec![resize.extrapolation_value; outer * out_len * inner];
    for idx in 0..out_len {
        let Some(tap) = taps(resize, dim, plan, idx) else {
            continue;
        };
        for block in 0..outer {
            for lane in 0..inner {
                out[(block * out_len + idx) * inner + lane] =
                    tap.iter().map(|&(pos, w)| w * data[(block * dim + pos) * inner + lane]).sum();
            }
        }
    }
    out
}

/// Resize's kernel once scales, sizes and roi are read.
fn resize_tensor(resize: &Resize, x: &Tensor, plans: &[AxisPlan], ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let op = resize.name;
    let out_shape: Vec<usize> = plans.iter().map(|plan| plan.out_len).collect();
    ctx.checked_elems(op, x.dtype(), &out_shape)?;
    // The float64 working copy is bounded too.
    ctx.checked_elems(op, DType::F64, &out_shape)?;
    if let Some(axis) = (0..plans.len()).find(|&axis| x.shape()[axis] == 0 && plans[axis].out_len > 0) {
        return Err(OpError::Invalid { op, reason: format!("cannot resize the empty axis {axis} to a non-empty one") });
    }
    let mut shape = x.shape().to_vec();
    let mut data = x.to_f64_vec();
    for (axis, plan) in plans.iter().enumerate() {
        let unchanged =
            plan.scale == 1.0 && plan.out_len == shape[axis] && resize.coordinates != Coordinates::TfCropAndResize;
        if unchanged {
            continue;
        }
        // An intermediate (upsampled on this axis, not yet downsampled on a
        // later one) may be larger than the output: checked as well.
        let mut next = shape.clone();
        next[axis] = plan.out_len;
        ctx.checked_elems(op, DType::F64, &next)?;
        data = resample_axis(resize, &data, &shape, axis, *plan);
        shape = next;
    }
    by_dtype!(op, x.dtype(), T => {
        let values: Vec<T> = data.into_iter().map(<T as Num>::from_f64).collect();
        ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map(Tensor::from)
            .map_err(|err| OpError::Invalid { op, reason: err.to_string() })
    })
}

/// Float values of an optional float input (roi, scales); an empty tensor
/// counts as absent (opset 11 passes empty scales alongside sizes).
fn float_values(op: &'static str, what: &str, tensor: Option<&Tensor>) -> Result<Option<Vec<f64>>, OpError> {
    match tensor {
        None => Ok(None),
        Some(tensor) if tensor.is_empty() => Ok(None),
        Some(tensor) if tensor.dtype().is_float() && tensor.shape().len() <= 1 => Ok(Some(tensor.to_f64_vec())),
        Some(other) => Err(OpError::Invalid {
            op,
            reason: format!("{what} must be a 1-D float tensor, got {} {:?}", other.dtype(), other.shape()),
        }),
    }
}

impl Resize {
    fn resolved_axes(&self, rank: usize) -> Result<Vec<usize>, OpError> {
        match &self.axes {
            None => Ok((0..rank).collect()),
            Some(axes) => {
                let resolved: Vec<usize> =
                    axes.iter().map(|&axis| normalize_axis(self.name, axis, rank)).collect::<Result<_, _>>()?;
                let mut sorted = resolved.clone();
                sorted.sort_unstable();
                if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
                    return Err(OpError::Invalid { op: self.name, reason: format!("axes {axes:?} repeat an axis") });
                }
                Ok(resolved)
            }
        }
    }

    fn plans(&self, shape: &[usize], inputs: [Option<&Tensor>; 3]) -> Result<Vec<AxisPlan>, OpError> {
        let op = self.name;
        let axes = self.resolved_axes(shape.len())?;
        let [roi, scales, sizes] = inputs;
        let (roi, scales, sizes) = match &self.form {
            Form::ScalesAttribute(scales) => (None, Some(scales.iter().map(|&s| f64::from(s)).collect()), None),
            Form::ScalesInput => (None, float_values(op, "scales", scales)?, None),
            Form::Full => {
                let roi =
                    if self.coordinates == Coordinates::TfCropAndResize { float_values(op, "roi", roi)? } else { None };
                let sizes = match sizes {
                    None => None,
                    Some(sizes) if sizes.is_empty() => None,
                    Some(Tensor::I64(sizes)) if sizes.ndim() == 1 => Some(sizes.iter().copied().collect::<Vec<_>>()),
                    Some(other) => {
                        return Err(OpError::Invalid {
                            op,
                            reason: format!(
                                "sizes must be a 1-D int64 tensor, got {} {:?}",
                                other.dtype(),
                                other.shape()
                            ),
                        });
                    }
                };
                (roi, float_values(op, "scales", scales)?, sizes)
            }
        };
        plan_axes(op, shape, &axes, scales.as_deref(), sizes.as_deref(), self.aspect, roi.as_deref())
    }
}

impl Op for Resize {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        match self.form {
            Form::ScalesAttribute(_) => 1..=1,
            Form::ScalesInput => 2..=2,
            Form::Full => 1..=4,
        }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let value = |index: usize| inputs.get(index).and_then(|input| input.value);
        let given = |index: usize| inputs.get(index).is_some_and(|input| input.ty.is_some() || input.value.is_some());
        let known = match self.form {
            Form::ScalesAttribute(_) => true,
            Form::ScalesInput => value(1).is_some(),
            Form::Full => (1..4).all(|index| !given(index) || value(index).is_some()),
        };
        let dims = match (ty.fixed_shape(), known) {
            (Some(shape), true) => {
                let operands = match self.form {
                    Form::ScalesInput => [None, value(1), None],
                    _ => [value(1), value(2), value(3)],
                };
                self.plans(&shape, operands)
                    .ok()
                    .map(|plans| plans.iter().map(|plan| Dim::Fixed(plan.out_len)).collect())
            }
            _ => None,
        };
        let dims = dims.or_else(|| ty.rank().map(|rank| vec![Dim::Any; rank]));
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, self.name)?;
        check_dtype(self.name, x.dtype(), self.dtypes)?;
        let mut take = |index: usize| inputs.get_mut(index).and_then(Option::take);
        let operands = match self.form {
            Form::ScalesAttribute(_) => [None, None, None],
            Form::ScalesInput => [None, take(1), None],
            Form::Full => [take(1), take(2), take(3)],
        };
        let plans = self.plans(x.shape(), [operands[0].as_deref(), operands[1].as_deref(), operands[2].as_deref()])?;
        resize_tensor(self, &x, &plans, ctx)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn resize(interpolation: Interpolation, coordinates: Coordinates) -> Resize {
        Resize {
            name: "Resize",
            form: Form::Full,
            interpolation,
            coordinates,
            exclude_outside: false,
            extrapolation_value: 0.0,
            aspect: AspectPolicy::Stretch,
            axes: None,
            dtypes: &DType::ALL,
        }
    }

    fn run_1d(op: &Resize, x: &[f64], scale: f64) -> Vec<f64> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 };
        let x = Tensor::from(ndarray::Array1::from(x.to_vec()));
        let plans = plan_axes("Resize", x.shape(), &[0], Some(&[scale]), None, AspectPolicy::Stretch, None).unwrap();
        resize_tensor(op, &x, &plans, &ctx).unwrap().to_f64_vec()
    }

    #[test]
    fn linear_half_pixel_and_align_corners_match_hand_math() {
        // half_pixel, scale 2: x_ori = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped at the edges.
        let half = resize(Interpolation::Linear, Coordinates::HalfPixel);
        assert_eq!(run_1d(&half, &[1.0, 3.0], 2.0), [1.0, 1.5, 2.5, 3.0]);
        // align_corners, 2 → 4: x_ori = i * 1 / 3.
        let corners = resize(Interpolation::Linear, Coordinates::AlignCorners);
        let got = run_1d(&corners, &[1.0, 4.0], 2.0);
        let expected = [1.0, 2.0, 3.0, 4.0];
        assert!(got.iter().zip(expected).all(|(g, e)| (g - e).abs() < 1e-12), "{got:?}");
    }

    #[test]
    fn nearest_rounding_modes() {
        // asymmetric, scale 0.6 on 5 samples: 3 outputs at x_ori = 0, 1.667, 3.333.
        let x = [10.0, 11.0, 12.0, 13.0, 14.0];
        let floor = resize(Interpolation::Nearest(Rounding::Floor), Coordinates::Asymmetric);
        assert_eq!(run_1d(&floor, &x, 0.6), [10.0, 11.0, 13.0]);
        let ceil = resize(Interpolation::Nearest(Rounding::Ceil), Coordinates::Asymmetric);
        assert_eq!(run_1d(&ceil, &x, 0.6), [10.0, 12.0, 14.0]);
        // Halves: scale 2 asymmetric gives x_ori 0, 0.5, 1, 1.5.
        let prefer_floor = resize(Interpolation::Nearest(Rounding::PreferFloor), Coordinates::Asymmetric);
        assert_eq!(run_1d(&prefer_floor, &[1.0, 2.0], 2.0), [1.0, 1.0, 2.0, 2.0]);
        let prefer_ceil = resize(Interpolation::Nearest(Rounding::PreferCeil), Coordinates::Asymmetric);
        assert_eq!(run_1d(&prefer_ceil, &[1.0, 2.0], 2.0), [1.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn cubic_weights_sum_to_one_and_interpolate_samples() {
        for t in [0.0, 0.1, 0.5, 0.9] {
            let sum: f64 = cubic_weights(t, -0.75).iter().sum();
            assert!((sum - 1.0).abs() < 1e-12);
        }
        assert_eq!(cubic_weights(0.0, -0.5), [0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn sizes_policies_and_absurd_scales() {
        let plans = plan_axes("Resize", &[4, 6], &[0, 1], None, Some(&[2, 2]), AspectPolicy::NotLarger, None).unwrap();
        assert_eq!((plans[0].out_len, plans[1].out_len), (1, 2));
        let plans = plan_axes("Resize", &[4, 6], &[0, 1], None, Some(&[2, 2]), AspectPolicy::NotSmaller, None).unwrap();
        assert_eq!((plans[0].out_len, plans[1].out_len), (2, 3));
        assert!(plan_axes("Resize", &[4], &[0], Some(&[0.0]), None, AspectPolicy::Stretch, None).is_err());
        let op = resize(Interpolation::Linear, Coordinates::HalfPixel);
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 };
        let x = Tensor::from(array![1.0f32, 2.0]);
        let plans = plan_axes("Resize", &[2], &[0], Some(&[1e15]), None, AspectPolicy::Stretch, None).unwrap();
        assert!(resize_tensor(&op, &x, &plans, &ctx).unwrap_err().to_string().contains("size limit"));
        // Up 2^16 on one axis, down 2^-16 on the next: a small output, but an
        // intermediate of 2^32 values.
        let x = Tensor::from(ndarray::Array2::<f32>::zeros((1, 1 << 16)));
        let scales = [65536.0, 1.0 / 65536.0];
        let plans = plan_axes("Resize", x.shape(), &[0, 1], Some(&scales), None, AspectPolicy::Stretch, None).unwrap();
        assert_eq!((plans[0].out_len, plans[1].out_len), (65536, 1));
        assert!(resize_tensor(&op, &x, &plans, &ctx).unwrap_err().to_string().contains("size limit"));
    }
}
