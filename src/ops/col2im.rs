//! Col2Im: sums column blocks back into a batched N-D image (PyTorch's
//! `fold`).
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Col2Im.html>
//!
//! | opset | behaviour                                                    |
//! |-------|--------------------------------------------------------------|
//! | 18    | `image_shape`, `block_shape` inputs; `strides`, `pads`, `dilations` |
//!
//! The input is `[N, C · Π block_shape, L]`, `L` being the number of block
//! positions `Π ((image + pads - span) / stride + 1)`; the output
//! `[N, C, image_shape…]`. Each input value is added to the image element
//! its block position and kernel tap land on; taps in the padding are
//! dropped. The geometry is the convolution window's offset table
//! (`kernels::conv::Window::offsets`), the same one ConvTranspose's col2im
//! walks. Floats sum in float64 in tap order and round once; integers sum
//! exactly and wrap to their type. The schema also lists bool and string,
//! which have no sum: onnxi refuses them (as it lacks complex).

use ndarray::{ArrayD, IxDyn};

use super::values::{by_dtype, int_values, sizes};
use super::{ExecCtx, Inputs, NUMBERS_BF16, Op, Registry, check_dtype, check_input_type, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::conv::{PAD, Window};
use crate::ops::reduce::Num;
use crate::tensor::{DType, Item, Tensor};

/// Registers Col2Im.
pub fn register(reg: &mut Registry) {
    reg.add("", "Col2Im", &[18], col2im_types, Col2Im::from_node);
}

fn col2im_types(_version: i64) -> &'static [DType] {
    NUMBERS_BF16
}

/// Col2Im.
#[derive(Debug, Clone, PartialEq)]
pub struct Col2Im {
    /// `strides` (default 1 per axis).
    pub strides: Option<Vec<usize>>,
    /// `pads` as `[begin…, end…]` (default zeros).
    pub pads: Option<Vec<usize>>,
    /// `dilations` (default 1 per axis).
    pub dilations: Option<Vec<usize>>,
}

