//! Every bundled fixture, run through the library and compared with its
//! reference (PyTorch, the ONNX node tests, the tutorial), plus an insta
//! snapshot of the per-case report so numeric drift shows up as a diff.
//!
//! Errors are bucketed so that the snapshot is the same on every CPU (the
//! SIMD path chosen at run time may move a result by an ULP or two).

mod common;

use std::path::PathBuf;

use onnxi::conformance::{CaseReport, Options, Status, run_paths};

fn bucket_abs(error: f64) -> &'static str {
    match error {
        0.0 => "0",
        e if e <= 1e-6 => "<=1e-6",
        e if e <= 1e-4 => "<=1e-4",
        e if e <= 1e-2 => "<=1e-2",
        _ => ">1e-2",
    }
}

fn bucket_ulp(ulp: u64) -> &'static str {
    match ulp {
        0 => "0",
        1..=4 => "1-4",
        5..=16 => "5-16",
        17..=256 => "17-256",
        _ => ">256",
    }
}

fn row(case: &CaseReport) -> String {
    format!(
        "{} | {} | opset {} | {} | {} | abs {} | ulp {}",
        case.name,
        case.ops.join("+"),
        case.opset.map_or("?".to_string(), |opset| opset.to_string()),
        case.inputs.join(" "),
        case.status.label(),
        bucket_abs(case.max_abs_error),
        bucket_ulp(case.max_ulp_error),
    )
}

#[test]
fn every_fixture_group_passes_and_the_report_is_stable() {
    let groups = ["seed", "pytorch", "onnx-node", "onnx-pytorch"];
    let mut snapshot = String::new();
    for group in groups {
        let root = PathBuf::from("fixtures").join(group);
        let report = run_paths(std::slice::from_ref(&root), &Options::default(), |_, _, _| {});
        assert!(report.tripwires.is_empty(), "{group}: {:?}", report.tripwires);
        let failures: Vec<String> = report
            .cases
            .iter()
            .filter(|case| matches!(case.status, Status::Fail(_) | Status::Error(_)))
            .map(CaseReport::line)
            .collect();
        assert!(failures.is_empty(), "{group}:\n{}", failures.join("\n"));
        // Expected-unsupported cases are reported as such, never as passed.
        for case in &report.cases {
            if case.name.contains("_expanded") {
                assert!(matches!(case.status, Status::ExpectedUnsupported(_)), "{}", case.line());
            }
        }
        snapshot.push_str(&format!("## {group}: {}\n", report.summary_line()));
        for case in &report.cases {
            snapshot.push_str(&row(case));
            snapshot.push('\n');
        }
    }
    insta::assert_snapshot!("conformance_report", snapshot);
}

#[test]
fn a_group_with_fewer_cases_than_pinned_trips_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.txt"), "cases 3\n").unwrap();
    let case = dir.path().join("test_only");
    std::fs::create_dir_all(case.join("test_data_set_0")).unwrap();
    for file in ["model.onnx", "test_data_set_0/input_0.pb", "test_data_set_0/output_0.pb"] {
        std::fs::copy(PathBuf::from("fixtures/seed/test_seed_relu").join(file), case.join(file)).unwrap();
    }
    let report = run_paths(&[dir.path().to_path_buf()], &Options::default(), |_, _, _| {});
    assert_eq!(report.n_passed(), 1);
    assert_eq!(report.tripwires.len(), 1, "{:?}", report.tripwires);
    assert!(report.tripwires[0].contains("pins 3 cases, found 1"));
    assert_eq!(report.summary_line(), "1 passed, 1 failed");
}

/// Writes a Relu case folder (float32 `[3]`) with the given input and
/// expected output, and runs it through the conformance runner.
fn run_relu_case(input: [f32; 3], expected: [f32; 3]) -> Status {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("test_relu_user");
    std::fs::create_dir_all(case.join("test_data_set_0")).unwrap();
    let model = common::single_op("Relu", vec![], &[common::D::N(3)], 14);
    std::fs::write(case.join("model.onnx"), common::bytes(&model)).unwrap();
    let pb = |name: &str, values: [f32; 3]| onnxi::tensor_file::encode_pb(name, &common::f32s(&values));
    std::fs::write(case.join("test_data_set_0/input_0.pb"), pb("x", input)).unwrap();
    std::fs::write(case.join("test_data_set_0/output_0.pb"), pb("y", expected)).unwrap();
    let report = run_paths(&[case], &Options::default(), |_, _, _| {});
    assert_eq!(report.cases.len(), 1);
    report.cases[0].status.clone()
}

/// Issue 10: wrong expected infinities passed the checker, because
/// `atol + rtol * |inf|` is infinite.
#[test]
fn issue_10_wrong_expected_infinities_fail_the_case() {
    let inf = f32::INFINITY;
    let wrong = [
        ([inf, 1.0, 2.0], [-inf, 1.0, 2.0]),
        ([3e38, 1.0, 2.0], [inf, 1.0, 2.0]),
        ([-inf, 1.0, 2.0], [-inf, 1.0, 2.0]),
        ([f32::NAN, 1.0, 2.0], [inf, 1.0, 2.0]),
        ([inf, 1.0, 2.0], [f32::NAN, 1.0, 2.0]),
        ([f32::MAX, 1.0, 2.0], [inf, 1.0, 2.0]),
    ];
    for (input, expected) in wrong {
        let status = run_relu_case(input, expected);
        assert!(matches!(status, Status::Fail(_)), "Relu({input:?}) expected {expected:?}: {status:?}");
    }
    // The right answers pass.
    for (input, expected) in [([inf, 1.0, 2.0], [inf, 1.0, 2.0]), ([-inf, f32::NAN, 2.0], [0.0, f32::NAN, 2.0])] {
        assert_eq!(run_relu_case(input, expected), Status::Pass, "Relu({input:?})");
    }
}
