//! The text ops: StringConcat, StringSplit, StringNormalizer and
//! RegexFullMatch, on string tensors ([`crate::tensor::Str`]).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__StringConcat.html> (opset 20)
//! - <https://onnx.ai/onnx/operators/onnx__StringSplit.html> (opset 20)
//! - <https://onnx.ai/onnx/operators/onnx__StringNormalizer.html> (opset 10)
//! - <https://onnx.ai/onnx/operators/onnx__RegexFullMatch.html> (opset 20)
//!
//! Each has one schema version and takes string tensors only. Text is
//! handled as Unicode scalar values, never split inside a character:
//!
//! - StringConcat joins X and Y elementwise, with numpy broadcasting.
//! - StringSplit follows Python's `str.split`, as the spec's examples do:
//!   with a `delimiter`, consecutive delimiters delimit empty strings; with
//!   none (or `""`), runs of whitespace (Unicode `White_Space`) separate and
//!   leading and trailing whitespace is dropped. `maxsplit` (absent or
//!   negative: no limit) bounds the splits; the rest of the text is the
//!   last substring. Shorter rows are padded with `""`.
//! - StringNormalizer drops the elements of X equal to a stop word
//!   (compared after Unicode lowercasing unless `is_case_sensitive`), then
//!   changes case by Unicode's default mapping (`locale` is read but onnxi
//!   has no locale tables, so the result is the same for every locale).
//!   When every element is dropped, the output is one empty string.
//! - RegexFullMatch compiles `pattern` once, at load, with RE2's syntax
//!   and meaning: the Perl classes `\d`, `\w`, `\s` and the word boundary
//!   `\b` are ASCII, as in RE2; `.` and bracket classes match whole
//!   characters. Matching takes time linear in the text (no backtracking).

use ndarray::{ArrayD, Axis, IxDyn};
use regex::Regex;

use super::binary::{Broadcasting, place};
use super::{ExecCtx, Inputs, Op, OutputSet, Registry, check_dtype, first_output, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType, broadcast_dims};
use crate::kernels::broadcast;
use crate::tensor::{DType, Item, Str, Tensor};

/// Registers the text ops.
pub fn register(reg: &mut Registry) {
    reg.add("", "StringConcat", &[20], text_only, |_attrs, _version| Ok(StringConcat));
    reg.add("", "StringSplit", &[20], text_only, StringSplit::from_node);
    reg.add("", "StringNormalizer", &[10], text_only, StringNormalizer::from_node);
    reg.add("", "RegexFullMatch", &[20], text_only, RegexFullMatch::from_node);
}

const TEXT: &[DType] = &[DType::String];

/// The input type of every text op.
fn text_only(_version: i64) -> &'static [DType] {
    TEXT
}

/// A tensor as text, or the error naming the op and its type.
fn texts<'t>(op: &'static str, tensor: &'t Tensor) -> Result<ndarray::ArrayViewD<'t, Str>, OpError> {
    check_dtype(op, tensor.dtype(), TEXT)?;
    Str::view(tensor).ok_or(OpError::UnsupportedDtype { op, dtype: tensor.dtype() })
}

/// The load-time check shared by the text ops: every known input type is
/// string.
fn check_text_inputs(op: &'static str, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
    inputs.iter().filter_map(|input| input.ty).try_for_each(|ty| check_dtype(op, ty.dtype, TEXT))
}

/// StringConcat: `X + Y` as text, elementwise, broadcast as numpy does.
#[derive(Debug)]
pub struct StringConcat;

