//! Elementwise float math: the trigonometric and hyperbolic functions and
//! their inverses, and rounding to an integer value, one declaration each
//! (see `ElementwiseOp`; the machinery that runs them is in
//! [`super::elementwise`]).
//!
//! | op | opset | types |
//! |----|-------|-------|
//! | Sin, Cos, Tan, Asin, Acos, Atan | 7, 22 | float16/32/64, then adds bfloat16 |
//! | Sinh, Cosh, Asinh, Acosh, Atanh | 9, 22 | float16/32/64, then adds bfloat16 |
//! | Ceil, Floor | 1, 6, 13 | float16/32/64 (legacy `consumed_inputs` at 1, ignored), adds bfloat16 at 13 |
//! | Round | 11, 22 | float16/32/64 (half to even), then adds bfloat16 |
//!
//! The transcendental functions compute each float32 lane in float64
//! through the `libm` crate (a pure-Rust port of musl's, so results are
//! the same on every platform) and round once; float16 and bfloat16 go
//! through float32 as every elementwise operator does. Their references
//! are Rust's `f64` methods, which call the platform's C library (or, for
//! the inverse hyperbolics, std's own formulas): a separate implementation,
//! so that the tests compare two. Outside a function's domain the result
//! is NaN (`asin(2)`, `acosh(0.5)`), at a pole the signed infinity
//! (`atanh(±1) = ±inf`), and the sign of zero is kept where the function
//! is odd (`sin(-0) = -0`), as C and numpy give.
//!
//! Speed is secondary here: each lane is one scalar float64 call (stored
//! from the vector, computed, loaded back), not a vectorised float32
//! polynomial like the activations' kernels.

use super::Registry;
use super::elementwise::{ElementwiseOp, Register, Visit, floats_bf16_from};
use super::{FLOATS, FLOATS_BF16};
use crate::error::LoadError;
use crate::graph::attrs::Attrs;
use crate::kernels::math::MAX_LANES;
use crate::kernels::simd::VecF32;
use crate::tensor::DType;

/// Calls `visit` once per operator of this file (see
/// `activation::each_declared`, which lists the others).
pub(crate) fn each_declared(visit: &mut impl Visit) {
    visit.visit::<Sin>();
    visit.visit::<Cos>();
    visit.visit::<Tan>();
    visit.visit::<Asin>();
    visit.visit::<Acos>();
    visit.visit::<Atan>();
    visit.visit::<Sinh>();
    visit.visit::<Cosh>();
    visit.visit::<Asinh>();
    visit.visit::<Acosh>();
    visit.visit::<Atanh>();
    visit.visit::<Ceil>();
    visit.visit::<Floor>();
    visit.visit::<Round>();
}

/// Registers every operator of this file.
pub fn register(reg: &mut Registry) {
    each_declared(&mut Register(reg));
}

/// `func` on each float32 lane of `x`, widened to float64 and the result
/// rounded once to float32.
#[inline(always)]
fn per_lane<V: VecF32>(token: V::Token, x: V, func: impl Fn(f64) -> f64) -> V {
    let mut lanes = [0f32; MAX_LANES];
    x.store(&mut lanes);
    for lane in &mut lanes[..V::LANES] {
        *lane = func(f64::from(*lane)) as f32;
    }
    V::load(token, &lanes)
}

/// Declares one float function of one argument, computed in float64:
/// the struct, its doc (with the spec link), the versions (the first is
/// 7 or 9, the second 22, where bfloat16 joined), whether it is monotone
/// increasing with a non-NaN value at ±inf (what the ULP sweep checks),
/// the kernel body and the reference.
macro_rules! float64_fn {
    ($op:ident, $doc:literal, versions $versions:expr, monotone $monotone:literal,
     kernel $kernel:expr, reference $reference:expr) => {
        #[doc = $doc]
        #[doc = ""]
        #[doc = concat!("Spec: <https://onnx.ai/onnx/operators/onnx__", stringify!($op), ".html>")]
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub(crate) struct $op;

        impl ElementwiseOp for $op {
            const NAME: &'static str = stringify!($op);
            const VERSIONS: &'static [i64] = &$versions;
            const CONSUMED_INPUTS_AT_1: bool = false;
            const PREFETCH: bool = true;
            // float64 within 1 ULP (the two implementations), rounded once:
            // at most 1 ULP apart after rounding, on the rare inputs where
            // the two float64 values straddle a float32 rounding boundary.
            const MAX_ULP: u64 = 1;
            const MONOTONE: bool = $monotone;

            fn dtypes(version: i64) -> &'static [DType] {
                floats_bf16_from(22, version)
            }

            fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
                Ok($op)
            }

            fn reference(self, x: f64) -> f64 {
                let reference: fn(f64) -> f64 = $reference;
                reference(x)
            }

            fn scalar(self, x: f64) -> f64 {
                let kernel: fn(f64) -> f64 = $kernel;
                kernel(x)
            }

            #[inline(always)]
            fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
                per_lane(token, x, $kernel)
            }
        }
    };
}

