#!/usr/bin/env bash
# In-process A/B of one onnxi kernel: a base revision against the working tree.
#
#   benches/ab/run.sh REV KERNEL [N] [LO HI] [ROWS]
#
#   REV     any git revision (e.g. HEAD, HEAD~3, a commit id) of this repository
#   KERNEL  relu | leakyrelu | sigmoid | tanh | elu | softmax
#   N       elements per row, default 16000
#   LO HI   inputs uniform in [LO, HI), default -10 10
#   ROWS    rows, default 1
#
# Both versions are linked into one binary and timed in alternating batches
# on the same inputs, so machine noise hits both alike; the ratio is what to
# quote. Needs only git and cargo. Both versions load the same one-node
# model through the public API (Model::builder().threads(1), a Session), so
# any two revisions that run the op can be compared.
set -euo pipefail

rev="${1:?usage: benches/ab/run.sh REV KERNEL [N] [LO HI] [ROWS]}"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel)"
base="$here/target/base"

commit="$(git -C "$root" rev-parse --verify "$rev^{commit}")"
if [[ "$(cat "$base/.ab-commit" 2>/dev/null)" != "$commit" ]]; then
    rm -rf "$base"
    mkdir -p "$base"
    git -C "$root" archive "$commit" | tar -x -C "$base"
    # Two packages named onnxi cannot share one lockfile.
    sed -i '0,/^name = "onnxi"$/s//name = "onnxi_base"/' "$base/Cargo.toml"
    echo "$commit" > "$base/.ab-commit"
fi
echo "base: $(git -C "$root" log --oneline -1 "$commit")" >&2
echo "head: working tree of $(git -C "$root" log --oneline -1 HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo ' (modified)')" >&2
cargo run --quiet --release --manifest-path "$here/Cargo.toml" -- "$@"
