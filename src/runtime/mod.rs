//! The runtime layer: running a plan. The interpreter binds inputs and
//! runs nodes in plan order ([`interp`]), fused chains run group of rows by
//! group of rows (`fuse`), and a session recycles its buffers
//! ([`buffers`]). It knows no op names.

pub mod buffers;
pub(crate) mod fuse;
pub mod interp;
