//! Elementwise binary arithmetic: Add, Sub, Mul, Div, all through one
//! broadcasting layer ([`crate::kernels::broadcast`]).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Add.html>
//! - <https://onnx.ai/onnx/operators/onnx__Sub.html>
//! - <https://onnx.ai/onnx/operators/onnx__Mul.html>
//! - <https://onnx.ai/onnx/operators/onnx__Div.html>
//!
//! The four share their versions and types (`onnx.defs.get_schema`, onnx
//! 1.23.2):
//!
//! | opset | change                                                           |
//! |-------|------------------------------------------------------------------|
//! | 1     | float16/32/64; B broadcasts only with `broadcast=1`, aligned at `axis` (default: suffix), a size-1 extent of B repeated as numpy does (what PyTorch's exports expect); `consumed_inputs` (an in-place hint, no effect) |
//! | 6     | `consumed_inputs` dropped; adds int32, int64, uint32, uint64     |
//! | 7     | numpy (multidirectional) broadcasting; `broadcast`/`axis` dropped |
//! | 13    | adds bfloat16                                                    |
//! | 14    | adds int8, int16, uint8, uint16                                  |
//!
//! Results are ONNX Runtime's: IEEE for floats, float16 and bfloat16
//! computed in f32 and rounded once (which is the correctly rounded
//! result); integers wrap on overflow, Div truncates toward zero, and an
//! integer division by zero gives 0 (see [`Arithmetic`]).
//!
//! # Declaring another op
//!
//! An op is one [`ArithOp`] implementation (name, versions, dtypes, scalar
//! body) and one `reg.add` line; [`Binary`] does the rest (inputs, type
//! and shape checks, legacy attributes, in-place reuse, dispatch).
//! Comparisons, whose output type differs from their input type, will use
//! the same kernel ([`broadcast::binary_into`] takes `Fn(T, T) -> U`).

use super::{FLOATS, FLOATS_BF16_INTS_32_64, FLOATS_INTS_32_64, NUMBERS_BF16};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use half::{bf16, f16};
use ndarray::{ArrayD, ArrayViewD, Axis};

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, broadcast_dims};
use crate::kernels::broadcast::{self, Arithmetic, BroadcastError};
use crate::tensor::{DType, Element, Item, Tensor};

/// Registers Add, Sub, Mul, Div, Mod, Pow and PRelu.
pub fn register(reg: &mut Registry) {
    reg.add("", Add::NAME, Add::VERSIONS, Add::dtypes, Binary::<Add>::from_node);
    reg.add("", Sub::NAME, Sub::VERSIONS, Sub::dtypes, Binary::<Sub>::from_node);
    reg.add("", Mul::NAME, Mul::VERSIONS, Mul::dtypes, Binary::<Mul>::from_node);
    reg.add("", Div::NAME, Div::VERSIONS, Div::dtypes, Binary::<Div>::from_node);
    reg.add("", "Pow", &[1, 7, 12, 13, 15], pow_base_dtypes, Pow::from_node);
    reg.add("", "PRelu", &[1, 6, 7, 9, 16], prelu_dtypes, PRelu::from_node);
    reg.add("", "Mod", &[10, 13], mod_dtypes, Mod::from_node);
}

/// Element types of Mod: every number type, bfloat16 from 13.
fn mod_dtypes(version: i64) -> &'static [DType] {
    if version >= 13 { NUMBERS_BF16 } else { super::NUMBERS }
}

/// Mod: the remainder of `A / B`, numpy broadcasting; `fmod = 0` (the
/// default) takes the sign of the divisor (Python's `%`, integers), `fmod
/// = 1` that of the dividend (C `fmod`). Floats follow numpy for both
/// (`np.mod`, `np.fmod`; the spec asks for `fmod = 1` with floats); an
/// integer `x mod 0` is 0, as Div's `x / 0`.
/// <https://onnx.ai/onnx/operators/onnx__Mod.html>
#[derive(Debug)]
pub struct Mod {
    inner: Box<dyn Op>,
}

impl Mod {
    /// Reads `fmod` (0 or 1).
    ///
    /// # Errors
    /// An `fmod` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let inner: Box<dyn Op> = match attrs.i64("fmod")?.unwrap_or(0) {
            0 => Box::new(Binary::<ModFloor>::new(version, Broadcasting::Numpy)),
            1 => Box::new(Binary::<ModTrunc>::new(version, Broadcasting::Numpy)),
            other => return Err(attrs.error("fmod", format!("{other} is neither 0 nor 1"))),
        };
        Ok(Mod { inner })
    }
}

impl Op for Mod {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        self.inner.run(inputs, ctx)
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        self.inner.infer(inputs, n_outputs)
    }
}

/// Mod with `fmod = 0`: the sign of the divisor.
#[derive(Debug)]
pub struct ModFloor;

impl ArithOp for ModFloor {
    const NAME: &'static str = "Mod";
    const VERSIONS: &'static [i64] = &[10, 13];
    fn dtypes(version: i64) -> &'static [DType] {
        mod_dtypes(version)
    }
    fn apply<T: Arithmetic>(a: T, b: T) -> T {
        a.rem_floor(b)
    }
}

/// Mod with `fmod = 1`: the sign of the dividend.
#[derive(Debug)]
pub struct ModTrunc;

impl ArithOp for ModTrunc {
    const NAME: &'static str = "Mod";
    const VERSIONS: &'static [i64] = &[10, 13];
    fn dtypes(version: i64) -> &'static [DType] {
        mod_dtypes(version)
    }
    fn apply<T: Arithmetic>(a: T, b: T) -> T {
        a.rem_trunc(b)
    }
}

/// A same-type elementwise binary operator, declared once: everything
/// [`Binary`] needs to run it.
pub trait ArithOp: fmt::Debug + Send + Sync + 'static {
    /// The ONNX op_type.
    const NAME: &'static str;
    /// Schema versions implemented, ascending. Versions below 7 use the
    /// legacy `broadcast`/`axis` attributes (and below 6
    /// `consumed_inputs`).
    const VERSIONS: &'static [i64];
    /// Element types accepted at a version.
    fn dtypes(version: i64) -> &'static [DType];
    /// The scalar body, for every element type.
    fn apply<T: Arithmetic>(a: T, b: T) -> T;
}

/// The schema versions shared by Add, Sub, Mul and Div.
pub const ARITH_VERSIONS: &[i64] = &[1, 6, 7, 13, 14];

/// Element types of Add, Sub, Mul and Div at a version.
pub fn arith_dtypes(version: i64) -> &'static [DType] {
    match version {
        14.. => NUMBERS_BF16,
        13 => FLOATS_BF16_INTS_32_64,
        6..=12 => FLOATS_INTS_32_64,
        _ => FLOATS,
    }
}

/// Add: `A + B`. <https://onnx.ai/onnx/operators/onnx__Add.html>
#[derive(Debug)]
pub struct Add;

impl ArithOp for Add {
    const NAME: &'static str = "Add";
    const VERSIONS: &'static [i64] = ARITH_VERSIONS;
    fn dtypes(version: i64) -> &'static [DType] {
        arith_dtypes(version)
    }
    fn apply<T: Arithmetic>(a: T, b: T) -> T {
        a.add(b)
    }
}

/// Sub: `A - B`. <https://onnx.ai/onnx/operators/onnx__Sub.html>
#[derive(Debug)]
pub struct Sub;

impl ArithOp for Sub {
    const NAME: &'static str = "Sub";
    const VERSIONS: &'static [i64] = ARITH_VERSIONS;
    fn dtypes(version: i64) -> &'static [DType] {
        arith_dtypes(version)
    }
    fn apply<T: Arithmetic>(a: T, b: T) -> T {
        a.sub(b)
    }
}

/// Mul: `A * B`. <https://onnx.ai/onnx/operators/onnx__Mul.html>
#[derive(Debug)]
pub struct Mul;

impl ArithOp for Mul {
    const NAME: &'static str = "Mul";
    const VERSIONS: &'static [i64] = ARITH_VERSIONS;
    fn dtypes(version: i64) -> &'static [DType] {
        arith_dtypes(version)
    }
    fn apply<T: Arithmetic>(a: T, b: T) -> T {
        a.mul(b)
    }
}

