//! CenterCropPad: crops or zero-pads chosen axes to given sizes, centred.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__CenterCropPad.html>
//!
//! | opset | behaviour                                                    |
//! |-------|--------------------------------------------------------------|
//! | 18    | `shape` input (int32/int64), `axes` attribute (default all)  |
//!
//! Along each listed axis of size `d` with target `s`: when `d > s` the
//! window starts at `(d - s) / 2` (rounded down); when `d < s` the input
//! starts at `(s - d) / 2` in the output (the odd pixel of padding goes to
//! the end), the rest being zero (false, the empty string). Other axes are
//! kept. Every element type but complex (which onnxi lacks).

use ndarray::{ArrayD, IxDyn, Slice};

use super::values::{int_values, sizes};
use super::{
    ExecCtx, Inputs, Op, Registry, check_dtype, check_input_type, classic_moved_types, normalize_axis, required,
};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Item, SharedArray, Tensor};

/// Registers CenterCropPad.
pub fn register(reg: &mut Registry) {
    reg.add("", "CenterCropPad", &[18], center_crop_pad_types, CenterCropPad::from_node);
}

fn center_crop_pad_types(version: i64) -> &'static [DType] {
    classic_moved_types(version, 13)
}

/// Per axis, `(input start, output start, length)` of the copied block.
type Block = (usize, usize, usize);

/// CenterCropPad.
#[derive(Debug, Clone, PartialEq)]
pub struct CenterCropPad {
    /// The axes `shape` gives sizes for (default every axis).
    pub axes: Option<Vec<i64>>,
}

impl CenterCropPad {
    /// Reads `axes`.
    ///
    /// # Errors
    /// `axes` of the wrong attribute type.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(CenterCropPad { axes: attrs.ints("axes")? })
    }

    /// The output shape and, per axis, `(input start, output start, length)`
    /// of the copied block.
    fn plan(&self, input: &[usize], targets: &[usize]) -> Result<(Vec<usize>, Vec<Block>), OpError> {
        const OP: &str = "CenterCropPad";
        let rank = input.len();
        let axes: Vec<usize> = match &self.axes {
            Some(axes) => axes.iter().map(|&axis| normalize_axis(OP, axis, rank)).collect::<Result<_, _>>()?,
            None => (0..rank).collect(),
        };
        if axes.len() != targets.len() {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!("shape {targets:?} has {} values for {} axes", targets.len(), axes.len()),
            });
        }
        let mut output = input.to_vec();
        let mut seen = vec![false; rank];
        for (&axis, &target) in axes.iter().zip(targets) {
            if std::mem::replace(&mut seen[axis], true) {
                return Err(OpError::Invalid { op: OP, reason: format!("axis {axis} is listed twice") });
            }
            output[axis] = target;
        }
        let blocks = input
            .iter()
            .zip(&output)
            .map(|(&d, &s)| if d >= s { ((d - s) / 2, 0, s) } else { (0, (s - d) / 2, d) })
            .collect();
        Ok((output, blocks))
    }
}

/// Copies the block of `array` into a default-filled array of `shape`.
fn crop_pad<T: Item + Default>(array: &SharedArray<T>, shape: &[usize], blocks: &[Block]) -> Tensor {
    let mut out = ArrayD::from_elem(IxDyn(shape), T::default());
    let source = array.slice_each_axis(|axis| {
        Slice::from(blocks[axis.axis.index()].0..blocks[axis.axis.index()].0 + blocks[axis.axis.index()].2)
    });
    out.slice_each_axis_mut(|axis| {
        let (_, start, len) = blocks[axis.axis.index()];
        Slice::from(start..start + len)
    })
    .assign(&source);
    T::wrap(out)
}

impl Op for CenterCropPad {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("CenterCropPad", inputs, 0, center_crop_pad_types(18))?;
        check_input_type("CenterCropPad", inputs, 1, &[DType::I32, DType::I64])
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let fixed = ty.fixed_shape();
        let targets = inputs.get(1).and_then(InferInput::int64_values);
        if let (Some(input), Some(targets)) = (fixed, targets)
            && let Ok(targets) = sizes("CenterCropPad", "shape", &targets)
            && let Ok((output, _)) = self.plan(&input, &targets)
        {
            return vec![Some(ValueType::fixed(ty.dtype, &output))];
        }
        vec![Some(ValueType { dtype: ty.dtype, dims: ty.rank().map(|rank| vec![Dim::Any; rank]) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "CenterCropPad";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), center_crop_pad_types(18))?;
        let targets = sizes(OP, "shape", &int_values(OP, "shape", required(inputs, 1, OP)?.as_ref())?)?;
        let (output, blocks) = self.plan(x.shape(), &targets)?;
        ctx.checked_elems(OP, x.dtype(), &output)?;
        Ok(dispatch!(x.as_ref(), array => crop_pad(array, &output, &blocks)))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::arr1;

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &CenterCropPad, x: Tensor, shape: &[i64]) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 30 };
        op.run(&mut [Some(Cow::Owned(x)), Some(Cow::Owned(Tensor::from(arr1(shape))))], &ctx)
    }

    #[test]
    fn crops_low_and_pads_high_when_odd() {
        let op = CenterCropPad { axes: None };
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[5]), vec![1i32, 2, 3, 4, 5]).unwrap());
        // 5 → 2: start (5 - 2) / 2 = 1.
        assert_eq!(run(&op, x.clone(), &[2]).unwrap().to_f64_vec(), [2.0, 3.0]);
        // 5 → 8: 3 pads, 1 before and 2 after.
        assert_eq!(run(&op, x.clone(), &[8]).unwrap().to_f64_vec(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]);
        // Crop one axis and pad the other, with negative axes.
        let op = CenterCropPad { axes: Some(vec![-1, -2]) };
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
        let out = run(&op, x, &[1, 4]).unwrap();
        assert_eq!(out.shape(), [4, 1]);
        assert_eq!(out.to_f64_vec(), [0.0, 2.0, 5.0, 0.0]);
    }

    #[test]
    fn refuses_mismatched_shapes_and_repeated_axes() {
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1u8, 2, 3, 4]).unwrap());
        assert!(run(&CenterCropPad { axes: None }, x.clone(), &[2]).is_err());
        assert!(run(&CenterCropPad { axes: Some(vec![0, -2]) }, x.clone(), &[1, 1]).is_err());
        assert!(run(&CenterCropPad { axes: None }, x.clone(), &[-1, 2]).is_err());
        assert!(run(&CenterCropPad { axes: None }, x, &[1 << 40, 1 << 40]).is_err());
    }
}
