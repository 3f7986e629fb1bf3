//! Shape ops that move no data: Unsqueeze and Squeeze (the dynamo exporter
//! wraps a 0-d Softmax in them), Flatten and Reshape (classifier heads, and
//! the old PyTorch-converted ONNX test cases).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Unsqueeze.html>
//! - <https://onnx.ai/onnx/operators/onnx__Squeeze.html>
//! - <https://onnx.ai/onnx/operators/onnx__Flatten.html>
//! - <https://onnx.ai/onnx/operators/onnx__Reshape.html>
//! - <https://onnx.ai/onnx/operators/onnx__Shape.html>
//! - <https://onnx.ai/onnx/operators/onnx__Size.html>
//!
//! | op                 | opset | change                                         |
//! |--------------------|-------|------------------------------------------------|
//! | Unsqueeze, Squeeze | 1     | `axes` attribute, non-negative only            |
//! | Unsqueeze, Squeeze | 11    | `axes` attribute, negative axes allowed        |
//! | Unsqueeze, Squeeze | 13+   | `axes` is an int64 input (optional for Squeeze)|
//! | Flatten            | 1, 9  | `axis` in `[0, rank]` (9: more dtypes)         |
//! | Flatten            | 11+   | negative `axis` allowed                        |
//! | Reshape            | 1     | `shape` attribute (+ legacy `consumed_inputs`) |
//! | Reshape            | 5, 13 | `shape` is an int64 input; 0 copies the dim    |
//! | Reshape            | 14+   | `allowzero`: 0 means size 0 when set           |
//! | Shape              | 1, 13 | the whole shape as 1-D int64                   |
//! | Shape              | 15+   | `start`/`end` attributes pick a clamped range  |
//! | Size               | 1, 13 | element count as a 0-d int64                   |
//! | all                | 19–25 | more element types only; same code path        |

use ndarray::IxDyn;

use super::{ExecCtx, FLOATS, Inputs, Op, Registry, moved_types, normalize_axis, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::io::tensor_proto::MAX_RANK;
use crate::tensor::{DType, Tensor};

/// Registers Unsqueeze, Squeeze, Flatten, Reshape, Shape and Size.
pub fn register(reg: &mut Registry) {
    reg.add("", "Unsqueeze", &[1, 11, 13, 21, 23, 24, 25], moved_types, Unsqueeze::from_node);
    reg.add("", "Squeeze", &[1, 11, 13, 21, 23, 24, 25], moved_types, Squeeze::from_node);
    reg.add("", "Flatten", &[1, 9, 11, 13, 21, 23, 24, 25], floats_at_1_then_moved, Flatten::from_node);
    reg.add("", "Reshape", &[1, 5, 13, 14, 19, 21, 23, 24, 25], floats_at_1_then_moved, Reshape::from_node);
    reg.add("", "Shape", &[1, 13, 15, 19, 21, 23, 24, 25], moved_types, Shape::from_node);
    reg.add("", "Size", &[1, 13, 19, 21, 23, 24, 25], moved_types, Size::from_node);
}

/// Flatten-1 and Reshape-1 took float types only; later versions every
/// type ([`moved_types`]).
fn floats_at_1_then_moved(version: i64) -> &'static [DType] {
    if version < 5 { FLOATS } else { moved_types(version) }
}

/// Where the axes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Axes {
    /// The `axes` attribute (opset < 13).
    Attribute(Vec<i64>),
    /// The second input (opset 13+).
    Input,
}

fn read_axes(attrs: &mut Attrs<'_>, version: i64, required_attr: bool) -> Result<Option<Axes>, LoadError> {
    if version >= 13 {
        return Ok(Some(Axes::Input));
    }
    match attrs.ints("axes")? {
        Some(axes) => {
            if version < 11 && axes.iter().any(|&axis| axis < 0) {
                return Err(attrs.error("axes", "negative axes need opset 11 or newer"));
            }
            Ok(Some(Axes::Attribute(axes)))
        }
        None if required_attr => Err(attrs.error("axes", "is required")),
        None => Ok(None),
    }
}

