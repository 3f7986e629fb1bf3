//! QuantizeLinear and DequantizeLinear: the linear (affine) quantization
//! of a float tensor into a small integer or float type, and back.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__QuantizeLinear.html>,
//! <https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html>,
//! <https://onnx.ai/onnx/operators/onnx__DynamicQuantizeLinear.html>
//!
//! | opset | change                                                               |
//! |-------|----------------------------------------------------------------------|
//! | 10    | first version: per-tensor scale and zero point, int8/uint8            |
//! | 13    | `axis`: per-axis scale and zero point (1-D, one per slice)            |
//! | 19    | float16/bfloat16 scales, float8 targets, `saturate` (QuantizeLinear)  |
//! | 21    | int16, uint16, int4, uint4; blocked quantization (`block_size`); QuantizeLinear `output_dtype` |
//! | 23    | float4e2m1; QuantizeLinear `precision`; DequantizeLinear `output_dtype` |
//! | 24    | float8e8m0 scales                                                     |
//! | 25    | int2, uint2                                                           |
//!
//! Opset 28 adds the float6 types, which onnxi does not hold; a model at
//! opset 28 resolves to the version 25 code path and refuses them.
//!
//! QuantizeLinear computes `y = saturate(round(x / y_scale) + y_zero_point)`
//! for integer targets (round half to even, then clamp to the target's
//! range), and `y = cast(x / y_scale + y_zero_point)` for the float targets
//! (float8 per `saturate`, float4e2m1 always saturating), as the ONNX
//! reference does. The quotient is rounded once to the type it is computed
//! in: `precision` when given, else x's type when the scale has the same
//! type, else float32 (int32 input: float64, numpy's promotion).
//! DequantizeLinear computes `y = (x - x_zero_point) * x_scale` in float32
//! (float64 when an int32 `x` has a zero point) and rounds to the output
//! type (`output_dtype`, else the scale's type); float8 and float4e2m1
//! inputs ignore their zero point, which must be zero for float8.
//!
//! The scale (and the zero point, which has the scale's shape) is one of:
//! a single value (per tensor, any rank with one element), a 1-D tensor
//! with one value per index of `axis` (per axis), or, with a positive
//! `block_size`, a tensor of x's rank whose `axis` dimension is
//! `ceil(x.shape[axis] / block_size)` and whose other dimensions are x's
//! (blocked).
//!
//! DynamicQuantizeLinear (opset 11, float32 to uint8) finds the scale
//! `(max(0, max(x)) - min(0, min(x))) / 255` (1/255 when that range is
//! empty) and the zero point `round(clamp(-min(0, min(x)) / scale, 0,
//! 255))`, all in float32 as the reference computes them, then quantizes
//! as QuantizeLinear does. An empty `x` or one holding NaN has no range
//! and is an error.
//!
//! Conversions into the storage types go through
//! [`crate::ops::cast`], so they share its exact rules.

use ndarray::{ArrayD, IxDyn};

use super::cast::{cast, cast_saturate};
use super::{
    ExecCtx, Inputs, Op, OutputSet, Registry, check_dtype, check_input_type, first_output, normalize_axis, required,
};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor, onnx_type_name};

/// Registers QuantizeLinear and DequantizeLinear.
pub fn register(reg: &mut Registry) {
    reg.add("", "QuantizeLinear", &[10, 13, 19, 21, 23, 24, 25], quantize_input_types, Quantize::from_node);
    reg.add("", "DequantizeLinear", &[10, 13, 19, 21, 23, 24, 25], dequantize_input_types, Dequantize::from_node);
    reg.add("", "DynamicQuantizeLinear", &[11], |_| &[DType::F32], DynamicQuantize::from_node);
}

/// QuantizeLinear's `x` types (T1) at a version.
fn quantize_input_types(version: i64) -> &'static [DType] {
    if version >= 19 { &[DType::F32, DType::F16, DType::BF16, DType::I32] } else { &[DType::F32, DType::I32] }
}

