//! `TensorProto` ⇄ [`Tensor`]: every storage form, external data confined to
//! the model's folder, and sizes checked before anything is allocated.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};

use crate::error::LoadError;
use crate::onnx::TensorProto;
use crate::tensor::{self, DType, Element, SharedArray, Str, Tensor, checked_elems, onnx_type_name, small};

/// Where and how much a tensor may read while decoding.
#[derive(Debug)]
pub(crate) struct DecodeCtx<'a> {
    /// The model's folder; external data is refused without one.
    pub base_dir: Option<&'a Path>,
    /// Largest single tensor, in bytes.
    pub max_tensor_bytes: u64,
    /// External data bytes still allowed in this model.
    pub external_budget: u64,
}

impl DecodeCtx<'_> {
    /// A context with no folder (external data refused) and the given size cap.
    pub fn standalone(max_tensor_bytes: u64) -> DecodeCtx<'static> {
        DecodeCtx { base_dir: None, max_tensor_bytes, external_budget: 0 }
    }
}

/// The most dimensions a tensor may have (numpy's limit). Shape code is
/// linear in the rank, but a file with a million dims of size 1 would still
/// make every error message and shape check carry them all.
pub const MAX_RANK: usize = 64;

fn bad(name: &str, reason: impl Into<String>) -> LoadError {
    LoadError::Tensor { name: name.to_string(), reason: reason.into() }
}

/// The dims of a TensorProto as `usize`, refusing negative values and
/// element counts that overflow.
pub(crate) fn proto_shape(proto: &TensorProto) -> Result<(Vec<usize>, usize), LoadError> {
    let name = proto.name();
    if proto.dims.len() > MAX_RANK {
        return Err(bad(
            name,
            format!("rank {} is more than the {MAX_RANK} dimensions onnxi allows", proto.dims.len()),
        ));
    }
    let mut shape = Vec::with_capacity(proto.dims.len());
    for &dim in &proto.dims {
        let dim = usize::try_from(dim)
            .map_err(|_| bad(name, format!("negative dimension {dim} in dims {:?}", proto.dims)))?;
        shape.push(dim);
    }
    let n_elems =
        shape_elems(&shape).ok_or_else(|| bad(name, format!("dims {:?} overflow the element count", proto.dims)))?;
    Ok((shape, n_elems))
}

/// The element count of `shape`, or `None` when an array of that shape
/// cannot exist: ndarray requires the product of the non-zero dims to fit
/// an `isize` even when another dim is 0 (and panics otherwise), so
/// `[0, 2^62, 4]` is refused although it holds no element.
pub(crate) fn shape_elems(shape: &[usize]) -> Option<usize> {
    let non_zero = shape.iter().filter(|&&dim| dim != 0).try_fold(1usize, |acc, &dim| acc.checked_mul(dim))?;
    if non_zero > isize::MAX as usize {
        return None;
    }
    checked_elems(shape)
}

/// The size in bytes that a TensorProto's dtype and dims declare, or `None`
/// when they are invalid (which [`tensor_from_proto`] then reports).
pub(crate) fn declared_bytes(proto: &TensorProto) -> Option<u64> {
    let dtype = DType::from_onnx_code(proto.data_type.unwrap_or(0))?;
    let (_, n_elems) = proto_shape(proto).ok()?;
    dtype.packed_bytes(n_elems).map(|n_bytes| n_bytes as u64)
}

