//! Side-by-side timing of onnxi, ONNX Runtime and tract in one process: the
//! activation cases of issue 4, a row per declared elementwise activation,
//! broadcasting Add/Mul, and the network fixtures (with their peak memory,
//! each runtime in a child process). Run it through `benches/compare/run.sh`,
//! which provides ONNX Runtime's shared library; see README.md beside it.

mod models;
mod rss;
mod systems;
mod timing;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use ndarray::ArrayD;

use models::Case;
use systems::{Io, OnnxiModelRun, OnnxiSession, Ort, Runner, Tract, load_onnxi};
use timing::{Plan, Stream, StreamKind};

const USAGE: &str = "\
usage: run.sh [--write-results] [--model-run] [--filter TEXT] [--threads 1,2] [--regimes LIST] [--rounds N]
              [--batch-ms MS] [--gap-ms MS] [--idle-ms MS]

  --write-results  also write benches/RESULTS.md
  --model-run      also time onnxi's Model::run (owned input, fresh outputs)
  --filter TEXT    only the cases whose label contains TEXT
  --threads LIST   thread counts to compare (default 1,2)
  --regimes LIST   any of back-to-back, idle, busy (default all three):
                     back-to-back  runs one after another in batches of ~batch-ms
                     idle          every timed run follows an idle pause of idle-ms
                     busy          back to back while a competing process spins on one core
  --rounds N       interleaved rounds per case (default 9, at least 5)
  --batch-ms MS    target duration of one timed batch (default 50)
  --gap-ms MS      pause after each batch so that spinning worker threads settle (default 20)
  --idle-ms MS     the idle regime's pause before every run (default 20)";

/// How calls arrive while a case is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Regime {
    /// Runs back to back in batches (worker threads stay awake).
    BackToBack,
    /// Every run after an idle pause (worker threads have gone to sleep).
    Idle,
    /// Back to back while another process keeps one core busy.
    Busy,
}

impl Regime {
    const ALL: [Regime; 3] = [Regime::BackToBack, Regime::Idle, Regime::Busy];

    fn name(self) -> &'static str {
        match self {
            Regime::BackToBack => "back-to-back",
            Regime::Idle => "idle",
            Regime::Busy => "busy",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Regime::BackToBack => "Back to back",
            Regime::Idle => "After an idle pause",
            Regime::Busy => "With a competing busy process",
        }
    }

    fn parse(text: &str) -> Option<Regime> {
        Regime::ALL.into_iter().find(|regime| regime.name() == text)
    }
}

/// A child process (this binary, run with `--spin`) that keeps one core
/// busy until dropped. It is not pinned: the OS places it, as it would any
/// other busy process on the machine, and with two cores it takes one of
/// them from whichever thread it competes with. The child also exits when
/// its stdin closes, so it never outlives the harness.
struct BusyProcess(std::process::Child);

impl BusyProcess {
    fn start() -> Result<BusyProcess> {
        let exe = std::env::current_exe().context("locating the harness binary for the busy process")?;
        let child = std::process::Command::new(exe)
            .arg("--spin")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .context("starting the busy process")?;
        // Let it get scheduled and reach full speed before timing starts.
        std::thread::sleep(Duration::from_millis(50));
        Ok(BusyProcess(child))
    }
}

