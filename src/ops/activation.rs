//! Elementwise activations, one declaration each (see
//! `ElementwiseOp`; the machinery that runs them is in
//! [`super::elementwise`]).
//!
//! | op        | opset | change                                             |
//! |-----------|-------|----------------------------------------------------|
//! | all at 1 but Softsign | 1 | legacy `consumed_inputs` attribute (ignored hint) |
//! | all       | 6     | attribute dropped; float16/32/64                   |
//! | Relu, Sigmoid, Tanh | 13 | adds bfloat16                           |
//! | Relu      | 14    | adds int8, int16, int32, int64                     |
//! | LeakyRelu | 16    | adds bfloat16; `alpha` default 0.01 throughout     |
//! | Elu       | 22    | adds bfloat16; `alpha` default 1.0 throughout      |
//! | Softsign, Selu, ThresholdedRelu (10), HardSigmoid, HardSwish (14) | 22 | adds bfloat16 |
//! | Selu      | 6     | `alpha`, `gamma` defaults from 1.6732 / 1.0507 to the exact constants |
//! | Celu      | 12, 28 | float32 only at 12; float16/32/64 and bfloat16 at 28 |
//! | Shrink    | 9     | float16/32/64 and every 8- to 64-bit integer type  |
//! | Neg       | 6, 13 | adds int8-int64 at 6, bfloat16 at 13               |
//! | Abs       | 6, 13 | adds every integer type at 6, bfloat16 at 13       |
//! | Exp, Log, Sqrt, Reciprocal | 13 | adds bfloat16                        |
//! | Erf       | 9, 13 | floats and every integer type at 9; at 13 the floats and bfloat16 |
//! | Softplus  | 22    | adds bfloat16 (no `consumed_inputs` at 1)          |
//! | Mish      | 18, 22 | float16/32/64, then adds bfloat16                 |
//! | Gelu      | 20    | float16/32/64 and bfloat16; `approximate` none or tanh |
//! | Swish     | 24    | float16/32/64 and bfloat16; `alpha` default 1.0    |
//! | Sign      | 9, 13 | every number type, then adds bfloat16              |
//!
//! float16 and bfloat16 compute in f32 and round once at the end.
//! Semantics follow PyTorch where ONNX leaves room: NaN propagates, and
//! -0 stays -0 through Relu, LeakyRelu and Elu.

use super::Registry;
use super::elementwise::{ElementwiseOp, Int, Register, Visit, floats_bf16_from};
use super::{FLOATS, FLOATS_BF16};
use super::{FLOATS_BF16_SIGNED, FLOATS_SIGNED, NUMBERS, NUMBERS_BF16};
use crate::error::LoadError;
use crate::graph::attrs::Attrs;
use crate::kernels::math;
use crate::kernels::simd::VecF32;
use crate::kernels::unary;
use crate::tensor::DType;

pub(crate) use super::elementwise::{inplace, mapped, take_unique, through_f32};

/// Calls `visit` once per declared activation: the one list that
/// registration, the tests, the ULP sweep and the benches read.
pub(crate) fn each_declared(visit: &mut impl Visit) {
    visit.visit::<Relu>();
    visit.visit::<LeakyRelu>();
    visit.visit::<Sigmoid>();
    visit.visit::<Tanh>();
    visit.visit::<Elu>();
    visit.visit::<Softsign>();
    visit.visit::<Selu>();
    visit.visit::<Celu>();
    visit.visit::<ThresholdedRelu>();
    visit.visit::<HardSigmoid>();
    visit.visit::<HardSwish>();
    visit.visit::<Shrink>();
    visit.visit::<Softplus>();
    visit.visit::<Mish>();
    visit.visit::<Neg>();
    visit.visit::<Abs>();
    visit.visit::<Exp>();
    visit.visit::<Log>();
    visit.visit::<Sqrt>();
    visit.visit::<Reciprocal>();
    visit.visit::<Erf>();
    visit.visit::<Gelu>();
    visit.visit::<Swish>();
    visit.visit::<Sign>();
}

/// Registers every declared activation.
pub fn register(reg: &mut Registry) {
    each_declared(&mut Register(reg));
}

/// Relu: `max(x, 0)`, NaN and -0 kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Relu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Relu;

