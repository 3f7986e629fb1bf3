//! Drawing a [`Figure`] with plotters, into PNG or SVG.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Figure, Format, Kind};

/// DejaVu Sans (licence in `src/plot/font/LICENSE_DEJAVU`), so that PNG
/// text needs no system font.
static FONT: &[u8] = include_bytes!("font/DejaVuSans.ttf");

/// The font family every chart names.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process.
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font, checked by the tests.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Figure size in pixels.
pub(crate) const SIZE: (u32, u32) = (680, 580);

/// Curve colours: blue, orange, green, then more.
pub(crate) const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `figure` to `path` as `format`.
pub(super) fn figure(figure: &Figure, path: &Path, format: Format) -> Result<(), String> {
    register_font();
    match format {
        Format::Png => {
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            draw(figure, &root)?;
            root.present().map_err(|err| err.to_string())
        }
        Format::Svg => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw(figure, &root)?;
            root.present().map_err(|err| err.to_string())
        }
    }
}

/// `[lo, hi]` padded by 6 %, never empty.
pub(crate) fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    (lo - 0.06 * span, hi + 0.06 * span)
}

/// A tick label: `value` with as many decimals as the axis' `span` needs,
/// and never `-0`.
fn tick(value: f64, span: f64) -> String {
    let decimals = (1.0 - span.max(1e-300).log10().floor()).clamp(0.0, 12.0) as usize;
    let text = format!("{value:.decimals$}");
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') { "0".into() } else { text }
}

/// The y range of the curves: all finite values, unless a few values (a
/// pole such as 1/x at 0) stretch it far past where most lie.
fn y_range(figure: &Figure) -> (f64, f64) {
    let mut finite: Vec<f64> =
        figure.curves.iter().flat_map(|curve| curve.ys.iter().copied()).filter(|y| y.is_finite()).collect();
    if finite.is_empty() {
        return (-1.0, 1.0);
    }
    finite.sort_by(f64::total_cmp);
    let (lo, hi) = (finite[0], finite[finite.len() - 1]);
    let at = |q: f64| finite[((finite.len() - 1) as f64 * q) as usize];
    let (p2, p98) = (at(0.02), at(0.98));
    if figure.kind == Kind::Elementwise && (hi - lo) > 20.0 * (p98 - p2).max(1e-300) {
        padded(p2, p98)
    } else {
        padded(lo.min(0.0), hi)
    }
}

fn draw<DB: DrawingBackend>(figure: &Figure, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 60 / 100);
    match figure.kind {
        Kind::Elementwise => draw_curves(figure, &top)?,
        Kind::Row => draw_bars(figure, &top)?,
    }
    draw_errors(figure, &bottom)
}

fn draw_curves<DB: DrawingBackend>(figure: &Figure, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let (ylo, yhi) = y_range(figure);
    let (xlo, xhi) = figure.range;
    let mut chart = ChartBuilder::on(area)
        .caption(&figure.title, (FAMILY, 15))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x: &f64| format!("{x}"))
        .y_label_formatter(&|y: &f64| tick(*y, yhi - ylo))
        .x_desc("x")
        .y_desc(format!("{}(x), onnxi", figure.op))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(err)?;
    // The axes through 0, as the tutorial draws them.
    let axis = ShapeStyle::from(&RGBColor(120, 120, 120)).stroke_width(1);
    if ylo < 0.0 && yhi > 0.0 {
        chart.draw_series(std::iter::once(PathElement::new(vec![(xlo, 0.0), (xhi, 0.0)], axis))).map_err(err)?;
    }
    if xlo < 0.0 && xhi > 0.0 {
        chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, ylo), (0.0, yhi)], axis))).map_err(err)?;
    }
    for (idx, curve) in figure.curves.iter().enumerate() {
        let color = PALETTE[idx % PALETTE.len()];
        let style = ShapeStyle::from(&color).stroke_width(2);
        // Segments between values that are NaN or off the chart.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (&x, &y) in curve.xs.iter().zip(&curve.ys) {
            if y.is_finite() && y >= ylo && y <= yhi {
                if let Some(segment) = segments.last_mut() {
                    segment.push((x, y));
                }
            } else if segments.last().is_some_and(|segment| !segment.is_empty()) {
                segments.push(Vec::new());
            }
        }
        let label = if curve.label.is_empty() { figure.op.to_string() } else { curve.label.clone() };
        let mut first = true;
        for segment in segments.into_iter().filter(|segment| !segment.is_empty()) {
            let series = chart.draw_series(LineSeries::new(segment, style)).map_err(err)?;
            if std::mem::take(&mut first) && figure.curves.len() > 1 {
                series.label(label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], ShapeStyle::from(&color).stroke_width(2))
                });
            }
        }
    }
    if figure.curves.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(figure: &Figure, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let curve = &figure.curves[0];
    let n = curve.xs.len();
    let (ylo, yhi) = {
        let lo = curve.ys.iter().copied().filter(|y| y.is_finite()).fold(0.0, f64::min);
        let hi = curve.ys.iter().copied().filter(|y| y.is_finite()).fold(0.0, f64::max);
        padded(lo, hi.max(lo + 1e-3))
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&figure.title, (FAMILY, 15))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, ylo..yhi)
        .map_err(err)?;
    let xs = curve.xs.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&move |x: &f64| {
            let idx = x.round();
            if (x - idx).abs() < 1e-6 && idx >= 0.0 && (idx as usize) < xs.len() {
                format!("x = {}", xs[idx as usize])
            } else {
                String::new()
            }
        })
        .x_desc("input [1, 2, 3, 4, 5]")
        .y_desc(format!("{} output, onnxi", figure.op))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(err)?;
    let fill = PALETTE[0].filled();
    chart
        .draw_series(
            curve
                .ys
                .iter()
                .enumerate()
                .map(|(idx, &y)| Rectangle::new([(idx as f64 - 0.35, 0.0), (idx as f64 + 0.35, y)], fill)),
        )
        .map_err(err)?;
    chart
        .draw_series(curve.ys.iter().enumerate().map(|(idx, &y)| {
            // Above a bar that rises, below one that falls.
            let vpos = if y >= 0.0 { VPos::Bottom } else { VPos::Top };
            let anchor = (idx as f64, y);
            let style = TextStyle::from((FAMILY, 12).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, vpos));
            Text::new(format!("{y:.6}"), anchor, style)
        }))
        .map_err(err)?;
    Ok(())
}

