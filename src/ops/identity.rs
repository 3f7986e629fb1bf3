//! Identity: passes its input through.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Identity.html>
//!
//! | opset | change                                                       |
//! |-------|--------------------------------------------------------------|
//! | 1     | any tensor type                                              |
//! | 13–25 | more element types, sequences (14) and optionals (16); onnxi |
//! |       | holds tensors only, so every version is the same code path   |
//!
//! Constant nodes never reach the interpreter: the loader evaluates them
//! into bound values (see `model.rs`).

use super::ALL_BUT_BF16;
use super::{ExecCtx, Inputs, Op, Registry, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::tensor::{DType, Tensor};

/// Every dtype before opset 13, every one from 13 on.
pub(crate) fn all_from_13(version: i64) -> &'static [DType] {
    if version >= 13 { &DType::ALL } else { ALL_BUT_BF16 }
}

/// Registers Identity.
pub fn register(reg: &mut Registry) {
    reg.add("", "Identity", &[1, 13, 14, 16, 19, 21, 23, 24, 25], super::moved_types, Identity::from_node);
}

/// Identity: output = input.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity;

impl Identity {
    /// Identity has no attributes.
    ///
    /// # Errors
    /// Never; unexpected attributes are refused by `Attrs::finish`.
    pub fn from_node(_attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Identity)
    }
}

impl Op for Identity {
    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        // A lent input becomes a second handle on the same data, not a copy.
        Ok(required(inputs, 0, "Identity")?.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, IxDyn, array};

    use super::*;
    use crate::kernels::Parallel;
    use crate::ops::shape::{Axes, Flatten, Reshape, Squeeze, Unsqueeze};
    use crate::ops::transpose::Transpose;

    /// The pass-through ops, each with the extra inputs it needs, on a
    /// `[2, 1, 3]` input.
    fn pass_through_ops() -> Vec<(Box<dyn Op>, Vec<Tensor>)> {
        let ints =
            |values: &[i64]| Tensor::from(ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap());
        vec![
            (Box::new(Identity), vec![]),
            (Box::new(Reshape { shape: None, allow_zero: false }), vec![ints(&[3, -1])]),
            (Box::new(Reshape { shape: Some(vec![6]), allow_zero: false }), vec![]),
            (Box::new(Flatten { axis: 2 }), vec![]),
            (Box::new(Squeeze { axes: Some(Axes::Input) }), vec![ints(&[1])]),
            (Box::new(Squeeze { axes: None }), vec![]),
            (Box::new(Unsqueeze { axes: Axes::Input }), vec![ints(&[0, -1])]),
            (Box::new(Unsqueeze { axes: Axes::Attribute(vec![3]) }), vec![]),
            // Moves only the size-1 axis: the memory order stays row-major.
            (Box::new(Transpose { perm: Some(vec![1, 0, 2]) }), vec![]),
        ]
    }

    #[test]
    fn pass_through_ops_share_a_lent_or_handed_over_input_for_every_dtype() {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        for dtype in DType::ALL {
            let x =
                crate::ops::cast::cast(&Tensor::from(array![[[1i64, 0, 3]], [[4, 5, 0]]].into_dyn()), dtype).unwrap();
            for (op, extra) in pass_through_ops() {
                let mut lent: Vec<Option<Cow<'_, Tensor>>> =
                    std::iter::once(&x).chain(&extra).map(|t| Some(Cow::Borrowed(t))).collect();
                let y = op.run(&mut lent, &ctx).unwrap();
                assert!(y.shares_data(&x), "{op:?} copied a lent {dtype} input");
                assert_eq!(y.to_le_bytes(), x.to_le_bytes(), "{op:?} on {dtype}");
                let owned = x.deep_copy();
                let ptr = owned.data_ptr();
                let mut inputs: Vec<Option<Cow<'_, Tensor>>> = std::iter::once(Some(Cow::Owned(owned)))
                    .chain(extra.iter().map(|t| Some(Cow::Borrowed(t))))
                    .collect();
                let y = op.run(&mut inputs, &ctx).unwrap();
                assert_eq!(y.data_ptr(), ptr, "{op:?} copied a handed-over {dtype} input");
            }
        }
    }
}
