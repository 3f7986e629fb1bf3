//! LogSoftmax and Hardmax: Softmax's relatives over one axis.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__LogSoftmax.html>,
//! <https://onnx.ai/onnx/operators/onnx__Hardmax.html>
//!
//! | opset | behaviour                                                  |
//! |-------|------------------------------------------------------------|
//! | 1, 11 | flatten to 2-D at `axis` (default 1), work on each row     |
//! | 13+   | work along `axis` only (default -1); adds bfloat16         |
//!
//! LogSoftmax is `x - max - log(sum(exp(x - max)))` per lane, in float64
//! for every float type (float32, float16 and bfloat16 round once at the
//! end), so 1e4-sized inputs neither overflow nor lose digits: LogSoftmax
//! of `[1e4, 0]` is `[0, -1e4]`. A NaN in a lane makes the lane NaN, and
//! so does a +inf or an all -inf lane (`inf - inf`), as in PyTorch.
//!
//! Hardmax is 1 at the first maximum of each lane and 0 elsewhere; a NaN
//! counts as the maximum (the first NaN wins), as `numpy.argmax` does.

use ndarray::{ArrayD, IxDyn};

use super::reduce::Num;
use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::tensor::{DType, SharedArray, Tensor};

fn dtypes(version: i64) -> &'static [DType] {
    if version >= 13 { FLOATS_BF16 } else { FLOATS }
}

/// Registers LogSoftmax and Hardmax.
pub fn register(reg: &mut Registry) {
    reg.add("", "LogSoftmax", &[1, 11, 13], dtypes, |attrs, version| {
        LaneOp::from_node(LaneKind::LogSoftmax, attrs, version)
    });
    reg.add("", "Hardmax", &[1, 11, 13], dtypes, |attrs, version| LaneOp::from_node(LaneKind::Hardmax, attrs, version));
}

/// What each lane gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneKind {
    /// `x - logsumexp(lane)`.
    LogSoftmax,
    /// One-hot of the first maximum.
    Hardmax,
}

impl LaneKind {
    fn name(self) -> &'static str {
        match self {
            LaneKind::LogSoftmax => "LogSoftmax",
            LaneKind::Hardmax => "Hardmax",
        }
    }
}

/// LogSoftmax or Hardmax over one axis, or over the flattened tail from
/// `axis` (opset < 13).
#[derive(Debug, Clone, PartialEq)]
pub struct LaneOp {
    /// Which op.
    pub kind: LaneKind,
    /// The axis (may be negative).
    pub axis: i64,
    /// Opset < 13 semantics: one lane over `axis..rank` flattened.
    pub coerce_to_2d: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl LaneOp {
    /// Reads `axis` with the default of the version.
    ///
    /// # Errors
    /// `axis` of a type other than int.
    pub fn from_node(kind: LaneKind, attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let legacy = version < 13;
        let axis = attrs.i64("axis")?.unwrap_or(if legacy { 1 } else { -1 });
        Ok(LaneOp { kind, axis, coerce_to_2d: legacy, dtypes: dtypes(version) })
    }

    /// `(n, inner)`: lane length and stride of the `[outer, n, inner]` view.
    /// A 0-d input is one lane of one element, as for Softmax.
    fn lanes(&self, shape: &[usize]) -> Result<(usize, usize), OpError> {
        let op = self.kind.name();
        if shape.is_empty() {
            return match self.axis {
                -1 | 0 => Ok((1, 1)),
                axis => Err(OpError::AxisOutOfRange { op, axis, rank: 0 }),
            };
        }
        let axis = normalize_axis(op, self.axis, shape.len())?;
        Ok(if self.coerce_to_2d {
            (shape[axis..].iter().product(), 1)
        } else {
            (shape[axis], shape[axis + 1..].iter().product())
        })
    }
}

impl Op for LaneOp {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let op = self.kind.name();
        let x = required(inputs, 0, op)?;
        check_dtype(op, x.dtype(), self.dtypes)?;
        let (n, inner) = self.lanes(x.shape())?;
        let kind = self.kind;
        match x.as_ref() {
            Tensor::F32(a) => Ok(Tensor::from(lanes_of(kind, a, n, inner))),
            Tensor::F64(a) => Ok(Tensor::from(lanes_of(kind, a, n, inner))),
            Tensor::F16(a) => Ok(Tensor::from(lanes_of(kind, a, n, inner))),
            Tensor::BF16(a) => Ok(Tensor::from(lanes_of(kind, a, n, inner))),
            other => Err(OpError::UnsupportedDtype { op, dtype: other.dtype() }),
        }
    }
}

