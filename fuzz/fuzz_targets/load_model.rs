//! Model loading: arbitrary bytes → `Model::from_bytes`, and the same bytes
//! as a file through `inspect` (which also loads from a path, so external
//! data is resolved against a scratch folder holding one small data file
//! and one symlink that leads out of it).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("onnxi-fuzz-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        std::fs::write(dir.join("weights.bin"), (0..4096u32).map(|v| v as u8).collect::<Vec<_>>()).expect("data");
        let _ = std::os::unix::fs::symlink("/etc/hostname", dir.join("escape.bin"));
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = onnxi::Model::from_bytes(data);
    let path = scratch().join("model.onnx");
    if std::fs::write(&path, data).is_ok()
        && let Ok(report) = onnxi::graph::inspect::inspect_file(&path)
    {
        let _ = report.to_text();
        let _ = report.to_json();
    }
});
