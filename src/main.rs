//! The `onnxi` command: run, inspect, test and benchmark ONNX models.
//! A thin layer over the library; exit status 0 success, 1 a model, input
//! or test failure, 2 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use onnxi::{Model, Tensor};

#[derive(Parser)]
#[command(name = "onnxi", version, about = "Run ONNX models exported from PyTorch, and prove the results right")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on input files and print (or save) its outputs.
    Run {
        /// The .onnx model.
        model: PathBuf,
        /// An input as NAME=FILE (.npy or TensorProto .pb); FILE alone when the model has one input.
        #[arg(short = 'i', long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Write each output to DIR/NAME.npy.
        #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
    /// Describe a model: opsets, inputs, outputs, nodes, and what onnxi cannot run.
    Inspect {
        /// The .onnx model.
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run conformance cases (ONNX backend layout) found at or below each PATH.
    Test {
        /// Case folders, or folders above them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Relative tolerance.
        #[arg(long, default_value_t = 1e-3)]
        rtol: f64,
        /// Absolute tolerance.
        #[arg(long, default_value_t = 1e-7)]
        atol: f64,
        /// Also write a machine-readable report to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also print a table of passes per operator (`op | passed | total`;
        /// a case counts under each distinct op type of its graph).
        #[arg(long)]
        by_op: bool,
    },
    /// Time a model: warm-up, then per-run wall time (median, min, p90) and elements/ns.
    Bench {
        /// The .onnx model.
        model: PathBuf,
        /// Shape of a random input as NAME=D1,D2,... (needed for symbolic dims).
        #[arg(long = "shape", value_name = "NAME=D1,D2,...")]
        shapes: Vec<String>,
        /// A given input as NAME=FILE instead of random values.
        #[arg(short = 'i', long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Threads for the model's kernels (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Timed runs.
        #[arg(long, default_value_t = 100)]
        iters: usize,
        /// Untimed runs first.
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the operators onnxi supports, with opset versions and dtypes.
    Ops,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run { model, inputs, output_dir } => run(&model, &inputs, output_dir.as_deref()),
        Command::Inspect { model, json } => {
            let report = onnxi::graph::inspect::inspect_file(&model)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { paths, rtol, atol, json, by_op } => test(&paths, rtol, atol, json.as_deref(), by_op),
        Command::Bench { model, shapes, inputs, threads, iters, warmup, json } => {
            bench(&model, &shapes, &inputs, threads, iters, warmup, json)
        }
        Command::Ops => {
            print!("{}", onnxi::ops::support_table());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run(model_path: &Path, input_args: &[String], output_dir: Option<&Path>) -> Result<ExitCode> {
    let model = Model::load(model_path)?;
    let mut feeds: Vec<(String, Tensor)> = Vec::new();
    for arg in input_args {
        let (name, file) = match arg.split_once('=') {
            Some((name, file)) => (name.to_string(), file),
            None => {
                let needed: Vec<&onnxi::InputSpec> = model.inputs().iter().filter(|spec| !spec.has_default).collect();
                if needed.len() != 1 {
                    bail!("input {arg:?}: give it as NAME=FILE (the model has {} inputs)", needed.len());
                }
                (needed[0].name.clone(), arg.as_str())
            }
        };
        let (tensor, _) = onnxi::io::tensor_file::read(Path::new(file), u64::MAX)?;
        feeds.push((name, tensor));
    }
    let outputs = model.run(feeds)?;
    if let Some(dir) = output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (name, tensor) in outputs.iter() {
        println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
        println!("{}", onnxi::tensor::print::format_tensor(tensor));
        if let Some(dir) = output_dir {
            let file_name = name.replace(['/', '\\', ':'], "_");
            onnxi::io::tensor_file::write_npy(&dir.join(format!("{file_name}.npy")), tensor)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn test(paths: &[PathBuf], rtol: f64, atol: f64, json: Option<&Path>, by_op: bool) -> Result<ExitCode> {
    use std::io::IsTerminal;
    if !(rtol >= 0.0 && atol >= 0.0) {
        bail!("--rtol and --atol must be non-negative numbers");
    }
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
    Ok(onnxi::ops::cast::cast(&wide, dtype))
}

fn parse_shape(text: &str) -> Result<(String, Vec<usize>)> {
    let (name, dims) = text.split_once('=').with_context(|| format!("--shape {text:?}: expected NAME=D1,D2,..."))?;
    let dims = if dims.trim().is_empty() {
        Vec::new()
    } else {
        dims.split(',')
            .map(|dim| dim.trim().parse::<usize>().with_context(|| format!("--shape {text:?}: {dim:?} is not a size")))
            .collect::<Result<_>>()?
    };
    Ok((name.to_string(), dims))
}

fn bench(
    model_path: &Path,
    shapes: &[String],
    input_args: &[String],
    threads: Option<usize>,
    iters: usize,
    warmup: usize,
    json: bool,
) -> Result<ExitCode> {
    if iters == 0 {
        bail!("--iters must be at least 1");
    }
    let builder = match threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Model::builder().threads(n),
        None => Model::builder(),
    };
    let model = builder.load(model_path)?;
    let shapes: Vec<(String, Vec<usize>)> = shapes.iter().map(|text| parse_shape(text)).collect::<Result<_>>()?;
    let mut given: Vec<(String, Tensor)> = Vec::new();
    for arg in input_args {
        let (name, file) = arg.split_once('=').with_context(|| format!("-i {arg:?}: expected NAME=FILE"))?;
        given.push((name.to_string(), onnxi::io::tensor_file::read(Path::new(file), u64::MAX)?.0));
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut feeds: Vec<(String, Tensor)> = Vec::new();
    for spec in model.inputs().iter().filter(|spec| !spec.has_default) {
        if let Some((_, tensor)) = given.iter().find(|(name, _)| *name == spec.name) {
            feeds.push((spec.name.clone(), tensor.clone()));
            continue;
        }
        let shape = match shapes.iter().find(|(name, _)| *name == spec.name) {
            Some((_, dims)) => dims.clone(),
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
    }
    let n_elems: usize = feeds.iter().map(|(_, tensor)| tensor.len()).sum();
    let mut session = model.session();
    for _ in 0..warmup {
        session.run(feeds.iter().map(|(name, tensor)| (name.as_str(), tensor)))?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let started = std::time::Instant::now();
        session.run(feeds.iter().map(|(name, tensor)| (name.as_str(), tensor)))?;
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    let min = times[0];
    let per_ns = n_elems as f64 / (median * 1e3);
    let shapes_text: Vec<String> =
        feeds.iter().map(|(name, tensor)| format!("{name}: {}{:?}", tensor.dtype(), tensor.shape())).collect();
    if json {
        let report = serde_json::json!({
            "model": model_path.display().to_string(),
            "inputs": shapes_text,
            "threads": threads,
            "iters": iters,
            "warmup": warmup,
            "median_us": median,
            "min_us": min,
            "p90_us": p90,
            "elements_per_ns": per_ns,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{} ({})", model_path.display(), shapes_text.join(", "));
        println!(
            "{iters} runs after {warmup} warm-up: median {median:.2} µs, min {min:.2} µs, p90 {p90:.2} µs, {per_ns:.3} elements/ns"
        );
    }
    Ok(ExitCode::SUCCESS)
}
