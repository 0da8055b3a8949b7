#!/usr/bin/env bash
# How `safeshard convert` scales with cores when the CPU is the limit: the input and the output on tmpfs, `--jobs 1`
# against `--jobs N` (N = the cores, or JOBS), alternating, and the speed-up of the median wall time. Prints a
# Markdown table.
#
#   bash Benchmarks/scaling-bench.sh                      # int8-weight-only on a 2 GiB model
#   bash Benchmarks/scaling-bench.sh float8-dynamic       # other recipes
#
# It writes a synthetic Llama-shaped bf16 model of SIZE with Benchmarks/make_synthetic_llama.py into a folder on
# tmpfs (or copies MODEL_DIR there), then for each recipe runs ROUNDS rounds of
#   /usr/bin/time -v safeshard convert MODEL OUT --recipe R --memory $MEMORY --jobs J --progress none
# for J = 1 and J = N, the order alternating from round to round, removing OUT after each run. It reports the median
# wall time, user + sys CPU per input GB (10⁹ bytes), throughput and cores kept busy (CPU seconds per wall second) of
# each, and the speed-up; with N = 2 the issue's target is a speed-up of at least TARGET (1.8). `--jobs 1` already
# overlaps reading and quantizing with hashing and writing (the writers have threads of their own), so the speed-up
# is bounded by N / (cores busy at --jobs 1). Exit 1 when a speed-up misses the target or a peak RSS passes
# MEMORY + 64 MiB.
#
# Environment: SAFESHARD (a built binary; default: a release build in .build-scaling-bench, see common.sh),
# SIZE (2GiB), MODEL_DIR, MEMORY (256MiB), ROUNDS (3), JOBS (nproc), TMPFS (/dev/shm: it needs room for the model
# and one output), TARGET (1.8), PYTHON (numpy + ml_dtypes, for the generator).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

recipes=("$@")
[[ ${#recipes[@]} -gt 0 ]] || recipes=(int8-weight-only)
size="${SIZE:-2GiB}"
memory="${MEMORY:-256MiB}"
rounds="${ROUNDS:-3}"
jobs="${JOBS:-$(nproc)}"
tmpfs="${TMPFS:-/dev/shm}"
target="${TARGET:-1.8}"

bench_name=scaling-bench
source "$root/Benchmarks/common.sh"
rss_limit_kib=$(($(size_bytes "$memory") / 1024 + 64 * 1024))

work="$(mktemp -d "$tmpfs/scaling-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
model="$work/model"
if [[ -n "${MODEL_DIR:-}" ]]; then cp -r "$MODEL_DIR" "$model"; else "$python" Benchmarks/make_synthetic_llama.py "$model" "$size" >&2; fi
input_bytes=$(cat "$model"/*.safetensors | wc -c)

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# run RECIPE JOBS: one conversion; appends "wall cpu_per_gb rss_kib" to $work/RECIPE-JOBS.
run() {
  local recipe=$1 count=$2 start
  rm -rf "$work/out"
  start=$(now)
  /usr/bin/time -v -o "$work/time.txt" "$safeshard" convert "$model" "$work/out" --recipe "$recipe" \
    --memory "$memory" --jobs "$count" --progress none >"$work/stdout.txt" 2>&1 || {
    cat "$work/stdout.txt" >&2
    echo "scaling-bench: --jobs $count failed on $recipe" >&2
    exit 1
  }
  local wall
  wall=$(elapsed "$start")
  rm -rf "$work/out"
  awk -F': ' -v w="$wall" -v b="$input_bytes" '/User time/ { u = $2 } /System time/ { s = $2 }
    /Maximum resident/ { m = $2 } END { printf "%s %.3f %d\n", w, (u + s) / (b / 1e9), m }' "$work/time.txt" \
    >>"$work/$recipe-$count"
  echo "  $recipe --jobs $count: $(tail -1 "$work/$recipe-$count") (wall s, CPU s/GB, peak RSS KiB)" >&2
}

{
  echo "scaling-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg),"
  echo "  $(uname -sr); model $input_bytes bytes in $tmpfs; safeshard: $safeshard; memory $memory; rounds $rounds"
} >&2

failed=()
echo "| recipe | jobs | median wall (s) | GB/s | CPU s/GB (user + sys) | cores busy | peak RSS MiB | speed-up |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for recipe in "${recipes[@]}"; do
  for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then run "$recipe" 1 && run "$recipe" "$jobs"; else run "$recipe" "$jobs" && run "$recipe" 1; fi
  done
  base=$(median "$(awk '{ print $1 }' "$work/$recipe-1" | tr '\n' ' ')")
  for count in 1 "$jobs"; do
    wall=$(median "$(awk '{ print $1 }' "$work/$recipe-$count" | tr '\n' ' ')")
    cpu=$(median "$(awk '{ print $2 }' "$work/$recipe-$count" | tr '\n' ' ')")
    rss=$(awk '$3 > m { m = $3 } END { print m }' "$work/$recipe-$count")
    ((rss <= rss_limit_kib)) || failed+=("RSS $recipe --jobs $count")
    speedup=$(awk -v a="$base" -v b="$wall" 'BEGIN { printf "%.2f", a / b }')
    cell="$speedup×"
    if ((count > 1)) && ((jobs == 2)); then
      ok=$(awk -v s="$speedup" -v t="$target" 'BEGIN { print (s >= t) ? "met" : "MISSED" }')
      cell="**$speedup×** (≥ $target: $ok)"
      [[ $ok == met ]] || failed+=("speed-up $recipe")
    fi
    rate=$(awk -v b="$input_bytes" -v w="$wall" 'BEGIN { printf "%.2f", b / 1e9 / w }')
    busy=$(awk -v c="$cpu" -v r="$rate" 'BEGIN { printf "%.2f", c * r }')
    echo "| $recipe | $count | $wall | $rate | $cpu | $busy | $((rss / 1024)) | $cell |"
  done
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "scaling-bench: missed: ${failed[*]}" >&2
  exit 1
fi
