//! ReverseSequence: reverses the first `sequence_lens[b]` steps of each
//! batch entry `b` along the time axis and keeps the rest (the backward
//! half of a bidirectional RNN over padded sequences).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__ReverseSequence.html>
//!
//! | opset | change                                |
//! |-------|---------------------------------------|
//! | 10    | first version                         |
//! | 28    | bfloat16                              |
//!
//! `batch_axis` and `time_axis` are 0 and 1 in either order (checked at
//! load). A length outside `[0, time steps]` is an error naming the batch
//! entry; a length of 0 or 1 leaves the entry as it is.

use ndarray::{ArrayViewD, Axis};

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, check_input_type, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::tensor::{DType, Item, Tensor};

/// Registers ReverseSequence.
pub fn register(reg: &mut Registry) {
    reg.add("", "ReverseSequence", &[10, 28], reverse_sequence_dtypes, ReverseSequence::from_node);
}

fn reverse_sequence_dtypes(version: i64) -> &'static [DType] {
    super::classic_moved_types(version, 28)
}

/// ReverseSequence.
#[derive(Debug, Clone, PartialEq)]
pub struct ReverseSequence {
    /// The batch axis, 0 or 1 (default 1).
    pub batch_axis: usize,
    /// The time axis, the other of 0 and 1 (default 0).
    pub time_axis: usize,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl ReverseSequence {
    /// Reads `batch_axis` and `time_axis`.
    ///
    /// # Errors
    /// An axis other than 0 or 1, or both the same.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let batch_axis = attrs.i64("batch_axis")?.unwrap_or(1);
        let time_axis = attrs.i64("time_axis")?.unwrap_or(0);
        match (batch_axis, time_axis) {
            (0, 1) | (1, 0) => Ok(ReverseSequence {
                batch_axis: batch_axis as usize,
                time_axis: time_axis as usize,
                dtypes: reverse_sequence_dtypes(version),
            }),
            _ => Err(attrs.error(
                "batch_axis",
                format!("batch_axis {batch_axis} and time_axis {time_axis} must be 0 and 1 in some order"),
            )),
        }
    }
}

fn reverse_typed<T: Item>(x: ArrayViewD<'_, T>, lens: &[usize], batch_axis: usize, time_axis: usize) -> Tensor {
    let mut out = x.as_standard_layout().into_owned();
    // With the batch axis taken out, the time axis is 0 (both are 0 or 1).
    let time_in_entry = Axis(time_axis.saturating_sub(usize::from(time_axis > batch_axis)));
    for (entry, &len) in lens.iter().enumerate() {
        let source = x.index_axis(Axis(batch_axis), entry);
        let mut target = out.index_axis_mut(Axis(batch_axis), entry);
        for step in 0..len {
            target.index_axis_mut(time_in_entry, step).assign(&source.index_axis(time_in_entry, len - 1 - step));
        }
    }
    T::wrap(out)
}

/// ReverseSequence's kernel.
///
/// # Errors
/// An input of rank below 2, lengths that are not int64 of shape
/// `[batch]`, or a length outside `[0, time steps]`.
pub fn reverse_sequence(
    x: &Tensor,
    sequence_lens: &Tensor,
    batch_axis: usize,
    time_axis: usize,
) -> Result<Tensor, OpError> {
    const OP: &str = "ReverseSequence";
    let shape = x.shape();
    if shape.len() < 2 {
        return Err(OpError::Invalid { op: OP, reason: format!("input must have rank 2 or more, got {shape:?}") });
    }
    let (batch, steps) = (shape[batch_axis], shape[time_axis]);
    let lens = match sequence_lens {
        Tensor::I64(array) if array.shape() == [batch] => array,
        other => {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!(
                    "sequence_lens must be int64 of shape [{batch}], got {} {:?}",
                    other.dtype(),
                    other.shape()
                ),
            });
        }
    };
    let lens: Vec<usize> = lens
        .iter()
        .enumerate()
        .map(|(entry, &len)| {
            usize::try_from(len).ok().filter(|&len| len <= steps).ok_or_else(|| OpError::Invalid {
                op: OP,
                reason: format!("sequence length {len} of batch entry {entry} is outside [0, {steps}]"),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(dispatch!(x, array => reverse_typed(array.view(), &lens, batch_axis, time_axis)))
}

impl Op for ReverseSequence {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("ReverseSequence", inputs, 0, self.dtypes)
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "ReverseSequence")?;
        check_dtype("ReverseSequence", x.dtype(), self.dtypes)?;
        let sequence_lens = required(inputs, 1, "ReverseSequence")?;
        reverse_sequence(&x, &sequence_lens, self.batch_axis, self.time_axis)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::tensor::Str;

    /// The spec's two examples.
    #[test]
    fn matches_the_spec_examples() {
        let x = Tensor::from(array![
            [0.0f32, 4.0, 8.0, 12.0],
            [1.0, 5.0, 9.0, 13.0],
            [2.0, 6.0, 10.0, 14.0],
            [3.0, 7.0, 11.0, 15.0]
        ]);
        let out = reverse_sequence(&x, &Tensor::from(array![4i64, 3, 2, 1]), 1, 0).unwrap();
        let expected =
            array![[3.0f32, 6.0, 9.0, 12.0], [2.0, 5.0, 8.0, 13.0], [1.0, 4.0, 10.0, 14.0], [0.0, 7.0, 11.0, 15.0]];
        assert_eq!(out, Tensor::from(expected));
        let x = Tensor::from(array![
            [0.0f32, 1.0, 2.0, 3.0],
            [4.0, 5.0, 6.0, 7.0],
            [8.0, 9.0, 10.0, 11.0],
            [12.0, 13.0, 14.0, 15.0]
        ]);
        let out = reverse_sequence(&x, &Tensor::from(array![1i64, 2, 3, 4]), 0, 1).unwrap();
        let expected =
            array![[0.0f32, 1.0, 2.0, 3.0], [5.0, 4.0, 6.0, 7.0], [10.0, 9.0, 8.0, 11.0], [15.0, 14.0, 13.0, 12.0]];
        assert_eq!(out, Tensor::from(expected));
    }

    #[test]
    fn moves_rank_3_strings_and_refuses_bad_lengths() {
        // [time 3, batch 2, 1]: entry 0 reverses all 3 steps, entry 1 none.
        let words: Vec<Str> = ["a", "x", "b", "y", "c", "z"].iter().map(|&t| Str::from(t)).collect();
        let x = Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[3, 2, 1]), words).unwrap());
        let out = reverse_sequence(&x, &Tensor::from(array![3i64, 0]), 1, 0).unwrap();
        let text: Vec<String> = out.view::<Str>().unwrap().iter().map(|t| t.to_string()).collect();
        assert_eq!(text, ["c", "x", "b", "y", "a", "z"]);
        let err = reverse_sequence(&x, &Tensor::from(array![4i64, 0]), 1, 0).unwrap_err();
        assert_eq!(err.to_string(), "ReverseSequence: sequence length 4 of batch entry 0 is outside [0, 3]");
        let err = reverse_sequence(&x, &Tensor::from(array![1i64, -1]), 1, 0).unwrap_err();
        assert!(err.to_string().contains("sequence length -1 of batch entry 1"), "{err}");
        let err = reverse_sequence(&x, &Tensor::from(array![1i32, 1]), 1, 0).unwrap_err();
        assert!(err.to_string().contains("must be int64 of shape [2]"), "{err}");
    }
}
