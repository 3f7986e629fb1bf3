//! ScatterND, ScatterElements (and Scatter, its deprecated first name) and
//! GatherND: write or read the entries of a tensor at the positions an
//! index tensor names (what PyTorch's `index_put_`, `scatter_`,
//! `scatter_add`, `scatter_reduce` and advanced indexing export to).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__ScatterND.html>
//! - <https://onnx.ai/onnx/operators/onnx__ScatterElements.html>
//! - <https://onnx.ai/onnx/operators/onnx__Scatter.html>
//! - <https://onnx.ai/onnx/operators/onnx__GatherND.html>
//!
//! | op                         | opset | change                                      |
//! |----------------------------|-------|---------------------------------------------|
//! | Scatter                    | 9     | ScatterElements without `reduction`         |
//! | Scatter                    | 11    | deprecated for ScatterElements; same path   |
//! | ScatterND                  | 11    | first version (int64 indices)               |
//! | ScatterElements            | 11    | first version (int32/int64 indices)         |
//! | GatherND                   | 11    | first version (int64 indices)               |
//! | GatherND                   | 12    | `batch_dims`                                |
//! | ScatterND, ScatterElements, GatherND | 13 | bfloat16                            |
//! | ScatterND, ScatterElements | 16    | `reduction`: none, add, mul                 |
//! | ScatterND, ScatterElements | 18    | `reduction` max and min                     |
//!
//! Every index is checked before anything is written: a negative index
//! counts from the end once (`-dim..dim`); anything outside is an error
//! naming the op, the index and the axis, never a wrapped access.
//! Updates are applied in the row-major order of the indices, as the
//! reference's loop does: with reduction `none` the last of duplicate
//! indices wins, and with a reduction each update combines with the value
//! so far. The reductions compute as numpy does on the element type:
//! integers wrap, bool `add` is or and `mul` is and, floats round once per
//! update (float16 and bfloat16 through float64, which rounds the same);
//! `max` and `min` propagate NaN as numpy's `maximum` (the ScatterND
//! reference) does, where the ScatterElements reference's Python `max`
//! keeps the first operand when the other is NaN. A reduction on string
//! data is refused.

use std::cmp::Ordering;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::gather::{index_values, resolve};
use super::values::by_dtype;
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, check_input_type, normalize_axis, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Item, SharedArray, Tensor};

/// Registers ScatterND, ScatterElements, Scatter and GatherND.
pub fn register(reg: &mut Registry) {
    reg.add("", "ScatterND", &[11, 13, 16, 18], scatter_dtypes, ScatterND::from_node);
    reg.add("", "ScatterElements", &[11, 13, 16, 18], scatter_dtypes, ScatterElements::from_node);
    reg.add("", "Scatter", &[9, 11], scatter_dtypes, ScatterElements::scatter);
    reg.add("", "GatherND", &[11, 12, 13], scatter_dtypes, GatherND::from_node);
}

fn scatter_dtypes(version: i64) -> &'static [DType] {
    super::classic_moved_types(version, 13)
}

/// How an update combines with the value already at its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// The update replaces the value (the last of duplicate indices wins).
    None,
    /// `value + update` (opset 16).
    Add,
    /// `value * update` (opset 16).
    Mul,
    /// `max(value, update)` (opset 18).
    Max,
    /// `min(value, update)` (opset 18).
    Min,
}

impl Reduction {
    /// Reads `reduction` (from opset 16; before, the attribute is left
    /// unread, so a node carrying it fails the load).
    fn from_attrs(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 16 {
            return Ok(Reduction::None);
        }
        match attrs.string("reduction")?.as_deref().unwrap_or("none") {
            "none" => Ok(Reduction::None),
            "add" => Ok(Reduction::Add),
            "mul" => Ok(Reduction::Mul),
            "max" if version >= 18 => Ok(Reduction::Max),
            "min" if version >= 18 => Ok(Reduction::Min),
            other => Err(attrs.error("reduction", format!("unknown reduction {other:?} at version {version}"))),
        }
    }
}

/// True for NaN (the only value unequal to itself).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialEq>(value: &T) -> bool {
    value != value
}

/// Whether `update` replaces `value` under max (`wanted == Greater`) or
/// min (`Less`): NaN on either side wins, as numpy's `maximum` has it.
fn extreme_takes<T: PartialOrd>(value: &T, update: &T, wanted: Ordering) -> bool {
    !is_nan(value) && (is_nan(update) || update.partial_cmp(value) == Some(wanted))
}

