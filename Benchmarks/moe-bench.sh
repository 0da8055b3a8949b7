#!/usr/bin/env bash
# Converts a synthetic Qwen3-MoE checkpoint (routed experts stored per expert, as on the Hub) with an
# expert-quantizing recipe, against `cp -r` of the same input in the same run, and prints a Markdown table.
#
#   bash Benchmarks/moe-bench.sh            # 3 GB of weights, 64 experts per layer
#   bash Benchmarks/moe-bench.sh 6GB 128    # another size and expert count
#
# It writes the model with Benchmarks/make_synthetic_llama.py --experts E (Qwen3-30B-A3B's attention,
# hidden 2048, expert intermediate 768: one layer's fused experts are 2 × 64 × 1536 × 2048 bytes,
# larger than the budget), then runs ROUNDS rounds, alternating which command goes first:
#   cp -r INPUT DEST && sync
#   safeshard convert INPUT OUT --recipe $RECIPE --memory $MEMORY --progress none && sync
# each timed (wall, user+sys) and the convert under /usr/bin/time -v for its peak RSS. Before each
# command it runs `sync` and reads the input once, so both read from the page cache. One output
# is checked with `safeshard verify`.
#
# Target (exit 1 when missed): peak RSS ≤ MEMORY + 64 MiB in every round. The wall ratio is reported.
#
# Environment: RECIPE (float8-dynamic-experts), MEMORY (256MiB), ROUNDS (3), BENCH_DIR (default
# /work/bench-tmp; about 3 × SIZE free), MODEL_DIR (keep the model there and reuse it), SAFESHARD (a
# built binary; default: a release build in .build-moe-bench), PYTHON (numpy + ml_dtypes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

size="${1:-3GB}"
experts="${2:-64}"
recipe="${RECIPE:-float8-dynamic-experts}"
memory="${MEMORY:-256MiB}"
rounds="${ROUNDS:-3}"
bench_dir="${BENCH_DIR:-/work/bench-tmp}"

bench_name=moe-bench
source "$root/Benchmarks/common.sh"

mkdir -p "$bench_dir"
work="$(mktemp -d "$bench_dir/moe-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
input="${MODEL_DIR:-$work/in}"
if [[ ! -f "$input/config.json" ]]; then
  "$python" Benchmarks/make_synthetic_llama.py "$input" "$size" --experts "$experts"
fi
input_bytes=$(du -sb "$input" | cut -f1)
limit_kib=$(( ($(size_bytes "$memory") + (64 << 20)) / 1024 ))

warm() {
  sync
  cat "$input"/* >/dev/null
}
# run NAME COMMAND...: times one command (and the sync after it); appends "NAME wall cpu rss_kib".
run() {
  local name="$1"
  shift
  warm
  local start
  start=$(now)
  /usr/bin/time -v -o "$work/time" "$@"
  sync
  local wall
  wall=$(elapsed "$start")
  local cpu rss
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$work/time")
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time")
  echo "$name $wall $cpu $rss" >>"$work/results"
}

echo "moe-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); $input_bytes bytes, $experts experts; $recipe at --memory $memory" >&2
: >"$work/results"
for round in $(seq "$rounds"); do
  convert=(run convert "$safeshard" convert "$input" "$work/out" --recipe "$recipe" --memory "$memory" --progress none)
  copy=(run cp cp -r "$input" "$work/copy")
  if ((round % 2)); then "${convert[@]}"; "${copy[@]}"; else "${copy[@]}"; "${convert[@]}"; fi
  if ((round == 1)); then "$safeshard" verify "$work/out" >&2; fi
  rm -rf "$work/out" "$work/copy"
done

median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
column() { awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$work/results"; }
convert_wall=$(column convert 2 | median)
cp_wall=$(column cp 2 | median)
convert_cpu=$(column convert 3 | median)
max_rss=$(column convert 4 | sort -g | tail -1)
echo
echo "| input | recipe, budget | convert + sync wall (median) | cp -r + sync wall (median) | ratio | convert CPU (user+sys) | peak RSS | limit |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
echo "| $input_bytes bytes, $experts experts | $recipe, $memory | $convert_wall s | $cp_wall s | $(awk -v a="$convert_wall" -v b="$cp_wall" 'BEGIN { printf "%.2f", a / b }') | $convert_cpu s | $((max_rss / 1024)) MiB | $((limit_kib / 1024)) MiB |"
echo
echo "walls: convert $(column convert 2 | tr '\n' ' '); cp $(column cp 2 | tr '\n' ' ')"
((max_rss <= limit_kib))
