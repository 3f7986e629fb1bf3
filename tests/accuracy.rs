//! The README's accuracy claims, asserted (issue 10): the error bounds in
//! its "Accuracy and speed" table hold on every SIMD path this CPU has, and
//! the table states exactly the bounds asserted here.
//!
//! ```text
//! cargo test --release --test accuracy -- --nocapture   # what CI runs
//! cargo run --release --example ulp_sweep               # all 2^32 inputs, minutes
//! ```
//!
//! - Every declared elementwise operator (`onnxi::ops::elementwise::declared`:
//!   Relu, LeakyRelu, Sigmoid, Tanh, Elu, ...) with its default attributes,
//!   on a strided sample of all 2^32 float32 bit patterns (every
//!   [`STRIDE`]th, about 44M inputs, plus the special values in
//!   [`SPECIALS`]), against its float64 reference rounded to float32 (part
//!   of its declaration, written independently of the kernels), within the
//!   bound its declaration states and the README repeats.
//! - Softmax on about 10M random elements per path (lanes of 3 to 20K
//!   elements, contiguous and strided, centres within ±1000), against a
//!   float64 softmax of the same float32 inputs.
//! - Each test prints the paths it ran and the paths it skipped because the
//!   CPU lacks them (`SIMD paths: tested scalar, sse2, avx2, avx512;
//!   skipped: none`), and the largest error per path.
//! - A path the CPU lacks, asked for through the API or `ONNXI_SIMD`, runs
//!   as the best path below it, never as itself.
//!
//! In a debug build (`cargo test`) the samples are about 100 times smaller,
//! so that the README's test command stays quick; the sizes that back the
//! README are the release ones.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{D, attr_i, bytes, single_op};

use onnxi::kernels::Parallel;
use onnxi::kernels::simd::{self, Isa};
use onnxi::kernels::softmax;
use onnxi::ops::elementwise::{Declared, declared, find_declared};

/// Every `STRIDE`th bit pattern, from 0, is sampled. 97 is odd (indeed
/// prime), so the sample is not aliased with the bit layout: the low
/// mantissa bits take every value, where an even stride would only ever
/// see even mantissas. It is far smaller than a binade (2^23 patterns), so
/// every exponent of both signs is hit about 86,000 times, subnormals
/// included, and so are both NaN ranges (quiet and signalling payloads of
/// both signs, 2^22 patterns each). No odd stride can land on both
/// infinities (their patterns differ by 2^31), so they and the other
/// single points that matter are added as [`SPECIALS`];
/// `sample_covers_every_binade_subnormals_infinities_and_nans` checks all
/// this.
const STRIDE: u32 = if cfg!(debug_assertions) { 9973 } else { 97 };

/// Bit patterns that must be in the sample whatever the stride.
const SPECIALS: [u32; 20] = [
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x0000_0001, // smallest subnormal
    0x8000_0001,
    0x007f_ffff, // largest subnormal
    0x807f_ffff,
    0x0080_0000, // smallest normal
    0x8080_0000,
    0x7f7f_ffff, // largest finite
    0xff7f_ffff,
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x7f80_0001, // signalling NaN, smallest payload
    0xff80_0001,
    0x7fbf_ffff, // signalling NaN, largest payload
    0xffbf_ffff,
    0x7fc0_0000, // quiet NaN
    0xffc0_0000,
    0x7fff_ffff, // quiet NaN, largest payload
    0xffff_ffff,
];

/// The slope LeakyRelu is tested (and the README states it) with: its
/// ONNX default, which the declared handle carries.
const ALPHA: f32 = 0.01;

/// The bounds asserted here, in ULP (0: exact), by the README's name for
/// each function: each declared operator's own, then Softmax's;
/// `readme_states_the_tested_bounds` keeps the README's table equal to
/// this list.
fn bounds() -> Vec<(String, u64)> {
    let mut bounds: Vec<(String, u64)> = declared().iter().map(|op| (op.name().to_owned(), op.max_ulp())).collect();
    bounds.push(("Softmax".to_owned(), SOFTMAX_ULP));
    bounds.push(("LogSoftmax".to_owned(), LOG_SOFTMAX_ULP));
    bounds
}