/// Applies `kind` to every lane of `x` viewed as `[outer, n, inner]`,
/// in float64.
fn lanes_of<T: Num>(kind: LaneKind, x: &SharedArray<T>, n: usize, inner: usize) -> ArrayD<T> {
    let mut data: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    if n > 0 && inner > 0 {
        let mut lane = vec![0f64; n];
        for block in data.chunks_mut(n * inner) {
            for offset in 0..inner {
                for (k, slot) in lane.iter_mut().enumerate() {
                    *slot = block[k * inner + offset];
                }
                match kind {
                    LaneKind::LogSoftmax => log_softmax_lane(&mut lane),
                    LaneKind::Hardmax => hardmax_lane(&mut lane),
                }
                for (k, &value) in lane.iter().enumerate() {
                    block[k * inner + offset] = value;
                }
            }
        }
    }
    let out: Vec<T> = data.into_iter().map(T::from_f64).collect();
    // `out` has the input's element count by construction.
    ArrayD::from_shape_vec(IxDyn(x.shape()), out).unwrap_or_else(|_| ArrayD::default(IxDyn(x.shape())))
}

/// `x - max - ln(sum(exp(x - max)))` in place.
fn log_softmax_lane(lane: &mut [f64]) {
    let max = lane
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, |acc, v| if acc.is_nan() || v.is_nan() { f64::NAN } else { acc.max(v) });
    let log_sum = lane.iter().map(|&v| (v - max).exp()).sum::<f64>().ln();
    for v in lane.iter_mut() {
        *v = *v - max - log_sum;
    }
}

