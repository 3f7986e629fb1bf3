//! Unique: the distinct elements (or slices along an axis) of a tensor,
//! with where each first occurs, where each input entry went and how
//! often each occurs (numpy's `unique` with all of its outputs).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Unique.html>
//!
//! | opset | change                                 |
//! |-------|----------------------------------------|
//! | 11    | first version                          |
//! | 28    | bfloat16                               |
//!
//! Sorted output is ascending; slices along an axis compare element by
//! element from the first (lexicographically), as numpy's `unique` with
//! `axis` does. Floats order NaN after every number and count all NaNs as
//! one value and `-0.0` equal to `0.0` (numpy 2's `equal_nan=True`); the
//! value kept is the first occurrence's. Strings order by code point.
//! With `sorted = 0` the values keep the order of their first occurrence
//! (onnx.reference re-takes them with `np.take(x, indices, axis=0)`,
//! which is that order only for a 1-D input without `axis`).

use std::cmp::Ordering;

use super::gather::gather;
use super::values::by_dtype;
use super::{
    ExecCtx, Inputs, Op, OutputSet, Registry, check_dtype, check_input_type, first_output, normalize_axis, required,
};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Item, Str, Tensor};

/// Registers Unique.
pub fn register(reg: &mut Registry) {
    reg.add("", "Unique", &[11, 28], unique_dtypes, Unique::from_node);
}

fn unique_dtypes(version: i64) -> &'static [DType] {
    super::classic_moved_types(version, 28)
}

/// Unique.
#[derive(Debug, Clone, PartialEq)]
pub struct Unique {
    /// The axis whose slices are compared; `None` flattens the input.
    pub axis: Option<i64>,
    /// Ascending order (default) or the order of first occurrence.
    pub sorted: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Unique {
    /// Reads `axis` and `sorted`.
    ///
    /// # Errors
    /// A `sorted` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?;
        let sorted = match attrs.i64("sorted")?.unwrap_or(1) {
            0 => false,
            1 => true,
            other => return Err(attrs.error("sorted", format!("must be 0 or 1, got {other}"))),
        };
        Ok(Unique { axis, sorted, dtypes: unique_dtypes(version) })
    }
}

/// True for NaN (the only value unequal to itself).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialEq>(value: &T) -> bool {
    value != value
}

/// A total order: numbers as usual, NaN after all numbers and equal to
/// itself.
fn order<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    a.partial_cmp(b).unwrap_or_else(|| is_nan(a).cmp(&is_nan(b)))
}

/// What Unique finds: per distinct slice (in output order) its first
/// position and count, and per input slice its distinct slice's number.
struct Found {
    first: Vec<usize>,
    counts: Vec<usize>,
    inverse: Vec<usize>,
}

/// Unique over `n_slices` row-major slices of `slice` elements each.
fn find_unique<T: PartialOrd>(items: &[T], n_slices: usize, slice: usize, sorted: bool) -> Found {
    let key = |number: usize| &items[number * slice..(number + 1) * slice];
    let compare = |a: usize, b: usize| {
        key(a).iter().zip(key(b)).map(|(x, y)| order(x, y)).find(|ordering| ordering.is_ne()).unwrap_or(Ordering::Equal)
    };
    // A stable sort keeps equal slices in input order, so each group
    // starts with its first occurrence.
    let mut by_value: Vec<usize> = (0..n_slices).collect();
    by_value.sort_by(|&a, &b| compare(a, b));
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut group_of = vec![0usize; n_slices];
    for (rank, &number) in by_value.iter().enumerate() {
        match groups.last_mut() {
            Some((first, count)) if rank > 0 && compare(*first, number).is_eq() => *count += 1,
            _ => groups.push((number, 1)),
        }
        group_of[number] = groups.len() - 1;
    }
    // Output position of each group: ascending, or by first occurrence.
    let mut output_order: Vec<usize> = (0..groups.len()).collect();
    if !sorted {
        output_order.sort_by_key(|&group| groups[group].0);
    }
    let mut position_of = vec![0usize; groups.len()];
    for (position, &group) in output_order.iter().enumerate() {
        position_of[group] = position;
    }
    Found {
        first: output_order.iter().map(|&group| groups[group].0).collect(),
        counts: output_order.iter().map(|&group| groups[group].1).collect(),
        inverse: group_of.iter().map(|&group| position_of[group]).collect(),
    }
}

