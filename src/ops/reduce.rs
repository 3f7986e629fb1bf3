//! The Reduce family: ReduceMax, ReduceMin, ReduceSum, ReduceMean,
//! ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum and
//! ReduceLogSumExp, as one op with a per-kind accumulator.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__ReduceSum.html> (and the
//! pages of the other `Reduce*` ops, which share its attributes)
//!
//! | opset      | behaviour                                                       |
//! |------------|-----------------------------------------------------------------|
//! | 1, 11      | `axes` attribute (absent: all axes), `keepdims` (default 1)     |
//! | 12         | ReduceMax/Min: int8, uint8                                      |
//! | 13         | bfloat16; ReduceSum: `axes` becomes an optional int64 input and `noop_with_empty_axes` appears |
//! | 18         | the others move `axes` to the input the same way                |
//! | 20         | ReduceMax/Min: bool                                             |
//! | 28         | ReduceLogSum/LogSumExp: float types only                        |
//!
//! With the `axes` input empty or omitted, `noop_with_empty_axes = 0`
//! (the default) reduces over every axis and `1` returns the input
//! unchanged. Negative axes count from the end; an axis out of range or
//! given twice is an error naming the op.
//!
//! A reduction over no elements gives the kind's identity, as the newer
//! schemas state: Sum, L1, L2, SumSquare 0; Prod 1; Max the lowest value
//! (-inf, the type's minimum, false), Min the highest; LogSum and
//! LogSumExp -inf; Mean NaN (0 for integers, which have no NaN).
//!
//! Float types accumulate in float64 in element order on one thread, so a
//! float32 sum is within an ULP of the exact sum for any realistic length
//! and the result never depends on the thread count. Max and Min let NaN
//! win, as numpy and PyTorch do. Integers accumulate in i128 and wrap to
//! the output type (Sum, Prod, L1, SumSquare), divide truncating (Mean),
//! or go through float64 and truncate (L2, LogSum, LogSumExp), as the
//! reference implementation's `astype` does.

use super::{FLOATS_BF16_INTS_32_64, FLOATS_INTS_32_64};
use std::borrow::Cow;

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

use super::{ExecCtx, FLOATS_BF16, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Element, SharedArray, Tensor};

/// Which reduction a node computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Largest element (NaN wins).
    Max,
    /// Smallest element (NaN wins).
    Min,
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Product.
    Prod,
    /// Sum of absolute values.
    L1,
    /// Square root of the sum of squares.
    L2,
    /// Sum of squares.
    SumSquare,
    /// Natural log of the sum.
    LogSum,
    /// Natural log of the sum of exponentials, computed shifted by the max.
    LogSumExp,
}

impl Kind {
    /// The ONNX op_type.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Max => "ReduceMax",
            Kind::Min => "ReduceMin",
            Kind::Sum => "ReduceSum",
            Kind::Mean => "ReduceMean",
            Kind::Prod => "ReduceProd",
            Kind::L1 => "ReduceL1",
            Kind::L2 => "ReduceL2",
            Kind::SumSquare => "ReduceSumSquare",
            Kind::LogSum => "ReduceLogSum",
            Kind::LogSumExp => "ReduceLogSumExp",
        }
    }

    /// The first version whose `axes` is an input rather than an attribute.
    fn axes_input_since(self) -> i64 {
        if self == Kind::Sum { 13 } else { 18 }
    }
}

/// ReduceMax/Min at opset 12: int8 and uint8 added.
const MINMAX_12: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::I8, DType::I32, DType::I64, DType::U8, DType::U32, DType::U64];
/// ReduceMax/Min at opsets 13 and 18.
const MINMAX_13: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U32,
    DType::U64,
];
/// ReduceMax/Min from opset 20: bool added.
const MINMAX_20: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U32,
    DType::U64,
    DType::Bool,
];

fn minmax_dtypes(version: i64) -> &'static [DType] {
    match version {
        ..12 => FLOATS_INTS_32_64,
        12 => MINMAX_12,
        13..20 => MINMAX_13,
        _ => MINMAX_20,
    }
}

fn numeric_dtypes(version: i64) -> &'static [DType] {
    if version >= 13 { FLOATS_BF16_INTS_32_64 } else { FLOATS_INTS_32_64 }
}

fn log_dtypes(version: i64) -> &'static [DType] {
    if version >= 28 { FLOATS_BF16 } else { numeric_dtypes(version) }
}