impl ElementwiseOp for Relu {
    const NAME: &'static str = "Relu";
    const VERSIONS: &'static [i64] = &[1, 6, 13, 14];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        match version {
            14.. => FLOATS_BF16_SIGNED,
            13 => FLOATS_BF16,
            _ => FLOATS,
        }
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Relu)
    }

    fn reference(self, x: f64) -> f64 {
        // `x < 0 ? 0 : x`, written on the bits: in release mode rustc 1.95
        // compiled the comparison form in a test to `x <= 0 ? 0 : x`,
        // which gives +0.0 for -0.0.
        if x.is_sign_negative() && !x.is_nan() && x.to_bits() << 1 != 0 { 0.0 } else { x }
    }

    fn scalar(self, x: f64) -> f64 {
        unary::relu(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        // Not `max(x, 0)`: MAXPS returns its second operand for NaN and
        // for equal zeros. `x < 0` is false for NaN and for -0, so both
        // pass through unchanged.
        let zero = V::splat(token, 0.0);
        V::select(x.lt(zero), zero, x)
    }

    fn int<T: Int>(self, x: T) -> Option<T> {
        Some(x.max(T::zero()))
    }
}

/// LeakyRelu: `x > 0 ? x : alpha * x` (PyTorch's form: NaN gives
/// `alpha * NaN`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__LeakyRelu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LeakyRelu {
    /// Slope for negative inputs (ONNX default 0.01).
    pub(crate) alpha: f32,
}

impl ElementwiseOp for LeakyRelu {
    const NAME: &'static str = "LeakyRelu";
    const VERSIONS: &'static [i64] = &[1, 6, 16];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(16, version)
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(LeakyRelu { alpha: attrs.f32("alpha")?.unwrap_or(0.01) })
    }

    fn reference(self, x: f64) -> f64 {
        // The product of two float32 is exact in float64, so this rounds
        // once, like a float32 multiply.
        if x > 0.0 { x } else { f64::from(self.alpha) * x }
    }

    fn scalar(self, x: f64) -> f64 {
        unary::leaky_relu(x, f64::from(self.alpha))
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        V::select(x.gt(V::splat(token, 0.0)), x, x * V::splat(token, self.alpha))
    }
}

/// Sigmoid: `1 / (1 + exp(-x))`, in [0, 1], monotone, subnormal outputs
/// not flushed (see `kernels::math::sigmoid`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Sigmoid.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sigmoid;

impl ElementwiseOp for Sigmoid {
    const NAME: &'static str = "Sigmoid";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 2;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(13, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Sigmoid)
    }

    fn reference(self, x: f64) -> f64 {
        // Through exp(-|x|), which never overflows.
        let e = (-x.abs()).exp();
        if x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) }
    }

    fn scalar(self, x: f64) -> f64 {
        unary::sigmoid(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::sigmoid(token, x)
    }
}

/// Tanh: hyperbolic tangent, in [-1, 1], odd, monotone (see
/// `kernels::math::tanh`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Tanh.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tanh;

impl ElementwiseOp for Tanh {
    const NAME: &'static str = "Tanh";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(13, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Tanh)
    }

    fn reference(self, x: f64) -> f64 {
        x.tanh()
    }

    fn scalar(self, x: f64) -> f64 {
        unary::tanh(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::tanh(token, x)
    }
}

/// Elu: `x > 0 ? x : alpha * (exp(x) - 1)`, with `exp(x) - 1` computed
/// as expm1 (accurate for tiny |x|); NaN kept, elu(-0) = -0 (as PyTorch).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Elu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Elu {
    /// Scale of the negative branch (ONNX default 1.0).
    pub(crate) alpha: f32,
}

impl ElementwiseOp for Elu {
    const NAME: &'static str = "Elu";
    const VERSIONS: &'static [i64] = &[1, 6, 22];
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Elu { alpha: attrs.f32("alpha")?.unwrap_or(1.0) })
    }

    fn reference(self, x: f64) -> f64 {
        if x > 0.0 { x } else { f64::from(self.alpha) * x.exp_m1() }
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let zero = V::splat(token, 0.0);
        let negative = math::expm1_nonpositive(token, x.cap(zero)) * V::splat(token, self.alpha);
        V::select(x.gt(zero), x, negative)
    }
}

/// Softsign: `x / (1 + |x|)`, in [-1, 1], odd (softsign(-0) = -0); NaN
/// kept, and softsign(±inf) = NaN, as PyTorch's `x / (1 + |x|)` gives.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Softsign.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Softsign;

