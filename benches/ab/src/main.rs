//! Times one kernel of two onnxi versions in alternating batches on the
//! same inputs and prints their speeds and ratio (see run.sh).

use std::time::Instant;

/// Deterministic inputs uniform in [lo, hi) (xorshift, as the benches).
fn inputs(len: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * (hi - lo) + lo
        })
        .collect()
}

/// Best time of `reps` calls, in seconds.
fn best_of(reps: usize, mut call: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn arg<T: std::str::FromStr>(args: &[String], idx: usize, default: T) -> T {
    args.get(idx).and_then(|arg| arg.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kernel = args.first().map_or("", String::as_str).to_string();
    let n: usize = arg(&args, 1, 16_000);
    let lo: f32 = arg(&args, 2, -10.0);
    let hi: f32 = arg(&args, 3, 10.0);
    let rows: usize = arg(&args, 4, 1).max(1);
    let len = n * rows;
    let src = inputs(len, lo, hi);
    let mut dst = vec![0f32; len];
    // Batches of ~1M elements of work, 41 of each version, interleaved.
    let reps = (1_000_000 / len.max(1)).clamp(3, 2000);
    let rounds = 41;
    // The unary op of each version, or None for softmax.
    let unary = match kernel.as_str() {
        "relu" => Some((base::kernels::unary::Unary::Relu, head::kernels::unary::Unary::Relu)),
        "sigmoid" => Some((base::kernels::unary::Unary::Sigmoid, head::kernels::unary::Unary::Sigmoid)),
        "tanh" => Some((base::kernels::unary::Unary::Tanh, head::kernels::unary::Unary::Tanh)),
        "softmax" => None,
        _ => {
            eprintln!("usage: benches/ab/run.sh REV relu|sigmoid|tanh|softmax [N] [LO HI] [ROWS]");
            std::process::exit(2);
        }
    };
    let base_isa = base::kernels::simd::Isa::best();
    let head_isa = head::kernels::simd::Isa::best();
    let base_par = base::kernels::Parallel::serial();
    let head_par = head::kernels::Parallel::serial();
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        if let Some((base_op, head_op)) = unary {
            times[0].push(best_of(reps, || base::kernels::unary::apply_f32_isa(base_isa, base_op, &src, &mut dst)));
            times[1].push(best_of(reps, || head::kernels::unary::apply_f32_isa(head_isa, head_op, &src, &mut dst)));
        } else {
            times[0].push(best_of(reps, || base::kernels::softmax::softmax_into(&src, &mut dst, n, 1, &base_par)));
            times[1].push(best_of(reps, || head::kernels::softmax::softmax_into(&src, &mut dst, n, 1, &head_par)));
        }
        std::hint::black_box(&dst);
    }
    for series in &mut times {
        series.sort_by(f64::total_cmp);
    }
    let median = |series: &[f64]| series[series.len() / 2];
    let rate = |secs: f64| len as f64 / secs / 1e9;
    let shape = if unary.is_none() { format!("[{rows},{n}]") } else { format!("[{n}]") };
    println!(
        "{kernel} {shape} in [{lo},{hi}), 1 thread, {} ({rounds} alternating rounds, best of {reps} calls each):",
        head_isa.name()
    );
    println!(
        "  base {:.2} el/ns, head {:.2} el/ns (medians over rounds)",
        rate(median(&times[0])),
        rate(median(&times[1]))
    );
    println!(
        "  head/base speed {:.3} (medians), {:.3} (best rounds)",
        median(&times[0]) / median(&times[1]),
        times[0][0] / times[1][0]
    );
}
