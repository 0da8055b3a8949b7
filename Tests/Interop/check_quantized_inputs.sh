#!/usr/bin/env bash
# Converts every quantized-input fixture that safeshard dequantizes (Tests/Fixtures/quantized-input:
# block FP8, compressed-tensors FP8 per tensor and per channel (F16 scales of a float16 model
# included, whose twin is DIR-fp16), gpt-oss MXFP4, torchao-*) with `dequantize`, compares the
# output with the twin the reference stack wrote, then converts
# the fixture and its twin with each RECIPE and compares the two outputs. When PYTHON imports
# torchao, it also dequantizes every torchao golden fixture (Tests/Fixtures/torchao/*/expected.
# safetensors: every subclass, granularity and dtype) and compares the output with torchao's own
# dequantize() (check_torchao_dequantize.py; SAFESHARD_REFERENCE names shared/reference).
# Development only (not CI): needs a Python 3 (the standard library is enough for
# compare_to_golden.py).
#
#   bash Tests/Interop/check_quantized_inputs.sh [PYTHON] [RECIPE ...]
#
# Default recipes: int8-weight-only, float8-dynamic, int4-weight-only; gpt-oss also with
# float8-dynamic-experts. The last line is "all equal" or the number of differing outputs.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${1:-python3}
shift || true
recipes=("$@")
if [ ${#recipes[@]} -eq 0 ]; then recipes=(int8-weight-only float8-dynamic int4-weight-only); fi
swift build --product safeshard >&2
bin=$(swift build --show-bin-path)/safeshard
fixtures=Tests/Fixtures/quantized-input
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0
compare() { # OUT GOLDEN: prints the verdict, counts a difference
  if ! "$python" Tests/Interop/compare_to_golden.py "$1" "$2" --names-as-set | tail -n 1; then failed=$((failed + 1)); fi
}
torchao_inputs=(torchao-int8wo torchao-int8dq torchao-fp8wo torchao-fp8dq torchao-intx4 torchao-int4 torchao-mxfp8
  torchao-nvfp4)
for input in fp8-block ct-fp8-tensor ct-fp8-channel ct-fp8-channel-f16 mxfp4-gpt-oss "${torchao_inputs[@]}"; do
  twin="$input-bf16"
  if [ -d "$fixtures/$input-fp16" ]; then twin="$input-fp16"; fi # a float16 model's twin
  echo "== $input dequantize"
  "$bin" convert "$fixtures/$input" "$out/$input-dequantize" --recipe dequantize --progress none >/dev/null
  compare "$out/$input-dequantize" "$fixtures/$twin"
  extra=()
  if [ "$input" = mxfp4-gpt-oss ]; then extra=(float8-dynamic-experts); fi
  for recipe in "${recipes[@]}" "${extra[@]}"; do
    echo "== $input $recipe"
    if ! "$bin" convert "$fixtures/$twin" "$out/$input-$recipe-twin" --recipe "$recipe" --progress none \
      >/dev/null 2>"$out/error"; then
      echo "the twin is refused ($(tail -c 200 "$out/error")); skipped"
      continue
    fi
    "$bin" convert "$fixtures/$input" "$out/$input-$recipe" --recipe "$recipe" --progress none >/dev/null
    compare "$out/$input-$recipe" "$out/$input-$recipe-twin"
  done
done
if "$python" -c "import torchao" 2>/dev/null; then
  echo "== torchao golden fixtures dequantize, against torchao's dequantize()"
  mkdir -p "$out/torchao"
  goldens=()
  for golden in Tests/Fixtures/torchao/*/expected.safetensors; do
    fixture=$(basename "$(dirname "$golden")")
    "$bin" convert "$golden" "$out/torchao/$fixture" --recipe dequantize --progress none >/dev/null 2>&1
    goldens+=("$golden")
  done
  if ! "$python" Tests/Interop/check_torchao_dequantize.py "$out/torchao" "${goldens[@]}" | tail -n 2; then
    failed=$((failed + 1))
  fi
else
  echo "== $python has no torchao: the torchao golden fixtures are not compared with torchao"
fi
if [ "$failed" -eq 0 ]; then echo "all equal"; else echo "$failed outputs differ"; exit 1; fi
