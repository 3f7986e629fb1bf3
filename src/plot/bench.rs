//! Speed charts from `benches/RESULTS.md` (written by `benches/compare`):
//! `onnxi plot --bench benches/RESULTS.md -o benches` reads its table
//! `| case | threads | onnxi µs | ORT µs | tract µs | …` and draws
//!
//! - `speed_times.{png,svg}`: µs per run of onnxi, ONNX Runtime and tract
//!   per case (log scale), one panel per thread count;
//! - `speed_threads.{png,svg}`: each runtime's speed-up per case at each
//!   thread count above 1, against its own time at 1 thread;
//! - `speed.csv`: the rows read.
//!
//! Rerun it whenever `RESULTS.md` is regenerated.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::render::{FAMILY, PALETTE, register_font};
use super::{Format, PlotError};

/// The runtimes of the table, in column order.
pub const RUNTIMES: [&str; 3] = ["onnxi", "ONNX Runtime", "tract"];

/// One row of the results table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The case, e.g. `Relu [100000]`.
    pub case: String,
    /// Threads.
    pub threads: usize,
    /// µs per run of onnxi, ONNX Runtime and tract (`None`: not given).
    pub micros: [Option<f64>; 3],
}

/// Reads the results table from the text of `RESULTS.md`: the first
/// Markdown table whose header starts `| case | threads | onnxi µs | ORT µs
/// | tract µs`. Numbers may have thousands separators.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().skip_while(|line| {
        let cells = cells(line);
        !(cells.len() >= 5 && cells[0] == "case" && cells[1] == "threads" && cells[2].starts_with("onnxi"))
    });
    let header = lines.next().ok_or("no table with columns `case | threads | onnxi µs | ORT µs | tract µs` found")?;
    let names = cells(header);
    if !(names[3].starts_with("ORT") && names[4].starts_with("tract")) {
        return Err(format!("unexpected columns: {header}"));
    }
    let mut rows = Vec::new();
    for line in lines.skip(1) {
        if !line.trim_start().starts_with('|') {
            break;
        }
        let cells = cells(line);
        if cells.len() < 5 {
            return Err(format!("short row: {line}"));
        }
        let threads = cells[1].parse().map_err(|_| format!("threads {:?} is not a number in: {line}", cells[1]))?;
        let number = |cell: &str| cell.replace([',', ' '], "").trim_end_matches('✗').parse::<f64>().ok();
        rows.push(Row {
            case: cells[0].to_string(),
            threads,
            micros: [number(cells[2]), number(cells[3]), number(cells[4])],
        });
    }
    if rows.is_empty() {
        return Err("the results table has no rows".into());
    }
    Ok(rows)
}

fn cells(line: &str) -> Vec<&str> {
    let line = line.trim();
    if !line.starts_with('|') {
        return Vec::new();
    }
    line.trim_matches('|').split('|').map(str::trim).collect()
}

/// The `Date:` line of `RESULTS.md`, if any.
fn date(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.trim().strip_prefix("- Date: "))
}

/// The rows as CSV: `case,threads,onnxi_us,ort_us,tract_us`.
pub fn csv(rows: &[Row]) -> String {
    let mut csv = String::from("case,threads,onnxi_us,ort_us,tract_us\n");
    for row in rows {
        let value = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        csv.push_str(&format!(
            "\"{}\",{},{},{},{}\n",
            row.case.replace('"', "\"\""),
            row.threads,
            value(row.micros[0]),
            value(row.micros[1]),
            value(row.micros[2])
        ));
    }
    csv
}

/// Cases in table order, each once.
fn cases(rows: &[Row]) -> Vec<&str> {
    let mut cases: Vec<&str> = Vec::new();
    for row in rows {
        if !cases.contains(&row.case.as_str()) {
            cases.push(&row.case);
        }
    }
    cases
}

