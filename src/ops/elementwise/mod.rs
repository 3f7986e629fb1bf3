//! The machinery behind every elementwise operator (one input, one output
//! of the same shape and type, each element on its own), written once and
//! driven by one declaration per operator (`ElementwiseOp`, declared in
//! [`super::activation`]).
//!
//! From a declaration this module derives: the registry entry (versions,
//! dtypes per version, attribute reading, the legacy `consumed_inputs`
//! of opset 1), the dtype dispatch (float32 on the SIMD kernels, float64
//! and integers on the scalar body, float16 and bfloat16 through float32,
//! rounded once), in-place reuse of a uniquely owned input, the split
//! across threads, the fused-chain kernel, type inference, and the
//! [`Declared`] handles through which tests, the ULP sweep and the benches
//! iterate over every declared operator.

use std::borrow::Cow;
use std::fmt;

use half::{bf16, f16};
use ndarray::{ArrayBase, ArrayD, Data, IxDyn};
use num_traits::PrimInt;

use super::{ChainKernel, ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::kernels::Parallel;
use crate::kernels::simd::{Isa, VecF32};
use crate::kernels::unary::{self, Elementwise};
use crate::runtime::buffers::output_shared;
use crate::tensor::{DType, Element, SharedArray, Tensor};

/// One elementwise operator, declared once: everything the machinery of
/// this module needs to register, run, fuse, test and sweep it.
///
/// The value holds the operator's attributes (a unit struct when it has
/// none). float32 runs [`ElementwiseOp::simd`], float64 runs
/// [`ElementwiseOp::scalar`], integer dtypes (when the version lists
/// them) run [`ElementwiseOp::int`].
pub(crate) trait ElementwiseOp: Copy + Send + Sync + fmt::Debug + 'static {
    /// The ONNX `op_type` (default domain).
    const NAME: &'static str;
    /// Every `since_version` of the schema implemented, ascending.
    const VERSIONS: &'static [i64];
    /// Whether the opset-1 schema has the `consumed_inputs` attribute (an
    /// in-place hint without effect on results, dropped at opset 6): the
    /// machinery reads it so that it is accepted, and ignores it.
    const CONSUMED_INPUTS_AT_1: bool = true;
    /// Whether the float32 loop prefetches (see `kernels::math::map`):
    /// worth it for long per-element work (exp), not for a compare.
    const PREFETCH: bool = false;
    /// The largest float32 error against [`ElementwiseOp::reference`]
    /// rounded to float32, in ULP, over all 2^32 inputs on every SIMD path,
    /// with the default attributes (0: bit for bit, NaN for NaN). The
    /// README's accuracy table states it and `tests/accuracy.rs` checks it.
    const MAX_ULP: u64;
    /// Whether the function is monotone (the sweep then checks that the
    /// kernel is too, and stays within the range of the reference's
    /// values at ±inf). Gelu and Swish, with their dip below 0, are not.
    const MONOTONE: bool = true;

    /// The element types accepted at schema version `version`.
    fn dtypes(version: i64) -> &'static [DType];

    /// Reads the attributes (with their ONNX defaults) at `version`.
    ///
    /// # Errors
    /// An attribute of the wrong type or an unusable value.
    fn from_attrs(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError>;

    /// The float64 reference the tests and the sweep measure against,
    /// written from the spec independently of the kernels.
    fn reference(self, x: f64) -> f64;

    /// The function on one float64 value (float64 tensors). By default the
    /// reference, for operators whose reference is already the best
    /// float64 body; an operator overrides it where the two differ.
    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    /// The function on one vector of float32 lanes; must be
    /// `#[inline(always)]` so that it compiles into each instruction set's
    /// loop.
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V;

    /// The function on one integer, for an operator whose versions accept
    /// integer dtypes; `None` (the default) otherwise.
    fn int<T: Int>(self, x: T) -> Option<T> {
        let _ = x;
        None
    }

    /// Attribute settings besides the defaults that the accuracy test,
    /// the ULP sweep and the README's table also cover, each within
    /// [`ElementwiseOp::MAX_ULP`] (e.g. Gelu's tanh form). None by default.
    fn variants() -> Vec<Self> {
        Vec::new()
    }

    /// The operator's name with what sets this setting apart from the
    /// defaults, for reports (`Gelu (approximate = tanh)`); the bare name
    /// by default.
    fn label(self) -> String {
        Self::NAME.to_owned()
    }
}

/// The integer element types an elementwise operator may accept (signed
/// and unsigned), with the few operations the integer bodies need beyond
/// [`PrimInt`].
pub(crate) trait Int: PrimInt + Element + Default + Send + Sync {
    /// `-x`, wrapping (`-MIN` is `MIN`, as in PyTorch; `0 - x` wrapped for
    /// unsigned types).
    fn wrapping_neg(self) -> Self;
    /// `|x|`, wrapping (`|MIN|` is `MIN`, as in PyTorch; `x` itself for
    /// unsigned types).
    fn wrapping_abs(self) -> Self;
    /// The value as float64 (rounded above 2^53).
    fn to_f64_lossy(self) -> f64;
    /// `v` truncated toward zero and saturated to the type's range (NaN
    /// gives 0): C++'s `static_cast` where it is defined, Rust's `as`.
    fn from_f64_saturating(v: f64) -> Self;
}

macro_rules! int_signed {
    ($($ty:ty),*) => {$(
        impl Int for $ty {
            fn wrapping_neg(self) -> Self {
                <$ty>::wrapping_neg(self)
            }
            fn wrapping_abs(self) -> Self {
                <$ty>::wrapping_abs(self)
            }
            fn to_f64_lossy(self) -> f64 {
                self as f64
            }
            fn from_f64_saturating(v: f64) -> Self {
                v as $ty
            }
        }
    )*};
}

macro_rules! int_unsigned {
    ($($ty:ty),*) => {$(
        impl Int for $ty {
            fn wrapping_neg(self) -> Self {
                <$ty>::wrapping_neg(self)
            }
            fn wrapping_abs(self) -> Self {
                self
            }
            fn to_f64_lossy(self) -> f64 {
                self as f64
            }
            fn from_f64_saturating(v: f64) -> Self {
                v as $ty
            }
        }
    )*};
}

int_signed!(i8, i16, i32, i64);
int_unsigned!(u8, u16, u32, u64);

/// [`FLOATS`] before version `since`, [`FLOATS_BF16`] from it on: the
/// usual way a schema gained bfloat16.
pub(crate) fn floats_bf16_from(since: i64, version: i64) -> &'static [DType] {
    if version >= since { FLOATS_BF16 } else { FLOATS }
}

