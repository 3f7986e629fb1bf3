//! Broadcasting elementwise kernels: the shape rules, and one walk over
//! strided, broadcast operands that never materialises them.
//!
//! # Shapes
//!
//! [`multidirectional`] is numpy's rule for any number of operands (ONNX
//! "multidirectional broadcasting"); [`unidirectional`] checks that one
//! shape broadcasts to another, which is then the output's shape.
//!
//! # The walk
//!
//! The output is always written in standard (row-major) layout. Each
//! operand gets a stride per output axis: its own stride, or 0 where it has
//! extent 1 or lacks the axis (that is what broadcasting is). Axes of
//! extent 1 are dropped, and neighbouring axes are merged wherever every
//! operand steps across them as across one axis, so the common cases
//! collapse to a single inner run: same shape (a pure zip), a scalar
//! operand (stride 0), a row or bias over the last axis (rows of `a` zipped
//! with all of `b`), a column (each row of `a` with one element of `b`).
//! The innermost run is then done by a loop specialised for stride 1 or 0
//! per operand; any other stride (a transposed input, say) takes a general
//! strided loop. Operands are read through their memory-order slice, so a
//! transposed or reversed tensor costs no copy; only a tensor with gaps
//! (never produced by onnxi's ops) is copied into standard layout first.
//!
//! # Threads and SIMD
//!
//! Large outputs are cut into blocks whose length depends only on the
//! output size ([`block_len`]); each element is computed on its own, so the
//! result is bitwise the same for every thread count. Each block runs in a
//! function compiled for AVX-512F or AVX2+FMA (chosen by
//! [`simd::active`], after a CPU check) or for the baseline, from one
//! `#[inline(always)]` body: the stride-0/1 loops are plain slice loops
//! that the compiler vectorises for whichever instruction set the function
//! is compiled for (the `broadcast` bench measures each). IEEE `+ - * /`
//! round the same in every lane width and the compiler does not contract
//! them into FMAs, so every path gives the same bits.

use std::borrow::Cow;
use std::fmt;

use half::{bf16, f16};
use ndarray::ArrayViewD;

use super::Parallel;
use super::par::CHUNK_ELEMS;
use super::simd::{self, Isa};

/// Why shapes do not broadcast. The caller adds the shapes and op name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastError {
    /// Axis `axis` (counted from the last, 0 = last) has extents that are
    /// neither equal nor 1.
    Mismatch {
        /// Axis from the end where the shapes disagree.
        axis_from_end: usize,
        /// The two disagreeing extents.
        extents: (usize, usize),
    },
    /// Unidirectional: the operand has more axes than the target.
    RankTooHigh {
        /// The operand's rank.
        rank: usize,
        /// The target's rank.
        target_rank: usize,
    },
    /// The output's element count (or byte size) does not fit in memory.
    TooLarge,
    /// The output buffer does not have the broadcast shape, or is not in
    /// standard layout (a caller bug, reported rather than panicking).
    BadOutput,
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BroadcastError::Mismatch { axis_from_end, extents: (a, b) } => {
                write!(f, "extents {a} and {b} differ and neither is 1 (axis {axis_from_end} from the end)")
            }
            BroadcastError::RankTooHigh { rank, target_rank } => {
                write!(f, "rank {rank} cannot broadcast to rank {target_rank}")
            }
            BroadcastError::TooLarge => f.write_str("the broadcast output's size overflows"),
            BroadcastError::BadOutput => f.write_str("the output buffer does not have the broadcast shape"),
        }
    }
}

