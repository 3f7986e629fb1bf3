//! `onnxi plot`: valid PNG and SVG files, and CSVs that hold exactly what
//! onnxi computes for the inputs they list (recomputed here through a
//! one-node model built from the prost types, bit for bit).
#![cfg(feature = "plot")]

mod common;

use std::path::Path;
use std::process::Command;

use common::{D, FLOAT, attr_f, bytes, single_op_typed};

/// Checks the PNG signature and the IHDR chunk: width and height > 0.
fn assert_png(path: &Path) {
    let data = std::fs::read(path).unwrap();
    assert_eq!(&data[..8], b"\x89PNG\r\n\x1a\n", "{}: not a PNG", path.display());
    assert_eq!(&data[12..16], b"IHDR", "{}: no IHDR first", path.display());
    let width = u32::from_be_bytes(data[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(data[20..24].try_into().unwrap());
    assert!(width >= 300 && height >= 300, "{}: {width}x{height}", path.display());
    assert_eq!(&data[data.len() - 8..data.len() - 4], b"IEND", "{}: no IEND last", path.display());
}

fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.trim_start().starts_with("<svg") || text.starts_with("<?xml"), "{}", path.display());
    assert!(text.trim_end().ends_with("</svg>"), "{}", path.display());
    assert!(text.contains("<text"), "{}: no labels", path.display());
}

/// Runs `op` with float attributes on float32 `xs` through onnxi.
fn onnxi_f32(op: &str, attrs: &[(String, f32)], xs: &[f32], shape: &[usize]) -> Vec<f32> {
    let attrs = attrs.iter().map(|(name, value)| attr_f(name, *value)).collect();
    let dims: Vec<D> = shape.iter().map(|&dim| D::N(dim as i64)).collect();
    let model = onnxi::Model::from_bytes(&bytes(&single_op_typed(op, attrs, &dims, 22, FLOAT))).unwrap();
    let input = onnxi::Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), xs.to_vec()).unwrap());
    let out = model.run([("x", input)]).unwrap();
    out["y"].as_f32().unwrap().iter().copied().collect()
}

/// `alpha=0.1;beta=0.5` from a header `y[alpha=0.1;beta=0.5]`.
fn header_attrs(column: &str) -> Vec<(String, f32)> {
    let Some(inner) = column.strip_prefix("y[").and_then(|rest| rest.strip_suffix(']')) else {
        return Vec::new();
    };
    inner
        .split(';')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn tutorial_ops_give_pictures_and_exact_csvs() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_onnxi"))
        .args(["plot", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "-o"])
        .arg(dir.path())
        .output()
        .expect("the onnxi binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for op in ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax"] {
        assert_png(&dir.path().join(format!("{op}.png")));
        assert_svg(&dir.path().join(format!("{op}.svg")));
        let ulp = std::fs::read_to_string(dir.path().join(format!("{op}_ulp.csv"))).unwrap();
        assert!(ulp.lines().count() > 100, "{op}: error panel too sparse");
        let csv = std::fs::read_to_string(dir.path().join(format!("{op}.csv"))).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let rows: Vec<Vec<f32>> =
            lines.map(|line| line.split(',').map(|cell| cell.parse::<f32>().unwrap()).collect()).collect();
        if op == "Softmax" {
            assert_eq!(header, ["i", "x", "y"]);
            let xs: Vec<f32> = rows.iter().map(|row| row[1]).collect();
            assert_eq!(xs, [1.0, 2.0, 3.0, 4.0, 5.0]);
            let want = onnxi_f32(op, &[], &xs, &[5]);
            let got: Vec<f32> = rows.iter().map(|row| row[2]).collect();
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            // And near the tutorial's printed values.
            for (got, tutorial) in got.iter().zip([0.011656, 0.031685, 0.086129, 0.234122, 0.636409]) {
                assert!((got - tutorial).abs() < 1e-6, "{got} vs {tutorial}");
            }
            continue;
        }
        assert_eq!(header[0], "x");
        let xs: Vec<f32> = rows.iter().map(|row| row[0]).collect();
        assert!(xs.len() > 1000 && xs[0] == -6.0 && xs[xs.len() - 1] == 6.0, "{op}: {} points", xs.len());
        if op == "LeakyRelu" {
            assert_eq!(&header[1..], ["y[alpha=0.01]", "y[alpha=0.1]", "y[alpha=0.3]"]);
        }
        for (col, name) in header.iter().enumerate().skip(1) {
            let want = onnxi_f32(op, &header_attrs(name), &xs, &[xs.len()]);
            for (row, want) in rows.iter().zip(&want) {
                assert_eq!(row[col].to_bits(), want.to_bits(), "{op} {name} at x = {}", row[0]);
            }
        }
    }
    // The curves are the tutorial's: spot values, checked against float64.
    let value_at = |op: &str, x: f32, col: usize| -> f32 {
        let csv = std::fs::read_to_string(dir.path().join(format!("{op}.csv"))).unwrap();
        csv.lines()
            .skip(1)
            .map(|line| line.split(',').map(|cell| cell.parse::<f32>().unwrap()).collect::<Vec<_>>())
            .find(|row| row[0] == x)
            .unwrap()[col]
    };
    assert_eq!(value_at("Relu", -3.0, 1), 0.0);
    assert_eq!(value_at("Relu", 3.0, 1), 3.0);
    // alpha is the float32 0.3, the product rounded once.
    assert_eq!(value_at("LeakyRelu", -3.0, 3), (f64::from(0.3f32) * -3.0) as f32);
    assert!((f64::from(value_at("Sigmoid", 0.0, 1)) - 0.5).abs() < 1e-7);
    assert!((f64::from(value_at("Tanh", 1.0, 1)) - 1f64.tanh()).abs() < 1e-7);
}

