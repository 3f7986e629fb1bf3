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
//! ```
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
use crate::tensor::Tensor;

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
            _ => text.strip_prefix("ulp:").and_then(|n| n.parse().ok()).map(Tolerance::Ulp),
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

/// What a manifest line says a case does.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Passes.
    Pass,
    /// Refused at load, for the reason given.
    Unsupported(String),
    /// Loads, then gives wrong numbers or a run error, as described.
    KnownFail(String),
}

/// One manifest line.
#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    expect: Option<Expect>,
    tolerance: Option<Tolerance>,
}

/// A `manifest.txt`: the case-count tripwire and per-case rules.
#[derive(Debug, Clone)]
struct Manifest {
    dir: PathBuf,
    expected_cases: Option<usize>,
    all_listed: bool,
    rules: Vec<Rule>,
    /// Indices of the rules whose pattern is a plain name, by name.
    literal: std::collections::HashMap<String, Vec<usize>>,
    /// Indices of the rules whose pattern has glob characters.
    globs: Vec<usize>,
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

impl Manifest {
    fn read(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join("manifest.txt");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        Manifest::parse(dir, &path, &text).map(Some)
    }

    fn parse(dir: &Path, path: &Path, text: &str) -> Result<Manifest, String> {
        let mut manifest = Manifest {
            dir: dir.to_path_buf(),
            expected_cases: None,
            all_listed: false,
            rules: Vec::new(),
            literal: Default::default(),
            globs: Vec::new(),
        };
        for (line_idx, line) in text.lines().enumerate() {
            let (body, comment) = line.split_once('#').unwrap_or((line, ""));
            let comment = comment.trim();
            let mut words = body.split_whitespace();
            let Some(first) = words.next() else { continue };
            let bad = |what: &str| format!("{}:{}: {what}", path.display(), line_idx + 1);
            if first == "cases" {
                let count = words.next().and_then(|n| n.parse().ok()).ok_or_else(|| bad("`cases` needs a number"))?;
                if words.next().is_some() {
                    return Err(bad("`cases` takes one number"));
                }
                manifest.expected_cases = Some(count);
                continue;
            }
            if first == "all-listed" {
                if words.next().is_some() {
                    return Err(bad("`all-listed` takes nothing"));
                }
                manifest.all_listed = true;
                continue;
            }
            let mut rule = Rule { pattern: first.to_string(), expect: None, tolerance: None };
            for word in words {
                let expect = match word {
                    "pass" => Some(Expect::Pass),
                    "unsupported" | "known-fail" => {
                        if comment.is_empty() {
                            return Err(bad(&format!("a `{word}` entry needs a reason in its # comment")));
                        }
                        Some(if word == "unsupported" {
                            Expect::Unsupported(comment.to_string())
                        } else {
                            Expect::KnownFail(comment.to_string())
                        })
                    }
                    _ => None,
                };
                if let Some(expect) = expect {
                    if rule.expect.is_some() {
                        return Err(bad("more than one status on a line"));
                    }
                    rule.expect = Some(expect);
                } else if let Some(tolerance) = word.strip_prefix("tol:") {
                    if comment.is_empty() {
                        return Err(bad("a tolerance entry needs the measurement in its # comment"));
                    }
                    rule.tolerance = Some(
                        Tolerance::parse(tolerance).ok_or_else(|| bad(&format!("unknown tolerance {tolerance:?}")))?,
                    );
                } else {
                    return Err(bad(&format!("unknown directive {word:?}")));
                }
            }
            if rule.expect.is_none() && rule.tolerance.is_none() {
                return Err(bad(&format!("{first:?} needs a status (pass, unsupported, known-fail) or a tolerance")));
            }
            if is_glob(&rule.pattern) {
                manifest.globs.push(manifest.rules.len());
            } else {
                manifest.literal.entry(rule.pattern.clone()).or_default().push(manifest.rules.len());
            }
            manifest.rules.push(rule);
        }
        Ok(manifest)
    }

    /// The expectation and the tolerance for a case: each from the last
    /// line that matches and says it.
    fn lookup(&self, name: &str) -> (Option<&Expect>, Option<Tolerance>) {
        // A manifest lists every case of a big group by name: look names up
        // instead of matching each line (quadratic in the group's size).
        let mut matching: Vec<usize> = self.literal.get(name).cloned().unwrap_or_default();
        matching.extend(self.globs.iter().copied().filter(|&idx| glob_match(&self.rules[idx].pattern, name)));
        matching.sort_unstable();
        let last =
            |pick: &dyn Fn(&Rule) -> bool| matching.iter().rev().map(|&idx| &self.rules[idx]).find(|rule| pick(rule));
        (
            last(&|rule| rule.expect.is_some()).and_then(|rule| rule.expect.as_ref()),
            last(&|rule| rule.tolerance.is_some()).and_then(|rule| rule.tolerance),
        )
    }

