//! Decoding model bytes: a `ModelProto` whose graph nodes stay encoded
//! until the builder asks for them one at a time, so a model of a million
//! nodes is never held twice.

use prost::Message;

use crate::error::LoadError;
use crate::onnx::{GraphProto, ModelProto, NodeProto};

pub(crate) fn decode_error(err: prost::DecodeError) -> LoadError {
    LoadError::Decode { reason: err.to_string() }
}

/// Decodes ModelProto bytes.
pub(crate) fn decode_model(bytes: &[u8]) -> Result<ModelProto, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Decode { reason: "the file is empty".into() });
    }
    ModelProto::decode(bytes).map_err(decode_error)
}

/// The main graph's nodes: still encoded, to be decoded one at a time while
/// the plan is built (so a graph of a million nodes never exists as
/// `NodeProto`s all at once), or already decoded.
pub(crate) enum GraphNodes<'a> {
    Encoded(Vec<&'a [u8]>),
    Decoded(Vec<NodeProto>),
}

impl<'a> GraphNodes<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            GraphNodes::Encoded(slices) => slices.len(),
            GraphNodes::Decoded(nodes) => nodes.len(),
        }
    }

    pub(crate) fn into_decoded(self) -> Box<dyn Iterator<Item = Result<NodeProto, LoadError>> + 'a> {
        match self {
            GraphNodes::Encoded(slices) => Box::new(slices.into_iter().enumerate().map(|(idx, slice)| {
                NodeProto::decode(slice)
                    .map_err(|err| LoadError::Decode { reason: format!("graph node #{idx}: {err}") })
            })),
            GraphNodes::Decoded(nodes) => Box::new(nodes.into_iter().map(Ok)),
        }
    }
}

/// A run of a message's encoded fields: the payload of the field asked
/// for, or other fields (kept together) to merge as they are.
pub(crate) enum Segment<'a> {
    Field(&'a [u8]),
    Others(&'a [u8]),
}

/// Splits a message's encoding into the length-delimited occurrences of
/// `field` and the runs of other fields between them; `None` when the
/// bytes are malformed or use wire forms this walker leaves to prost.
pub(crate) fn split_field(bytes: &[u8], field: u64) -> Option<Vec<Segment<'_>>> {
    fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *bytes.get(*pos)?;
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    let mut segments = Vec::new();
    let mut others_start = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let key = varint(bytes, &mut pos)?;
        let payload_start;
        let end = match key & 7 {
            0 => {
                varint(bytes, &mut pos)?;
                payload_start = pos;
                pos
            }
            1 => {
                payload_start = pos;
                pos.checked_add(8)?
            }
            2 => {
                let len = usize::try_from(varint(bytes, &mut pos)?).ok()?;
                payload_start = pos;
                pos.checked_add(len)?
            }
            5 => {
                payload_start = pos;
                pos.checked_add(4)?
            }
            _ => return None,
        };
        if end > bytes.len() {
            return None;
        }
        if key >> 3 == field && key & 7 == 2 {
            if let Some(others) = others_start.take() {
                segments.push(Segment::Others(&bytes[others..start]));
            }
            segments.push(Segment::Field(&bytes[payload_start..end]));
        } else if others_start.is_none() {
            others_start = Some(start);
        }
        pos = end;
    }
    if let Some(others) = others_start {
        segments.push(Segment::Others(&bytes[others..]));
    }
    Some(segments)
}