float64_fn!(Sin, "Sin: the sine of radians; NaN at ±inf, sin(-0) = -0.",
    versions [7, 22], monotone false, kernel libm::sin, reference f64::sin);
float64_fn!(Cos, "Cos: the cosine of radians; NaN at ±inf.",
    versions [7, 22], monotone false, kernel libm::cos, reference f64::cos);
float64_fn!(Tan, "Tan: the tangent of radians; NaN at ±inf, tan(-0) = -0.",
    versions [7, 22], monotone false, kernel libm::tan, reference f64::tan);
float64_fn!(Asin, "Asin: the arcsine, in [-π/2, π/2]; NaN outside [-1, 1].",
    versions [7, 22], monotone false, kernel libm::asin, reference f64::asin);
float64_fn!(Acos, "Acos: the arccosine, in [0, π] (decreasing); NaN outside [-1, 1].",
    versions [7, 22], monotone false, kernel libm::acos, reference f64::acos);
float64_fn!(Atan, "Atan: the arctangent, in [-π/2, π/2]; atan(±inf) = ±π/2 rounded.",
    versions [7, 22], monotone true, kernel libm::atan, reference f64::atan);
float64_fn!(Sinh, "Sinh: the hyperbolic sine; ±inf beyond about ±89.4 in float32.",
    versions [9, 22], monotone true, kernel libm::sinh, reference f64::sinh);
float64_fn!(Cosh, "Cosh: the hyperbolic cosine, at least 1; inf beyond about ±89.4 in float32.",
    versions [9, 22], monotone false, kernel libm::cosh, reference f64::cosh);
float64_fn!(Asinh, "Asinh: the inverse hyperbolic sine, odd; asinh(±inf) = ±inf.",
    versions [9, 22], monotone true, kernel libm::asinh, reference f64::asinh);
float64_fn!(Acosh, "Acosh: the inverse hyperbolic cosine; NaN below 1, acosh(1) = 0.",
    versions [9, 22], monotone false, kernel acosh, reference f64::acosh);
float64_fn!(Atanh, "Atanh: the inverse hyperbolic tangent; ±inf at ±1, NaN beyond.",
    versions [9, 22], monotone false, kernel libm::atanh, reference f64::atanh);

/// `libm::acosh` with its domain enforced: libm 0.2.16 gives finite
/// values for inputs below -1 (acosh(-6620) = -13.06; it reads only the
/// exponent, not the sign), where the function is undefined (NaN).
fn acosh(x: f64) -> f64 {
    if x < 1.0 { f64::NAN } else { libm::acosh(x) }
}

/// The dtypes of Ceil and Floor: float16/32/64, and bfloat16 from 13.
fn ceil_floor_dtypes(version: i64) -> &'static [DType] {
    if version >= 13 { FLOATS_BF16 } else { FLOATS }
}

/// Ceil: the least integer value not below `x` (exact); ceil(-0.5) = -0,
/// NaN and ±inf kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Ceil.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ceil;

impl ElementwiseOp for Ceil {
    const NAME: &'static str = "Ceil";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        ceil_floor_dtypes(version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Ceil)
    }

    fn reference(self, x: f64) -> f64 {
        x.ceil()
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        // Every float32 is exact in float64 and so is its ceiling, which
        // is a float32 again: the round trip adds no error.
        per_lane(token, x, libm::ceil)
    }
}

/// Floor: the greatest integer value not above `x` (exact); floor(0.5) =
/// 0, floor(-0) = -0, NaN and ±inf kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Floor.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Floor;

impl ElementwiseOp for Floor {
    const NAME: &'static str = "Floor";
    const VERSIONS: &'static [i64] = &[1, 6, 13];
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        ceil_floor_dtypes(version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Floor)
    }

    fn reference(self, x: f64) -> f64 {
        x.floor()
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        per_lane(token, x, libm::floor)
    }
}

/// Round: to the nearest integer value, halves to the even one (numpy's
/// `round`, IEEE's roundTiesToEven): round(2.5) = 2, round(-0.5) = -0,
/// NaN and ±inf kept.
/// Spec: <https://onnx.ai/onnx/operators/onnx__Round.html>
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Round;