/// QuantizeLinear's scale types at a version.
fn quantize_scale_types(version: i64) -> &'static [DType] {
    match version {
        24.. => &[DType::F32, DType::F16, DType::BF16, DType::I32, DType::F8E8M0],
        23 => &[DType::F32, DType::F16, DType::BF16, DType::I32],
        19..=22 => &[DType::F32, DType::F16, DType::BF16],
        _ => &[DType::F32],
    }
}

/// The quantized types (QuantizeLinear's outputs, DequantizeLinear's
/// inputs but int32) at a version.
fn quantized_types(version: i64) -> &'static [DType] {
    match version {
        25.. => QUANTIZED,
        23..=24 => &QUANTIZED[..11],
        21..=22 => &QUANTIZED[..10],
        19..=20 => &QUANTIZED[..6],
        _ => &QUANTIZED[..2],
    }
}

/// Every quantized type, in the order the schemas added them.
const QUANTIZED: &[DType] = &[
    DType::I8,
    DType::U8,
    DType::F8E4M3FN,
    DType::F8E4M3FNUZ,
    DType::F8E5M2,
    DType::F8E5M2FNUZ,
    DType::I16,
    DType::U16,
    DType::U4,
    DType::I4,
    DType::F4E2M1,
    DType::U2,
    DType::I2,
];

/// DequantizeLinear's `x` types at a version: the quantized types and int32.
fn dequantize_input_types(version: i64) -> &'static [DType] {
    /// [`QUANTIZED`] with int32 after the 8-bit types.
    const ALL: [DType; 14] = {
        let mut out = [DType::I32; 14];
        let mut index = 0;
        while index < QUANTIZED.len() {
            out[if index < 2 { index } else { index + 1 }] = QUANTIZED[index];
            index += 1;
        }
        out
    };
    match version {
        25.. => &ALL,
        23..=24 => &ALL[..12],
        21..=22 => &ALL[..11],
        19..=20 => &ALL[..7],
        _ => &ALL[..3],
    }
}

/// DequantizeLinear's scale types at a version.
fn dequantize_scale_types(version: i64) -> &'static [DType] {
    match version {
        24.. => &[DType::F32, DType::F16, DType::BF16, DType::F8E8M0],
        19..=23 => &[DType::F32, DType::F16, DType::BF16],
        _ => &[DType::F32],
    }
}

/// The float types a result may have (DequantizeLinear's T3, the
/// `precision` of QuantizeLinear).
const RESULT_FLOATS: &[DType] = &[DType::F32, DType::F16, DType::BF16];

/// The integer range of an integer quantized type; `None` for the floats.
fn int_range(dtype: DType) -> Option<(f64, f64)> {
    Some(match dtype {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::U16 => (0.0, 65535.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::U4 => (0.0, 15.0),
        DType::I4 => (-8.0, 7.0),
        DType::U2 => (0.0, 3.0),
        DType::I2 => (-2.0, 1.0),
        _ => return None,
    })
}

/// Whether `dtype` is one of the float8 types (not float8e8m0).
fn is_float8(dtype: DType) -> bool {
    matches!(dtype, DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ)
}

/// Reads an optional `TensorProto.DataType` attribute (0 or absent: none).
fn read_dtype(attrs: &mut Attrs<'_>, name: &str) -> Result<Option<DType>, LoadError> {
    match attrs.i64(name)? {
        None | Some(0) => Ok(None),
        Some(code) => {
            let code32 = i32::try_from(code).unwrap_or(-1);
            DType::from_onnx_code(code32)
                .map(Some)
                .ok_or_else(|| attrs.error(name, format!("type {} is not supported by onnxi", onnx_type_name(code32))))
        }
    }
}

/// How a scale (and zero point) maps onto x: where, for each element of
/// x, its scale sits.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Length of x's axis.
    axis_len: usize,
    /// Product of x's dimensions after the axis.
    inner: usize,
    /// What the scale holds.
    kind: LayoutKind,
}

