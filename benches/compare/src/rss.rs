//! Peak memory per network and runtime, each measured in a child process of
//! its own (this binary, run with `--rss-child`), since a process's peak
//! resident set (`VmHWM`) only ever grows.
//!
//! The child reads the model bytes and the input, initialises the runtime's
//! library (ONNX Runtime's shared library for `ORT`), and reads its resident
//! set: the baseline. It then loads the model, runs it [`RUNS`] times and
//! reads its peak resident set. The difference is the memory the runtime
//! needed to hold the model and run it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use crate::models::Case;
use crate::systems::{Io, OnnxiSession, Ort, Runner, Tract, load_onnxi};

/// Runs per child after loading.
const RUNS: usize = 5;

/// One runtime's figures in kB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    baseline_kb: u64,
    peak_kb: u64,
}

fn status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

/// The child's body: `SYSTEM MODEL INPUT_NAME OUTPUT_NAME INPUT_PB THREADS`;
/// prints `baseline_kb peak_kb`.
pub fn child(args: Vec<String>) -> Result<()> {
    let [system, model, input_name, output_name, input_pb, threads] = &args[..] else {
        bail!("--rss-child wants SYSTEM MODEL INPUT_NAME OUTPUT_NAME INPUT_PB THREADS, got {args:?}");
    };
    let threads: usize = threads.parse().context("THREADS")?;
    let bytes = std::fs::read(model).with_context(|| format!("reading {model}"))?;
    let (tensor, _) = onnxi::io::tensor_file::read_default(input_pb).map_err(|e| anyhow!("{input_pb}: {e}"))?;
    let input = tensor.as_f32().map_err(|e| anyhow!("{input_pb}: {e}"))?.to_owned();
    drop(tensor);
    let io = Io { input: input_name.clone(), output: output_name.clone() };
    let memory = match system.as_str() {
        "onnxi" => {
            let baseline_kb = status_kb("VmRSS:")?;
            let model = load_onnxi(&bytes, threads)?;
            let mut session = OnnxiSession::new(&model, &input, io);
            run(&mut session)?;
            Memory { baseline_kb, peak_kb: status_kb("VmHWM:")? }
        }
        "ORT" => {
            let dylib = std::env::var_os("ORT_DYLIB_PATH").context("ORT_DYLIB_PATH is not set")?;
            let env = ort::init_from(&dylib)
                .map_err(|e| anyhow!("loading ONNX Runtime: {e}"))?
                .with_name("onnxi-compare-rss")
                .build()
                .map_err(|e| anyhow!("ONNX Runtime environment: {e}"))?;
            let baseline_kb = status_kb("VmRSS:")?;
            let mut ort = Ort::new(&env, &bytes, &input, threads, io)?;
            run(&mut ort)?;
            Memory { baseline_kb, peak_kb: status_kb("VmHWM:")? }
        }
        "tract" => {
            let baseline_kb = status_kb("VmRSS:")?;
            let mut tract = Tract::new(&bytes, &input)?;
            run(&mut tract)?;
            Memory { baseline_kb, peak_kb: status_kb("VmHWM:")? }
        }
        other => bail!("unknown system {other:?}"),
    };
    println!("{} {}", memory.baseline_kb, memory.peak_kb);
    Ok(())
}

fn run(runner: &mut dyn Runner) -> Result<()> {
    for _ in 0..RUNS {
        runner.prepare()?;
        runner.run()?;
    }
    Ok(())
}

fn measure(system: &str, case: &Case, threads: usize) -> Result<Memory> {
    let net = case.network.as_ref().context("not a network case")?;
    let input_pb = net.model.with_file_name("test_data_set_0").join("input_0.pb");
    let exe = std::env::current_exe().context("locating the harness binary")?;
    let output = std::process::Command::new(exe)
        .arg("--rss-child")
        .args([system, &path_text(&net.model), &net.input_name, &net.output_name, &path_text(&input_pb)])
        .arg(threads.to_string())
        .output()
        .context("starting the child")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let numbers: Vec<u64> = stdout.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let [baseline_kb, peak_kb] = numbers[..] else { bail!("unexpected child output {stdout:?}") };
    Ok(Memory { baseline_kb, peak_kb })
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The peak-memory table over the network cases, at `threads` threads.
pub fn table(cases: &[Case], threads: usize) -> String {
    let systems = ["onnxi", "ORT", "tract"];
    let mut out = format!(
        "Peak resident memory added by loading the model and running it {RUNS} times, at {threads} thread(s), \
         each in a fresh process (`VmHWM` after the runs minus `VmRSS` before the load; the model file and the \
         input are read before the baseline), MB:\n\n\
         | network | model file MB | onnxi | ORT | tract | ORT / onnxi | tract / onnxi |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for case in cases.iter().filter(|case| case.network.is_some()) {
        eprintln!("peak memory: {}", case.label);
        let file_mb = case
            .network
            .as_ref()
            .and_then(|net| std::fs::metadata(&net.model).ok())
            .map(|m| format!("{:.1}", m.len() as f64 / 1e6))
            .unwrap_or_else(|| "?".into());
        let added: Vec<Option<f64>> = systems
            .iter()
            .map(|system| match measure(system, case, threads) {
                Ok(m) => Some(m.peak_kb.saturating_sub(m.baseline_kb) as f64 / 1024.0),
                Err(e) => {
                    eprintln!("  {system}: {e:#}");
                    None
                }
            })
            .collect();
        let cell = |mb: Option<f64>| mb.map(|mb| format!("{mb:.1}")).unwrap_or_else(|| "error".into());
        let ratio = |other: Option<f64>| match (other, added[0]) {
            (Some(o), Some(x)) if x > 0.0 => format!("{:.2}", o / x),
            _ => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {file_mb} | {} | {} | {} | {} | {} |",
            case.label,
            cell(added[0]),
            cell(added[1]),
            cell(added[2]),
            ratio(added[1]),
            ratio(added[2])
        );
    }
    out
}
