//! RMSNormalization: `Y = X / sqrt(mean(X², axes from axis) + epsilon) · scale`.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__RMSNormalization.html>
//!
//! | opset | change        |
//! |-------|---------------|
//! | 23    | first version |
//!
//! The mean of squares runs over the axes from `axis` to the last (one
//! contiguous row per leading index); `scale` broadcasts to X from the
//! right (numpy's unidirectional rule). Statistics and the product are
//! computed in float64 (at least as precise as the `stash_type` float32
//! the spec asks for; only `stash_type` = 1 is accepted) and rounded once
//! to the output type, which is scale's. Rows run in parallel, each row
//! serially, so results do not depend on the thread count.

use ndarray::{ArrayD, IxDyn};

use super::values::{float_array, float_tensor};
use super::{ExecCtx, FLOATS_BF16, Inputs, Op, Registry, check_dtype, normalize_axis, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::Tensor;

const OP: &str = "RMSNormalization";

/// Registers RMSNormalization.
pub fn register(reg: &mut Registry) {
    reg.add("", "RMSNormalization", &[23], |_| FLOATS_BF16, RmsNormalization::from_node);
}

/// RMSNormalization over the axes from `axis` to the last.
#[derive(Debug, Clone, PartialEq)]
pub struct RmsNormalization {
    /// First normalised axis (may be negative).
    pub axis: i64,
    /// Added to the mean of squares.
    pub epsilon: f64,
}

impl RmsNormalization {
    /// Reads `axis` (default -1), `epsilon` (default 1e-5) and `stash_type`.
    ///
    /// # Errors
    /// A negative or non-finite epsilon; a `stash_type` other than 1.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        let axis = attrs.i64("axis")?.unwrap_or(-1);
        let epsilon = attrs.f32("epsilon")?.unwrap_or(1e-5);
        if !(epsilon >= 0.0 && epsilon.is_finite()) {
            return Err(attrs.error("epsilon", format!("must be a non-negative number, got {epsilon}")));
        }
        match attrs.i64("stash_type")?.unwrap_or(1) {
            1 => {}
            other => return Err(attrs.error("stash_type", format!("only 1 (float) is supported, got {other}"))),
        }
        Ok(RmsNormalization { axis, epsilon: f64::from(epsilon) })
    }
}

impl Op for RmsNormalization {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let x = inputs.first().and_then(|input| input.ty);
        let scale = inputs.get(1).and_then(|input| input.ty);
        match (x, scale) {
            (Some(x), Some(scale)) => vec![Some(ValueType { dtype: scale.dtype, dims: x.dims.clone() })],
            _ => Vec::new(),
        }
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, OP)?;
        let scale = required(inputs, 1, OP)?;
        check_dtype(OP, x.dtype(), FLOATS_BF16)?;
        check_dtype(OP, scale.dtype(), FLOATS_BF16)?;
        let shape = x.shape().to_vec();
        let axis = normalize_axis(OP, self.axis, shape.len())?;
        let inner: usize = shape[axis..].iter().product();
        let scale_values = float_array(OP, &scale)?;
        let scale_view = scale_values.broadcast(IxDyn(&shape)).ok_or_else(|| OpError::Invalid {
            op: OP,
            reason: format!("scale of shape {:?} does not broadcast to X {shape:?}", scale.shape()),
        })?;
        let scale_flat: Vec<f64> = scale_view.iter().copied().collect();
        let mut data: Vec<f64> = x.to_f64_vec();
        let epsilon = self.epsilon;
        ctx.par.for_row_blocks(&mut data, inner, inner.max(1), |row_idx, row| {
            let mean_square = row.iter().map(|&v| v * v).sum::<f64>() / row.len().max(1) as f64;
            let inv_rms = 1.0 / (mean_square + epsilon).sqrt();
            let weights = &scale_flat[row_idx * inner..];
            for (value, &weight) in row.iter_mut().zip(weights) {
                *value = *value * inv_rms * weight;
            }
        });
        let array = ArrayD::from_shape_vec(IxDyn(&shape), data)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        Ok(float_tensor(scale.dtype(), array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Parallel;
    use crate::tensor::DType;

    fn run(op: &RmsNormalization, x: Tensor, scale: Tensor, par: &Parallel) -> Result<Tensor, OpError> {
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        op.run(&mut [Some(x.into()), Some(scale.into())], &ctx)
    }

    fn tensor(shape: &[usize], values: Vec<f64>) -> Tensor {
        Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape"))
    }

    #[test]
    fn matches_the_formula_in_float64() {
        let x: Vec<f64> = (0..24).map(|idx| (idx as f64 * 0.37).sin() * 3.0).collect();
        let scale: Vec<f64> = (0..12).map(|idx| 0.5 + idx as f64 * 0.1).collect();
        let op = RmsNormalization { axis: 1, epsilon: 0.1 };
        let got = run(&op, tensor(&[2, 3, 4], x.clone()), tensor(&[3, 4], scale.clone()), &Parallel::serial())
            .expect("runs")
            .to_f64_vec();
        for row in 0..2 {
            let values = &x[row * 12..(row + 1) * 12];
            let rms = (values.iter().map(|v| v * v).sum::<f64>() / 12.0 + 0.1).sqrt();
            for pos in 0..12 {
                let want = values[pos] / rms * scale[pos];
                assert!((got[row * 12 + pos] - want).abs() < 1e-12, "{row} {pos}");
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let op = RmsNormalization { axis: 1, epsilon: 1e-5 };
        let par = Parallel::serial();
        let err = run(&op, tensor(&[2, 3], vec![0.0; 6]), tensor(&[4], vec![1.0; 4]), &par).expect_err("bad scale");
        assert!(err.to_string().contains("does not broadcast"), "{err}");
        let op = RmsNormalization { axis: 2, epsilon: 1e-5 };
        let err = run(&op, tensor(&[2, 3], vec![0.0; 6]), tensor(&[3], vec![1.0; 3]), &par).expect_err("bad axis");
        assert!(matches!(err, OpError::AxisOutOfRange { .. }), "{err}");
        let ints = Tensor::zeros(DType::I64, &[2, 3]);
        let err = run(&op, ints, tensor(&[3], vec![1.0; 3]), &par).expect_err("ints");
        assert!(matches!(err, OpError::UnsupportedDtype { .. }), "{err}");
    }
}