/// Div: `A / B`; integers truncate toward zero, and `x / 0 == 0`.
/// <https://onnx.ai/onnx/operators/onnx__Div.html>
#[derive(Debug)]
pub struct Div;

impl ArithOp for Div {
    const NAME: &'static str = "Div";
    const VERSIONS: &'static [i64] = ARITH_VERSIONS;
    fn dtypes(version: i64) -> &'static [DType] {
        arith_dtypes(version)
    }
    fn apply<T: Arithmetic>(a: T, b: T) -> T {
        a.div(b)
    }
}

/// How B meets A's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcasting {
    /// Opset 7 on: numpy rules, both ways.
    Numpy,
    /// Before opset 7 without `broadcast=1`: the shapes must be equal.
    Off,
    /// Before opset 7 with `broadcast=1`: B is a single element, or its
    /// shape is A's axes from `axis` on (default: A's last axes), each
    /// extent A's or 1 (repeated along that axis); the output has A's
    /// shape.
    Legacy {
        /// Where B's first axis sits in A (`None`: suffix matching).
        axis: Option<i64>,
    },
}

/// An [`ArithOp`] as a configured node.
pub struct Binary<O> {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
    /// How B broadcasts.
    pub broadcasting: Broadcasting,
    op: PhantomData<fn() -> O>,
}

impl<O: ArithOp> fmt::Debug for Binary<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(O::NAME).field("dtypes", &self.dtypes).field("broadcasting", &self.broadcasting).finish()
    }
}

impl<O: ArithOp> Binary<O> {
    /// The op at `version` with the given broadcasting.
    pub fn new(version: i64, broadcasting: Broadcasting) -> Self {
        Binary { dtypes: O::dtypes(version), broadcasting, op: PhantomData }
    }

    /// Reads the legacy attributes (opset 1 and 6).
    ///
    /// # Errors
    /// A wrongly typed attribute, or `broadcast` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(Self::new(version, broadcasting_from_attrs(attrs, version)?))
    }

    fn mismatch(&self, a: &[usize], b: &[usize], why: impl fmt::Display) -> OpError {
        mismatch(O::NAME, a, b, why)
    }

    /// B's view placed for the kernel, and the output shape.
    fn shapes<'v, T>(
        &self,
        a: &ArrayViewD<'_, T>,
        b: ArrayViewD<'v, T>,
    ) -> Result<(ArrayViewD<'v, T>, Vec<usize>), OpError> {
        place(O::NAME, self.broadcasting, a, b)
    }

    /// Runs the op on element type `T`.
    fn run_typed<T: Element + Default + Arithmetic>(
        &self,
        a: Cow<'_, Tensor>,
        b: Cow<'_, Tensor>,
        ctx: &ExecCtx<'_>,
    ) -> Result<Tensor, OpError> {
        let wrong = |tensor: &Tensor| OpError::UnsupportedDtype { op: O::NAME, dtype: tensor.dtype() };
        let out_shape = {
            let av = T::view(&a).ok_or_else(|| wrong(&a))?;
            let bv = T::view(&b).ok_or_else(|| wrong(&b))?;
            self.shapes(&av, bv)?.1
        };
        let n_bytes = broadcast::checked_len(&out_shape)
            .ok()
            .and_then(|len| len.checked_mul(T::DTYPE.size()))
            .filter(|&bytes| bytes <= isize::MAX as usize);
        if n_bytes.is_none() {
            return Err(self.mismatch(a.shape(), b.shape(), BroadcastError::TooLarge));
        }
        let kernel_err = |err: BroadcastError| OpError::Invalid { op: O::NAME, reason: err.to_string() };

        // Reuse a consumed input's buffer when it already has the output's
        // shape (and, being the same op type, its dtype), is row-major, and
        // nothing else holds it (a shared buffer would be copied first:
        // computing into a fresh one costs less).
        let a = match a {
            Cow::Owned(tensor) if tensor.shape() == out_shape.as_slice() && tensor.is_unique() => {
                match T::unwrap(tensor) {
                    Ok(mut array) if array.is_standard_layout() => {
                        let bv = T::view(&b).ok_or_else(|| wrong(&b))?;
                        let (bv, _) = self.shapes(&array.view(), bv)?;
                        let dst = array.as_slice_mut().ok_or(kernel_err(BroadcastError::BadOutput))?;
                        broadcast::binary_inplace(dst, &out_shape, &bv, O::apply::<T>, ctx.par).map_err(kernel_err)?;
                        return Ok(T::wrap(array));
                    }
                    Ok(array) => Cow::Owned(T::wrap(array)),
                    Err(tensor) => Cow::Owned(tensor),
                }
            }
            other => other,
        };
        let av = T::view(&a).ok_or_else(|| wrong(&a))?;
        match b {
            // B already has the output's shape, so it needs no placing.
            Cow::Owned(tensor) if tensor.shape() == out_shape.as_slice() && tensor.is_unique() => {
                let b = match T::unwrap(tensor) {
                    Ok(mut array) if array.is_standard_layout() => {
                        let dst = array.as_slice_mut().ok_or(kernel_err(BroadcastError::BadOutput))?;
                        broadcast::binary_inplace(dst, &out_shape, &av, |x, y| O::apply::<T>(y, x), ctx.par)
                            .map_err(kernel_err)?;
                        return Ok(T::wrap(array));
                    }
                    Ok(array) => T::wrap(array),
                    Err(tensor) => tensor,
                };
                self.to_new_output::<T>(&av, &b, &out_shape, ctx)
            }
            b => self.to_new_output::<T>(&av, &b, &out_shape, ctx),
        }
    }

    /// Computes into a fresh (or pooled) output buffer.
    fn to_new_output<T: Element + Default + Arithmetic>(
        &self,
        av: &ArrayViewD<'_, T>,
        b: &Tensor,
        out_shape: &[usize],
        ctx: &ExecCtx<'_>,
    ) -> Result<Tensor, OpError> {
        let kernel_err = |err: BroadcastError| OpError::Invalid { op: O::NAME, reason: err.to_string() };
        let bv = T::view(b).ok_or(OpError::UnsupportedDtype { op: O::NAME, dtype: b.dtype() })?;
        let (bv, _) = self.shapes(av, bv)?;
        let mut out = ctx.output::<T>(out_shape);
        let dst = out.as_slice_mut().ok_or(kernel_err(BroadcastError::BadOutput))?;
        broadcast::binary_into(av, &bv, out_shape, dst, O::apply::<T>, ctx.par).map_err(kernel_err)?;
        Ok(T::wrap(out))
    }
}

/// How B broadcasts at `version`: numpy rules from 7, before that the
/// legacy `broadcast`/`axis` attributes (and below 6 `consumed_inputs`).
///
/// # Errors
/// A wrongly typed attribute, or `broadcast` other than 0 or 1.
pub(crate) fn broadcasting_from_attrs(attrs: &mut Attrs<'_>, version: i64) -> Result<Broadcasting, LoadError> {
    if version >= 7 {
        return Ok(Broadcasting::Numpy);
    }
    if version < 6 {
        attrs.ints("consumed_inputs")?;
    }
    let axis = attrs.i64("axis")?;
    match attrs.i64("broadcast")?.unwrap_or(0) {
        // `axis` only places B when broadcasting; read so that it is
        // accepted, as the schema allows it either way.
        0 => Ok(Broadcasting::Off),
        1 => Ok(Broadcasting::Legacy { axis }),
        other => Err(attrs.error("broadcast", format!("must be 0 or 1, got {other}"))),
    }
}

/// The error for operands whose shapes do not meet, naming the op.
pub(crate) fn mismatch(op: &'static str, a: &[usize], b: &[usize], why: impl fmt::Display) -> OpError {
    OpError::Invalid { op, reason: format!("cannot broadcast A of shape {a:?} with B of shape {b:?}: {why}") }
}