impl ElementwiseOp for Softsign {
    const NAME: &'static str = "Softsign";
    const VERSIONS: &'static [i64] = &[1, 22];
    // Its opset-1 schema never had `consumed_inputs`.
    const CONSUMED_INPUTS_AT_1: bool = false;
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Softsign)
    }

    fn reference(self, x: f64) -> f64 {
        x / (1.0 + x.abs())
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        x / (V::splat(token, 1.0) + x.abs())
    }
}

/// Selu: `gamma * (x > 0 ? x : alpha * expm1(x))`, NaN kept, selu(-0) =
/// -0 (as PyTorch).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Selu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Selu {
    /// Scale of the negative branch inside `gamma` (default
    /// 1.67326319217681884765625; 1.6732 at opset 1).
    pub(crate) alpha: f32,
    /// Overall scale (default 1.05070102214813232421875; 1.0507 at opset 1).
    pub(crate) gamma: f32,
}

impl ElementwiseOp for Selu {
    const NAME: &'static str = "Selu";
    const VERSIONS: &'static [i64] = &[1, 6, 22];
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 2;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let (alpha, gamma) = if version < 6 { (1.6732, 1.0507) } else { (1.673_263_2, 1.050_701) };
        Ok(Selu { alpha: attrs.f32("alpha")?.unwrap_or(alpha), gamma: attrs.f32("gamma")?.unwrap_or(gamma) })
    }

    fn reference(self, x: f64) -> f64 {
        let gamma = f64::from(self.gamma);
        if x > 0.0 { gamma * x } else { gamma * f64::from(self.alpha) * x.exp_m1() }
    }

    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let zero = V::splat(token, 0.0);
        // alpha * gamma rounded once, as PyTorch's `negcoef`.
        let negcoef = (f64::from(self.alpha) * f64::from(self.gamma)) as f32;
        let negative = math::expm1_nonpositive(token, x.cap(zero)) * V::splat(token, negcoef);
        V::select(x.gt(zero), x * V::splat(token, self.gamma), negative)
    }
}

/// Celu: `x > 0 ? x : alpha * expm1(x / alpha)`, NaN kept, celu(-0) = -0
/// (PyTorch's `elu` with `input_scale = 1 / alpha`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Celu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Celu {
    /// Scale of the negative branch and of its argument (default 1.0).
    pub(crate) alpha: f32,
}

impl ElementwiseOp for Celu {
    const NAME: &'static str = "Celu";
    const VERSIONS: &'static [i64] = &[12, 28];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        if version >= 28 { FLOATS_BF16 } else { &[DType::F32] }
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Celu { alpha: attrs.f32("alpha")?.unwrap_or(1.0) })
    }

    fn reference(self, x: f64) -> f64 {
        let alpha = f64::from(self.alpha);
        if x > 0.0 { x } else { alpha * (x / alpha).exp_m1() }
    }

    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let zero = V::splat(token, 0.0);
        let alpha = V::splat(token, self.alpha);
        let negative = math::expm1_nonpositive(token, (x / alpha).cap(zero)) * alpha;
        V::select(x.gt(zero), x, negative)
    }
}

/// ThresholdedRelu: `x > alpha ? x : 0`; NaN kept (PyTorch's
/// `threshold`, `x <= alpha ? 0 : x`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__ThresholdedRelu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ThresholdedRelu {
    /// The threshold (default 1.0).
    pub(crate) alpha: f32,
}

impl ElementwiseOp for ThresholdedRelu {
    const NAME: &'static str = "ThresholdedRelu";
    const VERSIONS: &'static [i64] = &[10, 22];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(ThresholdedRelu { alpha: attrs.f32("alpha")?.unwrap_or(1.0) })
    }

    fn reference(self, x: f64) -> f64 {
        if x > f64::from(self.alpha) || x.is_nan() { x } else { 0.0 }
    }

    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        V::select(x.gt_or_nan(V::splat(token, self.alpha)), x, V::splat(token, 0.0))
    }
}

/// `y` clamped to [0, hi], NaN kept, -0 and below giving +0.
#[inline(always)]
fn clamp_nan<V: VecF32>(token: V::Token, y: V, hi: f32) -> V {
    V::select(y.gt_or_nan(V::splat(token, 0.0)), y, V::splat(token, 0.0)).cap(V::splat(token, hi))
}

