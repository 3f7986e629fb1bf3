//! numpy-style printing of tensors (as `numpy.array2string` with its
//! defaults: up to 8 fractional digits, trailing zeros trimmed, scientific
//! notation when magnitudes span too far, and `...` past 1000 elements).

use ndarray::{ArrayViewD, Axis};

use crate::tensor::Tensor;

/// numpy prints at most this many fractional digits by default.
const PRECISION: usize = 8;
/// Above this many elements, numpy shows only the edges of each axis.
const SUMMARY_THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;
/// Deeper tensors print flat, so nesting never recurses without bound.
const MAX_NESTED_RANK: usize = 32;

/// Formats one float the way numpy does in an array of floats.
pub fn format_float(value: f64, shortest: &str, scientific: bool) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if scientific {
        let text = format!("{value:.PRECISION$e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0');
        let exponent: i32 = exponent.parse().unwrap_or(0);
        return format!("{mantissa}e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.abs());
    }
    // The shortest text that round-trips in the tensor's own precision,
    // unless it needs more than PRECISION fractional digits.
    let decimals = shortest.split_once('.').map_or(0, |(_, fraction)| fraction.len());
    let text = if decimals <= PRECISION && !shortest.contains('e') {
        shortest.to_string()
    } else {
        format!("{value:.PRECISION$}")
    };
    let text = if text.contains('.') { text.trim_end_matches('0').to_string() } else { format!("{text}.") };
    if text == "-0." && value == 0.0 { "-0.".into() } else { text }
}

/// The whole tensor, numpy-style, with commas: `[0.5, 1., nan]`.
pub fn format_tensor(tensor: &Tensor) -> String {
    let texts: Vec<String> = if tensor.dtype().is_float() {
        let values = tensor.to_f64_vec();
        let shortest = shortest_texts(tensor);
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite() && *v != 0.0).map(f64::abs).collect();
        let scientific = finite.iter().any(|&v| !(1e-4..1e8).contains(&v))
            || finite.iter().copied().fold(0.0, f64::max) / finite.iter().copied().fold(f64::INFINITY, f64::min) > 1e3;
        values.iter().zip(&shortest).map(|(&value, short)| format_float(value, short, scientific)).collect()
    } else {
        exact_texts(tensor)
    };
    let shape = tensor.shape();
    if shape.is_empty() {
        return texts.first().cloned().unwrap_or_default();
    }
    let array = ArrayViewD::from_shape(
        if shape.len() > MAX_NESTED_RANK { vec![texts.len()] } else { shape.to_vec() },
        &texts[..],
    );
    match array {
        Ok(array) => nest(array, texts.len() > SUMMARY_THRESHOLD, 1),
        Err(_) => format!("[{}]", texts.join(", ")),
    }
}

fn shortest_texts(tensor: &Tensor) -> Vec<String> {
    match tensor {
        Tensor::F32(array) => array.iter().map(|v| format!("{v}")).collect(),
        Tensor::F64(array) => array.iter().map(|v| format!("{v}")).collect(),
        Tensor::F16(array) => array.iter().map(|v| format!("{v}")).collect(),
        Tensor::BF16(array) => array.iter().map(|v| format!("{v}")).collect(),
        other => other.to_f64_vec().iter().map(|v| format!("{v}")).collect(),
    }
}

