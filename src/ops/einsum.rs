//! Einsum: sums of products given by an equation such as `bij,bjk->bik`.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Einsum.html>
//!
//! | opset | change    |
//! |-------|-----------|
//! | 12    | first     |
//! | 28    | bfloat16  |
//!
//! The equation is parsed at load: one term of letters per input, `...`
//! for broadcast leading axes, and an optional `->` output (without it,
//! the letters that appear once, in alphabetical order, after the
//! ellipsis axes). A letter repeated within one term takes the diagonal.
//! Operands are combined left to right; each pair is one batched GEMM
//! (`kernels::gemm`) over the shared letters, after summing away letters
//! that no later term needs. onnxi implements the float types (float16 and
//! bfloat16 compute in float32); the integer types the schema also lists
//! are refused.

use ndarray::{ArrayD, Axis, IxDyn};

use super::conv::with_float;
use super::{ExecCtx, Inputs, Op, Registry, check_dtype, required};
use crate::error::{LoadError, OpError};
use crate::graph::attrs::Attrs;
use crate::graph::shapes::{InferInput, ValueType};
use crate::kernels::conv::MAX_ELEMS;
use crate::kernels::gemm::{Gemm, GemmElem, MatRef};
use crate::tensor::{DType, Element, Tensor, checked_elems};

/// Registers Einsum.
pub fn register(reg: &mut Registry) {
    reg.add("", "Einsum", &[12, 28], einsum_dtypes, Einsum::from_node);
}

fn einsum_dtypes(version: i64) -> &'static [DType] {
    if version >= 28 { super::FLOATS_BF16 } else { super::FLOATS }
}

/// A label: a letter, or the index of an axis covered by `...` (counted
/// from the right, so that ellipsis axes broadcast numpy-style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Label {
    /// The `n`-th ellipsis axis from the right.
    Ellipsis(usize),
    /// A letter.
    Letter(char),
}

/// One term of the equation: letters, with an ellipsis at `ellipsis`.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    letters: Vec<char>,
    /// Position of `...` among the letters, if any.
    ellipsis: Option<usize>,
}

impl Term {
    fn parse(text: &str) -> Result<Term, String> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut letters = Vec::new();
        let mut ellipsis = None;
        let mut rest = text.as_str();
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("...") {
                if ellipsis.is_some() {
                    return Err(format!("term {text:?} has two ellipses"));
                }
                ellipsis = Some(letters.len());
                rest = after;
            } else if c.is_ascii_alphabetic() {
                letters.push(c);
                rest = &rest[1..];
            } else {
                return Err(format!("term {text:?} has the character {c:?}"));
            }
        }
        Ok(Term { letters, ellipsis })
    }

    /// The labels of an operand of `rank` axes.
    fn labels(&self, rank: usize) -> Result<Vec<Label>, String> {
        let n_ellipsis = match self.ellipsis {
            None if rank == self.letters.len() => 0,
            Some(_) if rank >= self.letters.len() => rank - self.letters.len(),
            _ => return Err(format!("an operand of rank {rank} does not fit the term {:?}", self.text())),
        };
        let at = self.ellipsis.unwrap_or(self.letters.len());
        let mut labels: Vec<Label> = self.letters[..at].iter().map(|&c| Label::Letter(c)).collect();
        labels.extend((0..n_ellipsis).rev().map(Label::Ellipsis));
        labels.extend(self.letters[at..].iter().map(|&c| Label::Letter(c)));
        Ok(labels)
    }

    fn text(&self) -> String {
        let mut text: String = self.letters.iter().collect();
        if let Some(at) = self.ellipsis {
            text.insert_str(at, "...");
        }
        text
    }
}

/// Einsum with its equation parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Einsum {
    /// The equation as given.
    pub equation: String,
    inputs: Vec<Term>,
    output: Option<Term>,
    dtypes: &'static [DType],
}