/// The same on one float64.
fn clamp_nan_f64(y: f64, hi: f64) -> f64 {
    if y.is_nan() {
        y
    } else if y > hi {
        hi
    } else if y > 0.0 {
        y
    } else {
        0.0
    }
}

/// HardSigmoid: `max(0, min(1, alpha * x + beta))`, NaN kept. `alpha * x +
/// beta` is rounded once where the two terms nearly cancel, on every path
/// (see `kernels::math::mul_add_accurate`: one fused multiply-add where the
/// ISA has FMA, exact there; Dekker's product elsewhere, within 1 ULP).
/// Spec: <https://onnx.ai/onnx/operators/onnx__HardSigmoid.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HardSigmoid {
    /// Slope (default 0.2).
    pub(crate) alpha: f32,
    /// Offset (default 0.5).
    pub(crate) beta: f32,
}

impl ElementwiseOp for HardSigmoid {
    const NAME: &'static str = "HardSigmoid";
    const VERSIONS: &'static [i64] = &[1, 6, 22];
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(HardSigmoid { alpha: attrs.f32("alpha")?.unwrap_or(0.2), beta: attrs.f32("beta")?.unwrap_or(0.5) })
    }

    fn reference(self, x: f64) -> f64 {
        clamp_nan_f64(f64::from(self.alpha).mul_add(x, f64::from(self.beta)), 1.0)
    }

    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        clamp_nan(token, math::mul_add_accurate(token, x, self.alpha, self.beta), 1.0)
    }
}

/// HardSwish: `x * max(0, min(1, x / 6 + 1 / 2))`, computed as PyTorch
/// does, from `x + 3` clamped to [0, 6]; NaN kept, -0 for x < -3 and x =
/// -0, hardswish(-inf) = NaN (-inf * 0, in PyTorch too).
/// Spec: <https://onnx.ai/onnx/operators/onnx__HardSwish.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HardSwish;

impl ElementwiseOp for HardSwish {
    const NAME: &'static str = "HardSwish";
    const VERSIONS: &'static [i64] = &[14, 22];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const MAX_ULP: u64 = 2;
    const MONOTONE: bool = false;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(HardSwish)
    }

    fn reference(self, x: f64) -> f64 {
        x * clamp_nan_f64(x / 6.0 + 0.5, 1.0)
    }

    fn scalar(self, x: f64) -> f64 {
        x * (clamp_nan_f64(x + 3.0, 6.0) / 6.0)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        // `x * (t / 6)`, not PyTorch's `x * t / 6`, which overflows for x
        // above f32::MAX / 6.
        let t = clamp_nan(token, x + V::splat(token, 3.0), 6.0);
        x * (t / V::splat(token, 6.0))
    }
}

/// Shrink: `x < -lambd ? x + bias : x > lambd ? x - bias : 0`; NaN kept
/// (as PyTorch's `hardshrink`/`softshrink`). Integers compute in float64
/// and convert back truncating and saturating.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Shrink.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shrink {
    /// Added below `-lambd`, subtracted above `lambd` (default 0).
    pub(crate) bias: f32,
    /// Half-width of the band mapped to 0 (default 0.5).
    pub(crate) lambd: f32,
}

impl ElementwiseOp for Shrink {
    const NAME: &'static str = "Shrink";
    const VERSIONS: &'static [i64] = &[9];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const MAX_ULP: u64 = 0;

    fn dtypes(_version: i64) -> &'static [DType] {
        NUMBERS
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Shrink { bias: attrs.f32("bias")?.unwrap_or(0.0), lambd: attrs.f32("lambd")?.unwrap_or(0.5) })
    }

    fn reference(self, x: f64) -> f64 {
        let (bias, lambd) = (f64::from(self.bias), f64::from(self.lambd));
        if x < -lambd {
            x + bias
        } else if x > lambd || x.is_nan() {
            x - bias
        } else {
            0.0
        }
    }

    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let above =
            V::select(x.gt_or_nan(V::splat(token, self.lambd)), x - V::splat(token, self.bias), V::splat(token, 0.0));
        V::select(x.lt(V::splat(token, -self.lambd)), x + V::splat(token, self.bias), above)
    }

    fn int<T: Int>(self, x: T) -> Option<T> {
        Some(T::from_f64_saturating(self.reference(x.to_f64_lossy())))
    }
}

