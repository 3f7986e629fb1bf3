//! `onnxi test --html FILE`: the run as one self-contained HTML page
//! (inline CSS and SVG; no script, font or image fetched from anywhere).
//!
//! It holds the closing line (`N passed, N failed`), the pass/fail matrix
//! per op × opset × dtype, then per op a section with histograms of the
//! error in ULP and of the absolute error over every compared element, the
//! cases farthest from their references with the values, and run times;
//! last, every case with its status and time.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{ABS_BUCKETS, CaseReport, Status, SuiteReport, ULP_BUCKETS, abs_bucket_label, ulp_bucket_label};

/// `text` with `&`, `<`, `>` and `"` escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The element type of a case: its first input's, e.g. `float32`.
fn dtype_of(case: &CaseReport) -> String {
    case.inputs.first().and_then(|input| input.split('[').next()).filter(|d| !d.is_empty()).unwrap_or("—").to_string()
}

/// Pass / total and the worst status of a cell of the matrix.
#[derive(Default, Clone, Copy)]
struct Cell {
    passed: usize,
    total: usize,
    failed: usize,
    known_fail: usize,
    unsupported: usize,
}

impl Cell {
    fn add(&mut self, status: &Status) {
        self.total += 1;
        match status {
            Status::Pass => self.passed += 1,
            Status::Fail(_) | Status::Error(_) => self.failed += 1,
            Status::KnownFail(_) => self.known_fail += 1,
            Status::ExpectedUnsupported(_) => self.unsupported += 1,
        }
    }

    fn class(&self) -> &'static str {
        if self.failed > 0 {
            "fail"
        } else if self.passed == self.total {
            "pass"
        } else if self.passed == 0 && self.known_fail == 0 {
            "unsup"
        } else {
            "mixed"
        }
    }

    fn title(&self) -> String {
        format!(
            "{} passed, {} failed, {} known-fail, {} unsupported",
            self.passed, self.failed, self.known_fail, self.unsupported
        )
    }
}

/// A bar chart of `counts` as inline SVG (heights on a log scale, the
/// count written above each bar).
fn histogram_svg(title: &str, labels: &[String], counts: &[u64], color: &str) -> String {
    let (width, height, left, bottom, top) = (440.0, 180.0, 8.0, 34.0, 28.0);
    let n = counts.len().max(1) as f64;
    let slot = (width - 2.0 * left) / n;
    let max = counts.iter().copied().max().unwrap_or(0);
    let scale = |count: u64| if max == 0 { 0.0 } else { (1.0 + count as f64).ln() / (1.0 + max as f64).ln() };
    let plot_height = height - bottom - top;
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"{cx}\" y=\"16\" text-anchor=\"middle\" class=\"ct\">{t}</text>",
        t = escape(title),
        cx = width / 2.0
    );
    for (idx, (&count, label)) in counts.iter().zip(labels).enumerate() {
        let x = left + slot * idx as f64;
        let bar = scale(count) * plot_height;
        let y = height - bottom - bar;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"{color}\"><title>{}: {count}</title></rect>",
            x + 2.0,
            slot - 4.0,
            escape(label)
        );
        if count > 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"cv\">{}</text>",
                x + slot / 2.0,
                y - 3.0,
                short_count(count)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"cl\">{}</text>",
            x + slot / 2.0,
            height - bottom + 13.0,
            escape(label)
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#888\"/></svg>",
        y = height - bottom,
        x2 = width - left
    );
    svg
}

/// `1234567` as `1.2M`, `12345` as `12k`.
fn short_count(count: u64) -> String {
    match count {
        0..1_000 => count.to_string(),
        1_000..10_000 => format!("{:.1}k", count as f64 / 1e3),
        10_000..1_000_000 => format!("{}k", count / 1_000),
        _ => format!("{:.1}M", count as f64 / 1e6),
    }
}

