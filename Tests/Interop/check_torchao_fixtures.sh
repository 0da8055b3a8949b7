#!/usr/bin/env bash
# Checks safeshard's quantized files for all 49 golden fixtures with torchao itself.
# Development only (not CI): needs the reference stack of ../shared/reference/README.md
# (torch, torchao, transformers) in a virtual environment.
#
#   bash Tests/Interop/check_torchao_fixtures.sh [PYTHON]
#
# PYTHON defaults to .venv-ref/bin/python. The Swift test FlattenedFileTests writes
# OUT/<fixture>/output.safetensors; ../shared/reference/check_output.py OUT compares each with
# torchao's own quantization of the fixture's input. Last line: "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${1:-.venv-ref/bin/python}
reference=${SAFESHARD_REFERENCE:-../shared/reference}
if ! "$python" -c "import torch, torchao" >/dev/null 2>&1; then
  echo "check_torchao_fixtures: $python has no torch/torchao; see $reference/README.md" >&2
  exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
SAFESHARD_TORCHAO_OUT="$out" swift test --filter FlattenedFileTests
"$python" "$reference/check_output.py" "$out" --fixtures Tests/Fixtures/torchao