/// Decodes ModelProto bytes but leaves the main graph's nodes encoded.
/// Occurrences of a message field merge as if concatenated, so the graph's
/// other fields are merged occurrence by occurrence and its nodes kept in
/// order: the result is what `ModelProto::decode` gives.
pub(crate) fn decode_model_lazily(bytes: &[u8]) -> Result<(ModelProto, GraphNodes<'_>), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Decode { reason: "the file is empty".into() });
    }
    let eager = || -> Result<(ModelProto, GraphNodes<'_>), LoadError> {
        let mut proto = decode_model(bytes)?;
        let nodes = proto.graph.as_mut().map(|graph| std::mem::take(&mut graph.node)).unwrap_or_default();
        Ok((proto, GraphNodes::Decoded(nodes)))
    };
    let Some(model_segments) = split_field(bytes, 7) else {
        // Malformed (prost says how) or unusual wire forms (prost copes).
        return eager();
    };
    let mut proto = ModelProto::default();
    let mut graph: Option<GraphProto> = None;
    let mut node_slices = Vec::new();
    for segment in model_segments {
        match segment {
            Segment::Others(others) => proto.merge(others).map_err(decode_error)?,
            Segment::Field(graph_bytes) => {
                let Some(graph_segments) = split_field(graph_bytes, 1) else {
                    return eager();
                };
                let graph = graph.get_or_insert_with(GraphProto::default);
                for graph_segment in graph_segments {
                    match graph_segment {
                        Segment::Others(others) => graph.merge(others).map_err(decode_error)?,
                        Segment::Field(node) => node_slices.push(node),
                    }
                }
            }
        }
    }
    proto.graph = graph;
    Ok((proto, GraphNodes::Encoded(node_slices)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The lazy decoder's model with its nodes decoded and put back.
    fn lazily(bytes: &[u8]) -> Result<ModelProto, LoadError> {
        let (mut proto, nodes) = decode_model_lazily(bytes)?;
        let nodes: Vec<NodeProto> = nodes.into_decoded().collect::<Result<_, _>>()?;
        if let Some(graph) = proto.graph.as_mut() {
            graph.node = nodes;
        }
        Ok(proto)
    }

    fn fixture_models(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                fixture_models(&path, out);
            } else if path.file_name().is_some_and(|name| name == "model.onnx") {
                out.push(path);
            }
        }
    }

    #[test]
    fn lazy_decoding_gives_what_prost_gives_for_every_fixture() {
        let mut models = Vec::new();
        fixture_models(Path::new("fixtures"), &mut models);
        assert!(models.len() > 400, "{} fixture models", models.len());
        for path in models {
            let bytes = std::fs::read(&path).unwrap();
            // Compared re-encoded, bit for bit: NaN in a float attribute
            // would make `==` on the protos fail for equal models.
            let (lazy, eager) = (lazily(&bytes).unwrap(), decode_model(&bytes).unwrap());
            assert_eq!(lazy.encode_to_vec(), eager.encode_to_vec(), "{}", path.display());
        }
    }

    #[test]
    fn lazy_decoding_merges_repeated_fields_like_prost() {
        let node =
            |name: &str| NodeProto { name: Some(name.into()), op_type: Some("Relu".into()), ..Default::default() };
        let part = |graph_name: &str, nodes: Vec<NodeProto>, ir: i64| ModelProto {
            ir_version: Some(ir),
            graph: Some(GraphProto { name: Some(graph_name.into()), node: nodes, ..Default::default() }),
            ..Default::default()
        };
        // Two encodings back to back: every field merges, nodes in order,
        // the last singular value wins.
        let mut bytes = part("first", vec![node("a"), node("b")], 7).encode_to_vec();
        bytes.extend(part("second", vec![node("c")], 8).encode_to_vec());
        let merged = decode_model(&bytes).unwrap();
        assert_eq!(merged.graph.as_ref().unwrap().node.len(), 3);
        assert_eq!(lazily(&bytes).unwrap(), merged);
        // Broken input is refused either way.
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(lazily(&bytes[..cut]).is_err() == decode_model(&bytes[..cut]).is_err(), "cut {cut}");
        }
        // A group wire type (which this walker leaves to prost).
        let mut grouped = vec![0x0b, 0x0c];
        grouped.extend(part("g", vec![node("a")], 7).encode_to_vec());
        assert_eq!(lazily(&grouped).is_ok(), decode_model(&grouped).is_ok());
        if let Ok(proto) = decode_model(&grouped) {
            assert_eq!(lazily(&grouped).unwrap(), proto);
        }
    }
}
