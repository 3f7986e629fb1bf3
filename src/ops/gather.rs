//! Gather and GatherElements: pick entries of a tensor by index (embedding
//! lookups, the `x.shape[i]` of PyTorch's shape subgraphs, token picks).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Gather.html>
//! - <https://onnx.ai/onnx/operators/onnx__GatherElements.html>
//!
//! | op             | opset | change                                      |
//! |----------------|-------|---------------------------------------------|
//! | Gather         | 1     | int32/int64 indices                         |
//! | Gather         | 11    | negative indices and `axis` spelled out     |
//! | GatherElements | 11    | first version                               |
//! | both           | 13    | bfloat16                                    |
//!
//! Negative indices count from the end at every version (onnxruntime and
//! PyTorch accept them at opset 1 too). An index outside `[-dim, dim)` is
//! an error naming the index and the axis, never a wrapped read.

use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Item, Tensor};

/// Registers Gather and GatherElements.
pub fn register(reg: &mut Registry) {
    reg.add("", "Gather", &[1, 11, 13], gather_dtypes, Gather::from_node);
    reg.add("", "GatherElements", &[11, 13], gather_dtypes, GatherElements::from_node);
}

fn gather_dtypes(version: i64) -> &'static [DType] {
    super::moved_types(version)
}

/// The indices as int64, whatever their integer type.
pub(crate) fn index_values(op: &'static str, indices: &Tensor) -> Result<ArrayD<i64>, OpError> {
    match indices {
        Tensor::I64(array) => Ok(array.to_owned()),
        Tensor::I32(array) => Ok(array.mapv(i64::from)),
        other => Err(OpError::Invalid { op, reason: format!("indices must be int32 or int64, got {}", other.dtype()) }),
    }
}

/// `index` resolved against a dimension of `dim` (negative counts from the end).
pub(crate) fn resolve(op: &'static str, index: i64, dim: usize, axis: usize) -> Result<usize, OpError> {
    let dim_i = i64::try_from(dim).unwrap_or(i64::MAX);
    let resolved = if index < 0 { index.checked_add(dim_i) } else { Some(index) };
    match resolved {
        Some(resolved) if (0..dim_i).contains(&resolved) => Ok(resolved as usize),
        _ => {
            Err(OpError::Invalid { op, reason: format!("index {index} is out of range for axis {axis} of size {dim}") })
        }
    }
}

/// Gather along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gather {
    /// The axis (default 0).
    pub axis: i64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Gather {
    /// Reads `axis`.
    ///
    /// # Errors
    /// A wrongly typed `axis`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(Gather { axis: attrs.i64("axis")?.unwrap_or(0), dtypes: gather_dtypes(version) })
    }
}

fn gather_typed<T: Item>(
    data: ArrayViewD<'_, T>,
    indices: &[usize],
    axis: usize,
    out_shape: &[usize],
) -> Result<Tensor, OpError> {
    let data = data.as_standard_layout();
    let src =
        data.as_slice().ok_or_else(|| OpError::Invalid { op: "Gather", reason: "data is not contiguous".into() })?;
    let dim = data.shape()[axis];
    let inner: usize = data.shape()[axis + 1..].iter().product();
    let outer: usize = data.shape()[..axis].iter().product();
    let mut out = Vec::with_capacity(outer * indices.len() * inner);
    for block in 0..outer {
        for &index in indices {
            let start = (block * dim + index) * inner;
            out.extend_from_slice(&src[start..start + inner]);
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape), out)
        .map(T::wrap)
        .map_err(|err| OpError::Invalid { op: "Gather", reason: err.to_string() })
}

/// Gather's kernel: `data` with axis `axis` replaced by the entries
/// `indices` name (output shape `data[..axis] ++ indices ++ data[axis+1..]`).
///
/// # Errors
/// An axis out of range, an index out of range (named), or an output
/// above the context's size limit.
pub fn gather(data: &Tensor, indices: &Tensor, axis: i64, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let axis = normalize_axis("Gather", axis, data.shape().len())?;
    let dim = data.shape()[axis];
    let index_array = index_values("Gather", indices)?;
    let resolved: Vec<usize> =
        index_array.iter().map(|&index| resolve("Gather", index, dim, axis)).collect::<Result<_, _>>()?;
    let mut out_shape = data.shape()[..axis].to_vec();
    out_shape.extend_from_slice(indices.shape());
    out_shape.extend_from_slice(&data.shape()[axis + 1..]);
    ctx.checked_elems("Gather", data.dtype(), &out_shape)?;
    dispatch!(data, array => gather_typed(array.view(), &resolved, axis, &out_shape))
}

impl Op for Gather {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let indices = inputs.get(1).and_then(|input| input.ty).and_then(|ty| ty.dims.as_ref());
        let dims = ty.dims.as_ref().zip(indices).and_then(|(dims, indices)| {
            let axis = normalize_axis("Gather", self.axis, dims.len()).ok()?;
            let mut out: Vec<Dim> = dims[..axis].to_vec();
            out.extend(indices.iter().cloned());
            out.extend(dims[axis + 1..].iter().cloned());
            Some(out)
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let data = required(inputs, 0, "Gather")?;
        check_dtype("Gather", data.dtype(), self.dtypes)?;
        let indices = required(inputs, 1, "Gather")?;
        gather(&data, &indices, self.axis, ctx)
    }
}

/// GatherElements along `axis`: `out[i] = data[i with axis replaced by indices[i]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherElements {
    /// The axis (default 0).
    pub axis: i64,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl GatherElements {
    /// Reads `axis`.
    ///
    /// # Errors
    /// A wrongly typed `axis`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(GatherElements { axis: attrs.i64("axis")?.unwrap_or(0), dtypes: gather_dtypes(version) })
    }
}