/// The axes when known at load: from the attribute or a constant input.
fn known_axes(axes: &Option<Axes>, inputs: &[InferInput<'_>]) -> Option<Vec<i64>> {
    match axes {
        Some(Axes::Attribute(values)) => Some(values.clone()),
        Some(Axes::Input) => inputs.get(1)?.int64_values(),
        None => None,
    }
}

/// The product of some dims: a number when all are fixed, the dim itself
/// when there is one, else unknown.
fn dims_product(dims: &[Dim]) -> Dim {
    if let [dim] = dims {
        return dim.clone();
    }
    dims.iter()
        .try_fold(1usize, |acc, dim| match dim {
            Dim::Fixed(size) => acc.checked_mul(*size),
            _ => None,
        })
        .map_or(Dim::Any, Dim::Fixed)
}

fn axes_values(op: &'static str, axes: &Option<Axes>, inputs: &mut Inputs<'_>) -> Result<Option<Vec<i64>>, OpError> {
    match axes {
        Some(Axes::Attribute(values)) => Ok(Some(values.clone())),
        None => Ok(None),
        Some(Axes::Input) => match inputs.get_mut(1).and_then(Option::take) {
            None => Ok(None),
            Some(tensor) => match tensor.as_ref() {
                Tensor::I64(array) if array.ndim() <= 1 => Ok(Some(array.iter().copied().collect())),
                other => Err(OpError::Invalid {
                    op,
                    reason: format!("axes must be a 1-D int64 tensor, got {} {:?}", other.dtype(), other.shape()),
                }),
            },
        },
    }
}

fn reshaped(x: Tensor, shape: &[usize]) -> Result<Tensor, OpError> {
    Ok(dispatch!(x, array => {
        // A standard-layout array reshapes without a copy: the output shares
        // the input's buffer (and a lent input is only a handle clone).
        let array =
            if array.is_standard_layout() { array } else { array.as_standard_layout().into_owned().into_shared() };
        array
            .into_shape_with_order(IxDyn(shape))
            .map_err(|err| OpError::Invalid { op: "Reshape", reason: err.to_string() })?
            .into()
    }))
}

/// Refuses output ranks above [`MAX_RANK`], which no real model needs and
/// which would make shape handling quadratic.
fn check_rank(op: &'static str, rank: usize) -> Result<(), OpError> {
    if rank > MAX_RANK {
        return Err(OpError::Invalid {
            op,
            reason: format!("output rank {rank} is more than the {MAX_RANK} dimensions onnxi allows"),
        });
    }
    Ok(())
}

fn sorted_unique(op: &'static str, axes: &[i64], rank: usize) -> Result<Vec<usize>, OpError> {
    let mut resolved = axes.iter().map(|&axis| normalize_axis(op, axis, rank)).collect::<Result<Vec<_>, _>>()?;
    resolved.sort_unstable();
    if resolved.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(OpError::Invalid { op, reason: format!("axes {axes:?} repeat an axis") });
    }
    Ok(resolved)
}

/// Unsqueeze: inserts size-1 axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsqueeze {
    /// The axes (attribute or input).
    pub axes: Axes,
}

impl Unsqueeze {
    /// Reads `axes` before opset 13.
    ///
    /// # Errors
    /// A missing or wrongly typed `axes` attribute.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axes = read_axes(attrs, version, true)?.unwrap_or(Axes::Input);
        Ok(Unsqueeze { axes })
    }
}

impl Op for Unsqueeze {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let axes = known_axes(&Some(self.axes.clone()), inputs);
        let dims = match (ty.dims.as_ref(), axes) {
            (Some(dims), Some(axes)) => {
                let out_rank = dims.len() + axes.len();
                sorted_unique("Unsqueeze", &axes, out_rank).ok().map(|axes| {
                    let mut kept = dims.iter().cloned();
                    (0..out_rank)
                        .map(|axis| if axes.contains(&axis) { Dim::Fixed(1) } else { kept.next().unwrap_or(Dim::Any) })
                        .collect()
                })
            }
            _ => None,
        };
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.axes == Axes::Input { 2..=2 } else { 1..=1 }
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Unsqueeze")?.into_owned();
        let axes = axes_values("Unsqueeze", &Some(self.axes.clone()), inputs)?
            .ok_or(OpError::MissingInput { op: "Unsqueeze", index: 1 })?;
        let out_rank = x.shape().len() + axes.len();
        check_rank("Unsqueeze", out_rank)?;
        let axes = sorted_unique("Unsqueeze", &axes, out_rank)?;
        let mut dims = x.shape().iter().copied();
        let shape: Vec<usize> =
            (0..out_rank).map(|axis| if axes.contains(&axis) { 1 } else { dims.next().unwrap_or(1) }).collect();
        reshaped(x, &shape)
    }
}

/// Squeeze: removes size-1 axes (all of them when no axes are given).
#[derive(Debug, Clone, PartialEq)]
pub struct Squeeze {
    /// The axes, or `None` for every size-1 axis.
    pub axes: Option<Axes>,
}

impl Squeeze {
    /// Reads `axes` before opset 13.
    ///
    /// # Errors
    /// A wrongly typed `axes` attribute.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(Squeeze { axes: read_axes(attrs, version, false)? })
    }
}