    /// Tripwires that need every case of the folder: the pinned count,
    /// stale exact-name lines, and (with `all-listed`) unlisted cases.
    fn check_group(&self, names: &[String]) -> Vec<String> {
        let mut tripwires = Vec::new();
        let dir = self.dir.display();
        if let Some(expected) = self.expected_cases
            && names.len() != expected
        {
            tripwires.push(format!("{dir}: manifest pins {expected} cases, found {}", names.len()));
        }
        let present: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut stale: Vec<&String> = self.literal.keys().filter(|name| !present.contains(name.as_str())).collect();
        stale.sort();
        for name in stale {
            tripwires.push(format!("{dir}/manifest.txt lists {name}, which is not a case here"));
        }
        if self.all_listed {
            for name in names {
                if self.lookup(name).0.is_none() {
                    tripwires.push(format!(
                        "{dir}/{name}: not listed in manifest.txt (all-listed): add `{name} pass`, \
                         `unsupported  # reason` or `known-fail  # reason`"
                    ));
                }
            }
        }
        tripwires
    }
}

/// Applies a manifest expectation to what running the case gave.
fn expected_status(expect: Option<&Expect>, raw: &Status, loaded: bool) -> Status {
    match (expect, raw) {
        (None | Some(Expect::Pass), raw) => raw.clone(),
        (Some(Expect::Unsupported(_)), Status::Error(_)) if !loaded => match expect {
            Some(Expect::Unsupported(reason)) => Status::ExpectedUnsupported(reason.clone()),
            _ => raw.clone(),
        },
        (Some(Expect::Unsupported(reason)), Status::Pass) => {
            Status::Fail(format!("listed as unsupported ({reason}) but passes: update the manifest"))
        }
        (Some(Expect::Unsupported(reason)), Status::Fail(message) | Status::Error(message)) => Status::Fail(format!(
            "listed as unsupported ({reason}) but the model loads and then fails (list it as known-fail): {message}"
        )),
        (Some(Expect::KnownFail(reason)), Status::Fail(_)) => Status::KnownFail(reason.clone()),
        (Some(Expect::KnownFail(reason)), Status::Error(_)) if loaded => Status::KnownFail(reason.clone()),
        (Some(Expect::KnownFail(reason)), Status::Pass) => {
            Status::Fail(format!("listed as known-fail ({reason}) but passes: update the manifest"))
        }
        (Some(Expect::KnownFail(reason)), Status::Error(message)) => {
            Status::Error(format!("listed as known-fail ({reason}) but the model no longer loads: {message}"))
        }
        (Some(Expect::Unsupported(_) | Expect::KnownFail(_)), other) => other.clone(),
    }
}

/// `*` matches any run of characters, `?` one character, `[a-c]` a range.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let (matched, width) = match pattern.get(p) {
            Some('?') => (true, 1),
            Some('[') => match pattern[p..].iter().position(|&c| c == ']') {
                Some(close) => {
                    let class = &pattern[p + 1..p + close];
                    let hit = class.chunks(1).enumerate().any(|(idx, _)| {
                        if idx + 2 < class.len() && class[idx + 1] == '-' {
                            (class[idx]..=class[idx + 2]).contains(&text[t])
                        } else {
                            class[idx] == text[t]
                        }
                    });
                    (hit, close + 1)
                }
                None => (pattern[p] == text[t], 1),
            },
            Some('*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(&c) => (c == text[t], 1),
            None => (false, 0),
        };
        if matched {
            p += width;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
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

fn numbered_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
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
    files.into_iter().map(|(_, path)| path).collect()
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
        for (pos, file) in numbered_files(set_dir, "input_").into_iter().enumerate() {
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
        let expected_files = numbered_files(set_dir, "output_");
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
            if let Some(reason) = comparison.failure {
                return Ok(Status::Fail(format!("data set {set_idx}, output {out_idx} {name:?}: {reason}")));
            }
        }
        report.n_data_sets += 1;
    }
    Ok(Status::Pass)
}

/// The result of comparing one output.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Largest absolute difference (NaN-vs-NaN and equal infinities count 0).
    pub max_abs: f64,
    /// Largest difference in units in the last place of the dtype.
    pub max_ulp: u64,
    /// Why it fails, naming the worst element, or `None`.
    pub failure: Option<String>,
}

