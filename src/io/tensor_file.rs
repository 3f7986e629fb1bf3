//! Tensor files: numpy `.npy` (format 1.0–3.0; C or Fortran order, little-
//! or big-endian), `.npz` archives of them, and serialized `TensorProto` (`.pb`). Sizes are checked against the file
//! length before anything is allocated.

use std::path::Path;

use prost::Message;

use crate::error::{Error, TensorFileError};
use crate::io::tensor_proto::{DecodeCtx, MAX_RANK, shape_elems, tensor_from_proto, tensor_to_proto};
use crate::onnx::TensorProto;
use crate::storage_only;
use crate::tensor::{self, DType, Str, Tensor};

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

fn fail(reason: impl Into<String>) -> TensorFileError {
    TensorFileError { reason: reason.into() }
}

/// Reads a `.npy` or TensorProto `.pb` file (chosen by extension; other
/// extensions are sniffed by the npy magic). Returns the tensor and, for
/// `.pb`, the name stored in it.
///
/// # Errors
/// [`Error::TensorFile`] naming the file and what is wrong with it.
pub fn read(path: &Path, max_bytes: u64) -> Result<(Tensor, Option<String>), Error> {
    let with_file = |source| Error::TensorFile { file: path.to_path_buf(), source };
    let bytes = std::fs::read(path).map_err(|err| with_file(fail(format!("cannot read: {err}"))))?;
    if bytes.starts_with(b"PK\x03\x04") || path.extension().is_some_and(|ext| ext == "npz") {
        return Err(with_file(fail(
            "a .npz archive (numpy.savez) holds several arrays: read it with read_npz, \
             or save the one to use with numpy.save as a .npy file",
        )));
    }
    let is_npy = bytes.starts_with(NPY_MAGIC) || path.extension().is_some_and(|ext| ext == "npy");
    if is_npy {
        parse_npy(&bytes, max_bytes).map(|tensor| (tensor, None)).map_err(with_file)
    } else {
        parse_pb(&bytes, max_bytes).map_err(with_file)
    }
}

/// [`read`] with the default cap, [`Limits::max_tensor_bytes`] (the one a
/// model built with default limits accepts for an input): the simple case.
///
/// ```
/// # fn main() -> Result<(), onnxi::Error> {
/// let (x, _) = onnxi::io::tensor_file::read_default("fixtures/seed/test_seed_relu/input.npy")?;
/// assert_eq!(x.shape(), [5]);
/// # Ok(())
/// # }
/// ```
///
/// [`Limits::max_tensor_bytes`]: crate::Limits::max_tensor_bytes
///
/// # Errors
/// As [`read`].
pub fn read_default(path: impl AsRef<Path>) -> Result<(Tensor, Option<String>), Error> {
    read(path.as_ref(), crate::Limits::default().max_tensor_bytes)
}

/// Whether a path names a `.npz` archive: by extension, or a zip file.
pub fn is_npz(path: &Path) -> bool {
    use std::io::Read;
    if path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("npz")) {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut magic)).is_ok() && magic == *b"PK\x03\x04"
}

/// Reads every array of a `.npz` archive (`numpy.savez`, stored, or
/// `numpy.savez_compressed`, deflated), in archive order, each named by
/// its member name without `.npy`. Each array is at most `max_bytes`.
///
/// # Errors
/// [`Error::TensorFile`] naming the file (and member) and what is wrong.
pub fn read_npz(path: &Path, max_bytes: u64) -> Result<Vec<(String, Tensor)>, Error> {
    use std::io::Read;
    let with_file = |source| Error::TensorFile { file: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(|err| with_file(fail(format!("cannot read: {err}"))))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|err| with_file(fail(format!("not a .npz (zip) archive: {err}"))))?;
    let mut arrays: Vec<(String, Tensor)> = Vec::with_capacity(archive.len().min(4096));
    for idx in 0..archive.len() {
        let mut member = archive.by_index(idx).map_err(|err| with_file(fail(format!("member {idx}: {err}"))))?;
        if member.is_dir() {
            continue;
        }
        let member_name =
            member.name().map_err(|err| with_file(fail(format!("member {idx}: bad name: {err}"))))?.into_owned();
        let name = member_name.strip_suffix(".npy").unwrap_or(&member_name).to_string();
        let in_member = |reason: String| with_file(fail(format!("member {member_name:?}: {reason}")));
        // The header and the data: read at most what the cap allows, so a
        // hostile size field or a deflate bomb allocates nothing more.
        let cap = max_bytes.saturating_add(1 << 16);
        // The declared size is a hint only up to the bytes the archive
        // holds for the member (exact when stored); deflated data grows as read.
        let hint = member.size().min(member.compressed_size()).min(cap);
        let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        (&mut member).take(cap.saturating_add(1)).read_to_end(&mut bytes).map_err(|err| in_member(err.to_string()))?;
        if bytes.len() as u64 > cap {
            return Err(in_member(format!("larger than the {max_bytes}-byte tensor limit")));
        }
        let tensor = parse_npy(&bytes, max_bytes).map_err(|err| in_member(err.reason))?;
        if arrays.iter().any(|(seen, _)| *seen == name) {
            return Err(in_member(format!("a second array named {name:?}")));
        }
        arrays.push((name, tensor));
    }
    Ok(arrays)
}