impl Op for Squeeze {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = ty.dims.as_ref().and_then(|dims| {
            let squeezed: Vec<usize> = match (&self.axes, known_axes(&self.axes, inputs)) {
                (_, Some(axes)) => sorted_unique("Squeeze", &axes, dims.len()).ok()?,
                // Every size-1 axis: known only when every dim is.
                (None, None) => dims
                    .iter()
                    .enumerate()
                    .map(|(axis, dim)| match dim {
                        Dim::Fixed(1) => Some(Some(axis)),
                        Dim::Fixed(_) => Some(None),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
                (Some(_), None) => return None,
            };
            Some(
                dims.iter()
                    .enumerate()
                    .filter(|(axis, _)| !squeezed.contains(axis))
                    .map(|(_, dim)| dim.clone())
                    .collect(),
            )
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.axes == Some(Axes::Input) { 1..=2 } else { 1..=1 }
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Squeeze")?.into_owned();
        let shape = x.shape().to_vec();
        let axes = match axes_values("Squeeze", &self.axes, inputs)? {
            Some(axes) => sorted_unique("Squeeze", &axes, shape.len())?,
            None => (0..shape.len()).filter(|&axis| shape[axis] == 1).collect(),
        };
        if let Some(&axis) = axes.iter().find(|&&axis| shape[axis] != 1) {
            return Err(OpError::Invalid {
                op: "Squeeze",
                reason: format!("axis {axis} has size {}, not 1", shape[axis]),
            });
        }
        // A bitmap, not `axes.contains`, so a long axes list stays linear.
        let mut squeezed = vec![false; shape.len()];
        axes.iter().for_each(|&axis| squeezed[axis] = true);
        let kept: Vec<usize> =
            shape.iter().zip(&squeezed).filter(|(_, squeezed)| !**squeezed).map(|(&dim, _)| dim).collect();
        reshaped(x, &kept)
    }
}

/// Flatten: reshapes to 2-D `[prod(dims[..axis]), prod(dims[axis..])]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Flatten {
    /// The split point (default 1; negative from opset 11).
    pub axis: i64,
}

impl Flatten {
    /// Reads `axis`.
    ///
    /// # Errors
    /// A wrongly typed `axis`, or a negative one before opset 11.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?.unwrap_or(1);
        if version < 11 && axis < 0 {
            return Err(attrs.error("axis", "negative axes need opset 11 or newer"));
        }
        Ok(Flatten { axis })
    }
}

impl Op for Flatten {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = ty.dims.as_ref().and_then(|dims| {
            let axis = if self.axis == dims.len() as i64 {
                dims.len()
            } else {
                normalize_axis("Flatten", self.axis, dims.len()).ok()?
            };
            Some(vec![dims_product(&dims[..axis]), dims_product(&dims[axis..])])
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Flatten")?.into_owned();
        let shape = x.shape().to_vec();
        // `axis` may equal the rank (everything goes to the first dim).
        let axis = if self.axis == shape.len() as i64 {
            shape.len()
        } else {
            normalize_axis("Flatten", self.axis, shape.len())?
        };
        let outer = shape[..axis].iter().product();
        let inner = shape[axis..].iter().product();
        reshaped(x, &[outer, inner])
    }
}

/// Reshape to a target shape with ONNX's `0` (copy) and `-1` (infer) rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Reshape {
    /// The target shape from the attribute (opset 1), or `None` for the input.
    pub shape: Option<Vec<i64>>,
    /// `allowzero` (opset 14+): a 0 means size 0 instead of "copy".
    pub allow_zero: bool,
}

impl Reshape {
    /// Reads `shape` (opset 1) or `allowzero` (opset 14+).
    ///
    /// # Errors
    /// Wrongly typed attributes, or a missing `shape` at opset 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 5 {
            attrs.ints("consumed_inputs")?;
            let shape = attrs.ints("shape")?.ok_or_else(|| attrs.error("shape", "is required"))?;
            return Ok(Reshape { shape: Some(shape), allow_zero: false });
        }
        let allow_zero = if version >= 14 { attrs.i64("allowzero")?.unwrap_or(0) != 0 } else { false };
        Ok(Reshape { shape: None, allow_zero })
    }

    /// The output shape for an input of `input` dims.
    ///
    /// # Errors
    /// More than one -1, a value below -1, a 0 past the input's rank, or an
    /// element count that does not match.
    pub fn target(&self, requested: &[i64], input: &[usize]) -> Result<Vec<usize>, OpError> {
        let invalid = |reason: String| OpError::Invalid { op: "Reshape", reason };
        let mut inferred = None;
        let mut dims = Vec::with_capacity(requested.len());
        for (idx, &dim) in requested.iter().enumerate() {
            dims.push(match dim {
                -1 if inferred.is_none() => {
                    inferred = Some(idx);
                    1
                }
                -1 => return Err(invalid(format!("shape {requested:?} has more than one -1"))),
                0 if !self.allow_zero => *input.get(idx).ok_or_else(|| {
                    invalid(format!("shape {requested:?}: 0 at index {idx} but the input has rank {}", input.len()))
                })?,
                dim if dim >= 0 => {
                    usize::try_from(dim).map_err(|_| invalid(format!("dimension {dim} is too large")))?
                }
                dim => return Err(invalid(format!("shape {requested:?} has invalid dimension {dim}"))),
            });
        }
        let n_input: usize = input.iter().product();
        let known = dims
            .iter()
            .try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
            .ok_or_else(|| invalid(format!("shape {requested:?} overflows")))?;
        if let Some(idx) = inferred {
            if known == 0 || !n_input.is_multiple_of(known) {
                return Err(invalid(format!("cannot infer the -1 in {requested:?} for {n_input} elements")));
            }
            dims[idx] = n_input / known;
        } else if known != n_input {
            return Err(invalid(format!(
                "shape {requested:?} holds {known} elements, the input {input:?} has {n_input}"
            )));
        }
        Ok(dims)
    }
}