/// Registers the Reduce ops.
pub fn register(reg: &mut Registry) {
    reg.add("", "ReduceMax", &[1, 11, 12, 13, 18, 20], minmax_dtypes, |attrs, v| {
        Reduce::from_node(Kind::Max, attrs, v)
    });
    reg.add("", "ReduceMin", &[1, 11, 12, 13, 18, 20], minmax_dtypes, |attrs, v| {
        Reduce::from_node(Kind::Min, attrs, v)
    });
    reg.add("", "ReduceSum", &[1, 11, 13], numeric_dtypes, |attrs, v| Reduce::from_node(Kind::Sum, attrs, v));
    reg.add("", "ReduceMean", &[1, 11, 13, 18], numeric_dtypes, |attrs, v| Reduce::from_node(Kind::Mean, attrs, v));
    reg.add("", "ReduceProd", &[1, 11, 13, 18], numeric_dtypes, |attrs, v| Reduce::from_node(Kind::Prod, attrs, v));
    reg.add("", "ReduceL1", &[1, 11, 13, 18], numeric_dtypes, |attrs, v| Reduce::from_node(Kind::L1, attrs, v));
    reg.add("", "ReduceL2", &[1, 11, 13, 18], numeric_dtypes, |attrs, v| Reduce::from_node(Kind::L2, attrs, v));
    reg.add("", "ReduceSumSquare", &[1, 11, 13, 18], numeric_dtypes, |attrs, v| {
        Reduce::from_node(Kind::SumSquare, attrs, v)
    });
    reg.add("", "ReduceLogSum", &[1, 11, 13, 18, 28], log_dtypes, |attrs, v| Reduce::from_node(Kind::LogSum, attrs, v));
    reg.add("", "ReduceLogSumExp", &[1, 11, 13, 18, 28], log_dtypes, |attrs, v| {
        Reduce::from_node(Kind::LogSumExp, attrs, v)
    });
}

/// Where the axes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Axes {
    /// The `axes` attribute of older versions; `None` means every axis.
    Attribute(Option<Vec<i64>>),
    /// The optional int64 `axes` input of newer versions.
    Input,
}

/// One reduction over a set of axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduce {
    /// What is computed.
    pub kind: Kind,
    /// Where the axes come from.
    pub axes: Axes,
    /// Whether reduced axes stay as dims of size 1.
    pub keepdims: bool,
    /// With no axes given: return the input (true) or reduce all (false).
    pub noop_with_empty_axes: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Reduce {
    /// Reads `axes` (before the version that made it an input),
    /// `keepdims` and `noop_with_empty_axes` (from that version).
    ///
    /// # Errors
    /// An attribute of the wrong type.
    pub fn from_node(kind: Kind, attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let keepdims = attrs.i64("keepdims")?.unwrap_or(1) != 0;
        let (axes, noop_with_empty_axes) = if version >= kind.axes_input_since() {
            (Axes::Input, attrs.i64("noop_with_empty_axes")?.unwrap_or(0) != 0)
        } else {
            (Axes::Attribute(attrs.ints("axes")?), false)
        };
        let dtypes = match kind {
            Kind::Max | Kind::Min => minmax_dtypes(version),
            Kind::LogSum | Kind::LogSumExp => log_dtypes(version),
            _ => numeric_dtypes(version),
        };
        Ok(Reduce { kind, axes, keepdims, noop_with_empty_axes, dtypes })
    }

    /// The axes to reduce, sorted and checked, or `None` for "return the
    /// input unchanged" (empty axes with `noop_with_empty_axes`).
    fn resolve_axes(&self, given: Option<&[i64]>, rank: usize) -> Result<Option<Vec<usize>>, OpError> {
        let op = self.kind.name();
        let given = match (&self.axes, given) {
            (Axes::Attribute(Some(axes)), _) => Some(axes.as_slice()),
            (Axes::Attribute(None), _) => None,
            (Axes::Input, given) => given,
        };
        let given = given.filter(|axes| !axes.is_empty());
        let Some(given) = given else {
            return Ok(if self.noop_with_empty_axes { None } else { Some((0..rank).collect()) });
        };
        let mut axes = given.iter().map(|&axis| normalize_axis(op, axis, rank)).collect::<Result<Vec<_>, _>>()?;
        axes.sort_unstable();
        if axes.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(OpError::Invalid { op, reason: format!("axes {given:?} name an axis twice") });
        }
        Ok(Some(axes))
    }

    /// The `axes` input's values, refusing anything but 1-D (or 0-d) int64.
    fn axes_input(&self, axes: Option<&Tensor>) -> Result<Option<Vec<i64>>, OpError> {
        match axes {
            None => Ok(None),
            Some(Tensor::I64(array)) if array.ndim() <= 1 => Ok(Some(array.iter().copied().collect())),
            Some(other) => Err(OpError::Invalid {
                op: self.kind.name(),
                reason: format!("axes must be a 1-D int64 tensor, got {} {:?}", other.dtype(), other.shape()),
            }),
        }
    }
}