impl Einsum {
    /// Reads and parses `equation`.
    ///
    /// # Errors
    /// A missing or malformed equation.
    pub fn from_node(attrs: &mut Attrs<'_>, version: i64) -> Result<Self, LoadError> {
        let Some(equation) = attrs.string("equation")? else {
            return Err(attrs.error("equation", "is required"));
        };
        let (lhs, rhs) = match equation.split_once("->") {
            Some((lhs, rhs)) => (lhs, Some(rhs)),
            None => (equation.as_str(), None),
        };
        let inputs =
            lhs.split(',').map(Term::parse).collect::<Result<Vec<_>, _>>().map_err(|e| attrs.error("equation", e))?;
        let output = rhs.map(Term::parse).transpose().map_err(|e| attrs.error("equation", e))?;
        if let Some(output) = &output {
            let mut seen = std::collections::HashSet::new();
            for &c in &output.letters {
                if !seen.insert(c) {
                    return Err(attrs.error("equation", format!("output letter {c:?} appears twice")));
                }
                if !inputs.iter().any(|term| term.letters.contains(&c)) {
                    return Err(attrs.error("equation", format!("output letter {c:?} is in no input")));
                }
            }
        }
        Ok(Einsum { equation, inputs, output, dtypes: einsum_dtypes(version) })
    }

    fn invalid(&self, reason: String) -> OpError {
        OpError::Invalid { op: "Einsum", reason: format!("{reason} (equation {:?})", self.equation) }
    }

    /// The output labels for the inputs' labels.
    fn output_labels(&self, inputs: &[Vec<Label>]) -> Vec<Label> {
        let max_ellipsis = inputs
            .iter()
            .flatten()
            .filter_map(|label| if let Label::Ellipsis(n) = label { Some(n + 1) } else { None })
            .max()
            .unwrap_or(0);
        let ellipsis: Vec<Label> = (0..max_ellipsis).rev().map(Label::Ellipsis).collect();
        match &self.output {
            Some(term) => {
                let at = term.ellipsis.unwrap_or(term.letters.len());
                let mut labels: Vec<Label> = term.letters[..at].iter().map(|&c| Label::Letter(c)).collect();
                if term.ellipsis.is_some() {
                    labels.extend(&ellipsis);
                }
                labels.extend(term.letters[at..].iter().map(|&c| Label::Letter(c)));
                labels
            }
            None => {
                let mut counts = std::collections::BTreeMap::new();
                for term in &self.inputs {
                    for &c in &term.letters {
                        *counts.entry(c).or_insert(0) += 1;
                    }
                }
                let mut labels = ellipsis;
                labels.extend(counts.into_iter().filter(|&(_, n)| n == 1).map(|(c, _)| Label::Letter(c)));
                labels
            }
        }
    }

    fn typed<T: GemmElem + Element + num_traits::Float>(
        &self,
        inputs: &[&Tensor],
        ctx: &ExecCtx<'_>,
    ) -> Result<Tensor, OpError> {
        let mut operands: Vec<(ArrayD<T>, Vec<Label>)> = Vec::new();
        for (term, tensor) in self.inputs.iter().zip(inputs) {
            let array = T::view(tensor).ok_or(OpError::UnsupportedDtype { op: "Einsum", dtype: tensor.dtype() })?;
            let labels = term.labels(array.ndim()).map_err(|e| self.invalid(e))?;
            operands.push(diagonal(array.to_owned(), labels));
        }
        let all_labels: Vec<Vec<Label>> = operands.iter().map(|(_, labels)| labels.clone()).collect();
        let output = self.output_labels(&all_labels);
        // Each label's size: the largest seen (ellipsis axes of size 1
        // broadcast); any other disagreement is an error.
        let mut sizes = std::collections::HashMap::new();
        for (array, labels) in &operands {
            for (&label, &size) in labels.iter().zip(array.shape()) {
                let entry = sizes.entry(label).or_insert(size);
                if *entry != size {
                    let broadcast = matches!(label, Label::Ellipsis(_)) && (*entry == 1 || size == 1);
                    if !broadcast {
                        return Err(self.invalid(format!("label {label:?} has sizes {} and {size}", *entry)));
                    }
                    *entry = (*entry).max(size);
                }
            }
        }
        let mut iter = operands.into_iter();
        let Some(mut acc) = iter.next() else {
            return Err(self.invalid("no inputs".into()));
        };
        let rest: Vec<_> = iter.collect();
        for (index, next) in rest.iter().enumerate() {
            // Labels needed after this pair: the output's and later terms'.
            let mut needed: Vec<Label> = output.clone();
            for (_, labels) in &rest[index + 1..] {
                needed.extend(labels);
            }
            acc = self.pair(acc, next.clone(), &needed, &sizes, ctx)?;
        }
        let (mut array, mut labels) = acc;
        // Sum what the output does not keep, then order the axes.
        for axis in (0..labels.len()).rev() {
            if !output.contains(&labels[axis]) {
                array = array.sum_axis(Axis(axis));
                labels.remove(axis);
            }
        }
        let perm: Vec<usize> = output
            .iter()
            .map(|label| {
                labels
                    .iter()
                    .position(|l| l == label)
                    .ok_or_else(|| self.invalid(format!("output label {label:?} is in no input")))
            })
            .collect::<Result<_, _>>()?;
        let array = array.permuted_axes(perm);
        let shape: Vec<usize> = output.iter().map(|label| sizes[label]).collect();
        let array = match array.broadcast(IxDyn(&shape)) {
            Some(view) => view.as_standard_layout().into_owned(),
            None => return Err(self.invalid("the result does not broadcast to the output".into())),
        };
        Ok(T::wrap(array))
    }

