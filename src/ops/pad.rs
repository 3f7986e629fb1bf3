//! Pad: grows (or, with negative pads, crops) each axis, filling with a
//! constant, the edge value, a reflection or a wrap-around.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Pad.html>
//!
//! | opset | change                                                           |
//! |-------|------------------------------------------------------------------|
//! | 1     | `paddings` and `value` attributes; constant, reflect, edge        |
//! | 2     | the attribute is renamed `pads`                                   |
//! | 11    | `pads` and `constant_value` are inputs; integer types             |
//! | 13    | bool and bfloat16                                                 |
//! | 18    | optional `axes` input: pads only for those axes                   |
//! | 19    | `wrap` mode                                                       |
//! | 21–25 | more element types only; same code path                           |
//!
//! `pads` lists every axis's begin count, then every axis's end count.
//! Reflect follows numpy (the edge is not repeated); edge, reflect and
//! wrap refuse to grow an empty axis.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::identity::all_from_13;
use super::values::int_values;
use super::{ExecCtx, FLOATS, Inputs, NUMBERS, Op, Registry, check_dtype, normalize_axis, required};
use crate::dispatch_numeric;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Tensor};

/// Registers Pad.
pub fn register(reg: &mut Registry) {
    reg.add("", "Pad", &[1, 2, 11, 13, 18, 19, 21, 23, 24, 25], pad_dtypes, Pad::from_node);
}

fn pad_dtypes(version: i64) -> &'static [DType] {
    match version {
        ..11 => FLOATS,
        11 => NUMBERS,
        _ => all_from_13(version),
    }
}

/// How the new entries are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A constant (0 unless given).
    Constant,
    /// The mirror image about the first and last entries.
    Reflect,
    /// The first or last entry repeated.
    Edge,
    /// The axis repeated as if it were a ring (opset 19).
    Wrap,
}

/// Where pads and the constant come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    /// Opsets 1 and 2: `pads` and `value` attributes.
    Attributes {
        /// Begin counts, then end counts, for every axis.
        pads: Vec<i64>,
        /// The constant for `Mode::Constant`.
        value: f32,
    },
    /// Opset 11+: `pads`, `constant_value` and (18+) `axes` inputs.
    Inputs,
}

/// Pad.
#[derive(Debug, Clone, PartialEq)]
pub struct Pad {
    /// The fill mode.
    pub mode: Mode,
    /// Where pads and the constant come from.
    pub params: Params,
    /// Opset 18+: the `axes` input is accepted.
    pub axes_input: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Pad {
    /// Reads `mode`, and before opset 11 `pads` (`paddings` at opset 1) and `value`.
    ///
    /// # Errors
    /// An unknown mode (or `wrap` before 19), or missing pads before 11.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let mode = match attrs.string("mode")?.as_deref().unwrap_or("constant") {
            "constant" => Mode::Constant,
            "reflect" => Mode::Reflect,
            "edge" => Mode::Edge,
            "wrap" if version >= 19 => Mode::Wrap,
            other => return Err(attrs.error("mode", format!("unknown mode {other:?} at version {version}"))),
        };
        let params = if version < 11 {
            let name = if version < 2 { "paddings" } else { "pads" };
            let pads = attrs.ints(name)?.ok_or_else(|| attrs.error(name, "is required"))?;
            Params::Attributes { pads, value: attrs.f32("value")?.unwrap_or(0.0) }
        } else {
            Params::Inputs
        };
        Ok(Pad { mode, params, axes_input: version >= 18, dtypes: pad_dtypes(version) })
    }
}

