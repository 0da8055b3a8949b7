#!/usr/bin/env bash
# The main job on the small model shipped in the repository: build safeshard (release), then
# inspect and verify Examples/tiny-llama.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product safeshard
bin=$(swift build -c release --show-bin-path)/safeshard
"$bin" inspect Examples/tiny-llama
"$bin" verify Examples/tiny-llama