/// LogSoftmax's bound in ULP (it computes in float64 and rounds once).
const LOG_SOFTMAX_ULP: u64 = 1;

/// Softmax's bound in ULP.
const SOFTMAX_ULP: u64 = 3;

/// Prints which paths a test runs and which it skips, and returns the
/// ones to run: those the CPU has. A path the CPU lacks is reported as
/// skipped, never run as a lower path (the kernels would run
/// `isa.lowered()`) and counted.
fn tested_paths(test: &str) -> Vec<Isa> {
    let (tested, skipped): (Vec<Isa>, Vec<Isa>) = Isa::ALL.into_iter().partition(|isa| isa.is_supported());
    println!("{test}: SIMD paths: tested {}; skipped: {}", names(&tested), names(&skipped));
    for &isa in &tested {
        assert_eq!(isa.lowered(), isa, "{isa:?} is supported but would run as another path");
    }
    tested
}

fn names(isas: &[Isa]) -> String {
    if isas.is_empty() {
        return "none".to_owned();
    }
    isas.iter().map(|isa| isa.name()).collect::<Vec<_>>().join(", ")
}

/// Position of `x` on the line of float32 values (-0 and +0 share 0).
fn ordinal(x: f32) -> i64 {
    let bits = x.to_bits();
    let magnitude = i64::from(bits & 0x7fff_ffff);
    if bits >> 31 == 1 { -magnitude } else { magnitude }
}

/// Distance in ULP; 0 for two NaN, `u64::MAX` when only one is NaN.
fn ulp_error(got: f32, want: f32) -> u64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0,
        (false, false) => ordinal(got).abs_diff(ordinal(want)),
        _ => u64::MAX,
    }
}

/// The float64 reference, rounded once to float32.
fn reference(op: &dyn Declared, x: f32) -> f32 {
    op.reference(f64::from(x)) as f32
}

/// The sampled bit patterns, in chunks of at most `CHUNK` inputs.
fn sample_chunks() -> impl Iterator<Item = Vec<f32>> {
    const CHUNK: u64 = 1 << 20;
    let count = u64::from(u32::MAX / STRIDE) + 1;
    let strided = (0..count.div_ceil(CHUNK)).map(move |chunk| {
        let range = chunk * CHUNK..((chunk + 1) * CHUNK).min(count);
        range.map(|idx| f32::from_bits((idx * u64::from(STRIDE)) as u32)).collect()
    });
    strided.chain(std::iter::once(SPECIALS.iter().map(|&bits| f32::from_bits(bits)).collect()))
}

/// The largest error of one function on one path, and where.
#[derive(Debug, Clone, Copy, Default)]
struct Worst {
    ulp: u64,
    x: f32,
    got: f32,
    want: f32,
}

impl Worst {
    fn update(&mut self, x: f32, got: f32, want: f32) {
        let ulp = ulp_error(got, want);
        if ulp > self.ulp {
            *self = Worst { ulp, x, got, want };
        }
    }
}

/// Runs `op` over the sample on every path the CPU has, asserting the
/// README's bound (and bit-exactness, NaN for NaN, for the exact ones).
fn check_unary(op: &dyn Declared) {
    let name = op.label();
    let paths = tested_paths(&name);
    let allowed = op.max_ulp();
    let mut worst: BTreeMap<Isa, Worst> = paths.iter().map(|&isa| (isa, Worst::default())).collect();
    let mut n_inputs = 0usize;
    for inputs in sample_chunks() {
        n_inputs += inputs.len();
        let wants: Vec<f32> = inputs.iter().map(|&x| reference(op, x)).collect();
        let mut outputs = vec![0f32; inputs.len()];
        for &isa in &paths {
            op.apply_f32_isa(isa, &inputs, &mut outputs);
            let path_worst = worst.entry(isa).or_default();
            for ((&x, &got), &want) in inputs.iter().zip(&outputs).zip(&wants) {
                path_worst.update(x, got, want);
                if allowed == 0 {
                    let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
                    assert!(same, "{name} on {}: f({x:e}) = {got:e}, want {want:e} bit for bit", isa.name());
                }
            }
        }
    }
    let summary: Vec<String> =
        worst.iter().map(|(isa, worst)| format!("{} {} ULP (x = {:e})", isa.name(), worst.ulp, worst.x)).collect();
    println!("{name}: {n_inputs} inputs (every {STRIDE}th bit pattern + specials), max error {}", summary.join(", "));
    for (isa, worst) in worst {
        assert!(
            worst.ulp <= allowed,
            "{name} on {}: f({:e}) = {:e}, want {:e}: {} ULP, README says {allowed}",
            isa.name(),
            worst.x,
            worst.got,
            worst.want,
            worst.ulp
        );
    }
}