impl Drop for BusyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The busy process's body: spin until stdin closes (the harness ended or
/// dropped the handle) or it is killed.
fn spin_forever() -> ! {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

/// Largest |a - b| allowed, as a fraction of max(1, |reference|).
const TOLERANCE: f32 = 1e-5;

/// The same for the network rows: dozens of layers, each summing in its
/// own order in each runtime (the fixtures hold onnxi to PyTorch within
/// rtol 1e-3, atol 1e-4).
const NETWORK_TOLERANCE: f32 = 1e-4;

struct Args {
    write_results: bool,
    filter: Option<String>,
    threads: Vec<usize>,
    rounds: usize,
    batch_ms: u64,
    gap_ms: u64,
    idle_ms: u64,
    regimes: Vec<Regime>,
    model_run: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        write_results: false,
        filter: None,
        threads: vec![1, 2],
        rounds: 9,
        batch_ms: 50,
        gap_ms: 20,
        idle_ms: 20,
        regimes: Regime::ALL.to_vec(),
        model_run: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--write-results" => args.write_results = true,
            "--model-run" => args.model_run = true,
            "--filter" => args.filter = Some(value()?),
            "--threads" => {
                args.threads = value()?
                    .split(',')
                    .map(|t| t.trim().parse::<usize>().ok().filter(|&n| n > 0))
                    .collect::<Option<Vec<_>>>()
                    .with_context(|| format!("--threads wants a list like 1,2\n{USAGE}"))?;
            }
            "--rounds" => args.rounds = value()?.parse::<usize>().context("--rounds wants a number")?.max(5),
            "--batch-ms" => args.batch_ms = value()?.parse::<u64>().context("--batch-ms wants a number")?.max(1),
            "--gap-ms" => args.gap_ms = value()?.parse::<u64>().context("--gap-ms wants a number")?,
            "--idle-ms" => args.idle_ms = value()?.parse::<u64>().context("--idle-ms wants a number")?.max(1),
            "--regimes" => {
                args.regimes = value()?
                    .split(',')
                    .map(|name| Regime::parse(name.trim()))
                    .collect::<Option<Vec<_>>>()
                    .filter(|regimes| !regimes.is_empty())
                    .with_context(|| format!("--regimes wants a list like back-to-back,idle,busy\n{USAGE}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

/// Deterministic inputs, uniform in [-10, 10): both signs, and far enough
/// into the tails that sigmoid and tanh saturate.
fn make_input(shape: &[usize], seed: u64, positive: bool) -> ArrayD<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    ArrayD::from_shape_simple_fn(shape.to_vec(), || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = ((state >> 40) as f32 / (1u64 << 24) as f32) * 20.0 - 10.0;
        // (0, 10] for the ops defined on positive numbers only.
        if positive { x.abs().max(1e-3) } else { x }
    })
}

/// Agreement of one system's output with onnxi's.
#[derive(Debug, Clone, Copy)]
struct Agreement {
    max_abs_diff: f32,
    ok: bool,
}

fn agreement(reference: &[f32], other: &[f32], tolerance: f32) -> Agreement {
    if reference.len() != other.len() {
        return Agreement { max_abs_diff: f32::INFINITY, ok: false };
    }
    let mut max_abs_diff = 0.0f32;
    let mut ok = true;
    for (&r, &o) in reference.iter().zip(other) {
        let diff = (r - o).abs();
        // NaN in either output counts as disagreement unless both are NaN
        // (a NaN difference is not within tolerance).
        let same_nan = r.is_nan() && o.is_nan();
        let within = diff <= tolerance * r.abs().max(1.0);
        if !same_nan && !within {
            ok = false;
        }
        if !same_nan {
            max_abs_diff = max_abs_diff.max(if diff.is_nan() { f32::INFINITY } else { diff });
        }
    }
    Agreement { max_abs_diff, ok }
}

/// One row of the table: one case at one thread count. Index 0 of every
/// vector is onnxi's session, the reference for ratios and agreement.
struct Row {
    case: String,
    n_elems: usize,
    stream_bound: bool,
    threads: usize,
    regime: Regime,
    /// Median nanoseconds per run, per system.
    times: Vec<Result<f64>>,
    /// Process CPU nanoseconds per run (all threads, pauses included).
    cpu: Vec<Option<f64>>,
    /// Agreement with onnxi's output, per system (`None` for onnxi itself,
    /// or when either could not run).
    agreements: Vec<Option<Agreement>>,
}

/// The systems compared, in column order; the first is the reference.
fn system_names(args: &Args) -> Vec<&'static str> {
    let mut names = vec!["onnxi"];
    if args.model_run {
        names.push("onnxi Model::run");
    }
    names.extend(["ORT", "tract"]);
    names
}

fn as_runner<R: Runner>(runner: &mut Result<R>) -> Result<&mut dyn Runner> {
    match runner {
        Ok(r) => Ok(r),
        Err(e) => Err(anyhow!("{e:#}")),
    }
}

fn run_case(
    case: &Case,
    case_idx: usize,
    args: &Args,
    env: &ort::environment::Environment,
    plan: &Plan,
    overhead_ns: f64,
) -> Vec<Row> {
    let names = system_names(args);
    let bytes = match case.model_bytes() {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("  skipped: {e:#}");
            return Vec::new();
        }
    };
    let input = match &case.network {
        Some(net) => net.input.clone(),
        None => make_input(&case.shape, case_idx as u64 + 1, case.positive),
    };
    let (input_name, output_name) = case.io_names();
    let io = Io { input: input_name.to_string(), output: output_name.to_string() };
    let tolerance = if case.network.is_some() { NETWORK_TOLERANCE } else { TOLERANCE };
    // tract runs these ops on the calling thread whatever the setting, so one
    // instance serves every row (and is timed afresh in each).
    let mut tract = Tract::new(&bytes, &input);
    let mut rows = Vec::new();
    for &threads in &args.threads {
        let started = Instant::now();
        let model = load_onnxi(&bytes, threads);
        let mut session =
            model.as_ref().map(|m| OnnxiSession::new(m, &input, io.clone())).map_err(|e| anyhow!("{e:#}"));
        let mut model_run =
            model.as_ref().map(|m| OnnxiModelRun::new(m, &input, io.clone())).map_err(|e| anyhow!("{e:#}"));
        let mut ort = Ort::new(env, &bytes, &input, threads, io.clone());

        let mut runners: Vec<Result<&mut dyn Runner>> = vec![as_runner(&mut session)];
        if args.model_run {
            runners.push(as_runner(&mut model_run));
        }
        runners.push(as_runner(&mut ort));
        runners.push(as_runner(&mut tract));

        // One untimed run each: the outputs for the agreement check (a
        // system that fails here is not timed).
        let outputs: Vec<Result<Vec<f32>>> = runners
            .iter_mut()
            .map(|runner| match runner {
                Ok(r) => r.output(),
                Err(e) => Err(anyhow!("{e:#}")),
            })
            .collect();
        let agreements: Vec<Option<Agreement>> = outputs
            .iter()
            .enumerate()
            .map(|(idx, output)| match (idx, &outputs[0], output) {
                (1.., Ok(reference), Ok(output)) => Some(agreement(reference, output, tolerance)),
                _ => None,
            })
            .collect();
        let mut timed_idx = Vec::new();
        let mut timed: Vec<&mut dyn Runner> = Vec::new();
        let mut failed: Vec<Option<anyhow::Error>> = Vec::new();
        for (idx, (runner, output)) in runners.into_iter().zip(outputs).enumerate() {
            match runner.and_then(|r| output.map(|_| r)) {
                Ok(r) => {
                    timed_idx.push(idx);
                    timed.push(r);
                    failed.push(None);
                }
                Err(e) => failed.push(Some(e)),
            }
        }
        for &regime in &args.regimes {
            let regime_started = Instant::now();
            let mut times: Vec<Result<f64>> = failed
                .iter()
                .map(|failure| Err(failure.as_ref().map_or_else(|| anyhow!("not timed"), |e| anyhow!("{e:#}"))))
                .collect();
            let mut regime_plan = plan.clone();
            if regime == Regime::Idle {
                regime_plan.pause_each = Duration::from_millis(args.idle_ms);
            }
            let busy = match regime {
                Regime::Busy => match BusyProcess::start() {
                    Ok(busy) => Some(busy),
                    Err(e) => {
                        eprintln!("  busy regime skipped: {e:#}");
                        continue;
                    }
                },
                _ => None,
            };
            let mut cpu: Vec<Option<f64>> = vec![None; times.len()];
            for (&idx, result) in timed_idx.iter().zip(timing::measure(&mut timed, &regime_plan, overhead_ns)) {
                cpu[idx] = result.as_ref().ok().map(|t| t.cpu_ns);
                times[idx] = result.map(|t| t.ns);
            }
            drop(busy);

            let summary: Vec<String> =
                names.iter().zip(&times).map(|(name, t)| format!("{name} {}", cell_us(t))).collect();
            eprintln!(
                "  {threads} threads, {}: {}  ({:.1} s)",
                regime.name(),
                summary.join(", "),
                regime_started.elapsed().as_secs_f64()
            );
            for (name, result) in names.iter().zip(&times) {
                if let Err(e) = result {
                    eprintln!("    {name} failed: {e:#}");
                }
            }
            rows.push(Row {
                case: case.label.clone(),
                n_elems: case.n_elems(),
                stream_bound: case.stream_bound,
                threads,
                regime,
                times,
                cpu,
                agreements: agreements.clone(),
            });
        }
        drop(timed);
        eprintln!("  ({:.1} s for {threads} threads)", started.elapsed().as_secs_f64());
    }
    rows
}

fn fmt_us(ns: f64) -> String {
    let us = ns / 1e3;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        let whole = us.round() as u64;
        let digits = whole.to_string();
        let mut out = String::new();
        for (idx, ch) in digits.chars().enumerate() {
            if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    }
}

fn cell_us(result: &Result<f64>) -> String {
    match result {
        Ok(ns) => fmt_us(*ns),
        Err(_) => "error".into(),
    }
}

fn ratio(other: &Result<f64>, onnxi: &Result<f64>) -> Option<f64> {
    match (other, onnxi) {
        (Ok(o), Ok(x)) if *x > 0.0 => Some(o / x),
        _ => None,
    }
}

fn cell_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into())
}