/// Compares `actual` to `expected`: dtype and shape exactly, values within
/// `tolerance` (NaN matches NaN, -0.0 matches 0.0).
pub fn compare(expected: &Tensor, actual: &Tensor, tolerance: Tolerance) -> Comparison {
    let mut result = Comparison { max_abs: 0.0, max_ulp: 0, failure: None };
    if expected.dtype() != actual.dtype() {
        result.failure = Some(format!("dtype {} expected, got {}", expected.dtype(), actual.dtype()));
        return result;
    }
    if expected.shape() != actual.shape() {
        result.failure = Some(format!("shape {:?} expected, got {:?}", expected.shape(), actual.shape()));
        return result;
    }
    let expected_values = expected.to_f64_vec();
    let actual_values = actual.to_f64_vec();
    let expected_ordered = ordered_bits(expected);
    let actual_ordered = ordered_bits(actual);
    let mut worst: Option<(usize, f64)> = None;
    for idx in 0..expected_values.len() {
        let (want, got) = (expected_values[idx], actual_values[idx]);
        let same = want == got || (want.is_nan() && got.is_nan());
        let abs = if same { 0.0 } else { (want - got).abs() };
        let ulp = if same { 0 } else { expected_ordered[idx].abs_diff(actual_ordered[idx]) };
        let abs_for_stats = if abs.is_nan() { f64::INFINITY } else { abs };
        result.max_abs = result.max_abs.max(abs_for_stats);
        result.max_ulp = result.max_ulp.max(ulp);
        // A non-finite value on either side matches only itself: NaN only
        // NaN, and an infinity only the same infinity. Without this rule
        // `rtol * |inf|` would accept any finite value, or even the other
        // infinity, and one ULP separates f32::MAX from +inf.
        let both_finite = want.is_finite() && got.is_finite();
        let ok = same
            || (both_finite
                && match tolerance {
                    Tolerance::Exact => false,
                    Tolerance::Close { rtol, atol } => abs <= atol + rtol * want.abs(),
                    Tolerance::Ulp(n) => ulp <= n,
                });
        // Rank failures by how far past the tolerance they are.
        let excess = if ok { 0.0 } else { abs_for_stats };
        if !ok && worst.is_none_or(|(_, worst_excess)| excess > worst_excess) {
            worst = Some((idx, excess));
        }
    }
    if let Some((idx, _)) = worst {
        let index = unravel(idx, expected.shape());
        result.failure = Some(format!(
            "worst element at index {index:?}: expected {}, got {} (abs err {:.3e}, {} ULP)",
            expected_values[idx],
            actual_values[idx],
            (expected_values[idx] - actual_values[idx]).abs(),
            expected_ordered[idx].abs_diff(actual_ordered[idx])
        ));
    }
    result
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (axis, &dim) in shape.iter().enumerate().rev() {
        if dim > 0 {
            index[axis] = flat % dim;
            flat /= dim;
        }
    }
    index
}

/// Maps each element to an integer whose difference counts representable
/// values between two floats (the ULP distance). Integers map to themselves.
fn ordered_bits(tensor: &Tensor) -> Vec<i64> {
    fn order(bits: u64, sign_bit: u64) -> i64 {
        if bits & sign_bit != 0 { -((bits & !sign_bit) as i64) } else { bits as i64 }
    }
    match tensor {
        Tensor::F32(array) => array.iter().map(|v| order(u64::from(v.to_bits()), 1 << 31)).collect(),
        Tensor::F64(array) => array.iter().map(|v| order(v.to_bits(), 1 << 63)).collect(),
        Tensor::F16(array) => array.iter().map(|v| order(u64::from(v.to_bits()), 1 << 15)).collect(),
        Tensor::BF16(array) => array.iter().map(|v| order(u64::from(v.to_bits()), 1 << 15)).collect(),
        Tensor::I8(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::I16(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::I32(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::I64(array) => array.iter().copied().collect(),
        Tensor::U8(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::U16(array) => array.iter().map(|&v| i64::from(v)).collect(),
        Tensor::U32(array) => array.iter().map(|&v| i64::from(v)).collect(),
        // Shifted by 2^63 so that the order and differences stay exact.
        Tensor::U64(array) => array.iter().map(|&v| (v ^ (1 << 63)) as i64).collect(),
        Tensor::Bool(array) => array.iter().map(|&v| i64::from(v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in [
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
    fn dtype_and_shape_must_match_exactly() {
        let f32s = Tensor::from(ndarray::array![1.0f32].into_dyn());
        let f64s = Tensor::from(ndarray::array![1.0f64].into_dyn());
        assert!(compare(&f32s, &f64s, Tolerance::DEFAULT).failure.unwrap().contains("dtype"));
        let reshaped = Tensor::from(ndarray::array![[1.0f32]].into_dyn());
        assert!(compare(&f32s, &reshaped, Tolerance::DEFAULT).failure.unwrap().contains("shape"));
    }
}
