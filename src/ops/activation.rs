//! Elementwise activations: Relu, LeakyRelu, Sigmoid, Tanh.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__Relu.html>
//! - <https://onnx.ai/onnx/operators/onnx__LeakyRelu.html>
//! - <https://onnx.ai/onnx/operators/onnx__Sigmoid.html>
//! - <https://onnx.ai/onnx/operators/onnx__Tanh.html>
//!
//! | op        | opset | change                                             |
//! |-----------|-------|----------------------------------------------------|
//! | all four  | 1     | legacy `consumed_inputs` attribute (ignored hint)  |
//! | all four  | 6     | attribute dropped; float16/32/64                   |
//! | Relu, Sigmoid, Tanh | 13 | adds bfloat16                           |
//! | Relu      | 14    | adds int8, int16, int32, int64                     |
//! | LeakyRelu | 16    | adds bfloat16; `alpha` default 0.01 throughout     |
//!
//! float16 and bfloat16 compute in f32 and round once at the end.

use std::borrow::Cow;

use half::{bf16, f16};
use ndarray::{ArrayBase, ArrayD, Data, IxDyn, Zip};

use super::{ChainKernel, ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::kernels::Parallel;
use crate::kernels::unary::{self, Unary};
use crate::runtime::buffers::output_shared;
use crate::tensor::{DType, Element, SharedArray, Tensor};

const RELU_14: &[DType] =
    &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I8, DType::I16, DType::I32, DType::I64];

/// Registers the four activations.
pub fn register(reg: &mut Registry) {
    reg.add("", "Relu", &[1, 6, 13, 14], relu_dtypes, Relu::from_node);
    reg.add(
        "",
        "LeakyRelu",
        &[1, 6, 16],
        |version| if version >= 16 { FLOATS_BF16 } else { FLOATS },
        LeakyRelu::from_node,
    );
    reg.add("", "Sigmoid", &[1, 6, 13], floats_bf16_from_13, Sigmoid::from_node);
    reg.add("", "Tanh", &[1, 6, 13], floats_bf16_from_13, Tanh::from_node);
}

fn relu_dtypes(version: i64) -> &'static [DType] {
    match version {
        14.. => RELU_14,
        13 => FLOATS_BF16,
        _ => FLOATS,
    }
}

fn floats_bf16_from_13(version: i64) -> &'static [DType] {
    if version >= 13 { FLOATS_BF16 } else { FLOATS }
}

/// Opset 1 carried `consumed_inputs`, an in-place hint with no effect on
/// results; it is read so that `Attrs::finish` accepts it.
fn legacy_consumed_inputs(attrs: &mut Attrs<'_>, version: i64) -> Result<(), LoadError> {
    if version < 6 {
        attrs.ints("consumed_inputs")?;
    }
    Ok(())
}

/// Relu: `max(x, 0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relu {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Relu {
    /// Reads the node's attributes.
    ///
    /// # Errors
    /// A wrongly typed `consumed_inputs` (opset 1).
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        Ok(Relu { dtypes: relu_dtypes(version) })
    }
}

impl Op for Relu {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn chains(&self) -> bool {
        true
    }

    fn chain_kernel(&self, _shape: &[usize]) -> Option<ChainKernel> {
        Some(ChainKernel::Map(Unary::Relu))
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Relu")?;
        check_dtype("Relu", x.dtype(), self.dtypes)?;
        let out = match x.dtype() {
            DType::I8 | DType::I16 | DType::I32 | DType::I64 => relu_int(x, ctx)?,
            _ => map_float(x, Unary::Relu, ctx)?,
        };
        Ok(out)
    }
}

/// Relu on integers: in place when the data may be overwritten (see
/// [`take_unique`]), else into an output buffer.
fn relu_int(x: Cow<'_, Tensor>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    fn apply<'a, T: Element + PartialOrd + Default>(
        x: Cow<'a, Tensor>,
        ctx: &ExecCtx<'_>,
    ) -> Result<Tensor, Cow<'a, Tensor>> {
        let x = match take_unique::<T>(x) {
            Ok(array) => return Ok(inplace(array, ctx.par, unary::relu_int_inplace).into()),
            Err(x) => x,
        };
        let Some(array) = T::shared(&x) else {
            return Err(x);
        };
        let mut out = output_shared::<T>(ctx.pool, array.shape());
        Zip::from(&mut out).and(array).for_each(|out, &value| *out = unary::relu(value));
        Ok(out.into())
    }
    let x = match apply::<i8>(x, ctx) {
        Ok(out) => return Ok(out),
        Err(x) => x,
    };
    let x = match apply::<i16>(x, ctx) {
        Ok(out) => return Ok(out),
        Err(x) => x,
    };
    let x = match apply::<i32>(x, ctx) {
        Ok(out) => return Ok(out),
        Err(x) => x,
    };
    apply::<i64>(x, ctx).map_err(|x| OpError::UnsupportedDtype { op: "Relu", dtype: x.dtype() })
}

