//! OneHot and EyeLike: tensors that are one value at the positions an
//! index (or a diagonal) names and another everywhere else.
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__OneHot.html>
//! - <https://onnx.ai/onnx/operators/onnx__EyeLike.html>
//!
//! | op      | opset | change                                                  |
//! |---------|-------|---------------------------------------------------------|
//! | OneHot  | 9     | first version; indices outside `[0, depth)` are all off |
//! | OneHot  | 11    | negative indices count from the end (`[-depth, depth)`) |
//! | OneHot  | 28    | bfloat16 values                                         |
//! | EyeLike | 9     | first version                                           |
//! | EyeLike | 22    | bfloat16                                                |
//!
//! OneHot's indices and depth may be of any number type; float ones are
//! truncated toward zero as a cast to int64 does, and a NaN or infinite
//! index is out of range (all off). An index out of range is no error:
//! the spec makes its row all `off_value`. The one-hot axis is sized by
//! the run-time `depth`, so the output is checked against the model's
//! tensor size limit before it is allocated.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::values::by_dtype;
use super::{
    ALL_BUT_BF16, ExecCtx, Inputs, NUMBERS, Op, Registry, check_dtype, check_input_type, normalize_axis, required,
};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Item, Tensor};

/// Registers OneHot and EyeLike.
pub fn register(reg: &mut Registry) {
    reg.add("", "OneHot", &[9, 11, 28], one_hot_dtypes, OneHot::from_node);
    reg.add("", "EyeLike", &[9, 22], eye_like_dtypes, EyeLike::from_node);
}

/// OneHot's value (and output) types.
fn one_hot_dtypes(version: i64) -> &'static [DType] {
    super::classic_moved_types(version, 28)
}

/// EyeLike's input and output types (numbers and bool).
fn eye_like_dtypes(version: i64) -> &'static [DType] {
    if version >= 22 { &DType::ALL } else { ALL_BUT_BF16 }
}

/// OneHot: inserts an axis of length `depth` at `axis`, holding `on_value`
/// where the axis position equals the index and `off_value` elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct OneHot {
    /// Where the new axis goes, in `[-rank-1, rank]` (default -1: last).
    pub axis: i64,
    /// Opset 11 on: negative indices count back from `depth`.
    pub negative_indices: bool,
    /// Element types of `values` this version accepts.
    pub dtypes: &'static [DType],
}

impl OneHot {
    /// Reads `axis`.
    ///
    /// # Errors
    /// A wrongly typed `axis`.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Ok(OneHot {
            axis: attrs.i64("axis")?.unwrap_or(-1),
            negative_indices: version >= 11,
            dtypes: one_hot_dtypes(version),
        })
    }
}

/// Each element of a number tensor as an integer, truncated toward zero
/// (`None` for NaN and infinities).
fn integers(op: &'static str, what: &str, tensor: &Tensor) -> Result<Vec<Option<i128>>, OpError> {
    check_dtype(op, tensor.dtype(), NUMBERS).map_err(|_| OpError::Invalid {
        op,
        reason: format!("{what} must be a number tensor, got {}", tensor.dtype()),
    })?;
    by_dtype!(op, tensor.dtype(), T => {
        let view = T::view(tensor).ok_or(OpError::UnsupportedDtype { op, dtype: tensor.dtype() })?;
        Ok(view
            .iter()
            .map(|&value| {
                if T::INT {
                    Some(value.to_i128())
                } else {
                    let value = value.to_f64();
                    // Saturates far outside i128, which is out of range anyway.
                    value.is_finite().then(|| value.trunc() as i128)
                }
            })
            .collect())
    })
}

fn one_hot_typed<T: Item>(
    values: ArrayViewD<'_, T>,
    targets: &[Option<usize>],
    (outer, depth, inner): (usize, usize, usize),
    out_shape: &[usize],
) -> Result<Tensor, OpError> {
    let mut pair = values.iter();
    let (Some(off), Some(on)) = (pair.next(), pair.next()) else {
        return Err(OpError::Invalid { op: "OneHot", reason: "values must hold [off_value, on_value]".into() });
    };
    let mut out = vec![off.clone(); outer * depth * inner];
    for (position, target) in targets.iter().enumerate() {
        if let Some(target) = target {
            let (block, lane) = (position / inner, position % inner);
            out[(block * depth + target) * inner + lane] = on.clone();
        }
    }
    ArrayD::from_shape_vec(IxDyn(out_shape), out)
        .map(T::wrap)
        .map_err(|err| OpError::Invalid { op: "OneHot", reason: err.to_string() })
}