/// B's view placed for the kernel under `broadcasting`, and the output
/// shape; shared by every two-input op with the legacy attributes
/// (arithmetic and comparisons).
///
/// # Errors
/// Shapes that do not meet under the rule.
pub(crate) fn place<'v, A, T>(
    op: &'static str,
    broadcasting: Broadcasting,
    a: &ArrayViewD<'_, A>,
    b: ArrayViewD<'v, T>,
) -> Result<(ArrayViewD<'v, T>, Vec<usize>), OpError> {
    let (a_shape, b_shape) = (a.shape(), b.shape());
    let fail = |why: &dyn fmt::Display| mismatch(op, a_shape, b_shape, why);
    match broadcasting {
        Broadcasting::Numpy => {
            let out = broadcast::multidirectional(&[a_shape, b_shape]).map_err(|err| fail(&err))?;
            Ok((b, out))
        }
        Broadcasting::Off if a_shape == b_shape => Ok((b, a_shape.to_vec())),
        Broadcasting::Off => Err(fail(&"shapes must be equal unless broadcast=1 (opset < 7)")),
        Broadcasting::Legacy { axis } => {
            if b.len() == 1 {
                // A single element broadcasts anywhere: drop its axes.
                let mut b = b;
                while b.ndim() > 0 {
                    b = b.index_axis_move(Axis(0), 0);
                }
                return Ok((b, a_shape.to_vec()));
            }
            let (rank_a, rank_b) = (a_shape.len(), b_shape.len());
            let start = match axis {
                None => rank_a.checked_sub(rank_b),
                Some(axis) => {
                    let axis = super::normalize_axis(op, axis, rank_a.max(1))?;
                    Some(axis)
                }
            };
            // B's extents are A's, or 1 (broadcast along that axis as
            // numpy does: what PyTorch's opset-6 exports relied on, though
            // the spec of the time left it out).
            let fits = start.filter(|&start| {
                a_shape.get(start..start + rank_b).is_some_and(|a_axes| {
                    a_axes.iter().zip(b_shape).all(|(&a_extent, &b_extent)| b_extent == a_extent || b_extent == 1)
                })
            });
            let Some(start) = fits else {
                return Err(fail(&format!(
                    "with broadcast=1 (opset < 7), B must match A's axes from {} on",
                    axis.map_or_else(|| "the end".to_string(), |axis| axis.to_string())
                )));
            };
            // Trailing unit axes line B up with A's axes from `start`.
            let mut b = b;
            for _ in start + rank_b..rank_a {
                let last = Axis(b.ndim());
                b = b.insert_axis(last);
            }
            Ok((b, a_shape.to_vec()))
        }
    }
}

/// The output type of a two-input op over A and B broadcast: of `dtype`,
/// or of A's type when `None`. Before opset 7 the output has A's shape.
pub(crate) fn infer_pair(
    broadcasting: Broadcasting,
    inputs: &[InferInput<'_>],
    dtype: Option<DType>,
) -> Vec<Option<ValueType>> {
    let (Some(a), Some(b)) = (inputs.first().and_then(|input| input.ty), inputs.get(1).and_then(|input| input.ty))
    else {
        return Vec::new();
    };
    let dims = match broadcasting {
        Broadcasting::Numpy => broadcast_dims(&[a.dims.as_deref(), b.dims.as_deref()]),
        Broadcasting::Off | Broadcasting::Legacy { .. } => a.dims.clone(),
    };
    vec![Some(ValueType { dtype: dtype.unwrap_or(a.dtype), dims })]
}

/// Takes A and B, checks they share a dtype in `dtypes`, and returns them.
pub(crate) fn same_typed_pair<'a>(
    op: &'static str,
    inputs: &mut Inputs<'a>,
    dtypes: &[DType],
) -> Result<(Cow<'a, Tensor>, Cow<'a, Tensor>), OpError> {
    let a = required(inputs, 0, op)?;
    let b = required(inputs, 1, op)?;
    if a.dtype() != b.dtype() {
        return Err(OpError::Invalid {
            op,
            reason: format!("A is {} but B is {}; both must have the same type", a.dtype(), b.dtype()),
        });
    }
    check_dtype(op, a.dtype(), dtypes)?;
    Ok((a, b))
}

impl<O: ArithOp> Op for Binary<O> {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        infer_pair(self.broadcasting, inputs, None)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let (a, b) = same_typed_pair(O::NAME, inputs, self.dtypes)?;
        match a.dtype() {
            DType::F32 => self.run_typed::<f32>(a, b, ctx),
            DType::F64 => self.run_typed::<f64>(a, b, ctx),
            DType::F16 => self.run_typed::<f16>(a, b, ctx),
            DType::BF16 => self.run_typed::<bf16>(a, b, ctx),
            DType::I8 => self.run_typed::<i8>(a, b, ctx),
            DType::I16 => self.run_typed::<i16>(a, b, ctx),
            DType::I32 => self.run_typed::<i32>(a, b, ctx),
            DType::I64 => self.run_typed::<i64>(a, b, ctx),
            DType::U8 => self.run_typed::<u8>(a, b, ctx),
            DType::U16 => self.run_typed::<u16>(a, b, ctx),
            DType::U32 => self.run_typed::<u32>(a, b, ctx),
            DType::U64 => self.run_typed::<u64>(a, b, ctx),
            dtype => Err(OpError::UnsupportedDtype { op: O::NAME, dtype }),
        }
    }
}

/// Pow's base (`T`) types at a version.
fn pow_base_dtypes(version: i64) -> &'static [DType] {
    match version {
        13.. => &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64],
        12 => &[DType::F32, DType::F64, DType::F16, DType::I32, DType::I64],
        _ => &[DType::F32, DType::F64, DType::F16],
    }
}

/// Pow's exponent (`T1`) types at a version; before 12 it is the base's.
fn pow_exponent_dtypes(version: i64) -> &'static [DType] {
    match version {
        15.. => NUMBERS_BF16,
        12..=14 => &[
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
        ],
        _ => &[DType::F32, DType::F64, DType::F16],
    }
}

/// Pow: `X ^ Y`, elementwise (numpy broadcasting from 7, legacy
/// `broadcast`/`axis` at 1). <https://onnx.ai/onnx/operators/onnx__Pow.html>
///
/// | opset | change |
/// |-------|--------|
/// | 1, 7  | float16/32/64, Y of X's type |
/// | 12    | X adds int32, int64; Y may be any number type but bfloat16 |
/// | 13    | X adds bfloat16 |
/// | 15    | Y adds bfloat16 |
///
/// A float X is raised in f64 (`powf`, exact inputs) and rounded once to
/// X's type. An integer X with an integer Y is the integer power, wrapping
/// on overflow; a negative Y gives the truncated `1 / X^-Y` (1 for X = 1,
/// ±1 for X = -1, 0 otherwise, also for X = 0 where C++ has no value). An
/// integer X with a float Y is `powf` converted back as Cast does
/// (truncated, saturating, NaN to 0) — ONNX Runtime's `pow` then cast.
#[derive(Debug)]
pub struct Pow {
    version: i64,
    broadcasting: Broadcasting,
}

impl Pow {
    /// Reads the legacy attributes (opset 1).
    ///
    /// # Errors
    /// A wrongly typed attribute, or `broadcast` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(Pow { version, broadcasting: broadcasting_from_attrs(attrs, version)? })
    }
}

/// A tensor's values widened without loss for Pow: floats to f64 (exact
/// for every float type), integers to i64 (u64 above `i64::MAX` saturates;
/// only the exponent can be u64, and such a power is 0, 1 or overflows
/// the same either way except in parity for X = -1).
enum Widened {
    Float(ArrayD<f64>),
    Int(ArrayD<i64>),
}