#[test]
fn every_declared_elementwise_op_within_its_bound() {
    for op in declared() {
        check_unary(op.as_ref());
    }
}

#[test]
fn sample_covers_every_binade_subnormals_infinities_and_nans() {
    // Per sign and exponent field: hits. Exponent 0 is zero and the
    // subnormals, 255 the infinities and NaNs.
    let mut per_binade = [[0u64; 256]; 2];
    let mut seen = std::collections::BTreeSet::new();
    let (mut subnormals, mut quiet_nans, mut signalling_nans) = ([0u64; 2], [0u64; 2], [0u64; 2]);
    for chunk in sample_chunks() {
        for x in chunk {
            let bits = x.to_bits();
            let sign = (bits >> 31) as usize;
            per_binade[sign][((bits >> 23) & 0xff) as usize] += 1;
            subnormals[sign] += u64::from(x.is_subnormal());
            quiet_nans[sign] += u64::from(x.is_nan() && bits & 0x0040_0000 != 0);
            signalling_nans[sign] += u64::from(x.is_nan() && bits & 0x0040_0000 == 0);
            if SPECIALS.contains(&bits) {
                seen.insert(bits);
            }
        }
    }
    for sign in 0..2 {
        for (exponent, &hits) in per_binade[sign].iter().enumerate() {
            assert!(hits > 0, "no input with sign {sign} and exponent field {exponent}");
        }
        assert!(subnormals[sign] > 0 && quiet_nans[sign] > 0 && signalling_nans[sign] > 0, "sign {sign}");
    }
    assert_eq!(seen.len(), SPECIALS.len(), "special values missing from the sample");
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }
}

/// Softmax in float64 of each lane of `data` viewed as `[outer, n, inner]`,
/// rounded to float32.
fn softmax_reference(data: &[f32], n: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for (slab_idx, slab) in data.chunks(n * inner).enumerate() {
        for col in 0..inner {
            let lane: Vec<f64> = (0..n).map(|row| f64::from(slab[row * inner + col])).collect();
            let max = lane.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = lane.iter().map(|&x| (x - max).exp()).sum();
            for (row, &x) in lane.iter().enumerate() {
                out[slab_idx * n * inner + row * inner + col] = ((x - max).exp() / sum) as f32;
            }
        }
    }
    out
}

