//! The execution plan: nodes in topological order over numbered value
//! slots, with the last reader of each value marked so it may reuse the
//! buffer. Built once at load; running never looks up a name.

use std::collections::VecDeque;

use crate::error::LoadError;
use crate::graph::model::InputSpec;
use crate::graph::shapes::{InferInput, ValueType};
use crate::ops::Op;
use crate::tensor::Tensor;

/// One node, ready to run.
#[derive(Debug)]
pub(crate) struct PlanNode {
    /// Node name, or `#index op_type` when the file gave none.
    pub name: String,
    /// ONNX op_type.
    pub op_type: String,
    /// The op's schema version in use.
    pub version: i64,
    /// The configured op.
    pub op: Box<dyn Op>,
    /// Input slots (`None`: an omitted optional input). Boxed slices, not
    /// vectors: a plan of a million nodes holds three per node.
    pub inputs: Box<[Option<usize>]>,
    /// Output slots (`None`: an unused optional output).
    pub outputs: Box<[Option<usize>]>,
    /// Per input: true when this node is the value's last reader, so the
    /// value may be moved into the op.
    pub consumes: Box<[bool]>,
    /// How many of the following nodes, in plan order, this node's output
    /// reaches through unbroken links, a link being two consecutive nodes
    /// that both chain ([`Op::chains`]) where the first's output is read
    /// by the second only (no other reader, not a graph output). Linked
    /// nodes may run as one fused step; 0 when this node feeds no next one.
    pub links: usize,
}

/// A validated graph in execution order.
#[derive(Debug)]
pub(crate) struct Plan {
    pub nodes: Vec<PlanNode>,
    pub n_slots: usize,
    pub inputs: Vec<InputSpec>,
    pub input_slots: Vec<usize>,
    pub input_defaults: Vec<Option<Tensor>>,
    pub constants: Vec<(usize, Tensor)>,
    pub outputs: Vec<(String, usize)>,
    /// Each slot's value name (empty until the loader sets them).
    pub names: Vec<Box<str>>,
    /// Each slot's static type where known (empty until inferred).
    pub types: Vec<Option<ValueType>>,
}

impl Plan {
    /// Orders `nodes` topologically (Kahn's algorithm: iterative, linear)
    /// and marks last uses.
    pub fn new(
        nodes: Vec<PlanNode>,
        n_slots: usize,
        inputs: Vec<InputSpec>,
        input_slots: Vec<usize>,
        input_defaults: Vec<Option<Tensor>>,
        constants: Vec<(usize, Tensor)>,
        outputs: Vec<(String, usize)>,
    ) -> Result<Plan, LoadError> {
        let mut producer: Vec<Option<usize>> = vec![None; n_slots];
        for (node_idx, node) in nodes.iter().enumerate() {
            for &slot in node.outputs.iter().flatten() {
                producer[slot] = Some(node_idx);
            }
        }
        // Each node's readers in one flat array (CSR): those of `idx` are
        // `readers[first[idx]..first[idx + 1]]`, so a million nodes cost two
        // vectors instead of a million small ones.
        let mut n_waiting = vec![0usize; nodes.len()];
        let mut first = vec![0usize; nodes.len() + 1];
        for (node_idx, node) in nodes.iter().enumerate() {
            for &slot in node.inputs.iter().flatten() {
                if let Some(source) = producer[slot] {
                    n_waiting[node_idx] += 1;
                    first[source + 1] += 1;
                }
            }
        }
        for idx in 0..nodes.len() {
            first[idx + 1] += first[idx];
        }
        let mut readers = vec![0usize; first[nodes.len()]];
        let mut filled = first.clone();
        for (node_idx, node) in nodes.iter().enumerate() {
            for &slot in node.inputs.iter().flatten() {
                if let Some(source) = producer[slot] {
                    readers[filled[source]] = node_idx;
                    filled[source] += 1;
                }
            }
        }
        drop(filled);
        let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|&idx| n_waiting[idx] == 0).collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(idx) = ready.pop_front() {
            order.push(idx);
            for &reader in &readers[first[idx]..first[idx + 1]] {
                n_waiting[reader] -= 1;
                if n_waiting[reader] == 0 {
                    ready.push_back(reader);
                }
            }
        }
        drop((readers, first, ready));
        if order.len() != nodes.len() {
            let on_cycle = node_on_cycle(&nodes, &producer, &n_waiting);
            return Err(LoadError::Cycle {
                node: nodes[on_cycle].name.clone(),
                op_type: nodes[on_cycle].op_type.clone(),
            });
        }
        drop((producer, n_waiting));
        let mut ordered = permute(nodes, order);