/// Which of the three scale layouts applies.
#[derive(Debug, Clone, Copy)]
enum LayoutKind {
    /// One scale for all of x.
    PerTensor,
    /// One scale per index of the axis.
    PerAxis,
    /// Blocks of this many indices along the axis, `n_blocks` of them.
    Blocked { block_size: usize, n_blocks: usize },
}

impl Layout {
    /// Checks the scale's shape against x's and finds the layout.
    fn new(
        op: &'static str,
        x_shape: &[usize],
        scale_shape: &[usize],
        axis: i64,
        block_size: i64,
    ) -> Result<Layout, OpError> {
        let scale_len: usize = scale_shape.iter().product();
        if scale_len == 1 {
            return Ok(Layout { axis_len: 1, inner: 1, kind: LayoutKind::PerTensor });
        }
        let axis = normalize_axis(op, axis, x_shape.len())?;
        let axis_len = x_shape[axis];
        let inner: usize = x_shape[axis + 1..].iter().product();
        if block_size <= 0 {
            if scale_shape != [axis_len] {
                return Err(OpError::Invalid {
                    op,
                    reason: format!(
                        "scale of shape {scale_shape:?} is neither one value nor one per index of axis {axis} of x {x_shape:?}"
                    ),
                });
            }
            return Ok(Layout { axis_len, inner, kind: LayoutKind::PerAxis });
        }
        let block_size = usize::try_from(block_size).unwrap_or(usize::MAX);
        let n_blocks = axis_len.div_ceil(block_size);
        let fits = scale_shape.len() == x_shape.len()
            && scale_shape
                .iter()
                .zip(x_shape)
                .enumerate()
                .all(|(i, (&s, &x))| if i == axis { s == n_blocks } else { s == x });
        if !fits {
            return Err(OpError::Invalid {
                op,
                reason: format!(
                    "scale of shape {scale_shape:?} does not block x {x_shape:?} by {block_size} along axis {axis} \
                     (expected {n_blocks} blocks there and x's other dimensions)"
                ),
            });
        }
        Ok(Layout { axis_len, inner, kind: LayoutKind::Blocked { block_size, n_blocks } })
    }

    /// The scale index of x's element at row-major position `i`.
    fn index(&self, i: usize) -> usize {
        match self.kind {
            LayoutKind::PerTensor => 0,
            LayoutKind::PerAxis => (i / self.inner) % self.axis_len,
            LayoutKind::Blocked { block_size, n_blocks } => {
                let inner = i % self.inner;
                let along = (i / self.inner) % self.axis_len;
                let outer = i / (self.inner * self.axis_len);
                (outer * n_blocks + along / block_size) * self.inner + inner
            }
        }
    }
}

/// Refuses a zero point whose shape is not the scale's.
fn check_zero_point(op: &'static str, zero_point: &Tensor, scale: &Tensor) -> Result<(), OpError> {
    let same = zero_point.shape() == scale.shape() || (zero_point.len() == 1 && scale.len() == 1);
    if same {
        Ok(())
    } else {
        Err(OpError::Invalid {
            op,
            reason: format!(
                "zero point of shape {:?} differs from the scale's {:?}",
                zero_point.shape(),
                scale.shape()
            ),
        })
    }
}

/// `values` (row-major, of `shape`) rounded to `dtype` through Cast and
/// read back as f64.
fn round_to(values: Vec<f64>, shape: &[usize], dtype: DType) -> Result<Vec<f64>, OpError> {
    if dtype == DType::F64 {
        return Ok(values);
    }
    let array = ArrayD::from_shape_vec(IxDyn(shape), values)
        .map_err(|err| OpError::Invalid { op: "QuantizeLinear", reason: err.to_string() })?;
    Ok(cast(&Tensor::from(array), dtype)?.to_f64_vec())
}

/// QuantizeLinear with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantize {
    /// The axis of a per-axis or blocked scale (default 1).
    pub axis: i64,
    /// Whether float8 targets saturate (default true).
    pub saturate: bool,
    /// Blocked quantization's block length along `axis` (0: not blocked).
    pub block_size: i64,
    /// The target type when no zero point gives it (default uint8).
    pub output_dtype: Option<DType>,
    /// The type the division is computed in (default: from the inputs').
    pub precision: Option<DType>,
    version: i64,
}