/// The combining function of a reduction on a number type.
fn combiner<T: Num + PartialOrd>(reduction: Reduction) -> fn(&mut T, &T) {
    match reduction {
        Reduction::None => |slot, update| *slot = *update,
        Reduction::Add => |slot, update| {
            *slot = if T::INT {
                T::from_i128(slot.to_i128().wrapping_add(update.to_i128()))
            } else {
                T::from_f64(slot.to_f64() + update.to_f64())
            }
        },
        Reduction::Mul => |slot, update| {
            *slot = if T::INT {
                T::from_i128(slot.to_i128().wrapping_mul(update.to_i128()))
            } else {
                T::from_f64(slot.to_f64() * update.to_f64())
            }
        },
        Reduction::Max => |slot, update| {
            if extreme_takes(slot, update, Ordering::Greater) {
                *slot = *update;
            }
        },
        Reduction::Min => |slot, update| {
            if extreme_takes(slot, update, Ordering::Less) {
                *slot = *update;
            }
        },
    }
}

/// Row-major strides (in elements) of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for axis in (0..shape.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * shape[axis + 1];
    }
    strides
}

/// An owned, row-major copy of `array` (no copy when it is unshared and
/// already row-major).
fn standard_owned<T: Item>(array: SharedArray<T>) -> ArrayD<T> {
    if array.is_standard_layout() { array.into_owned() } else { array.as_standard_layout().into_owned() }
}

/// `data` with each block `i` of `slice` updates combined into the
/// elements from `offsets[i]` on.
fn scatter_typed<T: Item>(
    op: &'static str,
    data: SharedArray<T>,
    updates: &Tensor,
    offsets: &[usize],
    slice: usize,
    combine: impl Fn(&mut T, &T),
) -> Result<Tensor, OpError> {
    let updates = T::view(updates).ok_or_else(|| OpError::Invalid {
        op,
        reason: format!("updates are {}, data is {}", updates.dtype(), T::DTYPE),
    })?;
    let updates = updates.as_standard_layout();
    let mut out = standard_owned(data);
    let (Some(src), Some(dst)) = (updates.as_slice(), out.as_slice_mut()) else {
        return Err(OpError::Invalid { op, reason: "data is not contiguous".into() });
    };
    for (block, &offset) in offsets.iter().enumerate() {
        let values = src.get(block * slice..(block + 1) * slice);
        let slots = dst.get_mut(offset..offset + slice);
        let (Some(values), Some(slots)) = (values, slots) else {
            return Err(OpError::Invalid { op, reason: format!("update block {block} falls outside the data") });
        };
        for (slot, value) in slots.iter_mut().zip(values) {
            combine(slot, value);
        }
    }
    Ok(T::wrap(out))
}

/// Reduction `none` on any element type: the update replaces the value.
fn replace<T: Item>(slot: &mut T, update: &T) {
    slot.clone_from(update);
}

/// Scatters with `reduction`: any element type for `none`, the number
/// types for the others.
fn scatter_any(
    op: &'static str,
    data: Tensor,
    updates: &Tensor,
    offsets: &[usize],
    slice: usize,
    reduction: Reduction,
) -> Result<Tensor, OpError> {
    if updates.dtype() != data.dtype() {
        return Err(OpError::Invalid {
            op,
            reason: format!("updates are {}, data is {}", updates.dtype(), data.dtype()),
        });
    }
    if reduction == Reduction::None {
        return dispatch!(data, array => scatter_typed(op, array, updates, offsets, slice, replace));
    }
    let dtype = data.dtype();
    by_dtype!(op, dtype, T => {
        let array = T::unwrap_shared(data).map_err(|other| OpError::UnsupportedDtype { op, dtype: other.dtype() })?;
        scatter_typed(op, array, updates, offsets, slice, combiner::<T>(reduction))
    })
}

/// The int64 indices of ScatterND and GatherND (their schemas allow no
/// other type).
fn int64_indices<'t>(op: &'static str, indices: &'t Tensor) -> Result<&'t SharedArray<i64>, OpError> {
    match indices {
        Tensor::I64(array) => Ok(array),
        other => Err(OpError::Invalid { op, reason: format!("indices must be int64, got {}", other.dtype()) }),
    }
}

/// Element offsets into a row-major tensor of `shape` of the index tuples
/// in `tuples` (each `k` long, naming axes `first_axis..first_axis + k`),
/// each plus `base(tuple number)`.
fn tuple_offsets(
    op: &'static str,
    shape: &[usize],
    tuples: &[i64],
    k: usize,
    first_axis: usize,
    base: impl Fn(usize) -> usize,
) -> Result<Vec<usize>, OpError> {
    let strides = strides(shape);
    tuples
        .chunks_exact(k)
        .enumerate()
        .map(|(number, tuple)| {
            tuple.iter().enumerate().try_fold(base(number), |offset, (j, &index)| {
                let axis = first_axis + j;
                Ok(offset + resolve(op, index, shape[axis], axis)? * strides[axis])
            })
        })
        .collect()
}