/// Something done once per declared operator (see
/// `activation::each_declared`): registering, listing.
pub(crate) trait Visit {
    /// Called once for each declared operator type.
    fn visit<D: ElementwiseOp>(&mut self);
}

/// Registers every declared operator.
pub(crate) struct Register<'r>(pub(crate) &'r mut Registry);

impl Visit for Register<'_> {
    fn visit<D: ElementwiseOp>(&mut self) {
        self.0.add("", D::NAME, D::VERSIONS, D::dtypes, ElementwiseNode::<D>::from_node);
    }
}

/// A node of a declared elementwise operator, configured at load.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ElementwiseNode<D> {
    decl: D,
    dtypes: &'static [DType],
}

impl<D: ElementwiseOp> ElementwiseNode<D> {
    /// Reads the node's attributes at `version`, the legacy
    /// `consumed_inputs` of opset 1 included.
    fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if D::CONSUMED_INPUTS_AT_1 && version < 6 {
            attrs.ints("consumed_inputs")?;
        }
        Ok(ElementwiseNode { decl: D::from_attrs(attrs, version)?, dtypes: D::dtypes(version) })
    }
}

impl<D: ElementwiseOp> Op for ElementwiseNode<D> {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        match inputs.first().and_then(|input| input.ty) {
            Some(ty) => check_dtype(D::NAME, ty.dtype, self.dtypes),
            None => Ok(()),
        }
    }

    fn chains(&self) -> bool {
        true
    }

    fn chain_kernel(&self, _shape: &[usize]) -> Option<ChainKernel> {
        Some(ChainKernel::Map)
    }

    fn chain_map(&self, src: Option<&[f32]>, dst: &mut [f32]) {
        f32_kernel(self.decl)(src, dst, &Parallel::serial());
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, D::NAME)?;
        check_dtype(D::NAME, x.dtype(), self.dtypes)?;
        map_tensor(self.decl, x, ctx)
    }
}

