//! Float32 entry: lanes grouped into parallel jobs, each job dispatched
//! once to the SIMD path chosen at run time.

use super::*;
use crate::kernels::Parallel;
use crate::kernels::math::{self};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::avx2::{Avx2, F32x8};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::avx512::{Avx512, F32x16};
use crate::kernels::simd::scalar::{F32x1, Scalar};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::sse2::{F32x4, Sse2};
use crate::kernels::simd::{Isa, VecF32};

/// Softmax of each contiguous lane of `n` (at most [`BLOCK`]) elements of
/// `dst`, read from `src` when given: all passes of a lane while it is in
/// L1, with one dispatch for the whole group.
#[inline(always)]
pub(super) fn short_lanes<V: VecF32>(token: V::Token, src: Option<&[f32]>, dst: &mut [f32], n: usize) {
    let mut src_rows = rows_of(src, n);
    for lane in dst.chunks_mut(n) {
        let stats = match src_rows.as_mut().and_then(Iterator::next) {
            Some(src) => block_stats::<V, _, true>(token, Lent(src), block_range::<V>(token, src), lane),
            None => {
                let range = block_range::<V>(token, lane);
                block_stats::<V, _, true>(token, Own, range, lane)
            }
        };
        let factor = lane_factors(&[stats]).next().unwrap_or(f32::NAN);
        math::map_inplace::<V, _>(token, Scale(factor), lane);
    }
}

/// One softmax pass on one piece of data, for dispatch to an ISA.
pub(super) enum Job<'a> {
    /// The first two passes over a block of a contiguous lane: read from
    /// the source when there is one, else in place.
    Stats(Option<&'a [f32]>, &'a mut [f32], &'a mut BlockStats),
    /// The last pass over a block.
    Scale(&'a mut [f32], f32),
    /// Every pass over a group of contiguous lanes of at most [`BLOCK`]
    /// elements (the given length), read from the source when there is one.
    Lanes(Option<&'a [f32]>, &'a mut [f32], usize),
    /// A whole `[n, inner]` slab of strided lanes.
    Strided(&'a mut [f32], usize, usize),
}

/// The one generic body behind every f32 path.
#[inline(always)]
pub(super) fn run_generic<V: VecF32>(token: V::Token, job: Job<'_>) {
    match job {
        Job::Stats(Some(src), dst, stats) => {
            *stats = block_stats::<V, _, false>(token, Lent(src), block_range::<V>(token, src), dst);
        }
        Job::Stats(None, dst, stats) => {
            let range = block_range::<V>(token, dst);
            *stats = block_stats::<V, _, false>(token, Own, range, dst);
        }
        Job::Scale(block, factor) => math::map_inplace::<V, _>(token, Scale(factor), block),
        Job::Lanes(src, dst, n) => short_lanes::<V>(token, src, dst, n),
        Job::Strided(slab, n, inner) => strided_slab::<V>(token, slab, n, inner),
    }
}

// SSE2 is part of x86-64, so this needs no #[target_feature].
#[cfg(target_arch = "x86_64")]
pub(super) fn run_sse2(token: Sse2, job: Job<'_>) {
    run_generic::<F32x4>(token, job);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) fn run_avx2(token: Avx2, job: Job<'_>) {
    run_generic::<F32x8>(token, job);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) fn run_avx512(token: Avx512, job: Job<'_>) {
    run_generic::<F32x16>(token, job);
}

/// The chosen ISA, with one method per job.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paths {
    pub(super) isa: Isa,
}

impl Paths {
    pub(super) fn run(self, job: Job<'_>) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                if let Some(token) = Avx512::new() {
                    // SAFETY: the token proves AVX-512F, the feature
                    // run_avx512 is compiled for.
                    return unsafe { run_avx512(token, job) };
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                if let Some(token) = Avx2::new() {
                    // SAFETY: the token proves AVX2 and FMA, the features
                    // run_avx2 is compiled for.
                    return unsafe { run_avx2(token, job) };
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => {
                if let Some(token) = Sse2::new() {
                    return run_sse2(token, job);
                }
            }
            _ => {}
        }
        run_generic::<F32x1>(Scalar::new(), job);
    }

    /// The first two passes over a block, from `src` when given.
    pub(super) fn stats(self, src: Option<&[f32]>, block: &mut [f32]) -> BlockStats {
        // Overwritten by the job.
        let mut stats = BlockStats { max: f32::NAN, reference: f64::NAN, sum: f64::NAN };
        self.run(Job::Stats(src, block, &mut stats));
        stats
    }

    pub(super) fn scale(self, block: &mut [f32], factor: f32) {
        self.run(Job::Scale(block, factor));
    }

    /// Softmax of one contiguous lane, serially.
    pub(super) fn lane(self, src: Option<&[f32]>, lane: &mut [f32], stats: &mut Vec<BlockStats>) {
        stats.clear();
        let mut src_blocks = src.map(|src| src.chunks(BLOCK));
        for block in lane.chunks_mut(BLOCK) {
            let from = src_blocks.as_mut().and_then(Iterator::next);
            stats.push(self.stats(from, block));
        }
        for (block, factor) in lane.chunks_mut(BLOCK).zip(lane_factors(stats)) {
            self.scale(block, factor);
        }
    }
}

/// What a float32 softmax normalises: one buffer in place, or a lent
/// source into a destination of the same length.
pub(super) enum Lanes<'a> {
    /// In place.
    InPlace(&'a mut [f32]),
    /// From the first slice into the second.
    Into(&'a [f32], &'a mut [f32]),
}

impl<'a> Lanes<'a> {
    /// The source (`None` in place) and the destination.
    pub(super) fn split(self) -> (Option<&'a [f32]>, &'a mut [f32]) {
        match self {
            Lanes::InPlace(data) => (None, data),
            Lanes::Into(src, dst) => (Some(src), dst),
        }
    }
}

/// Runs `kernel(src_group, dst_group)` on groups of whole rows of
/// `row_len` elements, in parallel when worth it; `src_group` is `None` in
/// place.
pub(super) fn row_groups(
    par: &Parallel,
    src: Option<&[f32]>,
    dst: &mut [f32],
    row_len: usize,
    kernel: impl Fn(Option<&[f32]>, &mut [f32]) + Sync + Send,
) {
    match src {
        Some(src) => par.map_rows(src, dst, row_len, |src, dst| kernel(Some(src), dst)),
        None => par.rows(dst, row_len, |row| kernel(None, row)),
    }
}

/// The rows of `len` elements of a source group, if there is one.
pub(super) fn rows_of(group: Option<&[f32]>, len: usize) -> Option<std::slice::Chunks<'_, f32>> {
    group.map(|group| group.chunks(len))
}

