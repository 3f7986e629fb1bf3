//! Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__MaxPool.html>,
//! <https://onnx.ai/onnx/operators/onnx__AveragePool.html>,
//! <https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html>,
//! <https://onnx.ai/onnx/operators/onnx__GlobalMaxPool.html>
//!
//! | op          | opset | change                                                  |
//! |-------------|-------|---------------------------------------------------------|
//! | MaxPool     | 1     | `auto_pad`, `kernel_shape`, `pads`, `strides`            |
//! | MaxPool     | 8     | optional int64 `Indices` output, `storage_order`        |
//! | MaxPool     | 10    | `ceil_mode`, `dilations`                                 |
//! | MaxPool     | 11    | same code path (pads semantics clarified)                |
//! | MaxPool     | 12    | int8, uint8                                              |
//! | MaxPool     | 22    | bfloat16                                                 |
//! | AveragePool | 1     | `auto_pad`, `kernel_shape`, `pads`, `strides`            |
//! | AveragePool | 7     | `count_include_pad`                                      |
//! | AveragePool | 10    | `ceil_mode`                                              |
//! | AveragePool | 11    | same code path                                           |
//! | AveragePool | 19    | `dilations`                                              |
//! | AveragePool | 22    | bfloat16                                                 |
//! | Global*Pool | 1, 22 | bfloat16 from 22                                         |
//!
//! Inputs are `[N, C, D1…Dn]`. MaxPool ignores padded positions; its
//! `Indices` are flat offsets into the whole input (`storage_order = 1`
//! numbers each plane's elements column-major). AveragePool divides by the
//! taps inside the input, or with `count_include_pad` by the taps inside
//! the padded input. float16 and bfloat16 average in float32.

use ndarray::{ArrayD, IxDyn};

use super::conv::{WindowAttrs, check_size, conv_dtypes, infer_from_shapes, standard, with_float};
use super::{ExecCtx, FLOATS, Inputs, Op, OutputSet, Registry, check_dtype, first_output, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::conv::Window;
use crate::kernels::pooling::{self, AverageCount, Planes};
use crate::tensor::{DType, Element, Tensor};

/// Registers the pooling ops.
pub fn register(reg: &mut Registry) {
    reg.add("", "MaxPool", &[1, 8, 10, 11, 12, 22], max_pool_dtypes, MaxPool::from_node);
    reg.add("", "AveragePool", &[1, 7, 10, 11, 19, 22], conv_dtypes, AveragePool::from_node);
    reg.add("", "GlobalAveragePool", &[1, 22], conv_dtypes, GlobalPool::average);
    reg.add("", "GlobalMaxPool", &[1, 22], conv_dtypes, GlobalPool::max);
}

const MAX_POOL_12: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::I8, DType::U8];
const MAX_POOL_22: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I8, DType::U8];

fn max_pool_dtypes(version: i64) -> &'static [DType] {
    match version {
        ..12 => FLOATS,
        12..22 => MAX_POOL_12,
        _ => MAX_POOL_22,
    }
}

/// Reads a 0/1 flag.
fn flag(attrs: &mut Attrs<'_>, name: &str) -> Result<bool, LoadError> {
    match attrs.i64(name)?.unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(attrs.error(name, format!("{other} is not 0 or 1"))),
    }
}

/// The window and output shape of a pooling op over `x`.
fn plan(op: &'static str, attrs: &WindowAttrs, x: &[usize], ceil_mode: bool) -> Result<(Window, Vec<usize>), OpError> {
    if x.len() < 3 {
        return Err(OpError::Invalid {
            op,
            reason: format!("X has shape {x:?}; expected [N, C, D1, …] with at least one spatial axis"),
        });
    }
    let (window, output) = attrs.resolve(op, &x[2..], None, ceil_mode)?;
    let mut shape = x[..2].to_vec();
    shape.extend(&output);
    check_size(op, "the output", &shape)?;
    // The window's offset table has an entry per kernel tap and output
    // position.
    let n_kernel: usize = window.kernel.iter().product();
    check_size(op, "the window table", &[n_kernel, output.iter().product()])?;
    Ok((window, shape))
}

