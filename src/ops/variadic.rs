//! Variadic elementwise ops: Min, Max, Sum, Mean over 1..N inputs; and
//! Clip (X bounded by optional min/max), the same min/max family.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Min.html>
//! - <https://onnx.ai/onnx/operators/onnx__Max.html>
//! - <https://onnx.ai/onnx/operators/onnx__Sum.html>
//! - <https://onnx.ai/onnx/operators/onnx__Mean.html>
//! - <https://onnx.ai/onnx/operators/onnx__Clip.html> (see [`Clip`])
//!
//! Versions and types (`onnx.defs.get_schema`, onnx 1.23.2):
//!
//! | opset | change |
//! |-------|--------|
//! | 1     | float16/32/64; `consumed_inputs` (an in-place hint, no effect); shapes must be equal |
//! | 6     | `consumed_inputs` dropped |
//! | 8     | numpy (multidirectional) broadcasting of all inputs |
//! | 12    | Min and Max add int8..64, uint8..64 |
//! | 13    | adds bfloat16 |
//!
//! Min and Max propagate NaN (numpy's `minimum`/`maximum`, PyTorch's
//! `min`/`max`): a NaN in any input gives NaN there. Sum adds in input
//! order and Mean divides that sum by the input count, each step rounded
//! to the element type (float16/bfloat16 through float32, as Add does).

use super::{FLOATS, FLOATS_BF16, NUMBERS, NUMBERS_BF16};
use std::borrow::Cow;

use half::{bf16, f16};
use ndarray::{ArrayD, Zip};

use super::{ExecCtx, Inputs, Op, Registry, check_dtype};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, broadcast_dims};
use crate::kernels::broadcast::{self, Arithmetic, BroadcastError};
use crate::tensor::{DType, Element, Item, Tensor};

/// Registers Min, Max, Sum, Mean and Clip.
pub fn register(reg: &mut Registry) {
    reg.add("", "Min", &[1, 6, 8, 12, 13], min_max_dtypes, |attrs, version| {
        Variadic::from_node(Kind::Min, attrs, version)
    });
    reg.add("", "Max", &[1, 6, 8, 12, 13], min_max_dtypes, |attrs, version| {
        Variadic::from_node(Kind::Max, attrs, version)
    });
    reg.add("", "Sum", &[1, 6, 8, 13], float_dtypes, |attrs, version| Variadic::from_node(Kind::Sum, attrs, version));
    reg.add("", "Mean", &[1, 6, 8, 13], float_dtypes, |attrs, version| Variadic::from_node(Kind::Mean, attrs, version));
    reg.add("", "Clip", &[1, 6, 11, 12, 13], clip_dtypes, Clip::from_node);
}

fn min_max_dtypes(version: i64) -> &'static [DType] {
    match version {
        13.. => NUMBERS_BF16,
        12 => NUMBERS,
        _ => FLOATS,
    }
}

fn float_dtypes(version: i64) -> &'static [DType] {
    if version >= 13 { FLOATS_BF16 } else { FLOATS }
}

/// Which variadic op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Elementwise minimum, NaN propagating.
    Min,
    /// Elementwise maximum, NaN propagating.
    Max,
    /// Elementwise sum.
    Sum,
    /// Elementwise mean.
    Mean,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Min => "Min",
            Kind::Max => "Max",
            Kind::Sum => "Sum",
            Kind::Mean => "Mean",
        }
    }
}

/// Min, Max, Sum or Mean as a configured node.
#[derive(Debug)]
pub struct Variadic {
    /// Which op.
    pub kind: Kind,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
    /// Numpy broadcasting (opset 8 on); before, shapes must be equal.
    pub broadcast: bool,
}

/// A number the variadic ops can combine; `from_count` gives Mean's divisor.
trait Number: Element + Default + Arithmetic + PartialOrd {
    fn from_count(n: usize) -> Self;
}

macro_rules! number {
    ($($ty:ty => $conv:expr),* $(,)?) => {$(
        impl Number for $ty {
            fn from_count(n: usize) -> Self {
                let conv: fn(usize) -> $ty = $conv;
                conv(n)
            }
        }
    )*};
}

// Only floats reach Mean; the integer conversions exist for the bound.
number!(
    f32 => |n| n as f32,
    f64 => |n| n as f64,
    f16 => |n| f16::from_f64(n as f64),
    bf16 => |n| bf16::from_f64(n as f64),
    i8 => |n| n as i8,
    i16 => |n| n as i16,
    i32 => |n| n as i32,
    i64 => |n| n as i64,
    u8 => |n| n as u8,
    u16 => |n| n as u16,
    u32 => |n| n as u32,
    u64 => |n| n as u64,
);