impl Op for StringConcat {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        2..=2
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_text_inputs("StringConcat", inputs)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims: Vec<Option<&[Dim]>> = inputs.iter().map(|input| input.ty.and_then(|ty| ty.dims.as_deref())).collect();
        vec![Some(ValueType { dtype: DType::String, dims: broadcast_dims(&dims) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "StringConcat";
        let x = required(inputs, 0, OP)?;
        let y = required(inputs, 1, OP)?;
        let (xv, yv) = (texts(OP, &x)?, texts(OP, &y)?);
        let (yv, shape) = place(OP, Broadcasting::Numpy, &xv, yv)?;
        ctx.checked_elems(OP, DType::String, &shape)?;
        let joined = broadcast::map_pair(&xv, &yv, &shape, |a: &Str, b: &Str| -> Str {
            if b.is_empty() {
                a.clone()
            } else if a.is_empty() {
                b.clone()
            } else {
                Str::from(format!("{a}{b}"))
            }
        })
        .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })?;
        Ok(Tensor::from(joined))
    }
}

/// StringSplit: each element split into substrings (output 0, padded with
/// `""` along a new last axis) and their count (output 1, int64).
#[derive(Debug)]
pub struct StringSplit {
    /// The separator; `None` splits on runs of whitespace.
    pub delimiter: Option<String>,
    /// At most this many splits per element; `None` for no limit.
    pub maxsplit: Option<usize>,
}

impl StringSplit {
    /// Reads `delimiter` (absent or `""`: whitespace) and `maxsplit`
    /// (absent or negative: no limit).
    ///
    /// # Errors
    /// A wrongly typed attribute.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        let delimiter = attrs.string("delimiter")?.filter(|delimiter| !delimiter.is_empty());
        let maxsplit = attrs.i64("maxsplit")?.and_then(|limit| usize::try_from(limit).ok());
        Ok(StringSplit { delimiter, maxsplit })
    }

    /// One element's substrings.
    fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let limit = self.maxsplit.unwrap_or(usize::MAX);
        match &self.delimiter {
            Some(delimiter) => match limit.checked_add(1) {
                Some(parts) => text.splitn(parts, delimiter.as_str()).collect(),
                None => text.split(delimiter.as_str()).collect(),
            },
            None => split_whitespace(text, limit),
        }
    }
}