/// MaxPool.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool {
    /// Window attributes.
    pub window: WindowAttrs,
    /// `ceil_mode` (opset 10+).
    pub ceil_mode: bool,
    /// `storage_order = 1`: Indices count column-major within a plane.
    pub column_major: bool,
    /// Whether the version has the `Indices` output (opset 8+).
    pub has_indices: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl MaxPool {
    /// Reads the attributes the version defines.
    ///
    /// # Errors
    /// As [`WindowAttrs::from_node`]; flags other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let window = WindowAttrs::from_node(attrs, version >= 10)?;
        if window.kernel_shape.is_none() {
            return Err(attrs.error("kernel_shape", "is required"));
        }
        let ceil_mode = if version >= 10 { flag(attrs, "ceil_mode")? } else { false };
        let column_major = if version >= 8 { flag(attrs, "storage_order")? } else { false };
        Ok(MaxPool { window, ceil_mode, column_major, has_indices: version >= 8, dtypes: max_pool_dtypes(version) })
    }

    fn typed<T: Element + PartialOrd>(
        &self,
        x: &Tensor,
        lowest: T,
        want_indices: bool,
        ctx: &ExecCtx<'_>,
    ) -> Result<(Tensor, Option<Tensor>), OpError> {
        let (window, shape) = plan("MaxPool", &self.window, x.shape(), self.ceil_mode)?;
        let data = standard::<T>(x).ok_or(OpError::UnsupportedDtype { op: "MaxPool", dtype: x.dtype() })?;
        let input = &x.shape()[2..];
        let planes = shape[0] * shape[1];
        let (values, offsets) = pooling::max_pool(
            &data,
            Planes { count: planes, input, output: &shape[2..] },
            &window,
            lowest,
            want_indices,
            ctx.par,
        );
        let wrap = |err: ndarray::ShapeError| OpError::Invalid { op: "MaxPool", reason: err.to_string() };
        let values = T::wrap(ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(wrap)?);
        if !want_indices {
            return Ok((values, None));
        }
        let in_size: usize = input.iter().product();
        let out_size: usize = shape[2..].iter().product();
        let indices: Vec<i64> = offsets
            .iter()
            .enumerate()
            .map(|(idx, &offset)| {
                let within = if self.column_major { column_major(offset, input) } else { offset };
                ((idx / out_size.max(1)) * in_size + within) as i64
            })
            .collect();
        let indices = Tensor::from(ArrayD::from_shape_vec(IxDyn(&shape), indices).map_err(wrap)?);
        Ok((values, Some(indices)))
    }
}

/// The column-major position of the element at row-major `offset` in a
/// plane of `dims`.
fn column_major(offset: usize, dims: &[usize]) -> usize {
    let mut rest = offset;
    let mut coords = vec![0; dims.len()];
    for dim in (0..dims.len()).rev() {
        coords[dim] = rest % dims[dim];
        rest /= dims[dim];
    }
    coords.iter().zip(dims).rev().fold(0, |acc, (&coord, &size)| acc * size + coord)
}

