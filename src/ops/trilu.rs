//! Trilu: the upper or lower triangle of each matrix in the last two axes.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Trilu.html>
//!
//! | opset | change                                                          |
//! |-------|-----------------------------------------------------------------|
//! | 14    | first version: `upper` (default 1), optional int64 `k` (default 0)|
//!
//! With `upper` = 1 the element at row `i`, column `j` of each matrix is
//! kept where `j - i >= k` (numpy's `triu`), with `upper` = 0 where
//! `j - i <= k` (`tril`); the others become zero (false, the empty
//! string). Any `k` is valid: far outside the matrix it keeps everything
//! or nothing. Every type of the schema that onnxi holds: numbers, bool
//! and string (not complex, which onnxi has no tensor for).

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType, same_as_first};
use crate::tensor::{DType, Item, Tensor};

/// Registers Trilu.
pub fn register(reg: &mut Registry) {
    reg.add("", "Trilu", &[14], trilu_types, Trilu::from_node);
}

/// String, every number type and bool: the schema's types but complex
/// (what the ops that move elements take at opsets 13 to 18).
fn trilu_types(_version: i64) -> &'static [DType] {
    super::moved_types(14)
}

/// Trilu with its `upper` attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Trilu {
    /// Keep the upper triangle (`upper` = 1, the default) or the lower.
    pub upper: bool,
}

impl Trilu {
    /// Reads `upper`.
    ///
    /// # Errors
    /// `upper` other than 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        match attrs.i64("upper")?.unwrap_or(1) {
            0 => Ok(Trilu { upper: false }),
            1 => Ok(Trilu { upper: true }),
            other => Err(attrs.error("upper", format!("must be 0 or 1, got {other}"))),
        }
    }
}

/// Zeroes (`T::default()`), in place, the elements of each `rows × cols`
/// matrix of `data` (row-major, matrices one after another) outside the
/// triangle: kept are `j - i >= k` when `upper`, else `j - i <= k`.
/// Matrices run in parallel.
pub fn trilu_in_place<T: Default + Send>(
    ctx: &ExecCtx<'_>,
    data: &mut [T],
    rows: usize,
    cols: usize,
    k: i64,
    upper: bool,
) {
    // The columns zeroed in row `i` are `0..i + k` (upper) or
    // `i + k + 1..cols` (lower), clamped to the row; i128 cannot overflow.
    let clamp = |col: i128| col.clamp(0, cols as i128) as usize;
    ctx.par.rows(data, rows * cols, |matrix| {
        for (i, row) in matrix.chunks_mut(cols.max(1)).enumerate() {
            let diagonal = i as i128 + i128::from(k);
            let zeroed = if upper { &mut row[..clamp(diagonal)] } else { &mut row[clamp(diagonal + 1)..] };
            zeroed.iter_mut().for_each(|value| *value = T::default());
        }
    });
}

/// `k` from its optional input: one int64 value (0 when omitted).
fn diagonal(inputs: &mut Inputs<'_>) -> Result<i64, OpError> {
    let Some(k) = inputs.get_mut(1).and_then(Option::take) else {
        return Ok(0);
    };
    match k.as_ref() {
        Tensor::I64(array) if array.len() == 1 => Ok(array.iter().copied().next().unwrap_or(0)),
        other => Err(OpError::Invalid {
            op: "Trilu",
            reason: format!("k must be one int64 value, got {} of shape {:?}", other.dtype(), other.shape()),
        }),
    }
}