fn draw_errors<DB: DrawingBackend>(figure: &Figure, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
    let err = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    let panel = &figure.errors;
    let finite_max = panel.buckets.iter().map(|b| b.max_ulp).filter(|&u| u != u64::MAX).max().unwrap_or(0);
    let top = (finite_max.max(1) as f64) * 1.3;
    let as_y = |ulp: u64| if ulp == u64::MAX { top } else { ulp as f64 };
    let worst = panel.worst().copied();
    let caption = match worst {
        Some(worst) if worst.max_ulp == u64::MAX => {
            format!("error vs float64 reference: NaN on one side only, at {} = {}", panel.x_name, worst.x_at)
        }
        Some(worst) if worst.max_ulp == 0 => {
            "error vs float64 reference: 0 ULP everywhere (every value correctly rounded)".to_string()
        }
        Some(worst) if figure.kind == Kind::Row => format!(
            "error vs float64 reference, largest per row: max {} ULP (row {}, element {})",
            worst.max_ulp, worst.x_lo, worst.x_at
        ),
        Some(worst) => format!("error vs float64 reference: max {} ULP at x = {}", worst.max_ulp, worst.x_at),
        None => "error vs float64 reference: nothing compared".to_string(),
    };
    let (xlo, xhi) = match figure.kind {
        Kind::Row => (0.0, panel.buckets.len().max(1) as f64),
        Kind::Elementwise => figure.range,
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 14))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(xlo..xhi, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("{} — {}", panel.x_name, panel.sampling))
        .y_desc("error (ULP)")
        .y_label_formatter(&|y: &f64| if y.fract() == 0.0 { format!("{y}") } else { String::new() })
        .x_label_formatter(&|x: &f64| if figure.kind == Kind::Row { format!("{x:.0}") } else { format!("{x}") })
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(err)?;
    let bar = PALETTE[1].mix(0.8).filled();
    chart
        .draw_series(
            panel
                .buckets
                .iter()
                .filter(|b| b.max_ulp > 0)
                .map(|b| Rectangle::new([(b.x_lo, 0.0), (b.x_hi, as_y(b.max_ulp))], bar)),
        )
        .map_err(err)?;
    // A flat line at 0 where every value is exact.
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(xlo, 0.0), (xhi, 0.0)],
            ShapeStyle::from(&PALETTE[1]).stroke_width(2),
        )))
        .map_err(err)?;
    if let Some(worst) = worst.filter(|worst| worst.max_ulp > 0) {
        let at = (if figure.kind == Kind::Row { worst.x_lo + 0.5 } else { worst.x_at }, as_y(worst.max_ulp));
        let red = RGBColor(214, 39, 40);
        chart.draw_series(std::iter::once(Circle::new(at, 5, red.filled()))).map_err(err)?;
        let label =
            if worst.max_ulp == u64::MAX { "NaN mismatch".to_string() } else { format!("max {} ULP", worst.max_ulp) };
        let right = at.0 > (xlo + xhi) / 2.0;
        let pos = if right { Pos::new(HPos::Right, VPos::Bottom) } else { Pos::new(HPos::Left, VPos::Bottom) };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                at,
                TextStyle::from((FAMILY, 13).into_font()).color(&red).pos(pos),
            )))
            .map_err(err)?;
    }
    Ok(())
}
