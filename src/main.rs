//! The `onnxi` command: run, inspect, test and benchmark ONNX models.
//! A thin layer over the library; exit status 0 success, 1 a model, input
//! or test failure, 2 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use onnxi::kernels::simd::Isa;
use onnxi::{Model, Tensor};

#[derive(Parser)]
#[command(
    name = "onnxi",
    version,
    about = "Run ONNX models exported from PyTorch, and prove the results right",
    after_help = "Exit status: 0 success; 1 a model, input or test failure; 2 bad usage.\n\
                  ONNXI_SIMD=scalar|sse2|avx2|avx512 forces a SIMD path (`onnxi info` shows the one chosen)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Bad usage found after parsing (an input name the model lacks, a path
/// that does not exist): printed like other errors, exit status 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// One `-i` argument: `NAME=FILE`, or `FILE` alone for a one-input model.
#[derive(Debug, Clone)]
struct InputArg {
    name: Option<String>,
    file: PathBuf,
}

fn parse_input(text: &str) -> Result<InputArg, String> {
    match text.split_once('=') {
        Some(("", _)) => Err("no input name before '=': give NAME=FILE".into()),
        Some((name, "")) => Err(format!("no file after '{name}=': give {name}=FILE")),
        Some((name, file)) => Ok(InputArg { name: Some(name.to_string()), file: PathBuf::from(file) }),
        None if text.is_empty() => Err("empty: give NAME=FILE".into()),
        None => Ok(InputArg { name: None, file: PathBuf::from(text) }),
    }
}

/// One `--expect NAME=FILE` argument.
#[derive(Debug, Clone)]
struct ExpectArg {
    name: String,
    file: PathBuf,
}

fn parse_expect(text: &str) -> Result<ExpectArg, String> {
    match parse_input(text)? {
        InputArg { name: Some(name), file } => Ok(ExpectArg { name, file }),
        InputArg { name: None, .. } => Err("expected NAME=FILE (an output name and its reference array)".into()),
    }
}

/// One `--shape NAME=D1,D2,...` argument (`NAME=` for a 0-d input).
#[derive(Debug, Clone)]
struct ShapeArg {
    name: String,
    dims: Vec<usize>,
}

fn parse_shape(text: &str) -> Result<ShapeArg, String> {
    let (name, dims) = text.split_once('=').ok_or("expected NAME=D1,D2,... (NAME= for a 0-d input)")?;
    if name.is_empty() {
        return Err("no input name before '='".into());
    }
    let dims = if dims.trim().is_empty() {
        Vec::new()
    } else {
        dims.split(',')
            .map(|dim| dim.trim().parse::<usize>().map_err(|_| format!("{dim:?} is not a size")))
            .collect::<Result<_, _>>()?
    };
    Ok(ShapeArg { name: name.to_string(), dims })
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value >= 0.0 => Ok(value),
        _ => Err("expected a number >= 0".into()),
    }
}