/// A bar chart of run times in ms (horizontal bars, longest first).
fn times_svg(title: &str, entries: &[(String, f64)]) -> String {
    let row = 16.0;
    let (width, label_width, top) = (720.0, 330.0, 24.0);
    let height = top + row * entries.len() as f64 + 8.0;
    let max = entries.iter().map(|entry| entry.1).fold(0.0, f64::max).max(1e-9);
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"{cx}\" y=\"15\" text-anchor=\"middle\" class=\"ct\">{t}</text>",
        t = escape(title),
        cx = width / 2.0
    );
    for (idx, (name, ms)) in entries.iter().enumerate() {
        let y = top + row * idx as f64;
        let bar = (width - label_width - 80.0) * ms / max;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"cl\">{}</text>\
             <rect x=\"{label_width}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"#1f77b4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"cl\">{ms:.2} ms</text>",
            label_width - 6.0,
            y + 11.0,
            escape(name),
            y + 2.0,
            row - 4.0,
            label_width + bar + 4.0,
            y + 11.0
        );
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}\
th{background:#f4f4f4}td.num{text-align:right}.pass{background:#c8e6c9}.fail{background:#ffcdd2}\
.mixed{background:#fff3c4}.unsup{background:#e8e8e8;color:#666}.summary{font-size:1.3em;font-weight:bold}\
section.op{border-top:2px solid #ddd;margin-top:1.2em}.charts{display:flex;flex-wrap:wrap;gap:12px}\
svg.chart{background:#fafafa;border:1px solid #eee}.ct{font-size:13px;font-weight:bold}.cl{font-size:10px}\
.cv{font-size:9px;fill:#444}code{font-size:12px}";

/// The HTML page of `report`. `command` is shown under the title (e.g.
/// the command line that made the run).
pub fn render(report: &SuiteReport, command: &str) -> String {
    let mut html = String::new();
    let total_ms: f64 = report.cases.iter().map(|case| case.elapsed.as_secs_f64() * 1e3).sum();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>onnxi conformance report</title>\
         <style>{STYLE}</style></head><body>\n<h1>onnxi conformance report</h1>\n<p><code>{}</code> — onnxi {}</p>\n\
         <p class=\"summary\" id=\"summary\">{}</p>\n<p>{} cases: {} passed, {} failed or errored, {} known-fail \
         (wrong results listed in a manifest), {} expected unsupported; {} tripwires. Total run time {:.1} ms.</p>\n",
        escape(command),
        env!("CARGO_PKG_VERSION"),
        escape(&report.summary_line()),
        report.cases.len(),
        report.n_passed(),
        report.n_failed() - report.tripwires.len(),
        report.n_known_fail(),
        report.n_unsupported(),
        report.tripwires.len(),
        total_ms
    );
    if !report.tripwires.is_empty() {
        html.push_str("<h2>Tripwires</h2><ul>");
        for tripwire in &report.tripwires {
            let _ = write!(html, "<li>{}</li>", escape(tripwire));
        }
        html.push_str("</ul>\n");
    }
    // Op → opset → dtype → cell.
    let mut matrix: BTreeMap<&str, BTreeMap<i64, BTreeMap<String, Cell>>> = BTreeMap::new();
    let mut dtypes: Vec<String> = Vec::new();
    for case in &report.cases {
        let dtype = dtype_of(case);
        if !dtypes.contains(&dtype) {
            dtypes.push(dtype.clone());
        }
        for op in &case.ops {
            matrix
                .entry(op.as_str())
                .or_default()
                .entry(case.opset.unwrap_or(0))
                .or_default()
                .entry(dtype.clone())
                .or_default()
                .add(&case.status);
        }
    }
    dtypes.sort();
    html.push_str(
        "<h2>Pass/fail matrix</h2>\n<p>Cases passed / run per op (a case counts under each op of its graph), \
         opset of the model and element type of its first input. Green: all pass; red: a failure; yellow: \
         some known-fail or unsupported; grey: unsupported only.</p>\n<table><tr><th>op</th><th>opset</th>",
    );
    for dtype in &dtypes {
        let _ = write!(html, "<th>{}</th>", escape(dtype));
    }
    html.push_str("</tr>\n");
    for (op, opsets) in &matrix {
        for (idx, (opset, cells)) in opsets.iter().enumerate() {
            html.push_str("<tr>");
            if idx == 0 {
                let _ = write!(
                    html,
                    "<td rowspan=\"{}\"><a href=\"#op-{op}\">{op}</a></td>",
                    opsets.len(),
                    op = escape(op)
                );
            }
            let _ = write!(
                html,
                "<td class=\"num\">{}</td>",
                if *opset == 0 { "—".to_string() } else { opset.to_string() }
            );
            for dtype in &dtypes {
                match cells.get(dtype) {
                    Some(cell) => {
                        let _ = write!(
                            html,
                            "<td class=\"num {}\" title=\"{}\">{}/{}</td>",
                            cell.class(),
                            cell.title(),
                            cell.passed,
                            cell.total
                        );
                    }
                    None => html.push_str("<td></td>"),
                }
            }
            html.push_str("</tr>\n");
        }
    }
    html.push_str("</table>\n");
    // Per op.
    let ulp_labels: Vec<String> = (0..ULP_BUCKETS).map(ulp_bucket_label).collect();
    let abs_labels: Vec<String> = (0..ABS_BUCKETS).map(abs_bucket_label).collect();
    html.push_str("<h2>Per op</h2>\n");
    for (op, passed, total) in report.by_op() {
        let cases: Vec<&CaseReport> = report.cases.iter().filter(|case| case.ops.contains(&op)).collect();
        let mut ulp = [0u64; ULP_BUCKETS];
        let mut abs = [0u64; ABS_BUCKETS];
        for case in &cases {
            ulp.iter_mut().zip(case.ulp_histogram).for_each(|(sum, n)| *sum += n);
            abs.iter_mut().zip(case.abs_histogram).for_each(|(sum, n)| *sum += n);
        }
        let compared: u64 = ulp.iter().sum();
        let op_ms: f64 = cases.iter().map(|case| case.elapsed.as_secs_f64() * 1e3).sum();
        let _ = write!(
            html,
            "<section class=\"op\" id=\"op-{id}\">\n<h3>{id}</h3>\n<p>{passed} of {total} cases pass; \
             {compared} output elements compared; run time {op_ms:.1} ms in all.</p>\n<div class=\"charts\">{}{}</div>\n",
            histogram_svg(&format!("{op}: elements per error in ULP (log height)"), &ulp_labels, &ulp, "#ff7f0e"),
            histogram_svg(&format!("{op}: elements per absolute error (log height)"), &abs_labels, &abs, "#2ca02c"),
            id = escape(&op)
        );
        let mut worst: Vec<&CaseReport> = cases.iter().copied().filter(|case| case.worst.is_some()).collect();
        worst.sort_by(|a, b| {
            let key = |case: &CaseReport| case.worst.as_ref().map(|w| (w.ulp, w.abs)).unwrap_or_default();
            key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal)
        });
        if !worst.is_empty() {
            html.push_str(
                "<table><tr><th>worst cases</th><th>status</th><th>output</th><th>index</th><th>expected</th>\
                 <th>onnxi</th><th>abs err</th><th>ULP</th></tr>\n",
            );
            for case in worst.iter().take(5) {
                if let Some(w) = &case.worst {
                    let _ = writeln!(
                        html,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td class=\"num\">{:e}</td>\
                         <td class=\"num\">{:e}</td><td class=\"num\">{:.3e}</td><td class=\"num\">{}</td></tr>",
                        escape(&case.name),
                        case.status.label(),
                        escape(&w.output),
                        w.index,
                        w.expected,
                        w.actual,
                        w.abs,
                        w.ulp
                    );
                }
            }
            html.push_str("</table>\n");
        } else {
            html.push_str("<p>Every compared element equals its reference.</p>\n");
        }
        let mut slowest: Vec<(String, f64)> =
            cases.iter().map(|case| (case.name.clone(), case.elapsed.as_secs_f64() * 1e3)).collect();
        slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
        slowest.truncate(5);
        html.push_str(&times_svg(&format!("{op}: slowest cases (load + run)"), &slowest));
        html.push_str("\n</section>\n");
    }
    // Every case.
    html.push_str(
        "<h2>Every case</h2>\n<details><summary>Show all cases</summary>\n<table><tr><th>case</th><th>status</th>\
         <th>ops</th><th>opset</th><th>inputs</th><th>max abs err</th><th>max ULP</th><th>ms</th><th>detail</th></tr>\n",
    );
    for case in &report.cases {
        let class = match case.status {
            Status::Pass => "pass",
            Status::Fail(_) | Status::Error(_) => "fail",
            Status::KnownFail(_) => "mixed",
            Status::ExpectedUnsupported(_) => "unsup",
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"num\">{:.3e}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td>{}</td></tr>",
            escape(&case.name),
            case.status.label(),
            escape(&case.ops.join(" ")),
            case.opset.map(|opset| opset.to_string()).unwrap_or_default(),
            escape(&case.inputs.join(", ")),
            case.max_abs_error,
            case.max_ulp_error,
            case.elapsed.as_secs_f64() * 1e3,
            escape(case.status.detail().unwrap_or(""))
        );
    }
    html.push_str("</table></details>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::super::{abs_bucket, ulp_bucket};
    use super::*;

    #[test]
    fn buckets_and_labels_agree() {
        assert_eq!(
            [ulp_bucket(0), ulp_bucket(1), ulp_bucket(2), ulp_bucket(3), ulp_bucket(4), ulp_bucket(5)],
            [0, 1, 2, 3, 3, 4]
        );
        assert_eq!(ulp_bucket(512), 10);
        assert_eq!(ulp_bucket(513), 11);
        assert_eq!(ulp_bucket(u64::MAX), ULP_BUCKETS - 1);
        assert_eq!(ulp_bucket_label(3), "3–4");
        assert_eq!(ulp_bucket_label(10), "257–512");
        assert_eq!(ulp_bucket_label(11), ">512");
        assert_eq!(
            [abs_bucket(0.0), abs_bucket(1e-20), abs_bucket(1e-12), abs_bucket(2e-7), abs_bucket(1.0)],
            [0, 1, 1, 7, 13]
        );
        assert_eq!([abs_bucket(1.5), abs_bucket(f64::INFINITY)], [14, 14]);
        assert_eq!([abs_bucket_label(7), abs_bucket_label(13), abs_bucket_label(14)], ["≤1e-6", "≤1", ">1"]);
    }

    #[test]
    fn comparisons_count_elements_per_error_and_keep_the_farthest() {
        use crate::tensor::Tensor;
        let expected = Tensor::from(ndarray::array![1.0f32, 2.0, 3.0, f32::NAN].into_dyn());
        let actual = Tensor::from(
            ndarray::array![
                1.0f32,
                f32::from_bits(2.0f32.to_bits() + 1),
                f32::from_bits(3.0f32.to_bits() + 5),
                f32::NAN
            ]
            .into_dyn(),
        );
        let result = super::super::compare(&expected, &actual, super::super::Tolerance::Ulp(8));
        assert_eq!(result.ulp_histogram[..5], [2, 1, 0, 0, 1]);
        assert_eq!(result.abs_histogram.iter().sum::<u64>(), 4);
        assert_eq!(result.abs_histogram[0], 2);
        let worst = result.worst.unwrap();
        assert_eq!((worst.index, worst.ulp, worst.expected), (vec![2], 5, 3.0));
        assert_eq!(worst.actual, f64::from(f32::from_bits(3.0f32.to_bits() + 5)));
    }

    #[test]
    fn escaping_keeps_markup_out() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
