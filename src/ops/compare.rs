//! Elementwise comparisons, whose output is bool: Greater, Less, Equal,
//! GreaterOrEqual, LessOrEqual; and the runner they share with the binary
//! logical ops ([`super::logical`]).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Greater.html>
//! - <https://onnx.ai/onnx/operators/onnx__Less.html>
//! - <https://onnx.ai/onnx/operators/onnx__Equal.html>
//! - <https://onnx.ai/onnx/operators/onnx__GreaterOrEqual.html>
//! - <https://onnx.ai/onnx/operators/onnx__LessOrEqual.html>
//!
//! Versions and types (`onnx.defs.get_schema`, onnx 1.23.2):
//!
//! | op | opset | types |
//! |----|-------|-------|
//! | Greater, Less | 1 (legacy `broadcast`/`axis`), 7 (numpy broadcasting) | float16/32/64 |
//! | Greater, Less | 9 | adds int8..64, uint8..64 |
//! | Greater, Less | 13 | adds bfloat16 |
//! | Equal | 1 (legacy), 7 | bool, int32, int64 |
//! | Equal | 11 | bool and every number but bfloat16 |
//! | Equal | 13 | adds bfloat16 |
//! | Equal | 19 | adds string (compared as text, byte for byte) |
//! | GreaterOrEqual, LessOrEqual | 12 | every number but bfloat16 |
//! | GreaterOrEqual, LessOrEqual | 16 | adds bfloat16 |
//!
//! Floats compare as IEEE does (`PartialOrd`): any comparison with NaN is
//! false, so `Equal(NaN, NaN)` is false, and `-0 == +0`.

use super::{FLOATS, NUMBERS, NUMBERS_BF16};
use std::fmt;
use std::marker::PhantomData;

use half::{bf16, f16};

use super::binary::{Broadcasting, broadcasting_from_attrs, infer_pair, mismatch, place, same_typed_pair};
use super::{ExecCtx, Inputs, Op, Registry};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::broadcast::{self, BroadcastError};
use crate::tensor::{DType, Element, Item, Str, Tensor};

/// Registers the comparisons.
pub fn register(reg: &mut Registry) {
    reg.add("", Greater::NAME, Greater::VERSIONS, Greater::dtypes, Compare::<Greater>::from_node);
    reg.add("", Less::NAME, Less::VERSIONS, Less::dtypes, Compare::<Less>::from_node);
    reg.add("", Equal::NAME, Equal::VERSIONS, Equal::dtypes, Compare::<Equal>::from_node);
    reg.add(
        "",
        GreaterOrEqual::NAME,
        GreaterOrEqual::VERSIONS,
        GreaterOrEqual::dtypes,
        Compare::<GreaterOrEqual>::from_node,
    );
    reg.add("", LessOrEqual::NAME, LessOrEqual::VERSIONS, LessOrEqual::dtypes, Compare::<LessOrEqual>::from_node);
}

/// A comparison, declared once: the sibling of
/// [`ArithOp`](super::binary::ArithOp) whose output is bool.
pub trait CompareOp: fmt::Debug + Send + Sync + 'static {
    /// The ONNX op_type.
    const NAME: &'static str;
    /// Schema versions implemented, ascending (below 7: legacy broadcasting).
    const VERSIONS: &'static [i64];
    /// Element types accepted at a version.
    fn dtypes(version: i64) -> &'static [DType];
    /// The scalar body.
    fn apply<T: PartialOrd>(a: T, b: T) -> bool;
    /// The body on two texts (only Equal takes strings; the others'
    /// declared types exclude them, and this orders texts by their bytes).
    fn apply_text(a: &Str, b: &Str) -> bool {
        Self::apply(a.as_bytes(), b.as_bytes())
    }
}

const EQUAL_1: &[DType] = &[DType::Bool, DType::I32, DType::I64];
const EQUAL_11: &[DType] = &[
    DType::Bool,
    DType::F32,
    DType::F64,
    DType::F16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];
const EQUAL_13: &[DType] = &[
    DType::Bool,
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];

const EQUAL_19: &[DType] = &[
    DType::Bool,
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::String,
];

/// Greater and Less types at a version.
fn ordered_dtypes(version: i64) -> &'static [DType] {
    match version {
        13.. => NUMBERS_BF16,
        9..=12 => NUMBERS,
        _ => FLOATS,
    }
}

/// GreaterOrEqual and LessOrEqual types at a version.
fn or_equal_dtypes(version: i64) -> &'static [DType] {
    if version >= 16 { NUMBERS_BF16 } else { NUMBERS }
}

/// Greater: `A > B`. <https://onnx.ai/onnx/operators/onnx__Greater.html>
#[derive(Debug)]
pub struct Greater;

