//! Unsqueeze and Squeeze: add or remove size-1 axes. The dynamo exporter
//! wraps a 0-d Softmax in them.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Unsqueeze.html>
//! - <https://onnx.ai/onnx/operators/onnx__Squeeze.html>
//!
//! | opset | change                                                       |
//! |-------|--------------------------------------------------------------|
//! | 1     | `axes` attribute, non-negative only                          |
//! | 11    | `axes` attribute, negative axes allowed                      |
//! | 13+   | `axes` is an int64 input (optional for Squeeze)              |
//! | 21–25 | more element types only; the same code path in onnxi         |

use ndarray::IxDyn;

use super::{ExecCtx, Inputs, Op, Registry, normalize_axis, required};
use crate::attrs::Attrs;
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::tensor::{DType, Tensor};

/// Registers Unsqueeze and Squeeze.
pub fn register(reg: &mut Registry) {
    reg.add(
        "",
        "Unsqueeze",
        &[1, 11, 13, 21, 23, 24, 25],
        |_| &DType::ALL,
        Unsqueeze::from_node,
    );
    reg.add(
        "",
        "Squeeze",
        &[1, 11, 13, 21, 23, 24, 25],
        |_| &DType::ALL,
        Squeeze::from_node,
    );
}

/// Where the axes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Axes {
    /// The `axes` attribute (opset < 13).
    Attribute(Vec<i64>),
    /// The second input (opset 13+).
    Input,
}

fn read_axes(
    attrs: &mut Attrs<'_>,
    version: i64,
    required_attr: bool,
) -> Result<Option<Axes>, LoadError> {
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

fn axes_values(
    op: &'static str,
    axes: &Option<Axes>,
    inputs: &mut Inputs<'_>,
) -> Result<Option<Vec<i64>>, OpError> {
    match axes {
        Some(Axes::Attribute(values)) => Ok(Some(values.clone())),
        None => Ok(None),
        Some(Axes::Input) => match inputs.get_mut(1).and_then(Option::take) {
            None => Ok(None),
            Some(tensor) => match tensor.as_ref() {
                Tensor::I64(array) if array.ndim() <= 1 => {
                    Ok(Some(array.iter().copied().collect()))
                }
                other => Err(OpError::Invalid {
                    op,
                    reason: format!(
                        "axes must be a 1-D int64 tensor, got {} {:?}",
                        other.dtype(),
                        other.shape()
                    ),
                }),
            },
        },
    }
}

fn reshaped(x: Tensor, shape: &[usize]) -> Result<Tensor, OpError> {
    Ok(dispatch!(x, array => {
        let array = if array.is_standard_layout() { array } else { array.as_standard_layout().into_owned() };
        array
            .into_shape_with_order(IxDyn(shape))
            .map_err(|err| OpError::Invalid { op: "Reshape", reason: err.to_string() })?
            .into()
    }))
}

fn sorted_unique(op: &'static str, axes: &[i64], rank: usize) -> Result<Vec<usize>, OpError> {
    let mut resolved = axes
        .iter()
        .map(|&axis| normalize_axis(op, axis, rank))
        .collect::<Result<Vec<_>, _>>()?;
    resolved.sort_unstable();
    if resolved.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(OpError::Invalid {
            op,
            reason: format!("axes {axes:?} repeat an axis"),
        });
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
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.axes == Axes::Input {
            2..=2
        } else {
            1..=1
        }
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Unsqueeze")?.into_owned();
        let axes = axes_values("Unsqueeze", &Some(self.axes.clone()), inputs)?.ok_or(
            OpError::MissingInput {
                op: "Unsqueeze",
                index: 1,
            },
        )?;
        let out_rank = x.shape().len() + axes.len();
        let axes = sorted_unique("Unsqueeze", &axes, out_rank)?;
        let mut dims = x.shape().iter().copied();
        let shape: Vec<usize> = (0..out_rank)
            .map(|axis| {
                if axes.contains(&axis) {
                    1
                } else {
                    dims.next().unwrap_or(1)
                }
            })
            .collect();
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
        Ok(Squeeze {
            axes: read_axes(attrs, version, false)?,
        })
    }
}

impl Op for Squeeze {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.axes == Some(Axes::Input) {
            1..=2
        } else {
            1..=1
        }
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
        let kept: Vec<usize> = shape
            .iter()
            .enumerate()
            .filter(|(axis, _)| !axes.contains(axis))
            .map(|(_, &dim)| dim)
            .collect();
        reshaped(x, &kept)
    }
}
