//! The `onnxi` command: run, inspect, test and benchmark ONNX models.
//! A thin layer over the library; exit status 0 success, 1 a model, input
//! or test failure, 2 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use onnxi::{Model, Tensor};

#[derive(Parser)]
#[command(
    name = "onnxi",
    version,
    about = "Run ONNX models exported from PyTorch, and prove the results right"
)]
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
    },
    /// Print the operators onnxi supports, with opset versions and dtypes.
    Ops,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
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
        Command::Run {
            model,
            inputs,
            output_dir,
        } => run(&model, &inputs, output_dir.as_deref()),
        Command::Inspect { model, json } => {
            let report = onnxi::inspect::inspect_file(&model)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{}", report.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Test {
            paths,
            rtol,
            atol,
            json,
        } => test(&paths, rtol, atol, json.as_deref()),
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
                let needed: Vec<&onnxi::InputSpec> = model
                    .inputs()
                    .iter()
                    .filter(|spec| !spec.has_default)
                    .collect();
                if needed.len() != 1 {
                    bail!(
                        "input {arg:?}: give it as NAME=FILE (the model has {} inputs)",
                        needed.len()
                    );
                }
                (needed[0].name.clone(), arg.as_str())
            }
        };
        let (tensor, _) = onnxi::tensor_file::read(Path::new(file), u64::MAX)?;
        feeds.push((name, tensor));
    }
    let outputs = model.run(feeds)?;
    if let Some(dir) = output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (name, tensor) in outputs.iter() {
        println!("{name}: {} {:?}", tensor.dtype(), tensor.shape());
        println!("{}", onnxi::format::format_tensor(tensor));
        if let Some(dir) = output_dir {
            let file_name = name.replace(['/', '\\', ':'], "_");
            onnxi::tensor_file::write_npy(&dir.join(format!("{file_name}.npy")), tensor)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn test(paths: &[PathBuf], rtol: f64, atol: f64, json: Option<&Path>) -> Result<ExitCode> {
    use std::io::IsTerminal;
    if !(rtol >= 0.0 && atol >= 0.0) {
        bail!("--rtol and --atol must be non-negative numbers");
    }
    let options = onnxi::conformance::Options {
        tolerance: onnxi::conformance::Tolerance::Close { rtol, atol },
    };
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
    if report.n_unsupported() > 0 {
        println!(
            "{} expected unsupported (listed in a manifest)",
            report.n_unsupported()
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&report.to_json())?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("{}", report.summary_line());
    Ok(if report.n_failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