        // A value may be moved into its last reader unless the caller will
        // see it (graph output) or it is bound for the model's lifetime
        // (constant), or that reader reads it twice.
        let mut pinned = vec![false; n_slots];
        for &(_, slot) in &outputs {
            pinned[slot] = true;
        }
        for &(slot, _) in &constants {
            pinned[slot] = true;
        }
        let mut last_reader: Vec<Option<usize>> = vec![None; n_slots];
        for (pos, node) in ordered.iter().enumerate() {
            for &slot in node.inputs.iter().flatten() {
                last_reader[slot] = Some(pos);
            }
        }
        for (pos, node) in ordered.iter_mut().enumerate() {
            node.consumes = node
                .inputs
                .iter()
                .map(|input| match *input {
                    Some(slot) => {
                        !pinned[slot]
                            && last_reader[slot] == Some(pos)
                            && node.inputs.iter().filter(|other| **other == Some(slot)).count() == 1
                    }
                    None => false,
                })
                .collect();
        }
        // Backwards, so that each node adds its link to the next one's count.
        for pos in (1..ordered.len()).rev() {
            let (before, after) = ordered.split_at_mut(pos);
            let (producer, reader) = (&mut before[pos - 1], &after[0]);
            let link = match (&*producer.outputs, &*reader.inputs, &*reader.consumes) {
                ([Some(out)], [Some(input)], [true]) => out == input,
                _ => false,
            };
            producer.links = if link && producer.op.chains() && reader.op.chains() { reader.links + 1 } else { 0 };
        }
        Ok(Plan {
            nodes: ordered,
            n_slots,
            inputs,
            input_slots,
            input_defaults,
            constants,
            outputs,
            names: Vec::new(),
            types: Vec::new(),
        })
    }

    /// Infers every slot's static type in plan order: graph inputs as
    /// declared, constants exactly, node outputs from [`Op::infer`].
    pub fn infer_types(&mut self) {
        let mut types: Vec<Option<ValueType>> = vec![None; self.n_slots];
        let mut values: Vec<Option<&Tensor>> = vec![None; self.n_slots];
        for (spec, &slot) in self.inputs.iter().zip(&self.input_slots) {
            types[slot] = Some(ValueType { dtype: spec.dtype, dims: spec.dims.clone() });
        }
        for (slot, tensor) in &self.constants {
            types[*slot] = Some(ValueType::of(tensor));
            values[*slot] = Some(tensor);
        }
        for node in &self.nodes {
            let inputs: Vec<InferInput<'_>> = node
                .inputs
                .iter()
                .map(|input| match *input {
                    Some(slot) => InferInput { ty: types[slot].as_ref(), value: values[slot] },
                    None => InferInput::default(),
                })
                .collect();
            let inferred = node.op.infer(&inputs, node.outputs.len());
            drop(inputs);
            for (slot, ty) in node.outputs.iter().zip(inferred) {
                if let Some(slot) = *slot {
                    types[slot] = ty;
                }
            }
        }
        self.types = types;
    }

    /// The load-time type check over the typed plan ([`Plan::infer_types`]
    /// first): each node's [`Op::check_types`] on its inputs' types.
    ///
    /// # Errors
    /// [`LoadError::InputType`] for the first node whose op refuses an
    /// input type.
    pub fn check_types(&self) -> Result<(), LoadError> {
        for node in &self.nodes {
            let inputs: Vec<InferInput<'_>> = node
                .inputs
                .iter()
                .map(|input| InferInput { ty: input.and_then(|slot| self.types.get(slot)?.as_ref()), value: None })
                .collect();
            node.op.check_types(&inputs).map_err(|source| LoadError::InputType {
                node: node.name.clone(),
                op_type: node.op_type.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// A node that lies on a cycle, given what Kahn's algorithm left waiting.
///
/// Every node still waiting reads at least one value whose producer is
/// also still waiting (else it would have run). Stepping from waiting node
/// to waiting producer therefore never stops, and within `nodes.len()`
/// steps it must revisit a node: that node is on a cycle, not merely
/// downstream of one.
fn node_on_cycle(nodes: &[PlanNode], producer: &[Option<usize>], n_waiting: &[usize]) -> usize {
    let Some(mut current) = (0..nodes.len()).find(|&idx| n_waiting[idx] > 0) else {
        return 0;
    };
    let mut seen = vec![false; nodes.len()];
    while !seen[current] {
        seen[current] = true;
        let waiting_producer = nodes[current]
            .inputs
            .iter()
            .flatten()
            .filter_map(|&slot| producer[slot])
            .find(|&source| n_waiting[source] > 0);
        match waiting_producer {
            Some(source) => current = source,
            None => break,
        }
    }
    current
}

/// Reorders `items` so that position `pos` holds the item that was at
/// `order[pos]`, in place (following the permutation's cycles), so that a
/// million nodes are never held twice.
fn permute<T>(mut items: Vec<T>, mut order: Vec<usize>) -> Vec<T> {
    for start in 0..order.len() {
        // Positions already in place hold their own index.
        let mut pos = start;
        while order[pos] != pos {
            let source = order[pos];
            items.swap(pos, source);
            order[pos] = pos;
            pos = source;
            if order[pos] == start {
                order[pos] = pos;
                break;
            }
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::permute;
    use crate::error::{LoadError, OpError};
    use crate::onnx::{
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
        ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto, type_proto,
    };
    use crate::tensor::DType;

    const FLOAT: i32 = 1;
    const FLOAT16: i32 = 10;
    const INT32: i32 = 6;

    fn value_info(name: &str, elem_type: i32) -> ValueInfoProto {
        let dim = tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(3)),
            ..Default::default()
        };
        let shape = Some(TensorShapeProto { dim: vec![dim] });
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem_type), shape })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(op_type: &str, name: &str, input: &str, output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: Some(op_type.into()),
            name: Some(name.into()),
            input: vec![input.into()],
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    /// Loads `nodes` over an input `x` of `x_type` (output `y`) at `opset`.
    fn load(nodes: Vec<NodeProto>, x_type: i32, opset: i64) -> Result<crate::Model, LoadError> {
        let graph = GraphProto {
            name: Some("g".into()),
            node: nodes,
            input: vec![value_info("x", x_type)],
            output: vec![value_info("y", x_type)],
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
            graph: Some(graph),
            ..Default::default()
        };
        crate::Model::builder().optimize(false).from_bytes(&model.encode_to_vec()).map_err(|err| match err {
            crate::Error::Load { source, .. } => source,
            other => panic!("not a load error: {other}"),
        })
    }

    /// Celu-12 allows float32 only (the invalid float16 exports of
    /// TorchScript): refused at load, naming the node and the type, whether
    /// the type is declared or inferred; the same model loads where the
    /// version allows the type.
    #[test]
    fn load_refuses_an_input_type_outside_the_schema() {
        let celu = || node("Celu", "the_celu", "x", "y", vec![]);
        let err = load(vec![celu()], FLOAT16, 13).unwrap_err();
        let want = LoadError::InputType {
            node: "the_celu".into(),
            op_type: "Celu".into(),
            source: OpError::UnsupportedDtype { op: "Celu", dtype: DType::F16 },
        };
        assert_eq!(err, want);
        assert!(err.to_string().contains("the_celu") && err.to_string().contains("float16"), "{err}");
        assert!(load(vec![celu()], FLOAT, 13).is_ok());
        assert!(load(vec![celu()], FLOAT16, 28).is_ok(), "Celu-28 allows float16");
        // Inferred: float32 input cast to float16 before Celu-12.
        let to = AttributeProto {
            name: Some("to".into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(i64::from(FLOAT16)),
            ..Default::default()
        };
        let cast = node("Cast", "cast", "x", "h", vec![to]);
        let err = load(vec![cast, node("Celu", "the_celu", "h", "y", vec![])], FLOAT, 13).unwrap_err();
        assert!(matches!(err, LoadError::InputType { ref node, .. } if node == "the_celu"), "{err}");
        // Relu takes int32 from opset 14 only.
        let relu = || node("Relu", "r", "x", "y", vec![]);
        assert!(matches!(load(vec![relu()], INT32, 13), Err(LoadError::InputType { .. })));
        assert!(load(vec![relu()], INT32, 14).is_ok());
    }

    #[test]
    fn permute_gathers_in_place_for_every_permutation_of_four() {
        let mut order = vec![0, 1, 2, 3];
        // Heap's algorithm over all 24 orders.
        let mut counters = [0usize; 4];
        let check = |order: &[usize]| {
            let items: Vec<char> = "abcd".chars().collect();
            let expected: Vec<char> = order.iter().map(|&idx| items[idx]).collect();
            assert_eq!(permute(items, order.to_vec()), expected, "{order:?}");
        };
        check(&order);
        let mut idx = 1;
        while idx < 4 {
            if counters[idx] < idx {
                let other = if idx % 2 == 0 { 0 } else { counters[idx] };
                order.swap(other, idx);
                check(&order);
                counters[idx] += 1;
                idx = 1;
            } else {
                counters[idx] = 0;
                idx += 1;
            }
        }
    }
}
