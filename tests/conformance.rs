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
    let groups = ["seed", "pytorch", "networks", "transformers", "onnx-node", "onnx-pytorch"];
    let registry = onnxi::ops::Registry::builtin();
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
        // An `_expanded` case (the op spelled as its function body) passes
        // only by running every node of that body, so each of its ops must
        // be one onnxi implements; one that does not run is refused at load.
        for case in report.cases.iter().filter(|case| case.name.contains("_expanded")) {
            match &case.status {
                Status::Pass => {
                    for op in &case.ops {
                        assert!(registry.find("", op).is_some(), "{} passes but uses {op}", case.name);
                    }
                }
                Status::ExpectedUnsupported(_) => assert!(!case.loaded, "{}", case.line()),
                // Listed with its measured error (the bfloat16/float16
                // Attention bodies, whose per-node rounding lands 1-2 ULP
                // of their type away): it ran every node of its body.
                Status::KnownFail(_) => assert!(case.loaded, "{}", case.line()),
                other => panic!("{}: {other:?}", case.name),
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
    let pb = |name: &str, values: [f32; 3]| onnxi::io::tensor_file::encode_pb(name, &common::f32s(&values));
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

/// Writes Relu case folders into `dir` (name, expected output for the input
/// [-1, 0, 2]; `None` writes a model onnxi refuses to load) and a manifest,
/// and runs `dir`.
fn run_group(manifest: &str, cases: &[(&str, Option<[f32; 3]>)]) -> onnxi::conformance::SuiteReport {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.txt"), manifest).unwrap();
    for (name, expected) in cases {
        let case = dir.path().join(name);
        std::fs::create_dir_all(case.join("test_data_set_0")).unwrap();
        let op = if expected.is_some() { "Relu" } else { "TfIdfVectorizer" };
        let model = common::single_op(op, vec![], &[common::D::N(3)], 14);
        std::fs::write(case.join("model.onnx"), common::bytes(&model)).unwrap();
        let pb = |name: &str, values: [f32; 3]| onnxi::io::tensor_file::encode_pb(name, &common::f32s(&values));
        std::fs::write(case.join("test_data_set_0/input_0.pb"), pb("x", [-1.0, 0.0, 2.0])).unwrap();
        std::fs::write(case.join("test_data_set_0/output_0.pb"), pb("y", expected.unwrap_or([1.0, 0.0, 2.0]))).unwrap();
    }
    run_paths(&[dir.path().to_path_buf()], &Options::default(), |_, _, _| {})
}

const RIGHT: Option<[f32; 3]> = Some([0.0, 0.0, 2.0]);
const WRONG: Option<[f32; 3]> = Some([0.0, 0.0, 2.5]);
const REFUSED: Option<[f32; 3]> = None;

fn statuses(report: &onnxi::conformance::SuiteReport) -> Vec<(&str, &str)> {
    report.cases.iter().map(|case| (case.name.as_str(), case.status.label())).collect()
}

#[test]
fn manifest_statuses_hold_each_case_to_what_it_is_listed_as() {
    let manifest = "cases 3\nall-listed\ntest_a pass\ntest_b unsupported  # unsupported op TfIdfVectorizer\n\
                    test_c known-fail  # wrong numbers: 0.5 abs at [2]\n";
    // As listed: green, the known failure is neither passed nor failed.
    let report = run_group(manifest, &[("test_a", RIGHT), ("test_b", REFUSED), ("test_c", WRONG)]);
    assert_eq!(statuses(&report), [("test_a", "pass"), ("test_b", "unsupported"), ("test_c", "known-fail")]);
    assert!(report.tripwires.is_empty(), "{:?}", report.tripwires);
    assert_eq!(
        (report.summary_line().as_str(), report.n_unsupported(), report.n_known_fail()),
        ("1 passed, 0 failed", 1, 1)
    );

    // A listed pass that fails or errors fails the run.
    let report = run_group(manifest, &[("test_a", WRONG), ("test_b", REFUSED), ("test_c", WRONG)]);
    assert_eq!(statuses(&report)[0], ("test_a", "fail"));
    let report = run_group(manifest, &[("test_a", REFUSED), ("test_b", REFUSED), ("test_c", WRONG)]);
    assert_eq!((statuses(&report)[0], report.summary_line().as_str()), (("test_a", "error"), "0 passed, 1 failed"));

    // A listed-unsupported case that passes trips until moved to pass; one
    // that loads and gives wrong numbers is never hidden as unsupported.
    let report = run_group(manifest, &[("test_a", RIGHT), ("test_b", RIGHT), ("test_c", WRONG)]);
    assert!(report.cases[1].line().contains("but passes: update the manifest"), "{}", report.cases[1].line());
    assert_eq!(report.summary_line(), "1 passed, 1 failed");
    let report = run_group(manifest, &[("test_a", RIGHT), ("test_b", WRONG), ("test_c", WRONG)]);
    assert_eq!(statuses(&report)[1], ("test_b", "fail"));
    assert!(report.cases[1].line().contains("list it as known-fail"), "{}", report.cases[1].line());

    // A known failure that passes, or stops loading, fails the run.
    let report = run_group(manifest, &[("test_a", RIGHT), ("test_b", REFUSED), ("test_c", RIGHT)]);
    assert_eq!((statuses(&report)[2], report.n_failed()), (("test_c", "fail"), 1));
    let report = run_group(manifest, &[("test_a", RIGHT), ("test_b", REFUSED), ("test_c", REFUSED)]);
    assert_eq!((statuses(&report)[2], report.n_failed()), (("test_c", "error"), 1));
}

#[test]
fn manifest_tripwires_catch_a_wrong_count_an_unlisted_case_and_a_stale_entry() {
    let manifest = "cases 2\nall-listed\ntest_a pass\ntest_gone unsupported  # unsupported op TfIdfVectorizer\n";
    let report = run_group(manifest, &[("test_a", RIGHT), ("test_new", RIGHT), ("test_x", REFUSED)]);
    let wires = report.tripwires.join("\n");
    assert_eq!(report.tripwires.len(), 4, "{wires}");
    assert!(wires.contains("manifest pins 2 cases, found 3"), "{wires}");
    assert!(wires.contains("lists test_gone, which is not a case here"), "{wires}");
    assert!(wires.contains("test_new: not listed") && wires.contains("test_x: not listed"), "{wires}");
    // The unlisted cases still run and report what they did.
    assert_eq!(statuses(&report), [("test_a", "pass"), ("test_new", "pass"), ("test_x", "error")]);
    assert_eq!(report.summary_line(), "2 passed, 5 failed");
}

/// One case of a group run on its own: the group's count and listing are
/// not checked, its own line still applies.
#[test]
fn one_case_of_a_pinned_group_runs_without_tripping_the_group_count() {
    let root = PathBuf::from("fixtures/onnx-node");
    let refused = "test_tfidfvectorizer_tf_batch_onlybigrams_skip0";
    let report = run_paths(&[root.join("test_relu"), root.join(refused)], &Options::default(), |_, _, _| {});
    assert!(report.tripwires.is_empty(), "{:?}", report.tripwires);
    assert_eq!(statuses(&report), [("test_relu", "pass"), (refused, "unsupported")]);
}

/// The README's first lines state what `onnxi test fixtures/` ends with and
/// how many official node tests pass; a run gives those numbers.
#[test]
fn readme_states_the_counts_a_run_gives() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let thousands = |n: usize| {
        let digits = n.to_string();
        let mut out = String::new();
        for (idx, ch) in digits.chars().enumerate() {
            if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    };
    let all = run_paths(&[PathBuf::from("fixtures")], &Options::default(), |_, _, _| {});
    let closing = format!("ends with `{}`", all.summary_line());
    assert!(readme.contains(&closing), "README should say it {closing}");
    let unsupported = format!("lists {} cases as expected-unsupported", thousands(all.n_unsupported()));
    assert!(readme.contains(&unsupported), "README should say it {unsupported}");
    let node = run_paths(&[PathBuf::from("fixtures/onnx-node")], &Options::default(), |_, _, _| {});
    let claim = format!("{} of the {} official ONNX node tests pass", node.n_passed(), thousands(node.cases.len()));
    assert!(readme.contains(&claim), "README should say {claim:?}");
}
