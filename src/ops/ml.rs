//! Ops of the `ai.onnx.ml` domain: LabelEncoder, Binarizer and
//! ArrayFeatureExtractor (each at every version of its schema).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx_aionnxml_LabelEncoder.html>
//! - <https://onnx.ai/onnx/operators/onnx_aionnxml_Binarizer.html>
//! - <https://onnx.ai/onnx/operators/onnx_aionnxml_ArrayFeatureExtractor.html>
//!
//! Binarizer gives 1 where `x > threshold`, else 0, in X's type (NaN gives
//! 0). ArrayFeatureExtractor picks the entries `Y` (int64, flattened) of
//! X's last axis: output shape `X.shape[..-1] ++ [len(Y)]`, and `[1,
//! len(Y)]` for a 1-D X, as ONNX Runtime and the reference do; an index
//! outside `[0, X.shape[-1])` is an error naming it.
//!
//! LabelEncoder's versions:
//!
//! | version | mapping |
//! |---------|---------|
//! | 1 | `classes_strings`: a string maps to its index (`default_int64`, -1, when absent), an int64 to the string at that index (`default_string`, `"_Unused"`) |
//! | 2 | `keys_*` → `values_*` (strings, int64 or float32 each), a `default_*` of the values' type |
//! | 4 | adds `keys_tensor`, `values_tensor` and `default_tensor` (also int16, int32, float64) |
//!
//! Keys compare as the spec says: text byte for byte, integers by value,
//! floats by value with every NaN matching a NaN key (and -0 matching 0, as
//! a hash map of floats compares). A repeated key maps to its last value.
//! Without a `default_*` of the values' type, the default is -1 for
//! integers, -0.0 for floats and `"_Unused"` for strings (the schema's).

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::cast::cast;
use crate::tensor::{DType, Item, SharedArray, Str, Tensor};

/// Registers the `ai.onnx.ml` ops.
pub fn register(reg: &mut Registry) {
    reg.add("ai.onnx.ml", "LabelEncoder", &[1, 2, 4], label_encoder_types, LabelEncoder::from_node);
    reg.add("ai.onnx.ml", "Binarizer", &[1], |_| BINARIZER_TYPES, Binarizer::from_node);
    reg.add(
        "ai.onnx.ml",
        "ArrayFeatureExtractor",
        &[1],
        |_| FEATURE_TYPES,
        |_attrs, _version| Ok(ArrayFeatureExtractor),
    );
}

const BINARIZER_TYPES: &[DType] = &[DType::F32, DType::F64, DType::I64, DType::I32];
const FEATURE_TYPES: &[DType] = &[DType::F32, DType::F64, DType::I64, DType::I32, DType::String];

/// Binarizer: `x > threshold ? 1 : 0` in X's type.
#[derive(Debug)]
pub struct Binarizer {
    /// The threshold (default 0).
    pub threshold: f32,
}

impl Binarizer {
    /// Reads `threshold`.
    ///
    /// # Errors
    /// A wrongly typed attribute.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Binarizer { threshold: attrs.f32("threshold")?.unwrap_or(0.0) })
    }
}

impl Op for Binarizer {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        inputs
            .first()
            .and_then(|input| input.ty)
            .map_or(Ok(()), |ty| check_dtype("Binarizer", ty.dtype, BINARIZER_TYPES))
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        vec![inputs.first().and_then(|input| input.ty).cloned()]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "Binarizer")?;
        check_dtype("Binarizer", x.dtype(), BINARIZER_TYPES)?;
        // The threshold compares in float64, where every input value and
        // the float32 threshold are exact (int64 beyond 2^53 rounds).
        let threshold = f64::from(self.threshold);
        let above = |value: f64| value > threshold;
        Ok(match &*x {
            Tensor::F32(a) => Tensor::from(a.mapv(|v| if above(v.into()) { 1.0f32 } else { 0.0 })),
            Tensor::F64(a) => Tensor::from(a.mapv(|v| if above(v) { 1.0f64 } else { 0.0 })),
            Tensor::I64(a) => Tensor::from(a.mapv(|v| i64::from(above(v as f64)))),
            Tensor::I32(a) => Tensor::from(a.mapv(|v| i32::from(above(v.into())))),
            other => return Err(OpError::UnsupportedDtype { op: "Binarizer", dtype: other.dtype() }),
        })
    }
}