/// Decodes a TensorProto.
///
/// # Errors
/// [`LoadError::Tensor`] naming the tensor and what is wrong (unsupported
/// type, length mismatch, several storage fields, escaping external path);
/// [`LoadError::LimitExceeded`] before any allocation larger than allowed.
pub(crate) fn tensor_from_proto(proto: &TensorProto, ctx: &mut DecodeCtx<'_>) -> Result<Tensor, LoadError> {
    let name = proto.name();
    let code = proto.data_type.unwrap_or(0);
    let dtype = DType::from_onnx_code(code)
        .ok_or_else(|| bad(name, format!("data type {} is not supported by onnxi", onnx_type_name(code))))?;
    let (shape, n_elems) = proto_shape(proto)?;
    let n_bytes = n_elems
        .checked_mul(dtype.size())
        .ok_or_else(|| bad(name, format!("dims {:?} overflow the byte count", proto.dims)))?;
    if n_bytes as u64 > ctx.max_tensor_bytes {
        return Err(LoadError::LimitExceeded {
            what: format!("tensor {name:?} ({dtype}, dims {:?}) size in bytes", proto.dims),
            limit: ctx.max_tensor_bytes,
            actual: n_bytes as u64,
        });
    }
    if proto.segment.is_some() {
        return Err(bad(name, "segmented tensors are not supported"));
    }
    let external = proto.data_location == Some(1);
    let raw = proto.raw_data.as_ref().filter(|raw| !raw.is_empty() || n_elems == 0 && proto.raw_data.is_some());
    let typed_fields = [
        ("float_data", !proto.float_data.is_empty()),
        ("double_data", !proto.double_data.is_empty()),
        ("int32_data", !proto.int32_data.is_empty()),
        ("int64_data", !proto.int64_data.is_empty()),
        ("uint64_data", !proto.uint64_data.is_empty()),
        ("string_data", !proto.string_data.is_empty()),
    ];
    let mut sources: Vec<&str> = typed_fields.iter().filter(|(_, set)| *set).map(|(field, _)| *field).collect();
    if proto.raw_data.as_ref().is_some_and(|raw| !raw.is_empty()) {
        sources.push("raw_data");
    }
    if external {
        sources.push("external_data");
    }
    if sources.len() > 1 {
        return Err(bad(name, format!("data is stored in several fields at once ({})", sources.join(", "))));
    }
    if dtype == DType::String {
        return strings_from_proto(proto, &shape, n_elems, &sources, ctx);
    }
    if external {
        // Never more than the in-memory size checked above.
        let file_bytes = dtype.packed_bytes(n_elems).unwrap_or(n_bytes);
        let bytes = read_external(proto, file_bytes, ctx)?;
        return from_file_bytes(dtype, &shape, n_elems, &bytes).map_err(|reason| bad(name, reason));
    }
    if let Some(raw) = raw {
        return from_file_bytes(dtype, &shape, n_elems, raw).map_err(|reason| bad(name, reason));
    }
    let Some(field) = sources.first() else {
        if n_elems == 0 {
            return Ok(Tensor::zeros(dtype, &shape));
        }
        return Err(bad(name, format!("no data for dims {:?} ({n_elems} elements)", proto.dims)));
    };
    let count = match *field {
        "float_data" => proto.float_data.len(),
        "double_data" => proto.double_data.len(),
        "int32_data" => proto.int32_data.len(),
        "int64_data" => proto.int64_data.len(),
        "uint64_data" => proto.uint64_data.len(),
        _ => proto.string_data.len(),
    };
    // The 4- and 2-bit types pack two or four elements in each int32_data
    // value, as in a raw_data byte.
    let needed = match dtype.bits() {
        bits @ (2 | 4) if *field == "int32_data" => n_elems.div_ceil((8 / bits) as usize),
        _ => n_elems,
    };
    if count != needed {
        return Err(bad(name, format!("{field} holds {count} values, but dims {:?} need {needed}", proto.dims)));
    }
    let wrong_field = || bad(name, format!("{field} cannot hold {dtype} data"));
    let tensor = match (dtype, *field) {
        (DType::F32, "float_data") => array(&shape, proto.float_data.clone()),
        (DType::F64, "double_data") => array(&shape, proto.double_data.clone()),
        (DType::I64, "int64_data") => array(&shape, proto.int64_data.clone()),
        (DType::I32, "int32_data") => array(&shape, proto.int32_data.clone()),
        (DType::I16, "int32_data") => array(&shape, narrow(name, &proto.int32_data, |v| i16::try_from(v).ok())?),
        (DType::I8, "int32_data") => array(&shape, narrow(name, &proto.int32_data, |v| i8::try_from(v).ok())?),
        (DType::U16, "int32_data") => array(&shape, narrow(name, &proto.int32_data, |v| u16::try_from(v).ok())?),
        (DType::U8, "int32_data") => array(&shape, narrow(name, &proto.int32_data, |v| u8::try_from(v).ok())?),
        // Any nonzero value is true, as for a raw_data byte (and numpy's
        // `astype(bool)`).
        (DType::Bool, "int32_data") => array(&shape, proto.int32_data.iter().map(|&v| v != 0).collect()),
        (DType::U64, "uint64_data") => array(&shape, proto.uint64_data.clone()),
        (DType::U32, "uint64_data") => {
            let values = proto.uint64_data.iter().map(|&value| {
                u32::try_from(value)
                    .map_err(|_| bad(name, format!("uint64_data value {value} does not fit the tensor's type")))
            });
            array(&shape, values.collect::<Result<Vec<_>, _>>()?)
        }
        // float16 and bfloat16 travel as their 16-bit patterns in int32_data.
        (DType::F16, "int32_data") => {
            array(&shape, narrow(name, &proto.int32_data, |v| u16::try_from(v).ok().map(f16::from_bits))?)
        }
        (DType::BF16, "int32_data") => {
            array(&shape, narrow(name, &proto.int32_data, |v| u16::try_from(v).ok().map(bf16::from_bits))?)
        }
        // The storage types: a float8 code, or a byte of packed 4-/2-bit
        // codes, in each value.
        (dtype, "int32_data") if dtype.is_low_precision() => {
            let bytes = narrow(name, &proto.int32_data, |v| u8::try_from(v).ok())?;
            from_file_bytes(dtype, &shape, n_elems, &bytes)
        }
        _ => return Err(wrong_field()),
    };
    tensor.map_err(|reason| bad(name, reason))
}