/// Neg: `-x`, exact (neg(0) = -0, NaN kept); integers wrap (`-MIN` is
/// `MIN`, as PyTorch).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Neg.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Neg;

impl ElementwiseOp for Neg {
    const NAME: &'static str = "Neg";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        match version {
            13.. => FLOATS_BF16_SIGNED,
            6.. => FLOATS_SIGNED,
            _ => FLOATS,
        }
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Neg)
    }

    fn reference(self, x: f64) -> f64 {
        -x
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        // Not `0 - x`, which gives +0 for +0.
        x * V::splat(token, -1.0)
    }

    fn int<T: Int>(self, x: T) -> Option<T> {
        Some(x.wrapping_neg())
    }
}

/// Abs: `|x|`, exact (abs(-0) = +0, NaN kept); signed integers wrap
/// (`|MIN|` is `MIN`, as PyTorch), unsigned ones are unchanged.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Abs.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Abs;

impl ElementwiseOp for Abs {
    const NAME: &'static str = "Abs";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        match version {
            13.. => NUMBERS_BF16,
            6.. => NUMBERS,
            _ => FLOATS,
        }
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Abs)
    }

    fn reference(self, x: f64) -> f64 {
        x.abs()
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, _token: V::Token, x: V) -> V {
        x.abs()
    }

    fn int<T: Int>(self, x: T) -> Option<T> {
        Some(x.wrapping_abs())
    }
}

/// Exp: `e^x`, overflowing to inf above ~88.72, subnormal results
/// correctly rounded, 0 below -104 and at -inf, NaN kept (see
/// `kernels::math::exp_any`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Exp.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exp;

impl ElementwiseOp for Exp {
    const NAME: &'static str = "Exp";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(13, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Exp)
    }

    fn reference(self, x: f64) -> f64 {
        x.exp()
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::exp_any(token, x)
    }
}

/// Reciprocal: `1 / x`, one correctly rounded division (1/±0 = ±inf,
/// 1/±inf = ±0, NaN kept).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Reciprocal.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reciprocal;

impl ElementwiseOp for Reciprocal {
    const NAME: &'static str = "Reciprocal";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(13, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Reciprocal)
    }

    fn reference(self, x: f64) -> f64 {
        1.0 / x
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        V::splat(token, 1.0) / x
    }
}

/// Above this, PyTorch's softplus (threshold 20) returns `x` itself:
/// `log1p(e^x) - x = log1p(e^-x) < 2.1e-9`, far below half an ULP of 20.
const SOFTPLUS_THRESHOLD: f32 = 20.0;

/// Softplus: `log(1 + e^x)`, as PyTorch computes it: `x` above 20 (no
/// overflow: softplus(100) = 100), `log1p(e^x)` below (accurate where
/// e^x is tiny); softplus(-inf) = 0, NaN kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Softplus.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Softplus;

impl ElementwiseOp for Softplus {
    const NAME: &'static str = "Softplus";
    const VERSIONS: &'static [i64] = &[1, 22];
    // Its opset-1 schema never had `consumed_inputs`.
    const CONSUMED_INPUTS_AT_1: bool = false;
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 2;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Softplus)
    }

    fn reference(self, x: f64) -> f64 {
        if x > f64::from(SOFTPLUS_THRESHOLD) { x } else { x.exp().ln_1p() }
    }

    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let threshold = V::splat(token, SOFTPLUS_THRESHOLD);
        // Capped, so that e^x stays finite; the capped lanes are replaced.
        let below = math::log1p_nonnegative(token, math::exp_any(token, x.cap(threshold)));
        V::select(x.gt(threshold), x, below)
    }
}

/// From here on tanh(softplus(x)) rounds to 1 in float32 (softplus(x) >
/// x > 9.1, see `kernels::math::tanh`), so mish(x) = x.
const MISH_ONE: f32 = 9.1;
/// Below this, `1 + e^x` rounds to 1 and mish(x) = x e^x to float32
/// precision (the next term is e^x / 2 relative, under 1.1e-9).
const MISH_TAIL: f32 = -20.0;
/// Below this, |x e^x| < 2^-150: mish(x) rounds to -0.
const MISH_ZERO: f32 = -110.0;