/// LeakyRelu: `x` for `x > 0`, else `alpha * x`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakyRelu {
    /// Slope for negative inputs (ONNX default 0.01).
    pub alpha: f32,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl LeakyRelu {
    /// Reads `alpha` (default 0.01).
    ///
    /// # Errors
    /// `alpha` of another type than float, or a non-finite `alpha`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        let alpha = attrs.f32("alpha")?.unwrap_or(0.01);
        let dtypes = if version >= 16 { FLOATS_BF16 } else { FLOATS };
        Ok(LeakyRelu { alpha, dtypes })
    }
}

impl Op for LeakyRelu {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn chains(&self) -> bool {
        true
    }

    fn chain_kernel(&self, _shape: &[usize]) -> Option<ChainKernel> {
        Some(ChainKernel::Map(Unary::LeakyRelu { alpha: self.alpha }))
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "LeakyRelu")?;
        check_dtype("LeakyRelu", x.dtype(), self.dtypes)?;
        map_float(x, Unary::LeakyRelu { alpha: self.alpha }, ctx)
    }
}

/// Sigmoid: `1 / (1 + exp(-x))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sigmoid {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Sigmoid {
    /// Reads the node's attributes (none since opset 6).
    ///
    /// # Errors
    /// A wrongly typed `consumed_inputs` (opset 1).
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        Ok(Sigmoid { dtypes: floats_bf16_from_13(version) })
    }
}

impl Op for Sigmoid {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn chains(&self) -> bool {
        true
    }

    fn chain_kernel(&self, _shape: &[usize]) -> Option<ChainKernel> {
        Some(ChainKernel::Map(Unary::Sigmoid))
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Sigmoid")?;
        check_dtype("Sigmoid", x.dtype(), self.dtypes)?;
        map_float(x, Unary::Sigmoid, ctx)
    }
}

/// Tanh: hyperbolic tangent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tanh {
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Tanh {
    /// Reads the node's attributes (none since opset 6).
    ///
    /// # Errors
    /// A wrongly typed `consumed_inputs` (opset 1).
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        legacy_consumed_inputs(attrs, version)?;
        Ok(Tanh { dtypes: floats_bf16_from_13(version) })
    }
}

impl Op for Tanh {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn chains(&self) -> bool {
        true
    }