/// Python's `str.split()` without a separator: runs of whitespace separate,
/// leading whitespace is skipped, and after `limit` splits the rest (with
/// its leading whitespace skipped, its trailing whitespace kept) is the
/// last substring.
fn split_whitespace(text: &str, limit: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if parts.len() == limit {
            parts.push(rest);
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        parts.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    parts
}

impl Op for StringSplit {
    fn n_outputs(&self) -> std::ops::RangeInclusive<usize> {
        1..=2
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_text_inputs("StringSplit", inputs)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        let with_axis = dims.clone().map(|mut dims| {
            dims.push(Dim::Any);
            dims
        });
        vec![Some(ValueType { dtype: DType::String, dims: with_axis }), Some(ValueType { dtype: DType::I64, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, "StringSplit")
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        const OP: &str = "StringSplit";
        let x = required(inputs, 0, OP)?;
        let xv = texts(OP, &x)?;
        let parts: Vec<Vec<&str>> = xv.iter().map(|text| self.split(text)).collect();
        let width = parts.iter().map(Vec::len).max().unwrap_or(0);
        let mut shape = xv.shape().to_vec();
        shape.push(width);
        ctx.checked_elems(OP, DType::String, &shape)?;
        let invalid = |err: ndarray::ShapeError| OpError::Invalid { op: OP, reason: err.to_string() };
        if outputs.wanted(1) {
            let counts: Vec<i64> = parts.iter().map(|row| row.len() as i64).collect();
            outputs.set(1, Tensor::from(ArrayD::from_shape_vec(IxDyn(xv.shape()), counts).map_err(invalid)?));
        }
        let empty = Str::from("");
        let mut substrings = Vec::with_capacity(parts.len() * width);
        for row in &parts {
            substrings.extend(row.iter().map(|&part| Str::from(part)));
            substrings.extend(std::iter::repeat_n(empty.clone(), width - row.len()));
        }
        outputs.set(0, Tensor::from(ArrayD::from_shape_vec(IxDyn(&shape), substrings).map_err(invalid)?));
        Ok(())
    }
}

/// What StringNormalizer does to the case of the kept elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseChange {
    /// `NONE`: as they are.
    None,
    /// `LOWER`.
    Lower,
    /// `UPPER`.
    Upper,
}

/// StringNormalizer: drops stop words from a `[C]` or `[1, C]` tensor,
/// then changes case.
#[derive(Debug)]
pub struct StringNormalizer {
    /// The words to drop: as given when case-sensitive, else lowercased.
    pub stopwords: Vec<String>,
    /// Whether stop words match only with the same case.
    pub case_sensitive: bool,
    /// The case change applied to the kept elements.
    pub case_change: CaseChange,
}

impl StringNormalizer {
    /// Reads `stopwords`, `is_case_sensitive` (default 0),
    /// `case_change_action` (`NONE`, `LOWER` or `UPPER`; default `NONE`)
    /// and `locale` (see the module).
    ///
    /// # Errors
    /// A wrongly typed attribute or an unknown `case_change_action`.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        let case_sensitive = attrs.i64("is_case_sensitive")?.unwrap_or(0) != 0;
        let case_change = match attrs.string("case_change_action")?.as_deref() {
            None | Some("NONE") => CaseChange::None,
            Some("LOWER") => CaseChange::Lower,
            Some("UPPER") => CaseChange::Upper,
            Some(other) => {
                return Err(attrs.error("case_change_action", format!("must be NONE, LOWER or UPPER, not {other:?}")));
            }
        };
        let _locale = attrs.string("locale")?;
        let stopwords = attrs.strings("stopwords")?.unwrap_or_default();
        let stopwords =
            if case_sensitive { stopwords } else { stopwords.iter().map(|word| word.to_lowercase()).collect() };
        Ok(StringNormalizer { stopwords, case_sensitive, case_change })
    }

    fn is_stopword(&self, text: &str) -> bool {
        if self.case_sensitive {
            self.stopwords.iter().any(|word| word == text)
        } else {
            let lower = text.to_lowercase();
            self.stopwords.contains(&lower)
        }
    }

    fn change_case(&self, text: &Str) -> Str {
        match self.case_change {
            CaseChange::None => text.clone(),
            CaseChange::Lower => Str::from(text.to_lowercase()),
            CaseChange::Upper => Str::from(text.to_uppercase()),
        }
    }
}

impl Op for StringNormalizer {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_text_inputs("StringNormalizer", inputs)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        // The kept count depends on the values; only the rank is known.
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.as_ref()).map(|dims| {
            dims.iter()
                .enumerate()
                .map(|(axis, dim)| if axis + 1 == dims.len() { Dim::Any } else { dim.clone() })
                .collect()
        });
        vec![Some(ValueType { dtype: DType::String, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "StringNormalizer";
        let x = required(inputs, 0, OP)?;
        let xv = texts(OP, &x)?;
        let row = match xv.shape() {
            [_] => xv.view(),
            [1, _] => xv.index_axis(Axis(0), 0),
            other => {
                return Err(OpError::Invalid {
                    op: OP,
                    reason: format!("X must have shape [C] or [1, C], not {other:?}"),
                });
            }
        };
        let mut kept: Vec<Str> =
            row.iter().filter(|text| !self.is_stopword(text)).map(|text| self.change_case(text)).collect();
        if kept.is_empty() {
            kept.push(Str::from(""));
        }
        let shape = if xv.ndim() == 1 { vec![kept.len()] } else { vec![1, kept.len()] };
        ArrayD::from_shape_vec(IxDyn(&shape), kept)
            .map(Tensor::from)
            .map_err(|err| OpError::Invalid { op: OP, reason: err.to_string() })
    }
}

/// RegexFullMatch: whether each element matches `pattern` as a whole.
#[derive(Debug)]
pub struct RegexFullMatch {
    /// The pattern as given (RE2 syntax).
    pub pattern: String,
    /// The pattern translated and anchored at both ends.
    regex: Regex,
}

impl RegexFullMatch {
    /// Reads and compiles `pattern` (required).
    ///
    /// # Errors
    /// A missing pattern, or one that does not compile (the reason named),
    /// or compiles to more than the regex engine's size limit.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        let pattern = attrs.string("pattern")?.ok_or_else(|| attrs.error("pattern", "is required"))?;
        let anchored = format!("^(?:{})$", re2_to_rust(&pattern));
        let regex = Regex::new(&anchored)
            .map_err(|err| attrs.error("pattern", format!("{pattern:?} is not a valid regular expression: {err}")))?;
        Ok(RegexFullMatch { pattern, regex })
    }
}

/// Rewrites RE2's ASCII-only Perl classes and word boundaries into the
/// explicit forms of Rust's `regex` (whose own `\w`, `\d`, `\s` and `\b`
/// are Unicode-aware); everything else is passed through, escapes intact.
fn re2_to_rust(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let Some(escaped) = chars.next() else {
            out.push('\\');
            break;
        };
        // Bracketed classes nest in Rust's syntax, so these work inside
        // `[...]` too; RE2 has no `\b` inside a class.
        match escaped {
            'd' => out.push_str("[0-9]"),
            'D' => out.push_str("[^0-9]"),
            'w' => out.push_str("[0-9A-Za-z_]"),
            'W' => out.push_str("[^0-9A-Za-z_]"),
            's' => out.push_str("[\\t\\n\\f\\r ]"),
            'S' => out.push_str("[^\\t\\n\\f\\r ]"),
            'b' => out.push_str("(?-u:\\b)"),
            'B' => out.push_str("(?-u:\\B)"),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

impl Op for RegexFullMatch {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_text_inputs("RegexFullMatch", inputs)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let dims = inputs.first().and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        vec![Some(ValueType { dtype: DType::Bool, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, "RegexFullMatch")?;
        let xv = texts("RegexFullMatch", &x)?;
        Ok(Tensor::from(xv.map(|text| self.regex.is_match(text))))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::kernels::Parallel;

    fn strs(shape: &[usize], values: &[&str]) -> Tensor {
        Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values.iter().map(|&v| Str::from(v)).collect()).unwrap())
    }

    fn run_all(op: &dyn Op, inputs: Vec<Tensor>, n_outputs: usize) -> Result<Vec<Tensor>, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX };
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(Cow::Owned(t))).collect();
        let mut values = vec![None; n_outputs];
        let wanted = vec![true; n_outputs];
        op.run_outputs(&mut inputs, &ctx, &mut OutputSet::new(&mut values, &wanted))?;
        Ok(values.into_iter().map(Option::unwrap).collect())
    }

    #[test]
    fn concat_broadcasts_and_keeps_characters_whole() {
        let got = run_all(&StringConcat, vec![strs(&[2, 1], &["a", "é"]), strs(&[3], &["x", "", "中"])], 1).unwrap();
        assert_eq!(got[0], strs(&[2, 3], &["ax", "a", "a中", "éx", "é", "é中"]));
        let err = run_all(&StringConcat, vec![strs(&[2], &["a", "b"]), strs(&[3], &["x", "y", "z"])], 1).unwrap_err();
        assert!(err.to_string().contains("StringConcat"), "{err}");
        let numbers = Tensor::from(ndarray::array![1.0f32].into_dyn());
        assert!(matches!(
            run_all(&StringConcat, vec![numbers, strs(&[1], &["x"])], 1),
            Err(OpError::UnsupportedDtype { op: "StringConcat", dtype: DType::F32 })
        ));
    }

    #[test]
    fn split_follows_python_str_split() {
        // Python: "a,,b".split(",") == ["a", "", "b"]; "".split(",") == [""];
        // "  a  b c ".split(None, 1) == ["a", "b c "]; "".split() == [].
        let comma = StringSplit { delimiter: Some(",".into()), maxsplit: None };
        assert_eq!(comma.split("a,,b"), ["a", "", "b"]);
        assert_eq!(comma.split(""), [""]);
        assert_eq!(StringSplit { delimiter: Some(",".into()), maxsplit: Some(1) }.split("a,b,c"), ["a", "b,c"]);
        let spaces = StringSplit { delimiter: None, maxsplit: Some(1) };
        assert_eq!(spaces.split("  a  b c "), ["a", "b c "]);
        assert_eq!(StringSplit { delimiter: None, maxsplit: None }.split(" \t\u{3000}a\nb  "), ["a", "b"]);
        assert!(StringSplit { delimiter: None, maxsplit: None }.split("   ").is_empty());
        assert_eq!(StringSplit { delimiter: Some("--".into()), maxsplit: Some(0) }.split("a--b"), ["a--b"]);

        let got = run_all(&comma, vec![strs(&[3], &["a,b,c", "d", ""])], 2).unwrap();
        assert_eq!(got[0], strs(&[3, 3], &["a", "b", "c", "d", "", "", "", "", ""]));
        assert_eq!(got[1], Tensor::from(ndarray::array![3i64, 1, 1].into_dyn()));
        let empty = run_all(&comma, vec![strs(&[0, 2], &[])], 2).unwrap();
        assert_eq!((empty[0].shape(), empty[1].shape()), (&[0, 2, 0][..], &[0, 2][..]));
    }

    #[test]
    fn normalizer_drops_stopwords_then_changes_case() {
        let op = StringNormalizer {
            stopwords: vec!["monday".into()],
            case_sensitive: false,
            case_change: CaseChange::Upper,
        };
        let got = run_all(&op, vec![strs(&[1, 4], &["MonDay", "straße", "", "Tuesday"])], 1).unwrap();
        assert_eq!(got[0], strs(&[1, 3], &["STRASSE", "", "TUESDAY"]));
        let all_gone = run_all(&op, vec![strs(&[2], &["monday", "MONDAY"])], 1).unwrap();
        assert_eq!(all_gone[0], strs(&[1], &[""]));
        let sensitive = StringNormalizer { case_sensitive: true, case_change: CaseChange::None, ..op };
        assert_eq!(
            run_all(&sensitive, vec![strs(&[2], &["monday", "Monday"])], 1).unwrap()[0],
            strs(&[1], &["Monday"])
        );
        let err = run_all(&sensitive, vec![strs(&[2, 2], &["a", "b", "c", "d"])], 1).unwrap_err();
        assert!(err.to_string().contains("[C] or [1, C]"), "{err}");
    }

    fn full_match(pattern: &str, text: &str) -> bool {
        let regex = Regex::new(&format!("^(?:{})$", re2_to_rust(pattern))).unwrap();
        regex.is_match(text)
    }

    #[test]
    fn regex_uses_re2_ascii_classes_and_matches_whole_text() {
        assert!(full_match(r"www\.[\w.-]+\.\bcom\b", "www.google.com"));
        assert!(!full_match(r"www\.[\w.-]+\.\bcom\b", "www.bbc.co.uk"));
        // Whole-text match: a match of a prefix is not enough.
        assert!(!full_match("ab", "abc"));
        assert!(full_match("a|ab", "ab"));
        // RE2's \w, \d and \s are ASCII; `.` is one whole character.
        assert!(!full_match(r"\w+", "café"));
        assert!(full_match(r"caf.", "café"));
        assert!(!full_match(r"\d", "٣"));
        assert!(!full_match(r"\s", "\u{3000}"));
        assert!(full_match(r"[^\W]+", "abc_9"));
        assert!(full_match(r"a\\w", r"a\w"));
    }

    #[test]
    fn regex_pattern_errors_at_load_name_the_attribute() {
        use crate::onnx::AttributeProto;
        use crate::onnx::attribute_proto::AttributeType;
        let attr = AttributeProto {
            name: Some("pattern".into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(b"(unclosed".to_vec()),
            ..Default::default()
        };
        let list = [attr];
        let mut attrs = Attrs::new("node0", "RegexFullMatch", &list, u64::MAX);
        let err = RegexFullMatch::from_node(&mut attrs, 20).unwrap_err();
        assert!(err.to_string().contains("pattern"), "{err}");
    }
}
