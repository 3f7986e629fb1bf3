//! A sliding window's taps as rows: the geometry that im2col, pooling and
//! the depthwise convolution walk, without a per-element offset table.
//!
//! The input coordinate a tap reads along one spatial dimension is
//! `out · stride + k · dilation − pad_begin`, independent of the other
//! dimensions. So every dimension but the last is resolved into a small
//! table of *row starts* (one per outer kernel position and outer output
//! position: the flat offset of the input row it reads, or [`PAD`]), and the
//! last dimension into one *span* per last-axis kernel tap: the output
//! positions `lo..hi` whose input falls inside the row, at `start + out ·
//! stride`. A kernel then copies, compares or multiplies along contiguous
//! (or evenly strided) runs of the output row, which the compiler can
//! vectorise, and only the pads at the row ends are special.
//!
//! The taps are visited in the same order as [`Window::offsets`] lists
//! them (row-major over the kernel), so sums and maxima come out bit for
//! bit as a table-driven loop computes them.

use super::conv::{PAD, Window};

/// The run of output positions one last-axis kernel tap reads inside the
/// input row: outputs `lo..hi` read input `start + out · stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First output position inside the row.
    pub lo: usize,
    /// One past the last output position inside the row (`lo` when none).
    pub hi: usize,
    /// Input offset within the row of output position 0 (may be negative
    /// only for positions below `lo`, which are never read).
    pub start: isize,
}

impl Span {
    /// The input offset within the row that output `out` (in `lo..hi`)
    /// reads.
    #[inline]
    pub fn at(&self, out: usize, stride: usize) -> usize {
        (self.start + (out * stride) as isize) as usize
    }
}

/// A window over one input plane resolved into row starts and last-axis
/// spans (see the module).
#[derive(Debug, Clone)]
pub struct Taps {
    /// Kernel positions over the outer (all but last) dimensions.
    pub n_kernel_outer: usize,
    /// Output positions over the outer dimensions.
    pub n_out_outer: usize,
    /// `row_starts[k_outer * n_out_outer + o_outer]`: flat offset in the
    /// input plane of the row tap `k_outer` reads for outer output
    /// position `o_outer`, or [`PAD`].
    pub row_starts: Vec<usize>,
    /// One span per last-axis kernel tap.
    pub spans: Vec<Span>,
    /// Output positions along the last axis (an output row's length).
    pub out_last: usize,
    /// The window's stride along the last axis.
    pub stride_last: usize,
}

impl Taps {
    /// Resolves `window` over an input plane of `input` sizes producing
    /// `output` sizes (both of the window's rank, at least 1).
    pub fn new(window: &Window, input: &[usize], output: &[usize]) -> Taps {
        let rank = input.len();
        let last = rank - 1;
        let outer_window = Window {
            kernel: window.kernel[..last].to_vec(),
            strides: window.strides[..last].to_vec(),
            dilations: window.dilations[..last].to_vec(),
            pads_begin: window.pads_begin[..last].to_vec(),
            pads_end: window.pads_end[..last].to_vec(),
        };
        // Offsets over the outer dims, in units of input rows.
        let row_len = input[last];
        let row_starts = outer_window
            .offsets(&input[..last], &output[..last])
            .into_iter()
            .map(|offset| if offset == PAD { PAD } else { offset * row_len })
            .collect();
        let (stride, dilation, pad) = (window.strides[last], window.dilations[last], window.pads_begin[last]);
        let out_last = output[last];
        let spans = (0..window.kernel[last])
            .map(|k| {
                let start = (k * dilation) as isize - pad as isize;
                // Output `o` reads `start + o·stride`, inside when in 0..row_len.
                let inside = |o: usize| {
                    let coord = start + (o * stride) as isize;
                    coord >= 0 && (coord as usize) < row_len
                };
                let lo = (0..out_last).find(|&o| inside(o)).unwrap_or(out_last);
                let hi = (lo..out_last).find(|&o| !inside(o)).unwrap_or(out_last);
                Span { lo, hi, start }
            })
            .collect();
        Taps {
            n_kernel_outer: outer_window.kernel.iter().product(),
            n_out_outer: output[..last].iter().product(),
            row_starts,
            spans,
            out_last,
            stride_last: stride,
        }
    }