fn cell_diff(agreement: &Option<Agreement>) -> String {
    match agreement {
        Some(a) if a.ok => format!("{:.1e}", a.max_abs_diff),
        Some(a) => format!("**{:.1e} ✗**", a.max_abs_diff),
        None => "—".into(),
    }
}

fn geomean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

fn table(rows: &[&Row], names: &[&str], threads_list: &[usize]) -> String {
    let others = &names[1..];
    let mut out = String::from("| case | threads |");
    for name in names {
        let _ = write!(out, " {name} µs |");
    }
    for name in others {
        let _ = write!(out, " {name} / onnxi |");
    }
    for name in others {
        let _ = write!(out, " max abs diff {name} |");
    }
    out.push_str("\n|---|---:|");
    out.push_str(&"---:|".repeat(names.len() + 2 * others.len()));
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| {} | {} |", row.case, row.threads);
        for time in &row.times {
            let _ = write!(out, " {} |", cell_us(time));
        }
        for time in &row.times[1..] {
            let _ = write!(out, " {} |", cell_ratio(ratio(time, &row.times[0])));
        }
        for agreement in &row.agreements[1..] {
            let _ = write!(out, " {} |", cell_diff(agreement));
        }
        out.push('\n');
    }
    out.push('\n');
    for &threads in threads_list {
        let means: Vec<String> = others
            .iter()
            .enumerate()
            .map(|(idx, name)| {
                let ratios: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.threads == threads)
                    .filter_map(|r| ratio(&r.times[idx + 1], &r.times[0]))
                    .collect();
                format!("{name} / onnxi {} ({} cases)", cell_ratio(geomean(&ratios)), ratios.len())
            })
            .collect();
        let plural = if threads == 1 { "" } else { "s" };
        let _ = writeln!(out, "Geometric mean at {threads} thread{plural}: {}.  ", means.join(", "));
    }
    out
}

