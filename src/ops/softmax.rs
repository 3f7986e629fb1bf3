//! Softmax family.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Softmax.html>
//!
//! | opset | behaviour                                                  |
//! |-------|------------------------------------------------------------|
//! | 1, 11 | flatten to 2-D at `axis` (default 1), normalise each row   |
//! | 13+   | normalise along `axis` only (default -1); adds bfloat16    |
//!
//! Opset 11 only widened the documented axis range to negative values;
//! onnxi accepts negative axes at opset 1 too, as ONNX Runtime does.
//!
//! A 0-d input is treated as a single lane of one element (so it gives 1,
//! or NaN for NaN/±inf), as `torch.softmax` does on a 0-d tensor; ONNX
//! leaves that case undefined.

use super::activation::{inplace, mapped, take_unique, through_f32};
use super::{ChainKernel, ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::kernels::softmax::{softmax, softmax_into};
use crate::tensor::{DType, Tensor};

/// Registers Softmax.
pub fn register(reg: &mut Registry) {
    reg.add(
        "",
        "Softmax",
        &[1, 11, 13],
        |version| if version >= 13 { FLOATS_BF16 } else { FLOATS },
        Softmax::from_node,
    );
}

/// Softmax over one axis, or over the flattened tail from `axis` (opset < 13).
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    /// The axis (may be negative).
    pub axis: i64,
    /// Opset < 13 semantics: normalise over `axis..rank` flattened.
    pub coerce_to_2d: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Softmax {
    /// Reads `axis` with the default of the version.
    ///
    /// # Errors
    /// `axis` of a type other than int.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let legacy = version < 13;
        let axis = attrs.i64("axis")?.unwrap_or(if legacy { 1 } else { -1 });
        Ok(Softmax { axis, coerce_to_2d: legacy, dtypes: if legacy { FLOATS } else { FLOATS_BF16 } })
    }

    /// The `[outer, n, inner]` view of `shape` this softmax normalises over.
    ///
    /// # Errors
    /// [`OpError::AxisOutOfRange`] for an axis outside `[-rank, rank)`.
    pub fn lanes(&self, shape: &[usize]) -> Result<(usize, usize), OpError> {
        if shape.is_empty() {
            return match self.axis {
                -1 | 0 => Ok((1, 1)),
                axis => Err(OpError::AxisOutOfRange { op: "Softmax", axis, rank: 0 }),
            };
        }
        let axis = normalize_axis("Softmax", self.axis, shape.len())?;
        Ok(if self.coerce_to_2d {
            (shape[axis..].iter().product(), 1)
        } else {
            (shape[axis], shape[axis + 1..].iter().product())
        })
    }
}

impl Op for Softmax {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn chains(&self) -> bool {
        true
    }