/// ArrayFeatureExtractor: the entries `Y` of X's last axis.
#[derive(Debug)]
pub struct ArrayFeatureExtractor;

/// `x[..., indices]` (indices already checked), reshaped to `shape`.
fn extract<T: Item>(x: &SharedArray<T>, indices: &[usize], shape: &[usize]) -> Result<Tensor, OpError> {
    let x = x.as_standard_layout();
    let width = x.shape().last().copied().unwrap_or(1).max(1);
    let data = x.as_slice().unwrap_or_default();
    let picked: Vec<T> =
        data.chunks(width).flat_map(|row| indices.iter().filter_map(|&at| row.get(at).cloned())).collect();
    ArrayD::from_shape_vec(IxDyn(shape), picked)
        .map(Tensor::from)
        .map_err(|err| OpError::Invalid { op: "ArrayFeatureExtractor", reason: err.to_string() })
}

impl Op for ArrayFeatureExtractor {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        if let Some(ty) = inputs.first().and_then(|input| input.ty) {
            check_dtype("ArrayFeatureExtractor", ty.dtype, FEATURE_TYPES)?;
        }
        match inputs.get(1).and_then(|input| input.ty) {
            Some(ty) => check_dtype("ArrayFeatureExtractor", ty.dtype, &[DType::I64]),
            None => Ok(()),
        }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dtype = inputs.first().and_then(|input| input.ty).map(|ty| ty.dtype);
        vec![dtype.map(|dtype| ValueType { dtype, dims: None })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "ArrayFeatureExtractor";
        let x = required(inputs, 0, OP)?;
        let y = required(inputs, 1, OP)?;
        check_dtype(OP, x.dtype(), FEATURE_TYPES)?;
        check_dtype(OP, y.dtype(), &[DType::I64])?;
        let width = x.shape().last().copied().unwrap_or(0);
        let wanted = y.view::<i64>().map_err(|_| OpError::UnsupportedDtype { op: OP, dtype: y.dtype() })?;
        let indices = wanted
            .iter()
            .map(|&at| {
                usize::try_from(at).ok().filter(|&at| at < width).ok_or_else(|| OpError::Invalid {
                    op: OP,
                    reason: format!("index {at} is outside the last axis of X (size {width})"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut shape = match x.shape() {
            [] => return Err(OpError::Invalid { op: OP, reason: "X must have at least one axis".into() }),
            [_] => vec![1],
            more => more[..more.len() - 1].to_vec(),
        };
        shape.push(indices.len());
        ctx.checked_elems(OP, x.dtype(), &shape)?;
        dispatch!(&*x, array => extract(array, &indices, &shape))
    }
}

const TYPES_1: &[DType] = &[DType::String, DType::I64];
const TYPES_2: &[DType] = &[DType::String, DType::I64, DType::F32];
const TYPES_4: &[DType] = &[DType::String, DType::I64, DType::F32, DType::I32, DType::I16, DType::F64];

/// LabelEncoder's key and value types at a version.
fn label_encoder_types(version: i64) -> &'static [DType] {
    match version {
        4.. => TYPES_4,
        2..=3 => TYPES_2,
        _ => TYPES_1,
    }
}

/// One key as the mapping compares it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Text(Str),
    Int(i64),
    /// The bits of the float as f64, every NaN one value and -0 as +0.
    Float(u64),
}

impl Key {
    fn float(value: f64) -> Key {
        if value.is_nan() {
            Key::Float(f64::NAN.to_bits())
        } else if value == 0.0 {
            Key::Float(0)
        } else {
            Key::Float(value.to_bits())
        }
    }

    /// Every element of a tensor as a key, or `None` for a type keys never have.
    fn all(tensor: &Tensor) -> Option<Vec<Key>> {
        Some(match tensor {
            Tensor::String(array) => array.iter().map(|text| Key::Text(text.clone())).collect(),
            Tensor::I64(array) => array.iter().map(|&v| Key::Int(v)).collect(),
            Tensor::I32(array) => array.iter().map(|&v| Key::Int(v.into())).collect(),
            Tensor::I16(array) => array.iter().map(|&v| Key::Int(v.into())).collect(),
            Tensor::F32(array) => array.iter().map(|&v| Key::float(v.into())).collect(),
            Tensor::F64(array) => array.iter().map(|&v| Key::float(v)).collect(),
            _ => return None,
        })
    }
}

/// LabelEncoder: each input element mapped through a key → value table.
#[derive(Debug)]
pub struct LabelEncoder {
    /// The keys, in the order given (a 1-D tensor of the input's type).
    keys: Tensor,
    /// The values, parallel to the keys.
    values: Tensor,
    /// The output for a key not in the table (one element of the values' type).
    default: Tensor,
    /// Version 1 maps in whichever direction the input's type asks: its
    /// reverse table (int64 index → string).
    reverse: Option<(Tensor, Tensor, Tensor)>,
    /// Key position by key; a repeated key keeps its last position.
    index: HashMap<Key, usize>,
    /// The reverse table's index, for version 1.
    reverse_index: HashMap<Key, usize>,
}

/// A 1-D tensor of `values`.
fn vector<T: Item>(values: Vec<T>) -> Tensor {
    Tensor::from(ndarray::Array1::from_vec(values).into_dyn())
}

fn texts(values: Vec<String>) -> Tensor {
    vector(values.into_iter().map(Str::from).collect())
}

impl LabelEncoder {
    /// Reads the table (see the module) and checks it: exactly one key and
    /// one value attribute, of equal length, and a default of the values'
    /// type.
    ///
    /// # Errors
    /// A missing, doubled or mismatched attribute, named.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let default_int = attrs.i64("default_int64")?.unwrap_or(-1);
        let default_string = attrs.string("default_string")?.unwrap_or_else(|| "_Unused".to_string());
        if version < 2 {
            let classes = attrs.strings("classes_strings")?.unwrap_or_default();
            let n = i64::try_from(classes.len()).unwrap_or(i64::MAX);
            let strings = texts(classes);
            let ints = vector((0..n).collect::<Vec<i64>>());
            let to_int = vector(vec![default_int]);
            let to_text = vector(vec![Str::from(default_string)]);
            return Self::build(strings.clone(), ints.clone(), to_int, Some((ints, strings, to_text)));
        }
        let default_float = attrs.f32("default_float")?.unwrap_or(-0.0);
        let mut keys = Vec::new();
        if let Some(list) = attrs.strings("keys_strings")? {
            keys.push(("keys_strings", texts(list)));
        }
        if let Some(list) = attrs.ints("keys_int64s")? {
            keys.push(("keys_int64s", vector(list)));
        }
        if let Some(list) = attrs.floats("keys_floats")? {
            keys.push(("keys_floats", vector(list)));
        }
        let mut values = Vec::new();
        if let Some(list) = attrs.strings("values_strings")? {
            values.push(("values_strings", texts(list)));
        }
        if let Some(list) = attrs.ints("values_int64s")? {
            values.push(("values_int64s", vector(list)));
        }
        if let Some(list) = attrs.floats("values_floats")? {
            values.push(("values_floats", vector(list)));
        }
        let mut default_tensor = None;
        if version >= 4 {
            if let Some(tensor) = attrs.tensor("keys_tensor")? {
                keys.push(("keys_tensor", tensor));
            }
            if let Some(tensor) = attrs.tensor("values_tensor")? {
                values.push(("values_tensor", tensor));
            }
            default_tensor = attrs.tensor("default_tensor")?;
        }
        let one = |attrs: &Attrs<'_>, found: Vec<(&'static str, Tensor)>, what: &str| match <[_; 1]>::try_from(found) {
            Ok([(_, tensor)]) => Ok(tensor),
            Err(found) if found.is_empty() => Err(attrs.error(what, "exactly one must be set; none is")),
            Err(found) => {
                let names: Vec<&str> = found.iter().map(|(name, _)| *name).collect();
                Err(attrs.error(names[1], format!("only one of {} may be set", names.join(", "))))
            }
        };
        let keys = one(attrs, keys, "keys_*")?;
        let values = one(attrs, values, "values_*")?;
        let value_type = values.dtype();
        let default = match default_tensor {
            Some(tensor) if tensor.len() == 1 && tensor.dtype() == value_type => tensor,
            Some(tensor) => {
                return Err(attrs.error(
                    "default_tensor",
                    format!("must hold one {value_type} element, not {} of {}", tensor.len(), tensor.dtype()),
                ));
            }
            None if value_type == DType::String => vector(vec![Str::from(default_string)]),
            None if value_type.is_float() => cast(&vector(vec![default_float]), value_type)
                .map_err(|err| attrs.error("default_float", err.to_string()))?,
            None => cast(&vector(vec![default_int]), value_type)
                .map_err(|err| attrs.error("default_int64", err.to_string()))?,
        };
        for (name, tensor) in [("keys", &keys), ("values", &values)] {
            if !TYPES_4.contains(&tensor.dtype()) || tensor.shape().len() > 1 {
                return Err(attrs.error(name, format!("must be a list of {TYPES_4:?}, not {}", tensor.dtype())));
            }
        }
        if keys.len() != values.len() {
            return Err(attrs.error(
                "values_*",
                format!("holds {} values for {} keys; they must pair up", values.len(), keys.len()),
            ));
        }
        Self::build(keys, values, default, None)
    }

    fn build(
        keys: Tensor,
        values: Tensor,
        default: Tensor,
        reverse: Option<(Tensor, Tensor, Tensor)>,
    ) -> Result<Self, LoadError> {
        let table = |keys: &Tensor| -> HashMap<Key, usize> {
            Key::all(keys).unwrap_or_default().into_iter().enumerate().map(|(at, key)| (key, at)).collect()
        };
        let index = table(&keys);
        let reverse_index = reverse.as_ref().map(|(keys, _, _)| table(keys)).unwrap_or_default();
        Ok(LabelEncoder { keys, values, default, reverse, index, reverse_index })
    }

    /// The table for an input of `dtype`: version 1's reverse one for int64.
    fn table(&self, dtype: DType) -> (&Tensor, &Tensor, &Tensor, &HashMap<Key, usize>) {
        match &self.reverse {
            Some((keys, values, default)) if dtype == keys.dtype() => (keys, values, default, &self.reverse_index),
            _ => (&self.keys, &self.values, &self.default, &self.index),
        }
    }
}

/// The output: `values[at]` where a key matched, else `default`.
fn pick<T: Item>(
    values: &SharedArray<T>,
    default: &T,
    positions: &[Option<usize>],
    shape: &[usize],
) -> Result<Tensor, OpError> {
    let picked: Vec<T> = positions
        .iter()
        .map(|at| at.and_then(|at| values.get(at)).cloned().unwrap_or_else(|| default.clone()))
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), picked)
        .map(Tensor::from)
        .map_err(|err| OpError::Invalid { op: "LabelEncoder", reason: err.to_string() })
}