fn stream_text(streams: &[Stream]) -> String {
    let mut out =
        String::from("| stream over 16M float32 | threads | best µs | GB/s (read + write) |\n|---|---:|---:|---:|\n");
    for s in streams {
        let kind = match s.kind {
            StreamKind::Copy => "copy `dst ← src`",
            StreamKind::InPlace => "in place `x ← -x`",
        };
        let _ =
            writeln!(out, "| {kind} | {} | {} | {:.1} |", s.threads, fmt_us(s.best.as_nanos() as f64), s.gb_per_s());
    }
    out
}

/// onnxi's bandwidth on the cases issue 4 holds against the stream figures.
fn bandwidth_text(rows: &[&Row], streams: &[Stream]) -> String {
    let mut out = String::new();
    for row in rows.iter().filter(|r| r.stream_bound) {
        let Ok(ns) = row.times[0] else { continue };
        let gb_per_s = (2 * row.n_elems * 4) as f64 / ns;
        let share = |kind: StreamKind| {
            streams
                .iter()
                .find(|s| s.kind == kind && s.threads == row.threads)
                .map(|s| format!("{:.0}%", 100.0 * gb_per_s / s.gb_per_s()))
                .unwrap_or_else(|| "—".into())
        };
        let plural = if row.threads == 1 { "" } else { "s" };
        let _ = writeln!(
            out,
            "- {}, {} thread{plural}: onnxi {gb_per_s:.1} GB/s, {} of the copy stream, {} of the in-place stream.",
            row.case,
            row.threads,
            share(StreamKind::Copy),
            share(StreamKind::InPlace),
        );
    }
    out
}