/// OneHot's kernel.
///
/// # Errors
/// Indices or depth that are not numbers, a depth that is not one
/// non-negative value, values that are not two entries, an axis out of
/// range, an output above the size limit.
pub fn one_hot(
    indices: &Tensor,
    depth: &Tensor,
    values: &Tensor,
    axis: i64,
    negative_indices: bool,
    ctx: &ExecCtx<'_>,
) -> Result<Tensor, OpError> {
    const OP: &str = "OneHot";
    if depth.len() != 1 || depth.shape().len() > 1 {
        return Err(OpError::Invalid {
            op: OP,
            reason: format!("depth must be one value, got shape {:?}", depth.shape()),
        });
    }
    let depth = match integers(OP, "depth", depth)?.first() {
        Some(&Some(depth)) => usize::try_from(depth).map_err(|_| depth.to_string()),
        _ => Err("not finite".to_string()),
    }
    .map_err(|depth| OpError::Invalid { op: OP, reason: format!("depth {depth} is not a non-negative count") })?;
    if values.shape() != [2] {
        return Err(OpError::Invalid {
            op: OP,
            reason: format!("values must be [off_value, on_value] of shape [2], got {:?}", values.shape()),
        });
    }
    let rank = indices.shape().len();
    let axis = normalize_axis(OP, axis, rank + 1)?;
    let mut out_shape = indices.shape().to_vec();
    out_shape.insert(axis, depth);
    ctx.checked_elems(OP, values.dtype(), &out_shape)?;
    let depth_i = depth as i128;
    let targets: Vec<Option<usize>> = integers(OP, "indices", indices)?
        .into_iter()
        .map(|index| {
            let index = index?;
            let index = if index < 0 && negative_indices { index + depth_i } else { index };
            (0..depth_i).contains(&index).then_some(index as usize)
        })
        .collect();
    let inner: usize = indices.shape()[axis..].iter().product();
    let outer: usize = indices.shape()[..axis].iter().product();
    dispatch!(values, array => one_hot_typed(array.view(), &targets, (outer, depth, inner), &out_shape))
}

impl Op for OneHot {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("OneHot", inputs, 2, self.dtypes)
    }

    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(values) = inputs.get(2).and_then(|input| input.ty) else {
            return Vec::new();
        };
        let depth = inputs.get(1).and_then(InferInput::int64_values).and_then(|depth| match depth.as_slice() {
            &[depth] => usize::try_from(depth).ok(),
            _ => None,
        });
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.as_ref()).and_then(|dims| {
            let axis = normalize_axis("OneHot", self.axis, dims.len() + 1).ok()?;
            let mut out = dims.clone();
            out.insert(axis, depth.map_or(Dim::Any, Dim::Fixed));
            Some(out)
        });
        vec![Some(ValueType { dtype: values.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let indices = required(inputs, 0, "OneHot")?;
        let depth = required(inputs, 1, "OneHot")?;
        let values = required(inputs, 2, "OneHot")?;
        check_dtype("OneHot", values.dtype(), self.dtypes)?;
        one_hot(&indices, &depth, &values, self.axis, self.negative_indices, ctx)
    }
}

/// EyeLike: a matrix of the input's shape with ones on diagonal `k` and
/// zeros elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct EyeLike {
    /// The output type (`None`: the input's).
    pub dtype: Option<DType>,
    /// The diagonal: `out[i, i + k] = 1` (0 main, positive above).
    pub k: i64,
    /// Element types this version accepts (input and output).
    pub dtypes: &'static [DType],
}

impl EyeLike {
    /// Reads `dtype` and `k`.
    ///
    /// # Errors
    /// A `dtype` that is not a type this version can output.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let dtypes = eye_like_dtypes(version);
        let dtype = match attrs.i64("dtype")? {
            None => None,
            Some(code) => {
                match i32::try_from(code).ok().and_then(DType::from_onnx_code).filter(|dtype| dtypes.contains(dtype)) {
                    Some(dtype) => Some(dtype),
                    None => {
                        return Err(attrs
                            .error("dtype", format!("data type {code} is not an output type at version {version}")));
                    }
                }
            }
        };
        Ok(EyeLike { dtype, k: attrs.i64("k")?.unwrap_or(0), dtypes })
    }
}

/// EyeLike's kernel: `rows × cols` of `dtype`, one on diagonal `k`.
///
/// # Errors
/// A dtype without a one (string, the storage types), an output above the
/// size limit.
pub fn eye_like(dtype: DType, rows: usize, cols: usize, k: i64, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
    const OP: &str = "EyeLike";
    ctx.checked_elems(OP, dtype, &[rows, cols])?;
    // Row i holds its one at column i + k, when that is inside the matrix.
    let column =
        |row: usize| i64::try_from(row).ok().and_then(|row| row.checked_add(k)).and_then(|c| usize::try_from(c).ok());
    by_dtype!(OP, dtype, T => {
        let mut out = vec![T::default(); rows * cols];
        for row in 0..rows {
            if let Some(col) = column(row).filter(|&col| col < cols) {
                out[row * cols + col] = T::from_f64(1.0);
            }
        }
        ArrayD::from_shape_vec(IxDyn(&[rows, cols]), out)
            .map(Tensor::from)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })
    })
}

