//! Opt-in: the full-size networks that `fixtures/networks/gen.py` writes to
//! `fixtures-large/networks/` (ignored by git: torchvision resnet18,
//! mobilenet_v3_small and efficientnet_b0 at full width, 224x224, 1000
//! classes, TorchScript opset 17, batch 1 and 2). Too large to commit, so
//! generate them first, then run this test in release:
//!
//! ```text
//! fixtures/regen.sh                  # or: python fixtures/networks/gen.py --only-large
//! cargo test --release --test networks_large -- --ignored
//! ```
//!
//! The folder's manifest.txt (written by gen.py) pins the case count and
//! the networks' tolerance (rtol 1e-3, atol 1e-4 against PyTorch).

use std::path::PathBuf;

use onnxi::conformance::{CaseReport, Options, Status, run_paths};

#[test]
#[ignore = "needs fixtures-large/networks/ from fixtures/networks/gen.py; run with --ignored (in release)"]
fn full_size_networks_match_pytorch() {
    let root = PathBuf::from("fixtures-large/networks");
    assert!(
        root.join("manifest.txt").is_file(),
        "{} is missing: generate it with `python fixtures/networks/gen.py --only-large`",
        root.display()
    );
    let report = run_paths(std::slice::from_ref(&root), &Options::default(), |_, _, _| {});
    assert!(report.tripwires.is_empty(), "{:?}", report.tripwires);
    assert!(!report.cases.is_empty(), "no case found under {}", root.display());
    let failures: Vec<String> = report
        .cases
        .iter()
        .filter(|case| matches!(case.status, Status::Fail(_) | Status::Error(_)))
        .map(CaseReport::line)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