impl Op for Reduce {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        match self.axes {
            Axes::Attribute(_) => 1..=1,
            Axes::Input => 1..=2,
        }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let axes_input = inputs.get(1).filter(|input| input.ty.is_some() || input.value.is_some());
        let given = match (&self.axes, axes_input) {
            (Axes::Input, Some(input)) => match input.int64_values() {
                Some(values) => Some(values),
                // Axes computed at run time: only the rank may be known.
                None => {
                    let dims = ty.dims.as_ref().filter(|_| self.keepdims).map(|dims| vec![Dim::Any; dims.len()]);
                    return vec![Some(ValueType { dtype: ty.dtype, dims })];
                }
            },
            _ => None,
        };
        let Some(dims) = ty.dims.as_ref() else {
            return vec![Some(ValueType { dtype: ty.dtype, dims: None })];
        };
        let Ok(axes) = self.resolve_axes(given.as_deref(), dims.len()) else {
            return Vec::new();
        };
        let Some(axes) = axes else {
            return vec![Some(ty.clone())];
        };
        let out = dims
            .iter()
            .enumerate()
            .filter_map(|(idx, dim)| match (axes.contains(&idx), self.keepdims) {
                (false, _) => Some(dim.clone()),
                (true, true) => Some(Dim::Fixed(1)),
                (true, false) => None,
            })
            .collect();
        vec![Some(ValueType { dtype: ty.dtype, dims: Some(out) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let op = self.kind.name();
        let x = required(inputs, 0, op)?;
        check_dtype(op, x.dtype(), self.dtypes)?;
        let axes_tensor = inputs.get_mut(1).and_then(Option::take);
        let given = self.axes_input(axes_tensor.as_deref())?;
        let Some(axes) = self.resolve_axes(given.as_deref(), x.shape().len())? else {
            return Ok(x.into_owned());
        };
        let (kind, keepdims) = (self.kind, self.keepdims);
        Ok(match x.as_ref() {
            Tensor::F32(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::F64(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::F16(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::BF16(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::I8(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::I16(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::I32(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::I64(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::U8(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::U16(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::U32(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::U64(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            Tensor::Bool(a) => Tensor::from(reduce_array(kind, a, &axes, keepdims)),
            other => return Err(OpError::UnsupportedDtype { op: self.kind.name(), dtype: other.dtype() }),
        })
    }
}

/// An element type the reductions (and the LogSoftmax family) compute on:
/// floats through float64, integers and bool through i128.
pub(crate) trait Num: Element + Default {
    /// True for integers and bool.
    const INT: bool;
    /// The smallest and largest values, as i128 (integers and bool only).
    const RANGE: (i128, i128) = (0, 0);
    /// The value as float64 (exact for every float type and small ints).
    fn to_f64(self) -> f64;
    /// The nearest value (floats), or the saturating truncation (integers).
    fn from_f64(value: f64) -> Self;
    /// The value as i128 (integers and bool; floats truncate).
    fn to_i128(self) -> i128;
    /// The value wrapped to the type (integers), nonzero for bool.
    fn from_i128(value: i128) -> Self;
}

macro_rules! float_num {
    ($ty:ty, $to:expr, $from:expr) => {
        impl Num for $ty {
            const INT: bool = false;
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            fn from_f64(value: f64) -> Self {
                ($from)(value)
            }
            fn to_i128(self) -> i128 {
                self.to_f64() as i128
            }
            fn from_i128(value: i128) -> Self {
                Self::from_f64(value as f64)
            }
        }
    };
}

float_num!(f32, f64::from, |v: f64| v as f32);
float_num!(f64, |v: f64| v, |v: f64| v);
float_num!(f16, f16::to_f64, f16::from_f64);
float_num!(bf16, bf16::to_f64, bf16::from_f64);

macro_rules! int_num {
    ($($ty:ty),*) => {$(
        impl Num for $ty {
            const INT: bool = true;
            const RANGE: (i128, i128) = (<$ty>::MIN as i128, <$ty>::MAX as i128);
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(value: f64) -> Self {
                value as $ty
            }
            fn to_i128(self) -> i128 {
                self as i128
            }
            fn from_i128(value: i128) -> Self {
                value as $ty
            }
        }
    )*};
}

int_num!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Num for bool {
    const INT: bool = true;
    const RANGE: (i128, i128) = (0, 1);
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    fn from_f64(value: f64) -> Self {
        value != 0.0
    }
    fn to_i128(self) -> i128 {
        i128::from(self)
    }
    fn from_i128(value: i128) -> Self {
        value != 0
    }
}

/// Reduces `x` over `axes` (sorted, distinct, in range): the kept axes are
/// walked in order and each output element reduces its group of elements
/// in the input's logical order.
fn reduce_array<T: Num>(kind: Kind, x: &SharedArray<T>, axes: &[usize], keepdims: bool) -> ArrayD<T> {
    let shape = x.shape();
    let kept: Vec<usize> = (0..shape.len()).filter(|axis| !axes.contains(axis)).collect();
    let group: usize = axes.iter().map(|&axis| shape[axis]).product();
    let out_shape: Vec<usize> = (0..shape.len())
        .filter_map(|axis| match (axes.contains(&axis), keepdims) {
            (false, _) => Some(shape[axis]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let out_len: usize = kept.iter().map(|&axis| shape[axis]).product();
    // Reduced axes last, so each output's group is consecutive in the
    // permuted view's logical order; a contiguous input reduced over its
    // trailing axes is read in place.
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let view = x.view().permuted_axes(IxDyn(&perm));
    let data: Cow<'_, [T]> = match view.as_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(view.iter().copied().collect()),
    };
    let values: Vec<T> = if group == 0 {
        vec![reduce_group(kind, &[]); out_len]
    } else {
        data.chunks(group).map(|chunk| reduce_group(kind, chunk)).collect()
    };
    // The output has exactly `out_len` elements by construction.
    ArrayD::from_shape_vec(IxDyn(&out_shape), values).unwrap_or_else(|_| ArrayD::default(IxDyn(&out_shape)))
}

/// One output element from its group.
fn reduce_group<T: Num>(kind: Kind, values: &[T]) -> T {
    if T::INT { reduce_int(kind, values) } else { T::from_f64(reduce_f64(kind, values.iter().map(|v| v.to_f64()))) }
}

/// A float reduction, accumulated in float64 in element order.
fn reduce_f64(kind: Kind, values: impl Iterator<Item = f64> + Clone) -> f64 {
    let nan_wins = |pick: fn(f64, f64) -> bool, init: f64| {
        values.clone().fold(init, |acc, v| {
            if acc.is_nan() || v.is_nan() || pick(v, acc) { if acc.is_nan() { acc } else { v } } else { acc }
        })
    };
    match kind {
        Kind::Max => nan_wins(|v, acc| v > acc, f64::NEG_INFINITY),
        Kind::Min => nan_wins(|v, acc| v < acc, f64::INFINITY),
        Kind::Sum => values.sum(),
        Kind::Mean => {
            let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
            sum / count as f64
        }
        Kind::Prod => values.product(),
        Kind::L1 => values.map(f64::abs).sum(),
        Kind::L2 => values.map(|v| v * v).sum::<f64>().sqrt(),
        Kind::SumSquare => values.map(|v| v * v).sum(),
        Kind::LogSum => values.sum::<f64>().ln(),
        Kind::LogSumExp => {
            // Shifted by the max so that 1e4-sized inputs do not overflow;
            // an infinite max (or none) is the answer itself.
            let max = nan_wins(|v, acc| v > acc, f64::NEG_INFINITY);
            if !max.is_finite() {
                return max;
            }
            max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
        }
    }
}

/// An integer (or bool) reduction in i128, wrapped to the type.
fn reduce_int<T: Num>(kind: Kind, values: &[T]) -> T {
    let ints = values.iter().map(|v| v.to_i128());
    let wrapping_sum = |f: fn(i128) -> i128| ints.clone().fold(0i128, |acc, v| acc.wrapping_add(f(v)));
    match kind {
        Kind::Max => T::from_i128(ints.max().unwrap_or(T::RANGE.0)),
        Kind::Min => T::from_i128(ints.min().unwrap_or(T::RANGE.1)),
        Kind::Sum => T::from_i128(wrapping_sum(|v| v)),
        // No NaN for an empty integer mean: 0.
        Kind::Mean => T::from_i128(wrapping_sum(|v| v).checked_div(values.len() as i128).unwrap_or(0)),
        Kind::Prod => T::from_i128(ints.fold(1i128, i128::wrapping_mul)),
        Kind::L1 => T::from_i128(wrapping_sum(i128::wrapping_abs)),
        Kind::SumSquare => T::from_i128(wrapping_sum(|v| v.wrapping_mul(v))),
        Kind::L2 | Kind::LogSum | Kind::LogSumExp => T::from_f64(reduce_f64(kind, values.iter().map(|v| v.to_f64()))),
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn op(kind: Kind, version: i64, axes: Option<Vec<i64>>, keepdims: bool, noop: bool) -> Reduce {
        let input = version >= kind.axes_input_since();
        let dtypes = match kind {
            Kind::Max | Kind::Min => minmax_dtypes(version),
            Kind::LogSum | Kind::LogSumExp => log_dtypes(version),
            _ => numeric_dtypes(version),
        };
        Reduce {
            kind,
            axes: if input { Axes::Input } else { Axes::Attribute(axes) },
            keepdims,
            noop_with_empty_axes: noop,
            dtypes,
        }
    }

    fn run(op: &Reduce, x: &Tensor, axes: Option<Vec<i64>>) -> Result<Tensor, OpError> {
        let par = Parallel::global();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let axes = axes.map(|axes| Tensor::from(ArrayD::from_shape_vec(IxDyn(&[axes.len()]), axes).unwrap()));
        let out = op.run(&mut [Some(Cow::Borrowed(x)), axes.map(Cow::Owned)], &ctx);
        if let Ok(out) = &out {
            // Inference from constant axes agrees with the run.
            let ty = ValueType::of(x);
            let inferred = op.infer(&[InferInput { ty: Some(&ty), value: None }], 1);
            if matches!(op.axes, Axes::Attribute(_)) {
                assert_eq!(inferred[0], Some(ValueType::of(out)));
            }
        }
        out
    }

    /// float64 reference over a 3-D `[2, 3, 4]` sample, written directly.
    fn sample() -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| ((i[0] * 12 + i[1] * 4 + i[2]) * 7 % 11) as f64 - 4.5)
    }

    fn reference(kind: Kind, x: &ArrayD<f64>, axes: &[usize]) -> Vec<f64> {
        // Output indices in order; each sums over the reduced multi-index.
        let shape = x.shape().to_vec();
        let mut out = Vec::new();
        let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let out_len: usize = kept.iter().map(|&a| shape[a]).product();
        for o in 0..out_len {
            let mut group = Vec::new();
            for (idx, &v) in x.indexed_iter() {
                let mut rem = o;
                let mut ok = true;
                for &a in kept.iter().rev() {
                    if idx[a] != rem % shape[a] {
                        ok = false;
                    }
                    rem /= shape[a];
                }
                if ok {
                    group.push(v);
                }
            }
            let n = group.len() as f64;
            out.push(match kind {
                Kind::Max => group.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                Kind::Min => group.iter().copied().fold(f64::INFINITY, f64::min),
                Kind::Sum => group.iter().sum(),
                Kind::Mean => group.iter().sum::<f64>() / n,
                Kind::Prod => group.iter().product(),
                Kind::L1 => group.iter().map(|v| v.abs()).sum(),
                Kind::L2 => group.iter().map(|v| v * v).sum::<f64>().sqrt(),
                Kind::SumSquare => group.iter().map(|v| v * v).sum(),
                Kind::LogSum => group.iter().sum::<f64>().ln(),
                Kind::LogSumExp => group.iter().map(|v| v.exp()).sum::<f64>().ln(),
            });
        }
        out
    }

    const KINDS: [Kind; 10] = [
        Kind::Max,
        Kind::Min,
        Kind::Sum,
        Kind::Mean,
        Kind::Prod,
        Kind::L1,
        Kind::L2,
        Kind::SumSquare,
        Kind::LogSum,
        Kind::LogSumExp,
    ];

    fn close(got: &[f64], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-6 * w.abs().max(1.0);
            assert!(ok, "{what}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn every_kind_axes_and_keepdims_match_float64() {
        let x64 = sample();
        let x32 = Tensor::from(x64.mapv(|v| v as f32));
        struct Case {
            axes: Vec<i64>,
            resolved: Vec<usize>,
        }
        let cases = [
            Case { axes: vec![0], resolved: vec![0] },
            Case { axes: vec![-1], resolved: vec![2] },
            Case { axes: vec![2, 0], resolved: vec![0, 2] },
            Case { axes: vec![-2, 2], resolved: vec![1, 2] },
            Case { axes: vec![0, 1, 2], resolved: vec![0, 1, 2] },
        ];
        for kind in KINDS {
            for case in &cases {
                for keepdims in [true, false] {
                    let want = reference(kind, &x64, &case.resolved);
                    let attr = run(&op(kind, 11, Some(case.axes.clone()), keepdims, false), &x32, None).unwrap();
                    let input = run(&op(kind, 18, None, keepdims, false), &x32, Some(case.axes.clone())).unwrap();
                    let mut shape = vec![2, 3, 4];
                    for &a in case.resolved.iter().rev() {
                        if keepdims {
                            shape[a] = 1;
                        } else {
                            shape.remove(a);
                        }
                    }
                    let what = format!("{kind:?} {:?} keepdims {keepdims}", case.axes);
                    assert_eq!(attr.shape(), shape, "{what}");
                    assert_eq!(attr.to_le_bytes(), input.to_le_bytes(), "{what}: attribute and input agree");
                    let want32: Vec<f64> = want.iter().map(|&v| f64::from(v as f32)).collect();
                    close(&attr.to_f64_vec(), &want32, &what);
                }
            }
        }
    }

    #[test]
    fn empty_axes_reduce_all_or_pass_through() {
        let x = Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn());
        for axes in [None, Some(vec![])] {
            let all = run(&op(Kind::Sum, 13, None, true, false), &x, axes.clone()).unwrap();
            assert_eq!(all, Tensor::from(array![[10.0f32]].into_dyn()));
            let flat = run(&op(Kind::Mean, 18, None, false, false), &x, axes.clone()).unwrap();
            assert_eq!(flat, Tensor::from(ndarray::arr0(2.5f32).into_dyn()));
            let same = run(&op(Kind::Sum, 13, None, true, true), &x, axes).unwrap();
            assert_eq!(same, x);
        }
        // Older versions: no axes attribute means every axis.
        let old = run(&op(Kind::Max, 1, None, false, false), &x, None).unwrap();
        assert_eq!(old, Tensor::from(ndarray::arr0(4.0f32).into_dyn()));
    }

    #[test]
    fn empty_groups_give_the_identity() {
        let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 0])));
        struct Case {
            kind: Kind,
            want: f64,
        }
        let cases = [
            Case { kind: Kind::Sum, want: 0.0 },
            Case { kind: Kind::Prod, want: 1.0 },
            Case { kind: Kind::Max, want: f64::NEG_INFINITY },
            Case { kind: Kind::Min, want: f64::INFINITY },
            Case { kind: Kind::L1, want: 0.0 },
            Case { kind: Kind::L2, want: 0.0 },
            Case { kind: Kind::SumSquare, want: 0.0 },
            Case { kind: Kind::LogSum, want: f64::NEG_INFINITY },
            Case { kind: Kind::LogSumExp, want: f64::NEG_INFINITY },
            Case { kind: Kind::Mean, want: f64::NAN },
        ];
        for case in cases {
            let got = run(&op(case.kind, 18, None, true, false), &x, Some(vec![1])).unwrap();
            assert_eq!(got.shape(), [2, 1]);
            close(&got.to_f64_vec(), &[case.want, case.want], &format!("{:?}", case.kind));
        }
        // Empty kept axis: an empty output.
        let got = run(&op(Kind::Sum, 13, None, false, false), &x, Some(vec![1])).unwrap();
        assert_eq!(got.shape(), [2]);
        let got = run(&op(Kind::Sum, 13, None, true, false), &x, Some(vec![0])).unwrap();
        assert_eq!(got.shape(), [1, 0]);
        let ints = Tensor::from(ArrayD::<i32>::zeros(IxDyn(&[0])));
        assert_eq!(
            run(&op(Kind::Max, 20, None, false, false), &ints, None).unwrap().to_f64_vec(),
            [f64::from(i32::MIN)]
        );
        assert_eq!(
            run(&op(Kind::Min, 20, None, false, false), &ints, None).unwrap().to_f64_vec(),
            [f64::from(i32::MAX)]
        );
        assert_eq!(run(&op(Kind::Mean, 18, None, false, false), &ints, None).unwrap().to_f64_vec(), [0.0]);
        let bools = Tensor::from(ArrayD::<bool>::default(IxDyn(&[0])));
        assert_eq!(run(&op(Kind::Max, 20, None, false, false), &bools, None).unwrap().to_f64_vec(), [0.0]);
        assert_eq!(run(&op(Kind::Min, 20, None, false, false), &bools, None).unwrap().to_f64_vec(), [1.0]);
    }

    #[test]
    fn nan_wins_in_max_and_min() {
        let nan = f32::NAN;
        let x = Tensor::from(array![[1.0f32, nan, 3.0], [nan, -1.0, 0.0], [2.0, 5.0, -7.0]].into_dyn());
        let max = run(&op(Kind::Max, 18, None, false, false), &x, Some(vec![1])).unwrap().to_f64_vec();
        let min = run(&op(Kind::Min, 18, None, false, false), &x, Some(vec![1])).unwrap().to_f64_vec();
        assert!(max[0].is_nan() && max[1].is_nan() && max[2] == 5.0, "{max:?}");
        assert!(min[0].is_nan() && min[1].is_nan() && min[2] == -7.0, "{min:?}");
    }

    #[test]
    fn integers_and_bool() {
        let x = Tensor::from(array![[1i64, -2, 3], [i64::MAX, 1, -7]].into_dyn());
        struct Case {
            kind: Kind,
            want: Vec<i64>,
        }
        let cases = [
            Case { kind: Kind::Sum, want: vec![2, i64::MAX - 6] },
            Case { kind: Kind::Max, want: vec![3, i64::MAX] },
            Case { kind: Kind::Min, want: vec![-2, -7] },
            Case { kind: Kind::Mean, want: vec![0, (i128::from(i64::MAX) - 6).div_euclid(3) as i64] },
            Case { kind: Kind::L1, want: vec![6, i64::MAX.wrapping_add(8)] },
            Case { kind: Kind::Prod, want: vec![-6, i64::MAX.wrapping_mul(-7)] },
        ];
        for case in cases {
            let got = run(&op(case.kind, 18, None, false, false), &x, Some(vec![-1])).unwrap();
            let Tensor::I64(got) = got else { panic!("int64 out") };
            assert_eq!(got.iter().copied().collect::<Vec<_>>(), case.want, "{:?}", case.kind);
        }
        let u = Tensor::from(array![3u8, 250, 7].into_dyn());
        assert_eq!(run(&op(Kind::Max, 12, None, false, false), &u, None).unwrap().to_f64_vec(), [250.0]);
        let l2 = Tensor::from(array![3i32, 4].into_dyn());
        assert_eq!(run(&op(Kind::L2, 13, None, false, false), &l2, None).unwrap().to_f64_vec(), [5.0]);
        let b = Tensor::from(array![[true, false], [false, false]].into_dyn());
        let any = run(&op(Kind::Max, 20, None, false, false), &b, Some(vec![1])).unwrap();
        assert_eq!(any, Tensor::from(array![true, false].into_dyn()));
        let all = run(&op(Kind::Min, 20, None, false, false), &b, Some(vec![0])).unwrap();
        assert_eq!(all, Tensor::from(array![false, false].into_dyn()));
    }

    #[test]
    fn half_types_round_once_and_integer_mean_truncates() {
        // Ten float16 0.1s: summed in float64 and rounded once, not ten times.
        let tenth = half::f16::from_f32(0.1);
        let x = Tensor::from(ArrayD::from_elem(IxDyn(&[10]), tenth));
        let Tensor::F16(got) = run(&op(Kind::Sum, 13, None, false, false), &x, None).unwrap() else {
            panic!("float16 out")
        };
        assert_eq!(got.iter().copied().collect::<Vec<_>>(), [half::f16::from_f64(10.0 * tenth.to_f64())]);
        let b = Tensor::from(array![half::bf16::from_f32(3.0), half::bf16::from_f32(4.0)].into_dyn());
        let Tensor::BF16(got) = run(&op(Kind::L2, 18, None, false, false), &b, None).unwrap() else {
            panic!("bfloat16 out")
        };
        assert_eq!(got.iter().copied().collect::<Vec<_>>(), [half::bf16::from_f32(5.0)]);
        // numpy's mean(...).astype(int) truncates toward zero: -7 / 2 = -3.
        let ints = Tensor::from(array![-7i32, 0].into_dyn());
        assert_eq!(run(&op(Kind::Mean, 18, None, false, false), &ints, None).unwrap().to_f64_vec(), [-3.0]);
    }

    #[test]
    fn version_dtypes() {
        let b = Tensor::from(array![true].into_dyn());
        let bf = Tensor::from(array![half::bf16::ONE].into_dyn());
        let i8s = Tensor::from(array![1i8].into_dyn());
        let unsupported = |kind: Kind, dtype| Err(OpError::UnsupportedDtype { op: kind.name(), dtype });
        assert_eq!(run(&op(Kind::Max, 18, None, true, false), &b, None), unsupported(Kind::Max, DType::Bool));
        assert_eq!(run(&op(Kind::Max, 11, None, true, false), &i8s, None), unsupported(Kind::Max, DType::I8));
        assert_eq!(run(&op(Kind::Sum, 11, None, true, false), &bf, None), unsupported(Kind::Sum, DType::BF16));
        assert_eq!(run(&op(Kind::Sum, 13, None, true, false), &i8s, None), unsupported(Kind::Sum, DType::I8));
        let ints = Tensor::from(array![1i32].into_dyn());
        assert_eq!(
            run(&op(Kind::LogSumExp, 28, None, true, false), &ints, None),
            unsupported(Kind::LogSumExp, DType::I32)
        );
        assert_eq!(run(&op(Kind::Sum, 13, None, true, false), &bf, None).unwrap(), bf);
    }

    #[test]
    fn bad_axes_are_errors_naming_the_op() {
        let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 3])));
        for axes in [vec![2i64], vec![-3], vec![i64::MIN], vec![i64::MAX]] {
            assert_eq!(
                run(&op(Kind::Mean, 18, None, true, false), &x, Some(axes.clone())),
                Err(OpError::AxisOutOfRange { op: "ReduceMean", axis: axes[0], rank: 2 })
            );
        }
        assert!(matches!(
            run(&op(Kind::L2, 18, None, true, false), &x, Some(vec![1, -1])),
            Err(OpError::Invalid { op: "ReduceL2", .. })
        ));
        assert!(matches!(
            run(&op(Kind::Max, 1, Some(vec![0, 0]), true, false), &x, None),
            Err(OpError::Invalid { op: "ReduceMax", .. })
        ));
        let par = Parallel::global();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let float_axes = Tensor::from(array![1.0f32].into_dyn());
        assert!(matches!(
            op(Kind::Sum, 13, None, true, false)
                .run(&mut [Some(Cow::Borrowed(&x)), Some(Cow::Owned(float_axes))], &ctx),
            Err(OpError::Invalid { op: "ReduceSum", .. })
        ));
    }

    #[test]
    fn float32_sums_accumulate_in_float64_and_log_sum_exp_does_not_overflow() {
        // 1 + 2^-24 * n in f32 would stall at 1; in f64 the small terms add up.
        let mut values = vec![1.0f32];
        values.extend(std::iter::repeat_n(2f32.powi(-24), 1 << 16));
        let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[values.len()]), values).unwrap());
        let sum = run(&op(Kind::Sum, 13, None, false, false), &x, None).unwrap().to_f64_vec();
        assert_eq!(sum, [1.0 + 2f64.powi(-8)]);
        let big = Tensor::from(array![1e4f32, 1e4].into_dyn());
        let lse = run(&op(Kind::LogSumExp, 18, None, false, false), &big, None).unwrap().to_f64_vec();
        assert_eq!(lse, [f64::from((1e4 + 2f64.ln()) as f32)]);
        let infs = Tensor::from(array![f32::NEG_INFINITY, f32::NEG_INFINITY].into_dyn());
        let lse = run(&op(Kind::LogSumExp, 18, None, false, false), &infs, None).unwrap().to_f64_vec();
        assert_eq!(lse, [f64::NEG_INFINITY]);
    }

    #[test]
    fn inference_with_constant_and_unknown_axes() {
        let ty = ValueType::fixed(DType::F32, &[2, 3, 4]);
        let axes = Tensor::from(array![-1i64, 0].into_dyn());
        let reduce = op(Kind::Sum, 13, None, false, false);
        let out =
            reduce.infer(&[InferInput { ty: Some(&ty), value: None }, InferInput { ty: None, value: Some(&axes) }], 1);
        assert_eq!(out, [Some(ValueType::fixed(DType::F32, &[3]))]);
        let axes_ty = ValueType::fixed(DType::I64, &[2]);
        let keep = op(Kind::Sum, 13, None, true, false);
        let out =
            keep.infer(&[InferInput { ty: Some(&ty), value: None }, InferInput { ty: Some(&axes_ty), value: None }], 1);
        assert_eq!(out, [Some(ValueType { dtype: DType::F32, dims: Some(vec![Dim::Any; 3]) })]);
        let out = reduce
            .infer(&[InferInput { ty: Some(&ty), value: None }, InferInput { ty: Some(&axes_ty), value: None }], 1);
        assert_eq!(out, [Some(ValueType { dtype: DType::F32, dims: None })]);
    }
}