/// Numpy (ONNX multidirectional) broadcasting of any number of shapes:
/// shapes are aligned at their last axis, and each output extent is the
/// one extent other than 1 (or 1).
///
/// # Errors
/// [`BroadcastError::Mismatch`] when two extents differ and neither is 1;
/// [`BroadcastError::TooLarge`] when the element count overflows `usize`.
pub fn multidirectional(shapes: &[&[usize]]) -> Result<Vec<usize>, BroadcastError> {
    let rank = shapes.iter().map(|shape| shape.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for shape in shapes {
        for (from_end, &extent) in shape.iter().rev().enumerate() {
            let slot = &mut out[rank - 1 - from_end];
            if extent == 1 || extent == *slot {
                continue;
            }
            if *slot != 1 {
                return Err(BroadcastError::Mismatch { axis_from_end: from_end, extents: (*slot, extent) });
            }
            *slot = extent;
        }
    }
    checked_len(&out)?;
    Ok(out)
}

/// Unidirectional broadcasting: `operand` broadcasts to `target` (the
/// output's shape) when, aligned at the last axis, each of its extents is
/// 1 or equal to the target's.
///
/// # Errors
/// [`BroadcastError::RankTooHigh`] or [`BroadcastError::Mismatch`].
pub fn unidirectional(target: &[usize], operand: &[usize]) -> Result<(), BroadcastError> {
    if operand.len() > target.len() {
        return Err(BroadcastError::RankTooHigh { rank: operand.len(), target_rank: target.len() });
    }
    for (from_end, (&want, &have)) in target.iter().rev().zip(operand.iter().rev()).enumerate() {
        if have != 1 && have != want {
            return Err(BroadcastError::Mismatch { axis_from_end: from_end, extents: (want, have) });
        }
    }
    Ok(())
}

/// `f(a, b)` for each pair of elements of `a` and `b` broadcast to
/// `out_shape`, taken by reference: the walk for elements that are not
/// `Copy` (strings), on the calling thread, through ndarray's broadcast
/// views. `out_shape` must be the two shapes' broadcast (from
/// [`multidirectional`], or the legacy placement).
///
/// # Errors
/// [`BroadcastError::BadOutput`] when an operand does not broadcast to
/// `out_shape`.
pub fn map_pair<A, B, O>(
    a: &ArrayViewD<'_, A>,
    b: &ArrayViewD<'_, B>,
    out_shape: &[usize],
    f: impl FnMut(&A, &B) -> O,
) -> Result<ndarray::ArrayD<O>, BroadcastError> {
    let shape = ndarray::IxDyn(out_shape);
    let a = a.broadcast(shape.clone()).ok_or(BroadcastError::BadOutput)?;
    let b = b.broadcast(shape).ok_or(BroadcastError::BadOutput)?;
    Ok(ndarray::Zip::from(&a).and(&b).map_collect(f))
}

/// The element count of `shape`, refusing overflow.
///
/// # Errors
/// [`BroadcastError::TooLarge`].
pub fn checked_len(shape: &[usize]) -> Result<usize, BroadcastError> {
    shape.iter().try_fold(1usize, |acc, &extent| acc.checked_mul(extent)).ok_or(BroadcastError::TooLarge)
}

/// Same-type arithmetic with ONNX Runtime's results: IEEE for floats
/// (float16 and bfloat16 compute in f32 and round once, which for these
/// four operations is the correctly rounded result, since f32 carries more
/// than twice their precision), and for integers two's-complement
/// wrapping on overflow, division truncating toward zero.
///
/// Integer division by zero has no value in C++ (ONNX Runtime's process
/// dies on x86); here `x / 0 == 0` for every `x`, so a model cannot crash
/// the process. `MIN / -1` wraps to `MIN`, as the multiplication would.
pub trait Arithmetic: Copy + Send + Sync + 'static {
    /// `self + rhs`.
    fn add(self, rhs: Self) -> Self;
    /// `self - rhs`.
    fn sub(self, rhs: Self) -> Self;
    /// `self * rhs`.
    fn mul(self, rhs: Self) -> Self;
    /// `self / rhs`.
    fn div(self, rhs: Self) -> Self;
    /// The remainder with the sign of `self` (C `fmod`; integers truncate;
    /// `x mod 0 == 0` for integers, NaN for floats).
    fn rem_trunc(self, rhs: Self) -> Self;
    /// The remainder with the sign of `rhs` (Python's and numpy's `%`);
    /// `x mod 0 == 0` for integers, NaN for floats.
    fn rem_floor(self, rhs: Self) -> Self;
}

/// [`Arithmetic::rem_floor`] of floats from the truncated remainder.
#[inline(always)]
fn float_rem_floor<F: num_traits::Float>(a: F, b: F) -> F {
    let r = a % b;
    if r != F::zero() && (r < F::zero()) != (b < F::zero()) { r + b } else { r }
}

macro_rules! float_arith {
    ($($ty:ty),*) => {$(
        impl Arithmetic for $ty {
            #[inline(always)]
            fn add(self, rhs: Self) -> Self { self + rhs }
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self { self - rhs }
            #[inline(always)]
            fn mul(self, rhs: Self) -> Self { self * rhs }
            #[inline(always)]
            fn div(self, rhs: Self) -> Self { self / rhs }
            #[inline(always)]
            fn rem_trunc(self, rhs: Self) -> Self { self % rhs }
            #[inline(always)]
            fn rem_floor(self, rhs: Self) -> Self { float_rem_floor(self, rhs) }
        }
    )*};
}

macro_rules! half_arith {
    ($($ty:ty),*) => {$(
        impl Arithmetic for $ty {
            #[inline(always)]
            fn add(self, rhs: Self) -> Self { <$ty>::from_f32(self.to_f32() + rhs.to_f32()) }
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self { <$ty>::from_f32(self.to_f32() - rhs.to_f32()) }
            #[inline(always)]
            fn mul(self, rhs: Self) -> Self { <$ty>::from_f32(self.to_f32() * rhs.to_f32()) }
            #[inline(always)]
            fn div(self, rhs: Self) -> Self { <$ty>::from_f32(self.to_f32() / rhs.to_f32()) }
            #[inline(always)]
            fn rem_trunc(self, rhs: Self) -> Self { <$ty>::from_f32(self.to_f32() % rhs.to_f32()) }
            #[inline(always)]
            fn rem_floor(self, rhs: Self) -> Self { <$ty>::from_f32(float_rem_floor(self.to_f32(), rhs.to_f32())) }
        }
    )*};
}