impl Op for EyeLike {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("EyeLike", inputs, 0, self.dtypes)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        vec![Some(ValueType { dtype: self.dtype.unwrap_or(ty.dtype), dims: ty.dims.clone() })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let input = required(inputs, 0, "EyeLike")?;
        check_dtype("EyeLike", input.dtype(), self.dtypes)?;
        let &[rows, cols] = input.shape() else {
            return Err(OpError::Invalid {
                op: "EyeLike",
                reason: format!("input must be 2-D, got shape {:?}", input.shape()),
            });
        };
        eye_like(self.dtype.unwrap_or(input.dtype()), rows, cols, self.k, ctx)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::kernels::Parallel;
    use crate::tensor::Str;

    fn ctx_run(f: impl FnOnce(&ExecCtx<'_>) -> Result<Tensor, OpError>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        f(&ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 20 })
    }

    /// onnx.reference's OneHot (onnx 1.23.2) on the same inputs: a negative
    /// index wraps, one past the range is all off.
    #[test]
    fn one_hot_matches_the_reference() {
        let indices = Tensor::from(array![[1i64, -1], [9, 0]]);
        let depth = Tensor::from(ndarray::arr0(3i64));
        let values = Tensor::from(array![2i32, 5]);
        let out = ctx_run(|ctx| one_hot(&indices, &depth, &values, 1, true, ctx)).unwrap();
        assert_eq!(out, Tensor::from(array![[[2i32, 2], [5, 2], [2, 5]], [[2, 5], [2, 2], [2, 2]]]));
        // Opset 9: a negative index is out of range, so all off.
        let out = ctx_run(|ctx| one_hot(&indices, &depth, &values, -2, false, ctx)).unwrap();
        assert_eq!(out, Tensor::from(array![[[2i32, 2], [5, 2], [2, 2]], [[2, 5], [2, 2], [2, 2]]]));
    }

    /// Float indices and depth are cast to int64 (truncated) as the spec
    /// says; onnx.reference compares them unconverted instead, which
    /// matches nothing for 1.9.
    #[test]
    fn float_indices_truncate_and_strings_are_values() {
        let indices = Tensor::from(array![1.9f32, -2.5, 3.0, f32::NAN]);
        let depth = Tensor::from(array![3.7f64]);
        let values = Tensor::from(array![Str::from("off"), Str::from("on")]);
        let out = ctx_run(|ctx| one_hot(&indices, &depth, &values, -1, true, ctx)).unwrap();
        let text: Vec<String> = out.view::<Str>().unwrap().iter().map(|text| text.to_string()).collect();
        assert_eq!(out.shape(), [4, 3]);
        assert_eq!(text, ["off", "on", "off", "off", "on", "off", "off", "off", "off", "off", "off", "off"]);
    }

    #[test]
    fn one_hot_refuses_bad_depth_values_and_huge_outputs() {
        let indices = Tensor::from(array![0i64]);
        let values = Tensor::from(array![0.0f32, 1.0]);
        let run =
            |depth: Tensor, values: &Tensor, axis| ctx_run(|ctx| one_hot(&indices, &depth, values, axis, true, ctx));
        let err = run(Tensor::from(array![-1i64]), &values, -1).unwrap_err();
        assert_eq!(err.to_string(), "OneHot: depth -1 is not a non-negative count");
        assert!(run(Tensor::from(array![2i64, 3]), &values, -1).unwrap_err().to_string().contains("one value"));
        let three = Tensor::from(array![0.0f32, 1.0, 2.0]);
        assert!(run(Tensor::from(array![2i64]), &three, -1).unwrap_err().to_string().contains("[off_value, on_value]"));
        assert_eq!(
            run(Tensor::from(array![2i64]), &values, 2).unwrap_err(),
            OpError::AxisOutOfRange { op: "OneHot", axis: 2, rank: 2 }
        );
        let err = run(Tensor::from(array![1i64 << 40]), &values, -1).unwrap_err();
        assert!(err.to_string().contains("size limit"), "{err}");
        let err = run(Tensor::from(array![true]), &values, -1).unwrap_err();
        assert!(err.to_string().contains("depth must be a number tensor"), "{err}");
    }

    /// numpy's `np.eye(rows, cols, k)`.
    #[test]
    fn eye_like_matches_numpy_eye() {
        let out = ctx_run(|ctx| eye_like(DType::I64, 3, 4, 1, ctx)).unwrap();
        assert_eq!(out, Tensor::from(array![[0i64, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]));
        let out = ctx_run(|ctx| eye_like(DType::F64, 3, 2, -1, ctx)).unwrap();
        assert_eq!(out, Tensor::from(array![[0.0f64, 0.0], [1.0, 0.0], [0.0, 1.0]]));
        let out = ctx_run(|ctx| eye_like(DType::Bool, 2, 2, i64::MIN, ctx)).unwrap();
        assert_eq!(out, Tensor::from(array![[false, false], [false, false]]));
        let err = ctx_run(|ctx| eye_like(DType::String, 2, 2, 0, ctx)).unwrap_err();
        assert_eq!(err, OpError::UnsupportedDtype { op: "EyeLike", dtype: DType::String });
    }
}