impl CompareOp for Greater {
    const NAME: &'static str = "Greater";
    const VERSIONS: &'static [i64] = &[1, 7, 9, 13];
    fn dtypes(version: i64) -> &'static [DType] {
        ordered_dtypes(version)
    }
    fn apply<T: PartialOrd>(a: T, b: T) -> bool {
        a > b
    }
}

/// Less: `A < B`. <https://onnx.ai/onnx/operators/onnx__Less.html>
#[derive(Debug)]
pub struct Less;

impl CompareOp for Less {
    const NAME: &'static str = "Less";
    const VERSIONS: &'static [i64] = &[1, 7, 9, 13];
    fn dtypes(version: i64) -> &'static [DType] {
        ordered_dtypes(version)
    }
    fn apply<T: PartialOrd>(a: T, b: T) -> bool {
        a < b
    }
}

/// Equal: `A == B`. <https://onnx.ai/onnx/operators/onnx__Equal.html>
#[derive(Debug)]
pub struct Equal;

impl CompareOp for Equal {
    const NAME: &'static str = "Equal";
    const VERSIONS: &'static [i64] = &[1, 7, 11, 13, 19];
    fn dtypes(version: i64) -> &'static [DType] {
        match version {
            19.. => EQUAL_19,
            13..=18 => EQUAL_13,
            11 | 12 => EQUAL_11,
            _ => EQUAL_1,
        }
    }
    fn apply<T: PartialOrd>(a: T, b: T) -> bool {
        a == b
    }
}

/// GreaterOrEqual: `A >= B`.
/// <https://onnx.ai/onnx/operators/onnx__GreaterOrEqual.html>
#[derive(Debug)]
pub struct GreaterOrEqual;

impl CompareOp for GreaterOrEqual {
    const NAME: &'static str = "GreaterOrEqual";
    const VERSIONS: &'static [i64] = &[12, 16];
    fn dtypes(version: i64) -> &'static [DType] {
        or_equal_dtypes(version)
    }
    fn apply<T: PartialOrd>(a: T, b: T) -> bool {
        a >= b
    }
}

/// LessOrEqual: `A <= B`. <https://onnx.ai/onnx/operators/onnx__LessOrEqual.html>
#[derive(Debug)]
pub struct LessOrEqual;

impl CompareOp for LessOrEqual {
    const NAME: &'static str = "LessOrEqual";
    const VERSIONS: &'static [i64] = &[12, 16];
    fn dtypes(version: i64) -> &'static [DType] {
        or_equal_dtypes(version)
    }
    fn apply<T: PartialOrd>(a: T, b: T) -> bool {
        a <= b
    }
}

/// A [`CompareOp`] as a configured node.
pub struct Compare<O> {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
    /// How B broadcasts.
    pub broadcasting: Broadcasting,
    op: PhantomData<fn() -> O>,
}

impl<O: CompareOp> fmt::Debug for Compare<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(O::NAME).field("dtypes", &self.dtypes).field("broadcasting", &self.broadcasting).finish()
    }
}

impl<O: CompareOp> Compare<O> {
    /// Reads the legacy attributes (opset 1).
    ///
    /// # Errors
    /// A wrongly typed attribute, or `broadcast` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let broadcasting = broadcasting_from_attrs(attrs, version)?;
        Ok(Compare { dtypes: O::dtypes(version), broadcasting, op: PhantomData })
    }
}

/// `f(a, b)` over A and B broadcast under `broadcasting`, into a fresh
/// bool tensor (the output type differs from the inputs', so no input
/// buffer can be reused).
pub(crate) fn to_bool<T: Element>(
    op: &'static str,
    broadcasting: Broadcasting,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(T, T) -> bool + Copy + Sync,
    ctx: &ExecCtx<'_>,
) -> Result<Tensor, OpError> {
    let wrong = |tensor: &Tensor| OpError::UnsupportedDtype { op, dtype: tensor.dtype() };
    let av = T::view(a).ok_or_else(|| wrong(a))?;
    let bv = T::view(b).ok_or_else(|| wrong(b))?;
    let (bv, out_shape) = place(op, broadcasting, &av, bv)?;
    if broadcast::checked_len(&out_shape).is_err() {
        return Err(mismatch(op, a.shape(), b.shape(), BroadcastError::TooLarge));
    }
    let kernel_err = |err: BroadcastError| OpError::Invalid { op, reason: err.to_string() };
    let mut out = ctx.output::<bool>(&out_shape);
    let dst = out.as_slice_mut().ok_or(kernel_err(BroadcastError::BadOutput))?;
    broadcast::binary_into(&av, &bv, &out_shape, dst, f, ctx.par).map_err(kernel_err)?;
    Ok(bool::wrap(out))
}

