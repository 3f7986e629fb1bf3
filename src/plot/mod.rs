//! `onnxi plot`: pictures of what onnxi computes.
//!
//! For an activation, one figure: the curve over a range, computed by
//! running a one-node model through [`ModelBuilder`] (what users get, not
//! a kernel called directly), and below it the error in ULP against a
//! float64 reference written in [`ops`] (independent of onnxi's kernels),
//! sampled densely: every float16 or bfloat16 in the range, a grid of
//! 2^20 points for float32 and float64. The error in ULP is the distance
//! between onnxi's value and the reference rounded to the dtype, counted
//! in representable values (as the conformance comparison counts it).
//!
//! For Softmax, LogSoftmax and Hardmax: the tutorial's `[1, 2, 3, 4, 5]`
//! as bars, and the largest error of each of 256 random rows.
//!
//! Beside each picture a CSV of the points drawn (`OP.csv`: the curve or
//! the bars, values as onnxi gave them, printed so that they read back
//! exactly; `OP_ulp.csv`: the error panel).
//!
//! [`mod@bench`] draws the speed charts of `benches/RESULTS.md`.
//!
//! Text in PNGs uses DejaVu Sans, embedded (`src/plot/font/`, its licence
//! beside it): no system font or library is needed.

pub mod bench;
pub mod ops;
mod render;

use std::path::{Path, PathBuf};

use half::{bf16, f16};
use prost::Message;

use crate::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, type_proto,
};
use crate::tensor::{DType, Tensor};
use crate::{Model, ModelBuilder};
pub use ops::{Kind, Spec};

/// Why a plot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// An op name `onnxi plot` does not know.
    #[error("cannot plot {0:?}: not an activation onnxi declares (plottable: {1})")]
    UnknownOp(String, String),
    /// A dtype other than float32, float16, bfloat16 or float64.
    #[error("cannot plot in {0}: give float32, float16, bfloat16 or float64")]
    Dtype(DType),
    /// An empty or reversed range.
    #[error("range {0}..{1} is empty: give LO,HI with LO < HI, both finite")]
    Range(f64, f64),
    /// onnxi refused or failed to run the op.
    #[error("{error}")]
    Run {
        /// The op.
        op: String,
        /// What onnxi said (it names the op).
        error: Box<crate::Error>,
    },
    /// Writing a file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Reading bench results failed.
    #[error("{0}")]
    Bench(String),
}

/// A picture format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A PNG bitmap.
    Png,
    /// An SVG file.
    Svg,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }

    /// `png` or `svg` (any case).
    pub fn parse(text: &str) -> Option<Format> {
        match text.trim().to_ascii_lowercase().as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }
}

/// What to draw and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The x range of curves, and of the random rows' values.
    pub range: (f64, f64),
    /// The element type the model runs in.
    pub dtype: DType,
    /// The pictures to write.
    pub formats: Vec<Format>,
    /// The folder the files go to (created if missing).
    pub dir: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options { range: (-6.0, 6.0), dtype: DType::F32, formats: vec![Format::Png, Format::Svg], dir: "plots".into() }
    }
}

/// The op names `onnxi plot` draws.
pub fn plottable() -> Vec<&'static str> {
    ops::SPECS.iter().map(|spec| spec.name).collect()
}

