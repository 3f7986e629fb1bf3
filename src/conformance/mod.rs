//! The conformance runner: discovers case folders in the ONNX backend
//! test-data layout, runs them, compares against the stored outputs, and
//! reports per case. Used by `onnxi test`, by `tests/`, and by anyone
//! embedding onnxi.
//!
//! A case is a folder with `model.onnx` and `test_data_set_N/` folders of
//! `input_K.pb` / `output_K.pb` (serialized TensorProto). A `manifest.txt`
//! in the folder holding the cases pins the expected case count (a tripwire
//! against a generator that silently produces nothing), says what each case
//! is expected to do, and can name a tolerance per case:
//!
//! ```text
//! cases 57                          # fail unless exactly 57 cases are found here
//! all-listed                        # a case here that no status line matches trips the run
//! test_relu                 pass
//! test_abs                  unsupported  # unsupported op Abs
//! test_*_expanded*          unsupported  # needs ReduceMax, Exp, … (not implemented)
//! test_gelu                 known-fail   # wrong numbers: max abs err 3.1e-2
//! test_softmax_large_number  tol:approximate   # measured: 3e-6 abs at 1e4
//! test_resnet*               tol:close:1e-3,1e-4  # rtol, atol of a whole network
//! ```
//!
//! Tolerances: `exact`, `close` (rtol 1e-3, atol 1e-7), `approximate`
//! (rtol 1e-2, atol 1e-5), `close:RTOL,ATOL`, `ulp:N`.
//!
//! Patterns are globs; for each case the last line with a status and the
//! last line with a tolerance that match it apply. What a status means:
//!
//! - `pass` (or no status): any failure or error fails the run.
//! - `unsupported  # reason`: the model must be refused at load (an op,
//!   dtype, value kind or opset onnxi does not handle); it is then reported
//!   as expected-unsupported. If it passes, or loads and then gives wrong
//!   numbers or a run error, the run fails: a wrong result is never hidden
//!   as "unsupported".
//! - `known-fail  # reason`: the model loads but gives wrong numbers or a
//!   run error (a bug, listed with what was measured). If it passes the run
//!   fails until the line is changed to `pass`; if it no longer loads, too.
//!
//! A manifest line without glob characters that names no case found here is
//! a tripwire (a stale entry), as is a wrong `cases` count; both are checked
//! only when the run covers the manifest's whole folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::graph::model::ModelBuilder;
use crate::io::tensor_file;
use crate::onnx::ModelProto;
mod compare;
mod manifest;

pub mod html;

pub use compare::{
    ABS_BUCKETS, Comparison, ULP_BUCKETS, WorstElement, abs_bucket, abs_bucket_label, compare, ulp_bucket,
    ulp_bucket_label,
};
pub use manifest::glob_match;
use manifest::*;

/// How close an output must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// Equal values (NaN matches NaN, -0.0 matches 0.0).
    Exact,
    /// `|actual - expected| <= atol + rtol * |expected|`.
    Close {
        /// Relative tolerance.
        rtol: f64,
        /// Absolute tolerance.
        atol: f64,
    },
    /// Within `n` units in the last place of the output's dtype.
    Ulp(u64),
}

impl Tolerance {
    /// The ONNX backend runner's default: rtol 1e-3, atol 1e-7.
    pub const DEFAULT: Tolerance = Tolerance::Close { rtol: 1e-3, atol: 1e-7 };
    /// For cases whose reference itself is computed loosely (rtol 1e-2, atol 1e-5).
    pub const APPROXIMATE: Tolerance = Tolerance::Close { rtol: 1e-2, atol: 1e-5 };

    fn parse(text: &str) -> Option<Tolerance> {
        match text {
            "exact" => Some(Tolerance::Exact),
            "close" => Some(Tolerance::DEFAULT),
            "approximate" => Some(Tolerance::APPROXIMATE),
            _ => {
                if let Some(n) = text.strip_prefix("ulp:") {
                    return n.parse().ok().map(Tolerance::Ulp);
                }
                // `close:RTOL,ATOL`, e.g. `close:1e-3,1e-4`.
                let (rtol, atol) = text.strip_prefix("close:")?.split_once(',')?;
                let (rtol, atol): (f64, f64) = (rtol.parse().ok()?, atol.parse().ok()?);
                (rtol.is_finite() && atol.is_finite() && rtol >= 0.0 && atol >= 0.0)
                    .then_some(Tolerance::Close { rtol, atol })
            }
        }
    }
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Every output of every data set matched.
    Pass,
    /// An output differed; the worst element is described.
    Fail(String),
    /// The case could not run (load or run error, bad test data).
    Error(String),
    /// Listed in a manifest as unsupported, and it indeed fails to load.
    ExpectedUnsupported(String),
    /// Listed in a manifest as a known failure (wrong numbers or a run
    /// error of a model that loads), and it indeed still fails that way.
    KnownFail(String),
}