/// Per axis, `(begin, end)` pad counts from a pads list over `axes`.
///
/// # Errors
/// A pads list of the wrong length, a bad or repeated axis, or a pad that
/// would make a dimension negative.
pub fn axis_pads(shape: &[usize], pads: &[i64], axes: Option<&[i64]>) -> Result<Vec<(i64, i64)>, OpError> {
    let rank = shape.len();
    let axes: Vec<usize> = match axes {
        Some(axes) => axes.iter().map(|&axis| normalize_axis("Pad", axis, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(OpError::Invalid {
            op: "Pad",
            reason: format!("{} pads for {} axes (need two per axis)", pads.len(), axes.len()),
        });
    }
    let mut out = vec![(0i64, 0i64); rank];
    let mut seen = vec![false; rank];
    for (idx, &axis) in axes.iter().enumerate() {
        if std::mem::replace(&mut seen[axis], true) {
            return Err(OpError::Invalid { op: "Pad", reason: format!("axis {axis} is listed twice") });
        }
        out[axis] = (pads[idx], pads[idx + axes.len()]);
    }
    for (axis, (&dim, &(begin, end))) in shape.iter().zip(&out).enumerate() {
        let size = i128::from(begin) + i128::from(end) + dim as i128;
        if size < 0 {
            return Err(OpError::Invalid {
                op: "Pad",
                reason: format!("pads {begin} and {end} leave axis {axis} of size {dim} with a negative size"),
            });
        }
    }
    Ok(out)
}

/// The source index of output index `idx` on an axis of `dim` with `begin`
/// added before it, `None` where the constant goes. Computed per element
/// rather than tabulated, so padding needs no memory beyond its output.
fn source_index(mode: Mode, dim: usize, begin: i64, idx: usize) -> Option<usize> {
    let dim_i = dim as i128;
    let position = idx as i128 - i128::from(begin);
    if (0..dim_i).contains(&position) {
        return Some(position as usize);
    }
    match mode {
        Mode::Constant => None,
        // An empty axis only gets here in constant mode (see `pad`).
        _ if dim == 0 => None,
        Mode::Edge => Some(position.clamp(0, dim_i - 1) as usize),
        Mode::Wrap => Some(position.rem_euclid(dim_i) as usize),
        Mode::Reflect if dim == 1 => Some(0),
        Mode::Reflect => {
            let period = 2 * (dim_i - 1);
            let folded = position.rem_euclid(period);
            Some((if folded >= dim_i { period - folded } else { folded }) as usize)
        }
    }
}

fn pad_typed<T: Num>(
    x: ArrayViewD<'_, T>,
    mode: Mode,
    pads: &[(i64, i64)],
    out_shape: &[usize],
    constant: Option<&Tensor>,
) -> Tensor {
    let fill = constant.and_then(|constant| T::view(constant)?.iter().next().copied()).unwrap_or_default();
    let mut source = vec![0usize; out_shape.len()];
    let out = ArrayD::from_shape_fn(IxDyn(out_shape), |idx| {
        for (axis, (&dim, &(begin, _))) in x.shape().iter().zip(pads).enumerate() {
            match source_index(mode, dim, begin, idx[axis]) {
                Some(src) => source[axis] = src,
                None => return fill,
            }
        }
        x[IxDyn(&source)]
    });
    T::wrap(out)
}

/// Pad's kernel.
///
/// # Errors
/// Bad pads (see [`axis_pads`]), a constant of another dtype, growing an
/// empty axis in a mode other than constant, or an output above the
/// context's size limit.
pub fn pad(
    x: &Tensor,
    mode: Mode,
    pads: &[(i64, i64)],
    constant: Option<&Tensor>,
    ctx: &ExecCtx<'_>,
) -> Result<Tensor, OpError> {
    if let Some(constant) = constant
        && (constant.dtype() != x.dtype() || constant.len() != 1)
    {
        return Err(OpError::Invalid {
            op: "Pad",
            reason: format!(
                "constant_value must be one {} value, got {} {:?}",
                x.dtype(),
                constant.dtype(),
                constant.shape()
            ),
        });
    }
    let mut out_shape = Vec::with_capacity(pads.len());
    for (axis, (&dim, &(begin, end))) in x.shape().iter().zip(pads).enumerate() {
        if dim == 0 && (begin > 0 || end > 0) && mode != Mode::Constant {
            return Err(OpError::Invalid {
                op: "Pad",
                reason: format!("cannot pad the empty axis {axis} in {mode:?} mode"),
            });
        }
        let size = (dim as i128 + i128::from(begin) + i128::from(end)).max(0);
        out_shape.push(usize::try_from(size).unwrap_or(usize::MAX));
    }
    ctx.checked_elems("Pad", x.dtype(), &out_shape)?;
    dispatch_numeric!(x, array => Ok(pad_typed(array.view(), mode, pads, &out_shape, constant)), other => {
        Err(OpError::UnsupportedDtype { op: "Pad", dtype: other.dtype() })
    })
}

impl Op for Pad {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        match (&self.params, self.axes_input) {
            (Params::Attributes { .. }, _) => 1..=1,
            (Params::Inputs, false) => 2..=3,
            (Params::Inputs, true) => 2..=4,
        }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let pads = match &self.params {
            Params::Attributes { pads, .. } => Some(pads.clone()),
            Params::Inputs => inputs.get(1).and_then(InferInput::int64_values),
        };
        let axes_given = inputs.get(3).is_some_and(|input| input.ty.is_some() || input.value.is_some());
        let dims = match (ty.fixed_shape(), pads) {
            (Some(shape), Some(pads)) if !axes_given => axis_pads(&shape, &pads, None).ok().map(|pads| {
                shape
                    .iter()
                    .zip(pads)
                    .map(|(&dim, (begin, end))| {
                        usize::try_from(dim as i128 + i128::from(begin) + i128::from(end)).map_or(Dim::Any, Dim::Fixed)
                    })
                    .collect()
            }),
            _ => ty.rank().map(|rank| vec![Dim::Any; rank]),
        };
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Pad")?;
        check_dtype("Pad", x.dtype(), self.dtypes)?;
        match &self.params {
            Params::Attributes { pads, value } => {
                let pads = axis_pads(x.shape(), pads, None)?;
                let constant = match x.dtype() {
                    DType::F64 => Tensor::from(ndarray::arr0(f64::from(*value))),
                    DType::F16 => Tensor::from(ndarray::arr0(half::f16::from_f32(*value))),
                    _ => Tensor::from(ndarray::arr0(*value)),
                };
                pad(&x, self.mode, &pads, Some(&constant), ctx)
            }
            Params::Inputs => {
                let pads_tensor = required(inputs, 1, "Pad")?;
                if pads_tensor.dtype() != DType::I64 {
                    return Err(OpError::Invalid {
                        op: "Pad",
                        reason: format!("pads must be int64, got {}", pads_tensor.dtype()),
                    });
                }
                let pad_values = int_values("Pad", "pads", &pads_tensor)?;
                let constant = inputs.get_mut(2).and_then(Option::take);
                let axes = inputs
                    .get_mut(3)
                    .and_then(Option::take)
                    .map(|axes| int_values("Pad", "axes", &axes))
                    .transpose()?;
                let pads = axis_pads(x.shape(), &pad_values, axes.as_deref())?;
                pad(&x, self.mode, &pads, constant.as_deref(), ctx)
            }
        }
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

    fn pad1(mode: Mode, begin: i64, end: i64) -> Vec<f64> {
        let x = Tensor::from(array![1.0f32, 2.0, 3.0]);
        with_ctx(|ctx| pad(&x, mode, &[(begin, end)], None, ctx)).unwrap().to_f64_vec()
    }

    #[test]
    fn each_mode_matches_numpy_pad() {
        // numpy.pad([1, 2, 3], (4, 5), mode) for each mode.
        assert_eq!(pad1(Mode::Constant, 2, 1), [0.0, 0.0, 1.0, 2.0, 3.0, 0.0]);
        assert_eq!(pad1(Mode::Edge, 2, 1), [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]);
        assert_eq!(pad1(Mode::Reflect, 4, 5), [1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0]);
        assert_eq!(pad1(Mode::Wrap, 4, 5), [3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]);
        // Negative pads crop.
        assert_eq!(pad1(Mode::Constant, -1, 1), [2.0, 3.0, 0.0]);
    }

    #[test]
    fn pads_over_some_axes_and_a_constant() {
        let x = Tensor::from(array![[1i32, 2], [3, 4]]);
        let pads = axis_pads(x.shape(), &[1, 0], Some(&[-1])).unwrap();
        let seven = Tensor::from(ndarray::arr0(7i32));
        let out = with_ctx(|ctx| pad(&x, Mode::Constant, &pads, Some(&seven), ctx)).unwrap();
        assert_eq!(out, Tensor::from(array![[7i32, 1, 2], [7, 3, 4]]));
    }

    #[test]
    fn bad_pads_are_errors() {
        assert!(axis_pads(&[2, 2], &[1, 1], None).is_err());
        assert!(axis_pads(&[2], &[-2, -1], None).unwrap_err().to_string().contains("negative size"));
        let empty = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[0])));
        assert!(with_ctx(|ctx| pad(&empty, Mode::Reflect, &[(1, 0)], None, ctx)).is_err());
        let x = Tensor::from(array![1.0f32]);
        let err = with_ctx(|ctx| pad(&x, Mode::Constant, &[(i64::MAX, i64::MAX)], None, ctx)).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
    }
}