/// The SIMD body of a declaration as the float32 loops see it.
#[derive(Clone, Copy)]
struct Body<D>(D);

impl<D: ElementwiseOp> Elementwise for Body<D> {
    const PREFETCH: bool = D::PREFETCH;

    #[inline(always)]
    fn apply<V: VecF32>(self, token: V::Token, x: V) -> V {
        self.0.simd(token, x)
    }
}

/// The float32 kernel of `decl`: from `src` into `dst`, or in place in
/// `dst` when `src` is `None`.
fn f32_kernel<D: ElementwiseOp>(decl: D) -> impl Fn(Option<&[f32]>, &mut [f32], &Parallel) {
    move |src, dst, par| match src {
        Some(src) => unary::apply_f32(Body(decl), src, dst, par),
        None => unary::apply_f32_inplace(Body(decl), dst, par),
    }
}

/// The same for a scalar function (float64, integers).
fn scalar_kernel<T: Copy + Send + Sync>(
    func: impl Fn(T) -> T + Copy + Send + Sync,
) -> impl Fn(Option<&[T]>, &mut [T], &Parallel) {
    move |src, dst, par| match src {
        Some(src) => unary::map_scalar(func, src, dst, par),
        None => unary::map_scalar_inplace(func, dst, par),
    }
}

/// The one dtype dispatch of every elementwise operator (the caller has
/// checked the dtype against the version's list).
fn map_tensor<D: ElementwiseOp>(decl: D, x: Cow<'_, Tensor>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let dtype = x.dtype();
    let unsupported = OpError::UnsupportedDtype { op: D::NAME, dtype };
    match dtype {
        DType::F32 => map_owned_or_lent(x, ctx, f32_kernel(decl)),
        DType::F64 => map_owned_or_lent(x, ctx, scalar_kernel(move |v| decl.scalar(v))),
        DType::F16 | DType::BF16 => through_f32(&x, ctx.par, |data, par| f32_kernel(decl)(None, data, par)),
        DType::I8 => map_int::<D, i8>(decl, x, ctx),
        DType::I16 => map_int::<D, i16>(decl, x, ctx),
        DType::I32 => map_int::<D, i32>(decl, x, ctx),
        DType::I64 => map_int::<D, i64>(decl, x, ctx),
        DType::U8 => map_int::<D, u8>(decl, x, ctx),
        DType::U16 => map_int::<D, u16>(decl, x, ctx),
        DType::U32 => map_int::<D, u32>(decl, x, ctx),
        DType::U64 => map_int::<D, u64>(decl, x, ctx),
        _ => None,
    }
    .ok_or(unsupported)
}

fn map_int<D: ElementwiseOp, T: Int>(decl: D, x: Cow<'_, Tensor>, ctx: &ExecCtx<'_>) -> Option<Tensor> {
    // A declaration without an integer body answers None for every value.
    decl.int(T::zero())?;
    map_owned_or_lent(x, ctx, scalar_kernel(move |v: T| decl.int(v).unwrap_or(v)))
}

/// Runs `kernel` over a tensor holding `T`: in place when the input was
/// handed over and nobody else holds its buffer (see [`take_unique`]),
/// else into an output buffer (from the session's pool when one fits).
/// `None` when the tensor does not hold `T`.
fn map_owned_or_lent<T: Element + Default>(
    x: Cow<'_, Tensor>,
    ctx: &ExecCtx<'_>,
    kernel: impl Fn(Option<&[T]>, &mut [T], &Parallel),
) -> Option<Tensor> {
    let x = match take_unique::<T>(x) {
        Ok(array) => return Some(T::wrap_shared(inplace(array, ctx.par, |data, par| kernel(None, data, par)))),
        Err(x) => x,
    };
    let array = T::shared(&x)?;
    Some(T::wrap_shared(mapped(array, ctx, |src, dst, par| kernel(Some(src), dst, par))))
}