/// A `--duration`: a number followed by `s`, `ms` or `us` (`5s`, `500ms`).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(number) = text.strip_suffix("ms") {
        (number, 1e-3)
    } else if let Some(number) = text.strip_suffix("us").or_else(|| text.strip_suffix("µs")) {
        (number, 1e-6)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else {
        return Err("expected a time such as 5s or 500ms (units: s, ms, us)".into());
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value > 0.0 && (value * scale).is_finite() && value * scale < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(value * scale))
        }
        _ => Err(format!("{number:?} is not a time > 0 (give e.g. 5s or 500ms)")),
    }
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(value) if value >= 1 => Ok(value),
        _ => Err("expected a whole number >= 1".into()),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on input files (or random inputs) and print (or save) its outputs.
    Run {
        /// The .onnx model.
        model: PathBuf,
        /// An input as NAME=FILE (.npy or TensorProto .pb); FILE alone when the model has one
        /// input; FILE.npz alone feeds each of its arrays to the input of that name. Each input
        /// at most once. Without -i, every input gets random values of its declared shape
        /// (a note on stderr says so).
        #[arg(short = 'i', long = "input", value_name = "NAME=FILE", value_parser = parse_input)]
        inputs: Vec<InputArg>,
        /// Shape of a random input as NAME=D1,D2,... (only without -i; needed for symbolic dims).
        #[arg(long = "shape", value_name = "NAME=D1,D2,...", value_parser = parse_shape, conflicts_with = "inputs")]
        shapes: Vec<ShapeArg>,
        /// Write each output to DIR/NAME.npy, or all of them to one archive when the path
        /// ends in .npz (read with numpy.load).
        #[arg(short = 'o', long = "output-dir", value_name = "DIR|FILE.npz")]
        output_dir: Option<PathBuf>,
        /// Compare output NAME with the reference array in FILE (.npy or .pb); exit 1
        /// naming the worst element when they differ. Each output at most once.
        #[arg(long = "expect", value_name = "NAME=FILE", value_parser = parse_expect)]
        expect: Vec<ExpectArg>,
        /// Relative tolerance of --expect (>= 0).
        #[arg(long, default_value_t = 1e-3, value_parser = non_negative, requires = "expect")]
        rtol: f64,
        /// Absolute tolerance of --expect (>= 0).
        #[arg(long, default_value_t = 1e-7, value_parser = non_negative, requires = "expect")]
        atol: f64,
    },
    /// Describe a model: opsets, inputs, outputs, nodes, and what onnxi cannot run.
    Inspect {
        /// The .onnx model.
        model: PathBuf,
        /// Print JSON instead of text (static dims as numbers, symbolic ones as strings).
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when onnxi cannot run the model.
        #[arg(long)]
        check: bool,
    },
    /// Validate a model as far as onnxi can, listing every problem found.
    ///
    /// Checks that the file decodes, its opsets are known, every node is supported at its
    /// opset, the model loads, and a type is inferred for every value. Lists every problem
    /// found on stderr (exit 1), or prints a one-line summary (exit 0).
    Check {
        /// The .onnx model.
        model: PathBuf,
    },
    /// Run conformance cases (ONNX backend layout) found at or below each PATH.
    Test {
        /// Case folders (model.onnx and test_data_set_N/), folders above them, or a case's model.onnx.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Relative tolerance (>= 0).
        #[arg(long, default_value_t = 1e-3, value_parser = non_negative)]
        rtol: f64,
        /// Absolute tolerance (>= 0).
        #[arg(long, default_value_t = 1e-7, value_parser = non_negative)]
        atol: f64,
        /// Also write a machine-readable report to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also print a table of passes per operator (`op | passed | total`;
        /// a case counts under each distinct op type of its graph).
        #[arg(long)]
        by_op: bool,
        /// Also write a self-contained HTML report to FILE (inline SVG, nothing fetched): the
        /// pass/fail matrix per op × opset × dtype, per op histograms of the error in ULP and
        /// of the absolute error, the worst cases with their values, and run times.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Time a model: per-run statistics, throughput, peak memory; --profile per node and op type.
    ///
    /// Warm-up runs, then timed runs (--iters N, or --duration TIME): per-run wall time (mean,
    /// standard deviation, min, p50, p90, p99, max), throughput (runs/s, input elements/ns),
    /// the process's peak memory (peak RSS; "unavailable" where the system does not say), the
    /// thread count and SIMD path. --profile adds the time per node and per op type.
    Bench {
        /// The .onnx model.
        model: PathBuf,
        /// Shape of a random input as NAME=D1,D2,... (needed for symbolic dims; NAME= for 0-d).
        #[arg(long = "shape", value_name = "NAME=D1,D2,...", value_parser = parse_shape)]
        shapes: Vec<ShapeArg>,
        /// A given input as NAME=FILE instead of random values; FILE alone when the model has one
        /// input; FILE.npz alone gives each of its arrays to the input of that name.
        #[arg(short = 'i', long = "input", value_name = "NAME=FILE", value_parser = parse_input)]
        inputs: Vec<InputArg>,
        /// Threads for the model's kernels, at least 1 (default: all cores).
        #[arg(long, value_parser = at_least_one)]
        threads: Option<usize>,
        /// Timed runs, at least 1.
        #[arg(long, default_value_t = 100, value_parser = at_least_one, conflicts_with = "duration")]
        iters: usize,
        /// Instead of --iters: run for this long (e.g. 5s, 500ms; at least one run).
        #[arg(long, value_name = "TIME", value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
        /// Untimed runs first.
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        /// Also time each node and each op type (name, op type, calls, total and mean µs,
        /// share of the summed node time), most total time first; measured in extra runs after
        /// the timed ones (as many, at most 1000).
        #[arg(long)]
        profile: bool,
        /// Print JSON (with everything the text shows).
        #[arg(long)]
        json: bool,
    },
    /// Print the operators onnxi supports, with opset versions and dtypes.
    Ops {
        /// Print JSON: `{"max_opset", "ops": [{"op_type", "domain", "versions": [{"version", "dtypes"}]}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Print the version, the CPU's SIMD features, the SIMD path chosen and the default thread count.
    Info,
    /// Draw activations as onnxi computes them, with their error in ULP (PNG/SVG + CSV).
    ///
    /// Per OP one figure, OP.png / OP.svg in DIR: the curve over the range computed by running a
    /// one-node model (several curves for ops with attributes, e.g. LeakyRelu alpha 0.01, 0.1,
    /// 0.3), and below it the error against a float64 reference in ULP, sampled densely (every
    /// float16/bfloat16 in the range; 2^20 points for float32/float64), its maximum marked.
    /// Softmax, LogSoftmax, Hardmax: the tutorial's [1, 2, 3, 4, 5] as bars and the largest error
    /// of each of 256 random rows. Beside each picture OP.csv holds the points drawn (values as
    /// onnxi gave them, exactly) and OP_ulp.csv the error panel. `--bench RESULTS.md` draws
    /// the speed charts of benches/compare's results instead.
    #[cfg(feature = "plot")]
    #[command(after_help = "Examples:\n  onnxi plot Relu LeakyRelu Sigmoid Tanh Softmax -o plots\n  \
                            onnxi plot Tanh --dtype bfloat16 --range=-3,3 --format svg\n  \
                            onnxi plot all -o plots\n  \
                            onnxi plot --bench benches/RESULTS.md -o benches")]
    Plot {
        /// Ops to draw (ONNX names, e.g. Relu LeakyRelu Sigmoid Tanh Softmax), or `all`.
        #[arg(required_unless_present = "bench")]
        ops: Vec<String>,
        /// The folder the pictures and CSVs go to (created if missing).
        #[arg(short = 'o', long = "output-dir", value_name = "DIR", default_value = "plots")]
        dir: PathBuf,
        /// The x range as LO,HI (also the range of the random rows' values).
        #[arg(long, value_name = "LO,HI", default_value = "-6,6", value_parser = parse_range, allow_hyphen_values = true)]
        range: (f64, f64),
        /// The element type the model runs in.
        #[arg(long, default_value = "float32", value_parser = ["float32", "float16", "bfloat16", "float64"])]
        dtype: String,
        /// Picture formats, comma-separated.
        #[arg(long, value_name = "png,svg", default_value = "png,svg", value_delimiter = ',', value_parser = parse_format)]
        format: Vec<onnxi::plot::Format>,
        /// Draw the speed charts of this benches/compare RESULTS.md instead of ops
        /// (speed_times, speed_threads and speed.csv in DIR).
        #[arg(long, value_name = "RESULTS.md", conflicts_with = "ops")]
        bench: Option<PathBuf>,
    },
}

/// A `--range LO,HI`.
#[cfg(feature = "plot")]
fn parse_range(text: &str) -> Result<(f64, f64), String> {
    let (lo, hi) = text.split_once(',').ok_or("expected LO,HI (e.g. -6,6)")?;
    let number = |text: &str| text.trim().parse::<f64>().map_err(|_| format!("{text:?} is not a number"));
    let (lo, hi) = (number(lo)?, number(hi)?);
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(format!("{lo},{hi} is empty: LO must be below HI, both finite"));
    }
    Ok((lo, hi))
}

