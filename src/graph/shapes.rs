//! Static types of values: what loading can tell about each value's
//! element type and dimensions before the first run. Graph inputs give
//! their declared types, constants their exact ones, and each op infers
//! its outputs' from its inputs' ([`crate::ops::Op::infer`]); whatever an
//! op cannot tell stays unknown.

use std::fmt;

use crate::graph::model::Dim;
use crate::tensor::{DType, Tensor};

/// What is known of a value before it is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueType {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, or `None` when even the rank is unknown.
    pub dims: Option<Vec<Dim>>,
}

impl ValueType {
    /// The type of a tensor at hand: its dtype and fixed dims.
    pub fn of(tensor: &Tensor) -> Self {
        ValueType { dtype: tensor.dtype(), dims: Some(tensor.shape().iter().map(|&dim| Dim::Fixed(dim)).collect()) }
    }

    /// A type with fixed dims.
    pub fn fixed(dtype: DType, shape: &[usize]) -> Self {
        ValueType { dtype, dims: Some(shape.iter().map(|&dim| Dim::Fixed(dim)).collect()) }
    }

    /// The dims when all are fixed.
    pub fn fixed_shape(&self) -> Option<Vec<usize>> {
        self.dims.as_ref()?.iter().map(|dim| if let Dim::Fixed(size) = dim { Some(*size) } else { None }).collect()
    }

    /// The rank, when known.
    pub fn rank(&self) -> Option<usize> {
        self.dims.as_ref().map(Vec::len)
    }
}

impl fmt::Display for ValueType {
    /// `float32 [batch, 5]`, `int64 [?]`, or `float32 any` for an unknown rank.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dims {
            None => write!(f, "{} any", self.dtype),
            Some(dims) => {
                let dims: Vec<String> = dims
                    .iter()
                    .map(|dim| match dim {
                        Dim::Fixed(size) => size.to_string(),
                        Dim::Symbolic(name) => name.clone(),
                        Dim::Any => "?".to_string(),
                    })
                    .collect();
                write!(f, "{} [{}]", self.dtype, dims.join(", "))
            }
        }
    }
}

/// One input as an op's inference sees it: its type if known, and its
/// value when it is a constant.
#[derive(Debug, Clone, Copy, Default)]
pub struct InferInput<'a> {
    /// The static type, if known.
    pub ty: Option<&'a ValueType>,
    /// The value, when the input is a constant.
    pub value: Option<&'a Tensor>,
}

impl<'a> InferInput<'a> {
    /// An int64 constant's values (shape and axes inputs).
    pub fn int64_values(&self) -> Option<Vec<i64>> {
        match self.value? {
            Tensor::I64(array) if array.ndim() <= 1 => Some(array.iter().copied().collect()),
            _ => None,
        }
    }
}

/// The type of input 0, for ops whose output has the input's type.
pub fn same_as_first(inputs: &[InferInput<'_>]) -> Vec<Option<ValueType>> {
    vec![inputs.first().and_then(|input| input.ty).cloned()]
}

/// The numpy-broadcast dims of several inputs (ONNX multidirectional
/// broadcasting), as far as they are known: `None` when a rank is unknown;
/// an axis is fixed when the inputs fix it, a shared symbol when they agree
/// on one (or the rest are 1), else unknown. Shapes that cannot broadcast
/// are left to the op's own check at run time.
pub fn broadcast_dims(inputs: &[Option<&[Dim]>]) -> Option<Vec<Dim>> {
    let dims: Vec<&[Dim]> = inputs.iter().copied().collect::<Option<_>>()?;
    let rank = dims.iter().map(|dims| dims.len()).max().unwrap_or(0);
    let out = (0..rank)
        .map(|axis| {
            // This axis of each input, counted from the right; absent is 1.
            let sizes = dims.iter().filter_map(|dims| dims.len().checked_sub(rank - axis).map(|idx| &dims[idx]));
            let mut merged: Option<Dim> = None;
            for dim in sizes {
                merged = Some(match (merged, dim) {
                    (None, dim) | (Some(Dim::Fixed(1)), dim) => dim.clone(),
                    (Some(known), Dim::Fixed(1)) => known,
                    (Some(Dim::Fixed(a)), Dim::Fixed(b)) if a == *b => Dim::Fixed(a),
                    (Some(Dim::Symbolic(a)), Dim::Symbolic(b)) if a == *b => Dim::Symbolic(a),
                    // A fixed size other than 1 is what any valid run has.
                    (Some(Dim::Fixed(a)), _) if a != 1 => Dim::Fixed(a),
                    (Some(_), &Dim::Fixed(b)) if b != 1 => Dim::Fixed(b),
                    _ => Dim::Any,
                });
            }
            merged.unwrap_or(Dim::Fixed(1))
        })
        .collect();
    Some(out)
}