/// Integers in full (not through f64, which would round 64-bit values),
/// bools as numpy spells them, and text quoted as numpy's `repr` quotes it
/// (`'a'`, Python escapes). numpy pads `True` to the width of `False`
/// in arrays that hold both; like the integers here, they are not padded.
fn exact_texts(tensor: &Tensor) -> Vec<String> {
    match tensor {
        Tensor::Bool(array) => array.iter().map(|&v| if v { "True" } else { "False" }.to_string()).collect(),
        Tensor::I8(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::I16(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::I32(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::I64(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::U8(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::U16(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::U32(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::U64(array) => array.iter().map(ToString::to_string).collect(),
        Tensor::String(array) => array.iter().map(|text| quoted(text)).collect(),
        floats => floats.to_f64_vec().iter().map(|v| format!("{v}")).collect(),
    }
}

/// Text as Python's `repr` writes it: single quotes unless the text holds
/// one and no double quote, backslash escapes for the quote, `\\`, `\n`,
/// `\r`, `\t` and other control characters.
fn quoted(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if ch == quote => {
                out.push('\\');
                out.push(ch);
            }
            ch if ch.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(ch))),
            ch => out.push(ch),
        }
    }
    out.push(quote);
    out
}

fn nest(array: ArrayViewD<'_, String>, summarize: bool, depth: usize) -> String {
    if array.ndim() == 0 {
        return array.iter().next().cloned().unwrap_or_default();
    }
    let len = array.len_of(Axis(0));
    let separator = if array.ndim() == 1 { ", ".to_string() } else { format!(",\n{}", " ".repeat(depth)) };
    let indices: Vec<Option<usize>> = if summarize && len > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS).map(Some).chain([None]).chain((len - EDGE_ITEMS..len).map(Some)).collect()
    } else {
        (0..len).map(Some).collect()
    };
    let parts: Vec<String> = indices
        .into_iter()
        .map(|idx| match idx {
            Some(idx) => nest(array.index_axis(Axis(0), idx), summarize, depth + 1),
            None => "...".to_string(),
        })
        .collect();
    format!("[{}]", parts.join(&separator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_numpy() {
        let tensor = Tensor::from(
            ndarray::array![0.2689414213699951f64, 0.5, 2.0, -0.30000000000000004, 0.999329299739067].into_dyn(),
        );
        assert_eq!(format_tensor(&tensor), "[0.26894142, 0.5, 2., -0.3, 0.9993293]");
        let small = Tensor::from(ndarray::array![1e-5f64, 1.0].into_dyn());
        assert_eq!(format_tensor(&small), "[1.e-05, 1.e+00]");
        let f32s = Tensor::from(ndarray::array![0.8807971f32, f32::NAN, f32::NEG_INFINITY].into_dyn());
        assert_eq!(format_tensor(&f32s), "[0.8807971, nan, -inf]");
    }

    #[test]
    fn matrices_nest_and_large_tensors_summarize() {
        let matrix = Tensor::from(ndarray::array![[1i64, 2], [3, 4]].into_dyn());
        assert_eq!(format_tensor(&matrix), "[[1, 2],\n [3, 4]]");
        let long = Tensor::from(ndarray::Array1::<i64>::from_iter(0..2000).into_dyn());
        assert_eq!(format_tensor(&long), "[0, 1, 2, ..., 1997, 1998, 1999]");
    }

    #[test]
    fn bools_print_as_true_and_false_and_64_bit_integers_in_full() {
        let bools = Tensor::from(ndarray::array![[true, false], [false, true]].into_dyn());
        assert_eq!(format_tensor(&bools), "[[True, False],\n [False, True]]");
        assert_eq!(format_tensor(&Tensor::from(ndarray::arr0(false).into_dyn())), "False");
        let wide = Tensor::from(ndarray::array![u64::MAX, 0].into_dyn());
        assert_eq!(format_tensor(&wide), "[18446744073709551615, 0]");
        let wide = Tensor::from(ndarray::array![i64::MIN, 255].into_dyn());
        assert_eq!(format_tensor(&wide), "[-9223372036854775808, 255]");
        let small = Tensor::from(ndarray::array![255u8, 0, 7].into_dyn());
        assert_eq!(format_tensor(&small), "[255, 0, 7]");
    }

    #[test]
    fn text_prints_quoted_as_python_repr() {
        use crate::tensor::Str;
        // Python: repr("it's") == "\"it's\"", repr("a\tb") == "'a\\tb'".
        let texts = ["abc", "it's", "a\tb", "中", "q'\""].map(Str::from);
        let tensor = Tensor::from(ndarray::Array1::from_iter(texts).into_dyn());
        assert_eq!(format_tensor(&tensor), r#"['abc', "it's", 'a\tb', '中', 'q\'"']"#);
    }
}