macro_rules! int_arith {
    ($signed:literal: $($ty:ty),*) => {$(
        impl Arithmetic for $ty {
            #[inline(always)]
            fn add(self, rhs: Self) -> Self { self.wrapping_add(rhs) }
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self { self.wrapping_sub(rhs) }
            #[inline(always)]
            fn mul(self, rhs: Self) -> Self { self.wrapping_mul(rhs) }
            #[inline(always)]
            fn div(self, rhs: Self) -> Self { if rhs == 0 { 0 } else { self.wrapping_div(rhs) } }
            #[inline(always)]
            fn rem_trunc(self, rhs: Self) -> Self { if rhs == 0 { 0 } else { self.wrapping_rem(rhs) } }
            #[inline(always)]
            fn rem_floor(self, rhs: Self) -> Self {
                let r = self.rem_trunc(rhs);
                // Signs differ: `r ^ rhs` has its top bit set (never for
                // unsigned types, whose `$signed` is false).
                if $signed && r != 0 && (r ^ rhs).leading_zeros() == 0 { r.wrapping_add(rhs) } else { r }
            }
        }
    )*};
}

float_arith!(f32, f64);
half_arith!(f16, bf16);
// Unsigned division never overflows; wrapping_div is plain division there.
int_arith!(true: i8, i16, i32, i64);
int_arith!(false: u8, u16, u32, u64);

/// Elements per parallel block for an output of `len` elements: about 64
/// blocks (so up to 8 threads get 8 each), never under [`CHUNK_ELEMS`], a
/// multiple of 64. A function of `len` alone.
pub fn block_len(len: usize) -> usize {
    (len / 64).next_multiple_of(64).max(CHUNK_ELEMS)
}

/// An operand's data as the walk reads it: a slice in memory order, the
/// index of its first logical element, and its strides per output axis
/// (0 where it is broadcast).
struct Source<'a, T: Clone> {
    data: Cow<'a, [T]>,
    origin: usize,
    /// Aligned to the output's rank.
    strides: Vec<isize>,
}

impl<'a, T: Copy> Source<'a, T> {
    /// Reads `view` as broadcast to `out_shape` (which the caller checked).
    fn new(view: &ArrayViewD<'a, T>, out_shape: &[usize]) -> Self {
        let (data, origin, own_strides): (Cow<'a, [T]>, usize, Vec<isize>) = match view.to_slice_memory_order() {
            Some(slice) => {
                // The slice starts at the lowest address; with negative
                // strides the first logical element lies further in.
                let origin = view
                    .shape()
                    .iter()
                    .zip(view.strides())
                    .filter(|&(&extent, &stride)| stride < 0 && extent > 1)
                    .map(|(&extent, &stride)| (extent - 1) * stride.unsigned_abs())
                    .sum();
                (Cow::Borrowed(slice), origin, view.strides().to_vec())
            }
            // A view with gaps: copy it into standard layout once.
            None => (Cow::Owned(view.iter().copied().collect()), 0, standard_strides(view.shape())),
        };
        let skip = out_shape.len() - view.ndim();
        let mut strides = vec![0isize; out_shape.len()];
        for (axis, (&extent, &stride)) in view.shape().iter().zip(&own_strides).enumerate() {
            if extent != 1 {
                strides[skip + axis] = stride;
            }
        }
        Source { data, origin, strides }
    }

    /// The run of `len` elements from index `start` with inner stride `step`.
    #[inline(always)]
    fn run(&self, start: usize, len: usize, step: isize) -> Run<'_, T> {
        match step {
            0 => Run::Splat(self.data[start]),
            1 => Run::Contig(&self.data[start..start + len]),
            _ => Run::Strided { data: &self.data, start, step },
        }
    }
}

fn standard_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut step = 1isize;
    for (stride, &extent) in strides.iter_mut().zip(shape).rev() {
        *stride = step;
        step = step.wrapping_mul(extent as isize);
    }
    strides
}

/// One operand's elements along an inner run.
#[derive(Clone, Copy)]
enum Run<'a, T> {
    /// Consecutive elements.
    Contig(&'a [T]),
    /// One element, broadcast along the run.
    Splat(T),
    /// Elements `step` apart (any sign) from `start`.
    Strided { data: &'a [T], start: usize, step: isize },
}

impl<T: Copy> Run<'_, T> {
    #[inline(always)]
    fn get(&self, j: usize) -> T {
        match *self {
            Run::Contig(data) => data[j],
            Run::Splat(value) => value,
            Run::Strided { data, start, step } => data[start.wrapping_add_signed(step * j as isize)],
        }
    }
}

/// The collapsed iteration space: output extents (outermost first, never
/// empty) and, per operand, a stride per extent.
struct Walk {
    dims: Vec<usize>,
    strides: Vec<Vec<isize>>,
}