fn gather_elements_typed<T: Item>(
    data: ArrayViewD<'_, T>,
    indices: &ArrayD<i64>,
    axis: usize,
) -> Result<Tensor, OpError> {
    let dim = data.shape()[axis];
    let mut position = vec![0usize; data.ndim()];
    let mut out = Vec::with_capacity(indices.len());
    for (idx, &index) in indices.indexed_iter() {
        position.copy_from_slice(idx.slice());
        position[axis] = resolve("GatherElements", index, dim, axis)?;
        out.push(data[IxDyn(&position)].clone());
    }
    ArrayD::from_shape_vec(IxDyn(indices.shape()), out)
        .map(T::wrap)
        .map_err(|err| OpError::Invalid { op: "GatherElements", reason: err.to_string() })
}

/// GatherElements' kernel.
///
/// # Errors
/// Ranks that differ, an indices dim larger than the data's off the axis,
/// an axis or an index out of range.
pub fn gather_elements(data: &Tensor, indices: &Tensor, axis: i64) -> Result<Tensor, OpError> {
    let rank = data.shape().len();
    let axis = normalize_axis("GatherElements", axis, rank)?;
    let index_array = index_values("GatherElements", indices)?;
    let fits = index_array.ndim() == rank
        && index_array.shape().iter().zip(data.shape()).enumerate().all(|(dim, (i, d))| dim == axis || i <= d);
    if !fits {
        return Err(OpError::Invalid {
            op: "GatherElements",
            reason: format!("indices of shape {:?} do not fit data of shape {:?}", indices.shape(), data.shape()),
        });
    }
    dispatch!(data, array => gather_elements_typed(array.view(), &index_array, axis))
}

impl Op for GatherElements {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = inputs.get(1).and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let data = required(inputs, 0, "GatherElements")?;
        check_dtype("GatherElements", data.dtype(), self.dtypes)?;
        let indices = required(inputs, 1, "GatherElements")?;
        gather_elements(&data, &indices, self.axis)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn ctx_run(f: impl FnOnce(&ExecCtx<'_>) -> Result<Tensor, OpError>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        f(&ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 })
    }

    #[test]
    fn gathers_rows_columns_and_a_scalar_index() {
        let data = Tensor::from(array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let rows = ctx_run(|ctx| gather(&data, &Tensor::from(array![1i64, 0, 1]), 0, ctx)).unwrap();
        assert_eq!(rows, Tensor::from(array![[4.0f32, 5.0, 6.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        let cols = ctx_run(|ctx| gather(&data, &Tensor::from(array![[-1i32], [0]]), 1, ctx)).unwrap();
        assert_eq!(cols, Tensor::from(array![[[3.0f32], [1.0]], [[6.0], [4.0]]]));
        // A 0-d index drops the axis: x.shape[1] in a shape subgraph.
        let shape = Tensor::from(array![2i64, 3, 4]);
        let picked = ctx_run(|ctx| gather(&shape, &Tensor::from(ndarray::arr0(1i64)), 0, ctx)).unwrap();
        assert_eq!(picked, Tensor::from(ndarray::arr0(3i64)));
    }

    #[test]
    fn an_index_out_of_range_is_an_error_naming_it() {
        let data = Tensor::from(array![1.0f32, 2.0, 3.0]);
        for bad in [3i64, -4, i64::MIN] {
            let err = ctx_run(|ctx| gather(&data, &Tensor::from(array![0i64, bad]), 0, ctx)).unwrap_err();
            assert_eq!(err.to_string(), format!("Gather: index {bad} is out of range for axis 0 of size 3"));
        }
        let err = gather_elements(&data, &Tensor::from(array![5i64]), 0).unwrap_err();
        assert!(err.to_string().contains("index 5 is out of range"), "{err}");
    }

    #[test]
    fn a_huge_gather_is_refused() {
        let data = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[1, 1024])));
        let indices = Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[1024])));
        let err = ctx_run(|ctx| gather(&data, &indices, 0, ctx)).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }

    #[test]
    fn gather_elements_matches_the_spec_example() {
        let data = Tensor::from(array![[1i32, 2], [3, 4]]);
        let indices = Tensor::from(array![[0i64, 0], [1, 0]]);
        assert_eq!(gather_elements(&data, &indices, 1).unwrap(), Tensor::from(array![[1i32, 1], [4, 3]]));
        let data = Tensor::from(array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
        let indices = Tensor::from(array![[1i32, 2, 0], [2, 0, -3]]);
        assert_eq!(
            gather_elements(&data, &indices, 0).unwrap(),
            Tensor::from(array![[4.0f32, 8.0, 3.0], [7.0, 2.0, 3.0]])
        );
        let wide = Tensor::from(array![[0i64, 0, 0, 0]]);
        assert!(gather_elements(&data, &wide, 0).unwrap_err().to_string().contains("do not fit"));
    }
}