    /// Number of kernel taps (outer positions × last-axis taps).
    pub fn n_kernel(&self) -> usize {
        self.n_kernel_outer * self.spans.len()
    }

    /// Number of output positions in a plane.
    pub fn n_out(&self) -> usize {
        self.n_out_outer * self.out_last
    }

    /// The row start of outer kernel position `k_outer` at outer output
    /// position `o_outer`, or `None` in the padding.
    #[inline]
    pub fn row(&self, k_outer: usize, o_outer: usize) -> Option<usize> {
        let start = self.row_starts[k_outer * self.n_out_outer + o_outer];
        (start != PAD).then_some(start)
    }

    /// Writes into `dst` (one output plane) the values tap `k` (row-major
    /// over the kernel) reads from `plane`, `zero` in the padding: one row
    /// of im2col.
    pub fn gather<T: Copy>(&self, k: usize, plane: &[T], dst: &mut [T], zero: T) {
        let (k_outer, k_last) = (k / self.spans.len(), k % self.spans.len());
        let span = self.spans[k_last];
        let stride = self.stride_last;
        for (o_outer, out_row) in dst.chunks_exact_mut(self.out_last).enumerate() {
            let Some(row) = self.row(k_outer, o_outer) else {
                out_row.fill(zero);
                continue;
            };
            out_row[..span.lo].fill(zero);
            out_row[span.hi..].fill(zero);
            if span.lo == span.hi {
                continue;
            }
            let first = row + span.at(span.lo, stride);
            let inside = &mut out_row[span.lo..span.hi];
            if stride == 1 {
                inside.copy_from_slice(&plane[first..first + inside.len()]);
            } else {
                for (value, src) in inside.iter_mut().zip(plane[first..].iter().step_by(stride)) {
                    *value = *src;
                }
            }
        }
    }

