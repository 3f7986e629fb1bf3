//! Run-time choice of the SIMD instruction set for the f32 kernels.
//!
//! A plain `cargo build --release` targets baseline x86-64 (SSE2), so the
//! fast paths cannot be chosen at compile time. Instead each kernel is
//! compiled four times from one generic body: for AVX-512F, for AVX2+FMA,
//! for SSE2 (the x86-64 baseline) and for a portable one-lane fallback
//! (other architectures). [`active`] picks the best one the
//! CPU offers, once per process, and every kernel call dispatches on it.
//!
//! # Forcing a path
//!
//! The environment variable `ONNXI_SIMD` overrides the choice, for tests
//! and for comparing paths:
//!
//! | value    | path                                      |
//! |----------|-------------------------------------------|
//! | `scalar` | portable fallback, one lane at a time     |
//! | `sse2`   | 4 lanes, SSE2 (every x86-64 CPU)          |
//! | `avx2`   | 8 lanes, AVX2 and FMA                     |
//! | `avx512` | 16 lanes, AVX-512F                        |
//!
//! A request for a path the CPU lacks is lowered to the best path it has.
//! An unknown value leaves the choice to the CPU; [`requested`] reports it
//! as an error (the `onnxi` command refuses it). The variable is read once,
//! on first use.
//!
//! # How the generic code stays safe
//!
//! Vector values can only be made through a *token* (`Scalar`, `Sse2`,
//! `Avx2`, `Avx512`), and a token can only be made after the CPU feature was
//! detected. So every intrinsic call inside a vector method is justified by
//! the token that had to exist for the vector to exist. The per-ISA entry
//! points carry `#[target_feature]`, and the generic bodies are
//! `#[inline(always)]`, so the intrinsics are inlined into code compiled for
//! that instruction set.
//!
//! # What is public
//!
//! Only [`Isa`] and [`active`]. The vector types, their tokens, the
//! `VecF32` trait (whose AVX2 masks are raw `__m256` values) and the
//! per-ISA modules are private to the crate, so code outside it cannot run
//! an instruction the CPU lacks; the public kernels that take an [`Isa`]
//! (`unary::apply_f32_isa`, `softmax::softmax_f32_isa`, ...) run a path
//! the CPU lacks as the best path below it that the CPU has
//! ([`Isa::lowered`]). Neither the modules nor the types can be named:
//!
//! ```compile_fail,E0603
//! use onnxi::kernels::simd::avx512::{Avx512, F32x16};
//! ```
//!
//! ```compile_fail,E0603
//! use onnxi::kernels::simd::avx2::{Avx2, F32x8};
//! ```
//!
//! ```compile_fail,E0603
//! use onnxi::kernels::simd::sse2::{F32x4, Sse2};
//! ```
//!
//! ```compile_fail,E0603
//! use onnxi::kernels::simd::VecF32;
//! ```

use std::ops::{Add, Div, Mul, Sub};
use std::sync::OnceLock;

// The vector types and their tokens stay inside the crate: the vector
// methods are safe functions that run the ISA's instructions, sound only
// because a value can only be made through a token that checked the CPU.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
pub(crate) mod sse2;

/// An instruction set the f32 kernels can run on, from slowest to fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable code, one lane at a time (what non-x86 targets get).
    Scalar,
    /// 4 lanes with SSE2, which every x86-64 CPU has.
    Sse2,
    /// 8 lanes with AVX2 and FMA.
    Avx2,
    /// 16 lanes with AVX-512F.
    Avx512,
}

impl Isa {
    /// Every path, slowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Sse2, Isa::Avx2, Isa::Avx512];

    /// The name used by `ONNXI_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Sse2 => "sse2",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses an `ONNXI_SIMD` value (case-insensitive).
    pub fn parse(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Sse2 => sse2::Sse2::new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2::Avx2::new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512::Avx512::new().is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The paths this CPU can run, slowest first.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_supported()).collect()
    }

    /// The fastest path this CPU can run.
    pub fn best() -> Isa {
        Isa::Avx512.lowered()
    }

    /// `self`, or the best supported path below it.
    pub fn lowered(self) -> Isa {
        Isa::ALL.into_iter().rev().find(|isa| *isa <= self && isa.is_supported()).unwrap_or(Isa::Scalar)
    }
}

