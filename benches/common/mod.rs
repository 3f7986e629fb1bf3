//! What the criterion benches share.

/// `len` deterministic values uniform in [-10, 10) from `seed` (xorshift64),
/// so every run of a bench times the same data.
pub fn uniform_inputs(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 20.0 - 10.0
        })
        .collect()
}