/// Writes named tensors to a `.npz` archive as `numpy.savez` does (one
/// stored `NAME.npy` member each), readable by `numpy.load`.
///
/// # Errors
/// [`Error::TensorFile`] when the file cannot be written.
pub fn write_npz<'t>(path: &Path, arrays: impl IntoIterator<Item = (&'t str, &'t Tensor)>) -> Result<(), Error> {
    use std::io::Write;
    let with_file = |reason: String| Error::TensorFile { file: path.to_path_buf(), source: fail(reason) };
    let file = std::fs::File::create(path).map_err(|err| with_file(format!("cannot write: {err}")))?;
    let mut writer = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(true);
    for (name, tensor) in arrays {
        writer.start_file(format!("{name}.npy"), options).map_err(|err| with_file(format!("cannot write: {err}")))?;
        writer.write_all(&encode_npy(tensor)).map_err(|err| with_file(format!("cannot write: {err}")))?;
    }
    let mut inner = writer.finish().map_err(|err| with_file(format!("cannot write: {err}")))?;
    inner.flush().map_err(|err| with_file(format!("cannot write: {err}")))
}

/// Parses a serialized TensorProto.
///
/// # Errors
/// A message when the bytes are not a valid TensorProto onnxi can hold.
pub fn parse_pb(bytes: &[u8], max_bytes: u64) -> Result<(Tensor, Option<String>), TensorFileError> {
    let proto = TensorProto::decode(bytes).map_err(|err| fail(format!("not a valid TensorProto: {err}")))?;
    if proto.data_type.is_none() {
        return Err(fail("not a TensorProto: it has no data_type"));
    }
    let mut ctx = DecodeCtx::standalone(max_bytes);
    let tensor = tensor_from_proto(&proto, &mut ctx).map_err(|err| fail(err.to_string()))?;
    Ok((tensor, proto.name.filter(|name| !name.is_empty())))
}

/// Serializes a tensor as a TensorProto with `raw_data`.
pub fn encode_pb(name: &str, tensor: &Tensor) -> Vec<u8> {
    tensor_to_proto(name, tensor).encode_to_vec()
}

/// The `.npy` type code of a fixed-size dtype (a string tensor's is `<U`
/// and its longest element's length, from [`npy_string_data`]).
fn npy_descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::F16 => "<f2",
        // numpy has no bfloat16; ml_dtypes writes it as 2-byte void.
        DType::BF16 => "<V2",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        // numpy has none of the storage types: their one-byte codes (the
        // 4- and 2-bit ones unpacked) as 1-byte void, which reading refuses.
        storage_only!() => "|V1",
    }
}