/// The path `ONNXI_SIMD` asks for: `Ok(None)` when it is unset or empty.
///
/// # Errors
/// A message naming the value and the valid ones when it names no path.
pub fn requested() -> Result<Option<Isa>, String> {
    match std::env::var("ONNXI_SIMD") {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(value)) => Err(format!("ONNXI_SIMD={value:?} is not text")),
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Isa::parse(&value).map(Some).ok_or_else(|| {
            let names: Vec<&str> = Isa::ALL.iter().map(|isa| isa.name()).collect();
            format!("ONNXI_SIMD={value:?} names no SIMD path; use one of {}", names.join(", "))
        }),
    }
}

/// The path every f32 kernel uses: the best the CPU has, unless
/// `ONNXI_SIMD` asks for another (see the module docs).
pub fn active() -> Isa {
    static ACTIVE: OnceLock<Isa> = OnceLock::new();
    *ACTIVE.get_or_init(|| match requested() {
        Ok(Some(isa)) => isa.lowered(),
        _ => Isa::best(),
    })
}

/// Orders earlier non-temporal stores ([`VecF32::store_stream`]) before
/// later stores, so a thread that then signals completion publishes them.
#[inline]
pub(crate) fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SFENCE is part of SSE, which every x86-64 CPU has.
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

/// Asks for the cache lines of `len` bytes from `bytes_ahead` past `src`
/// to be read into L1, and those past `dst` to be fetched for writing, so
/// that a loop whose work per line is long (sigmoid, tanh) does not wait
/// for them when it gets there. A hint: addresses past the end of either
/// buffer are harmless (a prefetch never faults), and nothing is read.
#[inline(always)]
pub(crate) fn prefetch_ahead(src: *const f32, dst: *const f32, bytes_ahead: usize, len: usize) {
    prefetch_read(src, bytes_ahead, len);
    prefetch_write(dst, bytes_ahead, len);
}

/// The reading half of [`prefetch_ahead`].
#[inline(always)]
pub(crate) fn prefetch_read(src: *const f32, bytes_ahead: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    prefetch_lines::<{ std::arch::x86_64::_MM_HINT_T0 }>(src, bytes_ahead, len);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (src, bytes_ahead, len);
}

/// The writing half of [`prefetch_ahead`].
#[inline(always)]
pub(crate) fn prefetch_write(dst: *const f32, bytes_ahead: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    prefetch_lines::<{ std::arch::x86_64::_MM_HINT_ET0 }>(dst, bytes_ahead, len);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (dst, bytes_ahead, len);
}

/// One prefetch with `HINT` per 64-byte line of `len` bytes from
/// `bytes_ahead` past `start`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_lines<const HINT: i32>(start: *const f32, bytes_ahead: usize, len: usize) {
    let start = start.cast::<i8>().wrapping_add(bytes_ahead);
    for line in (0..len).step_by(64) {
        // SAFETY: PREFETCHh is part of SSE, and PREFETCHW a hint that CPUs
        // without it execute as a no-op; neither dereferences its address,
        // which `wrapping_add` formed without UB.
        unsafe { std::arch::x86_64::_mm_prefetch::<HINT>(start.wrapping_add(line)) };
    }
}

/// A vector of f32 lanes with the operations the kernels need.
///
/// Comparisons are IEEE: ordered ones are false when a lane is NaN.
pub(crate) trait VecF32:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self>
{
    /// Proof that the instruction set is available.
    type Token: Copy;
    /// One boolean per lane.
    type Mask: Copy;
    /// Per-lane f64 running sums.
    type Acc: Copy;
    /// Number of f32 lanes.
    const LANES: usize;