/// ScatterND: copies `data`, then writes (or combines) each slice of
/// `updates` at the position its index tuple names.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterND {
    /// How updates combine with the data.
    pub reduction: Reduction,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl ScatterND {
    /// Reads `reduction` (opset 16 on; max and min from 18).
    ///
    /// # Errors
    /// An unknown reduction, or one newer than the version.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(ScatterND { reduction: Reduction::from_attrs(attrs, version)?, dtypes: scatter_dtypes(version) })
    }
}

/// ScatterND's kernel.
///
/// # Errors
/// Indices that are not int64, of rank 0 or with a last dim outside
/// `1..=rank(data)`; updates of the wrong shape or dtype; an index out of
/// range (named); a reduction on a type without arithmetic.
pub fn scatter_nd(data: Tensor, indices: &Tensor, updates: &Tensor, reduction: Reduction) -> Result<Tensor, OpError> {
    const OP: &str = "ScatterND";
    let data_shape = data.shape().to_vec();
    let index_array = int64_indices(OP, indices)?;
    let index_shape = index_array.shape();
    let k = index_shape.last().copied().unwrap_or(0);
    if data_shape.is_empty() || k == 0 || k > data_shape.len() {
        return Err(OpError::Invalid {
            op: OP,
            reason: format!(
                "indices of shape {index_shape:?} do not index data of shape {data_shape:?} (the last dim of \
                 indices must be between 1 and the data's rank)"
            ),
        });
    }
    let mut expected = index_shape[..index_shape.len() - 1].to_vec();
    expected.extend_from_slice(&data_shape[k..]);
    if updates.shape() != expected.as_slice() {
        return Err(OpError::Invalid {
            op: OP,
            reason: format!("updates have shape {:?}, expected {expected:?}", updates.shape()),
        });
    }
    let tuples = index_array.as_standard_layout();
    let tuples = tuples.as_slice().unwrap_or_default();
    let offsets = tuple_offsets(OP, &data_shape, tuples, k, 0, |_| 0)?;
    let slice: usize = data_shape[k..].iter().product();
    scatter_any(OP, data, updates, &offsets, slice, reduction)
}

impl Op for ScatterND {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("ScatterND", inputs, 0, self.dtypes)?;
        check_input_type("ScatterND", inputs, 2, self.dtypes)
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let data = required(inputs, 0, "ScatterND")?;
        check_dtype("ScatterND", data.dtype(), self.dtypes)?;
        let indices = required(inputs, 1, "ScatterND")?;
        let updates = required(inputs, 2, "ScatterND")?;
        scatter_nd(data.into_owned(), &indices, &updates, self.reduction)
    }
}

/// ScatterElements (and Scatter): `output[i with axis replaced by
/// indices[i]] = updates[i]` for every position `i` of `indices`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterElements {
    /// The op's name in errors: ScatterElements or Scatter.
    pub name: &'static str,
    /// The axis (default 0).
    pub axis: i64,
    /// How updates combine with the data (opset 16 on).
    pub reduction: Reduction,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl ScatterElements {
    /// Reads `axis` and `reduction` (opset 16 on; max and min from 18).
    ///
    /// # Errors
    /// A wrongly typed `axis`, an unknown reduction.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(ScatterElements {
            name: "ScatterElements",
            axis: attrs.i64("axis")?.unwrap_or(0),
            reduction: Reduction::from_attrs(attrs, version)?,
            dtypes: scatter_dtypes(version),
        })
    }

    /// Scatter (opsets 9 and 11): ScatterElements under its first name.
    ///
    /// # Errors
    /// A wrongly typed `axis`.
    pub fn scatter(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(ScatterElements {
            name: "Scatter",
            axis: attrs.i64("axis")?.unwrap_or(0),
            reduction: Reduction::None,
            dtypes: scatter_dtypes(version),
        })
    }
}