    fn chain_kernel(&self, _shape: &[usize]) -> Option<ChainKernel> {
        Some(ChainKernel::Map(Unary::Tanh))
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Tanh")?;
        check_dtype("Tanh", x.dtype(), self.dtypes)?;
        map_float(x, Unary::Tanh, ctx)
    }
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

/// Applies an elementwise float function: in place when the input's buffer
/// may be overwritten (see [`take_unique`]), else into an output buffer
/// (reused from the session's pool when there is one). float16 and
/// bfloat16 go through f32 and round once.
pub(crate) fn map_float(x: Cow<'_, Tensor>, op: Unary, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    let par = ctx.par;
    let x = match take_unique::<f32>(x) {
        Ok(array) => return Ok(Tensor::F32(inplace(array, par, |data, par| unary::apply_f32_inplace(op, data, par)))),
        Err(x) => x,
    };
    let x = match take_unique::<f64>(x) {
        Ok(array) => return Ok(Tensor::F64(inplace(array, par, |data, par| unary::apply_f64_inplace(op, data, par)))),
        Err(x) => x,
    };
    Ok(match x.as_ref() {
        Tensor::F32(array) => Tensor::F32(mapped(array, ctx, |src, dst, par| unary::apply_f32(op, src, dst, par))),
        Tensor::F64(array) => Tensor::F64(mapped(array, ctx, |src, dst, par| unary::apply_f64(op, src, dst, par))),
        other => through_f32(other, par, |data, par| unary::apply_f32_inplace(op, data, par))
            .ok_or(OpError::UnsupportedDtype { op: op_name(op), dtype: other.dtype() })?,
    })
}

fn op_name(op: Unary) -> &'static str {
    match op {
        Unary::Relu => "Relu",
        Unary::LeakyRelu { .. } => "LeakyRelu",
        Unary::Sigmoid => "Sigmoid",
        Unary::Tanh => "Tanh",
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

#[cfg(test)]
mod tests {
    use half::{bf16, f16};
    use ndarray::{ArrayD, IxDyn, array};

    use super::*;
    use crate::kernels::par::PAR_MIN_ELEMS;

    /// float64 references, written independently of the kernels.
    fn reference(op: Unary, x: f64) -> f64 {
        match op {
            Unary::Relu => {
                if x.is_nan() || x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Unary::LeakyRelu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    x * f64::from(alpha)
                }
            }
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
        }
    }

    fn op_for(op: Unary, version: i64) -> Box<dyn Op> {
        match op {
            Unary::Relu => Box::new(Relu { dtypes: relu_dtypes(version) }),
            Unary::LeakyRelu { alpha } => {
                Box::new(LeakyRelu { alpha, dtypes: if version >= 16 { FLOATS_BF16 } else { FLOATS } })
            }
            Unary::Sigmoid => Box::new(Sigmoid { dtypes: floats_bf16_from_13(version) }),
            Unary::Tanh => Box::new(Tanh { dtypes: floats_bf16_from_13(version) }),
        }
    }

    /// Runs `op` on `x`, once lending the input and once handing it over
    /// (the in-place path), and checks both give the same bits.
    fn run(op: &dyn Op, x: &Tensor) -> Result<Tensor, OpError> {
        let par = Parallel::global();
        let ctx = ExecCtx { par: &par, pool: None };
        let lent = op.run(&mut [Some(Cow::Borrowed(x))], &ctx);
        // A buffer of its own is overwritten in place; a clone shares the
        // caller's buffer, which must be read, not written.
        let owned = op.run(&mut [Some(Cow::Owned(x.deep_copy()))], &ctx);
        let shared = op.run(&mut [Some(Cow::Owned(x.clone()))], &ctx);
        for other in [&owned, &shared] {
            match (&lent, other) {
                (Ok(a), Ok(b)) => assert_eq!(a.to_le_bytes(), b.to_le_bytes(), "lent and owned paths differ"),
                (Err(a), Err(b)) => assert_eq!(a, b),
                _ => panic!("lent {lent:?} vs owned {other:?}"),
            }
        }
        if let Ok(out) = &shared {
            assert!(!out.shares_data(x), "a shared input was written in place");
        }
        lent
    }

    /// Distance in representable f32 values.
    fn ulp_f32(a: f32, b: f32) -> u64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        let order = |v: f32| {
            let bits = v.to_bits() as i64;
            if bits < 0 || v.is_sign_negative() { -(bits & 0x7fff_ffff) } else { bits }
        };
        order(a).abs_diff(order(b))
    }

    const OPS: [Unary; 4] = [Unary::Relu, Unary::LeakyRelu { alpha: 0.01 }, Unary::Sigmoid, Unary::Tanh];

    /// Inputs covering signs, zeros, NaN, infinities, denormals, tiny and huge magnitudes.
    fn edge_inputs() -> Vec<f32> {
        vec![
            -1.0,
            2.0,
            -3.0,
            4.0,
            0.0,
            -0.0,
            0.5,
            -0.5,
            1e-3,
            -1e-3,
            1e-8,
            -1e-8,
            1e-40,
            -1e-40,
            10.0,
            -10.0,
            20.0,
            -20.0,
            88.0,
            -88.0,
            100.0,
            -100.0,
            1e4,
            -1e4,
            3.4e38,
            -3.4e38,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
        ]
    }