impl Op for MaxPool {
    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.has_indices { 1..=2 } else { 1..=1 }
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(ValueType::rank);
        let mut out = infer_from_shapes(inputs, rank, |shapes| {
            plan("MaxPool", &self.window, &shapes[0], self.ceil_mode).ok().map(|(_, shape)| shape)
        });
        if n_outputs > 1
            && let Some(Some(first)) = out.first()
        {
            let indices = ValueType { dtype: DType::I64, dims: first.dims.clone() };
            out.push(Some(indices));
        }
        out
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "MaxPool")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let x = required(inputs, 0, "MaxPool")?;
        check_dtype("MaxPool", x.dtype(), self.dtypes)?;
        let want = outputs.wanted(1);
        let (values, indices) = match x.dtype() {
            DType::F32 => self.typed(&x, f32::NEG_INFINITY, want, ctx)?,
            DType::F64 => self.typed(&x, f64::NEG_INFINITY, want, ctx)?,
            DType::F16 => self.typed(&x, half::f16::NEG_INFINITY, want, ctx)?,
            DType::BF16 => self.typed(&x, half::bf16::NEG_INFINITY, want, ctx)?,
            DType::I8 => self.typed(&x, i8::MIN, want, ctx)?,
            DType::U8 => self.typed(&x, u8::MIN, want, ctx)?,
            dtype => return Err(OpError::UnsupportedDtype { op: "MaxPool", dtype }),
        };
        outputs.set(0, values);
        if let Some(indices) = indices {
            outputs.set(1, indices);
        }
        Ok(())
    }
}

/// AveragePool.
#[derive(Debug, Clone, PartialEq)]
pub struct AveragePool {
    /// Window attributes.
    pub window: WindowAttrs,
    /// `ceil_mode` (opset 10+).
    pub ceil_mode: bool,
    /// `count_include_pad` (opset 7+).
    pub count: AverageCount,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl AveragePool {
    /// Reads the attributes the version defines.
    ///
    /// # Errors
    /// As [`WindowAttrs::from_node`]; flags other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let window = WindowAttrs::from_node(attrs, version >= 19)?;
        if window.kernel_shape.is_none() {
            return Err(attrs.error("kernel_shape", "is required"));
        }
        let ceil_mode = if version >= 10 { flag(attrs, "ceil_mode")? } else { false };
        let include = if version >= 7 { flag(attrs, "count_include_pad")? } else { false };
        let count = if include { AverageCount::IncludePad } else { AverageCount::ExcludePad };
        Ok(AveragePool { window, ceil_mode, count, dtypes: conv_dtypes(version) })
    }

    fn typed<T: Element + num_traits::Float>(&self, x: &Tensor, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let (window, shape) = plan("AveragePool", &self.window, x.shape(), self.ceil_mode)?;
        let data = standard::<T>(x).ok_or(OpError::UnsupportedDtype { op: "AveragePool", dtype: x.dtype() })?;
        let values = pooling::average_pool(
            &data,
            shape[0] * shape[1],
            &x.shape()[2..],
            &shape[2..],
            &window,
            self.count,
            ctx.par,
        );
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|err| OpError::Invalid { op: "AveragePool", reason: err.to_string() })?;
        Ok(T::wrap(array))
    }
}

impl Op for AveragePool {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(ValueType::rank);
        infer_from_shapes(inputs, rank, |shapes| {
            plan("AveragePool", &self.window, &shapes[0], self.ceil_mode).ok().map(|(_, shape)| shape)
        })
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "AveragePool")?;
        check_dtype("AveragePool", x.dtype(), self.dtypes)?;
        with_float("AveragePool", &[Some(&x)], |inputs| match inputs[0] {
            Some(x @ Tensor::F64(_)) => self.typed::<f64>(x, ctx),
            Some(x) => self.typed::<f32>(x, ctx),
            None => Err(OpError::MissingInput { op: "AveragePool", index: 0 }),
        })
    }
}