/// LogSoftmax through the public API (a one-node model, opset 13, last
/// axis) on random lanes of 3 to 20,000 elements with spreads up to ±200
/// around centres up to ±1e4, against `x - max - ln(sum(e^(x - max)))` in
/// float64 rounded to float32; and the issue's no-overflow example,
/// LogSoftmax([1e4, 0]) = [0, -1e4], exactly.
#[test]
fn log_softmax_within_the_readme_bound() {
    let per_case: usize = if cfg!(debug_assertions) { 20_000 } else { 2_000_000 };
    let mut rng = Rng(0x5eed_1065_0f7a_0002);
    let mut worst = 0u64;
    let mut n_elements = 0usize;
    for (n, spread, centres) in
        [(3usize, 200.0f32, 1e4f32), (100, 60.0, 1e4), (1000, 30.0, 1000.0), (20_000, 20.0, 100.0)]
    {
        let rows = (per_case / n).max(1);
        let model = onnxi::Model::from_bytes(&bytes(&single_op(
            "LogSoftmax",
            vec![attr_i("axis", -1)],
            &[D::N(rows as i64), D::N(n as i64)],
            13,
        )))
        .unwrap();
        let data: Vec<f32> = (0..rows)
            .flat_map(|_| {
                let centre = rng.uniform(-centres, centres);
                (0..n).map(|_| centre + rng.uniform(-spread, spread)).collect::<Vec<_>>()
            })
            .collect();
        let input =
            onnxi::Tensor::from(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[rows, n]), data.clone()).unwrap());
        let out = model.run([("x", input)]).unwrap();
        let got = out["y"].as_f32().unwrap().iter().copied().collect::<Vec<f32>>();
        for (lane, got) in data.chunks(n).zip(got.chunks(n)) {
            let max = lane.iter().map(|&x| f64::from(x)).fold(f64::NEG_INFINITY, f64::max);
            let log_sum = lane.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
            for (&x, &y) in lane.iter().zip(got) {
                let want = (f64::from(x) - max - log_sum) as f32;
                let error = ulp_error(y, want);
                worst = worst.max(error);
                assert!(error <= LOG_SOFTMAX_ULP, "LogSoftmax, lane of {n}: x = {x:e} gave {y:e}, want {want:e}");
            }
        }
        n_elements += data.len();
    }
    let model =
        onnxi::Model::from_bytes(&bytes(&single_op("LogSoftmax", vec![attr_i("axis", -1)], &[D::N(2)], 13))).unwrap();
    let out = model.run([("x", common::f32s(&[1e4, 0.0]))]).unwrap();
    assert_eq!(out["y"].as_f32().unwrap().iter().copied().collect::<Vec<f32>>(), [0.0, -1e4]);
    println!("LogSoftmax: {n_elements} elements, max error {worst} ULP");
}

#[test]
fn softmax_within_the_readme_bound() {
    let paths = tested_paths("Softmax");
    let allowed = SOFTMAX_ULP;
    // Elements per case, per path.
    let per_case: usize = if cfg!(debug_assertions) { 16_000 } else { 1_400_000 };
    // (lane length, inner stride, half-width of the values around a
    // centre, half-width of the centres): lanes of one to five 4096-element
    // blocks, logits of usual size (the unshifted form's range) and spreads
    // up to ±200 around centres up to ±1000, contiguous and strided.
    let cases: [(usize, usize, f32, f32); 7] = [
        (3, 1, 200.0, 1000.0),
        (100, 1, 60.0, 1000.0),
        (1000, 1, 30.0, 1000.0),
        (1000, 1, 38.0, 2.0),
        (4096 + 7, 1, 20.0, 20.0),
        (5 * 4096, 1, 20.0, 1000.0),
        (64, 16, 30.0, 1000.0),
    ];
    let mut rng = Rng(0x5eed_50f7_3a11_0001);
    let mut worst: BTreeMap<Isa, (u64, usize)> = paths.iter().map(|&isa| (isa, (0, 0))).collect();
    let mut n_elements = 0;
    for (n, inner, spread, centres) in cases {
        let slab = n * inner;
        let n_slabs = (per_case / slab).max(1);
        for _ in 0..n_slabs {
            let centre = rng.uniform(-centres, centres);
            let data: Vec<f32> = (0..slab).map(|_| centre + rng.uniform(-spread, spread)).collect();
            let want = softmax_reference(&data, n, inner);
            n_elements += data.len();
            for &isa in &paths {
                let mut got = data.clone();
                softmax::softmax_f32_isa(isa, &mut got, n, inner, &Parallel::serial());
                let error = got.iter().zip(&want).map(|(&g, &w)| ulp_error(g, w)).max().unwrap_or(0);
                let entry = worst.entry(isa).or_default();
                entry.0 = entry.0.max(error);
                entry.1 += data.len();
                assert!(error <= allowed, "Softmax on {}, lane of {n} (stride {inner}): {error} ULP", isa.name());
            }
        }
    }
    let summary: Vec<String> = worst.iter().map(|(isa, (ulp, _))| format!("{} {ulp} ULP", isa.name())).collect();
    println!("Softmax: {n_elements} elements per path, max error {}", summary.join(", "));
}

/// One row of the README's accuracy table.
#[derive(Debug)]
struct Claim {
    name: String,
    /// The row's first cell after the name, e.g. `(α = 0.01)`.
    qualifier: String,
    ulp: u64,
    /// The input where the maximum is reached, as printed (`x = ...`).
    at: Option<String>,
}