impl Quantize {
    /// Reads `axis` (13+), `saturate` (19+), `block_size` and
    /// `output_dtype` (21+) and `precision` (23+).
    ///
    /// # Errors
    /// A negative `block_size`, or an `output_dtype`/`precision` outside
    /// the schema's types.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = if version >= 13 { attrs.i64("axis")?.unwrap_or(1) } else { 1 };
        let saturate = if version >= 19 { attrs.i64("saturate")?.unwrap_or(1) != 0 } else { true };
        let (block_size, output_dtype) = if version >= 21 {
            (attrs.i64("block_size")?.unwrap_or(0), read_dtype(attrs, "output_dtype")?)
        } else {
            (0, None)
        };
        if block_size < 0 {
            return Err(attrs.error("block_size", format!("must not be negative, got {block_size}")));
        }
        if let Some(dtype) = output_dtype.filter(|dtype| !quantized_types(version).contains(dtype)) {
            return Err(attrs.error("output_dtype", format!("{dtype} is not a quantized type at opset {version}")));
        }
        let precision = if version >= 23 { read_dtype(attrs, "precision")? } else { None };
        if let Some(dtype) = precision.filter(|dtype| !RESULT_FLOATS.contains(dtype)) {
            return Err(attrs.error("precision", format!("must be float, float16 or bfloat16, not {dtype}")));
        }
        Ok(Quantize { axis, saturate, block_size, output_dtype, precision, version })
    }

    /// The output type: the zero point's, else `output_dtype`, else uint8.
    fn target(&self, zero_point: Option<DType>) -> Result<DType, OpError> {
        match (zero_point, self.output_dtype) {
            (Some(zp), Some(out)) if zp != out => Err(OpError::Invalid {
                op: "QuantizeLinear",
                reason: format!("the zero point is {zp} but output_dtype is {out}"),
            }),
            (Some(zp), _) => Ok(zp),
            (None, Some(out)) => Ok(out),
            (None, None) => Ok(DType::U8),
        }
    }

    /// The type `x / y_scale` is computed in.
    fn compute_type(&self, x: DType, scale: DType) -> DType {
        match self.precision {
            Some(precision) => precision,
            None if x == DType::I32 || scale == DType::I32 => DType::F64,
            None if x == scale => x,
            None => DType::F32,
        }
    }
}

impl Op for Quantize {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        let zero_point = match inputs.get(2) {
            Some(input) => match input.ty {
                Some(ty) => Some(ty.dtype),
                None => return vec![None],
            },
            None => None,
        };
        vec![self.target(zero_point).ok().map(|dtype| ValueType { dtype, dims })]
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("QuantizeLinear", inputs, 0, quantize_input_types(self.version))?;
        check_input_type("QuantizeLinear", inputs, 1, quantize_scale_types(self.version))?;
        check_input_type("QuantizeLinear", inputs, 2, quantized_types(self.version))
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "QuantizeLinear";
        let x = required(inputs, 0, OP)?;
        let scale = required(inputs, 1, OP)?;
        let zero_point = inputs.get_mut(2).and_then(Option::take);
        check_dtype(OP, x.dtype(), quantize_input_types(self.version))?;
        check_dtype(OP, scale.dtype(), quantize_scale_types(self.version))?;
        let target = self.target(zero_point.as_ref().map(|zp| zp.dtype()))?;
        check_dtype(OP, target, quantized_types(self.version))?;
        let layout = Layout::new(OP, x.shape(), scale.shape(), self.axis, self.block_size)?;
        let zero_points = match &zero_point {
            Some(zp) => {
                check_zero_point(OP, zp, &scale)?;
                zp.to_f64_vec()
            }
            None => vec![0.0; scale.len()],
        };
        let scales = scale.to_f64_vec();
        let quotients: Vec<f64> =
            x.to_f64_vec().iter().enumerate().map(|(i, &value)| value / scales[layout.index(i)]).collect();
        let quotients = round_to(quotients, x.shape(), self.compute_type(x.dtype(), scale.dtype()))?;
        let values: Vec<f64> = match int_range(target) {
            Some((low, high)) => quotients
                .iter()
                .enumerate()
                .map(|(i, &q)| {
                    let rounded = if q.is_nan() { 0.0 } else { q.round_ties_even() };
                    (rounded + zero_points[layout.index(i)]).clamp(low, high)
                })
                .collect(),
            // float8 ignores its zero point (zero by the spec), as the
            // reference does; float4e2m1 adds it.
            None if is_float8(target) => quotients,
            None => quotients.iter().enumerate().map(|(i, &q)| q + zero_points[layout.index(i)]).collect(),
        };
        let array = ArrayD::from_shape_vec(IxDyn(x.shape()), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        cast_saturate(&Tensor::from(array), target, self.saturate)
    }
}