/// GlobalAveragePool or GlobalMaxPool: one value per (batch, channel)
/// plane, the spatial axes kept with size 1.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalPool {
    /// Max instead of average.
    pub max: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl GlobalPool {
    /// GlobalAveragePool.
    ///
    /// # Errors
    /// Never (no attributes).
    pub fn average(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(GlobalPool { max: false, dtypes: conv_dtypes(version) })
    }

    /// GlobalMaxPool.
    ///
    /// # Errors
    /// Never (no attributes).
    pub fn max(_attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(GlobalPool { max: true, dtypes: conv_dtypes(version) })
    }

    fn name(&self) -> &'static str {
        if self.max { "GlobalMaxPool" } else { "GlobalAveragePool" }
    }

    fn out_shape(&self, x: &[usize]) -> Result<Vec<usize>, OpError> {
        if x.len() < 3 {
            return Err(OpError::Invalid {
                op: self.name(),
                reason: format!("X has shape {x:?}; expected [N, C, D1, …] with at least one spatial axis"),
            });
        }
        let mut shape = vec![1; x.len()];
        shape[..2].copy_from_slice(&x[..2]);
        Ok(shape)
    }

    fn typed<T: Element + num_traits::Float>(&self, x: &Tensor, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let shape = self.out_shape(x.shape())?;
        let data = standard::<T>(x).ok_or(OpError::UnsupportedDtype { op: self.name(), dtype: x.dtype() })?;
        let plane: usize = x.shape()[2..].iter().product();
        let values = if plane == 0 {
            // Empty spatial axes: numpy's mean of nothing is NaN; its max
            // has no value at all.
            if self.max {
                return Err(OpError::Invalid { op: self.name(), reason: "the spatial axes are empty".into() });
            }
            vec![T::nan(); shape[0] * shape[1]]
        } else if self.max {
            pooling::global_max(&data, plane, ctx.par)
        } else {
            pooling::global_average(&data, plane, ctx.par)
        };
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map_err(|err| OpError::Invalid { op: self.name(), reason: err.to_string() })?;
        Ok(T::wrap(array))
    }
}