fn thread_counts(rows: &[Row]) -> Vec<usize> {
    let mut counts: Vec<usize> = rows.iter().map(|row| row.threads).collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Draws the charts of `results` (a `RESULTS.md`) into `dir`; returns the
/// files written.
pub fn plot(results: &Path, dir: &Path, formats: &[Format]) -> Result<Vec<PathBuf>, PlotError> {
    let text = std::fs::read_to_string(results)
        .map_err(|err| PlotError::Bench(format!("cannot read {}: {err}", results.display())))?;
    let rows = parse(&text).map_err(|err| PlotError::Bench(format!("{}: {err}", results.display())))?;
    let note = date(&text).map(|date| format!(" — measured {date}")).unwrap_or_default();
    std::fs::create_dir_all(dir)
        .map_err(|err| PlotError::Write { path: dir.to_path_buf(), message: err.to_string() })?;
    register_font();
    let mut written = Vec::new();
    let height_times = 90 + cases(&rows).len() as u32 * 34 * 2 + 60;
    let height_threads = 110 + cases(&rows).len() as u32 * 30;
    for &format in formats {
        for (name, height) in [("speed_times", height_times), ("speed_threads", height_threads)] {
            let path = dir.join(format!("{name}.{}", format.extension()));
            let size = (900, height);
            let result = match format {
                Format::Png => {
                    let root = BitMapBackend::new(&path, size).into_drawing_area();
                    draw(name, &rows, &note, &root).and_then(|()| root.present().map_err(|err| err.to_string()))
                }
                Format::Svg => {
                    let root = SVGBackend::new(&path, size).into_drawing_area();
                    draw(name, &rows, &note, &root).and_then(|()| root.present().map_err(|err| err.to_string()))
                }
            };
            result.map_err(|message| PlotError::Write { path: path.clone(), message })?;
            written.push(path);
        }
    }
    let path = dir.join("speed.csv");
    std::fs::write(&path, csv(&rows))
        .map_err(|err| PlotError::Write { path: path.clone(), message: err.to_string() })?;
    written.push(path);
    Ok(written)
}

fn draw<DB: DrawingBackend>(name: &str, rows: &[Row], note: &str, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    root.fill(&WHITE).map_err(|err| err.to_string())?;
    if name == "speed_times" { draw_times(rows, note, root) } else { draw_threads(rows, note, root) }
}

/// Horizontal grouped bars on a log axis, one panel per thread count.
fn draw_times<DB: DrawingBackend>(rows: &[Row], note: &str, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let cases = cases(rows);
    let counts = thread_counts(rows);
    let all: Vec<f64> = rows.iter().flat_map(|row| row.micros.iter().flatten().copied()).filter(|v| *v > 0.0).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3) / 1.5;
    let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0) * 1.5;
    let (title, body) = root.split_vertically(40);
    title.titled(&format!("µs per run, lower is faster (log scale){note}"), (FAMILY, 16)).map_err(err)?;
    let panels = body.split_evenly((counts.len().max(1), 1));
    for (panel, &threads) in panels.iter().zip(&counts) {
        let n = cases.len();
        let labels: Vec<String> = cases.iter().map(|case| case.to_string()).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{threads} thread{}", if threads == 1 { "" } else { "s" }), (FAMILY, 14))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(330)
            .build_cartesian_2d((lo..hi).log_scale(), -0.5..n as f64 - 0.5)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|y: &f64| {
                let idx = y.round();
                if (y - idx).abs() < 1e-6 && idx >= 0.0 && (idx as usize) < labels.len() {
                    labels[labels.len() - 1 - idx as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&|x: &f64| format!("{x}"))
            .x_desc("µs per run (median)")
            .label_style((FAMILY, 11))
            .axis_desc_style((FAMILY, 12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        for (runtime_idx, runtime) in RUNTIMES.iter().enumerate() {
            let color = PALETTE[runtime_idx];
            let bars: Vec<Rectangle<(f64, f64)>> = rows
                .iter()
                .filter(|row| row.threads == threads)
                .filter_map(|row| {
                    let micros = row.micros[runtime_idx]?;
                    let pos = n - 1 - cases.iter().position(|case| *case == row.case)?;
                    let y = pos as f64 + 0.27 - 0.27 * runtime_idx as f64;
                    Some(Rectangle::new([(lo, y - 0.12), (micros, y + 0.12)], color.filled()))
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(*runtime)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Speed-up against 1 thread, per runtime and case, at each count above 1.
fn draw_threads<DB: DrawingBackend>(rows: &[Row], note: &str, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let cases = cases(rows);
    let counts: Vec<usize> = thread_counts(rows).into_iter().filter(|&t| t > 1).collect();
    let time = |case: &str, threads: usize, idx: usize| {
        rows.iter().find(|row| row.case == case && row.threads == threads).and_then(|row| row.micros[idx])
    };
    // (case position, runtime, threads, speed-up)
    let mut bars: Vec<(usize, usize, usize, f64)> = Vec::new();
    for (pos, case) in cases.iter().enumerate() {
        for idx in 0..RUNTIMES.len() {
            for &threads in &counts {
                if let (Some(one), Some(many)) = (time(case, 1, idx), time(case, threads, idx))
                    && many > 0.0
                {
                    bars.push((pos, idx, threads, one / many));
                }
            }
        }
    }
    let max_threads = counts.iter().copied().max().unwrap_or(2) as f64;
    // Room on the right for the legend.
    let hi = bars.iter().map(|bar| bar.3).fold(max_threads, f64::max) * 1.35;
    let n = cases.len();
    let counts_text: Vec<String> = counts.iter().map(usize::to_string).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("speed-up at {} threads vs 1 thread, higher is better{note}", counts_text.join(", ")),
            (FAMILY, 16),
        )
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..hi, -0.5..n as f64 - 0.5)
        .map_err(err)?;
    let labels: Vec<String> = cases.iter().map(|case| case.to_string()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y: &f64| {
            let idx = y.round();
            if (y - idx).abs() < 1e-6 && idx >= 0.0 && (idx as usize) < labels.len() {
                labels[labels.len() - 1 - idx as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc("time at 1 thread / time at N threads (1 = no gain; the dashed line is N)")
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let slots = RUNTIMES.len() * counts.len().max(1);
    let height = 0.8 / slots as f64;
    for (runtime_idx, runtime) in RUNTIMES.iter().enumerate() {
        let color = PALETTE[runtime_idx];
        let series: Vec<Rectangle<(f64, f64)>> = bars
            .iter()
            .filter(|bar| bar.1 == runtime_idx)
            .map(|&(pos, idx, threads, speedup)| {
                let slot = idx * counts.len() + counts.iter().position(|&t| t == threads).unwrap_or(0);
                let y = (n - 1 - pos) as f64 + 0.4 - height * (slot as f64 + 0.5);
                Rectangle::new([(0.0, y - height * 0.4), (speedup, y + height * 0.4)], color.filled())
            })
            .collect();
        chart
            .draw_series(series)
            .map_err(err)?
            .label(*runtime)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    for line in [1.0, max_threads] {
        let style = ShapeStyle::from(&RGBColor(110, 110, 110)).stroke_width(1);
        let points: Vec<(f64, f64)> = if line == 1.0 {
            vec![(1.0, -0.5), (1.0, n as f64 - 0.5)]
        } else {
            // Dashes: short segments.
            (0..(n * 4)).map(|idx| (line, -0.5 + idx as f64 * 0.25)).collect()
        };
        if line == 1.0 {
            chart.draw_series(std::iter::once(PathElement::new(points, style))).map_err(err)?;
        } else {
            chart
                .draw_series(
                    points.chunks(2).map(|pair| PathElement::new(vec![pair[0], (line, pair[0].1 + 0.12)], style)),
                )
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 11))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_table_parses_with_thousands_separators() {
        let text = "# x\n\n- Date: today\n\n| case | threads | onnxi µs | ORT µs | tract µs | ORT / onnxi |\n\
                    |---|---:|---:|---:|---:|---:|\n| Relu [5] | 1 | 0.16 | 2.09 | 0.72 | 12.77 |\n\
                    | Relu [16000000] | 2 | 2,688 | 3,448 | 35,341 | 1.28 |\n\nGeometric mean\n| a | b |\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1],
            Row { case: "Relu [16000000]".into(), threads: 2, micros: [Some(2688.0), Some(3448.0), Some(35341.0)] }
        );
        assert_eq!(date(text), Some("today"));
        assert!(parse("no table").is_err());
    }
}