    #[test]
    fn float32_matches_float64_reference_within_4_ulp_and_exactly_for_relus() {
        for op in OPS {
            let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[31]), edge_inputs()).unwrap());
            let y = run(op_for(op, 13).as_ref(), &x).unwrap();
            let y = y.as_f32().unwrap();
            for (&input, &got) in edge_inputs().iter().zip(y.iter()) {
                let want = reference(op, f64::from(input)) as f32;
                let allowed = if matches!(op, Unary::Relu | Unary::LeakyRelu { .. }) { 0 } else { 4 };
                assert!(ulp_f32(got, want) <= allowed, "{op:?}({input:e}) = {got:e}, want {want:e}");
                if !want.is_nan() && want != 0.0 {
                    assert_eq!(got.is_sign_negative(), want.is_sign_negative(), "{op:?}({input:e}) sign");
                }
            }
        }
    }

    #[test]
    fn float64_matches_float64_reference_closely() {
        for op in OPS {
            let inputs: Vec<f64> = edge_inputs().into_iter().map(f64::from).chain([1e-300, -700.0, 700.0]).collect();
            let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[inputs.len()]), inputs.clone()).unwrap());
            let y = run(op_for(op, 6).as_ref(), &x).unwrap();
            for (&input, got) in inputs.iter().zip(y.as_f64().unwrap().iter()) {
                let want = reference(op, input);
                assert!(
                    got == &want
                        || (got.is_nan() && want.is_nan())
                        || (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                    "{op:?}({input}) = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn half_types_compute_in_f32_and_round_once() {
        for op in OPS {
            let inputs = [-3.0f32, -0.5, 0.0, 0.25, 2.0, 9.5, -60000.0, 60000.0];
            let halves = Tensor::from(
                ArrayD::from_shape_vec(IxDyn(&[8]), inputs.iter().map(|&v| f16::from_f32(v)).collect()).unwrap(),
            );
            let y = run(op_for(op, 13).as_ref(), &halves).unwrap();
            let Tensor::F16(y) = y else { panic!("float16 in, float16 out") };
            for (&input, got) in inputs.iter().zip(y.iter()) {
                let want = f16::from_f64(reference(op, f64::from(f16::from_f32(input).to_f32())));
                assert!(
                    (got.to_f64() - want.to_f64()).abs() <= f64::from(f16::EPSILON) * want.to_f64().abs().max(1e-4),
                    "{op:?}({input}) = {got}, want {want}"
                );
            }
            let brains = Tensor::from(
                ArrayD::from_shape_vec(IxDyn(&[8]), inputs.iter().map(|&v| bf16::from_f32(v)).collect()).unwrap(),
            );
            let version = if matches!(op, Unary::LeakyRelu { .. }) { 16 } else { 13 };
            let Tensor::BF16(y) = run(op_for(op, version).as_ref(), &brains).unwrap() else {
                panic!("bfloat16 in, bfloat16 out")
            };
            for (&input, got) in inputs.iter().zip(y.iter()) {
                let want = bf16::from_f64(reference(op, f64::from(bf16::from_f32(input).to_f32())));
                assert!(
                    (got.to_f64() - want.to_f64()).abs() <= f64::from(bf16::EPSILON) * want.to_f64().abs().max(1e-4),
                    "{op:?}({input}) = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn a_handed_over_buffer_is_overwritten_in_place_and_a_shared_one_never() {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None };
        let inputs = [
            Tensor::from(array![-1.0f32, 2.0].into_dyn()),
            Tensor::from(array![-1.0f64, 2.0].into_dyn()),
            Tensor::from(array![-1i32, 2].into_dyn()),
        ];
        for x in inputs {
            let op = op_for(Unary::Relu, 14);
            let ptr = x.data_ptr();
            let kept = x.clone();
            // Shared with `kept`: computed into a new buffer, `kept` intact.
            let y = op.run(&mut [Some(Cow::Owned(x))], &ctx).unwrap();
            assert!(!y.shares_data(&kept) && kept.to_f64_vec() == [-1.0, 2.0], "{:?}", kept.dtype());
            // Handed over and unique: the same buffer, overwritten.
            let y = op.run(&mut [Some(Cow::Owned(kept))], &ctx).unwrap();
            assert_eq!((y.data_ptr(), y.to_f64_vec()), (ptr, vec![0.0, 2.0]), "{:?}", y.dtype());
        }
    }

    #[test]
    fn dtypes_follow_the_schema_of_each_version() {
        let brain = Tensor::from(array![bf16::ONE].into_dyn());
        let ints = Tensor::from(array![-3i32, 0, 5].into_dyn());
        struct Case {
            op: Unary,
            version: i64,
            input: Tensor,
            expected: Result<Vec<f64>, OpError>,
        }
        let unsupported = |op: &'static str, dtype| Err(OpError::UnsupportedDtype { op, dtype });
        let cases = [
            Case { op: Unary::Relu, version: 6, input: brain.clone(), expected: unsupported("Relu", DType::BF16) },
            Case { op: Unary::Relu, version: 13, input: brain.clone(), expected: Ok(vec![1.0]) },
            Case { op: Unary::Relu, version: 13, input: ints.clone(), expected: unsupported("Relu", DType::I32) },
            Case { op: Unary::Relu, version: 14, input: ints.clone(), expected: Ok(vec![0.0, 0.0, 5.0]) },
            Case {
                op: Unary::Relu,
                version: 14,
                input: Tensor::from(array![i8::MIN, i8::MAX].into_dyn()),
                expected: Ok(vec![0.0, 127.0]),
            },
            Case {
                op: Unary::Relu,
                version: 14,
                input: Tensor::from(array![i64::MIN, 7].into_dyn()),
                expected: Ok(vec![0.0, 7.0]),
            },
            Case {
                op: Unary::Relu,
                version: 14,
                input: Tensor::from(array![-1i16, 300].into_dyn()),
                expected: Ok(vec![0.0, 300.0]),
            },
            Case {
                op: Unary::LeakyRelu { alpha: 0.01 },
                version: 6,
                input: brain.clone(),
                expected: unsupported("LeakyRelu", DType::BF16),
            },
            Case { op: Unary::LeakyRelu { alpha: 0.01 }, version: 16, input: brain.clone(), expected: Ok(vec![1.0]) },
            Case {
                op: Unary::Sigmoid,
                version: 6,
                input: brain.clone(),
                expected: unsupported("Sigmoid", DType::BF16),
            },
            Case { op: Unary::Tanh, version: 13, input: ints.clone(), expected: unsupported("Tanh", DType::I32) },
            Case {
                op: Unary::Sigmoid,
                version: 1,
                input: Tensor::from(array![0.0f64].into_dyn()),
                expected: Ok(vec![0.5]),
            },
        ];
        for case in cases {
            let result = run(op_for(case.op, case.version).as_ref(), &case.input).map(|t| t.to_f64_vec());
            assert_eq!(result, case.expected, "{:?} v{}", case.op, case.version);
        }
    }

    #[test]
    fn shapes_survive_empty_scalar_transposed_and_large_inputs() {
        for op in OPS {
            let boxed = op_for(op, 13);
            let empty = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[0, 5])));
            assert_eq!(run(boxed.as_ref(), &empty).unwrap().shape(), [0, 5]);
            let scalar = Tensor::from(ndarray::arr0(-2.0f32).into_dyn());
            let y = run(boxed.as_ref(), &scalar).unwrap();
            assert_eq!((y.shape(), y.to_f64_vec()[0] as f32), (&[][..], reference(op, -2.0) as f32));
            // A transposed (non-contiguous) input keeps its logical order.
            let matrix = array![[1.0f32, -2.0, 3.0], [-4.0, 5.0, -6.0]];
            let transposed = Tensor::from(matrix.t().to_owned().into_dyn());
            let view_input = Tensor::from(matrix.clone().reversed_axes().into_dyn());
            let (a, b) = (run(boxed.as_ref(), &transposed).unwrap(), run(boxed.as_ref(), &view_input).unwrap());
            assert_eq!(a.to_f64_vec(), b.to_f64_vec());
            assert_eq!(b.shape(), [3, 2]);
            assert_eq!(b.to_f64_vec()[1] as f32, reference(op, -4.0) as f32);
            // Above the parallel threshold, every element is still computed.
            let n = PAR_MIN_ELEMS * 3 + 17;
            let big: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 1e-3).collect();
            let y =
                run(boxed.as_ref(), &Tensor::from(ArrayD::from_shape_vec(IxDyn(&[n]), big.clone()).unwrap())).unwrap();
            for (idx, (&input, got)) in big.iter().zip(y.as_f32().unwrap().iter()).enumerate().step_by(997) {
                assert!(ulp_f32(*got, reference(op, f64::from(input)) as f32) <= 4, "{op:?} at {idx}");
            }
        }
    }
}
