//! The graph layer: a decoded model becomes a validated execution plan.
//! Only this layer (and `crate::io`, which decodes the bytes) sees
//! protobuf graphs; everything after loading works on the `plan`.

pub mod attrs;
mod builder;
pub(crate) mod fold;
mod functions;
pub mod inspect;
pub mod model;
pub(crate) mod opsets;
pub mod optimize;
pub(crate) mod plan;
pub mod shapes;
