//! Expand and Tile: tensors repeated to a size read at run time (attention
//! masks, position ids, broadcast biases).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Expand.html>
//! - <https://onnx.ai/onnx/operators/onnx__Tile.html>
//!
//! | op     | opset | change                                                 |
//! |--------|-------|--------------------------------------------------------|
//! | Expand | 8     | numpy broadcast of the input and the `shape` input     |
//! | Expand | 13    | bfloat16                                               |
//! | Tile   | 1     | float types; `tiles` and `axis` scalar inputs           |
//! | Tile   | 6     | every type; `repeats`, one count per axis               |
//! | Tile   | 13    | bfloat16                                               |
//!
//! Both refuse an output above the model's tensor size limit before
//! allocating it.

use ndarray::{ArrayD, IxDyn};

use super::values::{int_values, sizes};
use super::{ExecCtx, FLOATS, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType, broadcast_dims};
use crate::tensor::{DType, Tensor};

/// Registers Expand and Tile.
pub fn register(reg: &mut Registry) {
    reg.add("", "Expand", &[8, 13], expand_dtypes, Expand::from_node);
    reg.add("", "Tile", &[1, 6, 13], tile_dtypes, Tile::from_node);
}

fn expand_dtypes(version: i64) -> &'static [DType] {
    super::moved_types(version)
}

fn tile_dtypes(version: i64) -> &'static [DType] {
    if version < 6 { FLOATS } else { expand_dtypes(version) }
}

/// Expand: broadcasts the input against a shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Expand {
    /// Expand has no attributes.
    ///
    /// # Errors
    /// Never.
    pub fn from_node(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(Expand { dtypes: expand_dtypes(version) })
    }
}

/// The numpy broadcast of two shapes.
///
/// # Errors
/// Dims that differ and are not 1.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, OpError> {
    let rank = a.len().max(b.len());
    let at = |shape: &[usize], axis: usize| {
        let offset = rank - shape.len();
        if axis < offset { 1 } else { shape[axis - offset] }
    };
    (0..rank)
        .map(|axis| match (at(a, axis), at(b, axis)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(OpError::Invalid {
                op: "Expand",
                reason: format!("input shape {a:?} does not broadcast to shape {b:?}"),
            }),
        })
        .collect()
}

/// Expand's kernel.
///
/// # Errors
/// Shapes that do not broadcast, a negative dim, or an output above the
/// context's size limit.
pub fn expand(x: &Tensor, shape: &[i64], ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let target = sizes("Expand", "shape", shape)?;
    let out_shape = broadcast_shape(x.shape(), &target)?;
    ctx.checked_elems("Expand", x.dtype(), &out_shape)?;
    if out_shape == x.shape() {
        return Ok(x.clone());
    }
    dispatch!(x, array => {
        let view = array.broadcast(IxDyn(&out_shape)).ok_or_else(|| OpError::Invalid {
            op: "Expand",
            reason: format!("input shape {:?} does not broadcast to {out_shape:?}", x.shape()),
        })?;
        Ok(Tensor::from(view.to_owned()))
    })
}