    fn chain_kernel(&self, shape: &[usize]) -> Option<ChainKernel> {
        match self.lanes(shape) {
            Ok((n, 1)) => Some(ChainKernel::SoftmaxLanes(n)),
            _ => None,
        }
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Softmax")?;
        check_dtype("Softmax", x.dtype(), self.dtypes)?;
        let (n, inner) = self.lanes(x.shape())?;
        let par = ctx.par;
        // In place when the buffer may be overwritten; a lent or shared
        // input is read by the kernel and written to the output, with no
        // copy pass of its own.
        let x = match take_unique::<f32>(x) {
            Ok(array) => return Ok(Tensor::F32(inplace(array, par, |data, par| softmax(data, n, inner, par)))),
            Err(x) => x,
        };
        let x = match take_unique::<f64>(x) {
            Ok(array) => return Ok(Tensor::F64(inplace(array, par, |data, par| softmax(data, n, inner, par)))),
            Err(x) => x,
        };
        let out = match x.as_ref() {
            Tensor::F32(array) => {
                Tensor::F32(mapped(array, ctx, |src, dst, par| softmax_into(src, dst, n, inner, par)))
            }
            Tensor::F64(array) => {
                Tensor::F64(mapped(array, ctx, |src, dst, par| softmax_into(src, dst, n, inner, par)))
            }
            half => through_f32(half, par, |data, par| softmax(data, n, inner, par))
                .ok_or(OpError::UnsupportedDtype { op: "Softmax", dtype: half.dtype() })?,
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};
    use ndarray::{ArrayD, Axis, IxDyn, array};

    use std::borrow::Cow;

    use super::*;
    use crate::kernels::Parallel;
    use crate::kernels::par::PAR_MIN_ELEMS;

    /// float64 softmax written independently: lanes along `axis` (opset 13)
    /// or rows of the 2-D flattening at `axis` (opset < 13).
    fn reference(x: &ArrayD<f64>, axis: usize, legacy: bool) -> ArrayD<f64> {
        fn lane(values: &mut [f64]) {
            if values.iter().any(|v| v.is_nan()) {
                values.fill(f64::NAN);
                return;
            }
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            values.iter_mut().for_each(|v| *v = (*v - max).exp());
            let sum: f64 = values.iter().sum();
            values.iter_mut().for_each(|v| *v /= sum);
        }
        let mut out = x.as_standard_layout().into_owned();
        if legacy {
            let rest: usize = x.shape()[axis..].iter().product();
            if let Some(data) = out.as_slice_mut() {
                data.chunks_mut(rest.max(1)).for_each(lane);
            }
        } else {
            for mut values in out.lanes_mut(Axis(axis)) {
                let mut buffer: Vec<f64> = values.to_vec();
                lane(&mut buffer);
                values.iter_mut().zip(buffer).for_each(|(v, b)| *v = b);
            }
        }
        out
    }

    fn softmax_op(axis: i64, version: i64) -> Softmax {
        let legacy = version < 13;
        Softmax { axis, coerce_to_2d: legacy, dtypes: if legacy { FLOATS } else { FLOATS_BF16 } }
    }

    fn run(op: &Softmax, x: &Tensor) -> Result<Tensor, OpError> {
        let par = Parallel::global();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let lent = op.run(&mut [Some(Cow::Borrowed(x))], &ctx);
        // A buffer of its own is overwritten in place; a clone shares the
        // caller's buffer, which must be read, not written.
        let owned = op.run(&mut [Some(Cow::Owned(x.deep_copy()))], &ctx);
        let shared = op.run(&mut [Some(Cow::Owned(x.clone()))], &ctx);
        for other in [&owned, &shared] {
            assert_eq!(
                lent.as_ref().map(Tensor::to_le_bytes),
                other.as_ref().map(Tensor::to_le_bytes),
                "lent, owned and shared paths differ"
            );
        }
        if let Ok(out) = &shared {
            assert!(!out.shares_data(x), "a shared input was written in place");
        }
        lent
    }

    fn assert_close(got: &[f64], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (idx, (g, w)) in got.iter().zip(want).enumerate() {
            let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6 * w.abs() + 1e-30;
            assert!(ok, "{what}: element {idx}: got {g:e}, want {w:e}");
        }
    }

    fn sample_4d() -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(&[2, 3, 4, 5]), |idx| {
            let flat = idx[0] * 60 + idx[1] * 20 + idx[2] * 5 + idx[3];
            ((flat * 37 % 23) as f64 - 11.0) * 0.7
        })
    }

    #[test]
    fn every_axis_of_a_4d_input_under_both_semantics_matches_float64() {
        let x64 = sample_4d();
        let x32 = Tensor::from(x64.mapv(|v| v as f32));
        for version in [1, 11, 13] {
            for axis in -4i64..4 {
                let resolved = if axis < 0 { (axis + 4) as usize } else { axis as usize };
                let want = reference(&x64.mapv(|v| f64::from(v as f32)), resolved, version < 13);
                let got = run(&softmax_op(axis, version), &x32).unwrap();
                assert_eq!(got.shape(), [2, 3, 4, 5]);
                assert_close(&got.to_f64_vec(), want.as_slice().unwrap(), &format!("opset {version} axis {axis}"));
                let got64 = run(&softmax_op(axis, version), &Tensor::from(x64.clone())).unwrap();
                assert_close(
                    &got64.to_f64_vec(),
                    reference(&x64, resolved, version < 13).as_slice().unwrap(),
                    &format!("f64 opset {version} axis {axis}"),
                );
            }
        }
    }

    #[test]
    fn defaults_differ_between_versions() {
        let x = Tensor::from(sample_4d().mapv(|v| v as f32));
        let legacy_default = run(&softmax_op(1, 11), &x).unwrap();
        let modern_default = run(&softmax_op(-1, 13), &x).unwrap();
        let x64 = sample_4d().mapv(|v| f64::from(v as f32));
        assert_close(
            &legacy_default.to_f64_vec(),
            reference(&x64, 1, true).as_slice().unwrap(),
            "opset 11 default axis 1",
        );
        assert_close(
            &modern_default.to_f64_vec(),
            reference(&x64, 3, false).as_slice().unwrap(),
            "opset 13 default axis -1",
        );
    }

    #[test]
    fn edge_values_behave_like_pytorch() {
        let inf = f32::INFINITY;
        struct Case {
            input: ArrayD<f32>,
            expected: Vec<f32>,
        }
        let nan = f32::NAN;
        let cases = [
            // Max subtraction keeps 1e4-sized inputs finite.
            Case {
                input: array![[10000.0f32, 10001.0, 9999.0]].into_dyn(),
                expected: vec![0.24472848, 0.66524094, 0.09003057],
            },
            Case { input: array![[-10000.0f32, -10000.0]].into_dyn(), expected: vec![0.5, 0.5] },
            // A -inf element gets 0; an all -inf row is NaN (0/0), as in torch.softmax.
            Case { input: array![[-inf, 0.0]].into_dyn(), expected: vec![0.0, 1.0] },
            Case { input: array![[-inf, -inf]].into_dyn(), expected: vec![nan, nan] },
            // +inf or NaN anywhere in the lane makes the lane NaN.
            Case { input: array![[inf, 0.0]].into_dyn(), expected: vec![nan, nan] },
            Case { input: array![[nan, 0.0], [1.0, 1.0]].into_dyn(), expected: vec![nan, nan, 0.5, 0.5] },
            Case { input: array![[-0.0f32, 0.0]].into_dyn(), expected: vec![0.5, 0.5] },
            Case { input: array![[1e-40f32, -1e-40]].into_dyn(), expected: vec![0.5, 0.5] },
        ];
        for case in cases {
            let got = run(&softmax_op(-1, 13), &Tensor::from(case.input.clone())).unwrap().to_f64_vec();
            let want: Vec<f64> = case.expected.iter().map(|&v| f64::from(v)).collect();
            assert_close(&got, &want, &format!("{:?}", case.input));
        }
    }

    #[test]
    fn empty_scalar_and_transposed_inputs() {
        let empty = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[0, 4])));
        assert_eq!(run(&softmax_op(-1, 13), &empty).unwrap().shape(), [0, 4]);
        let empty_axis = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[3, 0])));
        assert_eq!(run(&softmax_op(1, 11), &empty_axis).unwrap().shape(), [3, 0]);
        let scalar = Tensor::from(ndarray::arr0(3.5f32).into_dyn());
        assert_eq!(run(&softmax_op(-1, 13), &scalar).unwrap().to_f64_vec(), [1.0]);
        assert_eq!(run(&softmax_op(2, 13), &scalar), Err(OpError::AxisOutOfRange { op: "Softmax", axis: 2, rank: 0 }));
        let matrix = array![[1.0f32, 2.0, 3.0], [4.0, 6.0, 8.0]];
        let transposed = Tensor::from(matrix.clone().reversed_axes().into_dyn());
        let contiguous = Tensor::from(matrix.t().as_standard_layout().into_owned().into_dyn());
        assert_eq!(
            run(&softmax_op(0, 13), &transposed).unwrap().to_f64_vec(),
            run(&softmax_op(0, 13), &contiguous).unwrap().to_f64_vec()
        );
    }

    #[test]
    fn axis_out_of_range_including_huge_int64_values_is_an_error() {
        let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 3])));
        for axis in [2i64, -3, 1 << 32 | 1, 1 << 62, i64::MIN, i64::MAX] {
            for version in [1, 11, 13] {
                assert_eq!(
                    run(&softmax_op(axis, version), &x),
                    Err(OpError::AxisOutOfRange { op: "Softmax", axis, rank: 2 })
                );
            }
        }
    }

    #[test]
    fn half_types_and_version_dtypes() {
        let values = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let want = [0.01165623f64, 0.03168492, 0.08612854, 0.23412166, 0.63640865];
        let halves = Tensor::from(
            ArrayD::from_shape_vec(IxDyn(&[5]), values.iter().map(|&v| f16::from_f32(v)).collect()).unwrap(),
        );
        let Tensor::F16(got) = run(&softmax_op(-1, 13), &halves).unwrap() else { panic!("float16 out") };
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g, f16::from_f64(w), "rounded once from f32");
        }
        let brains = Tensor::from(
            ArrayD::from_shape_vec(IxDyn(&[5]), values.iter().map(|&v| bf16::from_f32(v)).collect()).unwrap(),
        );
        let Tensor::BF16(got) = run(&softmax_op(-1, 13), &brains).unwrap() else { panic!("bfloat16 out") };
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g, bf16::from_f64(w));
        }
        assert_eq!(
            run(&softmax_op(-1, 11), &brains),
            Err(OpError::UnsupportedDtype { op: "Softmax", dtype: DType::BF16 })
        );
        let ints = Tensor::from(array![1i64, 2].into_dyn());
        assert_eq!(
            run(&softmax_op(-1, 13), &ints),
            Err(OpError::UnsupportedDtype { op: "Softmax", dtype: DType::I64 })
        );
    }

    #[test]
    fn large_inputs_split_across_threads_still_sum_to_one_per_lane() {
        let cols = PAR_MIN_ELEMS / 2 + 3;
        let x = ArrayD::from_shape_fn(IxDyn(&[3, cols]), |idx| ((idx[0] * 7 + idx[1] * 13) % 101) as f32 * 0.05);
        let y = run(&softmax_op(-1, 13), &Tensor::from(x.clone())).unwrap();
        let y = y.as_f32().unwrap();
        for row in y.lanes(Axis(1)) {
            let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
            assert!((sum - 1.0).abs() < 1e-5, "lane sums to {sum}");
        }
        let want = reference(&x.mapv(f64::from), 1, false);
        let got: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        assert_close(&got, want.as_slice().unwrap(), "3 x large");
        // Strided lanes (softmax over axis 0) above the threshold too.
        let y0 = run(&softmax_op(0, 13), &Tensor::from(x.clone())).unwrap();
        assert_close(&y0.to_f64_vec(), reference(&x.mapv(f64::from), 0, false).as_slice().unwrap(), "axis 0 large");
    }
}
