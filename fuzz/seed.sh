#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the fixtures (run from anywhere; the
# corpus folders are not committed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fixtures="$here/../fixtures"
mkdir -p "$here/corpus/load_model" "$here/corpus/run_model" "$here/corpus/tensor_files"
find "$fixtures" -name model.onnx | while read -r model; do
    id="$(echo "$model" | md5sum | cut -c1-16)"
    cp "$model" "$here/corpus/load_model/$id"
    # run_model: an odd first byte selects "any model", two bytes steer shapes.
    { printf '\001\002\003'; cat "$model"; } > "$here/corpus/run_model/$id"
done
find "$fixtures" \( -name '*.pb' -o -name '*.npy' \) | while read -r file; do
    id="$(echo "$file" | md5sum | cut -c1-16)"
    cp "$file" "$here/corpus/tensor_files/$id"
done
# run_model: one seed per op of the one-op zoo (even first byte).
for op in $(seq 0 11); do
    printf "\\000\\$(printf '%03o' "$op")\\004\\000\\001\\002\\003\\003\\003ABCDEFGH" > "$here/corpus/run_model/op$op"
done
echo "seeded: $(ls "$here/corpus/load_model" | wc -l) models, $(ls "$here/corpus/tensor_files" | wc -l) tensor files"