#[test]
fn every_declared_activation_plots_and_bad_requests_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_onnxi"))
        .args(["plot", "all", "--format", "svg", "--dtype", "bfloat16", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Shrink has no bfloat16 at any opset: its refusal is onnxi's typed error.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("Shrink"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_onnxi"))
        .args(["plot", "all", "--format", "svg", "--dtype", "float16", "--range=-2,2", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for op in onnxi::ops::elementwise::declared().iter().map(|op| op.name()).chain(["Softmax", "LogSoftmax", "Hardmax"])
    {
        assert_svg(&dir.path().join(format!("{op}.svg")));
        assert!(stdout.contains(&format!("{op}: max error ")), "{op} missing in {stdout}");
    }
    // float16 in [-2, 2]: every value there (the sign, and 0x0000..=0x4000).
    let ulp = std::fs::read_to_string(dir.path().join("Relu_ulp.csv")).unwrap();
    assert!(ulp.lines().count() > 100);
    assert!(stdout.contains(&format!("every float16 in the range ({} values)", 2 * (0x4000 + 1))), "{stdout}");
    for bad in [&["plot", "NoSuchOp"][..], &["plot", "Relu", "--range", "3,1"], &["plot", "Relu", "--dtype", "int8"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_onnxi")).args(bad).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn bench_charts_come_from_the_results_table() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_onnxi"))
        .args(["plot", "--bench", "benches/RESULTS.md", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for name in ["speed_times", "speed_threads"] {
        assert_png(&dir.path().join(format!("{name}.png")));
        assert_svg(&dir.path().join(format!("{name}.svg")));
    }
    // speed.csv holds every row of the table, numbers without separators.
    let results = std::fs::read_to_string("benches/RESULTS.md").unwrap();
    let table: Vec<Vec<String>> = results
        .lines()
        .skip_while(|line| !line.starts_with("| case | threads | onnxi µs"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| line.trim_matches('|').split('|').map(|cell| cell.trim().to_string()).collect())
        .collect();
    let csv = std::fs::read_to_string(dir.path().join("speed.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), table.len());
    for (row, cells) in rows.iter().zip(&table) {
        let (case, rest) = row[1..].split_once("\",").unwrap();
        assert_eq!(case, cells[0]);
        // A runtime that failed on a case has "error" in the table and an
        // empty CSV cell; every other cell is the table's number.
        let numbers: Vec<Option<f64>> =
            rest.split(',').map(|cell| (!cell.is_empty()).then(|| cell.parse().unwrap())).collect();
        let want: Vec<Option<f64>> =
            cells[1..5].iter().map(|cell| (cell != "error").then(|| cell.replace(',', "").parse().unwrap())).collect();
        assert_eq!(numbers, want, "{case}");
    }
    // The committed charts are what the command draws from the committed table.
    for name in ["speed_times.svg", "speed_threads.svg", "speed.csv"] {
        let committed = std::fs::read(Path::new("benches").join(name)).unwrap();
        let drawn = std::fs::read(dir.path().join(name)).unwrap();
        assert!(
            committed == drawn,
            "benches/{name} is stale: rerun `onnxi plot --bench benches/RESULTS.md -o benches`"
        );
    }
}