/// A string tensor from `string_data`, the only field onnx.proto gives
/// strings: one UTF-8 element per entry, `n_elems` of them, whose text
/// counts toward the size limit.
fn strings_from_proto(
    proto: &TensorProto,
    shape: &[usize],
    n_elems: usize,
    sources: &[&str],
    ctx: &DecodeCtx<'_>,
) -> Result<Tensor, LoadError> {
    let name = proto.name();
    if let Some(other) = sources.iter().find(|&&source| source != "string_data") {
        return Err(bad(name, format!("a string tensor keeps its text in string_data, not {other}")));
    }
    if proto.string_data.len() != n_elems {
        return Err(bad(
            name,
            format!("string_data holds {} values, but dims {:?} need {n_elems}", proto.string_data.len(), proto.dims),
        ));
    }
    let text_bytes: usize = proto.string_data.iter().map(Vec::len).sum();
    let n_bytes = (n_elems * DType::String.size()).saturating_add(text_bytes);
    if n_bytes as u64 > ctx.max_tensor_bytes {
        return Err(LoadError::LimitExceeded {
            what: format!("tensor {name:?} (string, dims {:?}) size in bytes", proto.dims),
            limit: ctx.max_tensor_bytes,
            actual: n_bytes as u64,
        });
    }
    let texts = proto
        .string_data
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            std::str::from_utf8(bytes)
                .map(Str::from)
                .map_err(|err| bad(name, format!("string element {index} is not UTF-8 ({err})")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ArrayD::from_shape_vec(IxDyn(shape), texts).map(Tensor::from).map_err(|err| bad(name, err.to_string()))
}

/// A tensor from its bytes in a file: little-endian, or packed for the 4-
/// and 2-bit types (the first element in the lowest bits; the unused high
/// bits of the last byte are ignored).
fn from_file_bytes(dtype: DType, shape: &[usize], n_elems: usize, bytes: &[u8]) -> Result<Tensor, String> {
    match dtype.bits() {
        bits @ (2 | 4) => {
            let needed = n_elems.div_ceil((8 / bits) as usize);
            if bytes.len() != needed {
                return Err(format!(
                    "{} bytes of data, but shape {shape:?} of {dtype} needs {needed} ({} per byte)",
                    bytes.len(),
                    8 / bits
                ));
            }
            tensor::from_le_bytes(dtype, shape, &small::unpack(bytes, n_elems, bits))
        }
        _ => tensor::from_le_bytes(dtype, shape, bytes),
    }
}

/// The bytes of a tensor in a file: little-endian, or packed for the 4-
/// and 2-bit types.
pub(crate) fn to_file_bytes(tensor: &Tensor) -> Vec<u8> {
    let bytes = tensor.to_le_bytes();
    match tensor.dtype().bits() {
        bits @ (2 | 4) => small::pack(bytes.into_iter(), bits),
        _ => bytes,
    }
}

/// Each element's UTF-8 bytes, for `string_data`.
fn string_data(texts: &SharedArray<Str>) -> Vec<Vec<u8>> {
    texts.iter().map(|text| text.as_bytes().to_vec()).collect()
}

fn array<T: Element>(shape: &[usize], values: Vec<T>) -> Result<Tensor, String> {
    ArrayD::from_shape_vec(IxDyn(shape), values).map(T::wrap).map_err(|err| err.to_string())
}

fn narrow<T>(name: &str, values: &[i32], convert: impl Fn(i32) -> Option<T>) -> Result<Vec<T>, LoadError> {
    values
        .iter()
        .map(|&value| {
            convert(value).ok_or_else(|| bad(name, format!("int32_data value {value} does not fit the tensor's type")))
        })
        .collect()
}

/// Reads external data, refusing locations outside the model's folder and
/// ranges outside the file.
fn read_external(proto: &TensorProto, n_bytes: usize, ctx: &mut DecodeCtx<'_>) -> Result<Vec<u8>, LoadError> {
    let name = proto.name();
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for entry in &proto.external_data {
        let value = entry.value();
        let parse = |what: &str| {
            value
                .parse::<u64>()
                .map_err(|_| bad(name, format!("external data {what} {value:?} is not a non-negative integer")))
        };
        match entry.key() {
            "location" => location = Some(value),
            "offset" => offset = parse("offset")?,
            "length" => length = Some(parse("length")?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| bad(name, "external data has no location"))?;
    let base_dir =
        ctx.base_dir.ok_or_else(|| bad(name, "external data needs the model's folder: load the model from a path"))?;
    let path = confined_path(base_dir, location).map_err(|reason| bad(name, reason))?;
    let expected = n_bytes as u64;
    if let Some(length) = length
        && length != expected
    {
        return Err(bad(
            name,
            format!("external data length {length} does not match the {expected} bytes its dims need"),
        ));
    }
    if expected > ctx.external_budget {
        return Err(LoadError::LimitExceeded {
            what: format!("external data of tensor {name:?}"),
            limit: ctx.external_budget,
            actual: expected,
        });
    }
    // Only a regular file: opening a FIFO would block, and a device or a
    // folder has no meaningful length.
    let metadata =
        std::fs::metadata(&path).map_err(|err| bad(name, format!("cannot open external data {location:?}: {err}")))?;
    if !metadata.is_file() {
        return Err(bad(name, format!("external data {location:?} is not a regular file")));
    }
    let mut file =
        File::open(&path).map_err(|err| bad(name, format!("cannot open external data {location:?}: {err}")))?;
    let file_len = file.metadata().map_err(|err| bad(name, format!("cannot stat {location:?}: {err}")))?.len();
    let end = offset.checked_add(expected).ok_or_else(|| bad(name, "external data offset overflows"))?;
    if end > file_len {
        return Err(bad(
            name,
            format!(
                "external data {location:?} is {file_len} bytes, but offset {offset} + length {expected} reaches {end}"
            ),
        ));
    }
    file.seek(SeekFrom::Start(offset)).map_err(|err| bad(name, format!("cannot seek in {location:?}: {err}")))?;
    let mut bytes = vec![0u8; n_bytes];
    file.read_exact(&mut bytes).map_err(|err| bad(name, format!("cannot read {location:?}: {err}")))?;
    ctx.external_budget -= expected;
    Ok(bytes)
}

/// Resolves `location` inside `base_dir`, refusing absolute paths, `..`, and
/// symlinks that lead out of the folder.
fn confined_path(base_dir: &Path, location: &str) -> Result<PathBuf, String> {
    let relative = Path::new(location);
    if location.is_empty()
        || relative.is_absolute()
        || relative.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!("external data location {location:?} must be a relative path inside the model's folder"));
    }
    let base = base_dir.canonicalize().map_err(|err| format!("cannot resolve the model's folder: {err}"))?;
    let resolved =
        base.join(relative).canonicalize().map_err(|err| format!("cannot open external data {location:?}: {err}"))?;
    if !resolved.starts_with(&base) {
        return Err(format!("external data location {location:?} leads outside the model's folder"));
    }
    Ok(resolved)
}

/// Encodes a tensor as a TensorProto with its elements in the typed field
/// onnx.proto assigns to its dtype instead of `raw_data`: `float_data`,
/// `double_data`, `int64_data`, `uint64_data` (uint32, uint64) or
/// `int32_data` (int8, int16, int32, uint8, uint16, bool, the bit
/// patterns of float16 and bfloat16, float8 codes, and the 4- and 2-bit
/// types packed a byte per value). Older exporters write this form.
pub fn tensor_to_proto_typed(name: &str, tensor: &Tensor) -> TensorProto {
    let mut proto = TensorProto {
        name: Some(name.to_string()),
        dims: tensor.shape().iter().map(|&dim| dim as i64).collect(),
        data_type: Some(tensor.dtype().onnx_code()),
        ..Default::default()
    };
    match tensor {
        Tensor::F32(array) => proto.float_data = array.iter().copied().collect(),
        Tensor::F64(array) => proto.double_data = array.iter().copied().collect(),
        Tensor::I64(array) => proto.int64_data = array.iter().copied().collect(),
        Tensor::U64(array) => proto.uint64_data = array.iter().copied().collect(),
        Tensor::U32(array) => proto.uint64_data = array.iter().map(|&v| u64::from(v)).collect(),
        Tensor::I32(array) => proto.int32_data = array.iter().copied().collect(),
        Tensor::I16(array) => proto.int32_data = array.iter().map(|&v| i32::from(v)).collect(),
        Tensor::I8(array) => proto.int32_data = array.iter().map(|&v| i32::from(v)).collect(),
        Tensor::U16(array) => proto.int32_data = array.iter().map(|&v| i32::from(v)).collect(),
        Tensor::U8(array) => proto.int32_data = array.iter().map(|&v| i32::from(v)).collect(),
        Tensor::Bool(array) => proto.int32_data = array.iter().map(|&v| i32::from(v)).collect(),
        Tensor::F16(array) => proto.int32_data = array.iter().map(|v| i32::from(v.to_bits())).collect(),
        Tensor::BF16(array) => proto.int32_data = array.iter().map(|v| i32::from(v.to_bits())).collect(),
        Tensor::String(texts) => proto.string_data = string_data(texts),
        other => proto.int32_data = to_file_bytes(other).into_iter().map(i32::from).collect(),
    }
    proto
}

/// Encodes a tensor as a TensorProto with little-endian `raw_data` (the 4-
/// and 2-bit types packed; strings in `string_data`, which onnx.proto
/// requires of them).
pub fn tensor_to_proto(name: &str, tensor: &Tensor) -> TensorProto {
    if let Tensor::String(_) = tensor {
        return tensor_to_proto_typed(name, tensor);
    }
    TensorProto {
        name: Some(name.to_string()),
        dims: tensor.shape().iter().map(|&dim| dim as i64).collect(),
        data_type: Some(tensor.dtype().onnx_code()),
        raw_data: Some(to_file_bytes(tensor)),
        ..Default::default()
    }
}
