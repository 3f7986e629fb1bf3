//! Slice: a strided sub-tensor along some axes (numpy's `x[a:b:c]`).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Slice.html>
//!
//! | opset | change                                                          |
//! |-------|-----------------------------------------------------------------|
//! | 1     | `starts`, `ends`, optional `axes` attributes; step 1            |
//! | 10    | `starts`, `ends`, `axes`, `steps` are int32/int64 inputs         |
//! | 11    | negative `axes` allowed; the clamping rules written out          |
//! | 13    | bfloat16                                                        |
//!
//! Every version clamps the same way (the opset-11 text): a negative start
//! or end has the dimension added; with a positive step the start and end
//! are clamped to `[0, dim]`, with a negative one the start to
//! `[0, dim - 1]` and the end to `[-1, dim - 1]`.

use ndarray::Slice as Range;

use super::values::int_values;
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor};

/// Registers Slice.
pub fn register(reg: &mut Registry) {
    reg.add("", "Slice", &[1, 10, 11, 13], slice_dtypes, Slice::from_node);
}

fn slice_dtypes(version: i64) -> &'static [DType] {
    super::moved_types(version)
}

/// Where the starts, ends, axes and steps come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    /// Attributes (opset 1): starts, ends and the axes if given.
    Attributes {
        /// First index per axis.
        starts: Vec<i64>,
        /// End (exclusive) per axis.
        ends: Vec<i64>,
        /// The axes, or all of them from 0.
        axes: Option<Vec<i64>>,
    },
    /// Inputs 1 to 4 (opset 10+).
    Inputs,
}

/// Slice.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// Where the parameters come from.
    pub params: Params,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Slice {
    /// Reads the opset-1 attributes.
    ///
    /// # Errors
    /// Missing `starts` or `ends` at opset 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let params = if version < 10 {
            let starts = attrs.ints("starts")?.ok_or_else(|| attrs.error("starts", "is required"))?;
            let ends = attrs.ints("ends")?.ok_or_else(|| attrs.error("ends", "is required"))?;
            Params::Attributes { starts, ends, axes: attrs.ints("axes")? }
        } else {
            Params::Inputs
        };
        Ok(Slice { params, dtypes: slice_dtypes(version) })
    }
}

/// One axis of a slice after the spec's clamping: the first index, the
/// number of elements taken, and the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisSlice {
    /// First index taken.
    pub start: usize,
    /// Elements taken.
    pub len: usize,
    /// Step (never 0).
    pub step: i64,
}

impl AxisSlice {
    /// Applies ONNX's rules to `start:end:step` on a dimension of `dim`.
    ///
    /// # Errors
    /// A zero step.
    pub fn new(dim: usize, start: i64, end: i64, step: i64) -> Result<Self, OpError> {
        if step == 0 {
            return Err(OpError::Invalid { op: "Slice", reason: "a step is 0".into() });
        }
        if dim == 0 {
            return Ok(AxisSlice { start: 0, len: 0, step });
        }
        let dim_i = i64::try_from(dim).unwrap_or(i64::MAX);
        let adjust = |value: i64| if value < 0 { value.saturating_add(dim_i) } else { value };
        let (start, end) = (adjust(start), adjust(end));
        let (start, end) = if step > 0 {
            (start.clamp(0, dim_i), end.clamp(0, dim_i))
        } else {
            (start.clamp(0, dim_i - 1), end.clamp(-1, dim_i - 1))
        };
        // Elements start, start + step, … strictly before `end`.
        let span = if step > 0 { end - start } else { start - end };
        let len = if span <= 0 { 0 } else { (span - 1).unsigned_abs() / step.unsigned_abs() + 1 };
        Ok(AxisSlice { start: start.max(0) as usize, len: len as usize, step })
    }

    /// The same elements as an ndarray slice (which steps backwards from the
    /// end of its range when the step is negative).
    fn range(self) -> Range {
        if self.len == 0 {
            return Range::new(0, Some(0), 1);
        }
        if self.len == 1 {
            // One element: a unit step, whatever the given one (which may be
            // as large as i64::MIN, too large for ndarray to negate).
            return Range::new(self.start as isize, Some(self.start as isize + 1), 1);
        }
        let start = self.start as isize;
        let step = self.step as isize;
        let last = start + step * (self.len as isize - 1);
        if step > 0 { Range::new(start, Some(last + 1), step) } else { Range::new(last, Some(start + 1), step) }
    }
}