/// The data of `x` as `T` when an op may overwrite it without a copy: the
/// value was handed over (it had no later reader) and no other tensor shares
/// its buffer. Otherwise `x` comes back, to be read into a fresh buffer:
/// writing to a shared buffer would first copy it (copy-on-write), a pass
/// over memory that computing into a new buffer does not need.
pub(crate) fn take_unique<T: Element>(x: Cow<'_, Tensor>) -> Result<SharedArray<T>, Cow<'_, Tensor>> {
    match x {
        Cow::Owned(tensor) if tensor.dtype() == T::DTYPE && tensor.is_unique() => {
            T::unwrap_shared(tensor).map_err(Cow::Owned)
        }
        other => Err(other),
    }
}

/// Runs an f32 kernel on a float16 or bfloat16 tensor: widen, compute in
/// place, round once at the end. `None` for any other dtype.
pub(crate) fn through_f32(x: &Tensor, par: &Parallel, kernel: impl Fn(&mut [f32], &Parallel)) -> Option<Tensor> {
    let widened = |array: ArrayD<f32>| {
        let mut array = if array.is_standard_layout() { array } else { array.as_standard_layout().into_owned() };
        if let Some(data) = array.as_slice_mut() {
            kernel(data, par);
        }
        array
    };
    match x {
        Tensor::F16(array) => Some(Tensor::from(widened(array.mapv(f16::to_f32)).mapv(f16::from_f32))),
        Tensor::BF16(array) => Some(Tensor::from(widened(array.mapv(bf16::to_f32)).mapv(bf16::from_f32))),
        _ => None,
    }
}

/// Runs `kernel` on the array's data in place, making it contiguous first.
/// Callers hand over a buffer no other tensor shares (see [`take_unique`]);
/// a shared one would be copied by the first write.
pub(crate) fn inplace<T: Clone>(
    array: SharedArray<T>,
    par: &Parallel,
    kernel: impl Fn(&mut [T], &Parallel),
) -> SharedArray<T> {
    let mut array =
        if array.is_standard_layout() { array } else { array.as_standard_layout().into_owned().into_shared() };
    if let Some(data) = array.as_slice_mut() {
        kernel(data, par);
    }
    array
}

/// Runs `kernel` from the array's data into an output buffer of the same
/// shape (from the session's pool when one fits).
pub(crate) fn mapped<T: Element + Default, S: Data<Elem = T>>(
    array: &ArrayBase<S, IxDyn>,
    ctx: &ExecCtx<'_>,
    kernel: impl Fn(&[T], &mut [T], &Parallel),
) -> SharedArray<T> {
    let mut out = output_shared::<T>(ctx.pool, array.shape());
    if let Some(dst) = out.as_slice_mut() {
        match array.as_slice() {
            Some(src) => kernel(src, dst, ctx.par),
            None => {
                if let Some(src) = array.as_standard_layout().as_slice() {
                    kernel(src, dst, ctx.par);
                }
            }
        }
    }
    out
}

/// A declared elementwise operator with its ONNX default attributes (at
/// its newest version), as tests, the ULP sweep and the benches see it:
/// [`declared`] lists them all.
pub trait Declared: Send + Sync + fmt::Debug {
    /// The ONNX `op_type`.
    fn name(&self) -> &'static str;
    /// The opset versions the operator has (`since_version`s, ascending).
    fn versions(&self) -> &'static [i64];
    /// The name with the attribute setting when it is not the default
    /// (`Gelu (approximate = tanh)`), for reports.
    fn label(&self) -> String;
    /// The stated float32 error bound in ULP (0: exact), see the README's
    /// accuracy table.
    fn max_ulp(&self) -> u64;
    /// Whether the function is monotone (the declaration's `MONOTONE`).
    fn monotone(&self) -> bool;
    /// A node of the operator at schema `version` with this handle's
    /// attributes, as a model would run it (all dtypes of that version).
    fn node(&self, version: i64) -> Box<dyn Op>;
    /// The float64 reference at `x`, independent of the kernels.
    fn reference(&self, x: f64) -> f64;
    /// The float32 kernel from `src` into `dst` (same length), on the
    /// active SIMD path, split across `par`'s threads.
    fn apply_f32(&self, src: &[f32], dst: &mut [f32], par: &Parallel);
    /// The float32 kernel in place.
    fn apply_f32_inplace(&self, data: &mut [f32], par: &Parallel);
    /// The float32 kernel on one thread on the path `isa`, or the best
    /// path below it that the CPU has.
    fn apply_f32_isa(&self, isa: Isa, src: &[f32], dst: &mut [f32]);
    /// In-place form of [`Declared::apply_f32_isa`].
    fn apply_f32_inplace_isa(&self, isa: Isa, data: &mut [f32]);
    /// The float64 kernel from `src` into `dst`.
    fn apply_f64(&self, src: &[f64], dst: &mut [f64], par: &Parallel);
    /// Whether the opset-1 schema has the legacy `consumed_inputs`
    /// attribute, which the machinery then reads (see
    /// `ElementwiseOp::CONSUMED_INPUTS_AT_1`).
    fn consumed_inputs_at_1(&self) -> bool;
}

/// A declaration with fixed attributes, behind [`Declared`].
#[derive(Debug)]
pub(crate) struct Handle<D>(pub(crate) D);

impl<D: ElementwiseOp> Declared for Handle<D> {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn versions(&self) -> &'static [i64] {
        D::VERSIONS
    }

    fn label(&self) -> String {
        self.0.label()
    }

    fn max_ulp(&self) -> u64 {
        D::MAX_ULP
    }

    fn monotone(&self) -> bool {
        D::MONOTONE
    }

    fn node(&self, version: i64) -> Box<dyn Op> {
        Box::new(ElementwiseNode { decl: self.0, dtypes: D::dtypes(version) })
    }

    fn reference(&self, x: f64) -> f64 {
        self.0.reference(x)
    }

    fn apply_f32(&self, src: &[f32], dst: &mut [f32], par: &Parallel) {
        unary::apply_f32(Body(self.0), src, dst, par);
    }

    fn apply_f32_inplace(&self, data: &mut [f32], par: &Parallel) {
        unary::apply_f32_inplace(Body(self.0), data, par);
    }

    fn apply_f32_isa(&self, isa: Isa, src: &[f32], dst: &mut [f32]) {
        unary::apply_f32_isa(isa, Body(self.0), src, dst);
    }

    fn apply_f32_inplace_isa(&self, isa: Isa, data: &mut [f32]) {
        unary::apply_f32_inplace_isa(isa, Body(self.0), data);
    }

    fn apply_f64(&self, src: &[f64], dst: &mut [f64], par: &Parallel) {
        let decl = self.0;
        unary::map_scalar(move |v| decl.scalar(v), src, dst, par);
    }

    fn consumed_inputs_at_1(&self) -> bool {
        D::CONSUMED_INPUTS_AT_1
    }
}

/// Collects a handle with default attributes per declared operator.
struct Collect(Vec<Box<dyn Declared>>);

impl Visit for Collect {
    fn visit<D: ElementwiseOp>(&mut self) {
        let newest = D::VERSIONS.last().copied().unwrap_or(1);
        let mut attrs = Attrs::new("", D::NAME, &[], 0);
        if let Ok(decl) = D::from_attrs(&mut attrs, newest) {
            self.0.push(Box::new(Handle(decl)));
        }
        for variant in D::variants() {
            self.0.push(Box::new(Handle(variant)));
        }
    }
}

/// Every declared elementwise operator, with its default attributes, in
/// declaration order; an operator's attribute variants (Gelu's tanh form) follow it.
pub fn declared() -> Vec<Box<dyn Declared>> {
    let mut all = Collect(Vec::new());
    super::activation::each_declared(&mut all);
    super::trig::each_declared(&mut all);
    all.0
}

/// The declared operator named `name` (ONNX `op_type`), with its default
/// attributes.
pub fn find_declared(name: &str) -> Option<Box<dyn Declared>> {
    declared().into_iter().find(|op| op.name() == name)
}

#[cfg(test)]
mod tests;