impl Op for GlobalPool {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let rank = inputs.first().and_then(|input| input.ty).and_then(ValueType::rank);
        infer_from_shapes(inputs, rank, |shapes| self.out_shape(&shapes[0]).ok())
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, self.name())?;
        check_dtype(self.name(), x.dtype(), self.dtypes)?;
        with_float(self.name(), &[Some(&x)], |inputs| match inputs[0] {
            Some(x @ Tensor::F64(_)) => self.typed::<f64>(x, ctx),
            Some(x) => self.typed::<f32>(x, ctx),
            None => Err(OpError::MissingInput { op: self.name(), index: 0 }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Parallel;
    use crate::ops::conv::AutoPad;

    fn attrs(kernel: &[usize], strides: &[usize], pads: &[usize]) -> WindowAttrs {
        WindowAttrs {
            auto_pad: AutoPad::NotSet,
            kernel_shape: Some(kernel.to_vec()),
            strides: Some(strides.to_vec()),
            dilations: None,
            pads: Some(pads.to_vec()),
        }
    }

    fn values(len: usize) -> Vec<f64> {
        (0..len).map(|idx| ((idx * 37) % 23) as f64 - 11.0).collect()
    }

    /// 2-D pooling in float64 from the definition: (max, average excluding
    /// padding, average including padding).
    fn reference(x: &[f64], [h, w]: [usize; 2], k: usize, s: usize, p: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        let (mut max, mut avg, mut avg_pad) = (vec![], vec![], vec![]);
        for y in 0..oh {
            for xx in 0..ow {
                let (mut m, mut sum, mut n) = (f64::NEG_INFINITY, 0.0, 0);
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (y * s + ky) as isize - p as isize;
                        let ix = (xx * s + kx) as isize - p as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            let v = x[iy as usize * w + ix as usize];
                            m = m.max(v);
                            sum += v;
                            n += 1;
                        }
                    }
                }
                max.push(m);
                avg.push(sum / n as f64);
                avg_pad.push(sum / (k * k) as f64);
            }
        }
        (max, avg, avg_pad)
    }

    #[test]
    fn max_and_average_match_float64_loops() {
        let (h, w, k, s, p) = (7, 6, 3, 2, 1);
        let x = values(h * w);
        let (max, avg, avg_pad) = reference(&x, [h, w], k, s, p);
        let tensor = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[1, 1, h, w]), x).expect("shape"));
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let window = attrs(&[k, k], &[s, s], &[p, p, p, p]);
        let max_op = MaxPool {
            window: window.clone(),
            ceil_mode: false,
            column_major: false,
            has_indices: true,
            dtypes: FLOATS,
        };
        let got = max_op.run(&mut [Some((&tensor).into())], &ctx).expect("runs");
        assert_eq!(got.to_f64_vec(), max);
        for (count, want) in [(AverageCount::ExcludePad, avg), (AverageCount::IncludePad, avg_pad)] {
            let op = AveragePool { window: window.clone(), ceil_mode: false, count, dtypes: FLOATS };
            let got = op.run(&mut [Some((&tensor).into())], &ctx).expect("runs");
            for (got, want) in got.to_f64_vec().iter().zip(&want) {
                assert!((got - want).abs() < 1e-12, "{count:?}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn global_pools_match_float64_loops_for_any_thread_count() {
        let (n, c, h, w) = (2, 300, 9, 7);
        let data: Vec<f64> = (0..n * c * h * w).map(|idx| ((idx * 7919) % 1013) as f64 / 17.0 - 30.0).collect();
        let tensor = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[n, c, h, w]), data.clone()).expect("shape"));
        let plane = h * w;
        let mean: Vec<f64> = data.chunks(plane).map(|p| p.iter().sum::<f64>() / plane as f64).collect();
        let max: Vec<f64> = data.chunks(plane).map(|p| p.iter().copied().fold(f64::NEG_INFINITY, f64::max)).collect();
        for threads in [1, 3] {
            let par = Parallel::with_threads(threads).expect("threads");
            let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
            for (op, want) in
                [(GlobalPool { max: false, dtypes: FLOATS }, &mean), (GlobalPool { max: true, dtypes: FLOATS }, &max)]
            {
                let got = op.run(&mut [Some((&tensor).into())], &ctx).expect("runs");
                assert_eq!(got.shape(), [n, c, 1, 1]);
                for (got, want) in got.to_f64_vec().iter().zip(want.iter()) {
                    assert!((got - want).abs() < 1e-12, "{}: {got} vs {want}", op.name());
                }
            }
        }
    }

    #[test]
    fn column_major_index() {
        // Element (row 1, col 2) of a 3×4 plane: row-major 6, column-major 7.
        assert_eq!(column_major(6, &[3, 4]), 7);
    }

    #[test]
    fn bad_attributes_are_errors() {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let x = Tensor::zeros(DType::F32, &[1, 1, 4, 4]);
        let op = AveragePool {
            window: attrs(&[3], &[1, 1], &[0, 0, 0, 0]),
            ceil_mode: false,
            count: AverageCount::ExcludePad,
            dtypes: FLOATS,
        };
        let err = op.run(&mut [Some((&x).into())], &ctx).expect_err("fails").to_string();
        assert!(err.contains("AveragePool: kernel_shape [3] has 1 values for 2 spatial dimensions"), "{err}");
        let op = AveragePool { window: attrs(&[5, 5], &[1, 1], &[0, 0, 0, 0]), ..op };
        let err = op.run(&mut [Some((&x).into())], &ctx).expect_err("fails").to_string();
        assert!(err.contains("larger than the padded input"), "{err}");
        let huge = 1 << 30;
        let op = AveragePool { window: attrs(&[huge, huge], &[1, 1], &[huge, huge, huge, huge]), ..op };
        let err = op.run(&mut [Some((&x).into())], &ctx).expect_err("fails").to_string();
        assert!(err.contains("AveragePool: the kernel of shape") && err.contains("too large"), "{err}");
        let op = AveragePool { window: attrs(&[1, 1], &[1, 1], &[huge, huge, huge, huge]), ..op };
        let err = op.run(&mut [Some((&x).into())], &ctx).expect_err("fails").to_string();
        assert!(err.contains("too large"), "{err}");
        let global = GlobalPool { max: true, dtypes: FLOATS };
        let err = global.run(&mut [Some((&Tensor::zeros(DType::F32, &[2, 3])).into())], &ctx).expect_err("fails");
        assert!(err.to_string().contains("GlobalMaxPool"), "{err}");
    }
}