/// ScatterElements' kernel (`op` names it in errors).
///
/// # Errors
/// Ranks that differ, updates of another shape than indices, an indices
/// dim larger than the data's off the axis, an axis or index out of range,
/// a reduction on a type without arithmetic.
pub fn scatter_elements(
    op: &'static str,
    data: Tensor,
    indices: &Tensor,
    updates: &Tensor,
    axis: i64,
    reduction: Reduction,
) -> Result<Tensor, OpError> {
    let data_shape = data.shape().to_vec();
    let rank = data_shape.len();
    let axis = normalize_axis(op, axis, rank)?;
    let index_array = index_values(op, indices)?;
    let fits = index_array.ndim() == rank
        && index_array.shape().iter().zip(&data_shape).enumerate().all(|(dim, (i, d))| dim == axis || i <= d);
    if !fits {
        return Err(OpError::Invalid {
            op,
            reason: format!("indices of shape {:?} do not fit data of shape {data_shape:?}", index_array.shape()),
        });
    }
    if updates.shape() != index_array.shape() {
        return Err(OpError::Invalid {
            op,
            reason: format!("updates have shape {:?}, indices {:?}", updates.shape(), index_array.shape()),
        });
    }
    let strides = strides(&data_shape);
    let offsets = index_array
        .indexed_iter()
        .map(|(position, &index)| {
            let target = resolve(op, index, data_shape[axis], axis)?;
            Ok((0..rank).map(|dim| if dim == axis { target } else { position[dim] } * strides[dim]).sum())
        })
        .collect::<Result<Vec<usize>, OpError>>()?;
    scatter_any(op, data, updates, &offsets, 1, reduction)
}

impl Op for ScatterElements {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type(self.name, inputs, 0, self.dtypes)?;
        check_input_type(self.name, inputs, 2, self.dtypes)
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let data = required(inputs, 0, self.name)?;
        check_dtype(self.name, data.dtype(), self.dtypes)?;
        let indices = required(inputs, 1, self.name)?;
        let updates = required(inputs, 2, self.name)?;
        scatter_elements(self.name, data.into_owned(), &indices, &updates, self.axis, self.reduction)
    }
}

/// GatherND: the slices of `data` that the index tuples of `indices` name,
/// within each of the leading `batch_dims` batch positions.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherND {
    /// Leading axes shared by data and indices (opset 12 on; 0 before).
    pub batch_dims: i64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl GatherND {
    /// Reads `batch_dims` (opset 12 on).
    ///
    /// # Errors
    /// A wrongly typed `batch_dims`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let batch_dims = if version >= 12 { attrs.i64("batch_dims")?.unwrap_or(0) } else { 0 };
        Ok(GatherND { batch_dims, dtypes: scatter_dtypes(version) })
    }
}

/// Copies the `slice` elements from each of `offsets` into one tensor of
/// `out_shape`.
fn gather_slices<T: Item>(
    data: ArrayViewD<'_, T>,
    offsets: &[usize],
    slice: usize,
    out_shape: &[usize],
) -> Result<Tensor, OpError> {
    let data = data.as_standard_layout();
    let src = data.as_slice().unwrap_or_default();
    let mut out = Vec::with_capacity(offsets.len() * slice);
    for &offset in offsets {
        let block = src.get(offset..offset + slice).ok_or_else(|| OpError::Invalid {
            op: "GatherND",
            reason: format!("slice at element {offset} falls outside the data"),
        })?;
        out.extend_from_slice(block);
    }
    ArrayD::from_shape_vec(IxDyn(out_shape), out)
        .map(T::wrap)
        .map_err(|err| OpError::Invalid { op: "GatherND", reason: err.to_string() })
}

/// GatherND's kernel: output shape `indices.shape[..q-1] ++
/// data.shape[batch_dims + k..]` where `k = indices.shape[q-1]`.
///
/// # Errors
/// Indices that are not int64, ranks or `batch_dims` out of range, batch
/// dims that differ, `k` outside `1..=rank - batch_dims`, an index out of
/// range (named), or an output above the context's size limit.
pub fn gather_nd(data: &Tensor, indices: &Tensor, batch_dims: i64, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    const OP: &str = "GatherND";
    let data_shape = data.shape();
    let index_array = int64_indices(OP, indices)?;
    let index_shape = index_array.shape();
    let (rank, q) = (data_shape.len(), index_shape.len());
    let batch = usize::try_from(batch_dims).ok().filter(|&b| b < rank.min(q)).ok_or_else(|| OpError::Invalid {
        op: OP,
        reason: format!("batch_dims {batch_dims} must be in 0..min(rank of data {rank}, rank of indices {q})"),
    })?;
    if index_shape[..batch] != data_shape[..batch] {
        return Err(OpError::Invalid {
            op: OP,
            reason: format!("the {batch} batch dims differ: data {data_shape:?}, indices {index_shape:?}"),
        });
    }
    let k = index_shape[q - 1];
    if k == 0 || k > rank - batch {
        return Err(OpError::Invalid {
            op: OP,
            reason: format!("the last dim of indices ({k}) must be between 1 and rank - batch_dims ({})", rank - batch),
        });
    }
    let mut out_shape = index_shape[..q - 1].to_vec();
    out_shape.extend_from_slice(&data_shape[batch + k..]);
    ctx.checked_elems(OP, data.dtype(), &out_shape)?;
    let batch_stride: usize = data_shape[batch..].iter().product();
    let per_batch: usize = index_shape[batch..q - 1].iter().product();
    let slice: usize = data_shape[batch + k..].iter().product();
    let tuples = index_array.as_standard_layout();
    let tuples = tuples.as_slice().unwrap_or_default();
    // Within a batch position the tuple addresses the trailing axes; the
    // batch position itself adds whole batch strides.
    let offsets = tuple_offsets(OP, data_shape, tuples, k, batch, |number| {
        number.checked_div(per_batch).unwrap_or(0) * batch_stride
    })?;
    dispatch!(data, array => gather_slices(array.view(), &offsets, slice, &out_shape))
}

