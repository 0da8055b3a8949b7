#!/usr/bin/env bash
# Times `safeshard plan`, `inspect` and `verify` on a checkpoint of many small tensors, where the
# header (not the data) is the work, and prints a Markdown table.
#
#   bash Benchmarks/plan-bench.sh            # 100000 tensors
#   bash Benchmarks/plan-bench.sh 300000     # another count
#
# It writes one safetensors file of N BF16 [2, 32] weights named `model.layers.<i>.proj.weight`
# (Python standard library only; a 9.5 MB header), converts it once with int8-weight-only into
# shards of at most 5 MB (3N stored tensors described by torchao's __metadata__), then times,
# ROUNDS times each, median wall and user+sys CPU seconds:
#   plan  FILE --recipe int8-weight-only        (the plan convert follows: 3N output tensors)
#   plan  FILE --recipe int8-weight-only --json
#   plan  FILE --recipe reshard
#   inspect FILE, verify FILE
#   inspect OUT, verify OUT                     (the torchao checkpoint)
# Target (exit 1 when one is missed): every median wall time under 2 s.
#
# Environment: BENCH_DIR (temporary files, default $TMPDIR or /tmp), ROUNDS (3), SAFESHARD (a
# built binary; default: build it in release with --scratch-path .build-release). What it
# creates under BENCH_DIR is removed at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

count="${1:-100000}"
rounds="${ROUNDS:-3}"
if [[ -z "${SAFESHARD:-}" ]]; then
  swift build -c release --product safeshard --scratch-path .build-release >&2
  SAFESHARD="$(swift build -c release --scratch-path .build-release --show-bin-path)/safeshard"
fi
dir="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/plan-bench.XXXXXX")"
trap 'rm -rf "$dir"' EXIT

python3 - "$count" "$dir/many.safetensors" <<'PY'
import json, struct, sys
n, path = int(sys.argv[1]), sys.argv[2]
size = 2 * 32 * 2
header = {f"model.layers.{i}.proj.weight": {"dtype": "BF16", "shape": [2, 32], "data_offsets": [i * size, (i + 1) * size]}
          for i in range(n)}
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
row = struct.pack("<64H", *[(0x3F80 + k) for k in range(64)])
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    f.write(row * n)
PY
"$SAFESHARD" convert "$dir/many.safetensors" "$dir/out" --recipe int8-weight-only --max-shard-size 5MB \
  --progress none >/dev/null 2>&1

file="$dir/many.safetensors"
commands=(
  "plan $file --recipe int8-weight-only"
  "plan $file --recipe int8-weight-only --json"
  "plan $file --recipe reshard"
  "inspect $file"
  "verify $file"
  "inspect $dir/out"
  "verify $dir/out"
)
echo "$count tensors ($(wc -c <"$file") bytes), $rounds rounds, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| command | median wall (s) | median CPU (s) | target |"
echo "|---|---:|---:|---|"
missed=0
for command in "${commands[@]}"; do
  walls=() cpus=()
  for _ in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    /usr/bin/time -o "$dir/time" -f "%e %U %S" "$SAFESHARD" $command >/dev/null 2>&1
    read -r wall cpu < <(awk '{ printf "%s %.2f\n", $1, $2 + $3 }' "$dir/time")
    walls+=("$wall") cpus+=("$cpu")
  done
  wall="$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(((rounds + 1) / 2))p")"
  cpu="$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "$(((rounds + 1) / 2))p")"
  label="${command//$dir\//}"
  if awk -v t="$wall" 'BEGIN { exit !(t >= 2) }'; then missed=1; fi
  echo "| \`$label\` | $wall | $cpu | < 2 s |"
done
exit "$missed"