/// [`to_bool`] for string tensors: `f` on each pair of texts, by
/// reference, on the calling thread.
fn texts_to_bool(
    op: &'static str,
    broadcasting: Broadcasting,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(&Str, &Str) -> bool,
) -> Result<Tensor, OpError> {
    let wrong = |tensor: &Tensor| OpError::UnsupportedDtype { op, dtype: tensor.dtype() };
    let av = Str::view(a).ok_or_else(|| wrong(a))?;
    let bv = Str::view(b).ok_or_else(|| wrong(b))?;
    let (bv, out_shape) = place(op, broadcasting, &av, bv)?;
    let out = broadcast::map_pair(&av, &bv, &out_shape, |a, b| f(a, b))
        .map_err(|err| OpError::Invalid { op, reason: err.to_string() })?;
    Ok(bool::wrap(out))
}

impl<O: CompareOp> Op for Compare<O> {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        infer_pair(self.broadcasting, inputs, Some(DType::Bool))
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let (a, b) = same_typed_pair(O::NAME, inputs, self.dtypes)?;
        let (n, br) = (O::NAME, self.broadcasting);
        match a.dtype() {
            DType::F32 => to_bool(n, br, &a, &b, O::apply::<f32>, ctx),
            DType::F64 => to_bool(n, br, &a, &b, O::apply::<f64>, ctx),
            DType::F16 => to_bool(n, br, &a, &b, O::apply::<f16>, ctx),
            DType::BF16 => to_bool(n, br, &a, &b, O::apply::<bf16>, ctx),
            DType::I8 => to_bool(n, br, &a, &b, O::apply::<i8>, ctx),
            DType::I16 => to_bool(n, br, &a, &b, O::apply::<i16>, ctx),
            DType::I32 => to_bool(n, br, &a, &b, O::apply::<i32>, ctx),
            DType::I64 => to_bool(n, br, &a, &b, O::apply::<i64>, ctx),
            DType::U8 => to_bool(n, br, &a, &b, O::apply::<u8>, ctx),
            DType::U16 => to_bool(n, br, &a, &b, O::apply::<u16>, ctx),
            DType::U32 => to_bool(n, br, &a, &b, O::apply::<u32>, ctx),
            DType::U64 => to_bool(n, br, &a, &b, O::apply::<u64>, ctx),
            DType::Bool => to_bool(n, br, &a, &b, O::apply::<bool>, ctx),
            DType::String => texts_to_bool(n, br, &a, &b, O::apply_text),
            dtype @ crate::low_precision!() => Err(OpError::UnsupportedDtype { op: n, dtype }),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use std::borrow::Cow;

    use super::*;
    use crate::graph::model::Dim;
    use crate::kernels::Parallel;

    pub(crate) fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        op.run(&mut inputs, &ctx)
    }

    fn f32s(shape: &[usize], values: &[f32]) -> Tensor {
        f32::wrap(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap())
    }

    fn bools(tensor: &Tensor) -> (Vec<usize>, Vec<bool>) {
        let view = bool::view(tensor).expect("bool output");
        (view.shape().to_vec(), view.iter().copied().collect())
    }

    fn numpy<O: CompareOp>(version: i64) -> Compare<O> {
        Compare { dtypes: O::dtypes(version), broadcasting: Broadcasting::Numpy, op: PhantomData }
    }

    /// Every comparison on every pair of a set with NaN, ±0 and ±inf,
    /// against Rust's own f64 comparison written out per op.
    #[test]
    fn comparisons_follow_ieee_including_nan_and_signed_zero() {
        let values = [f32::NAN, -0.0, 0.0, 1.0, -1.0, f32::INFINITY, f32::NEG_INFINITY];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for &x in &values {
            for &y in &values {
                a.push(x);
                b.push(y);
            }
        }
        let n = a.len();
        type Check = (Box<dyn Op>, fn(f64, f64) -> bool);
        let cases: Vec<Check> = vec![
            (Box::new(numpy::<Greater>(13)), |x, y| x > y),
            (Box::new(numpy::<Less>(13)), |x, y| x < y),
            (Box::new(numpy::<Equal>(13)), |x, y| x == y),
            (Box::new(numpy::<GreaterOrEqual>(16)), |x, y| x >= y),
            (Box::new(numpy::<LessOrEqual>(16)), |x, y| x <= y),
        ];
        for (op, reference) in cases {
            let out = run(op.as_ref(), vec![f32s(&[n], &a), f32s(&[n], &b)]).unwrap();
            let expected: Vec<bool> = a.iter().zip(&b).map(|(&x, &y)| reference(f64::from(x), f64::from(y))).collect();
            assert_eq!(bools(&out), (vec![n], expected), "{op:?}");
        }
        // NaN is unequal to itself.
        let out = run(&numpy::<Equal>(13), vec![f32s(&[1], &[f32::NAN]), f32s(&[1], &[f32::NAN])]).unwrap();
        assert_eq!(bools(&out).1, [false]);
    }