impl ElementwiseOp for Round {
    const NAME: &'static str = "Round";
    const VERSIONS: &'static [i64] = &[11, 22];
    const CONSUMED_INPUTS_AT_1: bool = false;
    const MAX_ULP: u64 = 0;

    fn dtypes(version: i64) -> &'static [DType] {
        floats_bf16_from(22, version)
    }

    fn from_attrs(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Round)
    }

    fn reference(self, x: f64) -> f64 {
        // Written from the definition, apart from the kernel's
        // `round_ties_even`: the floor, then up when the fraction is above
        // a half, or exactly a half with an odd floor. The result keeps
        // x's sign when it is zero (round(-0.3) = -0).
        let floor = x.floor();
        let fraction = x - floor;
        let rounded = if fraction > 0.5 || (fraction == 0.5 && floor % 2.0 != 0.0) { floor + 1.0 } else { floor };
        if rounded == 0.0 { 0f64.copysign(x) } else { rounded }
    }

    fn scalar(self, x: f64) -> f64 {
        x.round_ties_even()
    }

    #[inline(always)]
    fn simd<V: VecF32>(self, token: V::Token, x: V) -> V {
        per_lane(token, x, f64::round_ties_even)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::super::elementwise::find_declared;
    use crate::kernels::simd::Isa;

    /// `name` on float32 `inputs` on every path the CPU has, each output
    /// checked against `want` (NaN for NaN, zeros by sign), within `ulp`.
    fn check(name: &str, cases: &[(f32, f32)], ulp: u32) {
        let op = find_declared(name).expect("declared");
        let inputs: Vec<f32> = cases.iter().map(|case| case.0).collect();
        for isa in Isa::supported() {
            let mut out = vec![0f32; inputs.len()];
            op.apply_f32_isa(isa, &inputs, &mut out);
            for (&(x, want), got) in cases.iter().zip(out) {
                let ok = if want.is_nan() {
                    got.is_nan()
                } else if want == 0.0 || want.is_infinite() {
                    got.to_bits() == want.to_bits()
                } else {
                    got.to_bits().abs_diff(want.to_bits()) <= ulp && got.signum() == want.signum()
                };
                assert!(ok, "{name}({x:e}) on {isa:?} = {got:e}, want {want:e}");
            }
        }
    }

    #[test]
    fn trigonometric_special_values_and_known_results() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        let pi = std::f32::consts::PI;
        // Wanted values from the mathematical identities (sin(π/6) = 1/2
        // is for the float32 nearest π/6, so within a few ULP) and, at
        // f32::MAX, numpy's float64 sin and cos rounded.
        check("Sin", &[(0.0, 0.0), (-0.0, -0.0), (inf, nan), (-inf, nan), (nan, nan), (pi / 6.0, 0.5)], 2);
        check("Sin", &[(1e-30, 1e-30), (-1e-40, -1e-40), (f32::MAX, -0.521_876_5)], 1);
        check("Cos", &[(0.0, 1.0), (-0.0, 1.0), (inf, nan), (nan, nan), (pi / 3.0, 0.5), (f32::MAX, 0.853_021)], 2);
        check("Tan", &[(-0.0, -0.0), (pi / 4.0, 1.0), (-pi / 4.0, -1.0), (inf, nan), (nan, nan)], 2);
        check("Asin", &[(1.0, pi / 2.0), (-1.0, -pi / 2.0), (-0.0, -0.0), (1.000_000_1, nan), (-inf, nan)], 0);
        check("Asin", &[(0.5, pi / 6.0)], 1);
        check("Acos", &[(1.0, 0.0), (-1.0, pi), (0.0, pi / 2.0), (0.5, pi / 3.0), (-1.000_000_1, nan), (nan, nan)], 1);
        check("Atan", &[(inf, pi / 2.0), (-inf, -pi / 2.0), (1.0, pi / 4.0), (-0.0, -0.0), (nan, nan)], 0);
    }

    #[test]
    fn hyperbolic_special_values_and_known_results() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        // sinh(1) = (e - 1/e)/2, cosh(1) = (e + 1/e)/2, asinh(1) =
        // ln(1 + √2), acosh(2) = ln(2 + √3), atanh(1/2) = ln(3)/2, in
        // float64 from the exponentials and logarithms, rounded.
        let e = std::f64::consts::E;
        let sinh_1 = ((e - 1.0 / e) / 2.0) as f32;
        let cosh_1 = ((e + 1.0 / e) / 2.0) as f32;
        let asinh_1 = (1.0 + 2f64.sqrt()).ln() as f32;
        let acosh_2 = (2.0 + 3f64.sqrt()).ln() as f32;
        let atanh_half = (3f64.ln() / 2.0) as f32;
        check("Sinh", &[(1.0, sinh_1), (-1.0, -sinh_1), (-0.0, -0.0), (89.5, inf), (-89.5, -inf), (nan, nan)], 1);
        check("Sinh", &[(inf, inf), (-inf, -inf), (89.0, 2.244_806_4e38)], 1);
        check("Cosh", &[(0.0, 1.0), (-1.0, cosh_1), (1.0, cosh_1), (-89.5, inf), (-inf, inf), (nan, nan)], 1);
        check("Asinh", &[(1.0, asinh_1), (-1.0, -asinh_1), (-0.0, -0.0), (inf, inf), (-inf, -inf), (nan, nan)], 1);
        check("Asinh", &[(f32::MAX, 89.415_985)], 1);
        check("Acosh", &[(1.0, 0.0), (2.0, acosh_2), (0.999_999_94, nan), (-1.0, nan), (inf, inf), (nan, nan)], 1);
        check("Atanh", &[(1.0, inf), (-1.0, -inf), (0.5, atanh_half), (-0.0, -0.0), (1.000_000_1, nan)], 1);
    }

    #[test]
    fn ceil_floor_and_round_half_to_even() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        // Above 2^23 every float32 is an integer already.
        let big = 8_388_609.0f32;
        check("Ceil", &[(-0.5, -0.0), (0.2, 1.0), (-1.5, -1.0), (1.0, 1.0), (big, big), (-inf, -inf), (nan, nan)], 0);
        check("Ceil", &[(f32::from_bits(1), 1.0), (-f32::from_bits(1), -0.0), (8_388_607.5, 8_388_608.0)], 0);
        check("Floor", &[(-0.5, -1.0), (0.5, 0.0), (-0.0, -0.0), (1.999_999_9, 1.0), (inf, inf), (nan, nan)], 0);
        check("Floor", &[(-f32::from_bits(1), -1.0), (-8_388_607.5, -8_388_608.0)], 0);
        #[rustfmt::skip]
        check("Round", &[
            (0.5, 0.0), (1.5, 2.0), (2.5, 2.0), (-0.5, -0.0), (-1.5, -2.0), (-2.5, -2.0), (2.500_000_2, 3.0),
            (0.499_999_97, 0.0), (-0.3, -0.0), (8_388_607.5, 8_388_608.0), (8_388_606.5, 8_388_606.0),
            (inf, inf), (-inf, -inf), (nan, nan), (f32::MAX, f32::MAX),
        ], 0);
    }

    /// The ONNX node tests' example: Round's spec table, as numpy rounds.
    #[test]
    fn round_matches_the_spec_example_in_float64_and_float16() {
        let inputs = [0.1, 0.5, 0.9, 1.2, 1.5, 1.8, 2.3, 2.5, 2.7, -1.1, -1.5, -1.9, -2.2, -2.5, -2.8];
        let wants = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, -1.0, -2.0, -2.0, -2.0, -2.0, -3.0];
        let op = find_declared("Round").expect("declared").node(22);
        let par = crate::kernels::Parallel::serial();
        let ctx = crate::ops::ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let x = crate::tensor::Tensor::from(ArrayD::from_shape_vec(IxDyn(&[15]), inputs.to_vec()).unwrap());
        let y = op.run(&mut [Some(std::borrow::Cow::Owned(x))], &ctx).unwrap();
        assert_eq!(y.to_f64_vec(), wants);
        let halves: Vec<half::f16> = inputs.iter().map(|&v| half::f16::from_f64(v)).collect();
        let x = crate::tensor::Tensor::from(ArrayD::from_shape_vec(IxDyn(&[15]), halves).unwrap());
        let y = op.run(&mut [Some(std::borrow::Cow::Owned(x))], &ctx).unwrap();
        assert_eq!(y.to_f64_vec(), wants);
    }

    #[test]
    fn bfloat16_from_22_and_13_only() {
        let first = |name| crate::ops::Registry::builtin().find("", name).map(|entry| entry.versions[0]);
        assert_eq!([first("Sin"), first("Sinh"), first("Round"), first("Ceil")], [Some(7), Some(9), Some(11), Some(1)]);
        let registry = crate::ops::Registry::builtin();
        for (name, old, new) in [("Sin", 7, 22), ("Acosh", 9, 22), ("Round", 11, 22), ("Ceil", 6, 13), ("Floor", 1, 13)]
        {
            let entry = registry.find("", name).expect("registered");
            assert!(!(entry.dtypes)(old).contains(&crate::tensor::DType::BF16), "{name} {old}");
            assert!((entry.dtypes)(new).contains(&crate::tensor::DType::BF16), "{name} {new}");
        }
    }
}
