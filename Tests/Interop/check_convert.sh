#!/usr/bin/env bash
# Converts Examples/tiny-llama with every recipe and compares each output with transformers +
# torchao. Development only (not CI): needs the reference stack of ../shared/reference/README.md.
#
#   bash Tests/Interop/check_convert.sh [PYTHON] [RECIPE ...]
#
# For each recipe: ../shared/reference/check_output.py (torchao's own quantization of the same
# input, tensor by tensor) and Tests/Interop/check_transformers.py (from_pretrained(OUTPUT) loads;
# tensors, metadata, quantization_config and logits equal transformers' own save).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${1:-.venv-ref/bin/python}
shift || true
reference=${SAFESHARD_REFERENCE:-$(cd .. && pwd)/shared/reference}
export SAFESHARD_REFERENCE=$reference
recipes=("$@")
if [ ${#recipes[@]} -eq 0 ]; then
  recipes=(int8-weight-only int8-dynamic float8-weight-only float8-dynamic float8-dynamic-per-tensor
    intx-weight-only-int4 int8-dynamic-intx-int4 int4-weight-only mxfp8 mxfp4 nvfp4 nvfp4-dynamic reshard)
fi
swift build -c release --product safeshard >&2
bin=$(swift build -c release --show-bin-path)/safeshard
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for recipe in "${recipes[@]}"; do
  echo "== $recipe"
  "$bin" convert Examples/tiny-llama "$out/$recipe" --recipe "$recipe" --max-shard-size 300KB --progress none
  if [ "$recipe" != reshard ]; then
    "$python" "$reference/check_output.py" "$out/$recipe" --input Examples/tiny-llama --config "$out/$recipe/config.json" | tail -n 1 || status=1
  fi
  "$python" Tests/Interop/check_transformers.py "$out/$recipe" Examples/tiny-llama | grep -v '^ok' || status=1
done
exit $status
