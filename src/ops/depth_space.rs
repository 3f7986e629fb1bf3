//! SpaceToDepth and DepthToSpace: move `blocksize × blocksize` blocks of an
//! NCHW tensor between the spatial axes and the channels (pixel shuffle
//! and unshuffle).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__SpaceToDepth.html>
//! - <https://onnx.ai/onnx/operators/onnx__DepthToSpace.html>
//!
//! | op           | opset | change                                        |
//! |--------------|-------|-----------------------------------------------|
//! | both         | 1     | first version; blocks in DCR order            |
//! | DepthToSpace | 11    | `mode`: DCR (default) or CRD                  |
//! | both         | 13    | bfloat16                                      |
//! | SpaceToDepth | 28    | `mode`: DCR (default) or CRD                  |
//! | DepthToSpace | 28    | same types and modes; same code path          |
//!
//! Both are a reshape to six axes, a transpose and a reshape back, as the
//! spec writes them; DCR puts the block position outside the channel
//! (`channel = (row · blocksize + column) · C + c`), CRD inside it
//! (`channel = c · blocksize² + row · blocksize + column`).

use ndarray::{ArrayViewD, IxDyn};

use super::{ExecCtx, Inputs, Op, Registry, check_dtype, check_input_type, required};
use crate::dispatch;
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::tensor::{DType, Item, Tensor};

/// Registers SpaceToDepth and DepthToSpace.
pub fn register(reg: &mut Registry) {
    reg.add("", "SpaceToDepth", &[1, 13, 28], depth_space_dtypes, DepthSpace::space_to_depth);
    reg.add("", "DepthToSpace", &[1, 11, 13, 28], depth_space_dtypes, DepthSpace::depth_to_space);
}

fn depth_space_dtypes(version: i64) -> &'static [DType] {
    super::classic_moved_types(version, 13)
}

/// The order of a block's entries along the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Depth, column, row: the block position is the outer part of the
    /// channel index (the only order before the `mode` attribute).
    Dcr,
    /// Column, row, depth: the block position is the inner part.
    Crd,
}

/// Which way the blocks move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// SpaceToDepth: `[N, C, H, W]` to `[N, C·b², H/b, W/b]`.
    SpaceToDepth,
    /// DepthToSpace: `[N, C, H, W]` to `[N, C/b², H·b, W·b]`.
    DepthToSpace,
}

/// SpaceToDepth or DepthToSpace.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthSpace {
    /// Which op.
    pub direction: Direction,
    /// The block edge (positive).
    pub blocksize: usize,
    /// The channel order of a block.
    pub mode: Mode,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl DepthSpace {
    fn from_node(
        attrs: &mut Attrs<'_>,
        version: i64,
        direction: Direction,
        mode_since: i64,
    ) -> Result<Self, LoadError> {
        let blocksize = attrs.i64("blocksize")?.ok_or_else(|| attrs.error("blocksize", "is required"))?;
        let blocksize = usize::try_from(blocksize)
            .ok()
            .filter(|&size| size > 0)
            .ok_or_else(|| attrs.error("blocksize", format!("must be positive, got {blocksize}")))?;
        let mode = if version >= mode_since {
            match attrs.string("mode")?.as_deref().unwrap_or("DCR") {
                "DCR" => Mode::Dcr,
                "CRD" => Mode::Crd,
                other => return Err(attrs.error("mode", format!("must be DCR or CRD, got {other:?}"))),
            }
        } else {
            Mode::Dcr
        };
        Ok(DepthSpace { direction, blocksize, mode, dtypes: depth_space_dtypes(version) })
    }

    /// SpaceToDepth: reads `blocksize` and (opset 28 on) `mode`.
    ///
    /// # Errors
    /// A missing or non-positive `blocksize`, an unknown mode.
    pub fn space_to_depth(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Self::from_node(attrs, version, Direction::SpaceToDepth, 28)
    }

    /// DepthToSpace: reads `blocksize` and (opset 11 on) `mode`.
    ///
    /// # Errors
    /// A missing or non-positive `blocksize`, an unknown mode.
    pub fn depth_to_space(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        Self::from_node(attrs, version, Direction::DepthToSpace, 11)
    }

    fn name(&self) -> &'static str {
        match self.direction {
            Direction::SpaceToDepth => "SpaceToDepth",
            Direction::DepthToSpace => "DepthToSpace",
        }
    }

    /// The output shape for an input of `shape`, or why there is none.
    fn out_shape(&self, shape: &[usize]) -> Result<[usize; 4], String> {
        let &[n, c, h, w] = shape else {
            return Err(format!("input must be 4-D [N, C, H, W], got shape {shape:?}"));
        };
        let b = self.blocksize;
        let area = b.checked_mul(b).ok_or_else(|| format!("blocksize {b} is too large"))?;
        match self.direction {
            Direction::SpaceToDepth if h % b != 0 || w % b != 0 => {
                Err(format!("height {h} and width {w} must be multiples of blocksize {b}"))
            }
            Direction::SpaceToDepth => {
                let channels = c.checked_mul(area).ok_or_else(|| format!("channels {c} × {area} overflow"))?;
                Ok([n, channels, h / b, w / b])
            }
            Direction::DepthToSpace if c % area != 0 => {
                Err(format!("channels {c} must be a multiple of blocksize² = {area}"))
            }
            Direction::DepthToSpace => {
                // Only an empty input (no channels) can overflow here.
                let grow = |size: usize| size.checked_mul(b).ok_or_else(|| format!("{size} × {b} overflows"));
                Ok([n, c / area, grow(h)?, grow(w)?])
            }
        }
    }
}

