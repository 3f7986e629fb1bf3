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
//! | 1     | float16/32/64; B broadcasts only with `broadcast=1`, aligned at `axis` (default: suffix); `consumed_inputs` (an in-place hint, no effect) |
//! | 6     | `consumed_inputs` dropped; adds int32, int64 (and uint32, uint64) |
//! | 7     | numpy (multidirectional) broadcasting; `broadcast`/`axis` dropped |
//! | 13    | adds bfloat16                                                    |
//! | 14    | adds int8, int16 (and uint8, uint16)                             |
//!
//! Unsigned types are in the schemas but not yet in [`DType`]; they go in
//! [`arith_dtypes`] and [`run_typed`]'s dispatch when it has them.
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

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use half::{bf16, f16};
use ndarray::{ArrayViewD, Axis};

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::attrs::Attrs;
use crate::error::{LoadError, OpError};
use crate::kernels::broadcast::{self, Arithmetic, BroadcastError};
use crate::tensor::{DType, Element, Tensor};

/// Registers Add, Sub, Mul and Div.
pub fn register(reg: &mut Registry) {
    reg.add("", Add::NAME, Add::VERSIONS, Add::dtypes, Binary::<Add>::from_node);
    reg.add("", Sub::NAME, Sub::VERSIONS, Sub::dtypes, Binary::<Sub>::from_node);
    reg.add("", Mul::NAME, Mul::VERSIONS, Mul::dtypes, Binary::<Mul>::from_node);
    reg.add("", Div::NAME, Div::VERSIONS, Div::dtypes, Binary::<Div>::from_node);
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

const ARITH_1: &[DType] = &[DType::F32, DType::F64, DType::F16];
const ARITH_6: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::I32, DType::I64];
const ARITH_13: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64];
const ARITH_14: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I8, DType::I16, DType::I32, DType::I64];

/// Element types of Add, Sub, Mul and Div at a version. (The schemas also
/// list uint32/uint64 from 6 and uint8/uint16 from 14; they join these
/// tables when [`DType`] has them.)
pub fn arith_dtypes(version: i64) -> &'static [DType] {
    match version {
        14.. => ARITH_14,
        13 => ARITH_13,
        6..=12 => ARITH_6,
        _ => ARITH_1,
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
    /// shape is A's axes from `axis` on (default: A's last axes); the
    /// output has A's shape.
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
        if version >= 7 {
            return Ok(Self::new(version, Broadcasting::Numpy));
        }
        if version < 6 {
            attrs.ints("consumed_inputs")?;
        }
        let axis = attrs.i64("axis")?;
        let broadcasting = match attrs.i64("broadcast")?.unwrap_or(0) {
            // `axis` only places B when broadcasting; read so that it is
            // accepted, as the schema allows it either way.
            0 => Broadcasting::Off,
            1 => Broadcasting::Legacy { axis },
            other => return Err(attrs.error("broadcast", format!("must be 0 or 1, got {other}"))),
        };
        Ok(Self::new(version, broadcasting))
    }

    fn mismatch(&self, a: &[usize], b: &[usize], why: impl fmt::Display) -> OpError {
        OpError::Invalid {
            op: O::NAME,
            reason: format!("cannot broadcast A of shape {a:?} with B of shape {b:?}: {why}"),
        }
    }

    /// B's view placed for the kernel, and the output shape.
    fn shapes<'v, T>(
        &self,
        a: &ArrayViewD<'_, T>,
        b: ArrayViewD<'v, T>,
    ) -> Result<(ArrayViewD<'v, T>, Vec<usize>), OpError> {
        let (a_shape, b_shape) = (a.shape(), b.shape());
        let fail = |why: &dyn fmt::Display| self.mismatch(a_shape, b_shape, why);
        match self.broadcasting {
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
                        let axis = super::normalize_axis(O::NAME, axis, rank_a.max(1))?;
                        Some(axis)
                    }
                };
                let fits = start.filter(|&start| a_shape.get(start..start + rank_b) == Some(b_shape));
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
        // shape (and, being the same op type, its dtype) and is row-major.
        let a = match a {
            Cow::Owned(tensor) if tensor.shape() == out_shape.as_slice() => match T::unwrap(tensor) {
                Ok(mut array) if array.is_standard_layout() => {
                    let bv = T::view(&b).ok_or_else(|| wrong(&b))?;
                    let (bv, _) = self.shapes(&array.view(), bv)?;
                    let dst = array.as_slice_mut().ok_or(kernel_err(BroadcastError::BadOutput))?;
                    broadcast::binary_inplace(dst, &out_shape, &bv, O::apply::<T>, ctx.par).map_err(kernel_err)?;
                    return Ok(T::wrap(array));
                }
                Ok(array) => Cow::Owned(T::wrap(array)),
                Err(tensor) => Cow::Owned(tensor),
            },
            other => other,
        };
        let av = T::view(&a).ok_or_else(|| wrong(&a))?;
        match b {
            // B already has the output's shape, so it needs no placing.
            Cow::Owned(tensor) if tensor.shape() == out_shape.as_slice() => {
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

impl<O: ArithOp> Op for Binary<O> {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    // The catch-all arm is unreachable until DType gains the unsigned
    // types (and later ones); it then refuses them instead of failing to
    // compile.
    #[allow(unreachable_patterns)]
    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let a = required(inputs, 0, O::NAME)?;
        let b = required(inputs, 1, O::NAME)?;
        if a.dtype() != b.dtype() {
            return Err(OpError::Invalid {
                op: O::NAME,
                reason: format!("A is {} but B is {}; both must have the same type", a.dtype(), b.dtype()),
            });
        }
        check_dtype(O::NAME, a.dtype(), self.dtypes)?;
        // Unsigned types get their arms here when DType has them.
        match a.dtype() {
            DType::F32 => self.run_typed::<f32>(a, b, ctx),
            DType::F64 => self.run_typed::<f64>(a, b, ctx),
            DType::F16 => self.run_typed::<f16>(a, b, ctx),
            DType::BF16 => self.run_typed::<bf16>(a, b, ctx),
            DType::I8 => self.run_typed::<i8>(a, b, ctx),
            DType::I16 => self.run_typed::<i16>(a, b, ctx),
            DType::I32 => self.run_typed::<i32>(a, b, ctx),
            DType::I64 => self.run_typed::<i64>(a, b, ctx),
            dtype => Err(OpError::UnsupportedDtype { op: O::NAME, dtype }),
        }
    }
}
