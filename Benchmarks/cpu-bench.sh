#!/usr/bin/env bash
# CPU seconds (user + sys) per input GB of `safeshard convert` for every built-in recipe, with the output on tmpfs so
# that the disk is not the limit, and (with OLD_SAFESHARD) the same for a previous build, interleaved, with a check that
# both write the same bytes. Prints a Markdown table.
#
#   bash Benchmarks/cpu-bench.sh                                   # every recipe in Pipelines/
#   bash Benchmarks/cpu-bench.sh int8-weight-only float8-dynamic   # some
#
# It writes a synthetic Llama-shaped bf16 model of SIZE with Benchmarks/make_synthetic_llama.py (or reuses MODEL_DIR),
# then for each recipe runs ROUNDS rounds of
#   /usr/bin/time -v safeshard convert MODEL OUT_DIR/out --recipe R --memory $MEMORY --progress none
# (alternating which binary goes first when OLD_SAFESHARD is set), reading the input once before each run so that it
# comes from the page cache. Before the first round the model is dropped from the page cache and read back
# (`read_from_disk`, Benchmarks/common.sh), so that the cache holds it as a read from the disk does. It reports the
# median user and system seconds per 10⁹ input bytes and the largest peak RSS; with OLD_SAFESHARD, the old binary's
# medians and whether the SHA-256 of every output file (shards, SHA256SUMS, config.json, index) is the same for both.
# CPU seconds move far less than wall time on a shared machine, but system time still varies with what the other
# tenants do to memory: compare medians of several rounds.
#
# With PROFILE=1 it then runs each recipe once more under `perf record -F 999` (no call graphs; Debian: linux-perf) and
# prints a second table of where the CPU time went, summed by symbol, per input GB with perf's own cost: quantize
# (`Quantization` and the standard library's SIMD reductions it calls), hash (`sha256`), copy (`memmove`), non-finite
# scan (`ScaleFindings`), mappings and faults (kernel symbols of page tables, page faults and folios), other kernel,
# other user.
#
# Exit 1 when an output differs from the old binary's, when peak RSS passes MEMORY + 64 MiB, or when the median
# user + sys per GB passes TARGET_FAST for int8-weight-only and float8-dynamic, or TARGET for the others (issue 13).
#
# Environment: SAFESHARD (a built binary; default: a release build in .build-cpu-bench, see common.sh),
# OLD_SAFESHARD, SIZE (4GiB), MEMORY (256MiB), ROUNDS (3), MODEL_DIR (keep the model there and reuse it; default: a
# temporary folder under BENCH_DIR, removed at the end), BENCH_DIR (/work/bench-tmp), OUT_DIR (/dev/shm: it needs
# room for one output, the input's size for reshard), TARGET_FAST (0.6), TARGET (1.0), PROFILE, PYTHON.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