impl Walk {
    /// Drops unit axes and merges neighbours that every operand crosses as
    /// one axis (the output, being row-major, always does).
    fn new(out_shape: &[usize], operand_strides: &[&[isize]]) -> Self {
        let mut dims: Vec<usize> = Vec::new();
        let mut strides: Vec<Vec<isize>> = vec![Vec::new(); operand_strides.len()];
        for axis in (0..out_shape.len()).rev() {
            let extent = out_shape[axis];
            if extent == 1 {
                continue;
            }
            let mergeable = match dims.last() {
                Some(&inner) => operand_strides
                    .iter()
                    .zip(&strides)
                    .all(|(own, kept)| kept.last().is_some_and(|&s| own[axis] == s.wrapping_mul(inner as isize))),
                None => false,
            };
            if mergeable {
                if let Some(inner) = dims.last_mut() {
                    *inner *= extent;
                }
            } else {
                dims.push(extent);
                for (own, kept) in operand_strides.iter().zip(&mut strides) {
                    kept.push(own[axis]);
                }
            }
        }
        if dims.is_empty() {
            // Every extent is 1: one element, any stride.
            dims.push(1);
            strides.iter_mut().for_each(|kept| kept.push(0));
        }
        dims.reverse();
        strides.iter_mut().for_each(|kept| kept.reverse());
        Walk { dims, strides }
    }

    /// The inner runs overlapping output elements `start..start + count`,
    /// in order (a run is cut at those edges where it straddles them).
    #[inline(always)]
    fn runs<const N: usize>(&self, origins: [usize; N], start: usize, count: usize) -> Runs<'_, N> {
        let inner = *self.dims.last().unwrap_or(&1);
        let outer = &self.dims[..self.dims.len() - 1];
        // Unravel the starting row into an odometer over the outer axes.
        let mut row = start / inner;
        let mut counter = vec![0usize; outer.len()];
        for (axis, &extent) in outer.iter().enumerate().rev() {
            counter[axis] = row % extent;
            row /= extent;
        }
        Runs { walk: self, origins, counter, col: start % inner, done: 0, count }
    }
}

/// An iterator over inner runs: `(offset in the block, length, index of
/// the run's first element in each operand's data)`. An iterator rather
/// than a callback so that the loop over a run sits in the caller's body,
/// which is compiled for the chosen instruction set (a closure would be a
/// function of its own, compiled for the baseline).
struct Runs<'w, const N: usize> {
    walk: &'w Walk,
    origins: [usize; N],
    counter: Vec<usize>,
    col: usize,
    done: usize,
    count: usize,
}

impl<const N: usize> Iterator for Runs<'_, N> {
    type Item = (usize, usize, [usize; N]);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done >= self.count {
            return None;
        }
        let dims = &self.walk.dims;
        let inner_axis = dims.len() - 1;
        let mut firsts = [0usize; N];
        for (op, first) in firsts.iter_mut().enumerate() {
            let strides = &self.walk.strides[op];
            let offset: isize = self.counter.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum::<isize>()
                + self.col as isize * strides[inner_axis];
            *first = self.origins[op].wrapping_add_signed(offset);
        }
        let len = (dims[inner_axis] - self.col).min(self.count - self.done);
        let item = (self.done, len, firsts);
        self.done += len;
        self.col = 0;
        // Next row: advance the odometer.
        for (axis, &extent) in dims[..inner_axis].iter().enumerate().rev() {
            self.counter[axis] += 1;
            if self.counter[axis] < extent {
                break;
            }
            self.counter[axis] = 0;
        }
        Some(item)
    }
}

/// `dst[j] = f(a[j], b[j])` for one inner run, specialised for stride 1
/// and 0 so those loops vectorise.
#[inline(always)]
fn line<T: Copy, U, F: Fn(T, T) -> U>(dst: &mut [U], a: Run<'_, T>, b: Run<'_, T>, f: F) {
    match (a, b) {
        (Run::Contig(a), Run::Contig(b)) => {
            for ((out, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                *out = f(x, y);
            }
        }
        (Run::Contig(a), Run::Splat(y)) => {
            for (out, &x) in dst.iter_mut().zip(a) {
                *out = f(x, y);
            }
        }
        (Run::Splat(x), Run::Contig(b)) => {
            for (out, &y) in dst.iter_mut().zip(b) {
                *out = f(x, y);
            }
        }
        (a, b) => {
            for (j, out) in dst.iter_mut().enumerate() {
                *out = f(a.get(j), b.get(j));
            }
        }
    }
}

/// `dst[j] = f(dst[j], b[j])` for one inner run.
#[inline(always)]
fn line_inplace<T: Copy, F: Fn(T, T) -> T>(dst: &mut [T], b: Run<'_, T>, f: F) {
    match b {
        Run::Contig(b) => {
            for (out, &y) in dst.iter_mut().zip(b) {
                *out = f(*out, y);
            }
        }
        Run::Splat(y) => {
            for out in dst.iter_mut() {
                *out = f(*out, y);
            }
        }
        b => {
            for (j, out) in dst.iter_mut().enumerate() {
                *out = f(*out, b.get(j));
            }
        }
    }
}

/// What one block computes: the body every instruction-set variant shares.
trait Block: Sync {
    /// The output element type.
    type Out: Send;
    /// Fills `dst`, output elements `start..start + dst.len()`.
    fn fill(&self, start: usize, dst: &mut [Self::Out]);
}

/// `out = f(a, b)` into a separate buffer.
struct Into2<'a, T: Clone, F> {
    walk: Walk,
    a: Source<'a, T>,
    b: Source<'a, T>,
    f: F,
}

