//! Measures the f32 activation kernels against an f64 reference over every
//! one of the 2^32 float32 inputs, on each SIMD path this CPU has.
//!
//! ```text
//! cargo run --release --example ulp_sweep            # all 2^32 inputs
//! cargo run --release --example ulp_sweep -- --step 4099          # every 4099th input
//! cargo run --release --example ulp_sweep -- --only sigmoid,elu --isa avx512
//! ```
//!
//! Every declared elementwise operator is swept
//! (`onnxi::ops::elementwise::declared`), with its ONNX default
//! attributes, against its declared float64 reference rounded to f32.
//! The error is the distance in units in the last place, counting
//! the representable floats between the two results (+0 and -0 are the
//! same). A NaN must give NaN and a number must give a number; any
//! mismatch there is reported as an infinite error. Outputs of the
//! inexact monotone ones must be monotone in x, and must not leave the range the
//! reference covers over the swept inputs (e.g. [0, 1] for Sigmoid):
//! violations are counted.
//!
//! The results for the README come from this program; it takes about 7
//! minutes on two cores (rayon uses them all).

use std::time::Instant;

use onnxi::kernels::simd::Isa;
use onnxi::ops::elementwise::{Declared, declared};
use rayon::prelude::*;

/// Inputs per work item: one contiguous run of bit patterns.
const CHUNK: u64 = 1 << 20;

fn reference(op: &dyn Declared, x: f32) -> f32 {
    op.reference(f64::from(x)) as f32
}

/// Position of `x` on the line of f32 values (-0 and +0 share 0).
fn ordinal(x: f32) -> i64 {
    let bits = x.to_bits();
    let magnitude = i64::from(bits & 0x7fff_ffff);
    if bits >> 31 == 1 { -magnitude } else { magnitude }
}

/// Error in ULP; `u64::MAX` for a NaN mismatch.
fn ulp_error(got: f32, want: f32) -> u64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0,
        (false, false) => ordinal(got).abs_diff(ordinal(want)),
        _ => u64::MAX,
    }
}

/// What one function on one path did over a range of inputs.
#[derive(Debug, Clone, Copy)]
struct Stats {
    max_ulp: u64,
    worst_input: f32,
    worst_got: f32,
    worst_want: f32,
    /// Inputs whose error is above 1 ULP.
    above_one: u64,
    out_of_range: u64,
    not_monotone: u64,
    /// The first input where the output went the wrong way, if any.
    first_violation: Option<f32>,
    /// First and last output of the range, to check monotonicity across
    /// ranges.
    first: f32,
    last: f32,
}

impl Stats {
    fn merge(self, other: Stats) -> Stats {
        let (max_ulp, worst_input, worst_got, worst_want) = if other.max_ulp > self.max_ulp {
            (other.max_ulp, other.worst_input, other.worst_got, other.worst_want)
        } else {
            (self.max_ulp, self.worst_input, self.worst_got, self.worst_want)
        };
        Stats {
            max_ulp,
            worst_input,
            worst_got,
            worst_want,
            above_one: self.above_one + other.above_one,
            out_of_range: self.out_of_range + other.out_of_range,
            not_monotone: self.not_monotone + other.not_monotone,
            first_violation: self.first_violation.or(other.first_violation),
            first: self.first,
            last: other.last,
        }
    }
}

/// Whether `op`'s outputs are checked for shape: the exact functions
/// (Relu, LeakyRelu) equal their reference, so they are not, and the
/// functions with a dip (Gelu, Swish, Mish, HardSwish) are not monotone.
fn checks_shape(op: &dyn Declared) -> bool {
    op.max_ulp() > 0 && op.monotone()
}

/// Whether `y` lies in the closed range of the reference's outputs over
/// the swept inputs: an approximation must not leave it (sigmoid above 1,
/// tanh below -1).
fn in_range(range: (f32, f32), y: f32) -> bool {
    y.is_nan() || (range.0..=range.1).contains(&y)
}

/// The range of the reference over all inputs, from its value at the
/// infinities (every inexact function declared today is monotone).
fn reference_range(op: &dyn Declared) -> (f32, f32) {
    let (lo, hi) = (reference(op, f32::NEG_INFINITY), reference(op, f32::INFINITY));
    (lo.min(hi), lo.max(hi))
}

/// Whether `next` may follow `prev` for consecutive inputs of one sign
/// (bit patterns increasing: x grows for positive, shrinks for negative).
fn ordered(prev: f32, next: f32, negative: bool) -> bool {
    if prev.is_nan() || next.is_nan() {
        return true;
    }
    if negative { next <= prev } else { next >= prev }
}

