//! Elementwise activations, one declaration each (see
//! `ElementwiseOp`; the machinery that runs them is in
//! [`super::elementwise`]).
//!
//! | op        | opset | change                                             |
//! |-----------|-------|----------------------------------------------------|
//! | all but Softsign | 1 | legacy `consumed_inputs` attribute (ignored hint) |
//! | all       | 6     | attribute dropped; float16/32/64                   |
//! | Relu, Sigmoid, Tanh | 13 | adds bfloat16                           |
//! | Relu      | 14    | adds int8, int16, int32, int64                     |
//! | LeakyRelu | 16    | adds bfloat16; `alpha` default 0.01 throughout     |
//! | Elu       | 22    | adds bfloat16; `alpha` default 1.0 throughout      |
//!
//! float16 and bfloat16 compute in f32 and round once at the end.
//! Semantics follow PyTorch where ONNX leaves room: NaN propagates, and
//! -0 stays -0 through Relu, LeakyRelu and Elu.

use num_traits::{PrimInt, Signed};

use super::Registry;
use super::elementwise::{ElementwiseOp, Register, Visit, floats_bf16_from};
use super::{FLOATS, FLOATS_BF16};
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
}

/// Registers every declared activation.
pub fn register(reg: &mut Registry) {
    each_declared(&mut Register(reg));
}

/// Relu: `max(x, 0)`, NaN and -0 kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Relu.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Relu;

const RELU_14: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I8, DType::I16, DType::I32, DType::I64];

impl ElementwiseOp for Relu {
    const NAME: &'static str = "Relu";
    const VERSIONS: &'static [i64] = &[1, 6, 13, 14];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        match version {
            14.. => RELU_14,
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

    fn int<T: PrimInt + Signed>(self, x: T) -> Option<T> {
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

    fn scalar(self, x: f64) -> f64 {
        if x > 0.0 { x } else { f64::from(self.alpha) * x.exp_m1() }
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        let zero = V::splat(token, 0.0);
        let negative = math::expm1_nonpositive(token, x.cap(zero)) * V::splat(token, self.alpha);
        V::select(x.gt(zero), x, negative)
    }
}