/// Mish: `x * tanh(softplus(x))`, computed as `x * n / (n + 2)` with `n =
/// e^x (e^x + 2)` (the same function: tanh(log(1 + t)) = ((1 + t)^2 - 1)
/// / ((1 + t)^2 + 1)), rearranged per sign (see the body); `x` above 9.1;
/// `x e^x`, scaled once into the subnormals, below -20. mish(-0) = -0, mish(-inf) = NaN (-inf * 0, as
/// PyTorch's formula), NaN kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Mish.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mish;

impl ElementwiseOp for Mish {
    const NAME: &'static str = "Mish";
    const VERSIONS: &'static [i64] = &[18, 22];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 4;
    const MONOTONE: bool = false;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Mish)
    }

    fn reference(self, x: f64) -> f64 {
        x * x.exp().ln_1p().tanh()
    }

    fn scalar(self, x: f64) -> f64 {
        self.reference(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let two = V::splat(token, 2.0);
        let tail_from = V::splat(token, MISH_TAIL);
        // The middle: x clamped to [-20, 9.1] (NaN kept).
        let mid_x = V::select(x.lt(tail_from), tail_from, x).cap(V::splat(token, MISH_ONE));
        let e = math::exp_any(token, mid_x);
        let one = V::splat(token, 1.0);
        let n = e * (e + two);
        // n / (n + 2) in two forms that never round a sum just above a
        // power of two into the result: for x >= 0, 1 - 2 / (n + 2) (in
        // [0.6, 1)); for x < 0, e (1 - e (1 + e) / (n + 2)), the
        // subtrahend at most 0.4, and x e taken first.
        let ratio = one - two / (n + two);
        let negative = (x * e) * (one - e * (one + e) / (n + two));
        let mid = V::select(x.lt(V::splat(token, 0.0)), negative, x * ratio);
        // The tail: x e^x, from e^x = p 2^k with p near 1, so that x * p
        // is normal and the scaling rounds once (also into the subnormals).
        let zero_from = V::splat(token, MISH_ZERO);
        let tail_x = V::select(x.lt(zero_from), zero_from, x).cap(tail_from);
        let (k, p) = math::exp_split(token, tail_x);
        // Scaled by 2^-24 first (exact: x * p is normal, in [14, 160]) so
        // that the exponent stays within `ldexp`'s range down to -110.
        let shift = V::splat(token, 24.0);
        let tail = (x * p * V::splat(token, 2f32.powi(-24))).ldexp(k + shift);
        // Below -110 the result is -0 (NaN at -inf).
        let tail = V::select(x.lt(zero_from), x * V::splat(token, 0.0), tail);
        let y = V::select(x.lt(tail_from), tail, mid);
        V::select(x.gt(V::splat(token, MISH_ONE)), x, y)
    }
}

/// Log: natural logarithm, log(±0) = -inf, log(x < 0) = NaN, log(inf) =
/// inf, NaN kept (see `kernels::math::log`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Log.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Log;

impl ElementwiseOp for Log {
    const NAME: &'static str = "Log";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(13, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Log)
    }

    fn reference(self, x: f64) -> f64 {
        x.ln()
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::log(token, x)
    }
}

/// Sqrt: square root, correctly rounded (the instruction), sqrt(-0) = -0,
/// sqrt(x < 0) = NaN, sqrt(inf) = inf, NaN kept (see `kernels::math::sqrt`).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Sqrt.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sqrt;

impl ElementwiseOp for Sqrt {
    const NAME: &'static str = "Sqrt";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(13, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Sqrt)
    }

    fn reference(self, x: f64) -> f64 {
        x.sqrt()
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::sqrt(token, x)
    }
}

/// Erf: the error function, odd, in [-1, 1], NaN kept (see
/// `kernels::math::erf`); float64 through `libm::erf` (musl's); integers
/// (opset 9 only) through float64, truncated back (so every integer maps
/// to 0, as a C++ `static_cast` of erf gives).
/// Spec: <https://onnx.ai/onnx/operators/onnx__Erf.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Erf;

impl ElementwiseOp for Erf {
    const NAME: &'static str = "Erf";
    const VERSIONS: &'static [i64] = &[9, 13];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 1;