/// The slices of `x` along `axis` (moved to the front) as one row-major
/// list, and how many there are.
fn slices_of<T: Item>(x: &Tensor, axis: Option<usize>) -> Option<(Vec<T>, usize)> {
    let view = T::view(x)?;
    Some(match axis {
        None => (view.iter().cloned().collect(), view.len()),
        Some(axis) => {
            let mut order: Vec<usize> = (0..view.ndim()).collect();
            order.remove(axis);
            order.insert(0, axis);
            let moved = view.permuted_axes(order);
            let count = moved.shape()[0];
            (moved.iter().cloned().collect(), count)
        }
    })
}

fn int64s(values: &[usize]) -> Tensor {
    Tensor::from(ndarray::Array1::from_iter(values.iter().map(|&value| value as i64)))
}

/// Unique's kernel: `(Y, indices, inverse_indices, counts)`.
///
/// # Errors
/// An axis out of range, a type without an order (the storage types).
pub fn unique(x: &Tensor, axis: Option<i64>, sorted: bool, ctx: &ExecCtx<'_>) -> Result<[Tensor; 4], OpError> {
    const OP: &str = "Unique";
    let axis = axis.map(|axis| normalize_axis(OP, axis, x.shape().len())).transpose()?;
    let found = if x.dtype() == DType::String {
        let (items, n_slices) =
            slices_of::<Str>(x, axis).ok_or(OpError::UnsupportedDtype { op: OP, dtype: x.dtype() })?;
        find_unique(&items, n_slices, items.len().checked_div(n_slices).unwrap_or(0), sorted)
    } else {
        by_dtype!(OP, x.dtype(), T => {
            let (items, n_slices) = slices_of::<T>(x, axis).ok_or(OpError::UnsupportedDtype { op: OP, dtype: x.dtype() })?;
            Ok::<_, OpError>(find_unique(&items, n_slices, items.len().checked_div(n_slices).unwrap_or(0), sorted))
        })?
    };
    let picked = int64s(&found.first);
    let values = match axis {
        Some(axis) => gather(x, &picked, axis as i64, ctx)?,
        None => {
            let flat = crate::dispatch!(x, array => flattened(array));
            gather(&flat, &picked, 0, ctx)?
        }
    };
    Ok([values, picked, int64s(&found.inverse), int64s(&found.counts)])
}

/// `array` as a row-major 1-D tensor.
fn flattened<T: Item>(array: &crate::tensor::SharedArray<T>) -> Tensor {
    T::wrap(ndarray::Array1::from_iter(array.iter().cloned()).into_dyn())
}

