#!/usr/bin/env bash
# Peak RSS of `safeshard convert --recipe int8-weight-only` against its --memory budget, on synthetic Llama-shaped
# bf16 checkpoints, and (when OLD_SAFESHARD is given) the wall time of two binaries on the same input, interleaved.
# Prints Markdown tables.
#
#   bash Benchmarks/rss-bench.sh            # 4 GiB and 8 GiB models
#   bash Benchmarks/rss-bench.sh 4          # sizes in GiB (the weights are at most that)
#
# For each size it writes a model with Benchmarks/make_synthetic_llama.py (or reuses MODEL_DIR/in-SIZE), then, for
# every budget in MEMORIES, runs
#   /usr/bin/time -v safeshard convert INPUT OUT --recipe int8-weight-only --memory M --progress none
# once and reads its "Maximum resident set size" (the kernel's VmHWM of the process). Target (exit 1 when missed):
# peak RSS ≤ M + 64 MiB. The line convert prints gives the buffers' own peak ("peak buffers"), which the pipeline
# keeps within M. With OLD_SAFESHARD set, it then runs ROUNDS rounds of the old and the new binary at WALL_MEMORY,
# alternating which goes first, and reports each one's wall times and median. Before every command it runs `sync`
# and reads the input once (`cat > /dev/null`), so every run reads from the page cache.
#
# Environment: SAFESHARD (a built binary; default: a release build in .build-rss-bench, see common.sh),
# OLD_SAFESHARD (optional), MEMORIES ("64MiB 256MiB 1GiB"), WALL_MEMORY (256MiB), ROUNDS (3), BENCH_DIR (temporary
# files, default /work/bench-tmp; it needs about 1.5 × the largest size free), MODEL_DIR (keep models there and reuse
# them; default: write them under BENCH_DIR and remove them), PYTHON (numpy + ml_dtypes, for the generator).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sizes=("$@")
if [[ ${#sizes[@]} -eq 0 ]]; then
  sizes=(4 8)
fi
read -r -a memories <<<"${MEMORIES:-64MiB 256MiB 1GiB}"
wall_memory="${WALL_MEMORY:-256MiB}"
rounds="${ROUNDS:-3}"
bench_dir="${BENCH_DIR:-/work/bench-tmp}"
model_dir="${MODEL_DIR:-}"
old="${OLD_SAFESHARD:-}"

bench_name=rss-bench
source "$root/Benchmarks/common.sh"
max_rss_kib() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
warm() {
  sync
  cat "$1"/* >/dev/null
}
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

mkdir -p "$bench_dir"
work="$(mktemp -d "$bench_dir/rss-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

{
  echo "rss-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB RAM, $(uname -sr)"
  echo "  safeshard: $safeshard${old:+; old: $old}; budgets: ${memories[*]}"
} >&2

# convert BINARY INPUT MEMORY: runs one conversion; sets wall, rss_mib and peak_buffers.
convert() {
  warm "$2"
  local start
  start=$(now)
  /usr/bin/time -v -o "$work/time.txt" "$1" convert "$2" "$work/out" --recipe int8-weight-only --memory "$3" \
    --progress none >"$work/stdout.txt"
  wall=$(elapsed "$start")
  rss_mib=$(awk -v k="$(max_rss_kib "$work/time.txt")" 'BEGIN { printf "%.0f", k / 1024 }')
  peak_buffers=$(sed -n 's/.*peak buffers \([0-9]*\) bytes.*/\1/p' "$work/stdout.txt")
  rm -rf "$work/out"
}

rss_rows=()
wall_rows=()
failed=()
for size in "${sizes[@]}"; do
  if [[ -n "$model_dir" ]]; then
    input="$model_dir/in-$size"
  else
    input="$work/in-$size"
  fi
  [[ -d "$input" ]] || "$python" Benchmarks/make_synthetic_llama.py "$input" "${size}GiB" >&2
  gb=$(du -sb "$input" | awk '{ printf "%.2f", $1 / 1e9 }')
  for memory in "${memories[@]}"; do
    convert "$safeshard" "$input" "$memory"
    limit=$(($(size_bytes "$memory") / (1 << 20) + 64))
    ok=$( ((rss_mib <= limit)) && echo met || echo MISSED)
    [[ $ok == met ]] || failed+=("$size GiB at $memory")
    echo "  $size GiB, --memory $memory: peak RSS $rss_mib MiB (limit $limit), buffers $peak_buffers B, $wall s" >&2
    rss_rows+=("| $size GiB ($gb GB) | $memory | **$rss_mib** | $limit | $ok | $(awk -v b="$peak_buffers" 'BEGIN { printf "%.1f", b / 1048576 }') | $wall |")
  done
  if [[ -n "$old" ]]; then
    old_times="" new_times=""
    for ((round = 1; round <= rounds; round++)); do
      if ((round % 2)); then order=(old new); else order=(new old); fi
      for which in "${order[@]}"; do
        if [[ $which == old ]]; then binary="$old"; else binary="$safeshard"; fi
        convert "$binary" "$input" "$wall_memory"
        echo "  $size GiB round $round: $which $wall s, peak RSS $rss_mib MiB" >&2
        if [[ $which == old ]]; then old_times+=" $wall"; else new_times+=" $wall"; fi
      done
    done
    wall_rows+=("| $size GiB ($gb GB) | $wall_memory |$old_times | $(median "$old_times") |$new_times | $(median "$new_times") |")
  fi
  [[ -n "$model_dir" ]] || rm -rf "$input"
done

echo
echo "| model | --memory | peak RSS (MiB) | limit: budget + 64 MiB | | peak buffers (MiB) | wall (s) |"
echo "|---|---|---:|---:|---|---:|---:|"
printf '%s\n' "${rss_rows[@]}"
if [[ ${#wall_rows[@]} -gt 0 ]]; then
  echo
  echo "| model | --memory | old binary: wall (s) | old median | new binary: wall (s) | new median |"
  echo "|---|---|---|---:|---|---:|"
  printf '%s\n' "${wall_rows[@]}"
fi
echo
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "rss-bench: peak RSS over the limit: ${failed[*]}" >&2
  exit 1
fi
echo "rss-bench: every peak RSS within its limit" >&2