impl Status {
    /// `pass`, `fail`, `error`, `unsupported` or `known-fail`.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail(_) => "fail",
            Status::Error(_) => "error",
            Status::ExpectedUnsupported(_) => "unsupported",
            Status::KnownFail(_) => "known-fail",
        }
    }

    /// The reason or failure message, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Status::Pass => None,
            Status::Fail(text) | Status::Error(text) | Status::ExpectedUnsupported(text) | Status::KnownFail(text) => {
                Some(text)
            }
        }
    }
}

/// What running one case found.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// The case folder.
    pub path: PathBuf,
    /// The folder's name.
    pub name: String,
    /// Distinct op types in the graph (file order).
    pub ops: Vec<String>,
    /// Default-domain opset.
    pub opset: Option<i64>,
    /// Input dtypes and shapes of the first data set, e.g. `float32[2, 3]`.
    pub inputs: Vec<String>,
    /// Number of data sets compared.
    pub n_data_sets: usize,
    /// Outcome, after the manifest's expectation is applied.
    pub status: Status,
    /// What running the case gave before the manifest was applied (`Pass`,
    /// `Fail` or `Error`): what `update_manifest.py` turns into statuses.
    pub raw_status: Status,
    /// Whether onnxi loaded the model (an `Error` with `loaded == false` is
    /// a refusal to load; with `true`, a failure while reading data or running).
    pub loaded: bool,
    /// Largest absolute error over all outputs and data sets.
    pub max_abs_error: f64,
    /// Largest error in units in the last place.
    pub max_ulp_error: u64,
    /// Time spent loading and running.
    pub elapsed: Duration,
    /// Compared elements per error in ULP, over all outputs and data sets
    /// (buckets of [`ulp_bucket`]).
    pub ulp_histogram: [u64; ULP_BUCKETS],
    /// Compared elements per absolute error (buckets of [`abs_bucket`]).
    pub abs_histogram: [u64; ABS_BUCKETS],
    /// The element farthest from its reference over all outputs and data
    /// sets, when any differs.
    pub worst: Option<WorstElement>,
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Default)]
pub struct SuiteReport {
    /// One report per case, in discovery order.
    pub cases: Vec<CaseReport>,
    /// Manifest tripwires that did not hold (e.g. fewer cases than pinned).
    pub tripwires: Vec<String>,
}

impl SuiteReport {
    /// Cases that passed.
    pub fn n_passed(&self) -> usize {
        self.cases.iter().filter(|case| case.status == Status::Pass).count()
    }

    /// Cases that failed or errored, plus broken tripwires.
    pub fn n_failed(&self) -> usize {
        self.cases.iter().filter(|case| matches!(case.status, Status::Fail(_) | Status::Error(_))).count()
            + self.tripwires.len()
    }

    /// Cases expected to be unsupported (neither passed nor failed).
    pub fn n_unsupported(&self) -> usize {
        self.cases.iter().filter(|case| matches!(case.status, Status::ExpectedUnsupported(_))).count()
    }

    /// Cases listed as known failures that still fail (bugs on record;
    /// neither passed nor counted as failed).
    pub fn n_known_fail(&self) -> usize {
        self.cases.iter().filter(|case| matches!(case.status, Status::KnownFail(_))).count()
    }

    /// Passes per operator, sorted by op type: `(op, passed, total)`. A
    /// case counts once under each distinct op type of its graph.
    pub fn by_op(&self) -> Vec<(String, usize, usize)> {
        let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = std::collections::BTreeMap::new();
        for case in &self.cases {
            for op in &case.ops {
                let entry = counts.entry(op.as_str()).or_default();
                entry.1 += 1;
                if case.status == Status::Pass {
                    entry.0 += 1;
                }
            }
        }
        counts.into_iter().map(|(op, (passed, total))| (op.to_string(), passed, total)).collect()
    }