/// onnxi's own scaling: its time at the fewest threads over its time at
/// the most, per case (issue 13 wants ≥ 1.6 at 2 threads on cases of 1M
/// elements or more, and never below 1 with a busy core).
fn scaling_text(rows: &[&Row], threads_list: &[usize]) -> String {
    let (Some(&few), Some(&many)) = (threads_list.iter().min(), threads_list.iter().max()) else {
        return String::new();
    };
    if few == many {
        return String::new();
    }
    let mut out = format!(
        "onnxi at {many} threads against {few} (time at {few} / time at {many}; above 1 means the extra threads help):\n\n\
         | case | elements | onnxi {few}t µs | onnxi {many}t µs | speed-up |\n|---|---:|---:|---:|---:|\n"
    );
    for row in rows.iter().filter(|row| row.threads == few) {
        let Some(other) = rows.iter().find(|r| r.case == row.case && r.threads == many) else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            row.case,
            row.n_elems,
            cell_us(&row.times[0]),
            cell_us(&other.times[0]),
            cell_ratio(ratio(&row.times[0], &other.times[0]))
        );
    }
    out
}

/// CPU time per run against wall time per run, per system: where a
/// runtime's threads keep a core busy between calls (spinning through the
/// idle pause), the CPU time exceeds the wall time by the pause.
fn cpu_time_text(rows: &[&Row], names: &[&str]) -> String {
    let mut out = String::from(
        "Process CPU time per run (every thread, the pause before the run included; from `/proc/self/stat`, \
         10 ms ticks summed over all batches) against the median wall time per run, µs:\n\n| case | threads |",
    );
    for name in names {
        let _ = write!(out, " {name} wall | {name} CPU |");
    }
    out.push_str("\n|---|---:|");
    out.push_str(&"---:|".repeat(2 * names.len()));
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| {} | {} |", row.case, row.threads);
        for (time, cpu) in row.times.iter().zip(&row.cpu) {
            let cpu = cpu.map(fmt_us).unwrap_or_else(|| "—".into());
            let _ = write!(out, " {} | {cpu} |", cell_us(time));
        }
        out.push('\n');
    }
    out
}

/// What a regime means, for the results file.
fn regime_text(regime: Regime, args: &Args) -> String {
    match regime {
        Regime::BackToBack => format!(
            "Runs one after another in batches of about {} ms, {} ms pause between batches: \
             worker threads are awake when a run starts.",
            args.batch_ms, args.gap_ms
        ),
        Regime::Idle => format!(
            "Every timed run follows an idle pause of {} ms ({} runs per batch), as calls to a service arrive: \
             worker threads have gone to sleep and must be woken.",
            args.idle_ms,
            timing::IDLE_RUNS
        ),
        Regime::Busy => format!(
            "Back to back (batches of about {} ms) while a second process, started and stopped by the harness \
             around each measurement (`onnxi-compare --spin`, unpinned, normal priority), spins on one core: \
             a thread of the runtime may be descheduled in the middle of a run.",
            args.batch_ms
        ),
    }
}

fn cpu_text() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| l.strip_prefix("flags").and_then(|r| r.split_once(':')).map(|(_, v)| v))
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    let simd: Vec<&str> = ["avx512f", "avx2", "fma"].into_iter().filter(|f| flags.contains(f)).collect();
    let n_cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    // The last-level cache decides whether the 16M streams (128 MB of
    // traffic over 64 MB buffers) run from DRAM or from cache.
    let llc = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size")
        .map(|size| format!(", last-level cache {}", size.trim()))
        .unwrap_or_default();
    format!("{model}, {n_cpus} logical CPUs, {}{llc}", simd.join(" "))
}