/// One `--format` entry.
#[cfg(feature = "plot")]
fn parse_format(text: &str) -> Result<onnxi::plot::Format, String> {
    onnxi::plot::Format::parse(text).ok_or_else(|| format!("{text:?}: give png, svg or png,svg"))
}

fn main() -> ExitCode {
    // `--version` also says what the CPU offers and which path runs (only
    // when asked: finding the thread count starts the shared pool).
    let mut command = Cli::command();
    if std::env::args_os().skip(1).any(|arg| arg == "--version") {
        let long_version: &'static str = Box::leak(info_text().trim_end().to_string().into_boxed_str());
        command = command.long_version(long_version);
    }
    let parsed = command.try_get_matches().and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    if let Err(message) = onnxi::kernels::simd::requested() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(if err.downcast_ref::<Usage>().is_some() { 2 } else { 1 })
        }
    }
}

/// The SIMD path kernels use, and why.
fn simd_text() -> String {
    let active = onnxi::kernels::simd::active();
    match onnxi::kernels::simd::requested() {
        Ok(Some(isa)) if isa == active => format!("{} (ONNXI_SIMD)", active.name()),
        Ok(Some(isa)) => format!("{} (ONNXI_SIMD={} lowered to what this CPU has)", active.name(), isa.name()),
        Ok(None) => format!("{} (the best this CPU has)", active.name()),
        Err(message) => format!("{} ({message})", active.name()),
    }
}

/// The registry as JSON, ops sorted by name as in `onnxi ops`.
fn ops_json() -> serde_json::Value {
    let mut entries: Vec<&onnxi::ops::Entry> = onnxi::ops::Registry::builtin().entries().iter().collect();
    entries.sort_by_key(|entry| entry.op_type);
    let ops: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            let versions: Vec<serde_json::Value> = entry
                .versions
                .iter()
                .map(|&version| {
                    let dtypes: Vec<&str> = (entry.dtypes)(version).iter().map(|dtype| dtype.name()).collect();
                    serde_json::json!({"version": version, "dtypes": dtypes})
                })
                .collect();
            let domain = if entry.domain.is_empty() { "ai.onnx" } else { entry.domain };
            serde_json::json!({"op_type": entry.op_type, "domain": domain, "versions": versions})
        })
        .collect();
    serde_json::json!({"max_opset": onnxi::ops::MAX_OPSET, "ops": ops})
}

