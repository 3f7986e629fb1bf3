//! Dropout, for inference: the output is the input, and the optional mask
//! keeps every element.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Dropout.html>
//!
//! | opset | change                                                              |
//! |-------|---------------------------------------------------------------------|
//! | 1, 6  | `is_test`, `ratio` attributes (+ `consumed_inputs` at 1); mask is T |
//! | 7     | `ratio` only; mask is T                                              |
//! | 10    | mask is bool                                                         |
//! | 12    | `ratio` and `training_mode` inputs; `seed` attribute                 |
//! | 13    | bfloat16 data                                                        |
//! | 22    | float8 types (which onnxi lacks); same code path                     |
//!
//! onnxi runs inference only. Random dropout (`training_mode` true with a
//! ratio above 0) is refused with an error rather than computed. Opsets 1
//! and 6 with `is_test` 0 (their default) are run in test mode, as ONNX
//! Runtime and PyTorch's `eval()` run them: a model exported for inference
//! means test mode, and a random result would differ on every run.

use ndarray::{ArrayD, IxDyn};

use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, OutputSet, Registry, check_dtype, first_output, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Tensor};

/// Registers Dropout.
pub fn register(reg: &mut Registry) {
    reg.add("", "Dropout", &[1, 6, 7, 10, 12, 13, 22], dropout_dtypes, Dropout::from_node);
}

fn dropout_dtypes(version: i64) -> &'static [DType] {
    if version < 13 { FLOATS } else { FLOATS_BF16 }
}

/// Dropout in inference mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropout {
    /// Opset 12+: `ratio` and `training_mode` are inputs.
    pub mode_inputs: bool,
    /// Before opset 10 the mask has the data's type (ones), from 10 it is bool.
    pub bool_mask: bool,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Dropout {
    /// Reads (and, for inference, sets aside) `ratio`, `is_test` and `seed`.
    ///
    /// # Errors
    /// A ratio outside `[0, 1)`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        if version < 12 {
            let ratio = attrs.f32("ratio")?.unwrap_or(0.5);
            if !(0.0..1.0).contains(&ratio) {
                return Err(attrs.error("ratio", format!("must be in [0, 1), got {ratio}")));
            }
            if version < 7 {
                attrs.i64("is_test")?;
            }
            if version < 6 {
                attrs.ints("consumed_inputs")?;
            }
        } else {
            // Seeds only random (training) dropout, which onnxi refuses.
            attrs.i64("seed")?;
        }
        Ok(Dropout { mode_inputs: version >= 12, bool_mask: version >= 10, dtypes: dropout_dtypes(version) })
    }
}

impl Op for Dropout {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        if self.mode_inputs { 1..=3 } else { 1..=1 }
    }

    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=2
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let mask = ValueType { dtype: if self.bool_mask { DType::Bool } else { ty.dtype }, dims: ty.dims.clone() };
        [Some(ty.clone()), Some(mask)].into_iter().take(n_outputs).collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "Dropout")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        _ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let x = required(inputs, 0, "Dropout")?;
        check_dtype("Dropout", x.dtype(), self.dtypes)?;
        if self.mode_inputs {
            let ratio = inputs.get_mut(1).and_then(Option::take);
            let training = inputs.get_mut(2).and_then(Option::take);
            let training = match training.as_deref() {
                None => false,
                Some(Tensor::Bool(flag)) if flag.len() == 1 => flag.iter().any(|&on| on),
                Some(other) => {
                    return Err(OpError::Invalid {
                        op: "Dropout",
                        reason: format!("training_mode must be one bool, got {} {:?}", other.dtype(), other.shape()),
                    });
                }
            };
            let ratio = match ratio.as_deref() {
                None => 0.5,
                Some(ratio) if ratio.dtype().is_float() && ratio.len() == 1 => ratio.to_f64_vec()[0],
                Some(other) => {
                    return Err(OpError::Invalid {
                        op: "Dropout",
                        reason: format!("ratio must be one float, got {} {:?}", other.dtype(), other.shape()),
                    });
                }
            };
            if !(0.0..1.0).contains(&ratio) {
                return Err(OpError::Invalid {
                    op: "Dropout",
                    reason: format!("ratio must be in [0, 1), got {ratio}"),
                });
            }
            if training && ratio > 0.0 {
                return Err(OpError::Invalid {
                    op: "Dropout",
                    reason: format!(
                        "training_mode is true with ratio {ratio}: random dropout is not supported (onnxi runs inference)"
                    ),
                });
            }
        }
        if outputs.wanted(1) {
            let shape = IxDyn(x.shape());
            let mask = if self.bool_mask {
                Tensor::from(ArrayD::from_elem(shape, true))
            } else {
                match x.dtype() {
                    DType::F64 => Tensor::from(ArrayD::from_elem(shape, 1.0f64)),
                    DType::F16 => Tensor::from(ArrayD::from_elem(shape, half::f16::ONE)),
                    _ => Tensor::from(ArrayD::from_elem(shape, 1.0f32)),
                }
            };
            outputs.set(1, mask);
        }
        outputs.set(0, x.into_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &Dropout, inputs: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut values = vec![None, None];
        let wanted = [true, true];
        let mut inputs: Vec<_> = inputs.into_iter().map(|input| input.map(Cow::Owned)).collect();
        op.run_outputs(&mut inputs, &ctx, &mut OutputSet::new(&mut values, &wanted))?;
        Ok(values)
    }

    #[test]
    fn inference_is_identity_with_a_full_mask() {
        let op = Dropout { mode_inputs: true, bool_mask: true, dtypes: FLOATS_BF16 };
        let x = Tensor::from(array![1.0f32, -2.0, 3.0]);
        let out = run(&op, vec![Some(x.clone()), Some(Tensor::from(ndarray::arr0(0.3f32)))]).unwrap();
        assert_eq!(out[0].as_ref(), Some(&x));
        assert_eq!(out[1].as_ref(), Some(&Tensor::from(array![true, true, true])));
        // Training mode with ratio 0 keeps everything too.
        let zero = Tensor::from(ndarray::arr0(0.0f32));
        let on = Tensor::from(ndarray::arr0(true));
        assert!(run(&op, vec![Some(x.clone()), Some(zero), Some(on.clone())]).is_ok());
        let err = run(&op, vec![Some(x), None, Some(on)]).unwrap_err();
        assert!(err.to_string().contains("random dropout is not supported"), "{err}");
    }

    #[test]
    fn old_versions_give_a_mask_of_ones_in_the_data_type() {
        let op = Dropout { mode_inputs: false, bool_mask: false, dtypes: FLOATS };
        let out = run(&op, vec![Some(Tensor::from(array![5.0f64]))]).unwrap();
        assert_eq!(out[1].as_ref(), Some(&Tensor::from(array![1.0f64])));
    }
}