    /// [`SuiteReport::by_op`] as a Markdown table `op | passed | total`.
    pub fn by_op_table(&self) -> String {
        let mut table = String::from("| op | passed | total |\n|---|---|---|\n");
        for (op, passed, total) in self.by_op() {
            table.push_str(&format!("| {op} | {passed} | {total} |\n"));
        }
        table
    }

    /// The closing line: `N passed, N failed`.
    pub fn summary_line(&self) -> String {
        format!("{} passed, {} failed", self.n_passed(), self.n_failed())
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.n_passed(),
            "failed": self.n_failed(),
            "expected_unsupported": self.n_unsupported(),
            "known_fail": self.n_known_fail(),
            "tripwires": self.tripwires,
            "cases": self.cases.iter().map(CaseReport::to_json).collect::<Vec<_>>(),
        })
    }
}

impl CaseReport {
    /// One line: status, name, and the reason or the largest error.
    pub fn line(&self) -> String {
        let errors = format!("max abs err {:.3e}, max {} ULP", self.max_abs_error, self.max_ulp_error);
        match &self.status {
            Status::Pass => format!("pass  {} ({} data sets, {errors})", self.name, self.n_data_sets),
            Status::Fail(reason) => format!("FAIL  {}: {reason} ({errors})", self.name),
            Status::Error(reason) => format!("ERROR {}: {reason}", self.name),
            Status::ExpectedUnsupported(reason) => {
                format!("unsupported {} (expected: {reason})", self.name)
            }
            Status::KnownFail(reason) => format!("known-fail {} (listed: {reason}; {errors})", self.name),
        }
    }

    /// This case as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "path": self.path.display().to_string(),
            "ops": self.ops,
            "opset": self.opset,
            "inputs": self.inputs,
            "data_sets": self.n_data_sets,
            "status": self.status.label(),
            "detail": self.status.detail(),
            "raw_status": self.raw_status.label(),
            "raw_detail": self.raw_status.detail(),
            "loaded": self.loaded,
            "max_abs_error": if self.max_abs_error.is_finite() { json!(self.max_abs_error) } else { json!(self.max_abs_error.to_string()) },
            "max_ulp_error": self.max_ulp_error,
            "time_ms": self.elapsed.as_secs_f64() * 1e3,
        })
    }
}

/// Every case folder at or below `root`, sorted, without following
/// symlinked folders (so a link loop cannot hang the walk).
pub fn discover(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("model.onnx").is_file() {
            found.push(dir);
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// Options for a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tolerance for cases the manifest says nothing about.
    pub tolerance: Tolerance,
}

impl Default for Options {
    fn default() -> Self {
        Options { tolerance: Tolerance::DEFAULT }
    }
}

/// Discovers and runs every case under `paths`, calling `on_case` after
/// each (for progress output).
pub fn run_paths(
    paths: &[PathBuf],
    options: &Options,
    mut on_case: impl FnMut(&CaseReport, usize, usize),
) -> SuiteReport {
    let mut report = SuiteReport::default();
    let mut work: Vec<(PathBuf, Option<usize>)> = Vec::new();
    let mut manifests: Vec<Manifest> = Vec::new();
    for root in paths {
        let cases = discover(root);
        if cases.is_empty() {
            report.tripwires.push(format!("{}: no test cases found", root.display()));
        }
        // Manifests at the root, in the folders between, and in each group folder.
        let mut dirs: Vec<PathBuf> = cases.iter().filter_map(|case| case.parent().map(Path::to_path_buf)).collect();
        dirs.push(root.clone());
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            if manifests.iter().any(|manifest| manifest.dir == dir) {
                continue;
            }
            match Manifest::read(&dir) {
                Ok(Some(manifest)) => manifests.push(manifest),
                Ok(None) => {}
                Err(err) => report.tripwires.push(err),
            }
        }
        for case in cases {
            let manifest_idx = manifests.iter().rposition(|manifest| case.parent() == Some(manifest.dir.as_path()));
            if !work.iter().any(|(existing, _)| *existing == case) {
                work.push((case, manifest_idx));
            }
        }
    }
    // Group checks only for folders the run covers whole: one case run on
    // its own does not trip its group's count.
    for manifest in &manifests {
        if !paths.iter().any(|root| manifest.dir.starts_with(root)) {
            continue;
        }
        let names: Vec<String> = work
            .iter()
            .filter(|(case, _)| case.parent() == Some(manifest.dir.as_path()))
            .filter_map(|(case, _)| case.file_name().map(|name| name.to_string_lossy().into_owned()))
            .collect();
        report.tripwires.extend(manifest.check_group(&names));
    }
    let total = work.len();
    for (idx, (case, manifest_idx)) in work.into_iter().enumerate() {
        let name = case.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let (expect, tolerance) = manifest_idx.map_or((None, None), |idx| manifests[idx].lookup(&name));
        let mut case_report = run_case(&case, tolerance.unwrap_or(options.tolerance));
        case_report.status = expected_status(expect, &case_report.raw_status, case_report.loaded);
        on_case(&case_report, idx + 1, total);
        report.cases.push(case_report);
    }
    report
}

