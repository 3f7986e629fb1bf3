//! Recurrent layers: RNN, GRU and LSTM (one layer each; PyTorch exports a
//! stacked `nn.LSTM` as one node per layer).
//!
//! Spec:
//! - <https://onnx.ai/onnx/operators/onnx__RNN.html>
//! - <https://onnx.ai/onnx/operators/onnx__GRU.html>
//! - <https://onnx.ai/onnx/operators/onnx__LSTM.html>
//!
//! | op   | opset | change                                                  |
//! |------|-------|---------------------------------------------------------|
//! | all  | 1     | `output_sequence` (read; Y is produced when named)      |
//! | GRU  | 3     | `linear_before_reset`                                   |
//! | all  | 7     | `output_sequence` removed                               |
//! | all  | 14    | `layout` (1: batch first)                               |
//! | all  | 22    | bfloat16                                                |
//!
//! The input projection `X·Wᵀ` of every time step is one GEMM per
//! direction (through [`crate::kernels::gemm`]); each step then multiplies
//! the hidden state by `Rᵀ` for the whole batch and applies the gates.
//! float32 computes in float32, float64 in float64, float16 and bfloat16 in
//! float32. With `sequence_lens`, a batch entry of length `n` runs steps
//! `0..n` (reverse: `n-1` down to 0), its `Y` rows from `n` on are zero and
//! its `Y_h`/`Y_c` are the state after its last step (zeros when `n` is
//! 0), as ONNX Runtime does. `clip` bounds the input of every
//! gate's activation, but not the cell state that LSTM's `h` reads, as
//! ONNX Runtime does.
//!
//! `activation_alpha` and `activation_beta` are consumed in order by the
//! functions that take them; a function the lists do not reach keeps the
//! default of the matching ONNX operator, as the spec says (ONNX Runtime
//! uses 0 instead for ThresholdedRelu, Affine and ScaledTanh).

use std::borrow::Cow;
use std::ops::RangeInclusive;

use ndarray::{ArrayD, IxDyn};
use num_traits::Float;

use super::{ExecCtx, FLOATS, FLOATS_BF16, Inputs, Op, OutputSet, Registry, check_dtype, first_output, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::model::Dim;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::gemm::{Gemm, GemmElem, MatRef};
use crate::ops::cast::cast;
use crate::ops::values::int_values;
use crate::tensor::{DType, Element, Tensor};

/// Registers RNN, GRU and LSTM.
pub fn register(reg: &mut Registry) {
    reg.add("", "RNN", &[1, 7, 14, 22], rnn_dtypes, |attrs, version| Recurrent::from_node(attrs, version, Cell::Rnn));
    reg.add("", "GRU", &[1, 3, 7, 14, 22], rnn_dtypes, |attrs, version| {
        let linear_before_reset = version >= 3 && attrs.i64("linear_before_reset")?.unwrap_or(0) != 0;
        Recurrent::from_node(attrs, version, Cell::Gru { linear_before_reset })
    });
    reg.add("", "LSTM", &[1, 7, 14, 22], rnn_dtypes, |attrs, version| {
        let input_forget = match attrs.i64("input_forget")?.unwrap_or(0) {
            0 => false,
            1 => true,
            other => return Err(attrs.error("input_forget", format!("{other} is not 0 or 1"))),
        };
        Recurrent::from_node(attrs, version, Cell::Lstm { input_forget })
    });
}

/// Floats, bfloat16 from opset 22.
fn rnn_dtypes(version: i64) -> &'static [DType] {
    if version < 22 { FLOATS } else { FLOATS_BF16 }
}

/// Which recurrent cell, with its cell-specific attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// `Ht = f(Xt·Wᵀ + Ht-1·Rᵀ + Wb + Rb)`.
    Rnn,
    /// Gates z, r, h.
    Gru {
        /// Apply the reset gate after multiplying by `Rh` (PyTorch's form).
        linear_before_reset: bool,
    },
    /// Gates i, o, f, c (and peepholes).
    Lstm {
        /// Couple the forget gate to the input gate: `f = 1 - i`.
        input_forget: bool,
    },
}

impl Cell {
    /// The op's name, for errors.
    pub fn op(self) -> &'static str {
        match self {
            Cell::Rnn => "RNN",
            Cell::Gru { .. } => "GRU",
            Cell::Lstm { .. } => "LSTM",
        }
    }

    /// Gates per direction (rows of W are `gates · hidden_size`).
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm { .. } => 4,
        }
    }

    /// Activation functions per direction, and their defaults.
    fn default_activations(self) -> &'static [ActKind] {
        match self {
            Cell::Rnn => &[ActKind::Tanh],
            Cell::Gru { .. } => &[ActKind::Sigmoid, ActKind::Tanh],
            Cell::Lstm { .. } => &[ActKind::Sigmoid, ActKind::Tanh, ActKind::Tanh],
        }
    }
}

/// The `direction` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Time steps first to last.
    Forward,
    /// Last to first.
    Reverse,
    /// Both, outputs stacked on the direction axis (forward first).
    Bidirectional,
}

impl Direction {
    /// 1 or 2.
    pub fn count(self) -> usize {
        if self == Direction::Bidirectional { 2 } else { 1 }
    }

    /// Whether direction `index` (0 or 1) runs backwards in time.
    fn reversed(self, index: usize) -> bool {
        self == Direction::Reverse || (self == Direction::Bidirectional && index == 1)
    }
}

