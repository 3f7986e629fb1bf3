//! Convolution: window geometry (shared with pooling), im2col + GEMM, a
//! direct loop for depthwise convolutions, the 1×1 case straight to GEMM,
//! and the transposed convolution as GEMM + col2im.
//!
//! Tensors are `[N, C, spatial…]` in row-major order, with any number of
//! spatial dimensions. A window's positions are looked up in a table built
//! once per call: for each kernel position and each output position, the
//! flat offset of the input element it reads, or [`PAD`] where it falls in
//! the padding. im2col, pooling and col2im are then gathers or scatters
//! through that table, the same code for 1-D, 2-D and 3-D.

use num_traits::Float;

use super::Parallel;
use super::gemm::{Gemm, GemmElem, MatRef};
use super::taps::Taps;

/// Marks a window position that falls in the padding.
pub const PAD: usize = usize::MAX;

/// The most elements an output or scratch buffer may have: an op whose
/// attributes ask for more (huge pads or dilations) is refused instead of
/// trying to allocate it.
pub const MAX_ELEMS: usize = 1 << 32;

/// A sliding window over the spatial dimensions, with the pads resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Kernel size per spatial dimension.
    pub kernel: Vec<usize>,
    /// Step per spatial dimension (at least 1).
    pub strides: Vec<usize>,
    /// Spacing of kernel taps per spatial dimension (at least 1).
    pub dilations: Vec<usize>,
    /// Padding before each spatial dimension.
    pub pads_begin: Vec<usize>,
    /// Padding after each spatial dimension.
    pub pads_end: Vec<usize>,
}

impl Window {
    /// The extent of the dilated kernel along `dim`.
    pub fn span(&self, dim: usize) -> usize {
        self.dilations[dim].saturating_mul(self.kernel[dim].saturating_sub(1)).saturating_add(1)
    }

    /// Output sizes over `input` spatial sizes: `floor` (or `ceil` with
    /// `ceil_mode`) of `(in + pads − span) / stride + 1`. With `ceil_mode` a
    /// last window that would start in the end padding is dropped (as
    /// PyTorch and the ONNX reference do).
    ///
    /// # Errors
    /// A text naming the dimension when the padded input is smaller than the
    /// dilated kernel.
    pub fn output_dims(&self, input: &[usize], ceil_mode: bool) -> Result<Vec<usize>, String> {
        input
            .iter()
            .enumerate()
            .map(|(dim, &size)| {
                let padded = size.saturating_add(self.pads_begin[dim]).saturating_add(self.pads_end[dim]);
                let span = self.span(dim);
                if padded < span {
                    return Err(format!(
                        "spatial dimension {dim}: the dilated kernel ({span}) is larger than the padded input ({padded})"
                    ));
                }
                let stride = self.strides[dim];
                let mut out = if ceil_mode { (padded - span).div_ceil(stride) + 1 } else { (padded - span) / stride + 1 };
                if ceil_mode && out > 1 && (out - 1) * stride >= size + self.pads_begin[dim] {
                    out -= 1;
                }
                Ok(out)
            })
            .collect()
    }

    /// For each kernel position (row-major over the kernel dims) and each
    /// output position (row-major over `output`), the flat offset in an
    /// input plane of `input` sizes, or [`PAD`]; `kernel positions × output
    /// positions` entries.
    pub fn offsets(&self, input: &[usize], output: &[usize]) -> Vec<usize> {
        let rank = input.len();
        let n_kernel: usize = self.kernel.iter().product();
        let n_out: usize = output.iter().product();
        let mut table = Vec::with_capacity(n_kernel * n_out);
        let mut kernel_pos = vec![0usize; rank];
        for _ in 0..n_kernel {
            let mut out_pos = vec![0usize; rank];
            for _ in 0..n_out {
                let mut flat = 0usize;
                let mut inside = true;
                for dim in 0..rank {
                    // The coordinate in the padded input, then in the input.
                    let padded = out_pos[dim] * self.strides[dim] + kernel_pos[dim] * self.dilations[dim];
                    match padded.checked_sub(self.pads_begin[dim]) {
                        Some(coord) if coord < input[dim] => flat = flat * input[dim] + coord,
                        _ => inside = false,
                    }
                }
                table.push(if inside { flat } else { PAD });
                advance(&mut out_pos, output);
            }
            advance(&mut kernel_pos, &self.kernel);
        }
        table
    }
}

