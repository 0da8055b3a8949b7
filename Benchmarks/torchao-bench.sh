#!/usr/bin/env bash
# Converts the same synthetic Llama-shaped weights once from a torchao int8 checkpoint (what
# `--recipe int8-weight-only` writes: Int8Tensor qdata, F32 per-row scales, torchao metadata) and
# once from its dequantized twin (what `--recipe dequantize` writes of it: the same values in
# bfloat16), with the recipes `dequantize` and `float8-dynamic` and the same memory budget, and
# prints wall time, CPU and peak RSS of each, and whether each pair of outputs holds the same
# tensors.
#
#   PYTHON=/path/to/venv/bin/python bash Benchmarks/torchao-bench.sh [GiB of bf16 weights, default 4]
#
# Needs a Python with numpy and ml_dtypes (Benchmarks/make_synthetic_llama.py writes the bf16
# model). Environment: BENCH_DIR (default $TMPDIR or /tmp), MEMORY (256MiB), SAFESHARD (a built
# binary; default: build it in release with --scratch-path .build-release).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gib="${1:-4}"
memory="${MEMORY:-256MiB}"
python="${PYTHON:?set PYTHON to a python with numpy and ml_dtypes}"
if [[ -z "${SAFESHARD:-}" ]]; then
  swift build -c release --product safeshard --scratch-path .build-release >&2
  SAFESHARD="$(swift build -c release --scratch-path .build-release --show-bin-path)/safeshard"
fi
dir="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/torchao-bench.XXXXXX")"
trap 'rm -rf "$dir"' EXIT

"$python" Benchmarks/make_synthetic_llama.py "$dir/model" "${gib}GiB" >/dev/null
"$SAFESHARD" convert "$dir/model" "$dir/int8" --recipe int8-weight-only --memory "$memory" --progress none >/dev/null
"$SAFESHARD" convert "$dir/int8" "$dir/bf16" --recipe dequantize --memory "$memory" --progress none >/dev/null
rm -rf "$dir/model"

echo "$(du -sh "$dir/int8" | cut -f1) torchao int8 input, $(du -sh "$dir/bf16" | cut -f1) bf16 twin, --memory $memory, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| recipe | input | wall (s) | CPU (s) | peak RSS (MiB) |"
echo "|---|---|---:|---:|---:|"
for recipe in dequantize float8-dynamic; do
  for round in 1 2; do
    for name in int8 bf16; do
      rm -rf "$dir/out-$recipe-$name"
      sync
      /usr/bin/time -o "$dir/time" -f "%e %U %S %M" "$SAFESHARD" convert "$dir/$name" "$dir/out-$recipe-$name" \
        --recipe "$recipe" --memory "$memory" --progress none >/dev/null
      read -r wall user sys rss <"$dir/time"
      echo "| $recipe | $name (round $round) | $wall | $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') | $((rss / 1024)) |"
    done
  done
done
echo
for recipe in dequantize float8-dynamic; do
  "$python" "$root/Tests/Interop/compare_to_golden.py" "$dir/out-$recipe-int8" "$dir/out-$recipe-bf16" --names-as-set \
    | tail -n 1 && echo "$recipe: the torchao int8 input and its bf16 twin give the same tensors, metadata and quantization_config"
done