impl Op for GatherND {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("GatherND", inputs, 0, self.dtypes)
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let index_dims = inputs.get(1).and_then(|input| input.ty).and_then(|ty| ty.dims.as_ref());
        let dims = ty.dims.as_ref().zip(index_dims).and_then(|(data_dims, index_dims)| {
            let Some(Dim::Fixed(k)) = index_dims.last() else {
                return None;
            };
            let start = usize::try_from(self.batch_dims).ok()?.checked_add(*k)?;
            let mut out: Vec<Dim> = index_dims[..index_dims.len() - 1].to_vec();
            out.extend(data_dims.get(start..)?.iter().cloned());
            Some(out)
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let data = required(inputs, 0, "GatherND")?;
        check_dtype("GatherND", data.dtype(), self.dtypes)?;
        let indices = required(inputs, 1, "GatherND")?;
        gather_nd(&data, &indices, self.batch_dims, ctx)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;
    use crate::tensor::Str;

    fn ctx_run(f: impl FnOnce(&ExecCtx<'_>) -> Result<Tensor, OpError>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        f(&ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 })
    }

    fn strs(values: &[&str]) -> Tensor {
        Tensor::from(ndarray::Array1::from_iter(values.iter().map(|&text| Str::from(text))))
    }

    /// NaN-aware equality of float32 results (NaN positions must match).
    fn assert_f32(actual: &Tensor, expected: &[f32], shape: &[usize]) {
        let values = actual.as_f32().unwrap();
        assert_eq!(values.shape(), shape);
        for (a, e) in values.iter().zip(expected) {
            assert!(a == e || (a.is_nan() && e.is_nan()), "{values:?} vs {expected:?}");
        }
    }

    #[test]
    fn scatter_nd_matches_the_spec_examples() {
        let data = Tensor::from(array![1i32, 2, 3, 4, 5, 6, 7, 8]);
        let indices = Tensor::from(array![[4i64], [3], [1], [7]]);
        let updates = Tensor::from(array![9i32, 10, 11, 12]);
        let out = scatter_nd(data, &indices, &updates, Reduction::None).unwrap();
        assert_eq!(out, Tensor::from(array![1i32, 11, 3, 10, 9, 6, 7, 12]));
        // Example 2: whole 4x4 slices written at indices 0 and 2.
        let data: Vec<i64> = [[1, 2, 3, 4], [5, 6, 7, 8], [8, 7, 6, 5], [4, 3, 2, 1]]
            .iter()
            .flatten()
            .copied()
            .cycle()
            .take(32)
            .chain([[8, 7, 6, 5], [4, 3, 2, 1], [1, 2, 3, 4], [5, 6, 7, 8]].iter().flatten().copied().cycle().take(32))
            .collect();
        let data = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[4, 4, 4]), data).unwrap());
        let updates: Vec<i64> = [5, 6, 7, 8, 1, 2, 3, 4].iter().flat_map(|&v| [v; 4]).collect();
        let updates = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 4, 4]), updates).unwrap());
        let out = scatter_nd(data, &Tensor::from(array![[0i64], [2]]), &updates, Reduction::None).unwrap();
        let expected: Vec<i64> = [5, 6, 7, 8]
            .iter()
            .flat_map(|&v| [v; 4])
            .collect::<Vec<_>>()
            .into_iter()
            .chain([1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1])
            .chain([1, 2, 3, 4].iter().flat_map(|&v| [v; 4]))
            .chain([8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8])
            .collect();
        assert_eq!(out, Tensor::from(ArrayD::from_shape_vec(IxDyn(&[4, 4, 4]), expected).unwrap()));
    }

    /// Duplicate indices and NaN under each reduction; the expected values
    /// are onnx.reference's (onnx 1.23.2, numpy 2.4) for the same inputs.
    #[test]
    fn scatter_nd_reductions_follow_the_reference() {
        let data = Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]]);
        let indices = Tensor::from(array![[0i64], [0], [1]]);
        let updates = Tensor::from(array![[10.0f32, 20.0], [5.0, -1.0], [7.0, f32::NAN]]);
        let cases = [
            (Reduction::None, [5.0, -1.0, 7.0, f32::NAN]),
            (Reduction::Add, [16.0, 21.0, 10.0, f32::NAN]),
            (Reduction::Mul, [50.0, -40.0, 21.0, f32::NAN]),
            (Reduction::Max, [10.0, 20.0, 7.0, f32::NAN]),
            (Reduction::Min, [1.0, -1.0, 3.0, f32::NAN]),
        ];
        for (reduction, expected) in cases {
            let out = scatter_nd(data.clone(), &indices, &updates, reduction).unwrap();
            assert_f32(&out, &expected, &[2, 2]);
        }
        // Integers wrap, bool add is or and mul is and, float16 rounds once.
        let wrap = |data: Tensor, updates: Tensor, reduction| {
            let n = updates.len() as i64;
            let indices =
                Tensor::from(ArrayD::from_shape_vec(IxDyn(&[n as usize, 1]), (0..n).map(|i| i % 2).collect()).unwrap());
            scatter_nd(data, &indices, &updates, reduction).unwrap()
        };
        assert_eq!(
            wrap(Tensor::from(array![100i8, -100]), Tensor::from(array![100i8, -100, 1]), Reduction::Add),
            Tensor::from(array![-55i8, 56])
        );
        assert_eq!(
            wrap(Tensor::from(array![200u8, 3]), Tensor::from(array![2u8, 5]), Reduction::Mul),
            Tensor::from(array![144u8, 15])
        );
        assert_eq!(
            wrap(Tensor::from(array![u64::MAX, 3]), Tensor::from(array![u64::MAX, 5]), Reduction::Mul),
            Tensor::from(array![1u64, 15])
        );
        assert_eq!(
            wrap(Tensor::from(array![false, true]), Tensor::from(array![true, true, false]), Reduction::Add),
            Tensor::from(array![true, true])
        );
        assert_eq!(
            wrap(Tensor::from(array![true, true]), Tensor::from(array![true, false]), Reduction::Mul),
            Tensor::from(array![true, false])
        );
        let half = |v: f64| half::f16::from_f64(v);
        assert_eq!(
            wrap(
                Tensor::from(array![half(1.0), half(2048.0)]),
                Tensor::from(array![half(1e-3), half(1.0), half(1.0)]),
                Reduction::Add
            ),
            // 1 + 2^-10 + 1 is a tie at float16's spacing of 2^-9 at 2,
            // so it rounds to even, as numpy's float16 adds do one by one.
            Tensor::from(array![half(2.0), half(2048.0)])
        );
    }

    #[test]
    fn scatter_nd_moves_strings_and_refuses_arithmetic_on_them() {
        let data = strs(&["a", "b", "c"]);
        let indices = Tensor::from(array![[2i64], [-3], [2]]);
        let out = scatter_nd(data.clone(), &indices, &strs(&["x", "y", "z"]), Reduction::None).unwrap();
        assert_eq!(out, strs(&["y", "b", "z"]));
        let err = scatter_nd(data, &indices, &strs(&["x", "y", "z"]), Reduction::Add).unwrap_err();
        assert_eq!(err, OpError::UnsupportedDtype { op: "ScatterND", dtype: DType::String });
    }

    #[test]
    fn scatter_nd_errors_name_the_index_and_the_shapes() {
        let data = Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]]);
        let updates = Tensor::from(array![9.0f32]);
        for (bad, axis) in [([0i64, 2], 1), ([-3, 0], 0)] {
            let indices = Tensor::from(ndarray::arr2(&[bad]));
            let err = scatter_nd(data.clone(), &indices, &updates, Reduction::None).unwrap_err();
            let index = if axis == 1 { bad[1] } else { bad[0] };
            assert_eq!(err.to_string(), format!("ScatterND: index {index} is out of range for axis {axis} of size 2"));
        }
        let err = scatter_nd(data.clone(), &Tensor::from(array![[0i64, 0, 0]]), &updates, Reduction::None);
        assert!(err.unwrap_err().to_string().contains("last dim of indices"));
        let err = scatter_nd(data.clone(), &Tensor::from(array![[0i64]]), &updates, Reduction::None);
        assert!(err.unwrap_err().to_string().contains("updates have shape [1], expected [1, 2]"));
        let err = scatter_nd(data, &Tensor::from(array![[0i32]]), &updates, Reduction::None);
        assert!(err.unwrap_err().to_string().contains("indices must be int64"));
    }

    #[test]
    fn scatter_elements_matches_the_spec_examples() {
        let data = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[3, 3])));
        let indices = Tensor::from(array![[1i64, 0, 2], [0, 2, 1]]);
        let updates = Tensor::from(array![[1.0f32, 1.1, 1.2], [2.0, 2.1, 2.2]]);
        let out = scatter_elements("ScatterElements", data, &indices, &updates, 0, Reduction::None).unwrap();
        assert_eq!(out, Tensor::from(array![[2.0f32, 1.1, 0.0], [1.0, 0.0, 2.2], [0.0, 2.1, 1.2]]));
        let data = Tensor::from(array![[1.0f32, 2.0, 3.0, 4.0, 5.0]]);
        let out = scatter_elements(
            "ScatterElements",
            data,
            &Tensor::from(array![[1i32, 3]]),
            &Tensor::from(array![[1.1f32, 2.1]]),
            1,
            Reduction::None,
        )
        .unwrap();
        assert_eq!(out, Tensor::from(array![[1.0f32, 1.1, 3.0, 2.1, 5.0]]));
    }

    /// Negative indices, duplicates and each reduction along axis 1, 0 and
    /// -2; the expected rows are onnx.reference's (onnx 1.23.2).
    #[test]
    fn scatter_elements_reductions_follow_the_reference() {
        let data = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[3, 4]), (0..12).map(|v| v as f32).collect()).unwrap());
        let indices = Tensor::from(array![[2i64, -1], [0, 0]]);
        let updates = Tensor::from(array![[10.0f32, 20.0], [30.0, 40.0]]);
        let rest = [8.0, 9.0, 10.0, 11.0];
        let cases = [
            (Reduction::None, [0.0, 1.0, 10.0, 20.0, 40.0, 5.0, 6.0, 7.0]),
            (Reduction::Add, [0.0, 1.0, 12.0, 23.0, 74.0, 5.0, 6.0, 7.0]),
            (Reduction::Mul, [0.0, 1.0, 20.0, 60.0, 4800.0, 5.0, 6.0, 7.0]),
            (Reduction::Max, [0.0, 1.0, 10.0, 20.0, 40.0, 5.0, 6.0, 7.0]),
            (Reduction::Min, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        ];
        for (reduction, head) in cases {
            let out = scatter_elements("ScatterElements", data.clone(), &indices, &updates, 1, reduction).unwrap();
            let expected: Vec<f32> = head.iter().chain(&rest).copied().collect();
            assert_f32(&out, &expected, &[3, 4]);
        }
        let int32 = Tensor::from(array![[2i32, -1], [0, 0]]);
        let out = scatter_elements("ScatterElements", data.clone(), &int32, &updates, 0, Reduction::None).unwrap();
        let expected = [30.0, 40.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 10.0, 20.0, 10.0, 11.0];
        assert_f32(&out, &expected, &[3, 4]);
        let out = scatter_elements("ScatterElements", data, &indices, &updates, -2, Reduction::Add).unwrap();
        let expected = [30.0, 41.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 18.0, 29.0, 10.0, 11.0];
        assert_f32(&out, &expected, &[3, 4]);
    }

    #[test]
    fn scatter_elements_errors_name_the_op() {
        let data = Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]]);
        let updates = Tensor::from(array![[9.0f32]]);
        let err =
            scatter_elements("Scatter", data.clone(), &Tensor::from(array![[2i64]]), &updates, 1, Reduction::None);
        assert_eq!(err.unwrap_err().to_string(), "Scatter: index 2 is out of range for axis 1 of size 2");
        let err = scatter_elements(
            "ScatterElements",
            data.clone(),
            &Tensor::from(array![[0i64]]),
            &updates,
            2,
            Reduction::None,
        );
        assert_eq!(err.unwrap_err(), OpError::AxisOutOfRange { op: "ScatterElements", axis: 2, rank: 2 });
        let wide = Tensor::from(array![[0i64, 0, 0]]);
        let err = scatter_elements(
            "ScatterElements",
            data.clone(),
            &wide,
            &Tensor::from(array![[1.0f32, 1.0, 1.0]]),
            0,
            Reduction::None,
        );
        assert!(err.unwrap_err().to_string().contains("do not fit"));
        let err = scatter_elements(
            "ScatterElements",
            data.clone(),
            &Tensor::from(array![[0i64]]),
            &Tensor::from(array![[1i32]]),
            0,
            Reduction::None,
        );
        assert!(err.unwrap_err().to_string().contains("updates are int32, data is float32"));
        let err =
            scatter_elements("ScatterElements", data, &Tensor::from(array![[0i64, 1]]), &updates, 0, Reduction::None);
        assert!(err.unwrap_err().to_string().contains("updates have shape [1, 1], indices [1, 2]"));
    }

    #[test]
    fn gather_nd_matches_the_spec_examples() {
        let gnd =
            |data: &Tensor, indices: Tensor, batch_dims| ctx_run(|ctx| gather_nd(data, &indices, batch_dims, ctx));
        let square = Tensor::from(array![[0i32, 1], [2, 3]]);
        assert_eq!(gnd(&square, Tensor::from(array![[0i64, 0], [1, 1]]), 0).unwrap(), Tensor::from(array![0i32, 3]));
        assert_eq!(
            gnd(&square, Tensor::from(array![[1i64], [0]]), 0).unwrap(),
            Tensor::from(array![[2i32, 3], [0, 1]])
        );
        let cube = Tensor::from(array![[[0i32, 1], [2, 3]], [[4, 5], [6, 7]]]);
        assert_eq!(
            gnd(&cube, Tensor::from(array![[0i64, 1], [1, 0]]), 0).unwrap(),
            Tensor::from(array![[2i32, 3], [4, 5]])
        );
        assert_eq!(
            gnd(&cube, Tensor::from(array![[[0i64, 1]], [[1, 0]]]), 0).unwrap(),
            Tensor::from(array![[[2i32, 3]], [[4, 5]]])
        );
        assert_eq!(gnd(&cube, Tensor::from(array![[1i64], [0]]), 1).unwrap(), Tensor::from(array![[2i32, 3], [4, 5]]));
    }

    /// batch_dims 0, 1 and 2 with negative indices; the expected values are
    /// onnx.reference's (onnx 1.23.2).
    #[test]
    fn gather_nd_batches_follow_the_reference() {
        let data = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 3, 4]), (0..24).collect::<Vec<i32>>()).unwrap());
        let gnd = |indices: Tensor, batch_dims| ctx_run(|ctx| gather_nd(&data, &indices, batch_dims, ctx)).unwrap();
        assert_eq!(
            gnd(Tensor::from(array![[[1i64], [3], [-1]], [[0], [2], [-4]]]), 2),
            Tensor::from(array![[1i32, 7, 11], [12, 18, 20]])
        );
        assert_eq!(gnd(Tensor::from(array![[[1i64, 0]], [[2, 3]]]), 1), Tensor::from(array![[4i32], [23]]));
        assert_eq!(
            gnd(Tensor::from(array![[-1i64, 2], [0, -3]]), 0),
            Tensor::from(array![[20i32, 21, 22, 23], [0, 1, 2, 3]])
        );
        let words = strs(&["a", "b", "c"]);
        let picked = ctx_run(|ctx| gather_nd(&words, &Tensor::from(array![[2i64], [0]]), 0, ctx)).unwrap();
        assert_eq!(picked, strs(&["c", "a"]));
    }

    #[test]
    fn gather_nd_refuses_bad_indices_and_huge_outputs() {
        let data = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2, 3, 4]), (0..24).collect::<Vec<i32>>()).unwrap());
        let gnd = |indices: Tensor, batch_dims| {
            ctx_run(|ctx| gather_nd(&data, &indices, batch_dims, ctx)).unwrap_err().to_string()
        };
        assert_eq!(
            gnd(Tensor::from(array![[-1i64, 2], [0, -4]]), 0),
            "GatherND: index -4 is out of range for axis 1 of size 3"
        );
        assert!(gnd(Tensor::from(array![[0i64, 0, 0, 0]]), 0).contains("between 1 and rank - batch_dims (3)"));
        assert!(gnd(Tensor::from(array![[0i64], [0], [0]]), 1).contains("batch dims differ"));
        assert!(gnd(Tensor::from(array![[0i64]]), 2).contains("batch_dims 2 must be in 0..min"));
        // Each of 2^16 tuples picks a 12-element slice: 3 MiB of int32 > 1 MiB.
        let many = Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[1 << 16, 1])));
        assert!(gnd(many, 0).contains("size limit"));
    }
}