/// Resolves the per-axis slices of an input of `shape`.
///
/// # Errors
/// Lists of different lengths, an axis out of range or repeated, a zero step.
pub fn axis_slices(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<AxisSlice>, OpError> {
    let invalid = |reason: String| OpError::Invalid { op: "Slice", reason };
    let n = starts.len();
    if ends.len() != n || axes.is_some_and(|axes| axes.len() != n) || steps.is_some_and(|steps| steps.len() != n) {
        return Err(invalid(format!(
            "starts, ends, axes and steps differ in length ({n}, {}, {:?}, {:?})",
            ends.len(),
            axes.map(<[i64]>::len),
            steps.map(<[i64]>::len)
        )));
    }
    let mut slices: Vec<AxisSlice> = shape.iter().map(|&dim| AxisSlice { start: 0, len: dim, step: 1 }).collect();
    let mut seen = vec![false; shape.len()];
    for idx in 0..n {
        let axis = match axes {
            Some(axes) => normalize_axis("Slice", axes[idx], shape.len())?,
            None if idx < shape.len() => idx,
            None => return Err(invalid(format!("{n} starts for an input of rank {}", shape.len()))),
        };
        if std::mem::replace(&mut seen[axis], true) {
            return Err(invalid(format!("axis {axis} is sliced twice")));
        }
        let step = steps.map_or(1, |steps| steps[idx]);
        slices[axis] = AxisSlice::new(shape[axis], starts[idx], ends[idx], step)?;
    }
    Ok(slices)
}

/// Slice's kernel: the elements the per-axis slices select, as a new
/// standard-layout tensor.
pub fn slice(x: &Tensor, slices: &[AxisSlice]) -> Tensor {
    dispatch!(x, array => {
        let view = array.slice_each_axis(|axis| slices[axis.axis.index()].range());
        Tensor::from(view.as_standard_layout().into_owned())
    })
}

fn optional_values(inputs: &mut Inputs<'_>, index: usize, what: &str) -> Result<Option<Vec<i64>>, OpError> {
    inputs.get_mut(index).and_then(Option::take).map(|tensor| int_values("Slice", what, &tensor)).transpose()
}

impl Op for Slice {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        match self.params {
            Params::Attributes { .. } => 1..=1,
            Params::Inputs => 3..=5,
        }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let values = |index: usize| {
            inputs.get(index).and_then(|input| input.value).and_then(|value| int_values("Slice", "", value).ok())
        };
        // An omitted optional input; one that is given but not constant
        // leaves the shape unknown.
        let absent = |index: usize| inputs.get(index).is_none_or(|input| input.ty.is_none() && input.value.is_none());
        let optional = |index: usize| if absent(index) { Some(None) } else { values(index).map(Some) };
        let dims = (|| {
            let shape = ty.fixed_shape()?;
            let (starts, ends, axes, steps) = match &self.params {
                Params::Attributes { starts, ends, axes } => (starts.clone(), ends.clone(), axes.clone(), None),
                Params::Inputs => (values(1)?, values(2)?, optional(3)?, optional(4)?),
            };
            let slices = axis_slices(&shape, &starts, &ends, axes.as_deref(), steps.as_deref()).ok()?;
            Some(slices.iter().map(|slice| Dim::Fixed(slice.len)).collect())
        })();
        let dims = dims.or_else(|| ty.rank().map(|rank| vec![Dim::Any; rank]));
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Slice")?;
        check_dtype("Slice", x.dtype(), self.dtypes)?;
        let slices = match &self.params {
            Params::Attributes { starts, ends, axes } => axis_slices(x.shape(), starts, ends, axes.as_deref(), None)?,
            Params::Inputs => {
                let starts = int_values("Slice", "starts", required(inputs, 1, "Slice")?.as_ref())?;
                let ends = int_values("Slice", "ends", required(inputs, 2, "Slice")?.as_ref())?;
                let axes = optional_values(inputs, 3, "axes")?;
                let steps = optional_values(inputs, 4, "steps")?;
                axis_slices(x.shape(), &starts, &ends, axes.as_deref(), steps.as_deref())?
            }
        };
        // Everything selected: the input itself, shared, not copied.
        if slices.iter().zip(x.shape()).all(|(slice, &dim)| slice.start == 0 && slice.len == dim && slice.step == 1) {
            return Ok(x.into_owned());
        }
        Ok(slice(&x, &slices))
    }
}