    /// Contracts two operands into one whose labels are batch + left + right.
    fn pair<T: GemmElem + num_traits::Float>(
        &self,
        (a, a_labels): (ArrayD<T>, Vec<Label>),
        (b, b_labels): (ArrayD<T>, Vec<Label>),
        needed: &[Label],
        sizes: &std::collections::HashMap<Label, usize>,
        ctx: &ExecCtx<'_>,
    ) -> Result<(ArrayD<T>, Vec<Label>), OpError> {
        let (a_before, b_before) = (a_labels.clone(), b_labels.clone());
        let (a, a_labels) = sum_unneeded(a, a_labels, |l| b_before.contains(l) || needed.contains(l));
        let (b, b_labels) = sum_unneeded(b, b_labels, |l| a_before.contains(l) || needed.contains(l));
        let batch: Vec<Label> =
            a_labels.iter().copied().filter(|l| b_labels.contains(l) && needed.contains(l)).collect();
        let inner: Vec<Label> =
            a_labels.iter().copied().filter(|l| b_labels.contains(l) && !needed.contains(l)).collect();
        let left: Vec<Label> = a_labels.iter().copied().filter(|l| !b_labels.contains(l)).collect();
        let right: Vec<Label> = b_labels.iter().copied().filter(|l| !a_labels.contains(l)).collect();
        let size = |labels: &[Label]| -> Vec<usize> { labels.iter().map(|l| sizes[l]).collect() };
        let count = |labels: &[Label]| -> Result<usize, OpError> {
            checked_elems(&size(labels))
                .filter(|&n| n <= MAX_ELEMS)
                .ok_or_else(|| self.invalid("an intermediate is too large".into()))
        };
        let (nb, nl, nk, nr) = (count(&batch)?, count(&left)?, count(&inner)?, count(&right)?);
        let arrange = |array: ArrayD<T>, labels: &[Label], order: &[Label]| -> Result<Vec<T>, OpError> {
            let perm: Vec<usize> = order.iter().filter_map(|l| labels.iter().position(|x| x == l)).collect();
            let permuted = array.permuted_axes(perm);
            let target = size(order);
            let view =
                permuted.broadcast(IxDyn(&target)).ok_or_else(|| self.invalid("operands do not broadcast".into()))?;
            Ok(view.iter().copied().collect())
        };
        let a_order: Vec<Label> = batch.iter().chain(&left).chain(&inner).copied().collect();
        let b_order: Vec<Label> = batch.iter().chain(&inner).chain(&right).copied().collect();
        let a_data = arrange(a, &a_labels, &a_order)?;
        let b_data = arrange(b, &b_labels, &b_order)?;
        count(&[batch.clone(), left.clone(), right.clone()].concat())?;
        let mut out = vec![T::zero(); nb * nl * nr];
        let product = Gemm::new(T::one(), T::zero());
        if nl * nr > 0 {
            for (index, block) in out.chunks_mut(nl * nr).enumerate() {
                let a_mat = MatRef::row_major(&a_data[index * nl * nk..], nl, nk);
                let b_mat = MatRef::row_major(&b_data[index * nk * nr..], nk, nr);
                product.run(a_mat, b_mat, block, ctx.par);
            }
        }
        let labels: Vec<Label> = batch.iter().chain(&left).chain(&right).copied().collect();
        let array = ArrayD::from_shape_vec(IxDyn(&size(&labels)), out).map_err(|e| self.invalid(e.to_string()))?;
        Ok((array, labels))
    }
}

