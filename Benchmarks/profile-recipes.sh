#!/usr/bin/env bash
# Where the CPU time of `safeshard convert` goes, for every built-in recipe (or those named): one
# `perf record -F 999` run each (no call graphs), summed by symbol into a Markdown table of CPU-seconds
# per input GB (10⁹ bytes), perf's own cost included.
#
#   SAFESHARD=<binary> MODEL_DIR=<model> bash Benchmarks/profile-recipes.sh [RECIPE ...]
#
# Columns: quantize (`Quantization` and the standard library's SIMD reductions it calls), hash
# (`sha256`), copy (`memmove`), non-finite scan (`ScaleFindings`), mappings and faults (kernel
# symbols of page tables, page faults and folios), other kernel, other user. Needs `perf` (Debian:
# linux-perf). Environment: SAFESHARD (a built binary), MODEL_DIR (a model folder), OUT_DIR (where
# each output goes and is removed; default /work/bench-outdir), MEMORY (256MiB).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
safeshard="${SAFESHARD:?set SAFESHARD to a built binary}"
model="${MODEL_DIR:?set MODEL_DIR to a model folder}"
out_dir="${OUT_DIR:-/work/bench-outdir}"
memory="${MEMORY:-256MiB}"
recipes=("$@")
if [[ ${#recipes[@]} -eq 0 ]]; then
  for file in Pipelines/*.yaml; do recipes+=("$(basename "$file" .yaml)"); done
fi
bytes=$(cat "$model"/*.safetensors | wc -c)
work=$(mktemp -d)
trap 'rm -rf "$work" "$out_dir/profile-out"' EXIT

echo "| recipe | quantize | hash | copy | non-finite scan | mappings, faults | other kernel | other user | total |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for recipe in "${recipes[@]}"; do
  rm -rf "$out_dir/profile-out"
  cat "$model"/*.safetensors > /dev/null
  perf record -q -F 999 -o "$work/perf.data" "$safeshard" convert "$model" "$out_dir/profile-out" --recipe "$recipe" \
    --memory "$memory" --progress none > /dev/null 2>&1
  perf report -i "$work/perf.data" --no-children --sort dso,symbol -n 2> /dev/null | grep -v '^#' | grep -v '^$' |
    awk -v recipe="$recipe" -v bytes="$bytes" '
      { n = $2; total += n
        if ($0 ~ /sha256/) hash += n
        else if ($0 ~ /memmove|memcpy/) copy += n
        else if ($0 ~ /ScaleFindings/) scan += n
        else if ($0 ~ /\$s12Quantization|\$ss4SIMD|\$ss12pointwise/) quantize += n
        else if ($0 ~ /\[k\]/ && $0 ~ /unmap|gup|get_user_pages|follow_page|folio|vm_normal|pte|xas_|filemap|rmap|lruvec|memcg|xa_load|tlb|clear_page|page_fault|handle_mm/) mapping += n
        else if ($0 ~ /\[k\]/) kernel += n
        else user += n }
      END { g = bytes / 1e9 * 999
        printf "| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | **%.3f** |\n", recipe, quantize / g, hash / g,
          copy / g, scan / g, mapping / g, kernel / g, user / g, total / g }'
done