/// Trilu on one array: zeroes outside the triangle (no copy when the
/// caller handed over the only reference).
fn trilu<T: Item + Default>(ctx: &ExecCtx<'_>, array: crate::tensor::SharedArray<T>, k: i64, upper: bool) -> Tensor {
    let shape = array.shape().to_vec();
    let (rows, cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let mut owned = array.into_owned();
    if !owned.is_standard_layout() {
        owned = owned.as_standard_layout().into_owned();
    }
    if let Some(data) = owned.as_slice_mut() {
        trilu_in_place(ctx, data, rows, cols, k, upper);
    }
    T::wrap(owned)
}

impl Op for Trilu {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=2
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        if let Some(ty) = inputs.first().and_then(|input| input.ty) {
            check_dtype("Trilu", ty.dtype, trilu_types(14))?;
        }
        if let Some(ty) = inputs.get(1).and_then(|input| input.ty) {
            check_dtype("Trilu", ty.dtype, &[DType::I64])?;
        }
        Ok(())
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        same_as_first(inputs)
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "Trilu";
        let x = required(inputs, 0, OP)?.into_owned();
        check_dtype(OP, x.dtype(), trilu_types(14))?;
        if x.shape().len() < 2 {
            return Err(OpError::Invalid { op: OP, reason: format!("input of shape {:?} has rank < 2", x.shape()) });
        }
        let k = diagonal(inputs)?;
        Ok(dispatch!(x, array => trilu(ctx, array, k, self.upper)))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::{ArrayD, Dimension, IxDyn, array};

    use super::*;
    use crate::kernels::Parallel;
    use crate::tensor::Str;

    fn run_on(upper: bool, x: Tensor, k: Option<Tensor>, par: &Parallel) -> Result<Tensor, OpError> {
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs = vec![Some(Cow::Owned(x)), k.map(Cow::Owned)];
        Trilu { upper }.run(&mut inputs, &ctx)
    }

    fn run(upper: bool, x: Tensor, k: Option<i64>) -> Result<Tensor, OpError> {
        run_on(upper, x, k.map(|k| Tensor::from(ndarray::arr0(k).into_dyn())), &Parallel::serial())
    }

    /// numpy's definition, element by element: triu keeps j - i >= k,
    /// tril keeps j - i <= k.
    fn reference(x: &ArrayD<i64>, k: i64, upper: bool) -> ArrayD<i64> {
        ArrayD::from_shape_fn(x.raw_dim(), |index| {
            let rank = index.ndim();
            let diff = index[rank - 1] as i64 - index[rank - 2] as i64;
            let keep = if upper { diff >= k } else { diff <= k };
            if keep { x[&index] } else { 0 }
        })
    }

    #[test]
    fn matches_the_elementwise_definition_for_every_k() {
        for shape in [vec![3usize, 5], vec![5, 3], vec![2, 3, 4, 4], vec![1, 6], vec![0, 4], vec![4, 0]] {
            let x = ArrayD::from_shape_fn(IxDyn(&shape), |index| {
                index.slice().iter().fold(1i64, |acc, &v| acc * 7 + v as i64)
            });
            for k in [-7, -3, -1, 0, 1, 2, 5, 9, i64::MIN, i64::MAX] {
                for upper in [true, false] {
                    let got = run(upper, Tensor::from(x.clone()), Some(k)).unwrap();
                    assert_eq!(got, Tensor::from(reference(&x, k, upper)), "{shape:?} k {k} upper {upper}");
                }
            }
        }
    }

    #[test]
    fn default_k_and_other_types() {
        let x = array![[1.5f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let upper = run(true, Tensor::from(x.clone()), None).unwrap();
        assert_eq!(upper, Tensor::from(array![[1.5f32, 2.0, 3.0], [0.0, 5.0, 6.0]]));
        let lower = run(false, Tensor::from(x), None).unwrap();
        assert_eq!(lower, Tensor::from(array![[1.5f32, 0.0, 0.0], [4.0, 5.0, 0.0]]));
        let flags = run(false, Tensor::from(array![[true, true], [true, true]]), Some(-1)).unwrap();
        assert_eq!(flags, Tensor::from(array![[false, false], [true, false]]));
        let s = |text: &str| Str::from(text);
        let words = array![[s("a"), s("b")], [s("c"), s("d")]];
        let got = run(true, Tensor::from(words), Some(0)).unwrap();
        assert_eq!(got, Tensor::from(array![[s("a"), s("b")], [s(""), s("d")]]));
    }

    #[test]
    fn a_transposed_input_and_threads() {
        let x =
            ArrayD::from_shape_fn(IxDyn(&[8, 96, 96]), |index| (index[0] * 10_000 + index[1] * 100 + index[2]) as i64);
        let transposed = x.clone().permuted_axes(IxDyn(&[0, 2, 1]));
        let expected = reference(&transposed.as_standard_layout().into_owned(), 3, false);
        let serial = run(false, Tensor::from(transposed.clone()), Some(3)).unwrap();
        assert_eq!(serial, Tensor::from(expected));
        let par = Parallel::with_threads(4).unwrap();
        let k = Some(Tensor::from(ndarray::arr0(3i64).into_dyn()));
        assert_eq!(run_on(false, Tensor::from(transposed), k, &par).unwrap(), serial);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let err = run(true, Tensor::from(array![1.0f32, 2.0]), None).unwrap_err();
        assert!(err.to_string().contains("Trilu: input of shape [2] has rank < 2"), "{err}");
        let x = Tensor::from(array![[1.0f32]]);
        let k = Tensor::from(array![1i32]);
        let err = run_on(true, x.clone(), Some(k), &Parallel::serial()).unwrap_err();
        assert!(err.to_string().contains("k must be one int64 value, got int32"), "{err}");
        let k = Tensor::from(array![1i64, 2]);
        assert!(run_on(true, x, Some(k), &Parallel::serial()).is_err());
    }
}