/// Version of a package as resolved in this harness's Cargo.lock.
fn locked_version(name: &str) -> String {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap_or_default();
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle).and_then(|at| lock[at + needle.len()..].split('"').next()).unwrap_or("?").to_string()
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn onnxi_revision() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let repo = repo.to_string_lossy();
    let head = command_output("git", &["-C", &repo, "rev-parse", "--short", "HEAD"]);
    let dirty = command_output("git", &["-C", &repo, "status", "--porcelain", "--", "src", "Cargo.toml"]);
    if dirty.is_empty() || dirty == "?" { head } else { format!("{head} + uncommitted changes in src/") }
}

/// The 1-minute load average, to tell a quiet run from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Current UTC date and time as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--spin") {
        spin_forever();
    }
    if std::env::args().nth(1).as_deref() == Some("--rss-child") {
        return rss::child(std::env::args().skip(2).collect());
    }
    let args = parse_args()?;
    let dylib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .context("ORT_DYLIB_PATH is not set: run this through benches/compare/run.sh, which provides it")?;
    let env = ort::init_from(&dylib)
        .map_err(|e| anyhow!("loading ONNX Runtime from {}: {e}", dylib.display()))?
        .with_name("onnxi-compare")
        .build()
        .map_err(|e| anyhow!("ONNX Runtime environment: {e}"))?;

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/networks");
    let mut all_cases = models::all_cases();
    all_cases.extend(models::network_cases(&fixtures)?);
    let cases: Vec<Case> = all_cases
        .into_iter()
        .filter(|c| args.filter.as_deref().is_none_or(|f| c.label.contains(f)))
        .collect();
    if cases.is_empty() {
        bail!("no case matches the filter");
    }
    let plan = Plan {
        batch: Duration::from_millis(args.batch_ms),
        rounds: args.rounds,
        gap: Duration::from_millis(args.gap_ms),
        pause_each: Duration::ZERO,
    };
    let started = Instant::now();

    let load_before = load_average();
    eprintln!("stream bandwidth (16M float32) …");
    let max_threads = args.threads.iter().copied().max().unwrap_or(1);
    let mut stream_threads: Vec<usize> = vec![1, 2];
    if !stream_threads.contains(&max_threads) {
        stream_threads.push(max_threads);
    }
    let streams: Vec<Stream> = [StreamKind::Copy, StreamKind::InPlace]
        .into_iter()
        .flat_map(|kind| stream_threads.iter().map(move |&t| timing::stream(kind, 16_000_000, t, 15)))
        .collect();
    let overhead_ns = timing::timer_overhead_ns();
    eprintln!("timer overhead {overhead_ns:.1} ns per run (subtracted)");

    let mut rows = Vec::new();
    for (idx, case) in cases.iter().enumerate() {
        eprintln!("[{}/{}] {}", idx + 1, cases.len(), case.label);
        rows.extend(run_case(case, idx, &args, &env, &plan, overhead_ns));
    }

    let names = system_names(&args);
    let mut results_table = String::new();
    for &regime in &args.regimes {
        let regime_rows: Vec<&Row> = rows.iter().filter(|row| row.regime == regime).collect();
        let cpu = if regime == Regime::Idle { format!("\n{}", cpu_time_text(&regime_rows, &names)) } else { String::new() };
        let _ = write!(
            results_table,
            "## {}\n\n{}\n\n{}\n{}{cpu}\n",
            regime.title(),
            regime_text(regime, &args),
            table(&regime_rows, &names, &args.threads),
            scaling_text(&regime_rows, &args.threads)
        );
    }
    let max_threads_memory = args.threads.iter().copied().max().unwrap_or(1);
    let memory = if cases.iter().any(|case| case.network.is_some()) {
        format!("## Peak memory of the networks\n\n{}\n", rss::table(&cases, max_threads_memory))
    } else {
        String::new()
    };
    let first_regime: Vec<&Row> = rows.iter().filter(|row| Some(&row.regime) == args.regimes.first()).collect();
    let stream = format!("{}\n{}", stream_text(&streams), bandwidth_text(&first_regime, &streams));
    println!("{results_table}\n{memory}\n{stream}");
    eprintln!("total {:.0} s", started.elapsed().as_secs_f64());

    // A network row where only tract disagrees (ONNX Runtime agreeing with
    // onnxi, which the fixtures hold to PyTorch) is tract's error: marked in
    // the table and reported, not fatal.
    let tract_idx = names.len() - 1;
    let first_rows = || rows.iter().filter(|r| r.regime == args.regimes[0]);
    let bad = |r: &Row, idx: usize| r.agreements[idx].is_some_and(|a| !a.ok);
    let disagreements: Vec<&str> = first_rows()
        .filter(|r| {
            (0..r.agreements.len()).any(|idx| bad(r, idx) && !(idx == tract_idx && r.case.starts_with("net ")))
        })
        .map(|r| r.case.as_str())
        .collect();
    for r in first_rows().filter(|r| r.case.starts_with("net ") && bad(r, tract_idx)) {
        eprintln!("note: tract's output differs from onnxi's and ONNX Runtime's on {}", r.case);
    }

    if args.write_results {
        let command = std::env::var("COMPARE_COMMAND").unwrap_or_else(|_| {
            std::iter::once("onnxi-compare".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ")
        });
        let dylib_name = dylib.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut doc = String::new();
        let _ = write!(
            doc,
            "# onnxi vs ONNX Runtime vs tract\n\n\
             Written by `benches/compare` (see its README.md); rerun to refresh.\n\n\
             - Date: {date}\n\
             - CPU: {cpu}; 1-minute load average {load_before} at the start, {load_after} at the end \
             (the harness adds about 1 while it runs; more means other work shared the machine and the figures are noisier)\n\
             - Command: `{command}`\n\
             - rustc: {rustc}\n\
             - onnxi: {onnxi}; ONNX Runtime: `{dylib_name}` through `ort` {ort}; tract-onnx {tract}\n\
             - Method: {rounds} interleaved rounds per case and regime (order rotating), median µs per run, in each of the regimes \
             {regimes} (described under each table); inputs uniform in [-10, 10) (Log, Sqrt, Reciprocal: (0, 10]), float32, \
             opset 13 (the one-op activation rows: opset 22; Add/Mul: the second operand is an initializer)\n\n\
             Notes:\n\
             - Ratios above 1 mean onnxi is faster.\n\
             - tract runs these ops on one thread whatever the setting; its rows are separate measurements of the same single-threaded plan.\n\
             - Every system borrows the caller's input: onnxi through one reusable `Session` per row (outputs kept between runs), \
             ONNX Runtime through a `TensorRef` made inside the timed region, tract through a shared `TValue`. \
             `onnxi Model::run` (with `--model-run`) takes its input by value, so it gets a fresh copy made outside the timed region.\n\
             - Max abs diff is against onnxi's output; ✗ marks a difference above {tol:.0e} × max(1, |onnxi|).\n\n\
             {results_table}\n\
             {memory}\
             ## Machine limits\n\n\
             A Relu or LeakyRelu over 16M float32 reads and writes 128 MB like these passes: the copy time is the floor \
             for a fresh output buffer, the in-place time for one that reuses its input.\n\n\
             {stream}",
            date = utc_now(),
            cpu = cpu_text(),
            load_after = load_average(),
            rustc = command_output("rustc", &["--version"]),
            onnxi = onnxi_revision(),
            ort = locked_version("ort"),
            tract = locked_version("tract-onnx"),
            rounds = plan.rounds,
            regimes = args.regimes.iter().map(|r| format!("`{}`", r.name())).collect::<Vec<_>>().join(", "),
            tol = TOLERANCE,
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../RESULTS.md");
        std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }

    if !disagreements.is_empty() {
        bail!("outputs disagree with onnxi's on: {}", disagreements.join("; "));
    }
    Ok(())
}