    /// For each output position of a plane, how many taps fall inside
    /// the input (not in the padding).
    pub fn inside_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.n_out()];
        for (o_outer, out_row) in counts.chunks_exact_mut(self.out_last).enumerate() {
            for k_outer in 0..self.n_kernel_outer {
                if self.row(k_outer, o_outer).is_none() {
                    continue;
                }
                for span in &self.spans {
                    out_row[span.lo..span.hi].iter_mut().for_each(|count| *count += 1);
                }
            }
        }
        counts
    }

    /// Calls `f(output, input)` for each output of `out_row` that `span`
    /// covers and the element of `input_row` it reads. A unit stride walks
    /// both as contiguous slices, which the compiler vectorises.
    #[inline]
    pub fn zip_span<T, S: Copy>(&self, out_row: &mut [T], input_row: &[S], span: Span, mut f: impl FnMut(&mut T, S)) {
        let stride = self.stride_last;
        let first = span.at(span.lo, stride);
        let outputs = &mut out_row[span.lo..span.hi];
        if stride == 1 {
            outputs.iter_mut().zip(&input_row[first..]).for_each(|(output, &input)| f(output, input));
        } else {
            outputs
                .iter_mut()
                .zip(input_row[first..].iter().step_by(stride))
                .for_each(|(output, &input)| f(output, input));
        }
    }

    /// Calls `visit(out_row, row_of_input, span)` for every tap inside the
    /// input, in kernel order, for each output row of `dst` (one output
    /// plane): `out_row` is the output row, `row_of_input` the input row
    /// the tap reads, and the span tells which outputs read which inputs.
    /// Taps in the padding are skipped.
    #[inline]
    pub fn for_each_tap<T, S>(&self, plane: &[S], dst: &mut [T], mut visit: impl FnMut(usize, &mut [T], &[S], Span)) {
        let n_last = self.spans.len();
        for (o_outer, out_row) in dst.chunks_exact_mut(self.out_last).enumerate() {
            for k_outer in 0..self.n_kernel_outer {
                let Some(row) = self.row(k_outer, o_outer) else { continue };
                for (k_last, &span) in self.spans.iter().enumerate() {
                    if span.lo < span.hi {
                        visit(k_outer * n_last + k_last, out_row, &plane[row..], span);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kernel: &[usize], strides: &[usize], dilations: &[usize], pads: &[usize]) -> Window {
        Window {
            kernel: kernel.to_vec(),
            strides: strides.to_vec(),
            dilations: dilations.to_vec(),
            pads_begin: pads.to_vec(),
            pads_end: pads.to_vec(),
        }
    }

    /// Every tap the rows visit is the table's entry, and the table's
    /// non-pad entries are all visited, for 1-D, 2-D and 3-D windows with
    /// strides, dilations and pads (incl. pads wider than the input).
    #[test]
    fn rows_and_spans_cover_exactly_the_offset_table() {
        let cases = [
            (window(&[3], &[1], &[1], &[1]), vec![7]),
            (window(&[7, 7], &[2, 2], &[1, 1], &[3, 3]), vec![16, 16]),
            (window(&[3, 2], &[2, 3], &[2, 1], &[2, 1]), vec![9, 7]),
            (window(&[2, 3, 2], &[1, 2, 1], &[1, 1, 2], &[1, 0, 1]), vec![4, 5, 6]),
            (window(&[3, 3], &[1, 1], &[1, 1], &[4, 4]), vec![2, 2]),
            (window(&[2], &[1], &[1], &[1]), vec![1]),
            (window(&[3], &[2], &[3], &[3]), vec![1]),
        ];
        for (window, input) in cases {
            let output = window.output_dims(&input, false).unwrap();
            let table = window.offsets(&input, &output);
            let taps = Taps::new(&window, &input, &output);
            let n_out = taps.n_out();
            assert_eq!(n_out, output.iter().product::<usize>());
            assert_eq!(taps.n_kernel(), window.kernel.iter().product::<usize>());
            let plane: Vec<usize> = (0..input.iter().product()).collect();
            // gather: row k of im2col, with PAD standing in for padding.
            for k in 0..taps.n_kernel() {
                let mut got = vec![0usize; n_out];
                let shifted: Vec<usize> = plane.iter().map(|v| v + 1).collect();
                taps.gather(k, &shifted, &mut got, 0);
                let want: Vec<usize> =
                    table[k * n_out..(k + 1) * n_out].iter().map(|&o| if o == PAD { 0 } else { o + 1 }).collect();
                assert_eq!(got, want, "{window:?} {input:?} k={k}");
            }
            // for_each_tap: the (k, output position, input offset) triples.
            let mut visited = Vec::new();
            let mut dst = vec![0u8; n_out];
            let row_len = taps.out_last;
            let base = dst.as_ptr() as usize;
            taps.for_each_tap(&plane, &mut dst, |k, out_row, input_row, span| {
                let first_out = (out_row.as_ptr() as usize - base) / row_len * row_len;
                for o in span.lo..span.hi {
                    visited.push((k, first_out + o, input_row[span.at(o, taps.stride_last)]));
                }
            });
            let mut want: Vec<(usize, usize, usize)> = (0..taps.n_kernel())
                .flat_map(|k| (0..n_out).map(move |o| (k, o)))
                .filter(|&(k, o)| table[k * n_out + o] != PAD)
                .map(|(k, o)| (k, o, table[k * n_out + o]))
                .collect();
            let counts = taps.inside_counts();
            for (o, &count) in counts.iter().enumerate() {
                let want = (0..taps.n_kernel()).filter(|&k| table[k * n_out + o] != PAD).count();
                assert_eq!(count, want, "{window:?} {input:?} o={o}");
            }
            visited.sort_unstable();
            want.sort_unstable();
            assert_eq!(visited, want, "{window:?} {input:?}");
        }
    }
}