/// A tensor of `shape` from row-major values (tests).
#[cfg(test)]
pub(crate) fn f32_tensor(shape: &[usize], values: &[f32]) -> Tensor {
    Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values.to_vec()).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy-style `range(start, end, step)` indices on a dim, written from
    /// the spec's text independently of [`AxisSlice::new`].
    fn reference(dim: i64, start: i64, end: i64, step: i64) -> Vec<i64> {
        if dim == 0 {
            return Vec::new();
        }
        let (dim, step) = (i128::from(dim), i128::from(step));
        let fix = |v: i64| if v < 0 { i128::from(v) + dim } else { i128::from(v) };
        let (mut start, mut end) = (fix(start), fix(end));
        let mut out = Vec::new();
        if step > 0 {
            start = start.clamp(0, dim);
            end = end.clamp(0, dim);
            let mut i = start;
            while i < end {
                out.push(i as i64);
                i += step;
            }
        } else {
            start = start.clamp(0, dim - 1);
            end = end.clamp(-1, dim - 1);
            let mut i = start;
            while i > end {
                out.push(i as i64);
                i += step;
            }
        }
        out
    }

    #[test]
    fn every_start_end_step_matches_the_spec_rules() {
        for dim in 0..5i64 {
            for start in [-7, -3, -1, 0, 1, 2, 4, 6, i64::MIN, i64::MAX] {
                for end in [-7, -3, -1, 0, 1, 3, 5, 9, i64::MIN, i64::MAX] {
                    for step in [-3, -2, -1, 1, 2, 3, i64::MIN, i64::MAX] {
                        let x = f32_tensor(&[dim as usize], &(0..dim).map(|v| v as f32).collect::<Vec<_>>());
                        let slices = axis_slices(&[dim as usize], &[start], &[end], None, Some(&[step])).unwrap();
                        let got: Vec<i64> = slice(&x, &slices).to_f64_vec().iter().map(|&v| v as i64).collect();
                        assert_eq!(got, reference(dim, start, end, step), "dim {dim} {start}:{end}:{step}");
                    }
                }
            }
        }
    }

    #[test]
    fn axes_and_steps_on_a_matrix() {
        // The spec's example 1.
        let x = f32_tensor(&[2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let slices = axis_slices(x.shape(), &[1, 0], &[2, 3], Some(&[0, 1]), Some(&[1, 2])).unwrap();
        assert_eq!(slice(&x, &slices), f32_tensor(&[1, 2], &[5.0, 7.0]));
        // Negative axis, negative step: the columns reversed.
        let slices = axis_slices(x.shape(), &[-1], &[i64::MIN], Some(&[-1]), Some(&[-1])).unwrap();
        assert_eq!(slice(&x, &slices), f32_tensor(&[2, 4], &[4.0, 3.0, 2.0, 1.0, 8.0, 7.0, 6.0, 5.0]));
    }

    #[test]
    fn bad_parameters_are_errors() {
        let err = axis_slices(&[4], &[0], &[4], None, Some(&[0])).unwrap_err();
        assert!(err.to_string().contains("step is 0"), "{err}");
        assert!(
            axis_slices(&[4, 4], &[0, 0], &[1, 1], Some(&[1, -1]), None).unwrap_err().to_string().contains("twice")
        );
        assert!(axis_slices(&[4], &[0], &[1, 2], None, None).is_err());
        assert_eq!(
            axis_slices(&[4], &[0], &[1], Some(&[1]), None).unwrap_err(),
            OpError::AxisOutOfRange { op: "Slice", axis: 1, rank: 1 }
        );
    }
}
