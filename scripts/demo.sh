#!/usr/bin/env bash
# The main job on the small model shipped in the repository: build safeshard (release), convert
# Examples/tiny-llama with a recipe (default int8-weight-only) into out/tiny-llama-<recipe>, and
# verify the result (format, torchao metadata, SHA256SUMS).
#
#   bash scripts/demo.sh [RECIPE]
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-int8-weight-only}
bash scripts/install-deps.sh
swift build -c release --product safeshard
bin=$(swift build -c release --show-bin-path)/safeshard
output=out/tiny-llama-$recipe
"$bin" plan Examples/tiny-llama --recipe "$recipe"
"$bin" convert Examples/tiny-llama "$output" --recipe "$recipe" --max-shard-size 300KB
"$bin" verify "$output"
"$bin" inspect "$output" | tail -n 20