/// The six-axis shape and the permutation that carry `[n, c, h, w]` to the
/// output's element order.
fn plan(direction: Direction, mode: Mode, [n, c, h, w]: [usize; 4], b: usize) -> ([usize; 6], [usize; 6]) {
    match (direction, mode) {
        (Direction::SpaceToDepth, Mode::Dcr) => ([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4]),
        (Direction::SpaceToDepth, Mode::Crd) => ([n, c, h / b, b, w / b, b], [0, 1, 3, 5, 2, 4]),
        (Direction::DepthToSpace, Mode::Dcr) => ([n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2]),
        (Direction::DepthToSpace, Mode::Crd) => ([n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]),
    }
}

fn rearrange_typed<T: Item>(
    op: &'static str,
    x: ArrayViewD<'_, T>,
    six: [usize; 6],
    perm: [usize; 6],
    out_shape: [usize; 4],
) -> Result<Tensor, OpError> {
    let invalid = |err: ndarray::ShapeError| OpError::Invalid { op, reason: err.to_string() };
    let x = x.as_standard_layout();
    let moved = x.view().into_shape_with_order(IxDyn(&six)).map_err(invalid)?.permuted_axes(IxDyn(&perm));
    let moved = moved.as_standard_layout().into_owned();
    moved.into_shape_with_order(IxDyn(&out_shape)).map(T::wrap).map_err(invalid)
}

/// SpaceToDepth's or DepthToSpace's kernel.
///
/// # Errors
/// An input that is not 4-D, or whose sizes the blocks do not divide.
pub fn depth_space(op: &DepthSpace, x: &Tensor) -> Result<Tensor, OpError> {
    let name = op.name();
    let out_shape = op.out_shape(x.shape()).map_err(|reason| OpError::Invalid { op: name, reason })?;
    let shape: [usize; 4] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let (six, perm) = plan(op.direction, op.mode, shape, op.blocksize);
    dispatch!(x, array => rearrange_typed(name, array.view(), six, perm, out_shape))
}