/// Runs one case folder.
pub fn run_case(dir: &Path, tolerance: Tolerance) -> CaseReport {
    let started = Instant::now();
    let name = dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let mut report = CaseReport {
        path: dir.to_path_buf(),
        name,
        ops: Vec::new(),
        opset: None,
        inputs: Vec::new(),
        n_data_sets: 0,
        status: Status::Pass,
        raw_status: Status::Pass,
        loaded: false,
        max_abs_error: 0.0,
        max_ulp_error: 0,
        elapsed: Duration::ZERO,
        ulp_histogram: [0; ULP_BUCKETS],
        abs_histogram: [0; ABS_BUCKETS],
        worst: None,
    };
    report.raw_status = match run_case_inner(dir, tolerance, &mut report) {
        Ok(status) => status,
        Err(reason) => Status::Error(reason),
    };
    report.status = report.raw_status.clone();
    report.elapsed = started.elapsed();
    report
}

/// Fills the report's ops and opset from the model's bytes (file order,
/// before any function expansion), even when onnxi cannot load it.
fn describe_model(bytes: &[u8], report: &mut CaseReport) {
    use prost::Message;
    let Ok(proto) = ModelProto::decode(bytes) else {
        return;
    };
    report.opset =
        proto.opset_import.iter().find(|opset| matches!(opset.domain(), "" | "ai.onnx")).map(|opset| opset.version());
    if let Some(graph) = &proto.graph {
        for node in &graph.node {
            let op = node.op_type().to_string();
            if !report.ops.contains(&op) {
                report.ops.push(op);
            }
        }
    }
}

/// The files `{prefix}0.pb`, `{prefix}1.pb`, … of a data set folder, in
/// order. A gap in the numbering (`input_0.pb` and `input_2.pb` without
/// `input_1.pb`) or one number written twice (`input_1.pb`, `input_01.pb`)
/// is an error naming the file: the positions of the others would be wrong.
fn numbered_files(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let idx = name.strip_prefix(prefix)?.strip_suffix(".pb")?.parse().ok()?;
            Some((idx, entry.path()))
        })
        .collect();
    files.sort();
    for (pos, (idx, path)) in files.iter().enumerate() {
        if *idx > pos {
            let present: Vec<String> =
                files.iter().filter_map(|(_, path)| Some(path.file_name()?.to_string_lossy().into_owned())).collect();
            return Err(format!(
                "{}: {prefix}{pos}.pb is missing (the data set has {}; the numbering must start at 0 with no gaps)",
                dir.display(),
                present.join(", ")
            ));
        }
        if *idx < pos {
            return Err(format!("{}: two files number {prefix}{idx}.pb", path.display()));
        }
    }
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