/// DequantizeLinear with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Dequantize {
    /// The axis of a per-axis or blocked scale (default 1).
    pub axis: i64,
    /// Blocked quantization's block length along `axis` (0: not blocked).
    pub block_size: i64,
    /// The output type (default: the scale's).
    pub output_dtype: Option<DType>,
    version: i64,
}

impl Dequantize {
    /// Reads `axis` (13+), `block_size` (21+) and `output_dtype` (23+).
    ///
    /// # Errors
    /// A negative `block_size`, or an `output_dtype` that is not float,
    /// float16 or bfloat16.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let axis = if version >= 13 { attrs.i64("axis")?.unwrap_or(1) } else { 1 };
        let block_size = if version >= 21 { attrs.i64("block_size")?.unwrap_or(0) } else { 0 };
        if block_size < 0 {
            return Err(attrs.error("block_size", format!("must not be negative, got {block_size}")));
        }
        let output_dtype = if version >= 23 { read_dtype(attrs, "output_dtype")? } else { None };
        if let Some(dtype) = output_dtype.filter(|dtype| !RESULT_FLOATS.contains(dtype)) {
            return Err(attrs.error("output_dtype", format!("must be float, float16 or bfloat16, not {dtype}")));
        }
        Ok(Dequantize { axis, block_size, output_dtype, version })
    }

    /// The output type: `output_dtype`, else the scale's.
    fn target(&self, scale: DType) -> DType {
        self.output_dtype.unwrap_or(scale)
    }
}

impl Op for Dequantize {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        let dtype = match self.output_dtype {
            Some(dtype) => Some(dtype),
            None => inputs.get(1).and_then(|input| input.ty).map(|ty| ty.dtype),
        };
        vec![dtype.filter(|dtype| RESULT_FLOATS.contains(dtype)).map(|dtype| ValueType { dtype, dims })]
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("DequantizeLinear", inputs, 0, dequantize_input_types(self.version))?;
        check_input_type("DequantizeLinear", inputs, 1, dequantize_scale_types(self.version))?;
        check_input_type("DequantizeLinear", inputs, 2, dequantize_input_types(self.version))
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "DequantizeLinear";
        let x = required(inputs, 0, OP)?;
        let scale = required(inputs, 1, OP)?;
        let zero_point = inputs.get_mut(2).and_then(Option::take);
        check_dtype(OP, x.dtype(), dequantize_input_types(self.version))?;
        check_dtype(OP, scale.dtype(), dequantize_scale_types(self.version))?;
        let target = self.target(scale.dtype());
        if !RESULT_FLOATS.contains(&target) {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!("a {target} scale needs output_dtype float, float16 or bfloat16"),
            });
        }
        let layout = Layout::new(OP, x.shape(), scale.shape(), self.axis, self.block_size)?;
        let float_x = is_float8(x.dtype()) || x.dtype() == DType::F4E2M1;
        let zero_points = match &zero_point {
            Some(zp) => {
                check_zero_point(OP, zp, &scale)?;
                let values = zp.to_f64_vec();
                if is_float8(x.dtype()) && values.iter().any(|&v| v != 0.0 || v.is_sign_negative()) {
                    return Err(OpError::Invalid { op: OP, reason: "a float8 zero point must be zero".into() });
                }
                if !float_x && zp.dtype() != x.dtype() {
                    return Err(OpError::Invalid {
                        op: OP,
                        reason: format!("zero point is {} but x is {}", zp.dtype(), x.dtype()),
                    });
                }
                if float_x { vec![0.0; scale.len()] } else { values }
            }
            None => vec![0.0; scale.len()],
        };
        // The reference's types: x in float32, minus the zero point (in
        // float64 when both are int32, numpy's promotion), times the scale.
        let wide = x.dtype() == DType::I32 && zero_point.is_some();
        let scales = scale.to_f64_vec();
        let values: Vec<f64> = x
            .to_f64_vec()
            .iter()
            .enumerate()
            .map(|(i, &value)| {
                let at = layout.index(i);
                if wide {
                    (value - zero_points[at]) * scales[at]
                } else {
                    // x as float32 (exact but for int32 beyond 2^24); the
                    // difference and product are exact in f64 and round once.
                    let difference = f64::from(value as f32) - zero_points[at];
                    f64::from((f64::from(difference as f32) * scales[at]) as f32)
                }
            })
            .collect();
        let array = ArrayD::from_shape_vec(IxDyn(x.shape()), values)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        let result = Tensor::from(array);
        let result = if wide { result } else { cast(&result, DType::F32)? };
        cast(&result, target)
    }
}

