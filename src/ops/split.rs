//! Split: one tensor into several along an axis (the first op with several
//! outputs and an optional input).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Split.html>
//!
//! | opset | how the sizes are given                                          |
//! |-------|------------------------------------------------------------------|
//! | 1     | `split` attribute or optional second input; `axis` default 0     |
//! | 2     | `split` attribute only; more element types                       |
//! | 11    | negative `axis` allowed                                          |
//! | 13    | `split` is an optional int64 input; bfloat16                     |
//! | 18    | `num_outputs` attribute (last part smaller), or the `split` input |
//!
//! Without sizes, the axis is split into as many equal parts as the node
//! has outputs (the dimension must divide evenly).

use ndarray::{Axis, Slice};

use super::{ExecCtx, Inputs, Op, OutputSet, Registry, first_output, normalize_axis, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor};

/// Registers Split.
pub fn register(reg: &mut Registry) {
    reg.add("", "Split", &[1, 2, 11, 13, 18], split_dtypes, Split::from_node);
}

fn split_dtypes(version: i64) -> &'static [DType] {
    match version {
        1 => super::FLOATS,
        _ => super::moved_types(version),
    }
}

/// Where the part sizes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Sizes {
    /// The `split` attribute (opset < 13).
    Attribute(Vec<i64>),
    /// The optional int64 `split` input (opset 1 and 13+); equal parts when
    /// it is omitted.
    Input,
    /// `num_outputs` equal parts of `ceil(dim / n)`, the last one smaller
    /// (opset 18).
    NumOutputs(usize),
}

/// Split along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The axis (negative counts from the end from opset 11).
    pub axis: i64,
    /// Where the part sizes come from.
    pub sizes: Sizes,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Split {
    /// Reads `axis`, `split` or `num_outputs` as the version defines them.
    ///
    /// # Errors
    /// A negative axis before opset 11, a negative part size, or
    /// `num_outputs` below 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?.unwrap_or(0);
        if version < 11 && axis < 0 {
            return Err(attrs.error("axis", "negative axes need opset 11 or newer"));
        }
        let sizes = match version {
            ..13 => match attrs.ints("split")? {
                Some(sizes) if sizes.iter().any(|&size| size < 0) => {
                    return Err(attrs.error("split", "part sizes must not be negative"));
                }
                Some(sizes) => Sizes::Attribute(sizes),
                None => Sizes::Input,
            },
            13..18 => Sizes::Input,
            _ => match attrs.i64("num_outputs")? {
                Some(n) if n >= 1 => Sizes::NumOutputs(usize::try_from(n).unwrap_or(usize::MAX)),
                Some(_) => return Err(attrs.error("num_outputs", "must be at least 1")),
                None => Sizes::Input,
            },
        };
        Ok(Split { axis, sizes, dtypes: split_dtypes(version) })
    }

    /// The part sizes for a dimension of `dim` and `n_outputs` outputs.
    fn part_sizes(&self, dim: usize, n_outputs: usize, split: Option<&Tensor>) -> Result<Vec<usize>, OpError> {
        let invalid = |reason: String| OpError::Invalid { op: "Split", reason };
        let given: Option<Vec<i64>> = match (&self.sizes, split) {
            (Sizes::Attribute(sizes), _) => Some(sizes.clone()),
            (Sizes::NumOutputs(_), Some(_)) => {
                return Err(invalid("both the num_outputs attribute and the split input are given".into()));
            }
            (_, Some(Tensor::I64(array))) if array.ndim() <= 1 => Some(array.iter().copied().collect()),
            (_, Some(other)) => {
                return Err(invalid(format!(
                    "split must be a 1-D int64 tensor, got {} {:?}",
                    other.dtype(),
                    other.shape()
                )));
            }
            _ => None,
        };
        let sizes = match (given, &self.sizes) {
            (Some(sizes), _) => {
                let sizes: Vec<usize> = sizes
                    .iter()
                    .map(|&size| usize::try_from(size).map_err(|_| invalid(format!("part size {size} is negative"))))
                    .collect::<Result<_, _>>()?;
                let total = sizes.iter().try_fold(0usize, |sum, &size| sum.checked_add(size));
                if total != Some(dim) {
                    return Err(invalid(format!("part sizes {sizes:?} do not add up to the axis length {dim}")));
                }
                sizes
            }
            (None, Sizes::NumOutputs(n)) => {
                if *n != n_outputs {
                    return Err(invalid(format!("num_outputs is {n} but the node has {n_outputs} outputs")));
                }
                // ceil(dim / n) per part, the last one what is left; parts
                // past the end of the axis are empty.
                let chunk = dim.div_ceil(*n);
                (0..*n).map(|idx| dim.saturating_sub(idx * chunk).min(chunk)).collect()
            }
            (None, _) => {
                if n_outputs == 0 || !dim.is_multiple_of(n_outputs) {
                    return Err(invalid(format!("axis length {dim} does not split into {n_outputs} equal parts")));
                }
                vec![dim / n_outputs; n_outputs]
            }
        };
        if sizes.len() != n_outputs {
            return Err(invalid(format!("{} part sizes given for {n_outputs} outputs", sizes.len())));
        }
        Ok(sizes)
    }
}