/// Sums away the axes whose label `keep` rejects.
fn sum_unneeded<T: num_traits::Float>(
    mut array: ArrayD<T>,
    mut labels: Vec<Label>,
    keep: impl Fn(&Label) -> bool,
) -> (ArrayD<T>, Vec<Label>) {
    for axis in (0..labels.len()).rev() {
        if !keep(&labels[axis]) {
            array = array.sum_axis(Axis(axis));
            labels.remove(axis);
        }
    }
    (array, labels)
}

/// Takes the diagonal over each label repeated within one operand, so
/// every label appears once.
fn diagonal<T: Copy>(array: ArrayD<T>, labels: Vec<Label>) -> (ArrayD<T>, Vec<Label>) {
    let mut unique: Vec<Label> = Vec::new();
    for &label in &labels {
        if !unique.contains(&label) {
            unique.push(label);
        }
    }
    if unique.len() == labels.len() {
        return (array, labels);
    }
    let shape: Vec<usize> = unique
        .iter()
        .map(|label| labels.iter().zip(array.shape()).filter(|(l, _)| *l == label).map(|(_, &s)| s).min().unwrap_or(0))
        .collect();
    let source: Vec<usize> = labels.iter().map(|label| unique.iter().position(|u| u == label).unwrap_or(0)).collect();
    let out = ArrayD::from_shape_fn(IxDyn(&shape), |index| {
        let at: Vec<usize> = source.iter().map(|&u| index[u]).collect();
        array[IxDyn(&at)]
    });
    (out, unique)
}

impl Op for Einsum {
    fn n_inputs(&self) -> std::ops::RangeInclusive<usize> {
        self.inputs.len()..=self.inputs.len()
    }