/// An activation function the spec lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActKind {
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1/(1 + e^-x)`.
    Sigmoid,
    /// `alpha·x + beta`.
    Affine,
    /// `x` if `x >= 0` else `alpha·x`.
    LeakyRelu,
    /// `x` if `x >= alpha` else 0.
    ThresholdedRelu,
    /// `alpha·tanh(beta·x)`.
    ScaledTanh,
    /// `min(max(alpha·x + beta, 0), 1)`.
    HardSigmoid,
    /// `x` if `x >= 0` else `alpha·(e^x - 1)`.
    Elu,
    /// `x/(1 + |x|)`.
    Softsign,
    /// `log(1 + e^x)`.
    Softplus,
}

impl ActKind {
    /// The kind for a name (case-insensitive, as ONNX Runtime reads them),
    /// with how many of `activation_alpha`/`activation_beta` it takes and
    /// their defaults (those of the matching ONNX operators).
    fn parse(name: &str) -> Option<(ActKind, Option<f32>, Option<f32>)> {
        Some(match name.to_ascii_lowercase().as_str() {
            "relu" => (ActKind::Relu, None, None),
            "tanh" => (ActKind::Tanh, None, None),
            "sigmoid" => (ActKind::Sigmoid, None, None),
            "affine" => (ActKind::Affine, Some(1.0), Some(0.0)),
            "leakyrelu" => (ActKind::LeakyRelu, Some(0.01), None),
            "thresholdedrelu" => (ActKind::ThresholdedRelu, Some(1.0), None),
            "scaledtanh" => (ActKind::ScaledTanh, Some(1.0), Some(1.0)),
            "hardsigmoid" => (ActKind::HardSigmoid, Some(0.2), Some(0.5)),
            "elu" => (ActKind::Elu, Some(1.0), None),
            "softsign" => (ActKind::Softsign, None, None),
            "softplus" => (ActKind::Softplus, None, None),
            _ => return None,
        })
    }
}

/// The float types the recurrent cells compute in, with their gate
/// activations applied to whole rows: float32 takes the Sigmoid and Tanh
/// ops' SIMD kernels (within 2 ULP), everything else goes value by value.
pub trait GateFloat: Float {
    /// `act` applied to every value of `row`, in place.
    fn activate(act: &Activation, row: &mut [Self]) {
        row.iter_mut().for_each(|value| *value = act.apply(*value));
    }
}

impl GateFloat for f32 {
    fn activate(act: &Activation, row: &mut [f32]) {
        match act.kind {
            ActKind::Sigmoid => crate::kernels::unary::sigmoid_f32_inplace(row),
            ActKind::Tanh => crate::kernels::unary::tanh_f32_inplace(row),
            _ => row.iter_mut().for_each(|value| *value = act.apply(*value)),
        }
    }
}

impl GateFloat for f64 {}

/// An activation with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activation {
    /// The function.
    pub kind: ActKind,
    /// `alpha` (unused by functions without one).
    pub alpha: f64,
    /// `beta` (unused by functions without one).
    pub beta: f64,
}

impl Activation {
    fn plain(kind: ActKind) -> Self {
        Activation { kind, alpha: 0.0, beta: 0.0 }
    }

    /// The function at `x`.
    pub fn apply<T: Float>(&self, x: T) -> T {
        let zero = T::zero();
        let one = T::one();
        let alpha = || T::from(self.alpha).unwrap_or(zero);
        let beta = || T::from(self.beta).unwrap_or(zero);
        match self.kind {
            ActKind::Relu => x.max(zero),
            ActKind::Tanh => x.tanh(),
            ActKind::Sigmoid => one / (one + (-x).exp()),
            ActKind::Affine => alpha() * x + beta(),
            ActKind::LeakyRelu => {
                if x >= zero {
                    x
                } else {
                    alpha() * x
                }
            }
            ActKind::ThresholdedRelu => {
                if x >= alpha() {
                    x
                } else {
                    zero
                }
            }
            ActKind::ScaledTanh => alpha() * (beta() * x).tanh(),
            ActKind::HardSigmoid => (alpha() * x + beta()).max(zero).min(one),
            ActKind::Elu => {
                if x >= zero {
                    x
                } else {
                    alpha() * x.exp_m1()
                }
            }
            ActKind::Softsign => x / (one + x.abs()),
            // log(1 + e^x) without overflow for large x.
            ActKind::Softplus => {
                if x > zero {
                    x + (-x).exp().ln_1p()
                } else {
                    x.exp().ln_1p()
                }
            }
        }
    }
}

/// One RNN, GRU or LSTM node.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrent {
    /// The cell.
    pub cell: Cell,
    /// `hidden_size`, when given (else read from R's shape).
    pub hidden_size: Option<usize>,
    /// `direction`.
    pub direction: Direction,
    /// `layout` = 1: X, Y, the states batch first.
    pub batch_first: bool,
    /// Activations, per direction then per function (f, g, h order).
    pub activations: Vec<Activation>,
    /// `clip`: bound on every activation's input.
    pub clip: Option<f64>,
    /// Element types this version accepts.
    pub dtypes: &'static [DType],
}

impl Recurrent {
    /// Reads the attributes shared by the three ops (the cell's own were
    /// read by the caller).
    ///
    /// # Errors
    /// An unknown direction or activation, activation lists of the wrong
    /// length, a non-positive `hidden_size` or `clip`, `layout` not 0 or 1.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64, cell: Cell) -> Result<Self, LoadError> {
        let hidden_size = match attrs.i64("hidden_size")? {
            None => None,
            Some(size) => Some(
                usize::try_from(size)
                    .ok()
                    .filter(|&size| size > 0)
                    .ok_or_else(|| attrs.error("hidden_size", format!("must be positive, got {size}")))?,
            ),
        };
        let direction = match attrs.string("direction")?.as_deref().unwrap_or("forward") {
            "forward" => Direction::Forward,
            "reverse" => Direction::Reverse,
            "bidirectional" => Direction::Bidirectional,
            other => {
                return Err(
                    attrs.error("direction", format!("{other:?} is not \"forward\", \"reverse\" or \"bidirectional\""))
                );
            }
        };
        let batch_first = version >= 14
            && match attrs.i64("layout")?.unwrap_or(0) {
                0 => false,
                1 => true,
                other => return Err(attrs.error("layout", format!("{other} is not 0 or 1"))),
            };
        if version < 7 {
            // Whether Y is produced follows from the node naming it.
            attrs.i64("output_sequence")?;
        }
        let clip = match attrs.f32("clip")? {
            None => None,
            Some(clip) if clip > 0.0 => Some(f64::from(clip)),
            Some(clip) => return Err(attrs.error("clip", format!("must be positive, got {clip}"))),
        };
        let activations = read_activations(attrs, cell, direction)?;
        Ok(Recurrent { cell, hidden_size, direction, batch_first, activations, clip, dtypes: rnn_dtypes(version) })
    }
}

/// `activations`, `activation_alpha` and `activation_beta`: one function
/// per gate role and direction (a bidirectional node given one direction's
/// list uses it for both). Alphas and betas are consumed in order by the
/// functions that take them; a function past the end of a list keeps its
/// default.
fn read_activations(attrs: &mut Attrs<'_>, cell: Cell, direction: Direction) -> Result<Vec<Activation>, LoadError> {
    let names = attrs.strings("activations")?;
    let alphas = attrs.floats("activation_alpha")?.unwrap_or_default();
    let betas = attrs.floats("activation_beta")?.unwrap_or_default();
    let per_direction = cell.default_activations().len();
    let n_dirs = direction.count();
    let Some(names) = names else {
        if !alphas.is_empty() || !betas.is_empty() {
            return Err(attrs.error("activation_alpha", "given without activations".to_string()));
        }
        let defaults = cell.default_activations().iter().map(|&kind| Activation::plain(kind));
        return Ok(defaults.cycle().take(per_direction * n_dirs).collect());
    };
    if names.len() != per_direction && names.len() != per_direction * n_dirs {
        return Err(attrs.error(
            "activations",
            format!(
                "{} has {} functions, expected {} ({} per direction)",
                cell.op(),
                names.len(),
                per_direction * n_dirs,
                per_direction
            ),
        ));
    }
    let (mut alpha_iter, mut beta_iter) = (alphas.iter(), betas.iter());
    let mut parsed = Vec::with_capacity(names.len());
    for name in &names {
        let (kind, alpha, beta) = ActKind::parse(name)
            .ok_or_else(|| attrs.error("activations", format!("unknown activation function {name:?}")))?;
        let alpha = alpha.map(|default| alpha_iter.next().copied().unwrap_or(default)).unwrap_or(0.0);
        let beta = beta.map(|default| beta_iter.next().copied().unwrap_or(default)).unwrap_or(0.0);
        parsed.push(Activation { kind, alpha: f64::from(alpha), beta: f64::from(beta) });
    }
    if alpha_iter.next().is_some() || beta_iter.next().is_some() {
        return Err(attrs.error(
            "activation_alpha",
            format!("more alpha/beta values ({}/{}) than the activations {names:?} take", alphas.len(), betas.len()),
        ));
    }
    let len = parsed.len();
    Ok(parsed.into_iter().cycle().take(len.max(per_direction * n_dirs)).collect())
}

/// The sizes of one run, checked against each other.
#[derive(Debug, Clone, Copy)]
struct Dims {
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    dirs: usize,
}

/// The float inputs of one run, in the compute type, seq-major: borrowed
/// from the input tensors where they already are (weights are not copied
/// per run), computed otherwise.
struct Operands<'a, T: Clone> {
    /// `[seq, batch, input]`.
    x: Cow<'a, [T]>,
    /// `[dirs, gates·hidden, input]`.
    w: Cow<'a, [T]>,
    /// `[dirs, gates·hidden, hidden]`.
    r: Cow<'a, [T]>,
    /// `[dirs, 2·gates·hidden]` (zeros when omitted).
    b: Cow<'a, [T]>,
    /// `[dirs, batch, hidden]`.
    h0: Cow<'a, [T]>,
    /// `[dirs, batch, hidden]` (LSTM).
    c0: Cow<'a, [T]>,
    /// `[dirs, 3·hidden]` (LSTM).
    p: Cow<'a, [T]>,
}

/// Outputs in the compute type, in the node's layout.
struct Outputs<T> {
    y: Option<Vec<T>>,
    y_h: Vec<T>,
    y_c: Vec<T>,
}

fn invalid(op: &'static str, reason: String) -> OpError {
    OpError::Invalid { op, reason }
}

impl Recurrent {
    fn op(&self) -> &'static str {
        self.cell.op()
    }

    /// Checks X, W and R against each other and the attributes.
    fn dims(&self, x: &[usize], w: &[usize], r: &[usize]) -> Result<Dims, OpError> {
        let op = self.op();
        let gates = self.cell.gates();
        let dirs = self.direction.count();
        let [a, b, input] = *x else {
            return Err(invalid(op, format!("X of shape {x:?} must be 3-D")));
        };
        let (seq, batch) = if self.batch_first { (b, a) } else { (a, b) };
        let [r_dirs, r_rows, hidden] = *r else {
            return Err(invalid(op, format!("R of shape {r:?} must be 3-D")));
        };
        if let Some(size) = self.hidden_size
            && size != hidden
        {
            return Err(invalid(op, format!("wrong hidden size: R has shape {r:?}, but hidden_size is {size}")));
        }
        let rows = gates.checked_mul(hidden).ok_or_else(|| invalid(op, format!("R of shape {r:?} is too large")))?;
        if r_dirs != dirs || r_rows != rows {
            return Err(invalid(
                op,
                format!("wrong hidden size: R has shape {r:?}, expected [{dirs}, {rows}, {hidden}] ({gates} gates)"),
            ));
        }
        if w != [dirs, rows, input] {
            return Err(invalid(
                op,
                format!(
                    "W of shape {w:?} does not match X {x:?} and hidden size {hidden}: expected [{dirs}, {rows}, {input}]"
                ),
            ));
        }
        Ok(Dims { seq, batch, input, hidden, dirs })
    }

    /// An optional input's values, checked to have `shape`, in the compute
    /// type; zeros when omitted.
    fn optional<'t, T: Element + Float>(
        &self,
        tensor: Option<&'t Tensor>,
        what: &str,
        shape: &[usize],
    ) -> Result<Cow<'t, [T]>, OpError> {
        let len: usize = shape.iter().product();
        let Some(tensor) = tensor else {
            return Ok(Cow::Owned(vec![T::zero(); len]));
        };
        if tensor.shape() != shape {
            return Err(invalid(self.op(), format!("{what} has shape {:?}, expected {shape:?}", tensor.shape())));
        }
        values::<T>(self.op(), tensor)
    }

    /// A state input (`initial_h`, `initial_c`) as `[dirs, batch, hidden]`.
    fn state<'t, T: Element + Float>(
        &self,
        tensor: Option<&'t Tensor>,
        what: &str,
        d: Dims,
    ) -> Result<Cow<'t, [T]>, OpError> {
        let shape = if self.batch_first { [d.batch, d.dirs, d.hidden] } else { [d.dirs, d.batch, d.hidden] };
        let values = self.optional::<T>(tensor, what, &shape)?;
        Ok(if self.batch_first { Cow::Owned(swap_outer(&values, d.batch, d.dirs, d.hidden)) } else { values })
    }

    /// `sequence_lens`, each checked to lie in `0..=seq`.
    fn lengths(&self, tensor: Option<&Tensor>, d: Dims) -> Result<Vec<usize>, OpError> {
        let op = self.op();
        let Some(tensor) = tensor else {
            return Ok(vec![d.seq; d.batch]);
        };
        let values = int_values(op, "sequence_lens", tensor)?;
        if values.len() != d.batch || tensor.shape().len() != 1 {
            return Err(invalid(
                op,
                format!("sequence_lens has shape {:?}, expected [{}] (the batch size)", tensor.shape(), d.batch),
            ));
        }
        values
            .iter()
            .map(|&len| {
                usize::try_from(len).ok().filter(|&len| len <= d.seq).ok_or_else(|| {
                    invalid(
                        op,
                        format!("sequence_lens {values:?} has a length outside 0..={} (the sequence length)", d.seq),
                    )
                })
            })
            .collect()
    }

    /// Runs the layer in the compute type `T`.
    fn compute<T: GemmElem + Element + GateFloat + Default>(
        &self,
        x: &Tensor,
        w: &Tensor,
        r: &Tensor,
        optional: [Option<&Tensor>; 5],
        want_y: bool,
        ctx: &ExecCtx<'_>,
    ) -> Result<Outputs<T>, OpError> {
        let op = self.op();
        let [b, seq_lens, h0, c0, p] = optional;
        let d = self.dims(x.shape(), w.shape(), r.shape())?;
        let gates = self.cell.gates();
        let gh = gates * d.hidden;
        // Every buffer below is at most one of these sizes.
        ctx.checked_elems(op, T::DTYPE, &[d.seq, d.batch, gh])?;
        ctx.checked_elems(op, T::DTYPE, &[d.seq, d.dirs, d.batch, d.hidden])?;
        let lengths = self.lengths(seq_lens, d)?;
        let x_values = values::<T>(op, x)?;
        let ops = Operands {
            x: if self.batch_first { Cow::Owned(swap_outer(&x_values, d.batch, d.seq, d.input)) } else { x_values },
            w: values::<T>(op, w)?,
            r: values::<T>(op, r)?,
            b: self.optional::<T>(b, "B", &[d.dirs, 2 * gh])?,
            h0: self.state::<T>(h0, "initial_h", d)?,
            c0: if matches!(self.cell, Cell::Lstm { .. }) {
                self.state::<T>(c0, "initial_c", d)?
            } else {
                Cow::Borrowed(&[])
            },
            p: if matches!(self.cell, Cell::Lstm { .. }) {
                self.optional::<T>(p, "P", &[d.dirs, 3 * d.hidden])?
            } else {
                Cow::Borrowed(&[])
            },
        };
        let state_len = d.dirs * d.batch * d.hidden;
        let mut out = Outputs {
            y: want_y.then(|| vec![T::zero(); d.seq * state_len]),
            y_h: vec![T::zero(); state_len],
            y_c: vec![T::zero(); if matches!(self.cell, Cell::Lstm { .. }) { state_len } else { 0 }],
        };
        for dir in 0..d.dirs {
            self.direction_pass(dir, d, &ops, &lengths, &mut out, ctx);
        }
        Ok(out)
    }

    /// One direction over the whole sequence.
    fn direction_pass<T: GemmElem + GateFloat>(
        &self,
        dir: usize,
        d: Dims,
        ops: &Operands<'_, T>,
        lengths: &[usize],
        out: &mut Outputs<T>,
        ctx: &ExecCtx<'_>,
    ) {
        let gates = self.cell.gates();
        let (hidden, batch) = (d.hidden, d.batch);
        let gh = gates * hidden;
        let reversed = self.direction.reversed(dir);
        let n_act = self.cell.default_activations().len();
        let acts = &self.activations[dir * n_act..(dir + 1) * n_act];
        let clip = self.clip.and_then(T::from);
        let act = |index: usize, value: T| -> T {
            let value = match clip {
                Some(bound) => value.max(-bound).min(bound),
                None => value,
            };
            acts[index].apply(value)
        };
        // The same over a row: clipped, then activated as a whole.
        let act_row = |index: usize, row: &mut [T]| {
            if let Some(bound) = clip {
                row.iter_mut().for_each(|value| *value = value.max(-bound).min(bound));
            }
            T::activate(&acts[index], row);
        };
        // Gate rows, one batch item at a time: LSTM's i, f, c, o and the
        // activated cell; GRU's reset gate and candidate in the first two.
        let mut gate_rows: [Vec<T>; 5] = std::array::from_fn(|_| vec![T::zero(); hidden]);
        let w = &ops.w[dir * gh * d.input..(dir + 1) * gh * d.input];
        let r = &ops.r[dir * gh * hidden..(dir + 1) * gh * hidden];
        let (wb, rb) = ops.b[dir * 2 * gh..(dir + 1) * 2 * gh].split_at(gh);
        let linear_before_reset = matches!(self.cell, Cell::Gru { linear_before_reset: true });
        // Input projection of every step at once, with the biases that add
        // straight onto it (all but GRU's Rbh under linear_before_reset).
        let mut xw = vec![T::zero(); d.seq * batch * gh];
        Gemm::new(T::ONE, T::ZERO).run(
            MatRef::row_major(&ops.x, d.seq * batch, d.input),
            MatRef::row_major(w, gh, d.input).t(),
            &mut xw,
            ctx.par,
        );
        let mut bias: Vec<T> = wb.iter().zip(rb).map(|(&a, &b)| a + b).collect();
        if linear_before_reset {
            bias[2 * hidden..].copy_from_slice(&wb[2 * hidden..]);
        }
        for row in xw.chunks_exact_mut(gh) {
            for (value, &b) in row.iter_mut().zip(&bias) {
                *value = *value + b;
            }
        }
        let state_at = |b: usize| (dir * batch + b) * hidden;
        let mut h: Vec<T> = ops.h0[dir * batch * hidden..(dir + 1) * batch * hidden].to_vec();
        let mut c: Vec<T> = if ops.c0.is_empty() {
            Vec::new()
        } else {
            ops.c0[dir * batch * hidden..(dir + 1) * batch * hidden].to_vec()
        };
        let mut hr = vec![T::zero(); batch * gh];
        // GRU without linear_before_reset: r ⊙ H, and its product with Rhᵀ.
        let mut rh = vec![T::zero(); batch * hidden];
        let mut rh_r = vec![T::zero(); batch * hidden];
        let mut z_gate = vec![T::zero(); batch * hidden];
        let max_len = lengths.iter().copied().max().unwrap_or(0);
        for step in 0..max_len {
            let time = |b: usize| if reversed { lengths[b] - 1 - step } else { step };
            let active = |b: usize| step < lengths[b];
            let gru_two_phase = matches!(self.cell, Cell::Gru { linear_before_reset: false });
            // Rows of R multiplied now (GRU's Rh waits for the reset gate).
            let hr_width = if gru_two_phase { 2 * hidden } else { gh };
            Gemm::new(T::ONE, T::ZERO).run(
                MatRef::row_major(&h, batch, hidden),
                MatRef::row_major(&r[..hr_width * hidden], hr_width, hidden).t(),
                &mut hr[..batch * hr_width],
                ctx.par,
            );
            match self.cell {
                Cell::Rnn => {
                    for b in (0..batch).filter(|&b| active(b)) {
                        let gx = &xw[(time(b) * batch + b) * gh..][..gh];
                        for j in 0..hidden {
                            h[b * hidden + j] = act(0, gx[j] + hr[b * gh + j]);
                        }
                    }
                }
                Cell::Lstm { input_forget } => {
                    let p = &ops.p[dir * 3 * hidden..(dir + 1) * 3 * hidden];
                    let (p_i, rest) = p.split_at(hidden);
                    let (p_o, p_f) = rest.split_at(hidden);
                    let [g_i, g_f, g_c, g_o, c_act] = &mut gate_rows;
                    for b in (0..batch).filter(|&b| active(b)) {
                        let gx = &xw[(time(b) * batch + b) * gh..][..gh];
                        let gr = &hr[b * gh..][..gh];
                        let c_row = &mut c[b * hidden..(b + 1) * hidden];
                        // Gate pre-activations as rows, each activated as a
                        // whole (SIMD for float32 sigmoid/tanh).
                        for j in 0..hidden {
                            let c_prev = c_row[j];
                            g_i[j] = gx[j] + gr[j] + p_i[j] * c_prev;
                            g_f[j] = gx[2 * hidden + j] + gr[2 * hidden + j] + p_f[j] * c_prev;
                            g_c[j] = gx[3 * hidden + j] + gr[3 * hidden + j];
                        }
                        act_row(0, g_i);
                        if !input_forget {
                            act_row(0, g_f);
                        }
                        act_row(1, g_c);
                        for j in 0..hidden {
                            let f = if input_forget { T::one() - g_i[j] } else { g_f[j] };
                            let cell = f * c_row[j] + g_i[j] * g_c[j];
                            c_row[j] = cell;
                            c_act[j] = cell;
                            g_o[j] = gx[hidden + j] + gr[hidden + j] + p_o[j] * cell;
                        }
                        act_row(0, g_o);
                        // The cell's activation takes no clip.
                        T::activate(&acts[2], c_act);
                        for ((h, &o), &cell) in
                            h[b * hidden..(b + 1) * hidden].iter_mut().zip(g_o.iter()).zip(c_act.iter())
                        {
                            *h = o * cell;
                        }
                    }
                }
                Cell::Gru { linear_before_reset } => {
                    let rbh = &rb[2 * hidden..];
                    let [reset, cand, ..] = &mut gate_rows;
                    for b in (0..batch).filter(|&b| active(b)) {
                        let gx = &xw[(time(b) * batch + b) * gh..][..gh];
                        let gr = &hr[b * hr_width..][..hr_width];
                        let z = &mut z_gate[b * hidden..(b + 1) * hidden];
                        for j in 0..hidden {
                            z[j] = gx[j] + gr[j];
                            reset[j] = gx[hidden + j] + gr[hidden + j];
                        }
                        act_row(0, z);
                        act_row(0, reset);
                        let h_row = &mut h[b * hidden..(b + 1) * hidden];
                        if linear_before_reset {
                            for j in 0..hidden {
                                cand[j] = gx[2 * hidden + j] + reset[j] * (gr[2 * hidden + j] + rbh[j]);
                            }
                            act_row(1, cand);
                            for j in 0..hidden {
                                h_row[j] = (T::one() - z[j]) * cand[j] + z[j] * h_row[j];
                            }
                        } else {
                            for j in 0..hidden {
                                rh[b * hidden + j] = reset[j] * h_row[j];
                            }
                        }
                    }
                    if !linear_before_reset {
                        Gemm::new(T::ONE, T::ZERO).run(
                            MatRef::row_major(&rh, batch, hidden),
                            MatRef::row_major(&r[2 * hidden * hidden..], hidden, hidden).t(),
                            &mut rh_r,
                            ctx.par,
                        );
                        for b in (0..batch).filter(|&b| active(b)) {
                            let gx = &xw[(time(b) * batch + b) * gh..][..gh];
                            for j in 0..hidden {
                                cand[j] = gx[2 * hidden + j] + rh_r[b * hidden + j];
                            }
                            act_row(1, cand);
                            for j in 0..hidden {
                                let z = z_gate[b * hidden + j];
                                let prev = h[b * hidden + j];
                                h[b * hidden + j] = (T::one() - z) * cand[j] + z * prev;
                            }
                        }
                    }
                }
            }
            if let Some(y) = out.y.as_mut() {
                for b in (0..batch).filter(|&b| active(b)) {
                    let t = time(b);
                    let at = if self.batch_first {
                        ((b * d.seq + t) * d.dirs + dir) * hidden
                    } else {
                        ((t * d.dirs + dir) * batch + b) * hidden
                    };
                    y[at..at + hidden].copy_from_slice(&h[b * hidden..(b + 1) * hidden]);
                }
            }
        }
        for b in 0..batch {
            if lengths[b] == 0 {
                // No step ran: ONNX Runtime gives zeros, not the initial state.
                continue;
            }
            let at = if self.batch_first { (b * d.dirs + dir) * hidden } else { state_at(b) };
            out.y_h[at..at + hidden].copy_from_slice(&h[b * hidden..(b + 1) * hidden]);
            if !c.is_empty() {
                out.y_c[at..at + hidden].copy_from_slice(&c[b * hidden..(b + 1) * hidden]);
            }
        }
    }

    /// The output shapes: Y, Y_h (and Y_c).
    fn output_shapes(&self, seq: usize, batch: usize, hidden: usize) -> (Vec<usize>, Vec<usize>) {
        let dirs = self.direction.count();
        if self.batch_first {
            (vec![batch, seq, dirs, hidden], vec![batch, dirs, hidden])
        } else {
            (vec![seq, dirs, batch, hidden], vec![dirs, batch, hidden])
        }
    }
}

/// A tensor's elements in row-major order, in type `T`: borrowed when the
/// tensor is laid out that way already (the usual case), else copied.
fn values<'t, T: Element>(op: &'static str, tensor: &'t Tensor) -> Result<Cow<'t, [T]>, OpError> {
    let view = T::view(tensor).ok_or(OpError::UnsupportedDtype { op, dtype: tensor.dtype() })?;
    Ok(match view.to_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(view.iter().copied().collect()),
    })
}

/// `[a, b, inner]` → `[b, a, inner]` (row-major).
fn swap_outer<T: Copy>(values: &[T], a: usize, b: usize, inner: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for j in 0..b {
        for i in 0..a {
            out.extend_from_slice(&values[(i * b + j) * inner..][..inner]);
        }
    }
    out
}

fn to_tensor<T: Element>(op: &'static str, shape: &[usize], values: Vec<T>) -> Result<Tensor, OpError> {
    ArrayD::from_shape_vec(IxDyn(shape), values).map(T::wrap).map_err(|err| invalid(op, err.to_string()))
}

impl Op for Recurrent {
    fn n_inputs(&self) -> RangeInclusive<usize> {
        if matches!(self.cell, Cell::Lstm { .. }) { 3..=8 } else { 3..=6 }
    }

    fn n_outputs(&self) -> RangeInclusive<usize> {
        if matches!(self.cell, Cell::Lstm { .. }) { 0..=3 } else { 0..=2 }
    }

    fn infer(&self, inputs: &[InferInput<'_>], n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(x) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        let dims_of = |index: usize| inputs.get(index).and_then(|input| input.ty).and_then(|ty| ty.dims.clone());
        let hidden = match self.hidden_size {
            Some(size) => Dim::Fixed(size),
            None => dims_of(2).filter(|dims| dims.len() == 3).map_or(Dim::Any, |dims| dims[2].clone()),
        };
        let dirs = Dim::Fixed(self.direction.count());
        let shapes = x.dims.as_ref().filter(|dims| dims.len() == 3).map(|dims| {
            let (seq, batch) =
                if self.batch_first { (dims[1].clone(), dims[0].clone()) } else { (dims[0].clone(), dims[1].clone()) };
            if self.batch_first {
                (vec![batch.clone(), seq, dirs.clone(), hidden.clone()], vec![batch, dirs.clone(), hidden.clone()])
            } else {
                (vec![seq, dirs.clone(), batch.clone(), hidden.clone()], vec![dirs.clone(), batch, hidden.clone()])
            }
        });
        let (y, state) = match shapes {
            Some((y, state)) => (Some(y), Some(state)),
            None => (None, None),
        };
        let y = ValueType { dtype: x.dtype, dims: y };
        let state = ValueType { dtype: x.dtype, dims: state };
        [Some(y), Some(state.clone()), Some(state)].into_iter().take(n_outputs).collect()
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        first_output(self, inputs, ctx, self.op())
    }

    fn run_outputs(
        &self,
        inputs: &mut Inputs<'_>,
        ctx: &ExecCtx<'_>,
        outputs: &mut OutputSet<'_>,
    ) -> Result<(), OpError> {
        let op = self.op();
        let x = required(inputs, 0, op)?;
        let w = required(inputs, 1, op)?;
        let r = required(inputs, 2, op)?;
        let mut optional = |index: usize| inputs.get_mut(index).and_then(Option::take);
        let (b, seq_lens, h0, c0, p) = (optional(3), optional(4), optional(5), optional(6), optional(7));
        let dtype = x.dtype();
        check_dtype(op, dtype, self.dtypes)?;
        for (what, tensor) in [("W", Some(&w)), ("R", Some(&r)), ("B", b.as_ref()), ("initial_h", h0.as_ref())]
            .into_iter()
            .chain([("initial_c", c0.as_ref()), ("P", p.as_ref())])
        {
            if let Some(tensor) = tensor
                && tensor.dtype() != dtype
            {
                return Err(invalid(op, format!("{what} is {}, X is {dtype} (must be one type)", tensor.dtype())));
            }
        }
        let d = self.dims(x.shape(), w.shape(), r.shape())?;
        let (y_shape, state_shape) = self.output_shapes(d.seq, d.batch, d.hidden);
        let want_y = outputs.wanted(0);
        let seq_lens = seq_lens.as_deref();
        match dtype {
            DType::F32 | DType::F64 => {
                macro_rules! go {
                    ($T:ty) => {{
                        let opt = [b.as_deref(), seq_lens, h0.as_deref(), c0.as_deref(), p.as_deref()];
                        let out = self.compute::<$T>(&x, &w, &r, opt, want_y, ctx)?;
                        store(op, outputs, out, &y_shape, &state_shape, Ok)
                    }};
                }
                if dtype == DType::F32 { go!(f32) } else { go!(f64) }
            }
            _ => {
                let wide = |tensor: &Tensor| cast(tensor, DType::F32);
                let wide_opt = |tensor: &Option<Cow<'_, Tensor>>| tensor.as_deref().map(wide).transpose();
                let (b, h0, c0, p) = (wide_opt(&b)?, wide_opt(&h0)?, wide_opt(&c0)?, wide_opt(&p)?);
                let opt = [b.as_ref(), seq_lens, h0.as_ref(), c0.as_ref(), p.as_ref()];
                let out = self.compute::<f32>(&wide(&x)?, &wide(&w)?, &wide(&r)?, opt, want_y, ctx)?;
                store(op, outputs, out, &y_shape, &state_shape, |t| cast(&t, dtype))
            }
        }
    }
}

/// Wraps the outputs the node names, converted by `narrow`.
fn store<T: Element>(
    op: &'static str,
    outputs: &mut OutputSet<'_>,
    out: Outputs<T>,
    y_shape: &[usize],
    state_shape: &[usize],
    narrow: impl Fn(Tensor) -> Result<Tensor, OpError>,
) -> Result<(), OpError> {
    if let Some(y) = out.y {
        outputs.set(0, narrow(to_tensor(op, y_shape, y)?)?);
    }
    if outputs.wanted(1) {
        outputs.set(1, narrow(to_tensor(op, state_shape, out.y_h)?)?);
    }
    if outputs.wanted(2) && !out.y_c.is_empty() {
        outputs.set(2, narrow(to_tensor(op, state_shape, out.y_c)?)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Parallel;
    use crate::onnx::AttributeProto;
    use crate::onnx::attribute_proto::AttributeType;

    /// Values in [-1, 1) from a xorshift seed.
    fn noise(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 2000) as f64 / 1000.0 - 1.0
            })
            .collect()
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Row `row` of the `rows × cols` matrix `m` times the vector `v`.
    fn dot_row(m: &[f64], cols: usize, row: usize, v: &[f64]) -> f64 {
        (0..cols).map(|k| m[row * cols + k] * v[k]).sum()
    }

    /// The inputs of a reference run, seq-major, per direction.
    struct Case {
        seq: usize,
        batch: usize,
        input: usize,
        hidden: usize,
        dirs: usize,
        x: Vec<f64>,
        w: Vec<f64>,
        r: Vec<f64>,
        b: Vec<f64>,
        h0: Vec<f64>,
        c0: Vec<f64>,
        p: Vec<f64>,
        lens: Vec<usize>,
    }

    impl Case {
        fn new(
            cell: Cell,
            seq: usize,
            batch: usize,
            input: usize,
            hidden: usize,
            dirs: usize,
            lens: Vec<usize>,
        ) -> Self {
            let g = cell.gates();
            Case {
                seq,
                batch,
                input,
                hidden,
                dirs,
                x: noise(seq * batch * input, 1),
                w: noise(dirs * g * hidden * input, 2),
                r: noise(dirs * g * hidden * hidden, 3),
                b: noise(dirs * 2 * g * hidden, 4),
                h0: noise(dirs * batch * hidden, 5),
                c0: noise(dirs * batch * hidden, 6),
                p: noise(dirs * 3 * hidden, 7),
                lens,
            }
        }

        /// The spec's equations, one batch entry and one step at a time,
        /// in float64. Returns Y `[seq, dirs, batch, hidden]`, Y_h, Y_c
        /// `[dirs, batch, hidden]`.
        fn reference(&self, cell: Cell) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
            let (s_len, bn, i_len, hd, dn) = (self.seq, self.batch, self.input, self.hidden, self.dirs);
            let g = cell.gates();
            let mut y = vec![0.0; s_len * dn * bn * hd];
            let mut y_h = vec![0.0; dn * bn * hd];
            let mut y_c = vec![0.0; dn * bn * hd];
            for d in 0..dn {
                let w = &self.w[d * g * hd * i_len..][..g * hd * i_len];
                let r = &self.r[d * g * hd * hd..][..g * hd * hd];
                let wb = &self.b[d * 2 * g * hd..][..g * hd];
                let rb = &self.b[d * 2 * g * hd + g * hd..][..g * hd];
                let p = &self.p[d * 3 * hd..][..3 * hd];
                for b in 0..bn {
                    let len = self.lens[b];
                    let mut h: Vec<f64> = self.h0[(d * bn + b) * hd..][..hd].to_vec();
                    let mut c: Vec<f64> = self.c0[(d * bn + b) * hd..][..hd].to_vec();
                    let order: Vec<usize> = if d == 1 { (0..len).rev().collect() } else { (0..len).collect() };
                    for t in order {
                        let xt = &self.x[(t * bn + b) * i_len..][..i_len];
                        // Gate k, unit j: Xt·W[k]ᵀ + Wb[k] (+ Ht-1·R[k]ᵀ + Rb[k]).
                        let xw = |k: usize, j: usize| dot_row(w, i_len, k * hd + j, xt) + wb[k * hd + j];
                        let hr = |k: usize, j: usize, h: &[f64]| dot_row(r, hd, k * hd + j, h) + rb[k * hd + j];
                        match cell {
                            Cell::Rnn => h = (0..hd).map(|j| (xw(0, j) + hr(0, j, &h)).tanh()).collect(),
                            Cell::Gru { linear_before_reset } => {
                                let z: Vec<f64> = (0..hd).map(|j| sigmoid(xw(0, j) + hr(0, j, &h))).collect();
                                let rr: Vec<f64> = (0..hd).map(|j| sigmoid(xw(1, j) + hr(1, j, &h))).collect();
                                let reset_h: Vec<f64> = (0..hd).map(|j| rr[j] * h[j]).collect();
                                let cand: Vec<f64> = (0..hd)
                                    .map(|j| {
                                        if linear_before_reset {
                                            (xw(2, j) + rr[j] * hr(2, j, &h)).tanh()
                                        } else {
                                            (xw(2, j) + hr(2, j, &reset_h)).tanh()
                                        }
                                    })
                                    .collect();
                                h = (0..hd).map(|j| (1.0 - z[j]) * cand[j] + z[j] * h[j]).collect();
                            }
                            Cell::Lstm { .. } => {
                                // Gate order i, o, f, c; peepholes i, o, f.
                                let i: Vec<f64> =
                                    (0..hd).map(|j| sigmoid(xw(0, j) + hr(0, j, &h) + p[j] * c[j])).collect();
                                let f: Vec<f64> =
                                    (0..hd).map(|j| sigmoid(xw(2, j) + hr(2, j, &h) + p[2 * hd + j] * c[j])).collect();
                                let cand: Vec<f64> = (0..hd).map(|j| (xw(3, j) + hr(3, j, &h)).tanh()).collect();
                                let new_c: Vec<f64> = (0..hd).map(|j| f[j] * c[j] + i[j] * cand[j]).collect();
                                let o: Vec<f64> =
                                    (0..hd).map(|j| sigmoid(xw(1, j) + hr(1, j, &h) + p[hd + j] * new_c[j])).collect();
                                h = (0..hd).map(|j| o[j] * new_c[j].tanh()).collect();
                                c = new_c;
                            }
                        }
                        y[((t * dn + d) * bn + b) * hd..][..hd].copy_from_slice(&h);
                    }
                    if len > 0 {
                        y_h[(d * bn + b) * hd..][..hd].copy_from_slice(&h);
                        y_c[(d * bn + b) * hd..][..hd].copy_from_slice(&c);
                    }
                }
            }
            (y, y_h, y_c)
        }
    }

    fn tensor(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
        cast(&Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("shape")), dtype).unwrap()
    }

    fn op(cell: Cell, dirs: usize, batch_first: bool) -> Recurrent {
        let direction = if dirs == 2 { Direction::Bidirectional } else { Direction::Forward };
        let defaults = cell.default_activations().iter().map(|&kind| Activation::plain(kind));
        Recurrent {
            cell,
            hidden_size: None,
            direction,
            batch_first,
            activations: defaults.cycle().take(cell.default_activations().len() * dirs).collect(),
            clip: None,
            dtypes: FLOATS_BF16,
        }
    }

    /// Runs `op` on the case's inputs (transposed to batch first when the
    /// op is) and returns all its outputs, back in seq-major order.
    fn run(op: &Recurrent, case: &Case, dtype: DType, par: &Parallel) -> Result<Vec<Vec<f64>>, OpError> {
        let (s, b, i, h, d) = (case.seq, case.batch, case.input, case.hidden, case.dirs);
        let g = op.cell.gates();
        let lstm = matches!(op.cell, Cell::Lstm { .. });
        let (x, x_shape) = if op.batch_first {
            (swap_outer(&case.x, s, b, i), vec![b, s, i])
        } else {
            (case.x.clone(), vec![s, b, i])
        };
        let state = |values: &[f64]| {
            if op.batch_first { (swap_outer(values, d, b, h), vec![b, d, h]) } else { (values.to_vec(), vec![d, b, h]) }
        };
        let (h0, state_shape) = state(&case.h0);
        let (c0, _) = state(&case.c0);
        let lens: Vec<i32> = case.lens.iter().map(|&len| len as i32).collect();
        let mut inputs: Vec<Option<Cow<'_, Tensor>>> = vec![
            Some(Cow::Owned(tensor(dtype, &x_shape, &x))),
            Some(Cow::Owned(tensor(dtype, &[d, g * h, i], &case.w))),
            Some(Cow::Owned(tensor(dtype, &[d, g * h, h], &case.r))),
            Some(Cow::Owned(tensor(dtype, &[d, 2 * g * h], &case.b))),
            Some(Cow::Owned(Tensor::from(ArrayD::from_shape_vec(IxDyn(&[b]), lens).expect("shape")))),
            Some(Cow::Owned(tensor(dtype, &state_shape, &h0))),
        ];
        if lstm {
            inputs.push(Some(Cow::Owned(tensor(dtype, &state_shape, &c0))));
            inputs.push(Some(Cow::Owned(tensor(dtype, &[d, 3 * h], &case.p))));
        }
        let n_out = if lstm { 3 } else { 2 };
        let mut values = vec![None; n_out];
        let wanted = vec![true; n_out];
        let ctx = ExecCtx { par, pool: None, max_tensor_bytes: u64::MAX };
        op.run_outputs(&mut inputs, &ctx, &mut OutputSet::new(&mut values, &wanted))?;
        Ok(values
            .into_iter()
            .enumerate()
            .map(|(idx, tensor)| {
                let tensor = tensor.expect("output");
                assert_eq!(tensor.dtype(), dtype);
                let flat = tensor.to_f64_vec();
                match (op.batch_first, idx) {
                    (false, _) => flat,
                    // [batch, seq, dirs, hidden] → [seq, dirs, batch, hidden].
                    (true, 0) => {
                        let by_seq = swap_outer(&flat, b, s, d * h);
                        (0..s).flat_map(|t| swap_outer(&by_seq[t * b * d * h..][..b * d * h], b, d, h)).collect()
                    }
                    (true, _) => swap_outer(&flat, b, d, h),
                }
            })
            .collect())
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (idx, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "{what}[{idx}]: {g} vs {w}");
        }
    }

    #[test]
    fn every_cell_matches_a_float64_reference_in_both_layouts_and_directions() {
        let par = Parallel::serial();
        let cells = [
            Cell::Rnn,
            Cell::Gru { linear_before_reset: false },
            Cell::Gru { linear_before_reset: true },
            Cell::Lstm { input_forget: false },
        ];
        for cell in cells {
            for dirs in [1, 2] {
                for batch_first in [false, true] {
                    // Lengths 5, 2 and 0: padded rows and an empty sequence.
                    let case = Case::new(cell, 5, 3, 4, 6, dirs, vec![5, 2, 0]);
                    let (y, y_h, y_c) = case.reference(cell);
                    let op = op(cell, dirs, batch_first);
                    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5), (DType::F16, 2e-2)] {
                        let what = format!("{cell:?} dirs {dirs} batch_first {batch_first} {dtype}");
                        let got = run(&op, &case, dtype, &par).expect("runs");
                        assert_close(&got[0], &y, tol, &format!("{what} Y"));
                        assert_close(&got[1], &y_h, tol, &format!("{what} Y_h"));
                        if let Some(got_c) = got.get(2) {
                            assert_close(got_c, &y_c, tol, &format!("{what} Y_c"));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reverse_direction_is_the_second_half_of_bidirectional() {
        let par = Parallel::serial();
        let cell = Cell::Lstm { input_forget: false };
        let case = Case::new(cell, 4, 2, 3, 5, 2, vec![4, 3]);
        let (y, _, _) = case.reference(cell);
        // Keep only direction 1's weights and states.
        let half = |values: &[f64]| values[values.len() / 2..].to_vec();
        let reverse = Case {
            dirs: 1,
            w: half(&case.w),
            r: half(&case.r),
            b: half(&case.b),
            h0: half(&case.h0),
            c0: half(&case.c0),
            p: half(&case.p),
            ..Case::new(cell, 4, 2, 3, 5, 2, vec![4, 3])
        };
        let mut op = op(cell, 1, false);
        op.direction = Direction::Reverse;
        let got = run(&op, &reverse, DType::F64, &par).expect("runs");
        let (hd, bn) = (5, 2);
        let want: Vec<f64> = (0..4).flat_map(|t| y[((t * 2 + 1) * bn) * hd..][..bn * hd].to_vec()).collect();
        assert_close(&got[0], &want, 1e-12, "reverse Y");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let cell = Cell::Gru { linear_before_reset: false };
        let case = Case::new(cell, 6, 70, 40, 48, 2, vec![6; 70]);
        let op = op(cell, 2, false);
        let serial = run(&op, &case, DType::F32, &Parallel::serial()).expect("runs");
        let par = Parallel::with_threads(3).expect("threads");
        let threaded = run(&op, &case, DType::F32, &par).expect("runs");
        for (a, b) in serial.iter().zip(&threaded) {
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }

    #[test]
    fn activations_and_their_parameters() {
        let x = 0.75_f64;
        let act = |kind, alpha, beta| Activation { kind, alpha, beta }.apply(x);
        assert_eq!(act(ActKind::Relu, 0.0, 0.0), x);
        assert_eq!(act(ActKind::Affine, 2.0, 0.5), 2.0);
        assert_eq!(act(ActKind::ThresholdedRelu, 1.0, 0.0), 0.0);
        assert!((act(ActKind::ScaledTanh, 2.0, 3.0) - 2.0 * (2.25_f64).tanh()).abs() < 1e-15);
        assert!((act(ActKind::HardSigmoid, 0.2, 0.5) - 0.65).abs() < 1e-15);
        assert!((act(ActKind::Softsign, 0.0, 0.0) - 0.75 / 1.75).abs() < 1e-15);
        assert!((act(ActKind::Softplus, 0.0, 0.0) - (1.0 + x.exp()).ln()).abs() < 1e-15);
        assert_eq!(Activation::plain(ActKind::Softplus).apply(1000.0_f32), 1000.0);
        assert!(
            (Activation { kind: ActKind::Elu, alpha: 2.0, beta: 0.0 }.apply(-1.0_f64) - 2.0 * (-1.0_f64).exp_m1())
                .abs()
                < 1e-15
        );
        assert_eq!(Activation { kind: ActKind::LeakyRelu, alpha: 0.1, beta: 0.0 }.apply(-2.0_f64), -0.2);
    }

    fn strings(name: &str, values: &[&str]) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Strings as i32),
            strings: values.iter().map(|value| value.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    fn floats(name: &str, values: &[f32]) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Floats as i32),
            floats: values.to_vec(),
            ..Default::default()
        }
    }

    fn build(op_type: &str, attributes: &[AttributeProto]) -> Result<Box<dyn Op>, LoadError> {
        let entry = Registry::builtin().find("", op_type).expect("registered");
        let mut attrs = Attrs::new("the_node", op_type, attributes, 1 << 20);
        let op = entry.build(&mut attrs, 22)?;
        attrs.finish()?;
        Ok(op)
    }

    #[test]
    fn activation_lists_are_read_in_order_and_checked() {
        let attributes = [
            strings("activations", &["HardSigmoid", "leakyrelu", "Affine"]),
            floats("activation_alpha", &[0.1, 0.2, 0.3]),
            floats("activation_beta", &[0.6]),
        ];
        let mut attrs = Attrs::new("n", "LSTM", &attributes, 1 << 20);
        let op = Recurrent::from_node(&mut attrs, 22, Cell::Lstm { input_forget: false }).expect("builds");
        let got: Vec<(ActKind, f64, f64)> =
            op.activations.iter().map(|act| (act.kind, act.alpha as f32 as f64, act.beta as f32 as f64)).collect();
        let f = |value: f32| f64::from(value);
        assert_eq!(
            got,
            [
                (ActKind::HardSigmoid, f(0.1), f(0.6)),
                (ActKind::LeakyRelu, f(0.2), 0.0),
                // Betas ran out: Affine keeps its default 0.
                (ActKind::Affine, f(0.3), 0.0),
            ]
        );
        let err = build("GRU", &[strings("activations", &["Sigmoid", "Swish"])]).expect_err("unknown");
        assert!(err.to_string().contains("unknown activation function \"Swish\""), "{err}");
        assert!(err.to_string().contains("the_node"), "{err}");
        let err = build("RNN", &[strings("activations", &["Tanh", "Tanh"])]).expect_err("too many");
        assert!(err.to_string().contains("expected 1"), "{err}");
        let err = build("RNN", &[strings("activations", &["Tanh"]), floats("activation_alpha", &[1.0])])
            .expect_err("unused alpha");
        assert!(err.to_string().contains("more alpha/beta values"), "{err}");
    }

    #[test]
    fn broken_inputs_are_errors_naming_the_op() {
        let par = Parallel::serial();
        let cell = Cell::Lstm { input_forget: false };
        let case = Case::new(cell, 3, 2, 4, 5, 1, vec![3, 1]);
        let mut wrong_hidden = op(cell, 1, false);
        wrong_hidden.hidden_size = Some(7);
        let err = run(&wrong_hidden, &case, DType::F32, &par).expect_err("hidden size");
        assert!(err.to_string().starts_with("LSTM: wrong hidden size"), "{err}");
        // A GRU's weights (3 gates) given to an LSTM (4 gates).
        let err = op(cell, 1, false).dims(&[3, 2, 4], &[1, 15, 4], &[1, 15, 5]).expect_err("gates");
        assert!(err.to_string().starts_with("LSTM: wrong hidden size"), "{err}");
        let err = op(cell, 1, false).dims(&[3, 2, 4], &[1, 20, 3], &[1, 20, 5]).expect_err("input size");
        assert!(err.to_string().contains("W of shape [1, 20, 3] does not match X [3, 2, 4]"), "{err}");
        let too_long = Case { lens: vec![4, 1], ..Case::new(cell, 3, 2, 4, 5, 1, vec![3, 1]) };
        let err = run(&op(cell, 1, false), &too_long, DType::F32, &par).expect_err("length");
        assert!(err.to_string().contains("sequence_lens [4, 1] has a length outside 0..=3"), "{err}");
        let bidirectional_weights = Case::new(cell, 3, 2, 4, 5, 2, vec![3, 1]);
        let err = run(&op(cell, 1, false), &bidirectional_weights, DType::F32, &par).expect_err("dirs");
        assert!(err.to_string().contains("expected [1, 20, 5]"), "{err}");
    }

    #[test]
    fn shapes_are_inferred_in_both_layouts() {
        let x =
            ValueType { dtype: DType::F32, dims: Some(vec![Dim::Symbolic("s".into()), Dim::Fixed(2), Dim::Fixed(4)]) };
        let r = ValueType::fixed(DType::F32, &[2, 15, 5]);
        let inputs =
            [InferInput { ty: Some(&x), value: None }, InferInput::default(), InferInput { ty: Some(&r), value: None }];
        let gru = op(Cell::Gru { linear_before_reset: true }, 2, false);
        let types = gru.infer(&inputs, 2);
        let fixed = |size| Dim::Fixed(size);
        assert_eq!(
            types[0].as_ref().and_then(|ty| ty.dims.clone()),
            Some(vec![Dim::Symbolic("s".into()), fixed(2), fixed(2), fixed(5)])
        );
        assert_eq!(types[1].as_ref().and_then(|ty| ty.dims.clone()), Some(vec![fixed(2), fixed(2), fixed(5)]));
        let batch_first = op(Cell::Gru { linear_before_reset: true }, 2, true);
        let types = batch_first.infer(&inputs, 1);
        assert_eq!(types.len(), 1);
        // X is [batch s, seq 2, input 4]: Y is [batch, seq, dirs, hidden].
        assert_eq!(
            types[0].as_ref().and_then(|ty| ty.dims.clone()),
            Some(vec![Dim::Symbolic("s".into()), fixed(2), fixed(2), fixed(5)])
        );
    }
}