/// A model with one node `op(x) -> y` over `dtype[n]` at opset
/// [`crate::ops::MAX_OPSET`], float attributes `attrs`, as ONNX bytes.
pub fn one_node_model(op: &str, attrs: &[(&str, f32)], dtype: DType, shape: &[usize]) -> Vec<u8> {
    let value = |name: &str, dims: Option<&[usize]>| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(dtype.onnx_code()),
                shape: dims.map(|dims| crate::onnx::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&dim| crate::onnx::tensor_shape_proto::Dimension {
                            value: Some(crate::onnx::tensor_shape_proto::dimension::Value::DimValue(dim as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = NodeProto {
        op_type: Some(op.into()),
        name: Some("plotted".into()),
        input: vec!["x".into()],
        output: vec!["y".into()],
        attribute: attrs
            .iter()
            .map(|&(name, value)| AttributeProto {
                name: Some(name.into()),
                r#type: Some(AttributeType::Float as i32),
                f: Some(value),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("onnxi plot".into()),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(crate::ops::MAX_OPSET) }],
        graph: Some(GraphProto {
            name: Some("plot".into()),
            node: vec![node],
            input: vec![value("x", Some(shape))],
            output: vec![value("y", None)],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Runs `op` with `attrs` on `x` through a one-node model.
pub fn run_op(op: &str, attrs: &[(&str, f32)], x: &Tensor) -> Result<Tensor, PlotError> {
    let failed = |error| PlotError::Run { op: op.to_string(), error: Box::new(error) };
    let bytes = one_node_model(op, attrs, x.dtype(), x.shape());
    let model: Model = ModelBuilder::default().from_bytes(&bytes).map_err(failed)?;
    let outputs = model.run([("x", x.clone())]).map_err(failed)?;
    outputs.require("y").cloned().map_err(failed)
}

/// `values` (already representable in `dtype`) as a tensor of `shape`.
pub fn tensor_of(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
    let shape = ndarray::IxDyn(shape);
    let build = |values: Vec<_>| ndarray::ArrayD::from_shape_vec(shape.clone(), values).map(Tensor::from);
    let built = match dtype {
        DType::F64 => build(values.to_vec()),
        DType::F16 => {
            ndarray::ArrayD::from_shape_vec(shape.clone(), values.iter().map(|&v| f16::from_f64(v)).collect())
                .map(Tensor::from)
        }
        DType::BF16 => {
            ndarray::ArrayD::from_shape_vec(shape.clone(), values.iter().map(|&v| bf16::from_f64(v)).collect())
                .map(Tensor::from)
        }
        _ => {
            ndarray::ArrayD::from_shape_vec(shape.clone(), values.iter().map(|&v| v as f32).collect()).map(Tensor::from)
        }
    };
    built.unwrap_or_else(|_| Tensor::zeros(dtype, &[0]))
}

/// `value` rounded to `dtype` (round to nearest even), as f64.
pub fn round_to(dtype: DType, value: f64) -> f64 {
    match dtype {
        DType::F64 => value,
        DType::F16 => f16::from_f64(value).to_f64(),
        DType::BF16 => bf16::from_f64(value).to_f64(),
        _ => f64::from(value as f32),
    }
}

/// `value` (representable in `dtype`) as text that reads back exactly.
pub fn value_text(dtype: DType, value: f64) -> String {
    match dtype {
        DType::F64 => format!("{value:?}"),
        _ => format!("{:?}", value as f32),
    }
}

/// Position of `value` among the values of `dtype` (differences count ULP).
fn ordered(dtype: DType, value: f64) -> i64 {
    let (bits, sign) = match dtype {
        DType::F64 => (value.to_bits(), 1u64 << 63),
        DType::F16 => (u64::from(f16::from_f64(value).to_bits()), 1 << 15),
        DType::BF16 => (u64::from(bf16::from_f64(value).to_bits()), 1 << 15),
        _ => (u64::from((value as f32).to_bits()), 1 << 31),
    };
    if bits & sign != 0 { -((bits & !sign) as i64) } else { bits as i64 }
}

/// Distance in ULP of `dtype` between onnxi's `got` and the reference
/// `want` rounded to `dtype`: 0 for two NaN, `u64::MAX` when only one is.
pub fn ulp_error(dtype: DType, got: f64, want: f64) -> u64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0,
        (false, false) => ordered(dtype, got).abs_diff(ordered(dtype, round_to(dtype, want))),
        _ => u64::MAX,
    }
}

/// The values of `dtype` in `lo..=hi`: every one for float16 and bfloat16,
/// `n` evenly spaced (rounded to the dtype, duplicates dropped) otherwise.
pub fn samples(dtype: DType, (lo, hi): (f64, f64), n: usize) -> Vec<f64> {
    let mut values: Vec<f64> = match dtype {
        DType::F16 | DType::BF16 => (0..=u16::MAX)
            .map(
                |bits| if dtype == DType::F16 { f16::from_bits(bits).to_f64() } else { bf16::from_bits(bits).to_f64() },
            )
            .filter(|v| v.is_finite() && *v >= lo && *v <= hi)
            .collect(),
        _ => (0..n).map(|idx| round_to(dtype, lo + (hi - lo) * idx as f64 / (n - 1).max(1) as f64)).collect(),
    };
    values.sort_by(f64::total_cmp);
    values.dedup_by(|a, b| a.to_bits() == b.to_bits());
    values
}

/// One curve: onnxi's values at `xs` with `attrs`.
#[derive(Debug, Clone)]
pub struct Curve {
    /// The attributes, e.g. `alpha=0.1` (empty for none).
    pub label: String,
    /// Inputs (representable in the dtype).
    pub xs: Vec<f64>,
    /// onnxi's outputs.
    pub ys: Vec<f64>,
}

/// The error panel: the largest error per bucket of x.
#[derive(Debug, Clone, Default)]
pub struct ErrorPanel {
    /// Per bucket: x range, largest error in ULP (`u64::MAX`: NaN on one
    /// side only), the input where it is, onnxi's value and the reference.
    pub buckets: Vec<Bucket>,
    /// How many inputs were compared.
    pub n_samples: usize,
    /// What was sampled, for the caption.
    pub sampling: String,
    /// The x axis' name.
    pub x_name: &'static str,
}

/// One bucket of the error panel.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    /// Lowest x (or row index) of the bucket.
    pub x_lo: f64,
    /// Highest x (or row index).
    pub x_hi: f64,
    /// Largest error in ULP.
    pub max_ulp: u64,
    /// Where it is.
    pub x_at: f64,
    /// onnxi's value there.
    pub got: f64,
    /// The reference there (float64, unrounded).
    pub want: f64,
}

impl ErrorPanel {
    /// The bucket holding the largest error (the leftmost of equals).
    pub fn worst(&self) -> Option<&Bucket> {
        // The first of equals: `max_by_key` keeps the last.
        self.buckets.iter().rev().max_by_key(|bucket| bucket.max_ulp)
    }
}

/// Everything one figure shows.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The op.
    pub op: &'static str,
    /// Title text.
    pub title: String,
    /// The dtype.
    pub dtype: DType,
    /// The range.
    pub range: (f64, f64),
    /// Elementwise: one curve per attribute set; row ops: one curve whose
    /// `xs` are the tutorial's inputs, drawn as bars.
    pub curves: Vec<Curve>,
    /// How it is drawn.
    pub kind: Kind,
    /// The error panel.
    pub errors: ErrorPanel,
}

/// Points of the curve per variant.
const CURVE_POINTS: usize = 1201;
/// Float32/float64 inputs the error panel compares.
const DENSE_POINTS: usize = 1 << 20;
/// Buckets of the error panel.
const BUCKETS: usize = 480;
/// Random rows (and their length) of the row ops' error panel.
const ROWS: usize = 256;
const ROW_LEN: usize = 1000;

fn check_options(options: &Options) -> Result<(), PlotError> {
    if !matches!(options.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
        return Err(PlotError::Dtype(options.dtype));
    }
    let (lo, hi) = options.range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(PlotError::Range(lo, hi));
    }
    Ok(())
}

/// Computes the figure of `op` without drawing it.
pub fn figure(op: &str, options: &Options) -> Result<Figure, PlotError> {
    check_options(options)?;
    let spec = ops::find(op).ok_or_else(|| PlotError::UnknownOp(op.to_string(), plottable().join(", ")))?;
    match spec.kind {
        Kind::Elementwise => elementwise_figure(spec, options),
        Kind::Row => row_figure(spec, options),
    }
}

fn elementwise_figure(spec: &'static Spec, options: &Options) -> Result<Figure, PlotError> {
    let dtype = options.dtype;
    let xs = samples(dtype, options.range, CURVE_POINTS);
    let mut curves = Vec::new();
    for attrs in spec.variants {
        let y = run_op(spec.name, attrs, &tensor_of(dtype, &[xs.len()], &xs))?;
        curves.push(Curve { label: ops::attrs_text(attrs), xs: xs.clone(), ys: y.to_f64_vec() });
    }
    // The error of the default attributes, densely sampled.
    let dense = samples(dtype, options.range, DENSE_POINTS);
    let attrs = spec.variants[0];
    let got = run_op(spec.name, attrs, &tensor_of(dtype, &[dense.len()], &dense))?.to_f64_vec();
    let (lo, hi) = options.range;
    let width = (hi - lo) / BUCKETS as f64;
    let mut buckets: Vec<Option<Bucket>> = vec![None; BUCKETS];
    for (&x, &y) in dense.iter().zip(&got) {
        let want = ops::reference(spec.name, attrs, x).unwrap_or(f64::NAN);
        let ulp = ulp_error(dtype, y, want);
        let idx = (((x - lo) / width) as usize).min(BUCKETS - 1);
        let x_lo = lo + width * idx as f64;
        let slot = &mut buckets[idx];
        if slot.is_none_or(|bucket| ulp > bucket.max_ulp) {
            *slot = Some(Bucket { x_lo, x_hi: x_lo + width, max_ulp: ulp, x_at: x, got: y, want });
        }
    }
    let sampling = match dtype {
        DType::F16 | DType::BF16 => format!("every {dtype} in the range ({} values)", dense.len()),
        _ => format!("{} evenly spaced {dtype} values", dense.len()),
    };
    let variants: Vec<&str> = curves.iter().map(|curve| curve.label.as_str()).filter(|l| !l.is_empty()).collect();
    let title = if variants.is_empty() {
        format!("{}: f(x) = {}   [{dtype}]", spec.name, spec.formula)
    } else {
        format!("{}: f(x) = {}   [{dtype}; {}]", spec.name, spec.formula, variants.join(" / "))
    };
    Ok(Figure {
        op: spec.name,
        title,
        dtype,
        range: options.range,
        curves,
        kind: Kind::Elementwise,
        errors: ErrorPanel {
            buckets: buckets.into_iter().flatten().collect(),
            n_samples: dense.len(),
            sampling,
            x_name: "x",
        },
    })
}

/// A small xorshift generator: the random rows are the same every run.
fn uniform(seed: &mut u64, (lo, hi): (f64, f64)) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    lo + (hi - lo) * ((*seed >> 11) as f64 / (1u64 << 53) as f64)
}

fn row_figure(spec: &'static Spec, options: &Options) -> Result<Figure, PlotError> {
    let dtype = options.dtype;
    let example = [1.0, 2.0, 3.0, 4.0, 5.0];
    let y = run_op(spec.name, &[], &tensor_of(dtype, &[example.len()], &example))?;
    let curves = vec![Curve { label: String::new(), xs: example.to_vec(), ys: y.to_f64_vec() }];
    let mut seed = 0x9E37_79B9_7F4A_7C15;
    let values: Vec<f64> = (0..ROWS * ROW_LEN).map(|_| round_to(dtype, uniform(&mut seed, options.range))).collect();
    let got = run_op(spec.name, &[], &tensor_of(dtype, &[ROWS, ROW_LEN], &values))?.to_f64_vec();
    let mut buckets = Vec::new();
    for row in 0..ROWS {
        let span = row * ROW_LEN..(row + 1) * ROW_LEN;
        let want = ops::row_reference(spec.name, &values[span.clone()]).unwrap_or_default();
        let mut worst = Bucket { x_lo: row as f64, x_hi: row as f64 + 1.0, max_ulp: 0, x_at: 0.0, got: 0.0, want: 0.0 };
        for (idx, (&got, &want)) in got[span].iter().zip(&want).enumerate() {
            let ulp = ulp_error(dtype, got, want);
            if ulp > worst.max_ulp || idx == 0 {
                worst = Bucket { max_ulp: ulp, x_at: idx as f64, got, want, ..worst };
            }
        }
        buckets.push(worst);
    }
    let (lo, hi) = options.range;
    Ok(Figure {
        op: spec.name,
        title: format!("{}: y = {}   [{dtype}, axis −1]", spec.name, spec.formula),
        dtype,
        range: options.range,
        curves,
        kind: Kind::Row,
        errors: ErrorPanel {
            buckets,
            n_samples: ROWS * ROW_LEN,
            sampling: format!("{ROWS} random rows of {ROW_LEN}, uniform in [{lo}, {hi})"),
            x_name: "row",
        },
    })
}

/// The CSV of the curve (or bars): `x,y` for one curve, `x,y[ATTRS],…`
/// for several; row ops `i,x,y`. Values print so that they read back
/// exactly.
pub fn curve_csv(figure: &Figure) -> String {
    let dtype = figure.dtype;
    let mut csv = String::new();
    match figure.kind {
        Kind::Row => {
            csv.push_str("i,x,y\n");
            let curve = &figure.curves[0];
            for (idx, (&x, &y)) in curve.xs.iter().zip(&curve.ys).enumerate() {
                csv.push_str(&format!("{idx},{},{}\n", value_text(dtype, x), value_text(dtype, y)));
            }
        }
        Kind::Elementwise => {
            csv.push('x');
            for curve in &figure.curves {
                if figure.curves.len() == 1 {
                    csv.push_str(",y");
                } else {
                    csv.push_str(&format!(",y[{}]", curve.label.replace(", ", ";")));
                }
            }
            csv.push('\n');
            for (idx, &x) in figure.curves[0].xs.iter().enumerate() {
                csv.push_str(&value_text(dtype, x));
                for curve in &figure.curves {
                    csv.push(',');
                    csv.push_str(&value_text(dtype, curve.ys[idx]));
                }
                csv.push('\n');
            }
        }
    }
    csv
}

/// The CSV of the error panel: one line per bucket.
pub fn error_csv(figure: &Figure) -> String {
    let dtype = figure.dtype;
    let at = if figure.kind == Kind::Row { "index_at_max" } else { "x_at_max" };
    let mut csv = format!("{0}_lo,{0}_hi,max_ulp,{at},onnxi,reference\n", figure.errors.x_name);
    for bucket in &figure.errors.buckets {
        let ulp = if bucket.max_ulp == u64::MAX { "nan-mismatch".to_string() } else { bucket.max_ulp.to_string() };
        csv.push_str(&format!(
            "{},{},{ulp},{},{},{:?}\n",
            bucket.x_lo,
            bucket.x_hi,
            if figure.kind == Kind::Row { bucket.x_at.to_string() } else { value_text(dtype, bucket.x_at) },
            value_text(dtype, bucket.got),
            bucket.want
        ));
    }
    csv
}

fn write_text(path: &Path, contents: &str) -> Result<(), PlotError> {
    std::fs::write(path, contents)
        .map_err(|err| PlotError::Write { path: path.to_path_buf(), message: err.to_string() })
}

/// Draws `op` into `options.dir`: `OP.png` / `OP.svg`, `OP.csv` and
/// `OP_ulp.csv`. Returns the files written.
pub fn plot(op: &str, options: &Options) -> Result<Vec<PathBuf>, PlotError> {
    write(&figure(op, options)?, options)
}

/// Writes a computed figure into `options.dir` (see [`plot`]).
pub fn write(figure: &Figure, options: &Options) -> Result<Vec<PathBuf>, PlotError> {
    std::fs::create_dir_all(&options.dir)
        .map_err(|err| PlotError::Write { path: options.dir.clone(), message: err.to_string() })?;
    let mut written = Vec::new();
    for &format in &options.formats {
        let path = options.dir.join(format!("{}.{}", figure.op, format.extension()));
        render::figure(figure, &path, format).map_err(|message| PlotError::Write { path: path.clone(), message })?;
        written.push(path);
    }
    for (name, csv) in
        [(format!("{}.csv", figure.op), curve_csv(figure)), (format!("{}_ulp.csv", figure.op), error_csv(figure))]
    {
        let path = options.dir.join(name);
        write_text(&path, &csv)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulp_errors_count_representable_values() {
        assert_eq!(ulp_error(DType::F32, 1.0, 1.0), 0);
        let next = f64::from(f32::from_bits(1.0f32.to_bits() + 2));
        assert_eq!(ulp_error(DType::F32, next, 1.0), 2);
        // The reference is rounded first: half an f32 ULP away is 0.
        assert_eq!(ulp_error(DType::F32, 1.0, 1.0 + f64::from(f32::EPSILON) * 0.4), 0);
        assert_eq!(ulp_error(DType::F16, 1.0 + 2.0 * 0.0009765625, 1.0), 2);
        assert_eq!(ulp_error(DType::BF16, -0.0, 0.0), 0);
        assert_eq!(ulp_error(DType::F32, f64::NAN, f64::NAN), 0);
        assert_eq!(ulp_error(DType::F32, 1.0, f64::NAN), u64::MAX);
    }

    #[test]
    fn half_precision_samples_are_every_value_in_range() {
        let all = samples(DType::F16, (0.0, 1.0), 0);
        // +0 through 1.0 (bits 0x0000..=0x3C00), and -0 (other bits).
        assert_eq!(all.len(), 0x3C00 + 1 + 1);
        assert_eq!(samples(DType::F32, (-1.0, 1.0), 5), [-1.0, -0.5, 0.0, 0.5, 1.0]);
    }
}