fn run_case_inner(dir: &Path, tolerance: Tolerance, report: &mut CaseReport) -> Result<Status, String> {
    let model_path = dir.join("model.onnx");
    // Read once: the same bytes describe the case and load the model.
    let bytes =
        std::fs::read(&model_path).map_err(|err| format!("{}: cannot read model: {err}", model_path.display()))?;
    describe_model(&bytes, report);
    let model = ModelBuilder::default().from_file_bytes(&bytes, &model_path).map_err(|err| err.to_string())?;
    report.loaded = true;
    let mut data_sets: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|err| format!("cannot list {}: {err}", dir.display()))?
        .flatten()
        .filter_map(|entry| {
            let idx = entry.file_name().to_string_lossy().strip_prefix("test_data_set_")?.parse().ok()?;
            Some((idx, entry.path()))
        })
        .collect();
    data_sets.sort();
    if data_sets.is_empty() {
        return Err("no test_data_set_* folders".into());
    }
    let feedable: Vec<String> =
        model.inputs().iter().filter(|spec| !spec.has_default).map(|spec| spec.name.clone()).collect();
    let all_inputs: Vec<String> = model.inputs().iter().map(|spec| spec.name.clone()).collect();
    let output_names: Vec<String> = model.output_names().iter().map(|name| name.to_string()).collect();
    for (set_idx, set_dir) in &data_sets {
        let mut feeds = Vec::new();
        for (pos, file) in numbered_files(set_dir, "input_")?.into_iter().enumerate() {
            let (tensor, stored_name) = tensor_file::read(&file, u64::MAX).map_err(|err| err.to_string())?;
            // Inputs match by stored name when it names a graph input, else by position.
            let name = match stored_name {
                Some(name) if all_inputs.contains(&name) => name,
                _ => feedable
                    .get(pos)
                    .cloned()
                    .ok_or_else(|| format!("{} has no matching graph input", file.display()))?,
            };
            if report.n_data_sets == 0 {
                report.inputs.push(format!("{}{:?}", tensor.dtype(), tensor.shape()));
            }
            feeds.push((name, tensor));
        }
        let outputs = model.run(feeds).map_err(|err| format!("data set {set_idx}: {err}"))?;
        let expected_files = numbered_files(set_dir, "output_")?;
        if expected_files.len() != output_names.len() {
            return Ok(Status::Fail(format!(
                "data set {set_idx}: {} expected outputs stored, the model has {}",
                expected_files.len(),
                output_names.len()
            )));
        }
        for (out_idx, (file, name)) in expected_files.iter().zip(&output_names).enumerate() {
            let (expected, _) = tensor_file::read(file, u64::MAX).map_err(|err| err.to_string())?;
            let actual = outputs.get(name).ok_or_else(|| format!("output {name:?} missing"))?;
            let comparison = compare(&expected, actual, tolerance);
            report.max_abs_error = report.max_abs_error.max(comparison.max_abs);
            report.max_ulp_error = report.max_ulp_error.max(comparison.max_ulp);
            for (sum, count) in report.ulp_histogram.iter_mut().zip(comparison.ulp_histogram) {
                *sum += count;
            }
            for (sum, count) in report.abs_histogram.iter_mut().zip(comparison.abs_histogram) {
                *sum += count;
            }
            if let Some(worst) = comparison.worst
                && report.worst.as_ref().is_none_or(|seen| (worst.ulp, worst.abs) > (seen.ulp, seen.abs))
            {
                report.worst = Some(WorstElement { output: name.clone(), ..worst });
            }
            if let Some(reason) = comparison.failure {
                return Ok(Status::Fail(format!("data set {set_idx}, output {out_idx} {name:?}: {reason}")));
            }
        }
        report.n_data_sets += 1;
    }
    Ok(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    #[test]
    fn globs_match_like_the_manifest_needs() {
        assert!(glob_match("test_softmax_axis_[0-2]", "test_softmax_axis_1"));
        assert!(!glob_match("test_softmax_axis_[0-2]", "test_softmax_axis_3"));
        assert!(glob_match("test_*_expanded*", "test_softmax_axis_0_expanded_ver18"));
        assert!(!glob_match("test_*_expanded", "test_relu"));
        assert!(glob_match("test_leakyrelu.*", "test_leakyrelu.x") && glob_match("*", ""));
    }

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(Path::new("g"), Path::new("g/manifest.txt"), text)
    }

    #[test]
    fn manifest_grammar_needs_reasons_and_one_status_per_line() {
        let manifest = parse(
            "cases 3\nall-listed\ntest_a pass\ntest_b unsupported  # dtype bool\n\
             test_c known-fail tol:exact  # wrong numbers: 1 ULP\ntest_* tol:ulp:4  # measured 3 ULP\n",
        )
        .unwrap();
        assert_eq!((manifest.expected_cases, manifest.all_listed), (Some(3), true));
        assert_eq!(manifest.lookup("test_a"), (Some(&Expect::Pass), Some(Tolerance::Ulp(4))));
        assert_eq!(manifest.lookup("test_b").0, Some(&Expect::Unsupported("dtype bool".into())));
        // The last matching line with a tolerance wins, independently of the status.
        assert_eq!(manifest.lookup("test_c").1, Some(Tolerance::Ulp(4)));
        assert_eq!(manifest.lookup("other"), (None, None));
        let custom = parse("test_n tol:close:1e-3,1e-4  # a network's bar\n").unwrap();
        assert_eq!(custom.lookup("test_n").1, Some(Tolerance::Close { rtol: 1e-3, atol: 1e-4 }));
        for bad in [
            "test_a tol:close:1e-3  # x\n",
            "test_a tol:close:1e-3,-1  # x\n",
            "test_a tol:close:a,b  # x\n",
            "test_a unsupported\n",
            "test_a known-fail\n",
            "test_a pass unsupported  # x\n",
            "test_a\n",
            "test_a passes\n",
            "cases\n",
            "cases 3 4\n",
            "all-listed yes\n",
            "test_a tol:close\n",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("g/manifest.txt:1: "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn listed_statuses_turn_outcomes_into_statuses() {
        let unsupported = Expect::Unsupported("unsupported op Abs".into());
        let known = Expect::KnownFail("wrong numbers".into());
        let error = Status::Error("e".into());
        let fail = Status::Fail("f".into());
        let label = |expect: Option<&Expect>, raw: &Status, loaded| expected_status(expect, raw, loaded).label();
        // pass or unlisted: what happened.
        for expect in [None, Some(&Expect::Pass)] {
            assert_eq!(
                [label(expect, &Status::Pass, true), label(expect, &fail, true), label(expect, &error, false)],
                ["pass", "fail", "error"]
            );
        }
        // unsupported: only a refusal to load.
        assert_eq!(label(Some(&unsupported), &error, false), "unsupported");
        assert_eq!(label(Some(&unsupported), &error, true), "fail");
        assert_eq!(label(Some(&unsupported), &fail, true), "fail");
        assert_eq!(label(Some(&unsupported), &Status::Pass, true), "fail");
        // known-fail: only wrong numbers or a run error of a loaded model.
        assert_eq!(label(Some(&known), &fail, true), "known-fail");
        assert_eq!(label(Some(&known), &error, true), "known-fail");
        assert_eq!(label(Some(&known), &error, false), "error");
        assert_eq!(label(Some(&known), &Status::Pass, true), "fail");
    }

    #[test]
    fn group_checks_pin_the_count_the_listing_and_stale_entries() {
        let manifest = parse("cases 2\nall-listed\ntest_a pass\ntest_[xy] pass\ntest_gone pass\n").unwrap();
        let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        let wires = manifest.check_group(&names(&["test_a", "test_x", "test_new"]));
        assert_eq!(wires.len(), 3, "{wires:?}");
        assert!(wires[0].contains("manifest pins 2 cases, found 3"));
        assert!(wires[1].contains("lists test_gone"));
        assert!(wires[2].contains("g/test_new: not listed"));
        // Without all-listed an unlisted case is fine; globs are never stale.
        let manifest = parse("cases 1\ntest_[xy] pass\n").unwrap();
        assert!(manifest.check_group(&names(&["test_new"])).is_empty());
    }

    #[test]
    fn comparison_treats_nan_and_signed_zero_as_equal_and_counts_ulp() {
        let expected = Tensor::from(ndarray::array![f32::NAN, 0.0, 1.0].into_dyn());
        let actual = Tensor::from(ndarray::array![f32::NAN, -0.0, f32::from_bits(1.0f32.to_bits() + 3)].into_dyn());
        let result = compare(&expected, &actual, Tolerance::Ulp(3));
        assert_eq!((result.max_ulp, result.failure.is_none()), (3, true));
        let result = compare(&expected, &actual, Tolerance::Ulp(2));
        assert!(result.failure.unwrap().contains("index [2]"));
    }

    /// Issue 10: `rtol * |want|` is infinite when `want` is, so a wrong
    /// infinity or a finite value passed for an expected infinity.
    #[test]
    fn infinities_and_nan_match_only_themselves_under_every_tolerance() {
        let cases: [(&[f32], &[f32]); 8] = [
            // Relu of [+inf, 1, 2] with a wrong expected -inf.
            (&[f32::NEG_INFINITY, 1.0, 2.0], &[f32::INFINITY, 1.0, 2.0]),
            // Relu of [3e38, 1, 2] with a wrong expected +inf.
            (&[f32::INFINITY, 1.0, 2.0], &[3e38, 1.0, 2.0]),
            // Relu of [-inf, 1, 2] is 0, not -inf.
            (&[f32::NEG_INFINITY, 1.0, 2.0], &[0.0, 1.0, 2.0]),
            // f32::MAX is one ULP below +inf.
            (&[f32::INFINITY], &[f32::MAX]),
            (&[f32::MAX], &[f32::INFINITY]),
            (&[1.0], &[f32::NAN]),
            (&[f32::NAN], &[1.0]),
            (&[f32::NAN], &[f32::INFINITY]),
        ];
        let tolerances = [
            Tolerance::Exact,
            Tolerance::DEFAULT,
            Tolerance::APPROXIMATE,
            Tolerance::Close { rtol: 1.0, atol: 1e30 },
            Tolerance::Ulp(1),
            Tolerance::Ulp(u64::MAX),
        ];
        for (want, got) in cases {
            for tolerance in tolerances {
                let expected = Tensor::from(ndarray::Array1::from(want.to_vec()).into_dyn());
                let actual = Tensor::from(ndarray::Array1::from(got.to_vec()).into_dyn());
                let result = compare(&expected, &actual, tolerance);
                assert!(result.failure.is_some(), "{want:?} vs {got:?} passed under {tolerance:?}");
                // The same in float64.
                let expected = Tensor::from(ndarray::Array1::from_iter(want.iter().map(|&v| f64::from(v))).into_dyn());
                let actual = Tensor::from(ndarray::Array1::from_iter(got.iter().map(|&v| f64::from(v))).into_dyn());
                assert!(compare(&expected, &actual, tolerance).failure.is_some(), "f64 {want:?} vs {got:?}");
            }
        }
        // Matching infinities and NaNs still pass.
        let same = Tensor::from(ndarray::array![f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0].into_dyn());
        for tolerance in tolerances {
            assert!(compare(&same, &same.clone(), tolerance).failure.is_none(), "{tolerance:?}");
        }
    }

    #[test]
    fn integers_match_exactly_even_past_2_to_the_53() {
        let big = 1i64 << 60;
        let expected = Tensor::from(ndarray::array![big, -3].into_dyn());
        let off_by_one = Tensor::from(ndarray::array![big + 1, -3].into_dyn());
        for tolerance in [Tolerance::DEFAULT, Tolerance::APPROXIMATE, Tolerance::Ulp(0)] {
            assert!(compare(&expected, &off_by_one, tolerance).failure.is_some(), "{tolerance:?}");
            assert!(compare(&expected, &expected.clone(), tolerance).failure.is_none(), "{tolerance:?}");
        }
        let near = Tensor::from(ndarray::array![u64::MAX, 0].into_dyn());
        let far = Tensor::from(ndarray::array![u64::MAX - 1, 0].into_dyn());
        assert!(compare(&near, &far, Tolerance::DEFAULT).failure.is_some());
        // A tolerance that would accept 1 in 1000 does not apply to integers.
        let hundred = Tensor::from(ndarray::array![1000i32].into_dyn());
        let close = Tensor::from(ndarray::array![1001i32].into_dyn());
        assert!(compare(&hundred, &close, Tolerance::APPROXIMATE).failure.is_some());
    }

    #[test]
    fn dtype_and_shape_must_match_exactly() {
        let f32s = Tensor::from(ndarray::array![1.0f32].into_dyn());
        let f64s = Tensor::from(ndarray::array![1.0f64].into_dyn());
        assert!(compare(&f32s, &f64s, Tolerance::DEFAULT).failure.unwrap().contains("dtype"));
        let reshaped = Tensor::from(ndarray::array![[1.0f32]].into_dyn());
        assert!(compare(&f32s, &reshaped, Tolerance::DEFAULT).failure.unwrap().contains("shape"));
    }
}
