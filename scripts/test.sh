#!/usr/bin/env bash
# Everything CI checks, from a fresh clone: system packages, build, `swift test`, the Python
# interop checks (the safetensors reference reads what the Swift tests wrote; the reference-written
# fixtures the Swift tests read are regenerated and compared), and the kernels' tests again in an
# optimised build for this machine's CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

swift build --build-tests
interop=$(mktemp -d)
trap 'rm -rf "$interop"' EXIT
SAFESHARD_INTEROP_OUT="$interop" swift test --skip-build

python=$(bash scripts/interop-venv.sh)
# The dequantized goldens are reproducible from the spec's formulas (and the torchao fixtures).
"$python" Tests/Interop/make_dequantized_fixtures.py Tests/Fixtures/torchao "$interop/dequantized" >/dev/null
diff -r Tests/Fixtures/dequantized "$interop/dequantized"
echo "dequantized goldens: reproduced byte for byte"
(cd Tests/Interop && "$python" check_python_fixtures.py ../Fixtures/python)
(cd Tests/Interop && "$python" check_swift_output.py "$interop")

# The quantization kernels as the benchmarks and the README's fast build have them: optimised and
# compiled for this machine's CPU (SAFESHARD_TARGET_CPU=native, wider vectors), against the torchao
# goldens. The debug tests above neither vectorise nor end a value's lifetime at its last use.
release=(-c release -Xswiftc -enable-testing --scratch-path .build-native-tests)
SAFESHARD_TARGET_CPU=native swift build "${release[@]}" --build-tests
SAFESHARD_TARGET_CPU=native swift test "${release[@]}" --skip-build --filter "QuantizationTests|TorchAOTests|FlattenedFileTests"