fn read_list(attrs: &mut Attrs<'_>, name: &str, min: i64) -> Result<Option<Vec<usize>>, LoadError> {
    let Some(values) = attrs.ints(name)? else { return Ok(None) };
    values
        .iter()
        .map(|&value| {
            if value < min || value > i64::from(i32::MAX) {
                Err(attrs.error(name, format!("{values:?}: each value must be in {min}..=2147483647")))
            } else {
                Ok(value as usize)
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

impl Col2Im {
    /// Reads `strides`, `pads` and `dilations`.
    ///
    /// # Errors
    /// A stride or dilation below 1, a negative pad.
    pub fn from_node(attrs: &mut Attrs<'_>, _version: i64) -> Result<Self, LoadError> {
        Ok(Col2Im {
            strides: read_list(attrs, "strides", 1)?,
            pads: read_list(attrs, "pads", 0)?,
            dilations: read_list(attrs, "dilations", 1)?,
        })
    }

    /// The window over the image and the block counts per axis.
    fn plan(&self, image: &[usize], block: &[usize]) -> Result<(Window, Vec<usize>), OpError> {
        const OP: &str = "Col2Im";
        let rank = image.len();
        if rank == 0 || block.len() != rank {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!("image_shape {image:?} and block_shape {block:?} must be non-empty and of one length"),
            });
        }
        if block.contains(&0) {
            return Err(OpError::Invalid { op: OP, reason: format!("block_shape {block:?} has a zero size") });
        }
        let per_axis = |name: &str, values: &Option<Vec<usize>>, count: usize, default: usize| match values {
            None => Ok(vec![default; count]),
            Some(values) if values.len() == count => Ok(values.clone()),
            Some(values) => Err(OpError::Invalid {
                op: OP,
                reason: format!("{name} {values:?} has {} values, expected {count}", values.len()),
            }),
        };
        let strides = per_axis("strides", &self.strides, rank, 1)?;
        let dilations = per_axis("dilations", &self.dilations, rank, 1)?;
        let pads = per_axis("pads", &self.pads, 2 * rank, 0)?;
        let window = Window {
            kernel: block.to_vec(),
            strides,
            dilations,
            pads_begin: pads[..rank].to_vec(),
            pads_end: pads[rank..].to_vec(),
        };
        let blocks = window.output_dims(image, false).map_err(|reason| OpError::Invalid { op: OP, reason })?;
        Ok((window, blocks))
    }
}

/// Col2Im on row-major data `[batch, channels · n_kernel, n_blocks]` with
/// the window's offset `table` (`n_kernel × n_blocks` image offsets or
/// [`PAD`]): `[batch, channels, image]` sums, accumulated by `add` from
/// `zero` in kernel-tap order.
pub fn col2im<T: Copy, A: Copy>(
    data: &[T],
    planes: usize,
    table: &[usize],
    n_blocks: usize,
    image_size: usize,
    zero: A,
    add: impl Fn(A, T) -> A,
) -> Vec<A> {
    let n_kernel = table.len() / n_blocks.max(1);
    let mut out = vec![zero; planes * image_size];
    let plane_in = n_kernel * n_blocks;
    for plane in 0..planes {
        let src = &data[plane * plane_in..(plane + 1) * plane_in];
        let dst = &mut out[plane * image_size..(plane + 1) * image_size];
        for (entry, &offset) in table.iter().enumerate() {
            if offset != PAD {
                dst[offset] = add(dst[offset], src[entry]);
            }
        }
    }
    out
}

impl Op for Col2Im {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        3..=3
    }

    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type("Col2Im", inputs, 0, NUMBERS_BF16)?;
        check_input_type("Col2Im", inputs, 1, &[DType::I64])?;
        check_input_type("Col2Im", inputs, 2, &[DType::I64])
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let rank =
            inputs.get(1).and_then(|input| input.ty).and_then(ValueType::fixed_shape).and_then(|s| s.first().copied());
        vec![Some(ValueType { dtype: ty.dtype, dims: rank.map(|rank| vec![Dim::Any; rank + 2]) })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        const OP: &str = "Col2Im";
        let x = required(inputs, 0, OP)?;
        check_dtype(OP, x.dtype(), NUMBERS_BF16)?;
        let image = sizes(OP, "image_shape", &int_values(OP, "image_shape", required(inputs, 1, OP)?.as_ref())?)?;
        let block = sizes(OP, "block_shape", &int_values(OP, "block_shape", required(inputs, 2, OP)?.as_ref())?)?;
        let (window, blocks) = self.plan(&image, &block)?;
        let shape = x.shape().to_vec();
        let n_kernel: usize = block.iter().product();
        let n_blocks: usize = blocks.iter().product();
        let [batch, columns, length] = shape[..] else {
            return Err(OpError::Invalid { op: OP, reason: format!("input shape {shape:?} must have rank 3") });
        };
        if columns % n_kernel != 0 || length != n_blocks {
            return Err(OpError::Invalid {
                op: OP,
                reason: format!(
                    "input shape {shape:?} must be [N, C · {n_kernel}, {n_blocks}] for block_shape {block:?} over image_shape {image:?}"
                ),
            });
        }
        let channels = columns / n_kernel;
        let mut out_shape = vec![batch, channels];
        out_shape.extend(&image);
        ctx.checked_elems(OP, x.dtype(), &out_shape)?;
        let image_size: usize = image.iter().product();
        let table = window.offsets(&image, &blocks);
        let planes = batch * channels;
        let dtype = x.dtype();
        let wrap = |err: ndarray::ShapeError| OpError::Invalid { op: OP, reason: err.to_string() };
        by_dtype!(OP, dtype, T => {
            let view = <T as Item>::view(&x).ok_or(OpError::UnsupportedDtype { op: OP, dtype })?;
            let data: Vec<T> = view.iter().copied().collect();
            let values: Vec<T> = if T::INT {
                col2im(&data, planes, &table, n_blocks, image_size, 0i128, |acc, v: T| acc.wrapping_add(v.to_i128()))
                    .into_iter()
                    .map(T::from_i128)
                    .collect()
            } else {
                col2im(&data, planes, &table, n_blocks, image_size, 0f64, |acc, v: T| acc + v.to_f64())
                    .into_iter()
                    .map(T::from_f64)
                    .collect()
            };
            Ok(Tensor::from(ArrayD::from_shape_vec(IxDyn(&out_shape), values).map_err(wrap)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ndarray::arr1;

    use super::*;
    use crate::kernels::Parallel;

    fn run(op: &Col2Im, x: ArrayD<f64>, image: &[i64], block: &[i64]) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let ctx = ExecCtx { par: &par, pool: None, max_tensor_bytes: 1 << 30 };
        let inputs = [Tensor::from(x), Tensor::from(arr1(image)), Tensor::from(arr1(block))];
        op.run(&mut inputs.map(|t| Some(Cow::Owned(t))), &ctx)
    }

    /// Fold by the definition: block position (i, j), tap (a, b) lands at
    /// (i·s + a·d - p, j·s + b·d - p), written out for 2-D.
    #[test]
    fn sums_overlapping_blocks_like_fold() {
        let (h, w, kh, kw, s, d, p) = (5usize, 4usize, 2usize, 2usize, 1usize, 2usize, 1usize);
        let bh = (h + 2 * p - (d * (kh - 1) + 1)) / s + 1;
        let bw = (w + 2 * p - (d * (kw - 1) + 1)) / s + 1;
        let n_cols = kh * kw;
        let values: Vec<f64> = (0..n_cols * bh * bw).map(|v| (v as f64 * 0.31).cos()).collect();
        let mut want = vec![0.0; h * w];
        for a in 0..kh {
            for b in 0..kw {
                for i in 0..bh {
                    for j in 0..bw {
                        let (y, x) = ((i * s + a * d) as isize - p as isize, (j * s + b * d) as isize - p as isize);
                        if (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
                            want[y as usize * w + x as usize] += values[((a * kw + b) * bh + i) * bw + j];
                        }
                    }
                }
            }
        }
        let op = Col2Im { strides: Some(vec![s, s]), pads: Some(vec![p; 4]), dilations: Some(vec![d, d]) };
        let x = ArrayD::from_shape_vec(IxDyn(&[1, n_cols, bh * bw]), values).unwrap();
        let out = run(&op, x, &[h as i64, w as i64], &[kh as i64, kw as i64]).unwrap();
        assert_eq!(out.shape(), [1, 1, h, w]);
        for (g, w) in out.to_f64_vec().iter().zip(&want) {
            assert!((g - w).abs() < 1e-12);
        }
    }

    #[test]
    fn refuses_a_block_count_that_does_not_match() {
        let op = Col2Im { strides: None, pads: None, dilations: None };
        let x = ArrayD::zeros(IxDyn(&[1, 4, 5]));
        let err = run(&op, x, &[3, 3], &[2, 2]).unwrap_err();
        assert!(err.to_string().contains("must be [N, C"), "{err}");
        assert!(run(&op, ArrayD::zeros(IxDyn(&[1, 4, 4])), &[3, 3], &[2]).is_err());
    }
}