impl Op for DepthSpace {
    fn check_types(&self, inputs: &[InferInput<'_>]) -> Result<(), OpError> {
        check_input_type(self.name(), inputs, 0, self.dtypes)
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims = ty.dims.as_ref().filter(|dims| dims.len() == 4).map(|dims| {
            let b = self.blocksize;
            let scale = |dim: &Dim, up: bool, factor: usize| match dim {
                Dim::Fixed(size) if up => size.checked_mul(factor).map_or(Dim::Any, Dim::Fixed),
                Dim::Fixed(size) => Dim::Fixed(size / factor),
                _ => Dim::Any,
            };
            let area = b.saturating_mul(b);
            let to_depth = self.direction == Direction::SpaceToDepth;
            vec![
                dims[0].clone(),
                scale(&dims[1], to_depth, area),
                scale(&dims[2], !to_depth, b),
                scale(&dims[3], !to_depth, b),
            ]
        });
        vec![Some(ValueType { dtype: ty.dtype, dims })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, _ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let x = required(inputs, 0, self.name())?;
        check_dtype(self.name(), x.dtype(), self.dtypes)?;
        depth_space(self, &x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Str;

    fn op(direction: Direction, blocksize: usize, mode: Mode) -> DepthSpace {
        DepthSpace { direction, blocksize, mode, dtypes: depth_space_dtypes(28) }
    }

    /// The channel that holds block position `(row, col)` of output
    /// channel `c` (of `channels` after DepthToSpace), per the spec's
    /// description of each mode.
    fn source_channel(mode: Mode, c: usize, row: usize, col: usize, b: usize, channels: usize) -> usize {
        match mode {
            Mode::Dcr => (row * b + col) * channels + c,
            Mode::Crd => c * b * b + row * b + col,
        }
    }

    #[test]
    fn depth_to_space_and_back_follow_the_index_formulas() {
        let (n, c, h, w, b) = (2usize, 8usize, 2usize, 3usize, 2usize);
        let values: Vec<i32> = (0..(n * c * h * w) as i32).collect();
        let x = Tensor::from(ndarray::ArrayD::from_shape_vec(IxDyn(&[n, c, h, w]), values).unwrap());
        for mode in [Mode::Dcr, Mode::Crd] {
            let y = depth_space(&op(Direction::DepthToSpace, b, mode), &x).unwrap();
            let y_view = y.view::<i32>().unwrap();
            assert_eq!(y_view.shape(), [n, c / 4, h * b, w * b]);
            let x_view = x.view::<i32>().unwrap();
            for ((batch, ch, row, col), &value) in
                y_view.clone().into_dimensionality::<ndarray::Ix4>().unwrap().indexed_iter()
            {
                let source = source_channel(mode, ch, row % b, col % b, b, c / 4);
                assert_eq!(value, x_view[[batch, source, row / b, col / b]], "{mode:?}");
            }
            // SpaceToDepth in the same mode undoes it.
            let back = depth_space(&op(Direction::SpaceToDepth, b, mode), &y).unwrap();
            assert_eq!(back, x, "{mode:?}");
        }
    }

    /// The first output rows of the spec's numpy formulas (reshape,
    /// transpose, reshape), run by numpy on `arange(48)` of shape [1, 8, 2, 3].
    #[test]
    fn depth_to_space_matches_the_spec_examples() {
        let x = Tensor::from(
            ndarray::ArrayD::from_shape_vec(IxDyn(&[1, 8, 2, 3]), (0..48).map(|v| v as f32).collect()).unwrap(),
        );
        let dcr = depth_space(&op(Direction::DepthToSpace, 2, Mode::Dcr), &x).unwrap();
        let dcr = dcr.as_f32().unwrap();
        assert_eq!(dcr.shape(), [1, 2, 4, 6]);
        assert_eq!(
            dcr.iter().take(12).copied().collect::<Vec<_>>(),
            [0., 12., 1., 13., 2., 14., 24., 36., 25., 37., 26., 38.]
        );
        let crd = depth_space(&op(Direction::DepthToSpace, 2, Mode::Crd), &x).unwrap();
        let crd = crd.as_f32().unwrap();
        assert_eq!(
            crd.iter().take(12).copied().collect::<Vec<_>>(),
            [0., 6., 1., 7., 2., 8., 12., 18., 13., 19., 14., 20.]
        );
    }

    #[test]
    fn strings_move_and_bad_shapes_are_errors() {
        let words: Vec<Str> = ["a", "b", "c", "d"].iter().map(|&t| Str::from(t)).collect();
        let x = Tensor::from(ndarray::ArrayD::from_shape_vec(IxDyn(&[1, 1, 2, 2]), words.clone()).unwrap());
        let y = depth_space(&op(Direction::SpaceToDepth, 2, Mode::Dcr), &x).unwrap();
        assert_eq!(y, Tensor::from(ndarray::ArrayD::from_shape_vec(IxDyn(&[1, 4, 1, 1]), words).unwrap()));
        let err = depth_space(&op(Direction::SpaceToDepth, 3, Mode::Dcr), &x).unwrap_err();
        assert_eq!(err.to_string(), "SpaceToDepth: height 2 and width 2 must be multiples of blocksize 3");
        let err = depth_space(&op(Direction::DepthToSpace, 2, Mode::Crd), &x).unwrap_err();
        assert_eq!(err.to_string(), "DepthToSpace: channels 1 must be a multiple of blocksize² = 4");
        let flat = Tensor::from(ndarray::arr1(&[1.0f32, 2.0]));
        let err = depth_space(&op(Direction::DepthToSpace, 1, Mode::Crd), &flat).unwrap_err();
        assert!(err.to_string().contains("must be 4-D"), "{err}");
    }
}