recipes=("$@")
if [[ ${#recipes[@]} -eq 0 ]]; then
  for file in Pipelines/*.yaml; do recipes+=("$(basename "$file" .yaml)"); done
fi
size="${SIZE:-4GiB}"
memory="${MEMORY:-256MiB}"
rounds="${ROUNDS:-3}"
bench_dir="${BENCH_DIR:-/work/bench-tmp}"
out_dir="${OUT_DIR:-/dev/shm}"
old="${OLD_SAFESHARD:-}"
target_fast="${TARGET_FAST:-0.6}"
target="${TARGET:-1.0}"

bench_name=cpu-bench
source "$root/Benchmarks/common.sh"
rss_limit_kib=$(($(size_bytes "$memory") / 1024 + 64 * 1024))

mkdir -p "$bench_dir"
work="$(mktemp -d "$bench_dir/cpu-bench.XXXXXX")"
out="$(mktemp -d "$out_dir/cpu-bench.XXXXXX")"
trap 'rm -rf "$work" "$out"' EXIT
model="${MODEL_DIR:-$work/model}"
[[ -d "$model" ]] || "$python" Benchmarks/make_synthetic_llama.py "$model" "$size" >&2
read_from_disk "$model"
input_bytes=$(cat "$model"/*.safetensors | wc -c)

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# convert BINARY RECIPE WRAPPER...: one conversion into $out/out, the input read once before so that it comes from the
# page cache, run under WRAPPER (what measures it); exits when it fails.
convert() {
  local binary=$1 recipe=$2
  shift 2
  rm -rf "$out/out"
  cat "$model"/*.safetensors >/dev/null
  "$@" "$binary" convert "$model" "$out/out" --recipe "$recipe" --memory "$memory" --progress none \
    >"$work/stdout.txt" 2>&1 || {
    cat "$work/stdout.txt" >&2
    echo "cpu-bench: $binary failed on $recipe" >&2
    exit 1
  }
}

# run NAME BINARY RECIPE: one conversion; appends "user sys rss_kib" per GB to $work/NAME-RECIPE and leaves the
# outputs' hashes in $work/NAME-RECIPE.sums.
run() {
  local name=$1 binary=$2 recipe=$3
  convert "$binary" "$recipe" /usr/bin/time -v -o "$work/time.txt"
  awk -F': ' -v b="$input_bytes" '/User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { m = $2 }
    END { printf "%.3f %.3f %d\n", u / (b / 1e9), s / (b / 1e9), m }' "$work/time.txt" >>"$work/$name-$recipe"
  (cd "$out/out" && find . -type f | LC_ALL=C sort | xargs openssl dgst -sha256 -r) >"$work/$name-$recipe.sums"
  echo "  $recipe $name: $(tail -1 "$work/$name-$recipe") (user s/GB, sys s/GB, peak RSS KiB)" >&2
}

# profile RECIPE: one conversion of the new binary under perf; prints its row of the profile table.
profile() {
  local recipe=$1
  convert "$safeshard" "$recipe" perf record -q -F 999 -o "$work/perf.data"
  perf report -i "$work/perf.data" --no-children --sort dso,symbol -n 2>/dev/null | grep -v '^#' | grep -v '^$' |
    awk -v recipe="$recipe" -v bytes="$input_bytes" '
      { n = $2; total += n
        if ($0 ~ /sha256/) hash += n
        else if ($0 ~ /memmove|memcpy/) copy += n
        else if ($0 ~ /ScaleFindings/) scan += n
        else if ($0 ~ /\$s12Quantization|\$ss4SIMD|\$ss12pointwise/) quantize += n
        else if ($0 ~ /\[k\]/ && $0 ~ /unmap|gup|get_user_pages|follow_page|folio|vm_normal|pte|xas_|filemap|rmap|lruvec|memcg|xa_load|tlb|clear_page|page_fault|handle_mm/) mapping += n
        else if ($0 ~ /\[k\]/) kernel += n
        else user += n }
      END { g = bytes / 1e9 * 999
        printf "| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | **%.3f** |\n", recipe, quantize / g, hash / g,
          copy / g, scan / g, mapping / g, kernel / g, user / g, total / g }'
}

{
  echo "cpu-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr); model $model ($input_bytes bytes, read back from the disk before the first round)"
  echo "  safeshard: $safeshard${old:+; old: $old}; memory $memory; rounds $rounds; output in $out"
} >&2

rows=()
failed=()
for recipe in "${recipes[@]}"; do
  for ((round = 1; round <= rounds; round++)); do
    if [[ -n "$old" ]] && ((round % 2 == 0)); then order=(old new); elif [[ -n "$old" ]]; then order=(new old); else order=(new); fi
    for name in "${order[@]}"; do
      if [[ $name == new ]]; then run new "$safeshard" "$recipe"; else run old "$old" "$recipe"; fi
    done
  done
  user=$(median "$(awk '{ print $1 }' "$work/new-$recipe" | tr '\n' ' ')")
  sys=$(median "$(awk '{ print $2 }' "$work/new-$recipe" | tr '\n' ' ')")
  total=$(median "$(awk '{ print $1 + $2 }' "$work/new-$recipe" | tr '\n' ' ')")
  rss=$(awk '$3 > m { m = $3 } END { print m }' "$work/new-$recipe")
  limit=$target
  [[ $recipe == int8-weight-only || $recipe == float8-dynamic ]] && limit=$target_fast
  cpu_ok=$(awk -v t="$total" -v l="$limit" 'BEGIN { print (t <= l) ? "met" : "MISSED" }')
  rss_ok=$( ((rss <= rss_limit_kib)) && echo met || echo MISSED)
  [[ $cpu_ok == met ]] || failed+=("CPU $recipe")
  [[ $rss_ok == met ]] || failed+=("RSS $recipe")
  old_cells=""
  if [[ -n "$old" ]]; then
    old_total=$(median "$(awk '{ print $1 + $2 }' "$work/old-$recipe" | tr '\n' ' ')")
    if cmp -s "$work/new-$recipe.sums" "$work/old-$recipe.sums"; then same=yes; else same=NO; failed+=("bytes $recipe"); fi
    old_cells=" $old_total | $same |"
  fi
  rows+=("| $recipe |$old_cells $user | $sys | **$total** (≤ $limit: $cpu_ok) | $((rss / 1024)) ($rss_ok) |")
done

echo
if [[ -n "$old" ]]; then
  echo "| recipe | old: user + sys s/GB | same bytes | user s/GB | sys s/GB | user + sys s/GB | peak RSS MiB (≤ $((rss_limit_kib / 1024))) |"
  echo "|---|---:|---|---:|---:|---:|---:|"
else
  echo "| recipe | user s/GB | sys s/GB | user + sys s/GB | peak RSS MiB (≤ $((rss_limit_kib / 1024))) |"
  echo "|---|---:|---:|---:|---:|"
fi
printf '%s\n' "${rows[@]}"
echo
if [[ -n "${PROFILE:-}" ]]; then
  echo "| recipe | quantize | hash | copy | non-finite scan | mappings, faults | other kernel | other user | total |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for recipe in "${recipes[@]}"; do profile "$recipe"; done
  echo
fi
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "cpu-bench: missed: ${failed[*]}" >&2
  exit 1
fi
echo "cpu-bench: every target met" >&2