    #[test]
    fn broadcasting_patterns_and_empty_tensors() {
        // [2, 1] against [3]: the output is [2, 3].
        let out = run(&numpy::<Greater>(13), vec![f32s(&[2, 1], &[1.0, 5.0]), f32s(&[3], &[0.0, 1.0, 6.0])]).unwrap();
        assert_eq!(bools(&out), (vec![2, 3], vec![true, false, false, true, true, false]));
        // A scalar against a matrix.
        let out = run(&numpy::<Less>(13), vec![f32s(&[], &[2.0]), f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])]).unwrap();
        assert_eq!(bools(&out), (vec![2, 2], vec![false, false, true, true]));
        // Empty: [0, 3] against [3].
        let out = run(&numpy::<Equal>(13), vec![f32s(&[0, 3], &[]), f32s(&[3], &[1.0, 2.0, 3.0])]).unwrap();
        assert_eq!(bools(&out), (vec![0, 3], vec![]));
        // Legacy broadcast=1, axis=0: B [2] lines up with A's first axis of [2, 3].
        let legacy = Compare::<Greater> {
            dtypes: Greater::dtypes(1),
            broadcasting: Broadcasting::Legacy { axis: Some(0) },
            op: PhantomData,
        };
        let out = run(&legacy, vec![f32s(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]), f32s(&[2], &[1.0, 3.0])]).unwrap();
        assert_eq!(bools(&out).1, [false, false, true, false, true, true]);
    }

    #[test]
    fn integer_and_bool_dtypes_per_version() {
        let i = |values: &[i64]| i64::wrap(ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap());
        let out = run(&numpy::<Equal>(7), vec![i(&[1, i64::MIN, 3]), i(&[1, i64::MAX, 4])]).unwrap();
        assert_eq!(bools(&out).1, [true, false, false]);
        let out = run(&numpy::<Greater>(9), vec![i(&[i64::MAX, -1]), i(&[i64::MIN, 0])]).unwrap();
        assert_eq!(bools(&out).1, [true, false]);
        let b = |values: &[bool]| bool::wrap(ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap());
        let out = run(&numpy::<Equal>(1), vec![b(&[true, false]), b(&[true, true])]).unwrap();
        assert_eq!(bools(&out).1, [true, false]);
        // Greater before 9 takes floats only; Equal before 11 no floats;
        // bfloat16 arrives at 13 (Greater) and 16 (GreaterOrEqual).
        assert!(!Greater::dtypes(7).contains(&DType::I32));
        assert!(!Equal::dtypes(7).contains(&DType::F32));
        assert!(Equal::dtypes(11).contains(&DType::F32) && !Equal::dtypes(11).contains(&DType::BF16));
        assert!(
            !GreaterOrEqual::dtypes(12).contains(&DType::BF16) && GreaterOrEqual::dtypes(16).contains(&DType::BF16)
        );
        let err = run(&numpy::<Greater>(7), vec![i(&[1]), i(&[1])]).unwrap_err();
        assert!(err.to_string().contains("Greater"), "{err}");
    }

    #[test]
    fn errors_name_the_op() {
        let i = i64::wrap(ArrayD::from_shape_vec(IxDyn(&[2]), vec![1, 2]).unwrap());
        let err = run(&numpy::<Less>(13), vec![f32s(&[2], &[1.0, 2.0]), i]).unwrap_err();
        assert!(err.to_string().contains("Less") && err.to_string().contains("same type"), "{err}");
        let err = run(&numpy::<LessOrEqual>(16), vec![f32s(&[2], &[1.0, 2.0]), f32s(&[3], &[0.0; 3])]).unwrap_err();
        assert!(err.to_string().contains("LessOrEqual") && err.to_string().contains("[2]"), "{err}");
    }

    #[test]
    fn infer_gives_bool_with_the_broadcast_shape() {
        let a = ValueType { dtype: DType::F32, dims: Some(vec![Dim::Fixed(2), Dim::Fixed(1)]) };
        let b = ValueType { dtype: DType::F32, dims: Some(vec![Dim::Fixed(3)]) };
        let inputs = [InferInput { ty: Some(&a), value: None }, InferInput { ty: Some(&b), value: None }];
        let out = numpy::<Greater>(13).infer(&inputs, 1);
        assert_eq!(out, vec![Some(ValueType { dtype: DType::Bool, dims: Some(vec![Dim::Fixed(2), Dim::Fixed(3)]) })]);
    }
}