pub(super) fn softmax_f32(paths: Paths, lanes: Lanes<'_>, n: usize, inner: usize, par: &Parallel) {
    let (src, dst) = lanes.split();
    if inner > 1 {
        // Strided lanes are read three times wherever they are: copying a
        // lent source first costs one pass while the slab is in cache.
        row_groups(par, src, dst, n * inner, |src, dst| {
            if let Some(src) = src {
                dst.copy_from_slice(src);
            }
            dst.chunks_mut(n * inner).for_each(|slab| paths.run(Job::Strided(slab, n, inner)));
        });
    } else if n <= BLOCK {
        // One block per lane: the lanes are the parallel unit already.
        row_groups(par, src, dst, n, |src, dst| paths.run(Job::Lanes(src, dst, n)));
    } else if !par.splits(dst.len()) {
        let mut stats = Vec::with_capacity(n.div_ceil(BLOCK));
        let mut src_rows = rows_of(src, n);
        for lane in dst.chunks_mut(n) {
            paths.lane(src_rows.as_mut().and_then(Iterator::next), lane, &mut stats);
        }
    } else {
        // Long lanes: the blocks of every lane in parallel, then the
        // per-lane reduction in block order, then the scaling in parallel.
        let blocks_per_lane = n.div_ceil(BLOCK);
        let stats = par.map_row_blocks(dst, n, BLOCK, |idx, block| {
            let start = idx / blocks_per_lane * n + idx % blocks_per_lane * BLOCK;
            paths.stats(src.map(|src| &src[start..start + block.len()]), block)
        });
        let factors: Vec<f32> = stats.chunks(blocks_per_lane).flat_map(lane_factors).collect();
        par.for_row_blocks(dst, n, BLOCK, |idx, block| {
            paths.scale(block, factors.get(idx).copied().unwrap_or(f32::NAN));
        });
    }
}