/// `a` if it is NaN (unequal to itself), else `b` if NaN, else the pick:
/// NaN propagates whichever side it is on.
#[inline]
fn nan_or<T: PartialOrd + Copy>(a: T, b: T, pick_b: bool) -> T {
    #[allow(clippy::eq_op)]
    if a != a {
        a
    } else if b != b || pick_b {
        b
    } else {
        a
    }
}

impl Variadic {
    /// Reads `consumed_inputs` at opset 1.
    ///
    /// # Errors
    /// A wrongly typed attribute.
    pub fn from_node(kind: Kind, attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 6 {
            attrs.ints("consumed_inputs")?;
        }
        let dtypes = match kind {
            Kind::Min | Kind::Max => min_max_dtypes(version),
            Kind::Sum | Kind::Mean => float_dtypes(version),
        };
        Ok(Variadic { kind, dtypes, broadcast: version >= 8 })
    }

    fn typed<T: Number>(&self, inputs: &[Cow<'_, Tensor>]) -> Result<Tensor, OpError> {
        let op = self.kind.name();
        let views = inputs
            .iter()
            .map(|t| T::view(t).ok_or(OpError::UnsupportedDtype { op, dtype: t.dtype() }))
            .collect::<Result<Vec<_>, _>>()?;
        let shapes: Vec<&[usize]> = views.iter().map(|v| v.shape()).collect();
        let shape = if self.broadcast {
            broadcast::multidirectional(&shapes)
                .map_err(|err| OpError::Invalid { op, reason: format!("cannot broadcast {shapes:?}: {err}") })?
        } else if shapes.iter().all(|s| *s == shapes[0]) {
            shapes[0].to_vec()
        } else {
            return Err(OpError::Invalid {
                op,
                reason: format!("inputs of shapes {shapes:?} must have equal shapes before opset 8"),
            });
        };
        let too_large = || OpError::Invalid { op, reason: BroadcastError::TooLarge.to_string() };
        broadcast::checked_len(&shape).map_err(|_| too_large())?;
        let mut out: ArrayD<T> = views[0].broadcast(shape.clone()).ok_or_else(too_large)?.to_owned();
        for view in &views[1..] {
            let view = view.broadcast(shape.clone()).ok_or_else(too_large)?;
            let kind = self.kind;
            Zip::from(&mut out).and(&view).for_each(|acc, &x| {
                *acc = match kind {
                    Kind::Min => nan_or(*acc, x, x < *acc),
                    Kind::Max => nan_or(*acc, x, x > *acc),
                    Kind::Sum | Kind::Mean => acc.add(x),
                }
            });
        }
        if self.kind == Kind::Mean {
            let n = T::from_count(views.len());
            out.mapv_inplace(|x| x.div(n));
        }
        Ok(T::wrap(out))
    }
}

impl Op for Variadic {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=usize::MAX
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let tys: Option<Vec<&ValueType>> = inputs.iter().map(|input| input.ty).collect();
        let Some(tys) = tys.filter(|tys| !tys.is_empty()) else {
            return Vec::new();
        };
        let dims = if self.broadcast {
            broadcast_dims(&tys.iter().map(|ty| ty.dims.as_deref()).collect::<Vec<_>>())
        } else {
            tys[0].dims.clone()
        };
        vec![Some(ValueType { dtype: tys[0].dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let op = self.kind.name();
        let taken: Vec<Cow<'_, Tensor>> = inputs
            .iter_mut()
            .enumerate()
            .map(|(index, input)| input.take().ok_or(OpError::MissingInput { op, index }))
            .collect::<Result<_, _>>()?;
        let Some(first) = taken.first() else {
            return Err(OpError::MissingInput { op, index: 0 });
        };
        let dtype = first.dtype();
        if let Some(other) = taken.iter().find(|t| t.dtype() != dtype) {
            return Err(OpError::Invalid {
                op,
                reason: format!("inputs are {dtype} and {}; all must have the same type", other.dtype()),
            });
        }
        check_dtype(op, dtype, self.dtypes)?;
        match dtype {
            DType::F32 => self.typed::<f32>(&taken),
            DType::F64 => self.typed::<f64>(&taken),
            DType::F16 => self.typed::<f16>(&taken),
            DType::BF16 => self.typed::<bf16>(&taken),
            DType::I8 => self.typed::<i8>(&taken),
            DType::I16 => self.typed::<i16>(&taken),
            DType::I32 => self.typed::<i32>(&taken),
            DType::I64 => self.typed::<i64>(&taken),
            DType::U8 => self.typed::<u8>(&taken),
            DType::U16 => self.typed::<u16>(&taken),
            DType::U32 => self.typed::<u32>(&taken),
            DType::U64 => self.typed::<u64>(&taken),
            DType::Bool | crate::storage_only!() => Err(OpError::UnsupportedDtype { op, dtype }),
        }
    }
}

/// Clip's types at a version.
fn clip_dtypes(version: i64) -> &'static [DType] {
    match version {
        13.. => NUMBERS_BF16,
        12 => NUMBERS,
        _ => FLOATS,
    }
}

/// Clip: `min(max(X, lo), hi)` elementwise.
/// <https://onnx.ai/onnx/operators/onnx__Clip.html>
///
/// Versions 1 (`consumed_inputs`) and 6 take `min`/`max` as float
/// attributes; 11 takes them as optional scalar inputs of X's type (an
/// empty input name omits one), 12 adds the integer types, 13 bfloat16.
/// An omitted attribute at opset 6 is the schema's default, ±f32::MAX
/// (±inf is clipped to it); at opset 1 it does not clip. An omitted input
/// bound from 11 on does not clip (the spec's default is the type's
/// lowest/highest value, which differs only for infinite X: it is kept,
/// as ONNX Runtime keeps it).
/// With lo > hi every element becomes hi (numpy's `clip`), and NaN in X
/// stays NaN (both comparisons are false).
#[derive(Debug)]
pub struct Clip {
    dtypes: &'static [DType],
    /// The attribute bounds before opset 11 (`None` at 11 and later, or
    /// when the attribute is absent).
    attr_bounds: (Option<f32>, Option<f32>),
}

impl Clip {
    /// Reads `min`/`max` (and `consumed_inputs`) before opset 11.
    ///
    /// # Errors
    /// A wrongly typed attribute.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 6 {
            attrs.ints("consumed_inputs")?;
        }
        let attr_bounds = match version {
            ..6 => (attrs.f32("min")?, attrs.f32("max")?),
            // Clip-6's schema gives the attributes defaults: ±f32::MAX
            // (so ±inf is clipped to ±f32::MAX).
            6..11 => (Some(attrs.f32("min")?.unwrap_or(-f32::MAX)), Some(attrs.f32("max")?.unwrap_or(f32::MAX))),
            _ => (None, None),
        };
        Ok(Clip { dtypes: clip_dtypes(version), attr_bounds })
    }

