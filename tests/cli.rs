//! The `onnxi` command as users see it: outputs, messages and exit codes
//! (0 success, 1 model/input/test failure, 2 bad usage, never 101).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn onnxi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onnxi")).args(args).output().expect("the onnxi binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn seed(op: &str) -> (String, String) {
    let dir = format!("fixtures/seed/test_seed_{op}");
    (format!("{dir}/model.onnx"), format!("input={dir}/input.npy"))
}

/// The numbers printed on the line after the output header, with numpy's
/// trailing `.` on whole numbers dropped (`2.` prints the digit `2`).
fn printed_values(text: &str) -> Vec<String> {
    let line = text.lines().nth(1).unwrap_or_default();
    line.trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|token| token.trim_end_matches('.').to_string())
        .collect()
}

/// The tutorial's printed examples, reproduced to the printed digits through
/// models exported by `torch.onnx.export` (fixtures/seed/gen.py).
#[test]
fn tutorial_examples_come_out_to_the_printed_digits() {
    let tutorial = [
        ("relu", "[0, 2, 0, 4, 0]"),
        ("leakyrelu", "[-0.1, 2, -0.3, 4, 0]"),
        ("sigmoid", "[0.26894142, 0.88079708, 0.04742587, 0.98201379, 0.5]"),
        ("tanh", "[-0.76159416, 0.96402758, -0.99505475, 0.9993293, 0]"),
        ("softmax", "[0.01165623, 0.03168492, 0.08612854, 0.23412166, 0.63640865]"),
    ];
    for (op, printed) in tutorial {
        let (model, input) = seed(op);
        let output = onnxi(&["run", &model, "-i", &input]);
        assert_eq!(output.status.code(), Some(0), "{op}: {}", stderr(&output));
        let expected: Vec<String> =
            printed.trim_matches(|c| c == '[' || c == ']').split(", ").map(str::to_string).collect();
        assert_eq!(printed_values(&stdout(&output)), expected, "{op}: {}", stdout(&output));
        assert!(stdout(&output).starts_with("output: float64 [5]\n"), "{}", stdout(&output));
    }
}

#[test]
fn run_writes_npy_files_that_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (model, input) = seed("sigmoid");
    let out_dir = dir.path().join("out");
    let output = onnxi(&["run", &model, "-i", &input, "-o", out_dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let (tensor, _) = onnxi::io::tensor_file::read(&out_dir.join("output.npy"), u64::MAX).unwrap();
    assert_eq!(tensor.shape(), [5]);
    assert_eq!(tensor.to_f64_vec()[4], 0.5);
}

fn write_model(dir: &Path, name: &str, model: &onnxi::onnx::ModelProto) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes(model)).unwrap();
    path.to_str().unwrap().to_string()
}

fn write_npy(dir: &Path, name: &str, tensor: &onnxi::Tensor) -> String {
    let path = dir.join(name);
    onnxi::io::tensor_file::write_npy(&path, tensor).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn broken_input_exits_1_with_a_message_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = write_model(dir.path(), "unsupported.onnx", &single_op("TfIdfVectorizer", vec![], &[D::N(3)], 20));
    let relu = write_model(dir.path(), "relu.onnx", &single_op("Relu", vec![], &[D::N(3)], 14));
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes(&single_op("Relu", vec![], &[D::N(3)], 14))[..20]).unwrap();
    let good = write_npy(dir.path(), "good.npy", &onnxi::Tensor::from(ndarray::array![1.0f32, -2.0, 3.0].into_dyn()));
    let long = write_npy(dir.path(), "long.npy", &onnxi::Tensor::from(ndarray::array![1.0f32, 2.0].into_dyn()));
    let doubles =
        write_npy(dir.path(), "doubles.npy", &onnxi::Tensor::from(ndarray::array![1.0f64, 2.0, 3.0].into_dyn()));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["run".into(), unknown.clone(), "-i".into(), format!("x={good}")],
            "unsupported op \"TfIdfVectorizer\" in domain \"\" (opset 20)",
        ),
        // Without -i, run uses random inputs; with some -i, a missing one fails.
        (vec!["run".into(), two_input_model(dir.path()), "-i".into(), format!("a={good}")], "missing input \"b\""),
        (vec!["run".into(), relu.clone(), "-i".into(), format!("x={long}")], "input \"x\": expected shape [3]"),
        (
            vec!["run".into(), relu.clone(), "-i".into(), format!("x={doubles}")],
            "input \"x\": expected dtype float32, got float64",
        ),
        (vec!["run".into(), truncated.to_str().unwrap().into()], "not a valid ONNX model"),
        (vec!["run".into(), "no/such/model.onnx".into()], "cannot read model"),
        (vec!["run".into(), relu.clone(), "-i".into(), format!("x={relu}")], "not a valid TensorProto"),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = onnxi(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(needle), "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output).lines().count(), 1, "one-line message: {}", stderr(&output));
    }
}