/// DynamicQuantizeLinear: no attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicQuantize;

impl DynamicQuantize {
    /// DynamicQuantizeLinear has no attributes.
    ///
    /// # Errors
    /// None (unknown attributes fail the load elsewhere).
    pub fn from_node(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(DynamicQuantize)
    }
}

/// DynamicQuantizeLinear's scale and zero point for `x`, in float32.
fn dynamic_range(x: &[f32]) -> Result<(f32, f32), OpError> {
    if x.is_empty() || x.iter().any(|value| value.is_nan()) {
        return Err(OpError::Invalid {
            op: "DynamicQuantizeLinear",
            reason: "x is empty or holds NaN, so it has no range to quantize".into(),
        });
    }
    let max = x.iter().fold(0f32, |acc, &value| acc.max(value));
    let min = x.iter().fold(0f32, |acc, &value| acc.min(value));
    let scale = if max == min { 1.0 } else { max - min } / 255.0;
    let zero_point = (0.0 - min / scale).clamp(0.0, 255.0).round_ties_even();
    Ok((scale, zero_point))
}

impl Op for DynamicQuantize {
    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        let scalar = |dtype| Some(ValueType { dtype, dims: Some(Vec::<Dim>::new()) });
        [Some(ValueType { dtype: DType::U8, dims }), scalar(DType::F32), scalar(DType::U8)]
            .into_iter()
            .take(n_outputs)
            .collect()
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("DynamicQuantizeLinear", inputs, 0, &[DType::F32])
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "DynamicQuantizeLinear")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        _ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        const OP: &str = "DynamicQuantizeLinear";
        let x = required(inputs, 0, OP)?;
        let Tensor::F32(array) = x.as_ref() else {
            return Err(OpError::UnsupportedDtype { op: OP, dtype: x.dtype() });
        };
        let values: Vec<f32> = array.iter().copied().collect();
        let (scale, zero_point) = dynamic_range(&values)?;
        let quantized: Vec<u8> = values
            .iter()
            .map(|&value| ((value / scale).round_ties_even() + zero_point).clamp(0.0, 255.0) as u8)
            .collect();
        let y = ArrayD::from_shape_vec(IxDyn(x.shape()), quantized)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        outputs.set(0, Tensor::from(y));
        outputs.set(1, Tensor::from(ndarray::arr0(scale).into_dyn()));
        outputs.set(2, Tensor::from(ndarray::arr0(zero_point as u8).into_dyn()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn, arr0, array};

    use super::*;
    use crate::kernels::Parallel;

    fn run_op(op: &dyn Op, inputs: Vec<Option<Tensor>>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<Option<Cow<'_, Tensor>>> = inputs.into_iter().map(|t| t.map(Cow::Owned)).collect();
        op.run(&mut inputs, &ctx)
    }

    fn quantize(axis: i64, block_size: i64) -> Quantize {
        Quantize { axis, saturate: true, block_size, output_dtype: None, precision: None, version: 25 }
    }

    fn dequantize(axis: i64, block_size: i64) -> Dequantize {
        Dequantize { axis, block_size, output_dtype: None, version: 25 }
    }

    /// The ONNX spec's first example (test_quantizelinear): saturation at
    /// both ends of uint8.
    #[test]
    fn quantizes_per_tensor_with_saturation() {
        let x = Tensor::from(array![0f32, 2.0, 3.0, 1000.0, -254.0, -1000.0].into_dyn());
        let y = run_op(
            &quantize(1, 0),
            vec![Some(x), Some(Tensor::from(arr0(2f32).into_dyn())), Some(Tensor::from(arr0(128u8).into_dyn()))],
        )
        .unwrap();
        assert_eq!(y, Tensor::from(array![128u8, 129, 130, 255, 1, 0].into_dyn()));
    }

    /// Ties round to even: 0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → 0, -1.5 → -2.
    #[test]
    fn rounds_half_to_even() {
        let x = Tensor::from(array![0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5].into_dyn());
        let y = run_op(
            &quantize(1, 0),
            vec![Some(x), Some(Tensor::from(arr0(1f32).into_dyn())), Some(Tensor::from(arr0(0i8).into_dyn()))],
        )
        .unwrap();
        assert_eq!(y, Tensor::from(array![0i8, 2, 2, 0, -2, -2, 4].into_dyn()));
    }

    /// Per-axis and blocked scales against the definition written out
    /// here in f64: each element divided by its own slice's or block's
    /// scale, rounded half to even, plus its zero point, clamped.
    #[test]
    fn per_axis_and_blocked_match_the_definition() {
        let shape = [2usize, 5, 3];
        let x = ArrayD::from_shape_fn(IxDyn(&shape), |i| (i[0] * 37 + i[1] * 11 + i[2] * 5) as f32 * 1.25 - 40.0);
        // Per axis 1.
        let scales = array![0.5f32, 1.0, 2.0, 4.0, 0.25];
        let zps = array![-3i8, 0, 5, 100, -100];
        let y = run_op(
            &quantize(1, 0),
            vec![
                Some(Tensor::from(x.clone())),
                Some(Tensor::from(scales.clone().into_dyn())),
                Some(Tensor::from(zps.clone().into_dyn())),
            ],
        )
        .unwrap();
        let expected = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
            let v = f64::from(x[[i[0], i[1], i[2]]]) / f64::from(scales[i[1]]);
            (v.round_ties_even() + f64::from(zps[i[1]])).clamp(-128.0, 127.0) as i8
        });
        assert_eq!(y, Tensor::from(expected));
        // Blocked along axis 1 by 2: 3 blocks, the last one short.
        let block_scales = ArrayD::from_shape_fn(IxDyn(&[2, 3, 3]), |i| 0.5 * (1 + i[0] + i[1] + 2 * i[2]) as f32);
        let y = run_op(
            &quantize(1, 2),
            vec![Some(Tensor::from(x.clone())), Some(Tensor::from(block_scales.clone())), None],
        )
        .unwrap();
        let expected = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
            let v = f64::from(x[[i[0], i[1], i[2]]]) / f64::from(block_scales[[i[0], i[1] / 2, i[2]]]);
            v.round_ties_even().clamp(0.0, 255.0) as u8
        });
        assert_eq!(y, Tensor::from(expected));
        // And back: (q - zp) * scale, blocked.
        let q = ArrayD::from_shape_fn(IxDyn(&shape), |i| (i[0] * 7 + i[1] * 3 + i[2]) as i8 - 9);
        let zp = ArrayD::from_shape_fn(IxDyn(&[2, 3, 3]), |i| (i[1] + i[2]) as i8 - 2);
        let y = run_op(
            &dequantize(-2, 2),
            vec![
                Some(Tensor::from(q.clone())),
                Some(Tensor::from(block_scales.clone())),
                Some(Tensor::from(zp.clone())),
            ],
        )
        .unwrap();
        let expected = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
            let b = [i[0], i[1] / 2, i[2]];
            ((f64::from(q[[i[0], i[1], i[2]]]) - f64::from(zp[b])) * f64::from(block_scales[b])) as f32
        });
        assert_eq!(y, Tensor::from(expected));
    }

    /// int4 clamps to -8..=7 (not the low bits Cast keeps), uint2 to 0..=3.
    #[test]
    fn small_integer_targets_saturate() {
        let x = Tensor::from(array![-20f32, -8.4, 0.6, 6.5, 7.5, 30.0].into_dyn());
        let scale = Tensor::from(arr0(1f32).into_dyn());
        let op = Quantize { output_dtype: Some(DType::I4), ..quantize(1, 0) };
        let y = run_op(&op, vec![Some(x.clone()), Some(scale.clone()), None]).unwrap();
        assert_eq!(y.dtype(), DType::I4);
        assert_eq!(y.to_f64_vec(), vec![-8.0, -8.0, 1.0, 6.0, 7.0, 7.0]);
        let op = Quantize { output_dtype: Some(DType::U2), ..quantize(1, 0) };
        let y = run_op(&op, vec![Some(x), Some(scale), None]).unwrap();
        assert_eq!(y.to_f64_vec(), vec![0.0, 0.0, 1.0, 3.0, 3.0, 3.0]);
    }

    /// Bad shapes and types are errors, not panics.
    #[test]
    fn refuses_mismatched_scales_and_zero_points() {
        let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 4])));
        let bad_scale = Tensor::from(array![1f32, 2.0, 3.0].into_dyn());
        assert!(run_op(&quantize(1, 0), vec![Some(x.clone()), Some(bad_scale), None]).is_err());
        let scale = Tensor::from(array![1f32, 2.0, 3.0, 4.0].into_dyn());
        let zp = Tensor::from(array![1u8, 2].into_dyn());
        assert!(run_op(&quantize(1, 0), vec![Some(x.clone()), Some(scale.clone()), Some(zp)]).is_err());
        let blocked = Tensor::from(ArrayD::<f32>::ones(IxDyn(&[2, 3])));
        assert!(run_op(&quantize(1, 2), vec![Some(x.clone()), Some(blocked), None]).is_err());
        assert!(run_op(&quantize(5, 0), vec![Some(x.clone()), Some(scale.clone()), None]).is_err());
        let op = Quantize { output_dtype: Some(DType::I8), ..quantize(1, 0) };
        let zp = Tensor::from(array![0u8, 0, 0, 0].into_dyn());
        assert!(run_op(&op, vec![Some(x), Some(scale), Some(zp)]).is_err());
    }

    /// The ONNX spec's example (test_dynamicquantizelinear): range
    /// [-3, 2], scale 5/255, zero point round(3 / scale) = 153.
    #[test]
    fn dynamic_quantization_finds_scale_and_zero_point() {
        let x = Tensor::from(array![0f32, 2.0, -3.0, -2.5, 1.34, 0.5].into_dyn());
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut values = vec![None, None, None];
        let wanted = [true, true, true];
        let mut outputs = OutputSet::new(&mut values, &wanted);
        DynamicQuantize.run_outputs(&mut [Some(Cow::Owned(x))], &ctx, &mut outputs).unwrap();
        let scale = 5f32 / 255.0;
        assert_eq!(values[0], Some(Tensor::from(array![153u8, 255, 0, 26, 221, 179].into_dyn())));
        assert_eq!(values[1], Some(Tensor::from(arr0(scale).into_dyn())));
        assert_eq!(values[2], Some(Tensor::from(arr0(153u8).into_dyn())));
        let nan = Tensor::from(array![f32::NAN].into_dyn());
        assert!(DynamicQuantize.run(&mut [Some(Cow::Owned(nan))], &ctx).is_err());
    }
}