impl Op for LabelEncoder {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        match inputs.first().and_then(|input| input.ty) {
            Some(ty) => self.check_input(ty.dtype),
            None => Ok(()),
        }
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let (_, values, _, _) = self.table(ty.dtype);
        vec![Some(ValueType { dtype: values.dtype(), dims: ty.dims.clone() })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "LabelEncoder")?;
        self.check_input(x.dtype())?;
        let (_, values, default, index) = self.table(x.dtype());
        let keys = Key::all(&x).ok_or(OpError::UnsupportedDtype { op: "LabelEncoder", dtype: x.dtype() })?;
        let positions: Vec<Option<usize>> = keys.iter().map(|key| index.get(key).copied()).collect();
        dispatch!(values, values => {
            let fallback = default.view::<_>().ok().and_then(|view| view.iter().next().cloned());
            match fallback {
                Some(fallback) => pick(values, &fallback, &positions, x.shape()),
                None => Err(OpError::Invalid { op: "LabelEncoder", reason: "the default holds no value".into() }),
            }
        })
    }
}

impl LabelEncoder {
    /// The input must have the keys' type (version 1: either table's).
    fn check_input(&self, dtype: DType) -> Result<(), OpError> {
        let mut allowed = vec![self.keys.dtype()];
        if let Some((keys, _, _)) = &self.reverse {
            allowed.push(keys.dtype());
        }
        check_dtype("LabelEncoder", dtype, &allowed)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::kernels::Parallel;
    use crate::onnx::AttributeProto;
    use crate::onnx::attribute_proto::AttributeType;

    fn run(op: &dyn Op, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        op.run(&mut inputs, &ctx)
    }

    fn strings(name: &str, values: &[&str]) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Strings as i32),
            strings: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    fn ints(name: &str, values: &[i64]) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Ints as i32),
            ints: values.to_vec(),
            ..Default::default()
        }
    }

    fn floats(name: &str, values: &[f32]) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Floats as i32),
            floats: values.to_vec(),
            ..Default::default()
        }
    }

    fn encoder(list: &[AttributeProto], version: i64) -> Result<LabelEncoder, LoadError> {
        LabelEncoder::from_node(&mut Attrs::new("node", "LabelEncoder", list, u64::MAX), version)
    }

    fn texts(values: &[&str]) -> Tensor {
        vector(values.iter().map(|&v| Str::from(v)).collect())
    }

    #[test]
    fn label_encoder_maps_by_the_spec_example() {
        // The schema's example: keys ["Amy", "Sally"] -> [5, 6], default -1.
        let op = encoder(&[strings("keys_strings", &["Amy", "Sally"]), ints("values_int64s", &[5, 6])], 2).unwrap();
        let got = run(&op, vec![texts(&["Dori", "Amy", "Amy", "Sally", "Sally"])]).unwrap();
        assert_eq!(got, vector(vec![-1i64, 5, 5, 6, 6]));
        // Version 1 goes both ways through classes_strings.
        let v1 = encoder(&[strings("classes_strings", &["a", "b"])], 1).unwrap();
        assert_eq!(run(&v1, vec![texts(&["b", "z", "a"])]).unwrap(), vector(vec![1i64, -1, 0]));
        assert_eq!(run(&v1, vec![vector(vec![1i64, 7, 0])]).unwrap(), texts(&["b", "_Unused", "a"]));
    }

    #[test]
    fn float_keys_match_nan_and_zero_of_either_sign_and_the_last_repeat_wins() {
        let list =
            [floats("keys_floats", &[f32::NAN, 0.0, 2.5, 2.5]), strings("values_strings", &["nan", "zero", "x", "y"])];
        let op = encoder(&list, 4).unwrap();
        let x = vector(vec![f32::from_bits(0x7fc0_0001), -0.0, 2.5, 1.0]);
        assert_eq!(run(&op, vec![x]).unwrap(), texts(&["nan", "zero", "y", "_Unused"]));
    }

    #[test]
    fn bad_tables_and_inputs_are_errors() {
        let short = [strings("keys_strings", &["a", "b"]), ints("values_int64s", &[1])];
        assert!(encoder(&short, 2).unwrap_err().to_string().contains("pair up"));
        let none = [strings("keys_strings", &["a"])];
        assert!(encoder(&none, 2).unwrap_err().to_string().contains("values_*"));
        let two = [strings("keys_strings", &["a"]), ints("keys_int64s", &[1]), ints("values_int64s", &[1])];
        assert!(encoder(&two, 2).unwrap_err().to_string().contains("only one of"));
        let op = encoder(&[strings("keys_strings", &["a"]), ints("values_int64s", &[1])], 2).unwrap();
        assert!(matches!(
            run(&op, vec![vector(vec![1i64])]),
            Err(OpError::UnsupportedDtype { op: "LabelEncoder", dtype: DType::I64 })
        ));
    }

    #[test]
    fn binarizer_and_feature_extractor() {
        let op = Binarizer { threshold: 0.5 };
        let got = run(&op, vec![vector(vec![0.5f32, 0.6, f32::NAN, -1.0])]).unwrap();
        assert_eq!(got, vector(vec![0.0f32, 1.0, 0.0, 0.0]));
        let x = Tensor::from(ndarray::array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn());
        let got = run(&ArrayFeatureExtractor, vec![x.clone(), vector(vec![2i64, 0])]).unwrap();
        assert_eq!(got, Tensor::from(ndarray::array![[3.0f32, 1.0], [6.0, 4.0]].into_dyn()));
        let row = run(&ArrayFeatureExtractor, vec![texts(&["a", "b"]), vector(vec![1i64])]).unwrap();
        assert_eq!(row, Tensor::from(ndarray::array![[Str::from("b")]].into_dyn()));
        let err = run(&ArrayFeatureExtractor, vec![x, vector(vec![3i64])]).unwrap_err();
        assert!(err.to_string().contains("index 3"), "{err}");
    }
}