impl Op for Split {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        match self.sizes {
            Sizes::Attribute(_) => 1..=1,
            _ => 1..=2,
        }
    }

    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=usize::MAX
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let Some(dims) = ty.dims.as_ref() else {
            return vec![Some(ty.clone()); n_outputs];
        };
        let Ok(axis) = normalize_axis("Split", self.axis, dims.len()) else {
            return Vec::new();
        };
        // A split input that is given but not constant leaves the sizes unknown.
        let split = inputs.get(1).filter(|input| input.ty.is_some() || input.value.is_some());
        let sizes = match (&dims[axis], split) {
            (Dim::Fixed(dim), None) => self.part_sizes(*dim, n_outputs, None).ok(),
            (Dim::Fixed(dim), Some(InferInput { value: Some(split), .. })) => {
                self.part_sizes(*dim, n_outputs, Some(split)).ok()
            }
            _ => None,
        };
        (0..n_outputs)
            .map(|idx| {
                let mut out = dims.clone();
                out[axis] = sizes.as_ref().map_or(Dim::Any, |sizes| Dim::Fixed(sizes[idx]));
                Some(ValueType { dtype: ty.dtype, dims: Some(out) })
            })
            .collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "Split")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        _ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let x = required(inputs, 0, "Split")?;
        super::check_dtype("Split", x.dtype(), self.dtypes)?;
        let split = inputs.get_mut(1).and_then(Option::take);
        let axis = normalize_axis("Split", self.axis, x.shape().len())?;
        let sizes = self.part_sizes(x.shape()[axis], outputs.len(), split.as_deref())?;
        let mut start = 0;
        for (idx, size) in sizes.into_iter().enumerate() {
            let end = start + size;
            if outputs.wanted(idx) {
                let part = dispatch!(x.as_ref(), array => {
                    Tensor::from(array.slice_axis(Axis(axis), Slice::from(start..end)).to_owned())
                });
                outputs.set(idx, part);
            }
            start = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn, array};

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &Split, x: Tensor, split: Option<Tensor>, n_outputs: usize) -> Result<Vec<Option<Tensor>>, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut values = vec![None; n_outputs];
        let wanted = vec![true; n_outputs];
        let mut inputs = [Some(Cow::Owned(x)), split.map(Cow::Owned)];
        op.run_outputs(&mut inputs, &ctx, &mut OutputSet::new(&mut values, &wanted))?;
        Ok(values)
    }

    fn split(axis: i64, sizes: Sizes) -> Split {
        Split { axis, sizes, dtypes: &DType::ALL }
    }

    /// Each output's shape and values.
    type Parts = Vec<(Vec<usize>, Vec<f64>)>;

    fn values(parts: &[Option<Tensor>]) -> Parts {
        parts.iter().flatten().map(|part| (part.shape().to_vec(), part.to_f64_vec())).collect()
    }

    #[test]
    fn splits_by_sizes_equal_parts_and_num_outputs() {
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 5]), (0..10).map(f64::from).collect()).unwrap());
        struct Case {
            op: Split,
            split: Option<Tensor>,
            n_outputs: usize,
            expected: Result<Parts, &'static str>,
        }
        let cases = [
            Case {
                op: split(1, Sizes::Attribute(vec![2, 3])),
                split: None,
                n_outputs: 2,
                expected: Ok(vec![(vec![2, 2], vec![0., 1., 5., 6.]), (vec![2, 3], vec![2., 3., 4., 7., 8., 9.])]),
            },
            Case {
                op: split(-1, Sizes::Input),
                split: Some(Tensor::from(array![1i64, 0, 4].into_dyn())),
                n_outputs: 3,
                expected: Ok(vec![
                    (vec![2, 1], vec![0., 5.]),
                    (vec![2, 0], vec![]),
                    (vec![2, 4], vec![1., 2., 3., 4., 6., 7., 8., 9.]),
                ]),
            },
            Case {
                op: split(0, Sizes::Input),
                split: None,
                n_outputs: 2,
                expected: Ok(vec![(vec![1, 5], vec![0., 1., 2., 3., 4.]), (vec![1, 5], vec![5., 6., 7., 8., 9.])]),
            },
            // num_outputs 3 over 5: parts of ceil(5/3) = 2, the last 1.
            Case {
                op: split(1, Sizes::NumOutputs(3)),
                split: None,
                n_outputs: 3,
                expected: Ok(vec![
                    (vec![2, 2], vec![0., 1., 5., 6.]),
                    (vec![2, 2], vec![2., 3., 7., 8.]),
                    (vec![2, 1], vec![4., 9.]),
                ]),
            },
            Case { op: split(1, Sizes::Input), split: None, n_outputs: 2, expected: Err("equal parts") },
            Case {
                op: split(1, Sizes::Attribute(vec![2, 2])),
                split: None,
                n_outputs: 2,
                expected: Err("do not add up"),
            },
            Case {
                op: split(1, Sizes::Input),
                split: Some(Tensor::from(array![5i64, -0, 0].into_dyn())),
                n_outputs: 2,
                expected: Err("3 part sizes given for 2 outputs"),
            },
            Case {
                op: split(1, Sizes::Input),
                split: Some(Tensor::from(array![6i64, -1].into_dyn())),
                n_outputs: 2,
                expected: Err("negative"),
            },
            Case {
                op: split(1, Sizes::Input),
                split: Some(Tensor::from(array![i64::MAX, i64::MAX, 7].into_dyn())),
                n_outputs: 3,
                expected: Err("do not add up"),
            },
            Case { op: split(1, Sizes::NumOutputs(3)), split: None, n_outputs: 2, expected: Err("num_outputs is 3") },
            Case {
                op: split(1, Sizes::NumOutputs(2)),
                split: Some(Tensor::from(array![1i64, 4].into_dyn())),
                n_outputs: 2,
                expected: Err("both"),
            },
            Case {
                op: split(2, Sizes::Input),
                split: None,
                n_outputs: 1,
                expected: Err("axis 2 out of range for rank 2"),
            },
            Case {
                op: split(1, Sizes::Input),
                split: Some(Tensor::from(array![2.0f32, 3.0].into_dyn())),
                n_outputs: 2,
                expected: Err("1-D int64"),
            },
        ];
        for (idx, case) in cases.into_iter().enumerate() {
            let result = run(&case.op, x.clone(), case.split, case.n_outputs);
            match (result, case.expected) {
                (Ok(parts), Ok(expected)) => assert_eq!(values(&parts), expected, "case {idx}"),
                (Err(err), Err(needle)) => assert!(err.to_string().contains(needle), "case {idx}: {err}"),
                (got, want) => panic!("case {idx}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unwanted_outputs_are_not_computed_and_the_first_output_alone_works() {
        let x = Tensor::from(array![1i32, 2, 3, 4].into_dyn());
        let op = split(0, Sizes::Input);
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut values = vec![None, None];
        let wanted = [false, true];
        let mut inputs = [Some(Cow::Borrowed(&x))];
        op.run_outputs(&mut inputs, &ctx, &mut OutputSet::new(&mut values, &wanted)).unwrap();
        assert!(values[0].is_none());
        assert_eq!(values[1].as_ref().unwrap().to_f64_vec(), [3.0, 4.0]);
        // A node with one output keeps the whole tensor.
        let mut inputs = [Some(Cow::Borrowed(&x))];
        assert_eq!(op.run(&mut inputs, &ctx).unwrap().to_f64_vec(), [1.0, 2.0, 3.0, 4.0]);
    }
}