fn sweep_chunk(isa: Isa, op: &dyn Declared, inputs: &[f32], wants: &[f32], outputs: &mut [f32]) -> Stats {
    op.apply_f32_isa(isa, inputs, outputs);
    let range = reference_range(op);
    let mut stats = Stats {
        max_ulp: 0,
        worst_input: inputs[0],
        worst_got: outputs[0],
        worst_want: wants[0],
        above_one: 0,
        out_of_range: 0,
        not_monotone: 0,
        first_violation: None,
        first: outputs[0],
        last: outputs[outputs.len() - 1],
    };
    for (idx, ((&x, &got), &want)) in inputs.iter().zip(outputs.iter()).zip(wants).enumerate() {
        let error = ulp_error(got, want);
        if error > stats.max_ulp {
            (stats.max_ulp, stats.worst_input, stats.worst_got, stats.worst_want) = (error, x, got, want);
        }
        stats.above_one += u64::from(error > 1);
        if checks_shape(op) {
            stats.out_of_range += u64::from(!in_range(range, got));
            if idx > 0 && !ordered(outputs[idx - 1], got, x.is_sign_negative()) {
                stats.not_monotone += 1;
                stats.first_violation = stats.first_violation.or(Some(x));
            }
        }
    }
    stats
}

/// Command-line options: `--step N`, `--only NAME[,NAME]`, `--isa NAME[,NAME]`.
struct Options {
    step: u64,
    funcs: Vec<Box<dyn Declared>>,
    isas: Vec<Isa>,
    /// Requested paths this CPU lacks.
    skipped: Vec<Isa>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|arg| arg == flag).and_then(|idx| args.get(idx + 1));
    let step = value("--step").and_then(|step| step.parse().ok()).unwrap_or(1u64).max(1);
    let funcs = declared()
        .into_iter()
        .filter(|op| {
            let name = op.name().to_lowercase();
            value("--only").is_none_or(|names| names.split(',').any(|want| name.starts_with(&want.to_lowercase())))
        })
        .collect();
    let requested: Vec<Isa> = match value("--isa") {
        Some(names) => Isa::ALL.into_iter().filter(|isa| names.split(',').any(|want| want == isa.name())).collect(),
        None => Isa::ALL.to_vec(),
    };
    // A path the CPU lacks is named as skipped, not swept on a lower path.
    let (isas, skipped): (Vec<Isa>, Vec<Isa>) = requested.into_iter().partition(|isa| isa.is_supported());
    Options { step, funcs, isas, skipped }
}

fn main() {
    let Options { step, funcs, isas, skipped } = options();
    let total: u64 = 1 << 32;
    let n_chunks = total / CHUNK;
    let names = |isas: &[Isa]| {
        if isas.is_empty() {
            "none".to_owned()
        } else {
            isas.iter().map(|isa| isa.name()).collect::<Vec<_>>().join(", ")
        }
    };
    println!(
        "ulp_sweep: {} inputs (every {step}th bit pattern), SIMD paths: tested {}; skipped (CPU lacks them): {}",
        total / step,
        names(&isas),
        names(&skipped)
    );
    let started = Instant::now();
    // Per chunk, per (func, isa): stats. Chunks stay in bit-pattern order
    // so that monotonicity can be checked across their borders.
    let per_chunk: Vec<Vec<Stats>> = (0..n_chunks)
        .into_par_iter()
        .map(|chunk_idx| {
            let start = chunk_idx * CHUNK;
            let first = start.div_ceil(step) * step;
            let inputs: Vec<f32> =
                (first..start + CHUNK).step_by(step as usize).map(|bits| f32::from_bits(bits as u32)).collect();
            if inputs.is_empty() {
                return Vec::new();
            }
            let mut outputs = vec![0f32; inputs.len()];
            let mut wants = vec![0f32; inputs.len()];
            let mut stats = Vec::new();
            for op in &funcs {
                for (want, &x) in wants.iter_mut().zip(&inputs) {
                    *want = reference(op.as_ref(), x);
                }
                for &isa in &isas {
                    stats.push(sweep_chunk(isa, op.as_ref(), &inputs, &wants, &mut outputs));
                }
            }
            stats
        })
        .collect();

    println!();
    println!("| function | path | max ULP | at x | got | want | inputs > 1 ULP | out of range | not monotone |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut column = 0;
    for op in &funcs {
        let name = op.label();
        for &isa in &isas {
            // The sign flips between chunk n_chunks/2 - 1 and n_chunks/2,
            // where ordering restarts, so merge the halves separately.
            let half = per_chunk.len() / 2;
            let mut border_violations = 0;
            let mut merged: Option<Stats> = None;
            for (idx, chunk) in per_chunk.iter().enumerate() {
                let Some(&stats) = chunk.get(column) else { continue };
                if let Some(prev) = merged
                    && idx != half
                    && checks_shape(op.as_ref())
                    && !ordered(prev.last, stats.first, idx >= half)
                {
                    border_violations += 1;
                }
                merged = Some(match merged {
                    Some(prev) => prev.merge(stats),
                    None => stats,
                });
            }
            if let Some(stats) = merged {
                let max =
                    if stats.max_ulp == u64::MAX { "NaN mismatch".to_string() } else { stats.max_ulp.to_string() };
                println!(
                    "| {name} | {} | {max} | {:e} | {:e} | {:e} | {} | {} | {} |",
                    isa.name(),
                    stats.worst_input,
                    stats.worst_got,
                    stats.worst_want,
                    stats.above_one,
                    stats.out_of_range,
                    stats.not_monotone + border_violations,
                );
                if let Some(x) = stats.first_violation {
                    println!("|   first not monotone at x = {x:e} | | | | | | | | |");
                }
            }
            column += 1;
        }
    }
    println!();
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}