    fn dtypes(version: i64) -> &'static [DType] {
        if version >= 13 { FLOATS_BF16 } else { NUMBERS }
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Erf)
    }

    fn reference(self, x: f64) -> f64 {
        libm::erf(x)
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::erf(token, x)
    }

    fn int<T: Int>(self, x: T) -> Option<T> {
        Some(T::from_f64_saturating(libm::erf(x.to_f64_lossy())))
    }
}

/// Gelu: `x Φ(x)` = `0.5 x (1 + erf(x / sqrt(2)))`, or with
/// `approximate = "tanh"`, `0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x^3)))`
/// (see `kernels::math::gelu_erf` and `gelu_tanh`). gelu(-inf) = NaN, as
/// PyTorch's formula gives; NaN kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Gelu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Gelu {
    /// The tanh approximation instead of the exact form.
    pub(crate) tanh: bool,
}

impl ElementwiseOp for Gelu {
    const NAME: &'static str = "Gelu";
    const VERSIONS: &'static [i64] = &[20];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 4;
    const MONOTONE: bool = false;

    fn dtypes(_version: i64) -> &'static [DType] {
        FLOATS_BF16
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        match attrs.string("approximate")?.as_deref() {
            None | Some("none") => Ok(Gelu { tanh: false }),
            Some("tanh") => Ok(Gelu { tanh: true }),
            Some(other) => Err(attrs.error("approximate", format!("{other:?} is neither \"none\" nor \"tanh\""))),
        }
    }

    fn variants() -> Vec<Self> {
        vec![Gelu { tanh: true }]
    }

    fn label(self) -> String {
        if self.tanh { "Gelu (approximate = tanh)".to_owned() } else { "Gelu".to_owned() }
    }

    fn reference(self, x: f64) -> f64 {
        if self.tanh {
            // 0.5 (1 + tanh(u)) = 1 / (1 + e^(-2u)), which does not cancel
            // where tanh(u) is near -1.
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044_715 * x * x * x);
            x / (1.0 + (-2.0 * u).exp())
        } else if x < 0.0 {
            // 1 + erf(-z) = erfc(z), which does not cancel.
            0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
        } else {
            0.5 * x * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
        }
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        if self.tanh { math::gelu_tanh(token, x) } else { math::gelu_erf(token, x) }
    }
}

/// Swish: `x sigmoid(αx)` (PyTorch's SiLU at α = 1), accurate where
/// e^(αx) is tiny (see `kernels::math::swish`); swish(-inf) = NaN at
/// α > 0, as PyTorch's SiLU gives; NaN kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Swish.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Swish {
    /// The slope inside the sigmoid (ONNX default 1.0).
    pub(crate) alpha: f32,
}

impl ElementwiseOp for Swish {
    const NAME: &'static str = "Swish";
    const VERSIONS: &'static [i64] = &[24];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const PREFETCH: bool = true;
    const MAX_ULP: u64 = 2;
    const MONOTONE: bool = false;

    fn dtypes(_version: i64) -> &'static [DType] {
        FLOATS_BF16
    }

    fn from_attrs(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Swish { alpha: attrs.f32("alpha")?.unwrap_or(1.0) })
    }

    fn reference(self, x: f64) -> f64 {
        // The product of two float32 is exact in float64.
        x / (1.0 + (-f64::from(self.alpha) * x).exp())
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        math::swish(token, x, self.alpha)
    }
}

/// Sign: -1, 0 or 1 by the sign of `x`; sign(±0) = +0 and NaN stays NaN,
/// as PyTorch's and numpy's sign; unsigned integers give 0 or 1.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Sign.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sign;

impl ElementwiseOp for Sign {
    const NAME: &'static str = "Sign";
    const VERSIONS: &'static [i64] = &[9, 13];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        if version >= 13 { NUMBERS_BF16 } else { NUMBERS }
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Sign)
    }

    fn reference(self, x: f64) -> f64 {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            // +0 for ±0 (-0 + 0 = +0), NaN for NaN.
            x + 0.0
        }
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let zero = V::splat(token, 0.0);
        // `x + 0`: +0 for ±0, NaN for NaN.
        V::select(x.gt(zero), V::splat(token, 1.0), V::select(x.lt(zero), V::splat(token, -1.0), x + zero))
    }

    fn int<T: Int>(self, x: T) -> Option<T> {
        Some(if x > T::zero() {
            T::one()
        } else if x < T::zero() {
            T::one().wrapping_neg()
        } else {
            T::zero()
        })
    }
}