/// The rows of the table in the README's "Accuracy and speed" section.
fn readme_claims() -> Vec<Claim> {
    let readme = include_str!("../README.md");
    let section = readme.split("## Accuracy and speed").nth(1).unwrap_or_default();
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut claims = Vec::new();
    for line in section.lines().filter(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 3 || cells[0] == "function" || cells[0].starts_with("---") {
            continue;
        }
        let (name, qualifier) = cells[0].split_once(' ').unwrap_or((cells[0], ""));
        let ulp = if cells[1] == "exact" {
            0
        } else {
            let number = cells[1].trim_start_matches('≤').trim_start();
            let number = number.split_once(" ULP").map_or("", |(number, _)| number);
            number.parse().unwrap_or_else(|_| panic!("README accuracy row {name}: cannot read {:?}", cells[1]))
        };
        let at = cells[2].strip_prefix("x = ").map(str::to_owned);
        claims.push(Claim { name: name.to_owned(), qualifier: qualifier.to_owned(), ulp, at });
    }
    claims
}

#[test]
fn readme_states_the_tested_bounds() {
    let claims = readme_claims();
    let stated: Vec<(String, u64)> = claims.iter().map(|claim| (claim.name.clone(), claim.ulp)).collect();
    assert_eq!(stated, bounds(), "the README's accuracy table and the bounds this test asserts differ");
    let leaky = claims.iter().find(|claim| claim.name == "LeakyRelu").map(|claim| claim.qualifier.as_str());
    assert_eq!(leaky, Some("(α = 0.01)"), "the README's LeakyRelu slope is not the tested one");
    let mut out = [0f32];
    find_declared("LeakyRelu").expect("declared").apply_f32_isa(Isa::Scalar, &[-1.0], &mut out);
    assert_eq!(out[0], -ALPHA, "the declared LeakyRelu's default slope is not the README's");
}

/// The README's "where" column: some input that prints as the stated `x`
/// reaches the stated maximum on every path, so the bound is the maximum
/// and not only an upper bound.
#[test]
fn readme_worst_inputs_reach_the_stated_bound() {
    let paths = tested_paths("README worst inputs");
    for claim in readme_claims() {
        let Some(at) = &claim.at else { continue };
        let Some(op) = find_declared(&claim.name) else {
            panic!("README names a worst input for {}, which this test does not know", claim.name)
        };
        let digits = at.split_once('e').map_or(at.as_str(), |(mantissa, _)| mantissa);
        let decimals = digits.split_once('.').map_or(0, |(_, decimals)| decimals.len());
        let printed: f64 = at.parse().unwrap_or_else(|_| panic!("README: cannot read x = {at}"));
        // Every float32 that prints as `at` with the same number of digits.
        let half_unit = 0.5 * 10f64.powi(-(decimals as i32)) * 10f64.powi(printed.abs().log10().floor() as i32);
        let (lo, hi) = ((printed - half_unit) as f32, (printed + half_unit) as f32);
        let (lo, hi) = if lo.to_bits() <= hi.to_bits() { (lo, hi) } else { (hi, lo) };
        let inputs: Vec<f32> =
            (lo.to_bits()..=hi.to_bits()).map(f32::from_bits).filter(|x| format!("{x:.decimals$e}") == *at).collect();
        assert!(!inputs.is_empty(), "no float32 prints as {at}");
        let wants: Vec<f32> = inputs.iter().map(|&x| reference(op.as_ref(), x)).collect();
        let mut outputs = vec![0f32; inputs.len()];
        for &isa in &paths {
            op.apply_f32_isa(isa, &inputs, &mut outputs);
            let max = outputs.iter().zip(&wants).map(|(&got, &want)| ulp_error(got, want)).max().unwrap_or(0);
            println!(
                "{}: max {max} ULP on {} over the {} floats printed as x = {at}",
                claim.name,
                isa.name(),
                inputs.len()
            );
            assert_eq!(
                max,
                claim.ulp,
                "{} on {}: the README says {} ULP at x = {at}",
                claim.name,
                isa.name(),
                claim.ulp
            );
        }
    }
}