impl Op for Expand {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let shape = inputs.get(1).and_then(InferInput::int64_values);
        let dims = shape.and_then(|shape| {
            let shape: Vec<Dim> = shape.iter().map(|&dim| usize::try_from(dim).map_or(Dim::Any, Dim::Fixed)).collect();
            broadcast_dims(&[ty.dims.as_deref(), Some(&shape)])
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Expand")?;
        check_dtype("Expand", x.dtype(), self.dtypes)?;
        let shape = int_values("Expand", "shape", required(inputs, 1, "Expand")?.as_ref())?;
        expand(&x, &shape, ctx)
    }
}

/// Tile: repeats the input along each axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Opset 1: the inputs are `tiles` and `axis` scalars, not `repeats`.
    pub scalar_form: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Tile {
    /// Tile has no attributes.
    ///
    /// # Errors
    /// Never.
    pub fn from_node(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(Tile { scalar_form: version < 6, dtypes: tile_dtypes(version) })
    }
}

/// Tile's kernel: `x` repeated `repeats[axis]` times along each axis.
///
/// # Errors
/// A repeats list whose length is not the rank, a negative count, or an
/// output above the context's size limit.
pub fn tile(x: &Tensor, repeats: &[i64], ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let shape = x.shape();
    if repeats.len() != shape.len() {
        return Err(OpError::Invalid {
            op: "Tile",
            reason: format!("{} repeats for an input of rank {}", repeats.len(), shape.len()),
        });
    }
    let repeats = sizes("Tile", "repeats", repeats)?;
    let out_shape: Vec<usize> = shape.iter().zip(&repeats).map(|(&dim, &times)| dim.saturating_mul(times)).collect();
    ctx.checked_elems("Tile", x.dtype(), &out_shape)?;
    // Axis `d` of size `n` repeated `r` times is `[r, n]` flattened (the
    // index `i * n + k` reads element `k`): view the input as
    // `[1, n0, 1, n1, …]`, broadcast to `[r0, n0, r1, n1, …]`, copy, and
    // merge each pair.
    let split: Vec<usize> = shape.iter().flat_map(|&dim| [1, dim]).collect();
    let spread: Vec<usize> = shape.iter().zip(&repeats).flat_map(|(&dim, &times)| [times, dim]).collect();
    let invalid = |err: ndarray::ShapeError| OpError::Invalid { op: "Tile", reason: err.to_string() };
    dispatch!(x, array => {
        let standard = array.as_standard_layout();
        let view = standard.view().into_shape_with_order(IxDyn(&split)).map_err(invalid)?;
        let spread_view = view.broadcast(IxDyn(&spread)).ok_or_else(|| OpError::Invalid {
            op: "Tile",
            reason: format!("cannot repeat shape {shape:?} by {repeats:?}"),
        })?;
        let out: ArrayD<_> = spread_view.as_standard_layout().into_owned();
        Ok(Tensor::from(out.into_shape_with_order(IxDyn(&out_shape)).map_err(invalid)?))
    })
}

impl Op for Tile {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.scalar_form { 3..=3 } else { 2..=2 }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let repeats = if self.scalar_form { None } else { inputs.get(1).and_then(InferInput::int64_values) };
        let dims = match (ty.dims.as_ref(), repeats) {
            (Some(dims), Some(repeats)) if repeats.len() == dims.len() => Some(
                dims.iter()
                    .zip(&repeats)
                    .map(|(dim, &times)| match (dim, usize::try_from(times)) {
                        (_, Ok(1)) => dim.clone(),
                        (Dim::Fixed(size), Ok(times)) => size.checked_mul(times).map_or(Dim::Any, Dim::Fixed),
                        _ => Dim::Any,
                    })
                    .collect(),
            ),
            (dims, _) => dims.map(|dims| vec![Dim::Any; dims.len()]),
        };
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Tile")?;
        check_dtype("Tile", x.dtype(), self.dtypes)?;
        let repeats = if self.scalar_form {
            let tiles = int_values("Tile", "tiles", required(inputs, 1, "Tile")?.as_ref())?;
            let axis = int_values("Tile", "axis", required(inputs, 2, "Tile")?.as_ref())?;
            let (&[tiles], &[axis]) = (tiles.as_slice(), axis.as_slice()) else {
                return Err(OpError::Invalid { op: "Tile", reason: "tiles and axis must be single values".into() });
            };
            let axis = normalize_axis("Tile", axis, x.shape().len())?;
            (0..x.shape().len()).map(|idx| if idx == axis { tiles } else { 1 }).collect()
        } else {
            int_values("Tile", "repeats", required(inputs, 1, "Tile")?.as_ref())?
        };
        tile(&x, &repeats, ctx)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn with_ctx<R>(f: impl FnOnce(&ExecCtx<'_>) -> R) -> R {
        let par = Parallel::serial();
        f(&ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 })
    }

    #[test]
    fn expand_broadcasts_both_ways() {
        let x = Tensor::from(array![[1.0f32], [2.0], [3.0]]);
        let out = with_ctx(|ctx| expand(&x, &[2, 1, 2], ctx)).unwrap();
        let expected: Vec<f64> = vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        assert_eq!(out.shape(), [2, 3, 2]);
        assert_eq!(out.to_f64_vec(), expected);
        // A shape smaller than the input keeps the input's dims.
        assert_eq!(with_ctx(|ctx| expand(&x, &[1, 1], ctx)).unwrap(), x);
        let err = with_ctx(|ctx| expand(&x, &[2, 2], ctx)).unwrap_err();
        assert!(err.to_string().contains("does not broadcast"), "{err}");
    }

    #[test]
    fn tile_repeats_each_axis() {
        let x = Tensor::from(array![[1i64, 2], [3, 4]]);
        let out = with_ctx(|ctx| tile(&x, &[2, 3], ctx)).unwrap();
        assert_eq!(out.shape(), [4, 6]);
        let row: Vec<f64> = out.to_f64_vec()[..6].to_vec();
        assert_eq!(row, [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
        assert_eq!(out.to_f64_vec()[18..], [3.0, 4.0, 3.0, 4.0, 3.0, 4.0]);
        assert!(with_ctx(|ctx| tile(&x, &[2], ctx)).is_err());
        assert!(with_ctx(|ctx| tile(&x, &[-1, 1], ctx)).is_err());
    }

    #[test]
    fn absurd_sizes_are_refused_not_allocated() {
        let x = Tensor::from(array![1.0f32]);
        for shape in [[1i64 << 40, 1 << 40], [i64::MAX, i64::MAX], [1 << 20, 1]] {
            let err = with_ctx(|ctx| expand(&x, &shape, ctx)).unwrap_err();
            assert!(err.to_string().contains("size limit"), "{err}");
        }
        let err = with_ctx(|ctx| tile(&x, &[i64::MAX], ctx)).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }
}