    fn typed<T: Element + PartialOrd>(x: &Tensor, lo: Option<&Tensor>, hi: Option<&Tensor>) -> Result<Tensor, OpError> {
        let wrong = |t: &Tensor| OpError::UnsupportedDtype { op: "Clip", dtype: t.dtype() };
        let scalar = |t: Option<&Tensor>, which: &str| -> Result<Option<T>, OpError> {
            let Some(t) = t else { return Ok(None) };
            let view = T::view(t).ok_or_else(|| wrong(t))?;
            if view.len() != 1 {
                return Err(OpError::Invalid {
                    op: "Clip",
                    reason: format!("{which} must be a single value, got shape {:?}", view.shape()),
                });
            }
            Ok(view.iter().next().copied())
        };
        let (lo, hi) = (scalar(lo, "min")?, scalar(hi, "max")?);
        let xv = T::view(x).ok_or_else(|| wrong(x))?;
        Ok(T::wrap(xv.mapv(|v| {
            let v = match lo {
                Some(lo) if v < lo => lo,
                _ => v,
            };
            match hi {
                Some(hi) if v > hi => hi,
                _ => v,
            }
        })))
    }
}

impl Op for Clip {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![inputs.first().and_then(|input| input.ty).cloned()]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = super::required(inputs, 0, "Clip")?;
        check_dtype("Clip", x.dtype(), self.dtypes)?;
        let dtype = x.dtype();
        // The attribute bounds (before 11) become one-element tensors of
        // X's type through Cast's conversion, so both forms share one path.
        let from_attr =
            |v: Option<f32>| v.map(|v| super::cast::cast(&f32::wrap(ndarray::arr0(v).into_dyn()), dtype)).transpose();
        let mut bound = |index: usize, attr: Option<f32>| -> Result<Option<Tensor>, OpError> {
            match inputs.get_mut(index).and_then(Option::take) {
                Some(t) if t.dtype() != dtype => Err(OpError::Invalid {
                    op: "Clip",
                    reason: format!("X is {dtype} but input {index} is {}; both must have the same type", t.dtype()),
                }),
                Some(t) => Ok(Some(t.into_owned())),
                None => from_attr(attr),
            }
        };
        let lo = bound(1, self.attr_bounds.0)?;
        let hi = bound(2, self.attr_bounds.1)?;
        let (lo, hi) = (lo.as_ref(), hi.as_ref());
        match dtype {
            DType::F32 => Self::typed::<f32>(&x, lo, hi),
            DType::F64 => Self::typed::<f64>(&x, lo, hi),
            DType::F16 => Self::typed::<f16>(&x, lo, hi),
            DType::BF16 => Self::typed::<bf16>(&x, lo, hi),
            DType::I8 => Self::typed::<i8>(&x, lo, hi),
            DType::I16 => Self::typed::<i16>(&x, lo, hi),
            DType::I32 => Self::typed::<i32>(&x, lo, hi),
            DType::I64 => Self::typed::<i64>(&x, lo, hi),
            DType::U8 => Self::typed::<u8>(&x, lo, hi),
            DType::U16 => Self::typed::<u16>(&x, lo, hi),
            DType::U32 => Self::typed::<u32>(&x, lo, hi),
            DType::U64 => Self::typed::<u64>(&x, lo, hi),
            DType::Bool | crate::storage_only!() => Err(OpError::UnsupportedDtype { op: "Clip", dtype }),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::IxDyn;

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &Variadic, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        op.run(&mut inputs, &ctx)
    }

