//! Pooling over `[N, C, spatial…]` tensors: max (with the argmax index),
//! average (padding counted or not), and the global forms. Each (batch,
//! channel) plane is independent; large tensors split over whole planes,
//! so results do not depend on the thread count.

use num_traits::Float;

use super::Parallel;
use super::conv::{PAD, Window};
use super::taps::Taps;

/// How AveragePool divides a window's sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AverageCount {
    /// By the number of taps inside the input (`count_include_pad = 0`).
    ExcludePad,
    /// By the number of taps inside the padded input
    /// (`count_include_pad = 1`); taps past the end padding, which only
    /// `ceil_mode` produces, are not counted.
    IncludePad,
}

/// The planes a pooling op works on: how many, and their sizes before and
/// after.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    /// Number of (batch, channel) planes.
    pub count: usize,
    /// Spatial sizes of the input.
    pub input: &'a [usize],
    /// Spatial sizes of the output.
    pub output: &'a [usize],
}

/// Max pooling over `planes` (input sizes to output sizes).
/// Returns the maxima and, when `with_indices`, each maximum's flat offset
/// within its plane (row-major over `input`; the first of equal maxima).
/// A window entirely in the padding yields `lowest` (it cannot happen with
/// valid pads, which are smaller than the kernel).
pub fn max_pool<T: Copy + PartialOrd + Send + Sync>(
    x: &[T],
    planes: Planes<'_>,
    window: &Window,
    lowest: T,
    with_indices: bool,
    par: &Parallel,
) -> (Vec<T>, Vec<usize>) {
    let Planes { count: planes, input, output } = planes;
    let in_size: usize = input.iter().product();
    let out_size: usize = output.iter().product();
    let n_kernel: usize = window.kernel.iter().product();
    let mut out = vec![lowest; planes * out_size];
    let mut indices = vec![0usize; if with_indices { planes * out_size } else { 0 }];
    if out.is_empty() {
        return (out, indices);
    }
    let work = out.len().saturating_mul(n_kernel);
    if with_indices {
        let table = window.offsets(input, output);
        // Pair each maximum with its index so one parallel pass writes both.
        let mut pairs: Vec<(T, usize)> = vec![(lowest, 0); planes * out_size];
        par.for_blocks_by_work(&mut pairs, out_size, work, |plane, dst| {
            let src = &x[plane * in_size..(plane + 1) * in_size];
            for (position, slot) in dst.iter_mut().enumerate() {
                let mut best: Option<(T, usize)> = None;
                for kernel_pos in 0..n_kernel {
                    let offset = table[kernel_pos * out_size + position];
                    if offset == PAD {
                        continue;
                    }
                    let value = src[offset];
                    if best.is_none_or(|(max, _)| value > max) {
                        best = Some((value, offset));
                    }
                }
                *slot = best.unwrap_or((lowest, 0));
            }
        });
        for ((value, index), (max, offset)) in out.iter_mut().zip(indices.iter_mut()).zip(pairs) {
            *value = max;
            *index = offset;
        }
        return (out, indices);
    }
    let taps = Taps::new(window, input, output);
    par.for_blocks_by_work(&mut out, out_size, work, |plane, dst| {
        let src = &x[plane * in_size..(plane + 1) * in_size];
        taps.for_each_tap(src, dst, |_, out_row, input_row, span| {
            // A select, not a branch: the taps' order decides nothing else.
            taps.zip_span(out_row, input_row, span, |value, input| {
                *value = if input > *value { input } else { *value };
            });
        });
    });
    (out, indices)
}

/// Average pooling over `planes` planes of `input` sizes into `output`
/// sizes, dividing each sum as `count` says.
pub fn average_pool<T: Float + Send + Sync>(
    x: &[T],
    planes: usize,
    input: &[usize],
    output: &[usize],
    window: &Window,
    count: AverageCount,
    par: &Parallel,
) -> Vec<T> {
    let in_size: usize = input.iter().product();
    let out_size: usize = output.iter().product();
    let taps = Taps::new(window, input, output);
    let n_kernel = taps.n_kernel();
    // Taps inside the input per output position, the same in every plane.
    let inside = taps.inside_counts();
    // The divisor of each output position.
    let divisors: Vec<T> = (0..out_size)
        .map(|position| {
            let n = match count {
                AverageCount::ExcludePad => inside[position],
                AverageCount::IncludePad => padded_taps(window, input, output, position),
            };
            T::from(n.max(1)).unwrap_or_else(T::one)
        })
        .collect();
    let mut out = vec![T::zero(); planes * out_size];
    let work = out.len().saturating_mul(n_kernel);
    par.for_blocks_by_work(&mut out, out_size, work, |plane, dst| {
        let src = &x[plane * in_size..(plane + 1) * in_size];
        taps.for_each_tap(src, dst, |_, out_row, input_row, span| {
            taps.zip_span(out_row, input_row, span, |value, input| *value = *value + input);
        });
        for (value, &divisor) in dst.iter_mut().zip(&divisors) {
            *value = *value / divisor;
        }
    });
    out
}

/// The number of taps of the window at output `position` that fall inside
/// the padded input (input plus both pads).
fn padded_taps(window: &Window, input: &[usize], output: &[usize], position: usize) -> usize {
    let mut rest = position;
    let mut taps = 1usize;
    for dim in (0..input.len()).rev() {
        let out_pos = rest % output[dim];
        rest /= output[dim];
        let padded = input[dim] + window.pads_begin[dim] + window.pads_end[dim];
        let start = out_pos * window.strides[dim];
        let inside = (0..window.kernel[dim]).filter(|&k| start + k * window.dilations[dim] < padded).count();
        taps *= inside;
    }
    taps
}

/// Planes per parallel job for the global pools: about
/// [`CHUNK_ELEMS`](super::par::CHUNK_ELEMS) input elements each.
fn planes_per_job(plane: usize) -> usize {
    (super::par::CHUNK_ELEMS / plane.max(1)).max(1)
}

/// Mean of each of the `x.len() / plane` planes.
pub fn global_average<T: Float + Send + Sync>(x: &[T], plane: usize, par: &Parallel) -> Vec<T> {
    let planes = x.len().checked_div(plane).unwrap_or(0);
    let mut out = vec![T::zero(); planes];
    let divisor = T::from(plane.max(1)).unwrap_or_else(T::one);
    let block = planes_per_job(plane);
    par.for_blocks_by_work(&mut out, block, x.len(), |job, dst| {
        for (offset, value) in dst.iter_mut().enumerate() {
            let idx = job * block + offset;
            let sum = x[idx * plane..(idx + 1) * plane].iter().fold(T::zero(), |acc, &value| acc + value);
            *value = sum / divisor;
        }
    });
    out
}

/// Maximum of each of the `x.len() / plane` planes (NaN if a plane holds
/// one, as numpy's `max`).
pub fn global_max<T: Float + Send + Sync>(x: &[T], plane: usize, par: &Parallel) -> Vec<T> {
    let planes = x.len().checked_div(plane).unwrap_or(0);
    let mut out = vec![T::zero(); planes];
    let block = planes_per_job(plane);
    par.for_blocks_by_work(&mut out, block, x.len(), |job, dst| {
        for (offset, value) in dst.iter_mut().enumerate() {
            let idx = job * block + offset;
            *value = x[idx * plane..(idx + 1) * plane].iter().fold(T::neg_infinity(), |acc, &value| {
                if value.is_nan() || acc.is_nan() { T::nan() } else { acc.max(value) }
            });
        }
    });
    out
}
