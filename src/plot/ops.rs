//! What `onnxi plot` draws for each op: the formula for the title, the
//! attribute sets to draw, and a float64 reference written here, apart
//! from onnxi's kernels and from the ops' own declarations, so that the
//! error panel compares two independent computations.

/// How an op is run and drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Elementwise `f(x)`: a curve over the range.
    Elementwise,
    /// Softmax, LogSoftmax or Hardmax over the last axis: bars of
    /// `[1, 2, 3, 4, 5]` and the error over random rows.
    Row,
}

/// Attributes of one curve: `(name, value)`, given to the node as float
/// attributes.
pub type Attrs = &'static [(&'static str, f32)];

/// One plottable op.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The ONNX `op_type`.
    pub name: &'static str,
    /// The formula, for the title.
    pub formula: &'static str,
    /// How it is run and drawn.
    pub kind: Kind,
    /// The attribute sets drawn, one curve each; the first is the ONNX
    /// default and is the one whose error is drawn.
    pub variants: &'static [Attrs],
}

/// The value of attribute `name` in `attrs`, or `default`.
fn attr(attrs: Attrs, name: &str, default: f32) -> f64 {
    f64::from(attrs.iter().find(|(key, _)| *key == name).map_or(default, |&(_, value)| value))
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
}

/// The float64 reference of an elementwise op at `x` with `attrs`
/// (attributes missing from `attrs` take their ONNX defaults); `None` for
/// an op that is not elementwise or not known here.
pub fn reference(op: &str, attrs: Attrs, x: f64) -> Option<f64> {
    let alpha = |default| attr(attrs, "alpha", default);
    Some(match op {
        "Relu" => {
            if x > 0.0 || x.is_nan() {
                x
            } else {
                0.0
            }
        }
        "LeakyRelu" => {
            if x > 0.0 {
                x
            } else {
                alpha(0.01) * x
            }
        }
        "Sigmoid" => 1.0 / (1.0 + (-x).exp()),
        "Tanh" => x.tanh(),
        "Elu" => {
            if x > 0.0 {
                x
            } else {
                alpha(1.0) * x.exp_m1()
            }
        }
        "Softsign" => x / (1.0 + x.abs()),
        "Selu" => {
            let gamma = attr(attrs, "gamma", 1.050_701);
            if x > 0.0 { gamma * x } else { gamma * alpha(1.673_263_2) * x.exp_m1() }
        }
        "Celu" => {
            let alpha = alpha(1.0);
            x.max(0.0) + (alpha * (x / alpha).exp_m1()).min(0.0)
        }
        "ThresholdedRelu" => {
            if x > alpha(1.0) || x.is_nan() {
                x
            } else {
                0.0
            }
        }
        "HardSigmoid" => (alpha(0.2) * x + attr(attrs, "beta", 0.5)).clamp(0.0, 1.0),
        "HardSwish" => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        "Shrink" => {
            let (bias, lambd) = (attr(attrs, "bias", 0.0), attr(attrs, "lambd", 0.5));
            if x < -lambd {
                x + bias
            } else if x > lambd {
                x - bias
            } else if x.is_nan() {
                x
            } else {
                0.0
            }
        }
        "Softplus" => softplus(x),
        "Mish" => x * softplus(x).tanh(),
        "Neg" => -x,
        "Abs" => x.abs(),
        "Exp" => x.exp(),
        "Log" => x.ln(),
        "Sqrt" => x.sqrt(),
        "Reciprocal" => 1.0 / x,
        "Erf" => libm::erf(x),
        // Φ(x) = erfc(-x/√2)/2, which does not cancel for negative x.
        "Gelu" => 0.5 * x * libm::erfc(-x / std::f64::consts::SQRT_2),
        "Swish" => x / (1.0 + (-alpha(1.0) * x).exp()),
        "Sign" => {
            if x.is_nan() {
                x
            } else if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        // The float math of `ops::trig`, from std (the kernels use the
        // libm crate) and, for the hyperbolic functions, from exp and ln.
        "Sin" => x.sin(),
        "Cos" => x.cos(),
        "Tan" => x.tan(),
        "Asin" => x.asin(),
        "Acos" => x.acos(),
        "Atan" => x.atan(),
        "Sinh" => (x.exp() - (-x).exp()) / 2.0,
        "Cosh" => (x.exp() + (-x).exp()) / 2.0,
        // Odd: computed on |x|, where x + √(x² + 1) does not cancel.
        "Asinh" => (x.abs() + (x * x + 1.0).sqrt()).ln().copysign(x),
        "Acosh" => (x + (x * x - 1.0).sqrt()).ln(),
        "Atanh" => 0.5 * ((1.0 + x) / (1.0 - x)).ln(),
        "Ceil" => x.ceil(),
        "Floor" => x.floor(),
        "Round" => x.round_ties_even(),
        _ => return None,
    })
}

/// The float64 reference of a row op over one row (`None` for another op).
pub fn row_reference(op: &str, row: &[f64]) -> Option<Vec<f64>> {
    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = row.iter().map(|&x| (x - max).exp()).sum();
    Some(match op {
        "Softmax" => row.iter().map(|&x| (x - max).exp() / sum).collect(),
        "LogSoftmax" => row.iter().map(|&x| x - max - sum.ln()).collect(),
        "Hardmax" => {
            let first = row.iter().position(|&x| x == max);
            (0..row.len()).map(|idx| if Some(idx) == first { 1.0 } else { 0.0 }).collect()
        }
        _ => return None,
    })
}

const NONE: &[Attrs] = &[&[]];

/// Every op `onnxi plot` draws, in the order of the elementwise
/// declarations (activations, then float math), then the row ops.
pub const SPECS: &[Spec] = &[
    Spec { name: "Relu", formula: "max(x, 0)", kind: Kind::Elementwise, variants: NONE },
    Spec {
        name: "LeakyRelu",
        formula: "x if x > 0 else α·x",
        kind: Kind::Elementwise,
        variants: &[&[("alpha", 0.01)], &[("alpha", 0.1)], &[("alpha", 0.3)]],
    },
    Spec { name: "Sigmoid", formula: "1 / (1 + exp(−x))", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Tanh", formula: "tanh(x)", kind: Kind::Elementwise, variants: NONE },
    Spec {
        name: "Elu",
        formula: "x if x > 0 else α·(exp(x) − 1)",
        kind: Kind::Elementwise,
        variants: &[&[("alpha", 1.0)], &[("alpha", 0.5)], &[("alpha", 2.0)]],
    },
    Spec { name: "Softsign", formula: "x / (1 + |x|)", kind: Kind::Elementwise, variants: NONE },
    Spec {
        name: "Selu",
        formula: "γ·x if x > 0 else γ·α·(exp(x) − 1), α ≈ 1.6733, γ ≈ 1.0507",
        kind: Kind::Elementwise,
        variants: NONE,
    },
    Spec {
        name: "Celu",
        formula: "max(0, x) + min(0, α·(exp(x/α) − 1))",
        kind: Kind::Elementwise,
        variants: &[&[("alpha", 1.0)], &[("alpha", 0.5)], &[("alpha", 2.0)]],
    },
    Spec {
        name: "ThresholdedRelu",
        formula: "x if x > α else 0",
        kind: Kind::Elementwise,
        variants: &[&[("alpha", 1.0)], &[("alpha", 0.5)], &[("alpha", 2.0)]],
    },
    Spec {
        name: "HardSigmoid",
        formula: "max(0, min(1, α·x + β))",
        kind: Kind::Elementwise,
        variants: &[&[("alpha", 0.2), ("beta", 0.5)], &[("alpha", 0.5), ("beta", 0.5)]],
    },
    Spec { name: "HardSwish", formula: "x · max(0, min(1, x/6 + 1/2))", kind: Kind::Elementwise, variants: NONE },
    Spec {
        name: "Shrink",
        formula: "x + bias if x < −λ, x − bias if x > λ, else 0",
        kind: Kind::Elementwise,
        variants: &[&[("lambd", 0.5), ("bias", 0.0)], &[("lambd", 1.0), ("bias", 0.5)]],
    },
    Spec { name: "Softplus", formula: "ln(1 + exp(x))", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Mish", formula: "x · tanh(ln(1 + exp(x)))", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Neg", formula: "−x", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Abs", formula: "|x|", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Exp", formula: "exp(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Log", formula: "ln(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Sqrt", formula: "√x", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Reciprocal", formula: "1 / x", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Erf", formula: "(2/√π) ∫₀ˣ exp(−t²) dt", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Gelu", formula: "x · Φ(x) = x/2 · (1 + erf(x/√2))", kind: Kind::Elementwise, variants: NONE },
    Spec {
        name: "Swish",
        formula: "x · sigmoid(α·x)",
        kind: Kind::Elementwise,
        variants: &[&[("alpha", 1.0)], &[("alpha", 0.5)], &[("alpha", 2.0)]],
    },
    Spec { name: "Sign", formula: "−1 if x < 0, 0 if x = 0, 1 if x > 0", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Sin", formula: "sin(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Cos", formula: "cos(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Tan", formula: "tan(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Asin", formula: "arcsin(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Acos", formula: "arccos(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Atan", formula: "arctan(x)", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Sinh", formula: "(exp(x) − exp(−x)) / 2", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Cosh", formula: "(exp(x) + exp(−x)) / 2", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Asinh", formula: "ln(x + √(x² + 1))", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Acosh", formula: "ln(x + √(x² − 1))", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Atanh", formula: "ln((1 + x) / (1 − x)) / 2", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Ceil", formula: "⌈x⌉", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Floor", formula: "⌊x⌋", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Round", formula: "nearest integer, halves to even", kind: Kind::Elementwise, variants: NONE },
    Spec { name: "Softmax", formula: "exp(xᵢ) / Σ exp(xⱼ)", kind: Kind::Row, variants: NONE },
    Spec { name: "LogSoftmax", formula: "xᵢ − ln Σ exp(xⱼ)", kind: Kind::Row, variants: NONE },
    Spec { name: "Hardmax", formula: "1 at the first maximum, else 0", kind: Kind::Row, variants: NONE },
];

/// The spec of `op` (exact ONNX spelling, or any case).
pub fn find(op: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|spec| spec.name == op).or_else(|| SPECS.iter().find(|spec| spec.name.eq_ignore_ascii_case(op)))
}

/// `alpha=0.01, beta=0.5`: a variant's attributes as text.
pub fn attrs_text(attrs: Attrs) -> String {
    attrs.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_activation_has_a_spec_and_a_reference() {
        // The handles with default attributes (a variant's label differs).
        for op in crate::ops::elementwise::declared().into_iter().filter(|op| op.label() == op.name()) {
            let spec = find(op.name()).unwrap_or_else(|| panic!("{} has no plot spec", op.name()));
            assert_eq!(spec.kind, Kind::Elementwise);
            assert!(reference(op.name(), spec.variants[0], 0.5).is_some());
            // The default attributes of the first variant agree with the
            // declaration's own reference (two independent writings).
            for x in [-3.0, -0.7, 0.3, 2.5] {
                let ours = reference(op.name(), spec.variants[0], x).unwrap();
                let theirs = op.reference(x);
                assert!(
                    (ours - theirs).abs() <= 1e-12 * theirs.abs().max(1.0) || (ours.is_nan() && theirs.is_nan()),
                    "{} at {x}: {ours} vs {theirs}",
                    op.name()
                );
            }
        }
    }

    #[test]
    fn row_references_match_the_tutorial() {
        let softmax = row_reference("Softmax", &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        // The tutorial's printed values.
        let want = [0.011656, 0.031685, 0.086129, 0.234122, 0.636409];
        for (got, want) in softmax.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(row_reference("Hardmax", &[1.0, 5.0, 5.0]).unwrap(), [0.0, 1.0, 0.0]);
        let log = row_reference("LogSoftmax", &[1.0, 2.0]).unwrap();
        assert!((log[1] - (-(1.0f64 + (-1.0f64).exp()).ln())).abs() < 1e-15);
    }
}