#[test]
fn bad_usage_exits_2() {
    for args in [vec![], vec!["run"], vec!["frobnicate"], vec!["test", "--rtol"]] {
        assert_eq!(onnxi(&args).status.code(), Some(2), "{args:?}");
    }
    assert_eq!(onnxi(&["--help"]).status.code(), Some(0));
}

#[test]
fn inspect_lists_graph_and_what_cannot_run() {
    let (model, _) = seed("leakyrelu");
    let output = onnxi(&["inspect", &model]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let text = text.lines().filter(|line| !line.starts_with("producer:")).collect::<Vec<_>>().join("\n");
    insta::assert_snapshot!("inspect_seed_leakyrelu", text);

    let dir = tempfile::tempdir().unwrap();
    let unknown = write_model(
        dir.path(),
        "unsupported.onnx",
        &single_op("TfIdfVectorizer", vec![], &[D::P("batch"), D::N(3)], 20),
    );
    let output = onnxi(&["inspect", &unknown, "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["runnable"], false);
    assert_eq!(json["nodes"][0]["supported"], false);
    assert_eq!(json["inputs"][0]["dims"], serde_json::json!(["batch", 3]));
}

/// Issue 14: static dims are JSON numbers; the supported-op list appears
/// once, not after every unsupported node; `--check` exits 1 when the model
/// cannot run.
#[test]
fn inspect_lists_supported_ops_once_and_check_fails_on_an_unrunnable_model() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = vec![
        node("TfIdfVectorizer", "g1", &["x"], &["a"], vec![]),
        node("TfIdfVectorizer", "g2", &["a"], &["b"], vec![]),
        node("Erf", "e", &["b"], &["y"], vec![]),
    ];
    let g = graph(nodes, vec![value_info("x", FLOAT, Some(&[D::N(3)]))], &["y"]);
    let path = write_model(dir.path(), "three.onnx", &model(g, 20));
    let output = onnxi(&["inspect", &path]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    // " Softmax," and not "Softmax": LogSoftmax is in the list too.
    assert_eq!(text.matches(" Softmax,").count(), 1, "{text}");
    assert!(text.contains("onnxi supports: Abs, Acos, Acosh, Add, "), "{text}");
    assert!(text.contains("UNSUPPORTED: node \"g2\": unsupported op \"TfIdfVectorizer\""), "{text}");
    let output = onnxi(&["inspect", &path, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).matches(" Softmax,").count(), 1);
    assert_eq!(json["inputs"][0]["dims"], serde_json::json!([3]));
    assert!(json["supported_ops"].as_str().unwrap().contains("Relu"));
    assert_eq!(onnxi(&["inspect", &path, "--check"]).status.code(), Some(1));
    let (good, _) = seed("relu");
    assert_eq!(onnxi(&["inspect", &good, "--check"]).status.code(), Some(0));
    assert_eq!(onnxi(&["inspect", &good, "--json"]).status.code(), Some(0));
}

#[test]
fn ops_prints_the_registry_table() {
    let output = onnxi(&["ops"]);
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!("ops_table", stdout(&output));
}

/// Copies a seed case into `dir` and returns the new case folder.
fn copy_case(op: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let source = Path::new("fixtures/seed").join(format!("test_seed_{op}"));
    let target = dir.join(name);
    std::fs::create_dir_all(target.join("test_data_set_0")).unwrap();
    std::fs::copy(source.join("model.onnx"), target.join("model.onnx")).unwrap();
    for file in ["input_0.pb", "output_0.pb"] {
        std::fs::copy(source.join("test_data_set_0").join(file), target.join("test_data_set_0").join(file)).unwrap();
    }
    target
}

#[test]
fn test_reports_a_wrong_expected_output_and_continues_past_broken_cases() {
    let dir = tempfile::tempdir().unwrap();
    copy_case("relu", dir.path(), "a_good");
    let wrong = copy_case("sigmoid", dir.path(), "b_wrong");
    // Replace the expected output with one whose element 2 is off.
    let expected_path = wrong.join("test_data_set_0/output_0.pb");
    let (tensor, name) = onnxi::io::tensor_file::parse_pb(&std::fs::read(&expected_path).unwrap(), u64::MAX).unwrap();
    let mut values = tensor.into_array::<f64>().unwrap();
    values[[2]] = 0.75;
    std::fs::write(
        &expected_path,
        onnxi::io::tensor_file::encode_pb(&name.unwrap_or_default(), &onnxi::Tensor::from(values)),
    )
    .unwrap();
    let broken = copy_case("tanh", dir.path(), "c_broken");
    std::fs::write(broken.join("model.onnx"), b"not a model").unwrap();
    copy_case("softmax", dir.path(), "d_good");

    let output = onnxi(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("pass  a_good"), "{text}");
    assert!(
        lines[1].starts_with(
            "FAIL  b_wrong: data set 0, output 0 \"output\": worst element at index [2]: expected 0.75, got 0.04742587"
        ),
        "{text}"
    );
    assert!(lines[2].starts_with("ERROR c_broken:") && lines[2].contains("not a valid ONNX model"), "{text}");
    assert!(lines[3].starts_with("pass  d_good"), "{text}");
    assert_eq!(lines[4], "2 passed, 2 failed");
}

#[test]
fn test_with_json_writes_a_machine_readable_report() {
    let dir = tempfile::tempdir().unwrap();
    copy_case("relu", dir.path(), "only");
    let report = dir.path().join("report.json");
    let output = onnxi(&["test", dir.path().to_str().unwrap(), "--json", report.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stdout(&output).lines().last(), Some("1 passed, 0 failed"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(json["cases"][0]["status"], "pass");
    assert_eq!(json["cases"][0]["ops"], serde_json::json!(["Relu"]));
}

#[test]
fn test_on_an_empty_folder_fails_instead_of_passing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = onnxi(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output).lines().last(), Some("0 passed, 1 failed"));
}

/// The README's operator table is the registry's, never edited by hand.
#[test]
fn readme_operator_table_matches_the_registry() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme.find("<!-- ops-table:start -->\n").unwrap() + "<!-- ops-table:start -->\n".len();
    let end = readme.find("<!-- ops-table:end -->").unwrap();
    assert_eq!(&readme[start..end], onnxi::ops::support_table(), "run `onnxi ops` and paste it into README.md");
}

#[test]
fn test_by_op_prints_passes_per_operator_before_the_closing_line() {
    let dir = tempfile::tempdir().unwrap();
    copy_case("relu", dir.path(), "relu_a");
    copy_case("relu", dir.path(), "relu_b");
    copy_case("tanh", dir.path(), "tanh_a");
    let output = onnxi(&["test", dir.path().to_str().unwrap(), "--by-op"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|line| *line == "| op | passed | total |").expect("the table header");
    assert_eq!(
        lines[start..],
        ["| op | passed | total |", "|---|---|---|", "| Relu | 2 | 2 |", "| Tanh | 1 | 1 |", "3 passed, 0 failed"]
    );
}

/// The official node tests: every case is listed in the manifest, so the
/// group is green, and the table counts each op's cases.
#[test]
fn test_by_op_on_the_onnx_node_group() {
    let output = onnxi(&["test", "fixtures/onnx-node", "--by-op"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.lines().any(|line| line.starts_with("| Relu | 1 | ")), "{text}");
    assert!(text.lines().any(|line| line.starts_with("| Softmax | 105 | ")), "{text}");
    assert!(text.lines().last().is_some_and(|line| line.ends_with(" passed, 0 failed")), "{text}");
}

/// Issue 14: each cause is printed once (the file error was repeated).
#[test]
fn an_error_message_says_each_cause_once() {
    let output = onnxi(&["run", "no/such/model.onnx"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.starts_with("error: no/such/model.onnx: cannot read model: "), "{text}");
    assert_eq!(text.matches("cannot read model").count(), 1, "{text}");
}

/// A model with inputs `a` and `b` (Add).
fn two_input_model(dir: &Path) -> String {
    let nodes = vec![node("Add", "add", &["a", "b"], &["y"], vec![])];
    let inputs = vec![value_info("a", FLOAT, Some(&[D::N(3)])), value_info("b", FLOAT, Some(&[D::N(3)]))];
    write_model(dir, "add.onnx", &model(graph(nodes, inputs, &["y"]), 14))
}

/// Issue 14: bad usage exits 2 with one message naming the argument, in
/// `run` and `bench` alike (unknown or repeated input names, `-i FILE` for
/// a model with several inputs, an empty file part, bad numbers).
#[test]
fn usage_errors_exit_2_naming_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let add = two_input_model(dir.path());
    let (relu, input) = seed("relu");
    let file = input.trim_start_matches("input=").to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["bench".into(), relu.clone(), "--threads".into(), "0".into()], "--threads"),
        (vec!["bench".into(), relu.clone(), "--iters".into(), "0".into()], "--iters"),
        (vec!["bench".into(), relu.clone(), "--duration".into(), "5".into()], "--duration"),
        (vec!["bench".into(), relu.clone(), "--duration".into(), "0s".into()], "--duration"),
        (vec!["bench".into(), relu.clone(), "--duration".into(), "1s".into(), "--iters".into(), "3".into()], "--iters"),
        (vec!["bench".into(), relu.clone(), "--shape".into(), "input=abc".into()], "\"abc\" is not a size"),
        (vec!["test".into(), "--rtol=-1".into(), "fixtures/seed".into()], "--rtol"),
        (vec!["test".into(), "--atol=x".into(), "fixtures/seed".into()], "--atol"),
        (vec!["bench".into(), relu.clone(), "-i".into(), format!("x={file}")], "unknown input \"x\""),
        (vec!["bench".into(), relu.clone(), "--shape".into(), "x=5".into()], "unknown input \"x\""),
        (
            vec!["bench".into(), relu.clone(), "--shape".into(), "input=5".into(), "--shape".into(), "input=5".into()],
            "twice",
        ),
        (vec!["bench".into(), relu.clone(), "-i".into(), input.clone(), "--shape".into(), "input=5".into()], "both"),
        (vec!["run".into(), relu.clone(), "-i".into(), format!("x={file}")], "unknown input \"x\""),
        (
            vec!["run".into(), relu.clone(), "-i".into(), input.clone(), "-i".into(), input.clone()],
            "input \"input\" is given twice",
        ),
        (
            vec!["run".into(), relu.clone(), "-i".into(), input.clone(), "-i".into(), file.clone()],
            "input \"input\" is given twice",
        ),
        (
            vec!["bench".into(), relu.clone(), "-i".into(), input.clone(), "-i".into(), input.clone()],
            "input \"input\" is given twice",
        ),
        (vec!["run".into(), relu.clone(), "-i".into(), "input=".into()], "no file after 'input='"),
        (vec!["bench".into(), relu.clone(), "-i".into(), "input=".into()], "no file after 'input='"),
        (vec!["run".into(), relu.clone(), "-i".into(), format!("={file}")], "no input name"),
        (vec!["run".into(), add.clone(), "-i".into(), file.clone()], "FILE alone is for a model with one input"),
        (vec!["bench".into(), add.clone(), "-i".into(), file.clone()], "FILE alone is for a model with one input"),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = onnxi(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(needle), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).starts_with("error: "), "{args:?}: {}", stderr(&output));
    }
}

/// Issue 14: `-i FILE` (no name) works in `bench` as in `run` for a
/// one-input model; `bench` names its thread count and SIMD path.
#[test]
fn bench_takes_a_bare_input_file_and_names_threads_and_simd_path() {
    let (relu, input) = seed("relu");
    let file = input.trim_start_matches("input=");
    let output = onnxi(&["bench", &relu, "-i", file, "--iters", "2", "--warmup", "0", "--threads", "1"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("input: float64[5]"), "{text}");
    assert!(text.contains("1 thread, SIMD path "), "{text}");
    let output = onnxi(&["bench", &relu, "-i", file, "--iters", "2", "--warmup", "0", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["threads"].as_u64().unwrap() >= 1);
    let simd = json["simd"].as_str().unwrap();
    assert!(onnxi::kernels::simd::Isa::ALL.iter().any(|isa| isa.name() == simd), "{simd}");
}

/// A model of three nodes, Relu then Sigmoid then Relu (float32 [4, 8]).
fn three_node_model(dir: &Path) -> String {
    let nodes = vec![
        node("Relu", "first", &["x"], &["h"], vec![]),
        node("Sigmoid", "middle", &["h"], &["g"], vec![]),
        node("Relu", "last", &["g"], &["y"], vec![]),
    ];
    let inputs = vec![value_info("x", FLOAT, Some(&[D::N(4), D::N(8)]))];
    write_model(dir, "three.onnx", &model(graph(nodes, inputs, &["y"]), 14))
}

/// Issue 14: `bench` reports mean, standard deviation, p50/p90/p99,
/// throughput and peak memory; `--duration` replaces `--iters`; `--profile`
/// times each node and op type, most total time first, in text and JSON.
#[test]
fn bench_reports_statistics_duration_memory_and_profile() {
    let dir = tempfile::tempdir().unwrap();
    let three = three_node_model(dir.path());
    let output = onnxi(&["bench", &three, "--iters", "5", "--warmup", "1", "--threads", "1", "--profile"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for needle in ["5 runs after 1 warm-up: mean ", "std dev", "p50 ", "p90 ", "p99 ", "runs/s", "elements/ns"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    assert!(text.contains("peak memory: "), "{text}");
    assert!(text.contains("per node:") && text.contains("per op type:"), "{text}");
    assert!(text.contains("middle") && text.contains("Sigmoid"), "{text}");

    let output = onnxi(&["bench", &three, "--duration", "50ms", "--warmup", "0", "--profile", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["iters"].as_u64().unwrap() >= 1, "{json}");
    assert!(json["duration_s"].as_f64().unwrap() >= 0.05, "{json}");
    for key in ["mean_us", "std_dev_us", "p50_us", "p90_us", "p99_us", "min_us", "runs_per_s", "elements_per_ns"] {
        assert!(json[key].as_f64().is_some(), "{key}: {json}");
    }
    let (p50, p90, p99) =
        (json["p50_us"].as_f64().unwrap(), json["p90_us"].as_f64().unwrap(), json["p99_us"].as_f64().unwrap());
    assert!(p50 <= p90 && p90 <= p99, "{json}");
    if cfg!(target_os = "linux") {
        assert!(json["peak_rss_bytes"].as_u64().unwrap() > 0, "{json}");
    }
    let profile = &json["profile"];
    let nodes = profile["nodes"].as_array().unwrap();
    let ops = profile["op_types"].as_array().unwrap();
    let runs = profile["runs"].as_u64().unwrap();
    // Each step is listed once, with as many calls as profiled runs (the
    // plan may fuse the chain into one step).
    assert!(!nodes.is_empty() && nodes.len() <= 3, "{profile}");
    assert!(nodes.iter().all(|row| row["calls"].as_u64() == Some(runs)), "{profile}");
    let totals: Vec<f64> = nodes.iter().map(|row| row["total_us"].as_f64().unwrap()).collect();
    assert!(totals.windows(2).all(|pair| pair[0] >= pair[1]), "{profile}");
    let share: f64 = nodes.iter().map(|row| row["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-6, "{profile}");
    let op_calls: u64 = ops.iter().map(|row| row["calls"].as_u64().unwrap()).sum();
    assert_eq!(op_calls, runs * nodes.len() as u64, "{profile}");
}

/// Issue 14: `check` prints one line and exits 0 for a model onnxi can
/// run, and lists every problem (each unsupported node, not just the
/// first) with exit 1 otherwise; an unreadable file exits 1 too.
#[test]
fn check_lists_every_problem_or_prints_one_line() {
    let (relu, _) = seed("relu");
    let output = onnxi(&["check", &relu]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(": ok: opsets ai.onnx=") && text.contains("1 node supported"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let nodes = vec![
        node("NoSuchOp", "first_bad", &["x"], &["h"], vec![]),
        node("Relu", "fine", &["h"], &["g"], vec![]),
        node("AlsoMissing", "second_bad", &["g"], &["y"], vec![]),
    ];
    let inputs = vec![value_info("x", FLOAT, Some(&[D::N(3)]))];
    let bad = write_model(dir.path(), "bad.onnx", &model(graph(nodes, inputs, &["y"]), 14));
    let output = onnxi(&["check", &bad]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.starts_with(&format!("error: {bad}: 2 problems found:")), "{text}");
    assert!(text.contains("first_bad") && text.contains("NoSuchOp"), "{text}");
    assert!(text.contains("second_bad") && text.contains("AlsoMissing"), "{text}");
    assert!(!text.contains("\"fine\""), "{text}");

    let output = onnxi(&["check", "no/such/model.onnx"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("error: no/such/model.onnx"), "{}", stderr(&output));
}

/// A `.npz` archive written with deflate, as `numpy.savez_compressed`
/// does (the first member in zip64 form, as `numpy.savez` writes).
fn write_deflated_npz(path: &Path, arrays: &[(&str, &onnxi::Tensor)]) {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (idx, (name, tensor)) in arrays.iter().enumerate() {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(idx == 0);
        writer.start_file(format!("{name}.npy"), options).unwrap();
        writer.write_all(&onnxi::io::tensor_file::encode_npy(tensor)).unwrap();
    }
    writer.finish().unwrap();
}

/// Issue 14: `-i FILE.npz` feeds every input by name (stored or deflated
/// archives), `-o FILE.npz` writes one archive of the outputs, `-o DIR`
/// still writes one `.npy` each; an array the model lacks is bad usage.
#[test]
fn npz_archives_feed_inputs_by_name_and_collect_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let add = two_input_model(dir.path());
    let (a, b) = (f32s(&[1.0, 2.0, 3.0]), f32s(&[10.0, 20.0, 30.0]));
    let stored = dir.path().join("in.npz");
    onnxi::io::tensor_file::write_npz(&stored, [("a", &a), ("b", &b)]).unwrap();
    let deflated = dir.path().join("deflated.npz");
    write_deflated_npz(&deflated, &[("b", &b), ("a", &a)]);
    for archive in [&stored, &deflated] {
        let out = dir.path().join("out.npz");
        let output = onnxi(&["run", &add, "-i", archive.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let arrays = onnxi::io::tensor_file::read_npz(&out, u64::MAX).unwrap();
        assert_eq!(arrays, vec![("y".to_string(), f32s(&[11.0, 22.0, 33.0]))]);
    }
    let out_dir = dir.path().join("outs");
    let output = onnxi(&["run", &add, "-i", stored.to_str().unwrap(), "-o", out_dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(onnxi::io::tensor_file::read(&out_dir.join("y.npy"), u64::MAX).unwrap().0, f32s(&[11.0, 22.0, 33.0]));

    let extra = dir.path().join("extra.npz");
    onnxi::io::tensor_file::write_npz(&extra, [("a", &a), ("b", &b), ("c", &a)]).unwrap();
    let output = onnxi(&["run", &add, "-i", extra.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("array \"c\" is not an input"), "{}", stderr(&output));
    let b_file = write_npy(dir.path(), "b.npy", &b);
    let output = onnxi(&["run", &add, "-i", stored.to_str().unwrap(), "-i", &format!("b={b_file}")]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("input \"b\" is given twice"), "{}", stderr(&output));
    // A broken archive is a failed input: exit 1, one line naming the file.
    let broken = dir.path().join("broken.npz");
    std::fs::write(&broken, b"PK\x03\x04 not really a zip archive").unwrap();
    let output = onnxi(&["run", &add, "-i", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).starts_with(&format!("error: {}: ", broken.display())), "{}", stderr(&output));
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
    // bench takes an archive too.
    let output = onnxi(&["bench", &add, "-i", deflated.to_str().unwrap(), "--iters", "1", "--warmup", "0"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// Issue 14: `run` without `-i` runs on random inputs of the declared
/// shapes and says so on stderr; a symbolic dim needs `--shape`.
#[test]
fn run_without_inputs_uses_random_values_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let add = two_input_model(dir.path());
    let output = onnxi(&["run", &add]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("random inputs (a: float32[3], b: float32[3])"), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("y: float32 [3]\n"), "{}", stdout(&output));

    let nodes = vec![node("Relu", "relu", &["x"], &["y"], vec![])];
    let inputs = vec![value_info("x", FLOAT, Some(&[D::P("batch"), D::N(2)]))];
    let symbolic = write_model(dir.path(), "sym.onnx", &model(graph(nodes, inputs, &["y"]), 14));
    let output = onnxi(&["run", &symbolic]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("give --shape x=D1,D2,..."), "{}", stderr(&output));
    let output = onnxi(&["run", &symbolic, "--shape", "x=3,2"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("y: float32 [3, 2]\n"), "{}", stdout(&output));
    let (relu, input) = seed("relu");
    let output = onnxi(&["run", &relu, "-i", &input, "--shape", "input=5"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// Issue 14: `fixtures/make_case.py --help` works without torch, onnx or
/// numpy (they are imported on first use). Skipped without `python3`.
#[test]
fn make_case_help_needs_no_torch() {
    let Ok(output) = Command::new("python3").args(["fixtures/make_case.py", "--help"]).output() else {
        eprintln!("skipped: no python3");
        return;
    };
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("usage: make_case.py") && text.contains("--dynamo"), "{text}");
}

/// Issue 14: `test` on a path that does not exist, or on a file that is not
/// a case's model, is bad usage naming the path; a case's `model.onnx` runs
/// that case.
#[test]
fn test_refuses_missing_paths_and_runs_a_cases_model_file() {
    let output = onnxi(&["test", "no/such/cases"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert_eq!(stderr(&output), "error: no/such/cases: no such file or folder\n");
    assert_eq!(stdout(&output), "");
    let output = onnxi(&["test", "fixtures/seed/test_seed_relu/model.onnx"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().last(), Some("1 passed, 0 failed"));
    let dir = tempfile::tempdir().unwrap();
    let lone = write_model(dir.path(), "model.onnx", &single_op("Relu", vec![], &[D::N(3)], 14));
    let output = onnxi(&["test", &lone]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is a file") && stderr(&output).contains("test_data_set_N/"),
        "{}",
        stderr(&output)
    );
}

/// Issue 14: an unknown `ONNXI_SIMD` is refused with the valid values;
/// `info` and `--version` name the CPU features and the path chosen.
#[test]
fn simd_choice_is_checked_and_reported() {
    let run = |simd: Option<&str>, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_onnxi"));
        command.args(args).env_remove("ONNXI_SIMD");
        if let Some(simd) = simd {
            command.env("ONNXI_SIMD", simd);
        }
        command.output().unwrap()
    };
    let (relu, input) = seed("relu");
    let output = run(Some("bogus"), &["run", &relu, "-i", &input]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: ONNXI_SIMD=\"bogus\" names no SIMD path; use one of scalar, sse2, avx2, avx512\n"
    );
    let output = run(None, &["info"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(text.starts_with(&format!("onnxi {}\ncpu features: ", env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(
        text.contains("simd path: ") && text.contains("(the best this CPU has)") && text.contains("threads: "),
        "{text}"
    );
    let output = run(Some("scalar"), &["--version"]);
    assert!(stdout(&output).contains("simd path: scalar (ONNXI_SIMD)"), "{}", stdout(&output));
    assert_eq!(stdout(&run(None, &["-V"])), format!("onnxi {}\n", env!("CARGO_PKG_VERSION")));
}

/// `ops --json`: the registry for scripts, one entry per op with its dtypes
/// per version.
#[test]
fn ops_json_lists_every_op_with_dtypes_per_version() {
    let output = onnxi(&["ops", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["max_opset"], 28);
    let ops = json["ops"].as_array().unwrap();
    assert_eq!(ops.len(), onnxi::ops::Registry::builtin().entries().len());
    let relu = ops.iter().find(|op| op["op_type"] == "Relu").unwrap();
    assert_eq!(relu["domain"], "ai.onnx");
    let v14 = relu["versions"].as_array().unwrap().iter().find(|v| v["version"] == 14).unwrap();
    assert!(v14["dtypes"].as_array().unwrap().contains(&serde_json::json!("int8")), "{v14}");
}

/// `run --expect NAME=FILE`: outputs compared with reference arrays within
/// `--rtol`/`--atol`; exit 1 naming the worst element when they differ.
#[test]
fn run_expect_compares_outputs_with_reference_arrays() {
    let (model, input) = seed("sigmoid");
    let reference = "output=fixtures/seed/test_seed_sigmoid/test_data_set_0/output_0.pb";
    let output = onnxi(&["run", &model, "-i", &input, "--expect", reference]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("expect output: ok (max abs err "), "{}", stdout(&output));

    let dir = tempfile::tempdir().unwrap();
    let off = write_npy(
        dir.path(),
        "off.npy",
        &onnxi::Tensor::from(ndarray::array![0.26894142f64, 0.88079708, 0.05, 0.98201379, 0.5]),
    );
    let expect = format!("output={off}");
    let output = onnxi(&["run", &model, "-i", &input, "--expect", &expect]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.starts_with("error: output \"output\" differs from "), "{text}");
    assert!(text.contains("worst element at index [2]: expected 0.05, got 0.04742587"), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    // Loose enough, it passes.
    let output = onnxi(&["run", &model, "-i", &input, "--expect", &expect, "--atol", "0.01"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    for (args, needle) in [
        (vec!["--expect", "nope=x.npy"], "unknown output \"nope\""),
        (vec!["--expect", reference, "--expect", reference], "output \"output\" is given twice"),
        (vec!["--expect", "x.npy"], "NAME=FILE"),
        (vec!["--rtol", "0.1"], "--expect"),
    ] {
        let mut full = vec!["run", model.as_str(), "-i", input.as_str()];
        full.extend(args);
        let output = onnxi(&full);
        assert_eq!(output.status.code(), Some(2), "{full:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(needle), "{full:?}: {}", stderr(&output));
    }
}