    fn infer(&self, inputs: &[InferInput<'_>], _n_outputs: usize) -> Vec<Option<ValueType>> {
        let Some(ty) = inputs.first().and_then(|input| input.ty) else {
            return Vec::new();
        };
        vec![Some(ValueType { dtype: ty.dtype, dims: None })]
    }

    fn run(&self, inputs: &mut Inputs<'_>, ctx: &ExecCtx<'_>) -> Result<Tensor, OpError> {
        let tensors: Vec<_> =
            (0..self.inputs.len()).map(|index| required(inputs, index, "Einsum")).collect::<Result<_, _>>()?;
        let first = tensors.first().ok_or(OpError::MissingInput { op: "Einsum", index: 0 })?;
        check_dtype("Einsum", first.dtype(), self.dtypes)?;
        let refs: Vec<Option<&Tensor>> = tensors.iter().map(|tensor| Some(tensor.as_ref())).collect();
        with_float("Einsum", &refs, |inputs| {
            let inputs: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
            match inputs.first().map(|tensor| tensor.dtype()) {
                Some(DType::F64) => self.typed::<f64>(&inputs, ctx),
                _ => self.typed::<f32>(&inputs, ctx),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Parallel;

    fn op(equation: &str, n_inputs: usize) -> Einsum {
        let (lhs, rhs) = match equation.split_once("->") {
            Some((lhs, rhs)) => (lhs, Some(rhs)),
            None => (equation, None),
        };
        let inputs: Vec<Term> = lhs.split(',').map(|t| Term::parse(t).expect("term")).collect();
        assert_eq!(inputs.len(), n_inputs);
        Einsum {
            equation: equation.into(),
            inputs,
            output: rhs.map(|t| Term::parse(t).expect("term")),
            dtypes: super::super::FLOATS,
        }
    }

    fn tensor(shape: &[usize], seed: usize) -> Tensor {
        let len: usize = shape.iter().product();
        let data: Vec<f64> = (0..len).map(|idx| ((idx * 5 + seed * 3) % 11) as f64 - 5.0).collect();
        Tensor::from(ArrayD::from_shape_vec(IxDyn(shape), data).expect("shape"))
    }

    fn run(equation: &str, inputs: Vec<Tensor>) -> Result<Tensor, OpError> {
        let par = Parallel::serial();
        let op = op(equation, inputs.len());
        let mut inputs: Vec<_> = inputs.into_iter().map(|t| Some(t.into())).collect();
        op.run(&mut inputs, &ExecCtx { par: &par, pool: None, max_tensor_bytes: u64::MAX })
    }

    #[test]
    fn attention_forms_match_float64_loops() {
        let (b, h, q, k, d) = (2, 3, 4, 5, 6);
        let qt = tensor(&[b, h, q, d], 1);
        let kt = tensor(&[b, h, k, d], 2);
        let got = run("bhqd,bhkd->bhqk", vec![qt.clone(), kt.clone()]).expect("runs");
        assert_eq!(got.shape(), [b, h, q, k]);
        let (qa, ka, ga) = (qt.as_f64().expect("f64"), kt.as_f64().expect("f64"), got.as_f64().expect("f64"));
        for idx in ndarray::indices(&[b, h, q, k][..]) {
            let want: f64 = (0..d).map(|x| qa[[idx[0], idx[1], idx[2], x]] * ka[[idx[0], idx[1], idx[3], x]]).sum();
            assert_eq!(ga[&idx], want);
        }
        let a = tensor(&[2, 3, 4], 3);
        let c = tensor(&[2, 4, 5], 4);
        let got = run("bij,bjk->bik", vec![a.clone(), c.clone()]).expect("runs");
        let (aa, ca, ga) = (a.as_f64().expect("f64"), c.as_f64().expect("f64"), got.as_f64().expect("f64"));
        for idx in ndarray::indices(&[2, 3, 5][..]) {
            let want: f64 = (0..4).map(|j| aa[[idx[0], idx[1], j]] * ca[[idx[0], j, idx[2]]]).sum();
            assert_eq!(ga[&idx], want);
        }
    }

    #[test]
    fn single_operand_forms() {
        let x = tensor(&[3, 4], 1);
        let xa = x.as_f64().expect("f64").to_owned();
        let got = run("ij->ji", vec![x.clone()]).expect("runs");
        assert_eq!(got.as_f64().expect("f64"), xa.t().into_dyn());
        let got = run("ij->i", vec![x.clone()]).expect("runs");
        assert_eq!(got.as_f64().expect("f64"), xa.sum_axis(Axis(1)));
        let got = run("ij", vec![x.clone()]).expect("runs");
        assert_eq!(got.shape(), [3, 4]);
        let sq = tensor(&[2, 3, 3], 2);
        let got = run("...ii->...i", vec![sq.clone()]).expect("runs");
        let sa = sq.as_f64().expect("f64");
        for idx in ndarray::indices(&[2, 3][..]) {
            assert_eq!(got.as_f64().expect("f64")[&idx], sa[[idx[0], idx[1], idx[1]]]);
        }
        let v = tensor(&[5], 3);
        let got = run("i,i", vec![v.clone(), v.clone()]).expect("runs");
        let va = v.as_f64().expect("f64");
        assert_eq!(got.to_f64_vec(), [va.iter().map(|x| x * x).sum::<f64>()]);
    }

    #[test]
    fn mismatched_sizes_are_errors() {
        let err = run("ij,jk->ik", vec![tensor(&[2, 3], 1), tensor(&[4, 5], 2)]).expect_err("fails");
        assert!(err.to_string().starts_with("Einsum: label"), "{err}");
        let err = run("ijk->i", vec![tensor(&[2, 3], 1)]).expect_err("fails");
        assert!(err.to_string().contains("does not fit the term"), "{err}");
    }
}