impl Op for Reshape {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let requested = match &self.shape {
            Some(shape) => Some(shape.clone()),
            None => inputs.get(1).and_then(InferInput::int64_values),
        };
        let dims = match (requested, ty.fixed_shape()) {
            (Some(requested), Some(input)) => {
                self.target(&requested, &input).ok().map(|dims| dims.into_iter().map(Dim::Fixed).collect())
            }
            (Some(requested), None) => Some(
                requested
                    .iter()
                    .enumerate()
                    .map(|(idx, &dim)| match dim {
                        0 if !self.allow_zero => {
                            ty.dims.as_ref().and_then(|dims| dims.get(idx).cloned()).unwrap_or(Dim::Any)
                        }
                        dim if dim >= 0 => usize::try_from(dim).map_or(Dim::Any, Dim::Fixed),
                        _ => Dim::Any,
                    })
                    .collect(),
            ),
            // Only the rank, from the shape input's length.
            (None, _) => inputs
                .get(1)
                .and_then(|input| input.ty)
                .and_then(ValueType::fixed_shape)
                .and_then(|shape| shape.first().copied())
                .map(|rank| vec![Dim::Any; rank]),
        };
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.shape.is_some() { 1..=1 } else { 2..=2 }
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Reshape")?.into_owned();
        let requested = match &self.shape {
            Some(shape) => shape.clone(),
            None => match required(inputs, 1, "Reshape")?.as_ref() {
                Tensor::I64(array) if array.ndim() == 1 => array.iter().copied().collect(),
                other => {
                    return Err(OpError::Invalid {
                        op: "Reshape",
                        reason: format!("shape must be a 1-D int64 tensor, got {} {:?}", other.dtype(), other.shape()),
                    });
                }
            },
        };
        check_rank("Reshape", requested.len())?;
        let target = self.target(&requested, x.shape())?;
        reshaped(x, &target)
    }
}

/// Shape: the input's dimensions as a 1-D int64 tensor, optionally only
/// those in `start..end` (opset 15; negative counts from the end, both
/// clamped to `[0, rank]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// First dimension to report (default 0).
    pub start: i64,
    /// One past the last dimension to report (default: the rank).
    pub end: Option<i64>,
}

impl Shape {
    /// Reads `start` and `end` from opset 15.
    ///
    /// # Errors
    /// Wrongly typed attributes.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 15 {
            return Ok(Shape { start: 0, end: None });
        }
        Ok(Shape { start: attrs.i64("start")?.unwrap_or(0), end: attrs.i64("end")? })
    }

    /// The reported range of dimensions for a rank.
    fn range(&self, rank: usize) -> std::ops::Range<usize> {
        let rank_i = i64::try_from(rank).unwrap_or(i64::MAX);
        let clamp = |value: i64| {
            let value = if value < 0 { value.saturating_add(rank_i) } else { value };
            value.clamp(0, rank_i) as usize
        };
        let start = clamp(self.start);
        let end = clamp(self.end.unwrap_or(rank_i));
        start..end.max(start)
    }
}

impl Op for Shape {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(ValueType::rank);
        let dims = rank.map(|rank| vec![Dim::Fixed(self.range(rank).len())]);
        vec![Some(ValueType { dtype: DType::I64, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Shape")?;
        let shape = x.shape();
        let dims: Vec<i64> = shape[self.range(shape.len())].iter().map(|&dim| dim as i64).collect();
        Ok(Tensor::from(ndarray::Array1::from(dims)))
    }
}

/// Size: the input's element count as a 0-d int64 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Size;

impl Size {
    /// Size has no attributes.
    ///
    /// # Errors
    /// Never.
    pub fn from_node(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Size)
    }
}

impl Op for Size {
    fn infer(&self, _inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![Some(ValueType { dtype: DType::I64, dims: Some(Vec::new()) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Size")?;
        Ok(Tensor::from(ndarray::arr0(x.len() as i64)))
    }
}