    /// Every lane set to `value`.
    fn splat(token: Self::Token, value: f32) -> Self;
    /// The first `LANES` elements of `src` (which must hold that many).
    fn load(token: Self::Token, src: &[f32]) -> Self;
    /// Writes the lanes to the first `LANES` elements of `dst`.
    fn store(self, dst: &mut [f32]);
    /// The elements of `src` (fewer than `LANES`) in the first lanes, and
    /// `pad` in the others; no memory past `src` is touched.
    fn load_partial(token: Self::Token, src: &[f32], pad: f32) -> Self;
    /// Writes the first `dst.len()` lanes (fewer than `LANES`) to `dst`.
    fn store_partial(self, dst: &mut [f32]);
    /// Like [`VecF32::store`], bypassing the caches where the ISA can (a
    /// non-temporal store: the line is not read first) when `dst` is
    /// aligned to the vector size (else a plain store). The writer must
    /// call [`store_fence`] before other threads may read what it wrote.
    #[inline(always)]
    fn store_stream(self, dst: &mut [f32]) {
        self.store(dst);
    }
    /// Whether [`VecF32::mul_add`] is fused (one rounding): true on the
    /// paths with FMA.
    const FUSED: bool = false;
    /// `self * mul + add`, fused (one rounding) where the ISA has FMA.
    fn mul_add(self, mul: Self, add: Self) -> Self;
    /// Absolute value (clears the sign bit; NaN stays NaN).
    fn abs(self) -> Self;
    /// IEEE square root, correctly rounded (the instruction on every
    /// path): sqrt(-0) = -0, sqrt(x < 0) = NaN, sqrt(inf) = inf.
    fn sqrt(self) -> Self;
    /// `self` with the sign bit of `sign`.
    fn copysign(self, sign: Self) -> Self;
    /// `min(self, hi)`; a NaN lane stays NaN.
    fn cap(self, hi: Self) -> Self;
    /// `self * 2^k` for integral `k` in [-151, 128], rounded once, so that
    /// overflow gives inf and underflow gives the correctly rounded
    /// subnormal or zero.
    fn ldexp(self, k: Self) -> Self;
    /// `self * 2^k` for `self` in [0.5, 2) and integral `k` in [-125, 126]
    /// (so the result is normal); a NaN `self` with a NaN `k` gives NaN.
    fn ldexp_normal(self, k: Self) -> Self;
    /// Lanes where `self < other`.
    fn lt(self, other: Self) -> Self::Mask;
    /// Lanes where `self > other`.
    fn gt(self, other: Self) -> Self::Mask;
    /// Lanes where `self >= other`.
    #[allow(dead_code, reason = "no kernel compares this way today; kept so the comparison set stays complete")]
    fn ge(self, other: Self) -> Self::Mask;
    /// Lanes where `!(self <= other)`: greater, or either is NaN.
    fn gt_or_nan(self, other: Self) -> Self::Mask;
    /// Lanes equal to `other`.
    #[allow(dead_code, reason = "no kernel compares this way today; kept so the comparison set stays complete")]
    fn eq(self, other: Self) -> Self::Mask;
    /// Whether any lane of `mask` is set.
    fn any(mask: Self::Mask) -> bool;
    /// Whether every lane of `mask` is set.
    fn all(mask: Self::Mask) -> bool;
    /// `mask ? if_true : if_false`, lane by lane.
    fn select(mask: Self::Mask, if_true: Self, if_false: Self) -> Self;
    /// Lane-wise maximum; which operand a NaN lane gives is unspecified.
    fn max(self, other: Self) -> Self;
    /// The largest lane; NaN lanes may or may not win.
    fn reduce_max(self) -> f32;
    /// An all-zero accumulator.
    fn acc_zero(token: Self::Token) -> Self::Acc;
    /// Adds the lanes, widened to f64, to `acc`.
    fn acc_add(acc: Self::Acc, value: Self) -> Self::Acc;
    /// Writes an accumulator's `LANES` sums to `dst`, in lane order.
    fn acc_store(acc: Self::Acc, dst: &mut [f64]);
    /// The sum of an accumulator's lanes, in lane order.
    #[inline(always)]
    fn acc_total(acc: Self::Acc) -> f64 {
        let mut lanes = [0f64; 16];
        Self::acc_store(acc, &mut lanes);
        lanes[..Self::LANES].iter().sum()
    }
}