/// Steps a row-major multi-index by one (wrapping to all zeros at the end).
fn advance(index: &mut [usize], dims: &[usize]) {
    for dim in (0..index.len()).rev() {
        index[dim] += 1;
        if index[dim] < dims[dim] {
            return;
        }
        index[dim] = 0;
    }
}

/// A convolution's sizes, checked by the op.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvShape {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of groups (divides both channel counts).
    pub group: usize,
    /// Input spatial sizes.
    pub input: Vec<usize>,
    /// Output spatial sizes.
    pub output: Vec<usize>,
}

impl ConvShape {
    fn in_size(&self) -> usize {
        self.input.iter().product()
    }

    fn out_size(&self) -> usize {
        self.output.iter().product()
    }
}

/// Whether the window reads each output position's own input element and
/// nothing else (a 1×1 kernel, unit strides, no padding), so the input
/// plane is already the im2col matrix.
fn is_pointwise(window: &Window) -> bool {
    window.kernel.iter().all(|&k| k == 1)
        && window.strides.iter().all(|&s| s == 1)
        && window.pads_begin.iter().chain(&window.pads_end).all(|&p| p == 0)
}

/// Convolution of `x` (`[N, C, in…]`) with `w` (`[M, C/group, kernel…]`)
/// plus an optional `bias` (`[M]`), into `[N, M, out…]`.
///
/// Per batch item and group, the output block is `W_g · col` where `col`
/// is the im2col matrix of the group's input channels; a 1×1 kernel with
/// unit strides and no padding skips im2col, and a depthwise convolution
/// (one input and one output channel per group) runs a direct loop over
/// the (batch, channel) planes. The GEMM splits over blocks of output
/// rows; planes split over whole planes; both cuts depend only on sizes.
pub fn conv<T: GemmElem + Float>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    shape: &ConvShape,
    window: &Window,
    par: &Parallel,
) -> Vec<T> {
    let in_size = shape.in_size();
    let out_size = shape.out_size();
    let n_kernel: usize = window.kernel.iter().product();
    let in_per_group = shape.in_channels / shape.group;
    let out_per_group = shape.out_channels / shape.group;
    let mut out = vec![T::zero(); shape.batch * shape.out_channels * out_size];
    if out.is_empty() {
        return out;
    }
    if in_per_group == 1 && out_per_group == 1 {
        let taps = Taps::new(window, &shape.input, &shape.output);
        let work = out.len().saturating_mul(n_kernel);
        par.for_blocks_by_work(&mut out, out_size, work, |plane, dst| {
            let channel = plane % shape.out_channels;
            depthwise_plane(&x[plane * in_size..(plane + 1) * in_size], &w[channel * n_kernel..], &taps, dst);
            if let Some(bias) = bias {
                dst.iter_mut().for_each(|value| *value = *value + bias[channel]);
            }
        });
        return out;
    }
    let rows = in_per_group * n_kernel;
    let pointwise = is_pointwise(window);
    let taps = (!pointwise).then(|| Taps::new(window, &shape.input, &shape.output));
    let mut col = vec![T::zero(); if pointwise { 0 } else { rows * out_size }];
    let gemm = Gemm::new(T::one(), T::zero());
    for batch in 0..shape.batch {
        for group in 0..shape.group {
            let first_channel = batch * shape.in_channels + group * in_per_group;
            let x_group = &x[first_channel * in_size..(first_channel + in_per_group) * in_size];
            let w_group = MatRef::row_major(&w[group * out_per_group * rows..], out_per_group, rows);
            let first_out = (batch * shape.out_channels + group * out_per_group) * out_size;
            let dst = &mut out[first_out..first_out + out_per_group * out_size];
            if let Some(taps) = &taps {
                im2col(x_group, in_size, taps, &mut col, par);
                gemm.run(w_group, MatRef::row_major(&col, rows, out_size), dst, par);
            } else {
                gemm.run(w_group, MatRef::row_major(x_group, in_per_group, in_size), dst, par);
            }
        }
    }
    if let Some(bias) = bias {
        par.for_blocks_by_work(&mut out, out_size, 0, |plane, dst| {
            let value = bias[plane % shape.out_channels];
            dst.iter_mut().for_each(|x| *x = *x + value);
        });
    }
    out
}

