//! The tensor file readers: arbitrary bytes → `parse_pb` and `parse_npy`.
//! Whatever parses must survive a round trip through the writers bit for
//! bit (NaN payloads and -0.0 included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onnxi::io::tensor_file::{encode_npy, encode_pb, parse_npy, parse_pb};

/// Large enough for every seed, small enough that a claim of more is
/// refused before allocating.
const MAX_BYTES: u64 = 1 << 24;

fuzz_target!(|data: &[u8]| {
    if let Ok((tensor, name)) = parse_pb(data, MAX_BYTES) {
        let again = parse_pb(&encode_pb(name.as_deref().unwrap_or(""), &tensor), MAX_BYTES).expect("pb round trip");
        assert_eq!(again.0.dtype(), tensor.dtype());
        assert_eq!(again.0.shape(), tensor.shape());
        assert_eq!(again.0.to_le_bytes(), tensor.to_le_bytes());
    }
    if let Ok(tensor) = parse_npy(data, MAX_BYTES) {
        let again = parse_npy(&encode_npy(&tensor), MAX_BYTES).expect("npy round trip");
        assert_eq!(again.dtype(), tensor.dtype());
        assert_eq!(again.shape(), tensor.shape());
        assert_eq!(again.to_le_bytes(), tensor.to_le_bytes());
    }
});