impl<T: Copy + Sync, U: Send, F: Fn(T, T) -> U + Copy + Sync> Block for Into2<'_, T, F> {
    type Out = U;
    #[inline(always)]
    fn fill(&self, start: usize, dst: &mut [U]) {
        let (sa, sb) = (*self.walk.strides[0].last().unwrap_or(&0), *self.walk.strides[1].last().unwrap_or(&0));
        for (offset, len, [first_a, first_b]) in self.walk.runs([self.a.origin, self.b.origin], start, dst.len()) {
            let a = self.a.run(first_a, len, sa);
            let b = self.b.run(first_b, len, sb);
            line(&mut dst[offset..offset + len], a, b, self.f);
        }
    }
}

/// `out = f(out, b)`, the output holding the first operand.
struct InPlace<'a, T: Clone, F> {
    walk: Walk,
    b: Source<'a, T>,
    f: F,
}

impl<T: Copy + Send + Sync, F: Fn(T, T) -> T + Copy + Sync> Block for InPlace<'_, T, F> {
    type Out = T;
    #[inline(always)]
    fn fill(&self, start: usize, dst: &mut [T]) {
        let sb = *self.walk.strides[0].last().unwrap_or(&0);
        for (offset, len, [first_b]) in self.walk.runs([self.b.origin], start, dst.len()) {
            let b = self.b.run(first_b, len, sb);
            line_inplace(&mut dst[offset..offset + len], b, self.f);
        }
    }
}

#[inline(always)]
fn fill_generic<B: Block>(block: &B, start: usize, dst: &mut [B::Out]) {
    block.fill(start, dst);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fill_avx2<B: Block>(block: &B, start: usize, dst: &mut [B::Out]) {
    fill_generic(block, start, dst);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fill_avx512<B: Block>(block: &B, start: usize, dst: &mut [B::Out]) {
    fill_generic(block, start, dst);
}

/// Fills one block on the path `isa`, or on the baseline when the CPU
/// lacks it.
fn fill_isa<B: Block>(isa: Isa, block: &B, start: usize, dst: &mut [B::Out]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
            // SAFETY: the CPU has AVX-512F, the feature fill_avx512 is
            // compiled for.
            unsafe { fill_avx512(block, start, dst) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") => {
            // SAFETY: the CPU has AVX2 and FMA, the features fill_avx2 is
            // compiled for.
            unsafe { fill_avx2(block, start, dst) }
        }
        // SSE2 is the x86-64 baseline, so the plain body already uses it.
        _ => fill_generic(block, start, dst),
    }
}

/// Runs `block` over all of `dst`, in parallel blocks of [`block_len`]
/// when `par` finds it worth it.
fn fill_all<B: Block>(isa: Isa, block: &B, dst: &mut [B::Out], par: &Parallel) {
    let len = dst.len();
    if len == 0 {
        return;
    }
    if !par.splits(len) {
        fill_isa(isa, block, 0, dst);
        return;
    }
    let size = block_len(len);
    par.for_row_blocks(dst, len, size, |idx, chunk| fill_isa(isa, block, idx * size, chunk));
}

/// Checks that `a` and `b` broadcast to `out_shape` and that `dst` holds
/// that many elements.
fn check(out_shape: &[usize], operands: &[&[usize]], dst_len: usize) -> Result<(), BroadcastError> {
    for shape in operands {
        unidirectional(out_shape, shape)?;
    }
    if checked_len(out_shape)? != dst_len {
        return Err(BroadcastError::BadOutput);
    }
    Ok(())
}

/// `dst = f(a, b)` elementwise, with `a` and `b` broadcast to `out_shape`
/// (each must broadcast to it unidirectionally; use [`multidirectional`]
/// to find it). `dst` is the output in standard layout. `f` may return
/// another type than it takes (comparisons give booleans).
///
/// # Errors
/// A [`BroadcastError`] when an operand does not broadcast to `out_shape`
/// or `dst` does not hold `out_shape`'s element count.
pub fn binary_into<T, U, F>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    out_shape: &[usize],
    dst: &mut [U],
    f: F,
    par: &Parallel,
) -> Result<(), BroadcastError>
where
    T: Copy + Sync,
    U: Send,
    F: Fn(T, T) -> U + Copy + Sync,
{
    binary_into_isa(simd::active(), a, b, out_shape, dst, f, par)
}

/// [`binary_into`] on the path `isa` (lowered to what the CPU has); for
/// tests and benches.
///
/// # Errors
/// As [`binary_into`].
pub fn binary_into_isa<T, U, F>(
    isa: Isa,
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    out_shape: &[usize],
    dst: &mut [U],
    f: F,
    par: &Parallel,
) -> Result<(), BroadcastError>
where
    T: Copy + Sync,
    U: Send,
    F: Fn(T, T) -> U + Copy + Sync,
{
    check(out_shape, &[a.shape(), b.shape()], dst.len())?;
    if dst.is_empty() {
        return Ok(());
    }
    let a = Source::new(a, out_shape);
    let b = Source::new(b, out_shape);
    let walk = Walk::new(out_shape, &[&a.strides, &b.strides]);
    fill_all(isa, &Into2 { walk, a, b, f }, dst, par);
    Ok(())
}