fn widen(t: &Tensor) -> Option<Widened> {
    fn map<T: Element, U>(t: &Tensor, f: impl Fn(T) -> U) -> Option<ArrayD<U>> {
        T::view(t).map(|v| v.mapv(f))
    }
    Some(match t.dtype() {
        DType::F32 => Widened::Float(map::<f32, _>(t, f64::from)?),
        DType::F64 => Widened::Float(map::<f64, _>(t, |x: f64| x)?),
        DType::F16 => Widened::Float(map::<f16, _>(t, f64::from)?),
        DType::BF16 => Widened::Float(map::<bf16, _>(t, f64::from)?),
        DType::I8 => Widened::Int(map::<i8, _>(t, i64::from)?),
        DType::I16 => Widened::Int(map::<i16, _>(t, i64::from)?),
        DType::I32 => Widened::Int(map::<i32, _>(t, i64::from)?),
        DType::I64 => Widened::Int(map::<i64, _>(t, |x: i64| x)?),
        DType::U8 => Widened::Int(map::<u8, _>(t, i64::from)?),
        DType::U16 => Widened::Int(map::<u16, _>(t, i64::from)?),
        DType::U32 => Widened::Int(map::<u32, _>(t, i64::from)?),
        DType::U64 => Widened::Int(map::<u64, _>(t, |x: u64| i64::try_from(x).unwrap_or(i64::MAX))?),
        DType::Bool | crate::storage_only!() => return None,
    })
}

/// `base ^ exp` for integers, wrapping (square and multiply on the
/// exponent's bits, so any exponent costs at most 64 steps).
fn int_pow(base: i64, exp: i64) -> i64 {
    if exp < 0 {
        return match base {
            1 => 1,
            -1 if exp % 2 == 0 => 1,
            -1 => -1,
            _ => 0,
        };
    }
    let (mut result, mut base, mut exp) = (1i64, base, exp as u64);
    while exp > 0 {
        if exp & 1 == 1 {
            result = result.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exp >>= 1;
    }
    result
}

impl Op for Pow {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let (Some(a), Some(b)) = (inputs.first().and_then(|input| input.ty), inputs.get(1).and_then(|input| input.ty))
        else {
            return Vec::new();
        };
        let dims = match self.broadcasting {
            Broadcasting::Numpy => broadcast_dims(&[a.dims.as_deref(), b.dims.as_deref()]),
            Broadcasting::Off | Broadcasting::Legacy { .. } => a.dims.clone(),
        };
        vec![Some(ValueType { dtype: a.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "Pow";
        let x = required(inputs, 0, OP)?;
        let y = required(inputs, 1, OP)?;
        check_dtype(OP, x.dtype(), pow_base_dtypes(self.version))?;
        if self.version < 12 && x.dtype() != y.dtype() {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!(
                    "X is {} but Y is {}; before opset 12 both must have the same type",
                    x.dtype(),
                    y.dtype()
                ),
            });
        }
        check_dtype(OP, y.dtype(), pow_exponent_dtypes(self.version))?;
        let unsupported = |t: &Tensor| OpError::UnsupportedDtype { op: OP, dtype: t.dtype() };
        let (xw, yw) = (widen(&x).ok_or_else(|| unsupported(&x))?, widen(&y).ok_or_else(|| unsupported(&y))?);
        let out_dtype = x.dtype();
        let too_large = || mismatch(OP, x.shape(), y.shape(), BroadcastError::TooLarge);
        // The output as f64 (float X, or integer X with float Y) or i64.
        macro_rules! combine {
            ($a:expr, $b:expr, $f:expr) => {{
                let (a, b) = ($a, $b);
                let (b, shape) = place(OP, self.broadcasting, &a.view(), b.view())?;
                broadcast::checked_len(&shape).map_err(|_| too_large())?;
                let (Some(av), Some(bv)) = (a.broadcast(shape.clone()), b.broadcast(shape.clone())) else {
                    return Err(too_large());
                };
                ndarray::Zip::from(&av).and(&bv).map_collect($f)
            }};
        }
        let out: Result<ArrayD<f64>, ArrayD<i64>> = match (xw, yw) {
            (Widened::Float(a), Widened::Float(b)) => Ok(combine!(a, b, |&a: &f64, &b: &f64| a.powf(b))),
            (Widened::Float(a), Widened::Int(b)) => Ok(combine!(a, b, |&a: &f64, &b: &i64| a.powf(b as f64))),
            (Widened::Int(a), Widened::Float(b)) => Ok(combine!(a, b, |&a: &i64, &b: &f64| (a as f64).powf(b))),
            (Widened::Int(a), Widened::Int(b)) => Err(combine!(a, b, |&a: &i64, &b: &i64| int_pow(a, b))),
        };
        Ok(match out {
            // Rounded (or, for an integer X, converted) once, as Cast does.
            Ok(wide) => super::cast::cast(&f64::wrap(wide), out_dtype)?,
            // Wrapping narrowing: the i64 power modulo 2^32 is the i32 one.
            Err(wide) if out_dtype == DType::I32 => i32::wrap(wide.mapv(|v| v as i32)),
            Err(wide) => i64::wrap(wide),
        })
    }
}

/// PRelu's types at a version.
fn prelu_dtypes(version: i64) -> &'static [DType] {
    match version {
        16.. => &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U32, DType::U64],
        9..=15 => &[DType::F32, DType::F64, DType::F16, DType::I32, DType::I64, DType::U32, DType::U64],
        _ => &[DType::F32, DType::F64, DType::F16],
    }
}

/// PRelu: `X < 0 ? slope * X : X`, slope broadcast unidirectionally to X.
/// <https://onnx.ai/onnx/operators/onnx__PRelu.html>
///
/// Versions 1 (`consumed_inputs`), 6, 7 (unidirectional broadcasting
/// spelled out), 9 (adds int32, int64, uint32, uint64), 16 (adds
/// bfloat16). Versions 1 and 6 say nothing about the slope's shape; the
/// exporters of that time (PyTorch via Caffe2, whose PRelu ONNX Runtime
/// follows) meant a 1-D slope of C values on X `[N, C, …]` per channel
/// (along axis 1), so before opset 7 such a slope is applied that way;
/// every other slope (and every slope from 7) broadcasts unidirectionally.
/// float16/bfloat16 multiply in f32 and round once, as Mul; integers wrap;
/// unsigned X is never negative, so it passes unchanged.
#[derive(Debug)]
pub struct PRelu {
    dtypes: &'static [DType],
    /// Before opset 7: a 1-D slope of X's channel count runs per channel.
    per_channel_slope: bool,
}

impl PRelu {
    /// Reads `consumed_inputs` at opset 1.
    ///
    /// # Errors
    /// A wrongly typed attribute.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 6 {
            attrs.ints("consumed_inputs")?;
        }
        Ok(PRelu { dtypes: prelu_dtypes(version), per_channel_slope: version < 7 })
    }

    fn typed<T: Element + Default + Arithmetic + PartialOrd>(
        &self,
        x: &Tensor,
        slope: &Tensor,
    ) -> Result<Tensor, OpError> {
        const OP: &str = "PRelu";
        let wrong = |t: &Tensor| OpError::UnsupportedDtype { op: OP, dtype: t.dtype() };
        let (xv, mut sv) = (T::view(x).ok_or_else(|| wrong(x))?, T::view(slope).ok_or_else(|| wrong(slope))?);
        if self.per_channel_slope && sv.ndim() == 1 && xv.ndim() >= 2 && sv.len() == xv.shape()[1] {
            // [C] → [C, 1, …]: lined up with X's axis 1.
            while sv.ndim() + 1 < xv.ndim() {
                let last = Axis(sv.ndim());
                sv = sv.insert_axis(last);
            }
        }
        let fail = |why: &dyn fmt::Display| OpError::Invalid {
            op: OP,
            reason: format!("slope of shape {:?} does not broadcast to X of shape {:?}: {why}", sv.shape(), xv.shape()),
        };
        broadcast::unidirectional(xv.shape(), sv.shape()).map_err(|err| fail(&err))?;
        let sb = sv.broadcast(xv.raw_dim()).ok_or_else(|| fail(&"shapes do not meet"))?;
        let zero = T::default();
        let out = ndarray::Zip::from(&xv).and(&sb).map_collect(|&x, &s| if x < zero { s.mul(x) } else { x });
        Ok(T::wrap(out))
    }
}