impl Op for Unique {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("Unique", inputs, 0, self.dtypes)
    }

    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=4
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = match self.axis {
            None => Some(vec![Dim::Any]),
            Some(axis) => ty.dims.as_ref().and_then(|dims| {
                let axis = normalize_axis("Unique", axis, dims.len()).ok()?;
                let mut out = dims.clone();
                out[axis] = Dim::Any;
                Some(out)
            }),
        };
        let index_type = Some(ValueType { dtype: DType::I64, dims: Some(vec![Dim::Any]) });
        [Some(ValueType { dtype: ty.dtype, dims }), index_type.clone(), index_type.clone(), index_type]
            .into_iter()
            .take(n_outputs)
            .collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "Unique")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let x = required(inputs, 0, "Unique")?;
        check_dtype("Unique", x.dtype(), self.dtypes)?;
        for (index, tensor) in unique(&x, self.axis, self.sorted, ctx)?.into_iter().enumerate() {
            outputs.set(index, tensor);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn run(x: &Tensor, axis: Option<i64>, sorted: bool) -> [Tensor; 4] {
        let par = Parallel::serial();
        unique(x, axis, sorted, &ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 }).unwrap()
    }

    fn ints(values: &[i64]) -> Tensor {
        Tensor::from(ndarray::Array1::from(values.to_vec()))
    }

    /// The spec's examples 1 to 3 (example 4 is the 3-D case below).
    #[test]
    fn matches_the_spec_examples() {
        let [y, indices, inverse, counts] = run(&Tensor::from(array![2i32, 1, 1, 3, 4, 3]), None, false);
        assert_eq!(y, Tensor::from(array![2i32, 1, 3, 4]));
        assert_eq!([indices, inverse, counts], [ints(&[0, 1, 3, 4]), ints(&[0, 1, 1, 2, 3, 2]), ints(&[1, 2, 2, 1])]);
        let [y, indices, inverse, counts] = run(&Tensor::from(array![[1i32, 3], [2, 3]]), None, true);
        assert_eq!(y, Tensor::from(array![1i32, 2, 3]));
        assert_eq!([indices, inverse, counts], [ints(&[0, 2, 1]), ints(&[0, 2, 1, 2]), ints(&[1, 1, 2])]);
        let x = Tensor::from(array![[1i32, 0, 0], [1, 0, 0], [2, 3, 4]]);
        let [y, indices, inverse, counts] = run(&x, Some(0), true);
        assert_eq!(y, Tensor::from(array![[1i32, 0, 0], [2, 3, 4]]));
        assert_eq!([indices, inverse, counts], [ints(&[0, 2]), ints(&[0, 0, 1]), ints(&[2, 1])]);
    }

    /// numpy 2.4's `np.unique(x, True, True, True, axis=...)` on the same
    /// inputs: NaNs count as one value sorted last, -0.0 equals 0.0 and
    /// keeps its first occurrence, slices compare lexicographically.
    #[test]
    fn sorted_results_match_numpy() {
        let x = Tensor::from(array![2.0f32, 1.0, f32::NAN, 1.0, -0.0, 3.0, f32::NAN, 0.0]);
        let [y, indices, inverse, counts] = run(&x, None, true);
        let y: Vec<f32> = y.as_f32().unwrap().iter().copied().collect();
        assert_eq!(
            y[..4].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            [(-0.0f32).to_bits(), 1.0f32.to_bits(), 2.0f32.to_bits(), 3.0f32.to_bits()]
        );
        assert!(y[4].is_nan() && y.len() == 5);
        assert_eq!(
            [indices, inverse, counts],
            [ints(&[4, 1, 0, 5, 2]), ints(&[2, 1, 4, 1, 0, 3, 4, 0]), ints(&[2, 2, 1, 1, 2])]
        );
        let x = Tensor::from(array![
            [[1.0f32, 1.0], [0.0, 1.0], [2.0, 1.0], [0.0, 1.0]],
            [[1.0, 1.0], [0.0, 1.0], [2.0, 1.0], [0.0, 1.0]]
        ]);
        let [y, indices, inverse, counts] = run(&x, Some(-2), true);
        assert_eq!(
            y,
            Tensor::from(array![[[0.0f32, 1.0], [1.0, 1.0], [2.0, 1.0]], [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]])
        );
        assert_eq!([indices, inverse, counts], [ints(&[1, 0, 2]), ints(&[1, 0, 2, 0]), ints(&[2, 1, 1])]);
    }

    #[test]
    fn strings_sort_by_code_point_or_keep_first_occurrence() {
        let words = |texts: &[&str]| Tensor::from(ndarray::Array1::from_iter(texts.iter().map(|&t| Str::from(t))));
        let x = words(&["b", "a", "b", "c", "a"]);
        let [y, indices, inverse, counts] = run(&x, None, true);
        assert_eq!(y, words(&["a", "b", "c"]));
        assert_eq!([indices, inverse, counts], [ints(&[1, 0, 3]), ints(&[1, 0, 1, 2, 0]), ints(&[2, 2, 1])]);
        let [y, indices, inverse, counts] = run(&x, None, false);
        assert_eq!(y, words(&["b", "a", "c"]));
        assert_eq!([indices, inverse, counts], [ints(&[0, 1, 3]), ints(&[0, 1, 0, 2, 1]), ints(&[2, 2, 1])]);
        let empty = run(&words(&[]), None, true);
        assert!(empty.iter().all(Tensor::is_empty));
    }
}
