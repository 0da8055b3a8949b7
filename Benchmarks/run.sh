#!/usr/bin/env bash
# Builds the benchmarks in release mode and runs them, each printing a Markdown report.
#
#   bash Benchmarks/run.sh                  # every benchmark
#   bash Benchmarks/run.sh header-bench     # only the ones named
#
# Each benchmark is built on its own (`--product`), so one that does not compile does not stop
# the others. A benchmark exits non-zero when it misses a target; this script runs them all and
# then exits 1 if any failed to build or missed a target. Big temporary files go under $TMPDIR
# (default /tmp): point it at the disk you want to measure. Debug builds are 50-300x slower,
# so there is no debug mode.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

benchmarks=("$@")
if [[ ${#benchmarks[@]} -eq 0 ]]; then
  benchmarks=(header-bench quant-bench spill-bench)
fi

build=(swift build -c release --package-path Benchmarks --scratch-path .build-bench)
failed=()
for name in "${benchmarks[@]}"; do
  if ! grep -q "name: \"$name\"" Benchmarks/Package.swift; then
    echo "run.sh: $name is not a target of Benchmarks/Package.swift yet; skipping" >&2
    continue
  fi
  if ! "${build[@]}" --product "$name" >&2; then
    echo "run.sh: $name does not build; skipping it" >&2
    failed+=("$name (build)")
    continue
  fi
  echo
  echo "## $name"
  echo
  if ! "$("${build[@]}" --show-bin-path)/$name"; then
    failed+=("$name")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