    fn f(shape: &[usize], values: &[f64]) -> Tensor {
        f64::wrap(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap())
    }

    fn values(t: &Tensor) -> (Vec<usize>, Vec<f64>) {
        let v = f64::view(t).unwrap();
        (v.shape().to_vec(), v.iter().copied().collect())
    }

    fn op(kind: Kind, version: i64) -> Variadic {
        let dtypes = match kind {
            Kind::Min | Kind::Max => min_max_dtypes(version),
            Kind::Sum | Kind::Mean => float_dtypes(version),
        };
        Variadic { kind, dtypes, broadcast: version >= 8 }
    }

    /// Three inputs [2, 1], [3] and [] broadcast to [2, 3]; each result
    /// against the elementwise reference written out with f64::min etc.
    #[test]
    fn three_inputs_broadcast_against_the_reference() {
        let a = [1.0, -4.0];
        let b = [0.5, 2.0, -8.0];
        let c = 1.5;
        let inputs = || vec![f(&[2, 1], &a), f(&[3], &b), f(&[], &[c])];
        let each = |g: fn(f64, f64, f64) -> f64| -> Vec<f64> {
            a.iter().flat_map(|&x| b.iter().map(move |&y| g(x, y, c))).collect()
        };
        type Reference = fn(f64, f64, f64) -> f64;
        let cases: [(Kind, Reference); 4] = [
            (Kind::Min, |x, y, z| x.min(y).min(z)),
            (Kind::Max, |x, y, z| x.max(y).max(z)),
            (Kind::Sum, |x, y, z| x + y + z),
            (Kind::Mean, |x, y, z| (x + y + z) / 3.0),
        ];
        for (kind, reference) in cases {
            assert_eq!(values(&run(&op(kind, 13), inputs()).unwrap()), (vec![2, 3], each(reference)), "{kind:?}");
        }
        // One input is the identity (Mean divides by 1).
        assert_eq!(values(&run(&op(Kind::Mean, 13), vec![f(&[2], &[3.0, -1.0])]).unwrap()).1, [3.0, -1.0]);
    }

    #[test]
    fn min_and_max_propagate_nan_from_either_side() {
        let nan = f64::NAN;
        for kind in [Kind::Min, Kind::Max] {
            let out = run(&op(kind, 13), vec![f(&[3], &[nan, 1.0, 2.0]), f(&[3], &[1.0, nan, 3.0])]).unwrap();
            let got = values(&out).1;
            assert!(got[0].is_nan() && got[1].is_nan(), "{kind:?}: {got:?}");
            assert_eq!(got[2], if kind == Kind::Min { 2.0 } else { 3.0 });
        }
    }

    #[test]
    fn integers_empty_tensors_and_versions() {
        let i = |v: &[i32]| i32::wrap(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap());
        let out = run(&op(Kind::Max, 12), vec![i(&[i32::MIN, 5]), i(&[0, i32::MAX])]).unwrap();
        assert_eq!(i32::view(&out).unwrap().iter().copied().collect::<Vec<_>>(), [0, i32::MAX]);
        // Integers arrive at 12 for Min/Max, never for Sum/Mean.
        assert!(run(&op(Kind::Min, 8), vec![i(&[1])]).unwrap_err().to_string().contains("Min"));
        assert!(run(&op(Kind::Sum, 13), vec![i(&[1])]).unwrap_err().to_string().contains("Sum"));
        let out = run(&op(Kind::Sum, 13), vec![f(&[0, 2], &[]), f(&[2], &[1.0, 2.0])]).unwrap();
        assert_eq!(values(&out), (vec![0, 2], vec![]));
    }