/// Outputs of each kernel on a fixed input, by the public entry points
/// that take an explicit path.
fn outputs_on(isa: Isa) -> Vec<u32> {
    let inputs: Vec<f32> = (0..4099).map(|idx| (idx as f32 - 2049.0) * 0.037).collect();
    let mut bits = Vec::new();
    for op in declared() {
        let mut out = vec![0f32; inputs.len()];
        op.apply_f32_isa(isa, &inputs, &mut out);
        bits.extend(out.iter().map(|y| y.to_bits()));
    }
    let mut lanes = inputs.clone();
    softmax::softmax_f32_isa(isa, &mut lanes, 4099, 1, &Parallel::serial());
    bits.extend(lanes.iter().map(|y| y.to_bits()));
    bits
}

/// The same outputs through the default entry points, which run
/// [`simd::active`].
fn outputs_on_active() -> Vec<u32> {
    let inputs: Vec<f32> = (0..4099).map(|idx| (idx as f32 - 2049.0) * 0.037).collect();
    let mut bits = Vec::new();
    for op in declared() {
        let mut out = vec![0f32; inputs.len()];
        op.apply_f32(&inputs, &mut out, &Parallel::serial());
        bits.extend(out.iter().map(|y| y.to_bits()));
    }
    let mut lanes = inputs.clone();
    softmax::softmax(&mut lanes, 4099, 1, &Parallel::serial());
    bits.extend(lanes.iter().map(|y| y.to_bits()));
    bits
}

/// A path the CPU lacks, asked for through the API, runs as the best path
/// below it that the CPU has. Had its own instructions run on a CPU
/// without them, the process would have died (SIGILL) instead of passing.
#[test]
fn a_path_the_cpu_lacks_runs_as_the_best_path_below_it() {
    let mut lacking = Vec::new();
    for isa in Isa::ALL {
        let lowered = isa.lowered();
        assert!(lowered.is_supported() && lowered <= isa, "{isa:?} lowers to {lowered:?}");
        assert_eq!(lowered == isa, isa.is_supported(), "{isa:?}");
        if !isa.is_supported() {
            lacking.push(isa);
            assert_eq!(outputs_on(isa), outputs_on(lowered), "{isa:?} asked for, {lowered:?} expected");
        }
    }
    println!("paths this CPU lacks, run through the API as a lower path: {}", names(&lacking));
}

/// Set in the child processes of the next test.
const CHILD_ENV: &str = "ONNXI_ACCURACY_CHILD";

/// Not a test of its own: in a child process started by
/// `onnxi_simd_never_selects_a_path_the_cpu_lacks`, checks that the path
/// `ONNXI_SIMD` led to is the requested one lowered to what this CPU has,
/// that the default entry points compute exactly what that path computes,
/// and prints the path. The child checks itself, so that it also holds
/// when it is run on its own (e.g. under an emulated CPU).
#[test]
fn child_reports_the_active_path() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let requested = std::env::var("ONNXI_SIMD").unwrap_or_default();
    let want = Isa::parse(&requested).map_or(Isa::best(), Isa::lowered);
    let active = simd::active();
    assert_eq!(active, want, "ONNXI_SIMD={requested:?}");
    assert!(active.is_supported(), "ONNXI_SIMD={requested:?} selected {active:?}, which this CPU lacks");
    assert!(outputs_on_active() == outputs_on(want), "ONNXI_SIMD={requested:?}: outputs differ from {want:?}'s");
    println!("active={}", active.name());
}

#[test]
fn onnxi_simd_never_selects_a_path_the_cpu_lacks() {
    let exe = std::env::current_exe().expect("test binary path");
    let requests = Isa::ALL.iter().map(|isa| isa.name()).chain(["AVX512", "bogus", ""]);
    for request in requests {
        let output = Command::new(&exe)
            .args(["child_reports_the_active_path", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env("ONNXI_SIMD", request)
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "ONNXI_SIMD={request:?}: child failed: {stdout}{stderr}");
        // libtest prints the child's line after `test NAME ... `.
        let active = stdout.split_whitespace().find_map(|word| word.strip_prefix("active="));
        let active = active.unwrap_or_else(|| panic!("ONNXI_SIMD={request:?}: no report in {stdout}"));
        println!("ONNXI_SIMD={request:?}: ran {active}");
    }
}