/// Parses `.npy` bytes. Fortran-order and big-endian files are converted to
/// the C-order, little-endian layout a [`Tensor`] holds.
///
/// # Errors
/// A message for a bad header, an unsupported dtype (naming the supported
/// ones), or a data length that does not match the shape.
pub fn parse_npy(bytes: &[u8], max_bytes: u64) -> Result<Tensor, TensorFileError> {
    if !bytes.starts_with(NPY_MAGIC) || bytes.len() < 10 {
        return Err(fail("not a .npy file (bad magic)"));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        _ => return Err(fail(format!("unsupported .npy version {major}"))),
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| fail("truncated .npy header"))?;
    let header = std::str::from_utf8(&bytes[header_start..header_end]).map_err(|_| fail(".npy header is not text"))?;
    let descr = header_field(header, "descr").ok_or_else(|| fail(".npy header has no descr"))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    // numpy writes '<' (little-endian), '>' (big-endian), '|' (no order, for
    // one-byte types) or '=' (native: little-endian on the machines onnxi
    // supports) before the type code.
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'>') => (true, &descr[1..]),
        Some(b'<' | b'|' | b'=') => (false, &descr[1..]),
        _ => (false, descr),
    };
    if let Some(width) = code.strip_prefix('U') {
        let width = width.parse::<usize>().map_err(|_| fail(format!("bad .npy string dtype {descr:?}")))?;
        return parse_npy_strings(header, &bytes[header_end..], width, big_endian, max_bytes);
    }
    let dtype = DType::ALL.into_iter().find(|&dtype| &npy_descr(dtype)[1..] == code).ok_or_else(|| {
        let supported: Vec<String> =
            DType::ALL.into_iter().map(|dtype| format!("{} ({})", dtype, &npy_descr(dtype)[1..])).collect();
        fail(format!(
            "unsupported .npy dtype {descr:?}; onnxi reads {} and unicode strings (<U) (convert with e.g. arr.astype('<f4'))",
            supported.join(", ")
        ))
    })?;
    let (shape, fortran, n_elems) = npy_layout(header)?;
    let n_bytes = n_elems.checked_mul(dtype.size()).ok_or_else(|| fail(format!(".npy shape {shape:?} overflows")))?;
    if n_bytes as u64 > max_bytes {
        return Err(fail(format!(".npy data of {n_bytes} bytes exceeds the limit of {max_bytes}")));
    }
    let data = &bytes[header_end..];
    if data.len() != n_bytes {
        return Err(fail(format!(
            ".npy holds {} data bytes, but shape {shape:?} of {dtype} needs {n_bytes}",
            data.len()
        )));
    }
    let mut data = std::borrow::Cow::Borrowed(data);
    if big_endian && dtype.size() > 1 {
        data = std::borrow::Cow::Owned(
            data.chunks_exact(dtype.size()).flat_map(|elem| elem.iter().rev()).copied().collect(),
        );
    }
    if fortran && shape.len() > 1 {
        data = std::borrow::Cow::Owned(fortran_to_c(&data, &shape, dtype.size()));
    }
    tensor::from_le_bytes(dtype, &shape, &data).map_err(fail)
}