    #[test]
    fn errors_name_the_op() {
        // Before 8, shapes must be equal.
        let err = run(&op(Kind::Sum, 6), vec![f(&[2], &[1.0, 2.0]), f(&[1], &[1.0])]).unwrap_err();
        assert!(err.to_string().contains("Sum") && err.to_string().contains("opset 8"), "{err}");
        let err = run(&op(Kind::Mean, 13), vec![f(&[2], &[1.0, 2.0]), f(&[3], &[0.0; 3])]).unwrap_err();
        assert!(err.to_string().contains("Mean"), "{err}");
        let g = f32::wrap(ArrayD::from_shape_vec(IxDyn(&[1]), vec![1.0]).unwrap());
        let err = run(&op(Kind::Max, 13), vec![f(&[1], &[1.0]), g]).unwrap_err();
        assert!(err.to_string().contains("Max") && err.to_string().contains("same type"), "{err}");
        let err = run(&op(Kind::Min, 13), vec![]).unwrap_err();
        assert!(err.to_string().contains("Min"), "{err}");
    }

    fn clip(op: &Clip, inputs: Vec<Option<Tensor>>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| t.map(Cow::Owned)).collect();
        op.run(&mut inputs, &ctx)
    }

    /// Clip with input bounds (11+), omitted bounds, attribute bounds
    /// (6), lo > hi, NaN and integers, against numpy's clip by hand.
    #[test]
    fn clip_bounds_from_inputs_or_attributes() {
        let x = || f(&[5], &[-3.0, -1.0, 0.5, 4.0, f64::NAN]);
        let c13 = Clip { dtypes: clip_dtypes(13), attr_bounds: (None, None) };
        let both = values(&clip(&c13, vec![Some(x()), Some(f(&[], &[-1.5])), Some(f(&[], &[2.0]))]).unwrap()).1;
        assert_eq!(&both[..4], [-1.5, -1.0, 0.5, 2.0]);
        assert!(both[4].is_nan());
        let only_max = values(&clip(&c13, vec![Some(x()), None, Some(f(&[1], &[0.0]))]).unwrap()).1;
        assert_eq!(&only_max[..4], [-3.0, -1.0, 0.0, 0.0]);
        let none = values(&clip(&c13, vec![Some(x())]).unwrap()).1;
        assert_eq!(&none[..4], [-3.0, -1.0, 0.5, 4.0]);
        // lo > hi: every element is hi.
        let crossed = values(&clip(&c13, vec![Some(x()), Some(f(&[], &[2.0])), Some(f(&[], &[1.0]))]).unwrap()).1;
        assert_eq!(&crossed[..4], [1.0; 4]);
        // Opset 6 attributes.
        let c6 = Clip { dtypes: clip_dtypes(6), attr_bounds: (Some(0.0), None) };
        assert_eq!(&values(&clip(&c6, vec![Some(x())]).unwrap()).1[..4], [0.0, 0.0, 0.5, 4.0]);
        // Integers from 12.
        let i = |v: &[i8]| i8::wrap(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap());
        let c12 = Clip { dtypes: clip_dtypes(12), attr_bounds: (None, None) };
        let out = clip(&c12, vec![Some(i(&[-128, 0, 127])), Some(i(&[-5])), Some(i(&[5]))]).unwrap();
        assert_eq!(i8::view(&out).unwrap().iter().copied().collect::<Vec<_>>(), [-5, 0, 5]);
        let c11 = Clip { dtypes: clip_dtypes(11), attr_bounds: (None, None) };
        assert!(clip(&c11, vec![Some(i(&[1]))]).unwrap_err().to_string().contains("Clip"));
        // Errors: a non-scalar bound, a bound of another type.
        let err = clip(&c13, vec![Some(x()), Some(f(&[2], &[0.0, 1.0]))]).unwrap_err();
        assert!(err.to_string().contains("Clip") && err.to_string().contains("single value"), "{err}");
        let err = clip(&c13, vec![Some(x()), Some(i(&[0]))]).unwrap_err();
        assert!(err.to_string().contains("Clip") && err.to_string().contains("same type"), "{err}");
    }
}
