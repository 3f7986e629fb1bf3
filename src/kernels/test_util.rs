//! Helpers shared by the kernel unit tests.

use super::simd::Isa;

/// Position of `x` on the line of f32 values (-0 and +0 share 0).
fn ordinal(x: f32) -> i64 {
    let bits = x.to_bits();
    let magnitude = i64::from(bits & 0x7fff_ffff);
    if bits >> 31 == 1 { -magnitude } else { magnitude }
}

/// Distance in ULP between two f32; 0 for two NaN, `u64::MAX` when only
/// one is NaN.
pub(crate) fn ulp_diff(got: f32, want: f32) -> u64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0,
        (false, false) => ordinal(got).abs_diff(ordinal(want)),
        _ => u64::MAX,
    }
}

/// The SIMD paths this CPU can run (each is tested in turn), after printing
/// which paths a test covers and which it skips (`--nocapture` shows it),
/// so that a path the machine lacks is reported as skipped, never tested
/// on the path below it and counted as passed.
pub(crate) fn isas() -> Vec<Isa> {
    let (tested, skipped): (Vec<Isa>, Vec<Isa>) = Isa::ALL.into_iter().partition(|isa| isa.is_supported());
    println!("SIMD paths: tested {}; skipped: {}", names(&tested), names(&skipped));
    tested
}

/// `scalar, sse2`, or `none`.
fn names(isas: &[Isa]) -> String {
    if isas.is_empty() {
        return "none".to_owned();
    }
    isas.iter().map(|isa| isa.name()).collect::<Vec<_>>().join(", ")
}

/// A small deterministic generator (xorshift64*), so tests need no crate.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    pub(crate) fn vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// `len` deterministic values in [-1, 1] on a 0.001 grid (xorshift from
/// `seed`), for float64 reference tests.
pub(crate) fn values(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f64 / 1000.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each path a test is handed runs as itself: a kernel given an `Isa`
    /// runs `isa.lowered()`, so a path that lowered to another would be
    /// tested twice under two names.
    #[test]
    fn isas_are_the_supported_paths_and_each_runs_as_itself() {
        let tested = isas();
        assert_eq!(tested.first(), Some(&Isa::Scalar));
        for isa in Isa::ALL {
            assert_eq!(tested.contains(&isa), isa.is_supported(), "{isa:?}");
        }
        for isa in tested {
            assert_eq!(isa.lowered(), isa, "{isa:?} would run as another path");
        }
    }
}