/// `dst = f(dst, b)` elementwise: `dst` holds the first operand, in
/// standard layout with shape `out_shape` (the output's), and `b`
/// broadcasts to it. For `f(b, dst)` pass `|x, y| f(y, x)`.
///
/// # Errors
/// A [`BroadcastError`] when `b` does not broadcast to `out_shape` or
/// `dst` does not hold `out_shape`'s element count.
pub fn binary_inplace<T, F>(
    dst: &mut [T],
    out_shape: &[usize],
    b: &ArrayViewD<'_, T>,
    f: F,
    par: &Parallel,
) -> Result<(), BroadcastError>
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Copy + Sync,
{
    binary_inplace_isa(simd::active(), dst, out_shape, b, f, par)
}

/// [`binary_inplace`] on the path `isa`; for tests and benches.
///
/// # Errors
/// As [`binary_inplace`].
pub fn binary_inplace_isa<T, F>(
    isa: Isa,
    dst: &mut [T],
    out_shape: &[usize],
    b: &ArrayViewD<'_, T>,
    f: F,
    par: &Parallel,
) -> Result<(), BroadcastError>
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Copy + Sync,
{
    check(out_shape, &[b.shape()], dst.len())?;
    if dst.is_empty() {
        return Ok(());
    }
    let b = Source::new(b, out_shape);
    let walk = Walk::new(out_shape, &[&b.strides]);
    fill_all(isa, &InPlace { walk, b, f }, dst, par);
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, Axis, Dimension, IxDyn, s};

    use super::*;

    fn shape_of(shapes: &[&[usize]]) -> Result<Vec<usize>, BroadcastError> {
        multidirectional(shapes)
    }

    #[test]
    fn multidirectional_follows_numpy_for_any_number_of_shapes() {
        type Case<'a> = (&'a [&'a [usize]], Option<&'a [usize]>);
        let cases: &[Case<'_>] = &[
            (&[&[2, 3], &[2, 3]], Some(&[2, 3])),
            (&[&[2, 3], &[]], Some(&[2, 3])),
            (&[&[], &[]], Some(&[])),
            (&[&[2, 3], &[3]], Some(&[2, 3])),
            (&[&[2, 3], &[2, 1]], Some(&[2, 3])),
            (&[&[4, 1], &[1, 5]], Some(&[4, 5])),
            (&[&[2, 1, 4], &[3, 1], &[1, 1, 1, 1]], Some(&[1, 2, 3, 4])),
            (&[&[0, 3], &[3]], Some(&[0, 3])),
            (&[&[0, 3], &[1, 1]], Some(&[0, 3])),
            (&[&[2, 0], &[1]], Some(&[2, 0])),
            (&[&[2, 3], &[4]], None),
            (&[&[2, 3], &[0]], None),
            (&[&[2, 3], &[3, 3], &[2, 1]], None),
            (&[&[], &[5], &[1, 5]], Some(&[1, 5])),
        ];
        for (shapes, want) in cases {
            let got = shape_of(shapes);
            match want {
                Some(want) => assert_eq!(got.as_deref(), Ok(*want), "{shapes:?}"),
                None => assert!(matches!(got, Err(BroadcastError::Mismatch { .. })), "{shapes:?}: {got:?}"),
            }
        }
        let err = shape_of(&[&[2, 3], &[4]]).unwrap_err();
        assert_eq!(err, BroadcastError::Mismatch { axis_from_end: 0, extents: (3, 4) });
    }

    #[test]
    fn sizes_that_overflow_are_refused() {
        let huge = usize::MAX / 2;
        assert_eq!(shape_of(&[&[huge, 1], &[1, 3]]), Err(BroadcastError::TooLarge));
        assert_eq!(checked_len(&[huge, 3]), Err(BroadcastError::TooLarge));
        assert_eq!(checked_len(&[huge, 0, 3]), Ok(0));
    }

    #[test]
    fn unidirectional_broadcasts_only_toward_the_target() {
        assert_eq!(unidirectional(&[2, 3], &[3]), Ok(()));
        assert_eq!(unidirectional(&[2, 3], &[]), Ok(()));
        assert_eq!(unidirectional(&[2, 3], &[2, 1]), Ok(()));
        assert_eq!(
            unidirectional(&[2, 1], &[2, 3]),
            Err(BroadcastError::Mismatch { axis_from_end: 0, extents: (1, 3) })
        );
        assert_eq!(unidirectional(&[3], &[1, 3]), Err(BroadcastError::RankTooHigh { rank: 2, target_rank: 1 }));
    }

    #[test]
    fn block_length_depends_only_on_size() {
        assert_eq!(block_len(40_000), CHUNK_ELEMS);
        assert_eq!(block_len(1_000_000), CHUNK_ELEMS);
        assert_eq!(block_len(16_000_000), 250_048);
        assert_eq!(block_len(16_000_000) % 64, 0);
    }

    /// Deterministic values with a few exact halves and thirds.
    fn values(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) % 2001) as f64 / 8.0 - 125.0
            })
            .collect()
    }

    fn array(shape: &[usize], seed: u64) -> ArrayD<f64> {
        let len = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), values(len, seed)).unwrap()
    }

    /// The numpy rule written directly: each output index reads index 0
    /// where the operand has extent 1.
    fn reference(a: &ArrayD<f64>, b: &ArrayD<f64>, f: impl Fn(f64, f64) -> f64) -> ArrayD<f64> {
        let shape = multidirectional(&[a.shape(), b.shape()]).unwrap();
        let pick = |x: &ArrayD<f64>, idx: &[usize]| {
            let skip = idx.len() - x.ndim();
            let own: Vec<usize> = x
                .shape()
                .iter()
                .enumerate()
                .map(|(axis, &extent)| if extent == 1 { 0 } else { idx[skip + axis] })
                .collect();
            x[IxDyn(&own)]
        };
        ArrayD::from_shape_fn(IxDyn(&shape), |idx| f(pick(a, idx.slice()), pick(b, idx.slice())))
    }

    fn compute(a: &ArrayD<f64>, b: &ArrayD<f64>, par: &Parallel) -> ArrayD<f64> {
        let shape = multidirectional(&[a.shape(), b.shape()]).unwrap();
        let mut out = ArrayD::from_elem(IxDyn(&shape), f64::NAN);
        binary_into(&a.view(), &b.view(), &shape, out.as_slice_mut().unwrap(), |x: f64, y: f64| x - 2.0 * y, par)
            .unwrap();
        // The same through the in-place form, where the first operand has
        // the output's shape.
        if a.shape() == shape.as_slice() {
            let mut dst = a.as_standard_layout().into_owned();
            binary_inplace(dst.as_slice_mut().unwrap(), &shape, &b.view(), |x: f64, y: f64| x - 2.0 * y, par).unwrap();
            assert_eq!(dst, out, "in place differs from into");
        }
        out
    }

    /// Shape pairs covering each broadcasting pattern.
    const PATTERNS: &[(&[usize], &[usize])] = &[
        (&[2, 3, 4], &[2, 3, 4]),
        (&[2, 3, 4], &[]),
        (&[], &[2, 3, 4]),
        (&[], &[]),
        (&[2, 3, 4], &[4]),
        (&[2, 3, 4], &[3, 1]),
        (&[2, 3, 4], &[2, 1, 4]),
        (&[2, 3, 4], &[2, 1, 1]),
        (&[4, 1], &[1, 5]),
        (&[1, 3, 1], &[2, 1, 4]),
        (&[5, 1, 1, 7], &[1, 1, 6, 1]),
        (&[1], &[3, 1]),
        (&[0, 3], &[3]),
        (&[2, 0], &[1]),
        (&[1, 1, 1], &[1]),
    ];

    #[test]
    fn every_pattern_matches_the_reference() {
        let par = Parallel::serial();
        for (seed, (sa, sb)) in PATTERNS.iter().enumerate() {
            let a = array(sa, seed as u64 * 2 + 1);
            let b = array(sb, seed as u64 * 2 + 2);
            let want = reference(&a, &b, |x, y| x - 2.0 * y);
            assert_eq!(compute(&a, &b, &par), want, "{sa:?} with {sb:?}");
        }
    }

    #[test]
    fn transposed_reversed_and_gappy_operands_read_without_error() {
        let par = Parallel::serial();
        let base = array(&[4, 5, 6], 7);
        let transposed = base.clone().permuted_axes(IxDyn(&[2, 0, 1]));
        let mut reversed = base.clone();
        reversed.invert_axis(Axis(1));
        let mut gappy = array(&[4, 10, 6], 8);
        gappy.slice_collapse(s![.., ..;2, ..]);
        assert!(gappy.as_slice_memory_order().is_none());
        let others = [array(&[6, 4, 5], 9), array(&[5], 10), array(&[6, 1, 1], 11), array(&[4, 1, 6], 12)];
        for x in [&transposed, &reversed, &gappy] {
            for y in &others {
                if multidirectional(&[x.shape(), y.shape()]).is_err() {
                    continue;
                }
                let want = reference(x, y, |p, q| p - 2.0 * q);
                assert_eq!(compute(x, y, &par), want, "{:?} ({:?}) with {:?}", x.shape(), x.strides(), y.shape());
                let want = reference(y, x, |p, q| p - 2.0 * q);
                assert_eq!(compute(y, x, &par), want, "{:?} with {:?} ({:?})", y.shape(), x.shape(), x.strides());
            }
        }
    }

    #[test]
    fn results_are_bitwise_equal_for_1_2_and_8_threads() {
        // Rows of 301 so blocks of 16384 cut rows in the middle.
        let cases: &[(&[usize], &[usize])] = &[
            (&[300, 301], &[300, 301]),
            (&[300, 301], &[301]),
            (&[300, 301], &[300, 1]),
            (&[300, 301], &[]),
            (&[3, 100, 301], &[3, 1, 301]),
        ];
        let pars = [Parallel::serial(), Parallel::with_threads(2).unwrap(), Parallel::with_threads(8).unwrap()];
        for (sa, sb) in cases {
            let a = array(sa, 21);
            let b = array(sb, 22);
            let a_t = a.clone().reversed_axes();
            // Leading unit axes keep B broadcastable once both are reversed.
            let mut padded = vec![1; a.ndim() - b.ndim()];
            padded.extend_from_slice(b.shape());
            let b_t = b.clone().into_shape_with_order(IxDyn(&padded)).unwrap().reversed_axes();
            let want = reference(&a, &b, |x, y| x - 2.0 * y);
            for par in &pars {
                assert!(par.n_threads() == 1 || par.splits(want.len()));
                let got = compute(&a, &b, par);
                assert_eq!(
                    got.mapv(f64::to_bits),
                    want.mapv(f64::to_bits),
                    "{sa:?} {sb:?}, {} threads",
                    par.n_threads()
                );
                // Transposed operands give the transposed result.
                let got_t = compute(&a_t, &b_t, par);
                assert_eq!(got_t, want.clone().reversed_axes(), "{sa:?}ᵀ {sb:?}ᵀ, {} threads", par.n_threads());
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let a: Vec<f32> = values(70_001, 3).iter().map(|&v| v as f32 / 7.0).collect();
        let b: Vec<f32> = values(70_001, 4).iter().map(|&v| v as f32 / 3.0).collect();
        let a = ArrayD::from_shape_vec(IxDyn(&[70_001]), a).unwrap();
        let b = ArrayD::from_shape_vec(IxDyn(&[70_001]), b).unwrap();
        let bias = b.slice(s![..101]).to_owned().into_dyn();
        let rows = a.slice(s![..70_000]).to_owned().into_shape_with_order(IxDyn(&[700, 100])).unwrap();
        let ops: [fn(f32, f32) -> f32; 4] = [|x, y| x + y, |x, y| x - y, |x, y| x * y, |x, y| x / y];
        let serial = Parallel::serial();
        for f in ops {
            let mut outputs = Vec::new();
            for isa in Isa::supported() {
                let mut zip = vec![0f32; 70_001];
                binary_into_isa(isa, &a.view(), &b.view(), &[70_001], &mut zip, f, &serial).unwrap();
                let mut splat = vec![0f32; 70_001];
                binary_into_isa(isa, &a.view(), &bias.slice(s![3..4]).into_dyn(), &[70_001], &mut splat, f, &serial)
                    .unwrap();
                let row_bias = bias.slice(s![..100]).into_dyn();
                let mut row = rows.as_slice().unwrap().to_vec();
                binary_inplace_isa(isa, &mut row, &[700, 100], &row_bias, f, &serial).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                outputs.push((isa, bits(&zip), bits(&splat), bits(&row)));
            }
            for other in &outputs[1..] {
                assert!(outputs[0].1 == other.1 && outputs[0].2 == other.2 && outputs[0].3 == other.3, "{:?}", other.0);
            }
            // And the same as the scalar definition.
            let want: Vec<u32> = a.iter().zip(&b).map(|(&x, &y)| f(x, y).to_bits()).collect();
            assert_eq!(outputs[0].1, want);
        }
    }

    #[test]
    fn mismatched_operands_and_buffers_are_errors_not_panics() {
        let a = array(&[2, 3], 1);
        let b = array(&[4], 2);
        let mut dst = vec![0.0; 6];
        let add = |x: f64, y: f64| x + y;
        let par = Parallel::serial();
        assert!(matches!(
            binary_into(&a.view(), &b.view(), &[2, 3], &mut dst, add, &par),
            Err(BroadcastError::Mismatch { .. })
        ));
        let b = array(&[3], 2);
        assert_eq!(
            binary_into(&a.view(), &b.view(), &[2, 3], &mut dst[..5], add, &par),
            Err(BroadcastError::BadOutput)
        );
        assert_eq!(
            binary_inplace(&mut dst, &[2, 3], &array(&[2, 2, 3], 3).view(), add, &par),
            Err(BroadcastError::RankTooHigh { rank: 3, target_rank: 2 })
        );
    }

    #[test]
    fn integer_arithmetic_wraps_and_division_by_zero_is_zero() {
        assert_eq!(127i8.add(1), -128);
        assert_eq!(i32::MIN.sub(1), i32::MAX);
        assert_eq!(i64::MAX.mul(2), -2);
        assert_eq!((-7i32).div(2), -3);
        assert_eq!(7i16.div(-2), -3);
        assert_eq!(5i64.div(0), 0);
        assert_eq!(i8::MIN.div(-1), i8::MIN);
        assert_eq!(f16::from_f32(1.0).add(f16::from_f32(f32::from(f16::EPSILON) / 2.0)), f16::from_f32(1.0));
        assert_eq!(bf16::from_f32(3.0).div(bf16::from_f32(0.0)), bf16::INFINITY);
    }
}