/// Reorders elements of `size` bytes from Fortran order (first index
/// fastest) to C order (last index fastest). `data` holds exactly the
/// shape's elements.
fn fortran_to_c(data: &[u8], shape: &[usize], size: usize) -> Vec<u8> {
    let mut strides = Vec::with_capacity(shape.len());
    let mut stride = 1usize;
    for &dim in shape {
        strides.push(stride);
        stride *= dim;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0usize; shape.len()];
    for _ in 0..data.len() / size.max(1) {
        let offset: usize = index.iter().zip(&strides).map(|(i, stride)| i * stride).sum::<usize>() * size;
        out.extend_from_slice(&data[offset..offset + size]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// Finds `'key': value` in a numpy header dict and returns the value text.
fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let start = quoted.iter().find_map(|pattern| header.find(pattern.as_str()).map(|pos| pos + pattern.len()))?;
    let rest = header[start..].trim_start().strip_prefix(':')?;
    let end = if rest.trim_start().starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

/// The shape, the Fortran-order flag and the element count a `.npy`
/// header declares.
fn npy_layout(header: &str) -> Result<(Vec<usize>, bool, usize), TensorFileError> {
    let fortran = match header_field(header, "fortran_order").map(str::trim) {
        Some("False") => false,
        Some("True") => true,
        Some(other) => return Err(fail(format!(".npy header has fortran_order {other:?}, not True or False"))),
        None => return Err(fail(".npy header has no fortran_order")),
    };
    let shape_text = header_field(header, "shape").ok_or_else(|| fail(".npy header has no shape"))?;
    let shape = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<usize>().map_err(|_| fail(format!("bad .npy shape {shape_text:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if shape.len() > MAX_RANK {
        return Err(fail(format!(".npy rank {} is more than the {MAX_RANK} dimensions onnxi allows", shape.len())));
    }
    let n_elems = shape_elems(&shape).ok_or_else(|| fail(format!(".npy shape {shape:?} overflows")))?;
    Ok((shape, fortran, n_elems))
}

/// Reads the data of a `.npy` of numpy unicode strings (`<U{width}`: each
/// element `width` UTF-32 code units, padded with NULs, which numpy drops).
fn parse_npy_strings(
    header: &str,
    data: &[u8],
    width: usize,
    big_endian: bool,
    max_bytes: u64,
) -> Result<Tensor, TensorFileError> {
    let (shape, fortran, n_elems) = npy_layout(header)?;
    let size = width.checked_mul(4).ok_or_else(|| fail(format!(".npy string width {width} overflows")))?;
    let n_bytes = n_elems.checked_mul(size).ok_or_else(|| fail(format!(".npy shape {shape:?} overflows")))?;
    // Each element also costs a handle in memory, even an empty one.
    let held = n_elems.saturating_mul(size.max(DType::String.size()));
    if held as u64 > max_bytes {
        return Err(fail(format!(".npy data of {held} bytes exceeds the limit of {max_bytes}")));
    }
    if data.len() != n_bytes {
        return Err(fail(format!(
            ".npy holds {} data bytes, but shape {shape:?} of <U{width} needs {n_bytes}",
            data.len()
        )));
    }
    let data = if fortran && shape.len() > 1 && size > 0 {
        std::borrow::Cow::Owned(fortran_to_c(data, &shape, size))
    } else {
        std::borrow::Cow::Borrowed(data)
    };
    let mut texts = Vec::with_capacity(n_elems);
    for element in data.chunks_exact(size.max(1)).take(n_elems) {
        let mut text = String::new();
        for unit in element.chunks_exact(4) {
            let unit = [unit[0], unit[1], unit[2], unit[3]];
            let code = if big_endian { u32::from_be_bytes(unit) } else { u32::from_le_bytes(unit) };
            let ch =
                char::from_u32(code).ok_or_else(|| fail(format!(".npy string holds {code:#x}, not a character")))?;
            text.push(ch);
        }
        texts.push(Str::from(text.trim_end_matches('\0')));
    }
    if size == 0 {
        texts.resize(n_elems, Str::from(""));
    }
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), texts)
        .map(Tensor::from)
        .map_err(|err| fail(err.to_string()))
}

/// A string tensor's `.npy` descr and data: `<U` and the longest element's
/// length in characters (at least 1, as numpy writes), each element padded
/// with NULs to it.
fn npy_string_data(texts: &tensor::SharedArray<Str>) -> (String, Vec<u8>) {
    let width = texts.iter().map(|text| text.chars().count()).max().unwrap_or(0).max(1);
    let mut data = Vec::with_capacity(texts.len() * width * 4);
    for text in texts.iter() {
        let n_chars = text.chars().count();
        for ch in text.chars().chain(std::iter::repeat_n('\0', width - n_chars)) {
            data.extend_from_slice(&u32::from(ch).to_le_bytes());
        }
    }
    (format!("<U{width}"), data)
}

/// Encodes a tensor as `.npy` (version 1.0).
pub fn encode_npy(tensor: &Tensor) -> Vec<u8> {
    let shape = tensor.shape();
    let shape_text = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let (descr, data) = match tensor {
        Tensor::String(texts) => npy_string_data(texts),
        _ => (npy_descr(tensor.dtype()).to_string(), tensor.to_le_bytes()),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so that the data starts on a 64-byte boundary, ending in '\n'.
    let unpadded = NPY_MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    out
}

/// Writes a tensor to a `.npy` file.
///
/// # Errors
/// [`Error::TensorFile`] when the file cannot be written.
pub fn write_npy(path: &Path, tensor: &Tensor) -> Result<(), Error> {
    std::fs::write(path, encode_npy(tensor))
        .map_err(|err| Error::TensorFile { file: path.to_path_buf(), source: fail(format!("cannot write: {err}")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_keeps_dtype_shape_and_values() {
        let tensor = Tensor::from(ndarray::array![[1.5f32, -0.0], [f32::INFINITY, 3.0]].into_dyn());
        let parsed = parse_npy(&encode_npy(&tensor), u64::MAX).unwrap();
        assert_eq!(parsed, tensor);
        let scalar = Tensor::from(ndarray::arr0(7i64).into_dyn());
        assert_eq!(parse_npy(&encode_npy(&scalar), u64::MAX).unwrap(), scalar);
    }

    /// One 2x2 tensor of extremes per dtype.
    fn every_dtype() -> Vec<Tensor> {
        use half::{bf16, f16};
        use ndarray::array;
        vec![
            Tensor::from(array![[1.5f32, -0.0], [f32::INFINITY, f32::MIN_POSITIVE]].into_dyn()),
            Tensor::from(array![[1.5f64, -0.0], [f64::NEG_INFINITY, 5e-324]].into_dyn()),
            Tensor::from(
                array![[f16::MAX, f16::NEG_ZERO], [f16::from_f32(0.1), f16::MIN_POSITIVE_SUBNORMAL]].into_dyn(),
            ),
            Tensor::from(array![[bf16::MAX, bf16::NEG_ZERO], [bf16::from_f32(0.1), bf16::INFINITY]].into_dyn()),
            Tensor::from(array![[i8::MIN, i8::MAX], [0, -1]].into_dyn()),
            Tensor::from(array![[i16::MIN, i16::MAX], [0, -1]].into_dyn()),
            Tensor::from(array![[i32::MIN, i32::MAX], [0, -1]].into_dyn()),
            Tensor::from(array![[i64::MIN, i64::MAX], [0, -1]].into_dyn()),
            Tensor::from(array![[u8::MAX, 0], [1, 128]].into_dyn()),
            Tensor::from(array![[u16::MAX, 0], [1, 32768]].into_dyn()),
            Tensor::from(array![[u32::MAX, 0], [1, 1 << 31]].into_dyn()),
            Tensor::from(array![[u64::MAX, 0], [1, 1 << 63]].into_dyn()),
            Tensor::from(array![[true, false], [false, true]].into_dyn()),
        ]
    }

    #[test]
    fn every_dtype_round_trips_through_npy_raw_data_and_typed_fields() {
        let tensors = every_dtype();
        assert_eq!(tensors.iter().map(Tensor::dtype).collect::<Vec<_>>(), DType::ALL);
        for tensor in &tensors {
            let npy = encode_npy(tensor);
            assert_eq!(&parse_npy(&npy, u64::MAX).unwrap(), tensor, "{} via .npy", tensor.dtype());
            let (raw, name) = parse_pb(&encode_pb("t", tensor), u64::MAX).unwrap();
            assert_eq!((&raw, name.as_deref()), (tensor, Some("t")), "{} via raw_data", tensor.dtype());
            let typed = crate::io::tensor_proto::tensor_to_proto_typed("t", tensor);
            assert!(typed.raw_data.is_none());
            let (parsed, _) = parse_pb(&typed.encode_to_vec(), u64::MAX).unwrap();
            assert_eq!(&parsed, tensor, "{} via its typed field", tensor.dtype());
        }
    }

    /// The storage types round-trip through raw_data and int32_data, the
    /// 4- and 2-bit ones packed low bits first, odd counts padded.
    #[test]
    fn storage_types_pack_and_round_trip_through_tensor_protos() {
        use crate::tensor::{F4E2M1, F8E4M3FN, F8E5M2FNUZ, I2, I4, U2, U4};
        use ndarray::array;
        let cases: Vec<(Tensor, Vec<u8>)> = vec![
            (Tensor::from(array![I4(1), I4(-2), I4(7)].into_dyn()), vec![0xe1, 0x07]),
            (Tensor::from(array![U4(15), U4(0), U4(3)].into_dyn()), vec![0x0f, 0x03]),
            (Tensor::from(array![I2(1), I2(-2), I2(-1), I2(0), I2(1)].into_dyn()), vec![0b0011_1001, 0b01]),
            (Tensor::from(array![U2(3), U2(2)].into_dyn()), vec![0b1011]),
            (Tensor::from(array![F4E2M1(0x7), F4E2M1(0x9)].into_dyn()), vec![0x97]),
            (Tensor::from(array![F8E4M3FN(0x7e), F8E4M3FN(0x80)].into_dyn()), vec![0x7e, 0x80]),
            (Tensor::from(array![F8E5M2FNUZ(0x80)].into_dyn()), vec![0x80]),
        ];
        for (tensor, packed) in cases {
            let proto = crate::io::tensor_proto::tensor_to_proto("t", &tensor);
            assert_eq!(proto.raw_data.as_deref(), Some(&packed[..]), "{}", tensor.dtype());
            let (raw, _) = parse_pb(&proto.encode_to_vec(), u64::MAX).unwrap();
            assert_eq!(raw, tensor, "{} via raw_data", tensor.dtype());
            let typed = crate::io::tensor_proto::tensor_to_proto_typed("t", &tensor);
            assert_eq!(typed.int32_data, packed.iter().map(|&b| i32::from(b)).collect::<Vec<_>>());
            let (parsed, _) = parse_pb(&typed.encode_to_vec(), u64::MAX).unwrap();
            assert_eq!(parsed, tensor, "{} via int32_data", tensor.dtype());
        }
        // A packed length that does not fit the dims is refused.
        let mut proto = crate::io::tensor_proto::tensor_to_proto("t", &Tensor::from(array![I4(1), I4(2)].into_dyn()));
        proto.raw_data = Some(vec![0x21, 0x00]);
        let err = parse_pb(&proto.encode_to_vec(), u64::MAX).unwrap_err();
        assert!(err.to_string().contains("needs 1"), "{err}");
        // .npy has no such types: written as one-byte void, refused on read.
        let npy = encode_npy(&Tensor::from(array![U4(3)].into_dyn()));
        assert!(parse_npy(&npy, u64::MAX).is_err());
    }

    #[test]
    fn new_dtypes_use_numpy_descrs_and_onnx_fields() {
        let descr = |tensor: &Tensor| {
            let npy = encode_npy(tensor);
            let header = String::from_utf8_lossy(&npy[10..]).to_string();
            header[header.find("'descr': '").unwrap() + 10..].chars().take(3).collect::<String>()
        };
        let descrs: Vec<String> = every_dtype()[8..].iter().map(descr).collect();
        assert_eq!(descrs, ["|u1", "<u2", "<u4", "<u8", "|b1"]);
        let fields: Vec<(bool, bool)> = every_dtype()[8..]
            .iter()
            .map(|tensor| {
                let proto = crate::io::tensor_proto::tensor_to_proto_typed("t", tensor);
                (!proto.int32_data.is_empty(), !proto.uint64_data.is_empty())
            })
            .collect();
        assert_eq!(fields, [(true, false), (true, false), (false, true), (false, true), (true, false)]);
        assert_eq!(DType::ALL[8..].iter().map(|d| d.onnx_code()).collect::<Vec<_>>(), [2, 4, 12, 13, 9]);
    }

    #[test]
    fn bool_bytes_other_than_0_and_1_read_as_true_and_out_of_range_typed_values_are_refused() {
        let proto =
            TensorProto { dims: vec![3], data_type: Some(9), raw_data: Some(vec![0, 1, 2]), ..Default::default() };
        let (tensor, _) = parse_pb(&proto.encode_to_vec(), u64::MAX).unwrap();
        assert_eq!(tensor, Tensor::from(ndarray::array![false, true, true].into_dyn()));
        let mut npy = encode_npy(&tensor);
        *npy.last_mut().unwrap() = 0xff;
        assert_eq!(parse_npy(&npy, u64::MAX).unwrap(), tensor);
        let typed = TensorProto { dims: vec![2], data_type: Some(9), int32_data: vec![0, -7], ..Default::default() };
        assert_eq!(parse_pb(&typed.encode_to_vec(), u64::MAX).unwrap().0.to_f64_vec(), [0.0, 1.0]);
        for (code, int32_data, uint64_data) in
            [(2, vec![256], vec![]), (2, vec![-1], vec![]), (4, vec![65536], vec![]), (12, vec![], vec![1u64 << 32])]
        {
            let proto =
                TensorProto { dims: vec![1], data_type: Some(code), int32_data, uint64_data, ..Default::default() };
            let err = parse_pb(&proto.encode_to_vec(), u64::MAX).unwrap_err();
            assert!(err.reason.contains("does not fit"), "{code}: {err}");
        }
        // uint32 in int32_data is not what onnx.proto says: refused.
        let proto = TensorProto { dims: vec![1], data_type: Some(12), int32_data: vec![1], ..Default::default() };
        assert!(parse_pb(&proto.encode_to_vec(), u64::MAX).unwrap_err().reason.contains("cannot hold"));
    }

    #[test]
    fn truncated_npy_is_refused() {
        let bytes = encode_npy(&Tensor::from(ndarray::Array1::<f32>::zeros(8).into_dyn()));
        let err = parse_npy(&bytes[..bytes.len() - 3], u64::MAX).unwrap_err();
        assert!(err.reason.contains("needs 32"), "{err}");
    }
}