/// What `onnxi info` and `onnxi --version` print.
fn info_text() -> String {
    #[cfg(target_arch = "x86_64")]
    let features: Vec<&str> = [
        ("sse2", std::arch::is_x86_feature_detected!("sse2")),
        ("avx", std::arch::is_x86_feature_detected!("avx")),
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    #[cfg(not(target_arch = "x86_64"))]
    let features: Vec<&str> = Vec::new();
    let paths: Vec<&str> = Isa::supported().into_iter().map(Isa::name).collect();
    format!(
        "{}\ncpu features: {}\nsimd paths: {}\nsimd path: {}\nthreads: {} (default: all cores)\n",
        env!("CARGO_PKG_VERSION"),
        if features.is_empty() { "none that onnxi uses".to_string() } else { features.join(" ") },
        paths.join(", "),
        simd_text(),
        onnxi::kernels::Parallel::global().n_threads(),
    )
}

/// The files of `-i` arguments by input name, checked against the model:
/// every name is one of its inputs, none twice; `FILE` alone only when the
/// model has exactly one input without a default.
fn input_files(model: &Model, args: &[InputArg]) -> Result<Vec<(String, PathBuf)>> {
    let expected = || model.inputs().iter().map(|spec| spec.name.as_str()).collect::<Vec<_>>().join(", ");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for arg in args {
        let name = match &arg.name {
            Some(name) => {
                if !model.inputs().iter().any(|spec| spec.name == *name) {
                    return Err(usage(format!(
                        "-i {name}=...: unknown input {name:?} (the model expects: {})",
                        expected()
                    )));
                }
                name.clone()
            }
            None => {
                let needed: Vec<&str> =
                    model.inputs().iter().filter(|spec| !spec.has_default).map(|spec| spec.name.as_str()).collect();
                match needed[..] {
                    [only] => only.to_string(),
                    _ => {
                        return Err(usage(format!(
                            "-i {}: give it as NAME=FILE; FILE alone is for a model with one input, and this one has {} ({})",
                            arg.file.display(),
                            needed.len(),
                            needed.join(", ")
                        )));
                    }
                }
            }
        };
        if files.iter().any(|(seen, _)| *seen == name) {
            return Err(usage(format!("input {name:?} is given twice with -i")));
        }
        files.push((name, arg.file.clone()));
    }
    Ok(files)
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run { model, inputs, shapes, output_dir, expect, rtol, atol } => run(
            &model,
            &inputs,
            &shapes,
            output_dir.as_deref(),
            &expect,
            onnxi::conformance::Tolerance::Close { rtol, atol },
        ),
        Command::Inspect { model, json, check } => {
            let report = onnxi::graph::inspect::inspect_file(&model)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(if check && report.load_error.is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Check { model } => check(&model),
        Command::Test { paths, rtol, atol, json, by_op, html } => {
            test(&paths, rtol, atol, json.as_deref(), by_op, html.as_deref())
        }
        Command::Bench { model, shapes, inputs, threads, iters, duration, warmup, profile, json } => {
            let runs = match duration {
                Some(duration) => Runs::For(duration),
                None => Runs::Count(iters),
            };
            bench(&model, &shapes, &inputs, threads, BenchOptions { runs, warmup, profile, json })
        }
        Command::Ops { json: false } => {
            print!("{}", onnxi::ops::support_table());
            Ok(ExitCode::SUCCESS)
        }
        Command::Ops { json: true } => {
            println!("{}", serde_json::to_string_pretty(&ops_json())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Info => {
            print!("onnxi {}", info_text());
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "plot")]
        Command::Plot { ops, dir, range, dtype, format, bench } => plot(&ops, dir, range, &dtype, format, bench),
    }
}

/// `onnxi plot`: one figure per op, or the bench charts.
#[cfg(feature = "plot")]
fn plot(
    ops: &[String],
    dir: PathBuf,
    range: (f64, f64),
    dtype: &str,
    formats: Vec<onnxi::plot::Format>,
    bench: Option<PathBuf>,
) -> Result<ExitCode> {
    let mut formats = formats;
    formats.dedup();
    if let Some(results) = bench {
        if !results.is_file() {
            return Err(usage(format!("--bench {}: no such file", results.display())));
        }
        for path in onnxi::plot::bench::plot(&results, &dir, &formats)? {
            println!("wrote {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dtype = match dtype {
        "float16" => onnxi::DType::F16,
        "bfloat16" => onnxi::DType::BF16,
        "float64" => onnxi::DType::F64,
        _ => onnxi::DType::F32,
    };
    let names: Vec<String> = if ops.iter().any(|op| op == "all") {
        onnxi::plot::plottable().into_iter().map(str::to_string).collect()
    } else {
        ops.to_vec()
    };
    for op in &names {
        if onnxi::plot::ops::find(op).is_none() {
            return Err(usage(format!(
                "cannot plot {op:?}: not an activation onnxi declares (plottable: {})",
                onnxi::plot::plottable().join(", ")
            )));
        }
    }
    let options = onnxi::plot::Options { range, dtype, formats, dir };
    for op in &names {
        let figure = onnxi::plot::figure(op, &options)?;
        let written = onnxi::plot::write(&figure, &options)?;
        let worst = figure.errors.worst().map_or(0, |worst| worst.max_ulp);
        let worst = if worst == u64::MAX { "a NaN mismatch".to_string() } else { format!("{worst} ULP") };
        let files: Vec<String> = written.iter().map(|path| path.display().to_string()).collect();
        println!("{}: max error {worst} over {}: {}", figure.op, figure.errors.sampling, files.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn run(
    model_path: &Path,
    input_args: &[InputArg],
    shapes: &[ShapeArg],
    output_dir: Option<&Path>,
    expect: &[ExpectArg],
    tolerance: onnxi::conformance::Tolerance,
) -> Result<ExitCode> {
    let model = Model::load(model_path)?;
    let output_names = model.output_names();
    for (idx, ExpectArg { name, .. }) in expect.iter().enumerate() {
        if !output_names.contains(&name.as_str()) {
            return Err(usage(format!(
                "--expect {name}=...: unknown output {name:?} (the model's outputs: {})",
                output_names.join(", ")
            )));
        }
        if expect[..idx].iter().any(|earlier| earlier.name == *name) {
            return Err(usage(format!("output {name:?} is given twice with --expect")));
        }
    }
    let mut references: Vec<(&ExpectArg, Tensor)> = Vec::new();
    for arg in expect {
        references.push((arg, onnxi::io::tensor_file::read(&arg.file, u64::MAX)?.0));
    }
    let feeds = if input_args.is_empty() {
        let (feeds, any_random) = build_feeds(&model, shapes, Vec::new())?;
        if any_random {
            let described: Vec<String> =
                feeds.iter().map(|(name, tensor)| format!("{name}: {}{:?}", tensor.dtype(), tensor.shape())).collect();
            eprintln!("note: no -i given: running on random inputs ({})", described.join(", "));
        }
        feeds
    } else {
        read_inputs(&model, input_args)?
    };
    let outputs = model.run(feeds)?;
    let npz = output_dir.filter(|path| path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("npz")));
    let dir = output_dir.filter(|_| npz.is_none());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (name, tensor) in outputs.iter() {
        println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
        println!("{}", onnxi::tensor::print::format_tensor(tensor));
        if let Some(dir) = dir {
            let file_name = name.replace(['/', '\\', ':'], "_");
            onnxi::io::tensor_file::write_npy(&dir.join(format!("{file_name}.npy")), tensor)?;
        }
    }
    if let Some(path) = npz {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        onnxi::io::tensor_file::write_npz(path, outputs.iter())?;
    }
    let mut mismatches: Vec<String> = Vec::new();
    for (arg, reference) in &references {
        let Some(actual) = outputs.get(&arg.name) else {
            mismatches.push(format!("output {:?} was not computed", arg.name));
            continue;
        };
        let comparison = onnxi::conformance::compare(reference, actual, tolerance);
        match comparison.failure {
            None => println!(
                "expect {}: ok (max abs err {:.3e}, max {} ULP)",
                arg.name, comparison.max_abs, comparison.max_ulp
            ),
            Some(failure) => {
                println!("expect {}: MISMATCH: {failure}", arg.name);
                mismatches.push(format!("output {:?} differs from {}: {failure}", arg.name, arg.file.display()));
            }
        }
    }
    match mismatches.as_slice() {
        [] => Ok(ExitCode::SUCCESS),
        [only] => bail!("{only}"),
        [first, rest @ ..] => bail!("{first} (and {} more outputs differ)", rest.len()),
    }
}

/// `onnxi check`: every problem on stderr, or a one-line summary.
fn check(model_path: &Path) -> Result<ExitCode> {
    let report = onnxi::graph::inspect::inspect_file(model_path)?;
    let problems = report.problems();
    if !problems.is_empty() {
        eprintln!(
            "error: {}: {} problem{} found:",
            model_path.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for problem in &problems {
            eprintln!("  {problem}");
        }
        return Ok(ExitCode::from(1));
    }
    let opsets: Vec<String> = report
        .info
        .opsets
        .iter()
        .map(|(domain, version)| format!("{}={version}", if domain.is_empty() { "ai.onnx" } else { domain }))
        .collect();
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    println!(
        "{}: ok: opsets {}, {} supported, {} typed, {}, {}",
        model_path.display(),
        opsets.join(", "),
        count(report.nodes.len(), "node"),
        count(report.values.len(), "value"),
        count(report.inputs.len(), "input"),
        count(report.outputs.len(), "output")
    );
    Ok(ExitCode::SUCCESS)
}

/// What `onnxi test` says a case folder holds.
const CASE_LAYOUT: &str = "a case folder holds model.onnx and test_data_set_N/ folders of input_K.pb and output_K.pb";

/// A `test` path as a folder to search: a path that does not exist is bad
/// usage, and a case's `model.onnx` stands for its folder.
fn test_root(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !path.exists() {
        return Err(usage(format!("{}: no such file or folder", path.display())));
    }
    let folder = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let has_data_sets = std::fs::read_dir(folder).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("test_data_set_") && entry.path().is_dir())
    });
    if path.file_name().is_some_and(|name| name == "model.onnx") && has_data_sets {
        return Ok(folder.to_path_buf());
    }
    Err(usage(format!("{} is a file: give a case folder or a folder above cases ({CASE_LAYOUT})", path.display())))
}

fn test(
    paths: &[PathBuf],
    rtol: f64,
    atol: f64,
    json: Option<&Path>,
    by_op: bool,
    html: Option<&Path>,
) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let command = format!(
        "onnxi test {} --rtol {rtol} --atol {atol}",
        paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(" ")
    );
    let paths: Vec<PathBuf> = paths.iter().map(|path| test_root(path)).collect::<Result<_>>()?;
    let paths = paths.as_slice();
    let options = onnxi::conformance::Options { tolerance: onnxi::conformance::Tolerance::Close { rtol, atol } };
    // A progress bar only on a terminal; piped output stays plain lines.
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let report = onnxi::conformance::run_paths(paths, &options, |case, done, total| match &bar {
        Some(bar) => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.println(case.line());
        }
        None => println!("{}", case.line()),
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for tripwire in &report.tripwires {
        println!("TRIPWIRE {tripwire}");
    }
    if by_op {
        print!("{}", report.by_op_table());
    }
    if report.n_unsupported() > 0 {
        println!("{} expected unsupported (listed in a manifest)", report.n_unsupported());
    }
    if report.n_known_fail() > 0 {
        println!("{} known-fail (wrong results listed in a manifest: bugs)", report.n_known_fail());
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&report.to_json())?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = html {
        std::fs::write(path, onnxi::conformance::html::render(&report, &command))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{}", report.summary_line());
    Ok(if report.n_failed() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Random inputs: a small xorshift generator, so runs are repeatable.
fn random_tensor(dtype: onnxi::DType, shape: &[usize], seed: &mut u64) -> Result<Tensor> {
    // Sizes come from the model or the command line: checked, and capped
    // like any input tensor, before allocating.
    let limit = onnxi::Limits::default().max_tensor_bytes;
    let n_elems = onnxi::tensor::checked_elems(shape).with_context(|| format!("shape {shape:?} overflows"))?;
    if n_elems.saturating_mul(dtype.size().max(8)) as u64 > limit {
        bail!("shape {shape:?} needs more than the {limit}-byte tensor limit");
    }
    let mut next = || {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
    };
    let values: Vec<f64> = (0..n_elems).map(|_| next()).collect();
    let wide =
        Tensor::from(ndarray::ArrayD::from_shape_vec(shape, values).unwrap_or_else(|_| ndarray::ArrayD::zeros(shape)));
    Ok(onnxi::ops::cast::cast(&wide, dtype)?)
}

/// How many timed runs `bench` does.
#[derive(Debug, Clone, Copy)]
enum Runs {
    Count(usize),
    For(std::time::Duration),
}

struct BenchOptions {
    runs: Runs,
    warmup: usize,
    profile: bool,
    json: bool,
}

/// The feeds of `run` and `bench`: the `-i` files, and random values of
/// the declared shapes (or `--shape`) for the inputs not given. Returns the
/// feeds in the model's input order and whether any is random.
fn build_feeds(
    model: &Model,
    shapes: &[ShapeArg],
    given: Vec<(String, Tensor)>,
) -> Result<(Vec<(String, Tensor)>, bool)> {
    let mut shape_names: Vec<&str> = Vec::new();
    for ShapeArg { name, .. } in shapes {
        if !model.inputs().iter().any(|spec| spec.name == *name) {
            let expected: Vec<&str> = model.inputs().iter().map(|spec| spec.name.as_str()).collect();
            return Err(usage(format!(
                "--shape {name}=...: unknown input {name:?} (the model expects: {})",
                expected.join(", ")
            )));
        }
        if shape_names.contains(&name.as_str()) {
            return Err(usage(format!("input {name:?} is given twice with --shape")));
        }
        if given.iter().any(|(given, _)| given == name) {
            return Err(usage(format!("input {name:?} is given both with -i and with --shape")));
        }
        shape_names.push(name);
    }
    let mut given = given;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut feeds: Vec<(String, Tensor)> = Vec::new();
    let mut any_random = false;
    for spec in model.inputs() {
        if let Some(pos) = given.iter().position(|(name, _)| *name == spec.name) {
            feeds.push(given.swap_remove(pos));
            continue;
        }
        let shape_arg = shapes.iter().find(|arg| arg.name == spec.name);
        if spec.has_default && shape_arg.is_none() {
            continue;
        }
        let shape = match shape_arg {
            Some(arg) => arg.dims.clone(),
            None => {
                let dims = spec.dims.as_ref().with_context(|| {
                    format!("input {:?} has no declared shape: give --shape {}=D1,D2,...", spec.name, spec.name)
                })?;
                dims.iter()
                    .map(|dim| match dim {
                        onnxi::Dim::Fixed(size) => Ok(*size),
                        _ => bail!(
                            "input {:?} has shape {}: give --shape {}=D1,D2,...",
                            spec.name,
                            spec.shape_text(),
                            spec.name
                        ),
                    })
                    .collect::<Result<_>>()?
            }
        };
        feeds.push((spec.name.clone(), random_tensor(spec.dtype, &shape, &mut seed)?));
        any_random = true;
    }
    Ok((feeds, any_random))
}

/// The process's peak resident memory in bytes (`VmHWM` of
/// `/proc/self/status`), where the system reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Per-run statistics in µs over sorted run times.
struct Stats {
    mean: f64,
    std_dev: f64,
    min: f64,
    max: f64,
    p50: f64,
    p90: f64,
    p99: f64,
}

/// The value at quantile `q` of sorted `times` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn stats(sorted: &[f64]) -> Stats {
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let variance =
        if sorted.len() > 1 { sorted.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Stats {
        mean,
        std_dev: variance.sqrt(),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        p50: quantile(sorted, 0.5),
        p90: quantile(sorted, 0.9),
        p99: quantile(sorted, 0.99),
    }
}

fn bench(
    model_path: &Path,
    shapes: &[ShapeArg],
    input_args: &[InputArg],
    threads: Option<usize>,
    options: BenchOptions,
) -> Result<ExitCode> {
    let BenchOptions { runs, warmup, profile, json } = options;
    let builder = match threads {
        Some(n) => Model::builder().threads(n),
        None => Model::builder(),
    };
    let model = builder.load(model_path)?;
    let given = read_inputs(&model, input_args)?;
    let (feeds, _) = build_feeds(&model, shapes, given)?;
    let n_elems: usize = feeds.iter().map(|(_, tensor)| tensor.len()).sum();
    let mut session = model.session();
    for _ in 0..warmup {
        session.run(feeds.iter().map(|(name, tensor)| (name.as_str(), tensor)))?;
    }
    let mut times = Vec::new();
    let bench_started = std::time::Instant::now();
    loop {
        let done = match runs {
            Runs::Count(n) => times.len() >= n,
            Runs::For(duration) => !times.is_empty() && bench_started.elapsed() >= duration,
        };
        if done {
            break;
        }
        let started = std::time::Instant::now();
        session.run(feeds.iter().map(|(name, tensor)| (name.as_str(), tensor)))?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let iters = times.len();
    times.sort_by(f64::total_cmp);
    let Stats { mean, std_dev, min, max, p50, p90, p99 } = stats(&times);
    let per_ns = n_elems as f64 / (p50 * 1e3);
    let runs_per_s = if mean > 0.0 { 1e6 / mean } else { f64::INFINITY };
    // Profiled runs come after the timed ones, so the clock reads per node
    // do not skew the timings above.
    let node_profile = if profile {
        let mut node_profile = onnxi::Profile::default();
        for _ in 0..iters.clamp(1, 1000) {
            session.run_profiled(feeds.iter().map(|(name, tensor)| (name.as_str(), tensor)), &mut node_profile)?;
        }
        Some(node_profile)
    } else {
        None
    };
    let peak_rss = peak_rss_bytes();
    let shapes_text: Vec<String> =
        feeds.iter().map(|(name, tensor)| format!("{name}: {}{:?}", tensor.dtype(), tensor.shape())).collect();
    let n_threads = threads.unwrap_or_else(|| onnxi::kernels::Parallel::global().n_threads());
    let simd = onnxi::kernels::simd::active().name();
    let profile_rows = |entries: Vec<onnxi::NodeTime>, total: std::time::Duration| -> Vec<(onnxi::NodeTime, f64)> {
        let total = total.as_secs_f64();
        entries
            .into_iter()
            .map(|entry| {
                let share = if total > 0.0 { entry.total.as_secs_f64() / total } else { 0.0 };
                (entry, share)
            })
            .collect()
    };
    let tables = node_profile
        .as_ref()
        .map(|p| (profile_rows(p.nodes(), p.total()), profile_rows(p.by_op_type(), p.total()), p.runs()));
    if json {
        let rows_json = |rows: &[(onnxi::NodeTime, f64)], with_name: bool| -> Vec<serde_json::Value> {
            rows.iter()
                .map(|(entry, share)| {
                    let mut row = serde_json::json!({
                        "op_type": entry.op_type,
                        "calls": entry.calls,
                        "total_us": entry.total.as_secs_f64() * 1e6,
                        "mean_us": entry.mean().as_secs_f64() * 1e6,
                        "share": share,
                    });
                    if with_name {
                        row["name"] = serde_json::json!(entry.name);
                    }
                    row
                })
                .collect()
        };
        let mut report = serde_json::json!({
            "model": model_path.display().to_string(),
            "inputs": shapes_text,
            "threads": n_threads,
            "simd": simd,
            "iters": iters,
            "warmup": warmup,
            "duration_s": bench_started.elapsed().as_secs_f64(),
            "mean_us": mean,
            "std_dev_us": std_dev,
            "median_us": p50,
            "p50_us": p50,
            "p90_us": p90,
            "p99_us": p99,
            "min_us": min,
            "max_us": max,
            "runs_per_s": runs_per_s,
            "elements_per_ns": per_ns,
            "peak_rss_bytes": peak_rss,
        });
        if let Some((nodes, ops, profiled_runs)) = &tables {
            report["profile"] = serde_json::json!({
                "runs": profiled_runs,
                "nodes": rows_json(nodes, true),
                "op_types": rows_json(ops, false),
            });
        }
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{} ({})", model_path.display(), shapes_text.join(", "));
        println!("{n_threads} thread{}, SIMD path {}", if n_threads == 1 { "" } else { "s" }, simd_text());
        println!(
            "{iters} runs after {warmup} warm-up: mean {mean:.2} µs ± {std_dev:.2} µs (std dev), \
             p50 (median) {p50:.2} µs, min {min:.2} µs, p90 {p90:.2} µs, p99 {p99:.2} µs, max {max:.2} µs"
        );
        println!("throughput: {runs_per_s:.1} runs/s, {per_ns:.3} elements/ns (input elements over the median)");
        match peak_rss {
            Some(bytes) => println!("peak memory: {:.1} MiB (process peak RSS)", bytes as f64 / (1024.0 * 1024.0)),
            None => println!("peak memory: unavailable"),
        }
        if let Some((nodes, ops, profiled_runs)) = &tables {
            println!("\nprofile over {profiled_runs} extra runs, per node:");
            print!("{}", profile_table(nodes, true));
            println!("\nper op type:");
            print!("{}", profile_table(ops, false));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A profile as aligned columns, most total time first.
fn profile_table(rows: &[(onnxi::NodeTime, f64)], with_name: bool) -> String {
    let name_width = rows.iter().map(|(entry, _)| entry.name.chars().count()).max().unwrap_or(0).max(4);
    let op_width = rows.iter().map(|(entry, _)| entry.op_type.chars().count()).max().unwrap_or(0).max(7);
    let mut text = String::new();
    let head = if with_name { format!("{:name_width$}  ", "name") } else { String::new() };
    text.push_str(&format!(
        "{head}{:op_width$}  {:>7}  {:>12}  {:>10}  {:>6}\n",
        "op type", "calls", "total µs", "mean µs", "share"
    ));
    for (entry, share) in rows {
        let name = if with_name { format!("{:name_width$}  ", entry.name) } else { String::new() };
        text.push_str(&format!(
            "{name}{:op_width$}  {:>7}  {:>12.1}  {:>10.2}  {:>5.1}%\n",
            entry.op_type,
            entry.calls,
            entry.total.as_secs_f64() * 1e6,
            entry.mean().as_secs_f64() * 1e6,
            share * 100.0
        ));
    }
    text
}

/// The tensors of `-i` arguments by input name (checked as
/// [`input_files`] does); `-i FILE.npz` gives every array of the archive
/// to the input of its name.
fn read_inputs(model: &Model, input_args: &[InputArg]) -> Result<Vec<(String, Tensor)>> {
    let (archives, singles): (Vec<InputArg>, Vec<InputArg>) =
        input_args.iter().cloned().partition(|arg| arg.name.is_none() && onnxi::io::tensor_file::is_npz(&arg.file));
    let mut given: Vec<(String, Tensor)> = Vec::new();
    for (name, file) in input_files(model, &singles)? {
        given.push((name, onnxi::io::tensor_file::read(&file, u64::MAX)?.0));
    }
    for arg in archives {
        // A deflated member can expand far beyond its file size: capped as
        // the model caps an input.
        for (name, tensor) in onnxi::io::tensor_file::read_npz(&arg.file, onnxi::Limits::default().max_tensor_bytes)? {
            if !model.inputs().iter().any(|spec| spec.name == name) {
                let expected: Vec<&str> = model.inputs().iter().map(|spec| spec.name.as_str()).collect();
                return Err(usage(format!(
                    "-i {}: array {name:?} is not an input of the model (it expects: {})",
                    arg.file.display(),
                    expected.join(", ")
                )));
            }
            if given.iter().any(|(seen, _)| *seen == name) {
                return Err(usage(format!("input {name:?} is given twice with -i (once in {})", arg.file.display())));
            }
            given.push((name, tensor));
        }
    }
    Ok(given)
}