/// 1 at the first maximum (or first NaN), 0 elsewhere, in place.
fn hardmax_lane(lane: &mut [f64]) {
    let mut best = 0;
    for (idx, &v) in lane.iter().enumerate() {
        if lane[best].is_nan() {
            break;
        }
        if v.is_nan() || v > lane[best] {
            best = idx;
        }
    }
    for (idx, v) in lane.iter_mut().enumerate() {
        *v = if idx == best { 1.0 } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use half::{bf16, f16};
    use ndarray::{Axis, array};

    use super::*;
    use crate::kernels::Parallel;

    fn lane_op(kind: LaneKind, axis: i64, version: i64) -> LaneOp {
        LaneOp { kind, axis, coerce_to_2d: version < 13, dtypes: dtypes(version) }
    }

    fn run(op: &LaneOp, x: &Tensor) -> Result<Tensor, OpError> {
        let par = Parallel::global();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        op.run(&mut [Some(Cow::Borrowed(x))], &ctx)
    }

    /// Independent float64 log-softmax over `axis` (or the 2-D flattening).
    fn reference(x: &ArrayD<f64>, axis: usize, legacy: bool) -> ArrayD<f64> {
        let lane = |values: &[f64]| -> Vec<f64> {
            let sum: f64 = values.iter().map(|v| v.exp()).sum();
            values.iter().map(|v| v - sum.ln()).collect()
        };
        let mut out = x.clone();
        if legacy {
            let rest: usize = x.shape()[axis..].iter().product();
            let data = out.as_slice_mut().unwrap();
            for chunk in data.chunks_mut(rest) {
                let got = lane(chunk);
                chunk.copy_from_slice(&got);
            }
        } else {
            for mut values in out.lanes_mut(Axis(axis)) {
                let got = lane(&values.to_vec());
                values.iter_mut().zip(got).for_each(|(v, g)| *v = g);
            }
        }
        out
    }

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn log_softmax_every_axis_both_semantics_within_4_ulp() {
        let x64 =
            ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| ((i[0] * 12 + i[1] * 4 + i[2]) * 37 % 23) as f64 * 0.3 - 3.0);
        let x32 = Tensor::from(x64.mapv(|v| v as f32));
        for version in [1, 11, 13] {
            for axis in -3i64..3 {
                let resolved = (axis + 3) as usize % 3;
                let want = reference(&x64.mapv(|v| f64::from(v as f32)), resolved, version < 13);
                let got = run(&lane_op(LaneKind::LogSoftmax, axis, version), &x32).unwrap();
                let Tensor::F32(got) = got else { panic!("float32 out") };
                for (g, w) in got.iter().zip(want.iter()) {
                    let ok = ulps(*g, *w as f32) <= 4 || (f64::from(*g) - w).abs() <= 1e-6;
                    assert!(ok, "opset {version} axis {axis}: got {g}, want {w}");
                }
            }
        }
    }

    #[test]
    fn log_softmax_edge_values() {
        let inf = f32::INFINITY;
        let nan = f32::NAN;
        struct Case {
            input: Vec<f32>,
            want: Vec<f32>,
        }
        let cases = [
            Case { input: vec![1e4, 0.0], want: vec![0.0, -1e4] },
            Case { input: vec![-1e4, -1e4], want: vec![-std::f32::consts::LN_2; 2] },
            Case { input: vec![-inf, 0.0], want: vec![-inf, 0.0] },
            Case { input: vec![-inf, -inf], want: vec![nan, nan] },
            Case { input: vec![inf, 0.0], want: vec![nan, nan] },
            Case { input: vec![nan, 0.0], want: vec![nan, nan] },
        ];
        for case in cases {
            let x = Tensor::from(ArrayD::from_shape_vec(IxDyn(&[2]), case.input.clone()).unwrap());
            let got = run(&lane_op(LaneKind::LogSoftmax, -1, 13), &x).unwrap();
            let Tensor::F32(got) = got else { panic!("float32 out") };
            for (g, w) in got.iter().zip(&case.want) {
                assert!((g.is_nan() && w.is_nan()) || g == w, "{:?}: got {got:?}", case.input);
            }
        }
    }

    #[test]
    fn hardmax_first_maximum_per_lane() {
        let nan = f32::NAN;
        struct Case {
            input: ArrayD<f32>,
            axis: i64,
            version: i64,
            want: ArrayD<f32>,
        }
        let cases = [
            Case {
                input: array![[3.0f32, 1.0, 3.0], [0.0, 2.0, 1.0]].into_dyn(),
                axis: -1,
                version: 13,
                want: array![[1.0f32, 0.0, 0.0], [0.0, 1.0, 0.0]].into_dyn(),
            },
            Case {
                input: array![[3.0f32, 1.0, 3.0], [0.0, 2.0, 4.0]].into_dyn(),
                axis: 0,
                version: 13,
                want: array![[1.0f32, 0.0, 0.0], [0.0, 1.0, 1.0]].into_dyn(),
            },
            // Opset 1/11 with axis 0: one lane over the whole tensor.
            Case {
                input: array![[3.0f32, 1.0, 3.0], [0.0, 2.0, 4.0]].into_dyn(),
                axis: 0,
                version: 11,
                want: array![[0.0f32, 0.0, 0.0], [0.0, 0.0, 1.0]].into_dyn(),
            },
            Case {
                input: array![[1.0f32, nan, 5.0, nan]].into_dyn(),
                axis: 1,
                version: 1,
                want: array![[0.0f32, 1.0, 0.0, 0.0]].into_dyn(),
            },
        ];
        for case in cases {
            let got = run(&lane_op(LaneKind::Hardmax, case.axis, case.version), &Tensor::from(case.input.clone()));
            assert_eq!(got.unwrap(), Tensor::from(case.want), "{:?} axis {}", case.input, case.axis);
        }
    }

    #[test]
    fn dtypes_shapes_and_errors() {
        let halves = Tensor::from(array![f16::from_f32(1.0), f16::from_f32(2.0)].into_dyn());
        let Tensor::F16(got) = run(&lane_op(LaneKind::LogSoftmax, -1, 13), &halves).unwrap() else { panic!() };
        assert_eq!(got[[1]], f16::from_f64(-(1f64.exp().recip()).ln_1p()));
        let brains = Tensor::from(array![bf16::from_f32(1.0), bf16::from_f32(2.0)].into_dyn());
        assert_eq!(
            run(&lane_op(LaneKind::Hardmax, -1, 13), &brains).unwrap(),
            Tensor::from(array![bf16::ZERO, bf16::ONE].into_dyn())
        );
        assert_eq!(
            run(&lane_op(LaneKind::Hardmax, -1, 11), &brains),
            Err(OpError::UnsupportedDtype { op: "Hardmax", dtype: DType::BF16 })
        );
        let empty = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[0, 3])));
        assert_eq!(run(&lane_op(LaneKind::LogSoftmax, 1, 13), &empty).unwrap().shape(), [0, 3]);
        let empty_lane = Tensor::from(ArrayD::<f64>::zeros(IxDyn(&[3, 0])));
        assert_eq!(run(&lane_op(LaneKind::Hardmax, 1, 11), &empty_lane).unwrap().shape(), [3, 0]);
        let scalar = Tensor::from(ndarray::arr0(7.0f32).into_dyn());
        assert_eq!(run(&lane_op(LaneKind::LogSoftmax, -1, 13), &scalar).unwrap().to_f64_vec(), [0.0]);
        let x = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[2, 3])));
        for axis in [2i64, -3, i64::MIN, i64::MAX] {
            assert_eq!(
                run(&lane_op(LaneKind::LogSoftmax, axis, 13), &x),
                Err(OpError::AxisOutOfRange { op: "LogSoftmax", axis, rank: 2 })
            );
        }
    }
}