/// One depthwise plane: `dst[j] = Σ_k w[k]·x[tap k of j]`, kernel
/// position by kernel position (the order of the sum), along output rows.
fn depthwise_plane<T: Float>(x: &[T], w: &[T], taps: &Taps, dst: &mut [T]) {
    dst.iter_mut().for_each(|value| *value = T::zero());
    taps.for_each_tap(x, dst, |k, out_row, input_row, span| {
        let weight = w[k];
        taps.zip_span(out_row, input_row, span, |value, input| *value = *value + weight * input);
    });
}

/// Fills `col` (`channels·n_kernel` rows of one output plane each) from
/// the `channels` input planes of `in_size` in `x`: row `c·n_kernel + k`
/// holds, for each output position, the input element kernel tap `k`
/// reads (zero in the padding).
fn im2col<T: Float + Send + Sync>(x: &[T], in_size: usize, taps: &Taps, col: &mut [T], par: &Parallel) {
    let out_size = taps.n_out();
    let n_kernel = taps.n_kernel();
    par.for_row_blocks(col, out_size, out_size, |row, dst| {
        let channel = row / n_kernel;
        taps.gather(row % n_kernel, &x[channel * in_size..(channel + 1) * in_size], dst, T::zero());
    });
}

/// Transposed convolution of `x` (`[N, C, in…]`) with `w` (`[C, M/group,
/// kernel…]`) plus an optional `bias` (`[M]`), into `[N, M, out…]`, where
/// `shape.input` are the sizes of `x` and `shape.output` those of the result
/// (`window` maps output positions of the result onto input positions of
/// `x` as in the forward convolution whose gradient this is).
///
/// Per batch item and group: `col = W_gᵀ · x_g` (GEMM, the weight read
/// transposed in place), then each column entry is added into the output
/// element it belongs to (col2im), plane by plane in parallel.
pub fn conv_transpose<T: GemmElem + Float>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    shape: &ConvShape,
    window: &Window,
    par: &Parallel,
) -> Vec<T> {
    let in_size = shape.in_size();
    let out_size = shape.out_size();
    let n_kernel: usize = window.kernel.iter().product();
    let in_per_group = shape.in_channels / shape.group;
    let out_per_group = shape.out_channels / shape.group;
    let rows = out_per_group * n_kernel;
    let mut out = vec![T::zero(); shape.batch * shape.out_channels * out_size];
    if out.is_empty() {
        return out;
    }
    // The forward convolution maps the result (as its input) onto `x` (as
    // its output): table[k, j] is where tap k of input position j lands.
    let table = window.offsets(&shape.output, &shape.input);
    let mut col = vec![T::zero(); rows * in_size];
    let gemm = Gemm::new(T::one(), T::zero());
    for batch in 0..shape.batch {
        for group in 0..shape.group {
            let first_channel = batch * shape.in_channels + group * in_per_group;
            let x_group = MatRef::row_major(&x[first_channel * in_size..], in_per_group, in_size);
            let w_group = MatRef::row_major(&w[group * in_per_group * rows..], in_per_group, rows);
            gemm.run(w_group.t(), x_group, &mut col, par);
            let first_out = (batch * shape.out_channels + group * out_per_group) * out_size;
            let dst = &mut out[first_out..first_out + out_per_group * out_size];
            let work = rows.saturating_mul(in_size);
            par.for_blocks_by_work(dst, out_size, work, |channel, plane| {
                for kernel_pos in 0..n_kernel {
                    let src = &col[(channel * n_kernel + kernel_pos) * in_size..][..in_size];
                    let offsets = &table[kernel_pos * in_size..][..in_size];
                    for (&value, &offset) in src.iter().zip(offsets) {
                        if offset != PAD {
                            plane[offset] = plane[offset] + value;
                        }
                    }
                }
            });
        }
    }
    if let Some(bias) = bias {
        par.for_blocks_by_work(&mut out, out_size, 0, |plane, dst| {
            let value = bias[plane % shape.out_channels];
            dst.iter_mut().for_each(|x| *x = *x + value);
        });
    }
    out
}