impl Op for PRelu {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![inputs.first().and_then(|input| input.ty).cloned()]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "PRelu")?;
        let slope = required(inputs, 1, "PRelu")?;
        if x.dtype() != slope.dtype() {
            return Err(OpError::Invalid {
                op: "PRelu",
                reason: format!("X is {} but slope is {}; both must have the same type", x.dtype(), slope.dtype()),
            });
        }
        check_dtype("PRelu", x.dtype(), self.dtypes)?;
        match x.dtype() {
            DType::F32 => self.typed::<f32>(&x, &slope),
            DType::F64 => self.typed::<f64>(&x, &slope),
            DType::F16 => self.typed::<f16>(&x, &slope),
            DType::BF16 => self.typed::<bf16>(&x, &slope),
            DType::I32 => self.typed::<i32>(&x, &slope),
            DType::I64 => self.typed::<i64>(&x, &slope),
            DType::U32 => self.typed::<u32>(&x, &slope),
            DType::U64 => self.typed::<u64>(&x, &slope),
            dtype => Err(OpError::UnsupportedDtype { op: "PRelu", dtype }),
        }
    }
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};
    use ndarray::{ArrayD, Dimension, IxDyn};

    use super::*;
    use crate::kernels::Parallel;
    use crate::onnx::AttributeProto;
    use crate::onnx::attribute_proto::AttributeType;

    /// Runs `op` with every mix of lent and handed-over inputs and checks
    /// they all give the same bits (or the same error).
    fn run(op: &dyn Op, a: &Tensor, b: &Tensor, par: &Parallel) -> Result<Tensor, OpError> {
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        let mut results = Vec::new();
        fn cow(x: &Tensor, own: bool) -> Option<Cow<'_, Tensor>> {
            Some(if own { Cow::Owned(x.clone()) } else { Cow::Borrowed(x) })
        }
        for (own_a, own_b) in [(false, false), (true, false), (false, true), (true, true)] {
            results.push(op.run(&mut [cow(a, own_a), cow(b, own_b)], &ctx));
        }
        for other in &results[1..] {
            match (&results[0], other) {
                (Ok(x), Ok(y)) => {
                    assert_eq!(x.shape(), y.shape());
                    assert_eq!(x.to_le_bytes(), y.to_le_bytes(), "lent and owned paths differ");
                }
                (Err(x), Err(y)) => assert_eq!(x, y),
                (x, y) => panic!("{x:?} vs {y:?}"),
            }
        }
        results.swap_remove(0)
    }

    fn tensor(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
        fn build<T: Element>(shape: &[usize], values: &[f64], cast: impl Fn(f64) -> T) -> Tensor {
            T::wrap(ArrayD::from_shape_vec(IxDyn(shape), values.iter().map(|&v| cast(v)).collect()).unwrap())
        }
        match dtype {
            DType::F32 => build(shape, values, |v| v as f32),
            DType::F64 => build(shape, values, |v| v),
            DType::F16 => build(shape, values, f16::from_f64),
            DType::BF16 => build(shape, values, bf16::from_f64),
            DType::I8 => build(shape, values, |v| v as i8),
            DType::I16 => build(shape, values, |v| v as i16),
            DType::I32 => build(shape, values, |v| v as i32),
            DType::I64 => build(shape, values, |v| v as i64),
            // Unsigned: magnitudes (saturating), so every value is exact in f64.
            DType::U8 => build(shape, values, |v| v.abs() as u8),
            DType::U16 => build(shape, values, |v| v.abs() as u16),
            DType::U32 => build(shape, values, |v| v.abs() as u32),
            DType::U64 => build(shape, values, |v| v.abs() as u64),
            DType::Bool => build(shape, values, |v| v != 0.0),
            crate::storage_only!() => unreachable!("no arithmetic on {dtype}"),
        }
    }

    /// What each op computes, in f64 (floats) or i128 wrapped to the
    /// type's width (integers), rounded once to `dtype`: the correctly
    /// rounded result, which is what float32/16 must give bit for bit.
    fn expected(op: &str, dtype: DType, x: f64, y: f64) -> f64 {
        if dtype.is_float() {
            let exact = match op {
                "Add" => x + y,
                "Sub" => x - y,
                "Mul" => x * y,
                _ => x / y,
            };
            return match dtype {
                DType::F32 => f64::from(exact as f32),
                DType::F16 => f16::from_f64(exact).to_f64(),
                DType::BF16 => bf16::from_f64(exact).to_f64(),
                _ => exact,
            };
        }
        let (x, y) = (x as i128, y as i128);
        let wide = match op {
            "Add" => x + y,
            "Sub" => x - y,
            "Mul" => x * y,
            _ if y == 0 => 0,
            _ => x / y, // i128 division truncates toward zero
        };
        let bits = 8 * dtype.size() as u32;
        let unsigned = matches!(dtype, DType::U8 | DType::U16 | DType::U32 | DType::U64);
        if unsigned {
            (((wide as u128) << (128 - bits)) >> (128 - bits)) as f64
        } else {
            ((wide << (128 - bits)) >> (128 - bits)) as f64
        }
    }

    /// Element `idx` of a row-major `shape` broadcast to the output index.
    fn pick(values: &[f64], shape: &[usize], out_idx: &[usize]) -> f64 {
        let skip = out_idx.len() - shape.len();
        let mut flat = 0;
        for (axis, &extent) in shape.iter().enumerate() {
            flat = flat * extent + if extent == 1 { 0 } else { out_idx[skip + axis] };
        }
        values[flat]
    }

    fn float_values(len: usize, seed: usize) -> Vec<f64> {
        const SPECIAL: [f64; 13] =
            [1.5, -2.0, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 3.25, 1e-3, 7.0, -0.5, 0.1, 100.0];
        (0..len).map(|i| SPECIAL[(i * 7 + seed) % SPECIAL.len()] * if i % 5 == 4 { 3.0 } else { 1.0 }).collect()
    }

    fn int_values(len: usize, seed: usize) -> Vec<f64> {
        const INTS: [f64; 11] = [0.0, 1.0, -1.0, 7.0, -7.0, 100.0, -128.0, 127.0, 2.0, -3.0, 1000.0];
        (0..len).map(|i| INTS[(i * 3 + seed) % INTS.len()]).collect()
    }

    const CASES: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[2, 3]),
        (&[2, 3], &[]),
        (&[], &[2, 3]),
        (&[], &[]),
        (&[2, 3], &[3]),
        (&[2, 3], &[2, 1]),
        (&[3, 1], &[1, 4]),
        (&[2, 3, 4], &[3, 1]),
        (&[1], &[4, 1, 2]),
        (&[0, 3], &[3]),
        (&[2, 0], &[]),
    ];

    fn ops(version: i64) -> [(&'static str, Box<dyn Op>); 4] {
        [
            ("Add", Box::new(Binary::<Add>::new(version, Broadcasting::Numpy))),
            ("Sub", Box::new(Binary::<Sub>::new(version, Broadcasting::Numpy))),
            ("Mul", Box::new(Binary::<Mul>::new(version, Broadcasting::Numpy))),
            ("Div", Box::new(Binary::<Div>::new(version, Broadcasting::Numpy))),
        ]
    }

    fn same(got: f64, want: f64) -> bool {
        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
    }

    #[test]
    fn every_op_dtype_and_pattern_matches_the_reference_exactly() {
        let par = Parallel::serial();
        for (name, op) in ops(14) {
            for &dtype in arith_dtypes(14) {
                for (seed, (sa, sb)) in CASES.iter().enumerate() {
                    let values = if dtype.is_float() { float_values } else { int_values };
                    let va = values(sa.iter().product(), seed);
                    let vb = values(sb.iter().product(), seed + 3);
                    let (a, b) = (tensor(dtype, sa, &va), tensor(dtype, sb, &vb));
                    // Read the inputs back: the casts above may have rounded.
                    let (va, vb) = (a.to_f64_vec(), b.to_f64_vec());
                    let out = run(op.as_ref(), &a, &b, &par).unwrap();
                    let shape = broadcast::multidirectional(&[sa, sb]).unwrap();
                    assert_eq!(out.shape(), shape.as_slice());
                    assert_eq!(out.dtype(), dtype);
                    let got = out.to_f64_vec();
                    for (flat, idx) in ndarray::indices(IxDyn(&shape)).into_iter().enumerate() {
                        let (x, y) = (pick(&va, sa, idx.slice()), pick(&vb, sb, idx.slice()));
                        let want = expected(name, dtype, x, y);
                        assert!(
                            same(got[flat], want),
                            "{name} {dtype} {sa:?} {sb:?} at {idx:?}: {x} and {y} gave {}, want {want}",
                            got[flat]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn integers_wrap_truncate_and_divide_by_zero_to_zero() {
        let par = Parallel::serial();
        let i8s = |v: &[i8]| Tensor::from(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap());
        let add = Binary::<Add>::new(14, Broadcasting::Numpy);
        let div = Binary::<Div>::new(14, Broadcasting::Numpy);
        let mul = Binary::<Mul>::new(14, Broadcasting::Numpy);
        let out = run(&add, &i8s(&[127, -128, 5]), &i8s(&[1, -1, 5]), &par).unwrap();
        assert_eq!(out, i8s(&[-128, 127, 10]));
        let out = run(&div, &i8s(&[-7, 7, -128, 9, 0, -5]), &i8s(&[2, -2, -1, 0, 0, 0]), &par).unwrap();
        assert_eq!(out, i8s(&[-3, -3, -128, 0, 0, 0]));
        let out = run(&mul, &i8s(&[64, -128]), &i8s(&[2, -1]), &par).unwrap();
        assert_eq!(out, i8s(&[-128, -128]));
        let i64s = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2]), vec![i64::MAX, i64::MIN]).unwrap());
        let out = run(&add, &i64s, &Tensor::from(ArrayD::from_elem(IxDyn(&[]), 1i64)), &par).unwrap();
        assert_eq!(out.into_array::<i64>().unwrap().into_raw_vec_and_offset().0, vec![i64::MIN, i64::MIN + 1]);
    }

    #[test]
    fn transposed_inputs_and_thread_counts_give_the_same_bits() {
        let a: Vec<f32> = (0..301 * 200).map(|i| (i % 97) as f32 * 0.37 - 11.0).collect();
        let a = ArrayD::from_shape_vec(IxDyn(&[301, 200]), a).unwrap();
        let b = ArrayD::from_shape_vec(IxDyn(&[200, 1]), (0..200).map(|i| i as f32 * 0.11 + 0.5).collect()).unwrap();
        let a_t = Tensor::from(a.clone().reversed_axes()); // [200, 301], not row-major
        let b = Tensor::from(b);
        let want: Vec<f32> = {
            let b = b.as_f32().unwrap();
            ndarray::indices(IxDyn(&[200, 301])).into_iter().map(|idx| a[[idx[1], idx[0]]] / b[[idx[0], 0]]).collect()
        };
        let div = Binary::<Div>::new(14, Broadcasting::Numpy);
        for n_threads in [1, 2, 8] {
            let par = Parallel::with_threads(n_threads).unwrap();
            let out = run(&div, &a_t, &b, &par).unwrap();
            let got: Vec<u32> = out.as_f32().unwrap().iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{n_threads} threads");
        }
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_op_and_shapes() {
        let par = Parallel::serial();
        let add = Binary::<Add>::new(14, Broadcasting::Numpy);
        let a = tensor(DType::F32, &[2, 3], &[0.0; 6]);
        let err = run(&add, &a, &tensor(DType::F32, &[4], &[0.0; 4]), &par).unwrap_err().to_string();
        assert!(err.starts_with("Add: ") && err.contains("[2, 3]") && err.contains("[4]"), "{err}");
        let err = run(&add, &a, &tensor(DType::F64, &[3], &[0.0; 3]), &par).unwrap_err().to_string();
        assert!(err.contains("float32") && err.contains("float64"), "{err}");
        // int8 arrived at opset 14, bfloat16 at 13.
        let i8_at_13 = Binary::<Add>::new(13, Broadcasting::Numpy);
        let x = tensor(DType::I8, &[1], &[1.0]);
        assert_eq!(run(&i8_at_13, &x, &x, &par), Err(OpError::UnsupportedDtype { op: "Add", dtype: DType::I8 }));
        let bf16_at_7 = Binary::<Mul>::new(7, Broadcasting::Numpy);
        let x = tensor(DType::BF16, &[1], &[1.0]);
        assert_eq!(run(&bf16_at_7, &x, &x, &par), Err(OpError::UnsupportedDtype { op: "Mul", dtype: DType::BF16 }));
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        assert_eq!(
            add.run(&mut [Some(Cow::Borrowed(&a)), None], &ctx),
            Err(OpError::MissingInput { op: "Add", index: 1 })
        );
    }

    #[test]
    fn a_handed_over_input_that_is_still_shared_is_left_alone() {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let sub = Binary::<Sub>::new(14, Broadcasting::Numpy);
        let full = tensor(DType::F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let row = tensor(DType::F32, &[3], &[1.0, 1.0, 2.0]);
        // Handed over but shared with `full`: the output is a new buffer.
        let out = sub.run(&mut [Some(Cow::Owned(full.clone())), Some(Cow::Borrowed(&row))], &ctx).unwrap();
        assert!(!out.shares_data(&full));
        assert_eq!(full.to_f64_vec(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(out.to_f64_vec(), [0.0, 1.0, 1.0, 3.0, 4.0, 4.0]);
    }

    #[test]
    fn a_handed_over_input_of_the_output_shape_is_written_in_place() {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let sub = Binary::<Sub>::new(14, Broadcasting::Numpy);
        let ptr = |x: &Tensor| f32::view(x).unwrap().as_ptr();
        let full = tensor(DType::F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let row = tensor(DType::F32, &[3], &[1.0, 1.0, 2.0]);
        let want = vec![0.0, 1.0, 1.0, 3.0, 4.0, 4.0];
        // A handed over: its buffer becomes the output.
        let a = full.deep_copy();
        let before = ptr(&a);
        let out = sub.run(&mut [Some(Cow::Owned(a)), Some(Cow::Borrowed(&row))], &ctx).unwrap();
        assert_eq!((ptr(&out), out.to_f64_vec()), (before, want.clone()));
        // B handed over with the output's shape: B's buffer, operands kept in order.
        let b = full.deep_copy();
        let before = ptr(&b);
        let out = sub.run(&mut [Some(Cow::Borrowed(&row)), Some(Cow::Owned(b))], &ctx).unwrap();
        assert_eq!((ptr(&out), out.to_f64_vec()), (before, want.iter().map(|v| -v).collect()));
        // A handed over but smaller than the output: a new buffer.
        let out = sub.run(&mut [Some(Cow::Owned(row.clone())), Some(Cow::Borrowed(&full))], &ctx).unwrap();
        assert_eq!(out.shape(), &[2, 3]);
        // A transposed input is not row-major, so it is read, not reused.
        let t = Tensor::from(full.as_f32().unwrap().to_owned().reversed_axes());
        let before = ptr(&t);
        let col = tensor(DType::F32, &[3, 1], &[1.0, 2.0, 3.0]);
        let out = sub.run(&mut [Some(Cow::Owned(t)), Some(Cow::Borrowed(&col))], &ctx).unwrap();
        assert_ne!(ptr(&out), before);
        assert_eq!(out.to_f64_vec(), vec![0.0, 3.0, 0.0, 3.0, 0.0, 3.0]);
    }

    fn attr_i(name: &str, value: i64) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(value),
            ..Default::default()
        }
    }

    fn legacy(version: i64, attributes: &[AttributeProto]) -> Result<Binary<Sub>, LoadError> {
        let mut attrs = Attrs::new("n", "Sub", attributes, 1 << 20);
        let op = Binary::<Sub>::from_node(&mut attrs, version)?;
        attrs.finish()?;
        Ok(op)
    }

    #[test]
    fn legacy_broadcast_aligns_b_at_axis_or_suffix() {
        let par = Parallel::serial();
        let a_shape = [2, 3, 4, 5];
        let va: Vec<f64> = (0..120).map(f64::from).collect();
        let a = tensor(DType::F32, &a_shape, &va);
        let on = |axis: Option<i64>| {
            let mut attributes = vec![attr_i("broadcast", 1)];
            attributes.extend(axis.map(|axis| attr_i("axis", axis)));
            legacy(6, &attributes).unwrap()
        };
        // (B's shape, axis, B's axes in A)
        let cases: &[(&[usize], Option<i64>, usize)] =
            &[(&[5], None, 3), (&[4, 5], None, 2), (&[3, 4], Some(1), 1), (&[2], Some(0), 0), (&[2, 3, 4, 5], None, 0)];
        for &(b_shape, axis, start) in cases {
            let vb: Vec<f64> = (0..b_shape.iter().product::<usize>()).map(|i| i as f64 * 1000.0).collect();
            let out = run(&on(axis), &a, &tensor(DType::F32, b_shape, &vb), &par).unwrap();
            assert_eq!(out.shape(), &a_shape);
            let got = out.to_f64_vec();
            for (flat, idx) in ndarray::indices(IxDyn(&a_shape)).into_iter().enumerate() {
                let b_flat = idx.slice()[start..start + b_shape.len()]
                    .iter()
                    .zip(b_shape)
                    .fold(0, |acc, (&i, &extent)| acc * extent + i);
                assert_eq!(got[flat], va[flat] - vb[b_flat], "B {b_shape:?} axis {axis:?} at {idx:?}");
            }
        }
        // One element broadcasts whatever its rank, also to a scalar A.
        for b_shape in [&[][..], &[1], &[1, 1]] {
            let out = run(&on(None), &a, &tensor(DType::F32, b_shape, &[1.0]), &par).unwrap();
            assert_eq!(out.to_f64_vec(), va.iter().map(|v| v - 1.0).collect::<Vec<_>>());
        }
        let scalar = tensor(DType::F32, &[], &[10.0]);
        assert_eq!(run(&on(None), &scalar, &tensor(DType::F32, &[1, 1], &[1.0]), &par).unwrap(), scalar_of(9.0));
        // Size-1 extents of B repeat along A's axis (PyTorch's opset-6
        // exports: A [2, 3] + B [2, 1] or [1, 3] at axis 0).
        let size1: &[(&[usize], Option<i64>, usize)] =
            &[(&[3, 1], Some(1), 1), (&[1, 4], Some(1), 1), (&[2, 1, 4, 1], Some(0), 0), (&[1, 5], None, 2)];
        for &(b_shape, axis, start) in size1 {
            let vb: Vec<f64> = (0..b_shape.iter().product::<usize>()).map(|i| i as f64 * 1000.0 + 7.0).collect();
            let out = run(&on(axis), &a, &tensor(DType::F32, b_shape, &vb), &par).unwrap();
            assert_eq!(out.shape(), &a_shape);
            let got = out.to_f64_vec();
            for (flat, idx) in ndarray::indices(IxDyn(&a_shape)).into_iter().enumerate() {
                let b_flat = idx.slice()[start..start + b_shape.len()]
                    .iter()
                    .zip(b_shape)
                    .fold(0, |acc, (&i, &extent)| acc * extent + if extent == 1 { 0 } else { i });
                assert_eq!(got[flat], va[flat] - vb[b_flat], "B {b_shape:?} axis {axis:?} at {idx:?}");
            }
        }
        // What broadcast=1 does not allow: misplaced B, an extent neither
        // A's nor 1, more axes than A has from `axis` on.
        for (b_shape, axis) in
            [(&[4][..], None), (&[3, 4], None), (&[4, 5], Some(1)), (&[3, 2], Some(1)), (&[4, 5, 1], Some(2))]
        {
            let b = tensor(DType::F32, b_shape, &vec![0.0; b_shape.iter().product()]);
            let err = run(&on(axis), &a, &b, &par).unwrap_err().to_string();
            assert!(err.contains("broadcast=1") && err.contains(&format!("{b_shape:?}")), "{err}");
        }
        let err = run(&on(Some(4)), &a, &tensor(DType::F32, &[5], &[0.0; 5]), &par).unwrap_err();
        assert!(matches!(err, OpError::AxisOutOfRange { op: "Sub", axis: 4, rank: 4 }), "{err}");
    }

    fn scalar_of(value: f32) -> Tensor {
        Tensor::from(ArrayD::from_elem(IxDyn(&[]), value))
    }

    #[test]
    fn before_opset_7_shapes_must_match_without_broadcast_1() {
        let par = Parallel::serial();
        let a = tensor(DType::F32, &[2, 3], &[1.0; 6]);
        for attributes in [vec![], vec![attr_i("broadcast", 0)], vec![attr_i("broadcast", 0), attr_i("axis", 1)]] {
            let op = legacy(6, &attributes).unwrap();
            assert_eq!(op.broadcasting, Broadcasting::Off);
            assert_eq!(run(&op, &a, &a, &par).unwrap().to_f64_vec(), vec![0.0; 6]);
            let err = run(&op, &a, &tensor(DType::F32, &[3], &[1.0; 3]), &par).unwrap_err().to_string();
            assert!(err.contains("must be equal") && err.contains("[2, 3]") && err.contains("[3]"), "{err}");
        }
        assert!(legacy(6, &[attr_i("broadcast", 2)]).is_err());
        // consumed_inputs exists only in opset 1, and numpy rules from 7 on.
        let consumed = AttributeProto {
            name: Some("consumed_inputs".into()),
            r#type: Some(AttributeType::Ints as i32),
            ints: vec![0, 0],
            ..Default::default()
        };
        assert!(legacy(1, std::slice::from_ref(&consumed)).is_ok());
        assert!(matches!(legacy(6, std::slice::from_ref(&consumed)), Err(LoadError::UnexpectedAttribute { .. })));
        assert!(matches!(legacy(7, &[attr_i("broadcast", 1)]), Err(LoadError::UnexpectedAttribute { .. })));
        assert_eq!(legacy(7, &[]).unwrap().broadcasting, Broadcasting::Numpy);
        assert_eq!(legacy(1, &[]).unwrap().dtypes, &[DType::F32, DType::F64, DType::F16]);
    }

    #[test]
    fn registry_lists_the_four_ops_with_their_versions() {
        let registry = Registry::builtin();
        for name in ["Add", "Sub", "Mul", "Div"] {
            let entry = registry.find("", name).unwrap();
            assert_eq!(entry.versions, &[1, 6, 7, 13, 14]);
            assert_eq!(entry.resolve(12), Some(7));
            assert!((entry.dtypes)(14).contains(&DType::I8));
        }
    }
}

#[cfg(test)]
mod pow_prelu_tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn};

    use super::*;
    use crate::kernels::Parallel;

    fn run(version: i64, x: Tensor, y: Tensor) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let op = Pow { version, broadcasting: if version >= 7 { Broadcasting::Numpy } else { Broadcasting::Off } };
        op.run(&mut [Some(Cow::Owned(x)), Some(Cow::Owned(y))], &ctx)
    }

    fn t<T: Element>(shape: &[usize], values: Vec<T>) -> Tensor {
        T::wrap(ArrayD::from_shape_vec(IxDyn(shape), values).unwrap())
    }

    fn vals<T: Element>(x: &Tensor) -> Vec<T> {
        T::view(x).unwrap().iter().copied().collect()
    }

    /// Float X: f64 powf rounded once to f32, checked bit for bit, with
    /// broadcasting ([2, 1] ^ [3]), NaN, 0^0 and a negative base with an
    /// integer and a fractional exponent.
    #[test]
    fn float_base_is_powf_rounded_once() {
        let xs = [2.0f32, -3.0];
        let ys = [0.5f32, 3.0, f32::NAN];
        let out = run(13, t(&[2, 1], xs.to_vec()), t(&[3], ys.to_vec())).unwrap();
        assert_eq!(out.shape(), [2, 3]);
        let expected: Vec<u32> = xs
            .iter()
            .flat_map(|&x| ys.iter().map(move |&y| (f64::from(x).powf(f64::from(y)) as f32).to_bits()))
            .collect();
        assert_eq!(vals::<f32>(&out).iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expected);
        assert!(vals::<f32>(&out)[3].is_nan()); // (-3)^0.5
        assert_eq!(vals::<f32>(&run(13, t(&[1], vec![0.0f32]), t(&[1], vec![0.0f32])).unwrap()), [1.0]);
        // A float X with an integer Y (opset 12 on).
        assert_eq!(vals::<f32>(&run(12, t(&[2], vec![2.0f32, -2.0]), t(&[2], vec![-1i64, 3])).unwrap()), [0.5, -8.0]);
    }

    #[test]
    fn integer_base_wraps_and_truncates() {
        assert_eq!(
            vals::<i32>(&run(12, t(&[3], vec![2i32, -3, 7]), t(&[3], vec![31i32, 3, 0])).unwrap()),
            [i32::MIN, -27, 1]
        );
        // Wraps like i64 arithmetic: 3^41 mod 2^64.
        assert_eq!(vals::<i64>(&run(12, t(&[1], vec![3i64]), t(&[1], vec![41i64])).unwrap()), [3i64.wrapping_pow(41)]);
        // Negative exponents: truncated 1 / X^-Y.
        assert_eq!(
            vals::<i64>(&run(12, t(&[4], vec![1i64, -1, -1, 5]), t(&[4], vec![-3i64, -3, -2, -1])).unwrap()),
            [1, -1, 1, 0]
        );
        // A float exponent: powf then truncated to the integer type.
        assert_eq!(vals::<i32>(&run(12, t(&[2], vec![2i32, 10]), t(&[2], vec![0.5f32, 2.0])).unwrap()), [1, 100]);
        assert_eq!(int_pow(-2, 63), i64::MIN);
        assert_eq!(int_pow(0, 0), 1);
    }

    #[test]
    fn types_per_version_and_errors_name_the_op() {
        // Before 12 Y must be X's type, and integers are refused.
        let err = run(7, t(&[1], vec![2.0f32]), t(&[1], vec![2i64])).unwrap_err();
        assert!(err.to_string().contains("Pow") && err.to_string().contains("opset 12"), "{err}");
        assert!(run(7, t(&[1], vec![2i32]), t(&[1], vec![2i32])).unwrap_err().to_string().contains("Pow"));
        // bfloat16 X from 13, bfloat16 Y from 15.
        assert!(!pow_base_dtypes(12).contains(&DType::BF16) && pow_base_dtypes(13).contains(&DType::BF16));
        assert!(!pow_exponent_dtypes(13).contains(&DType::BF16) && pow_exponent_dtypes(15).contains(&DType::BF16));
        let err = run(13, t(&[2], vec![2.0f32, 1.0]), t(&[3], vec![1.0f32; 3])).unwrap_err();
        assert!(err.to_string().contains("Pow"), "{err}");
        let err = run(13, t(&[1], vec![2.0f32]), t(&[1], vec![true])).unwrap_err();
        assert!(err.to_string().contains("Pow"), "{err}");
        // Empty.
        assert_eq!(run(13, t(&[0, 2], Vec::<f64>::new()), t(&[2], vec![1.0f64, 2.0])).unwrap().shape(), [0, 2]);
    }

    fn prelu(version: i64, x: Tensor, slope: Tensor) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        PRelu { dtypes: prelu_dtypes(version), per_channel_slope: version < 7 }
            .run(&mut [Some(Cow::Owned(x)), Some(Cow::Owned(slope))], &ctx)
    }

    /// PRelu with a per-channel slope [3, 1, 1] on X [1, 3, 1, 2] (the
    /// unidirectional pattern PyTorch exports), against the formula by hand;
    /// NaN, -0, integers and the errors.
    #[test]
    fn prelu_broadcasts_the_slope_to_x() {
        let x = t(&[1, 3, 1, 2], vec![-1.0f32, 2.0, -3.0, 0.0, f32::NAN, -0.0]);
        let slope = t(&[3, 1, 1], vec![0.5f32, 2.0, -1.0]);
        let out = vals::<f32>(&prelu(16, x, slope).unwrap());
        assert_eq!(&out[..4], [-0.5, 2.0, -6.0, 0.0]);
        assert!(out[4].is_nan());
        assert_eq!(out[5].to_bits(), (-0.0f32).to_bits()); // -0 is not < 0
        assert_eq!(
            vals::<i32>(&prelu(9, t(&[3], vec![-4i32, 5, i32::MIN]), t(&[1], vec![3i32])).unwrap()),
            [-12, 5, i32::MIN.wrapping_mul(3)]
        );
        // Integers only from 9; the slope must broadcast to X, not the reverse.
        assert!(prelu(7, t(&[1], vec![1i32]), t(&[1], vec![1i32])).unwrap_err().to_string().contains("PRelu"));
        let err = prelu(16, t(&[2], vec![1.0f32, 2.0]), t(&[2, 2], vec![1.0f32; 4])).unwrap_err();
        assert!(err.to_string().contains("PRelu") && err.to_string().contains("[2, 2]"), "{err}");
        assert!(prelu(16, t(&[1], vec![1.0f32]), t(&[1], vec![1.0f64])).unwrap_err().to_string().contains("PRelu"));
        assert_eq!(prelu(16, t(&[0, 3], Vec::<f32>::new()), t(&[3], vec![1.0f32; 3])).unwrap().shape(), [0, 3]);
    }

    /// Before opset 7 a slope [C] on X [N, C, …] runs per channel (axis 1),
    /// as PyTorch's opset-6 exports expect; from 7 it broadcasts against
    /// the last axis.
    #[test]
    fn prelu_before_opset_7_applies_a_c_slope_per_channel() {
        let x: Vec<f32> = (0..12).map(|v| v as f32 - 8.0).collect();
        let slope = vec![0.5f32, -2.0, 3.0];
        // X [2, 3, 2]: x[n, c, i] < 0 takes slope[c].
        let want: Vec<f32> =
            x.iter().enumerate().map(|(idx, &v)| if v < 0.0 { v * slope[idx / 2 % 3] } else { v }).collect();
        for version in [1, 6] {
            let out = prelu(version, t(&[2, 3, 2], x.clone()), t(&[3], slope.clone())).unwrap();
            assert_eq!(vals::<f32>(&out), want, "opset {version}");
        }
        assert!(prelu(7, t(&[2, 3, 2], x.clone()), t(&[3], slope.clone())).is_err());
        // X [4, 3]: axis 1 is the last axis; the same either way.
        let want: Vec<f32> =
            x.iter().enumerate().map(|(idx, &v)| if v < 0.0 { v * slope[idx % 3] } else { v }).collect();
        for version in [6, 7] {
            assert_eq!(vals::<f32>(&prelu(version, t(&[4, 3], x.clone()), t(&[3], slope.clone())).unwrap()), want);
        }
        // X [2, 2, 3, 1] with slope [2]: per channel at 6 (C = 2); at 7 it
        // would need the last axis to be 2.
        let slope = vec![0.25f32, 4.0];
        let want: Vec<f32> =
            x.iter().enumerate().map(|(idx, &v)| if v < 0.0 { v * slope[idx / 3 % 2] } else { v }).collect();
        assert_eq!(vals::<f32>(&prelu(6, t(&[2, 2, 3, 1], x.clone()), t(&[2], slope.clone())).unwrap()), want);
        // X [3, 2, 2]: axis 1 and the last axis both have 2 elements; before 7 axis 1 wins.
        let want6: Vec<f32> =
            x.iter().enumerate().map(|(idx, &v)| if v < 0.0 { v * slope[idx / 2 % 2] } else { v }).collect();
        let want7: Vec<f32> =
            x.iter().enumerate().map(|(idx, &v)| if v < 0.0 { v * slope[idx % 2] } else { v }).collect();
        assert_eq!(vals::<f32>(&prelu(6, t(&[3, 2, 2], x.clone()), t(&[2], slope.clone())).unwrap()), want6);
        assert_eq!(vals::<f32>(&prelu(7, t(&[3, 2, 2], x.clone()), t(&[2], slope.clone())).unwrap()), want7);
    }
}
