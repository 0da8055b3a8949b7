#!/usr/bin/env bash
# Times `safeshard convert --recipe int8-weight-only` on synthetic Llama-shaped bf16 checkpoints
# against `cp -r` of the same input, in the same run, and prints a Markdown report.
#
#   bash Benchmarks/convert-bench.sh            # 4 GiB and 8 GiB models
#   bash Benchmarks/convert-bench.sh 4          # sizes in GiB (the weights are at most that)
#
# For each size it writes a model with Benchmarks/make_synthetic_llama.py (Llama-2-7B shapes, as
# many layers as fit), then runs ROUNDS rounds, alternating which command goes first:
#   cp -r INPUT DEST                                   wall time (and `sync` after it, timed apart)
#   safeshard convert INPUT OUT --recipe int8-weight-only --memory $MEMORY --progress none
#                                                      wall time, peak RSS and CPU time (user +
#                                                      sys, /usr/bin/time -v) per input GB
#   dd if=/dev/zero bs=8M conv=fsync, as many bytes as the output, right after each convert: the
#                                                      time the disk takes to make that much durable
#                                                      (convert fsyncs its shards; `cp -r` does not)
# Before each measured command it runs `sync` (so the previous command's writeback is done) and
# reads the whole input once (`cat > /dev/null`), so both commands read from the page cache: the
# benchmark measures warm reads on purpose. Before the first round the new model is dropped from
# the page cache and read back (`read_from_disk`, Benchmarks/common.sh), so that the cache holds
# it as a read from the disk does, not as the generator's writes left it. Outputs are
# removed between rounds. `safeshard verify` checks one output. If $REF_PYTHON exists (torch,
# torchao, transformers), the first size is also converted with transformers + torchao
# (from_pretrained with TorchAoConfig(Int8WeightOnlyConfig(version=2)), then save_pretrained),
# once, for reference.
#
# Targets (exit 1 when one is missed): peak RSS ≤ MEMORY + 100 MiB at every size, and the best
# convert wall time ≤ 1.2 × the best `cp -r` wall time at every size.
#
# Environment: BENCH_DIR (temporary files, default /work/bench-tmp; put it on the disk to measure,
# it needs about 2.5 × the largest size free), ROUNDS (3), MEMORY (256MiB), JOBS (empty: the
# default, one per core), CONVERT_FLAGS (more flags for convert), PYTHON (numpy + ml_dtypes, for
# the generator; default .venv-interop or /tmp/venv-interop), REF_PYTHON (default
# /work/venv-ref/bin/python), SAFESHARD (a built binary; default: a release build in
# .build-convert-bench, see common.sh). Everything under BENCH_DIR that it creates is removed at
# the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sizes=("$@")
if [[ ${#sizes[@]} -eq 0 ]]; then
  sizes=(4 8)
fi
rounds="${ROUNDS:-3}"
memory="${MEMORY:-256MiB}"
bench_dir="${BENCH_DIR:-/work/bench-tmp}"
ref_python="${REF_PYTHON:-/work/venv-ref/bin/python}"
read -r -a extra_flags <<<"${CONVERT_FLAGS:-}"
if [[ -n "${JOBS:-}" ]]; then
  extra_flags+=(--jobs "$JOBS")
fi

bench_name=convert-bench
source "$root/Benchmarks/common.sh"
rss_limit_kib=$(($(size_bytes "$memory") / 1024 + 100 * 1024))

mkdir -p "$bench_dir"
work="$(mktemp -d "$bench_dir/convert-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# max_rss FILE: "Maximum resident set size (kbytes)" from a /usr/bin/time -v report.
max_rss() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
# cpu_per_gb FILE BYTES: user + system seconds of a /usr/bin/time -v report per 10⁹ input bytes.
cpu_per_gb() {
  awk -F': ' -v b="$2" '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.3f", (u + s) / (b / 1e9) }' "$1"
}
# warm INPUT: syncs pending writeback, then reads every input file once so that it is in the page cache.
warm() {
  sync
  cat "$1"/* >/dev/null
}
# stats LIST: "best median" of whitespace-separated numbers.
stats() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f %.2f", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

{
  echo "convert-bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB RAM,"
  echo "  $(uname -sr), $(swift --version 2>/dev/null | head -1), BENCH_DIR on $(df --output=source,fstype "$bench_dir" | tail -1)"
  echo "  safeshard: $safeshard; memory $memory; rounds $rounds; extra flags: ${extra_flags[*]:-none}"
} >&2

rows=()
ref_row=""
failed=()
for size in "${sizes[@]}"; do
  input="$work/in-$size"
  "$python" Benchmarks/make_synthetic_llama.py "$input" "${size}GiB" >&2
  read_from_disk "$input"
  input_bytes=$(du -sb "$input" | cut -f1)
  layers=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["num_hidden_layers"])' "$input/config.json")
  cp_times="" sync_times="" cv_times="" floor_times="" rss_all="" cpu_all="" peak_rss=0 out_bytes=0
  for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then order=(cp convert); else order=(convert cp); fi
    for what in "${order[@]}"; do
      warm "$input"
      if [[ "$what" == cp ]]; then
        start=$(now)
        cp -r "$input" "$work/cp"
        t=$(elapsed "$start")
        start=$(now)
        sync
        s=$(elapsed "$start")
        cp_times+=" $t" sync_times+=" $(awk -v a="$t" -v b="$s" 'BEGIN { printf "%.3f", a + b }')"
        echo "  $size GiB round $round: cp -r $t s (+ sync $s s)" >&2
        rm -rf "$work/cp"
      else
        start=$(now)
        /usr/bin/time -v -o "$work/time.txt" "$safeshard" convert "$input" "$work/out" \
          --recipe int8-weight-only --memory "$memory" --progress none ${extra_flags[@]+"${extra_flags[@]}"} >&2
        t=$(elapsed "$start")
        rss=$(max_rss "$work/time.txt")
        cpu=$(cpu_per_gb "$work/time.txt" "$input_bytes")
        cv_times+=" $t" rss_all+=" $(mib "$rss")" cpu_all+=" $cpu"
        ((rss > peak_rss)) && peak_rss=$rss
        echo "  $size GiB round $round: convert $t s, peak RSS $(mib "$rss") MiB," \
          "$(awk -F': ' '/Percent of CPU/ { print $2 " CPU" }' "$work/time.txt"), $cpu CPU-s per input GB" >&2
        out_bytes=$(du -sb "$work/out" | cut -f1)
        if ((round == rounds)); then
          if "$safeshard" verify "$work/out" >&2; then verified=yes; else verified=NO; failed+=("verify $size GiB"); fi
        fi
        rm -rf "$work/out"
        sync
        start=$(now)
        dd if=/dev/zero of="$work/floor" bs=8M count=$(((out_bytes + (8 << 20) - 1) / (8 << 20))) conv=fsync status=none
        f=$(elapsed "$start")
        floor_times+=" $f"
        echo "  $size GiB round $round: dd of the output's size + fsync $f s" >&2
        rm -f "$work/floor"
      fi
    done
  done
  read -r cp_best cp_median <<<"$(stats "$cp_times")"
  read -r sync_best _ <<<"$(stats "$sync_times")"
  read -r floor_best floor_median <<<"$(stats "$floor_times")"
  read -r cv_best cv_median <<<"$(stats "$cv_times")"
  read -r _ cpu_median <<<"$(stats "$cpu_all")"
  gbs=$(awk -v b="$input_bytes" -v t="$cv_best" 'BEGIN { printf "%.2f", b / 1e9 / t }')
  cp_gbs=$(awk -v b="$input_bytes" -v t="$cp_best" 'BEGIN { printf "%.2f", b / 1e9 / t }')
  ratio=$(awk -v a="$cv_best" -v b="$cp_best" 'BEGIN { printf "%.2f", a / b }')
  ratio_median=$(awk -v a="$cv_median" -v b="$cp_median" 'BEGIN { printf "%.2f", a / b }')
  ratio_sync=$(awk -v a="$cv_best" -v b="$sync_best" 'BEGIN { printf "%.2f", a / b }')
  wall_ok=$(awk -v r="$ratio" 'BEGIN { print (r + 0 > 0 && r <= 1.2) ? "met" : "MISSED" }')
  rss_ok=$( ((peak_rss <= rss_limit_kib)) && echo met || echo MISSED)
  [[ $wall_ok == met ]] || failed+=("wall time $size GiB")
  [[ $rss_ok == met ]] || failed+=("peak RSS $size GiB")
  rows+=("| $size GiB: $layers layers, $(awk -v b="$input_bytes" 'BEGIN { printf "%.2f", b / 1e9 }') GB → $(awk -v b="$out_bytes" 'BEGIN { printf "%.2f", b / 1e9 }') GB | $cp_best / $cp_median ($cp_gbs GB/s) | $sync_best | $cv_best / $cv_median | $floor_best / $floor_median | $gbs | **$ratio** ($wall_ok) / $ratio_median / $ratio_sync | **$(mib "$peak_rss")** ($rss_ok; rounds:$rss_all) | $cpu_median (rounds:$cpu_all) | $verified |")

  if [[ -z "$ref_row" && -x "$ref_python" ]]; then
    if "$ref_python" -c 'import torch, torchao, transformers' 2>/dev/null; then
      warm "$input"
      start=$(now)
      if /usr/bin/time -v -o "$work/time-ref.txt" "$ref_python" - "$input" "$work/ref" <<'EOF' >&2; then
import sys, time
import torch
from torchao.quantization import Int8WeightOnlyConfig
from transformers import AutoModelForCausalLM, TorchAoConfig

start = time.monotonic()
model = AutoModelForCausalLM.from_pretrained(
    sys.argv[1], dtype=torch.bfloat16,
    quantization_config=TorchAoConfig(Int8WeightOnlyConfig(version=2)))
loaded = time.monotonic()
model.save_pretrained(sys.argv[2])
print(f"  reference: from_pretrained + quantize {loaded - start:.1f} s, save_pretrained {time.monotonic() - loaded:.1f} s")
EOF
        t=$(elapsed "$start")
        ref_bytes=$(du -sb "$work/ref" | cut -f1)
        if "$safeshard" verify "$work/ref" >&2; then ref_verified=yes; else ref_verified=no; fi
        ref_row="| $size GiB, transformers + torchao (reference, 1 run) | | | $t | | $(awk -v b="$input_bytes" -v t="$t" 'BEGIN { printf "%.2f", b / 1e9 / t }') | $(awk -v a="$t" -v b="$cp_best" 'BEGIN { printf "%.2f", a / b }') | $(mib "$(max_rss "$work/time-ref.txt")") | $(cpu_per_gb "$work/time-ref.txt" "$input_bytes") | $ref_verified ($(awk -v b="$ref_bytes" 'BEGIN { printf "%.2f", b / 1e9 }') GB) |"
      else
        ref_row="| $size GiB, transformers + torchao (reference) | failed: see the log above | | | | | | | | |"
      fi
      rm -rf "$work/ref"
    else
      echo "convert-bench: $ref_python lacks torch, torchao or transformers; no reference run" >&2
    fi
  fi
  rm -rf "$input"
done

echo
echo "| model (input → output) | \`cp -r\` best / median (s) | \`cp -r\` + \`sync\` best (s) | convert best / median (s) | \`dd\` of the output's size + \`fsync\` best / median (s) | convert GB/s of input | convert / \`cp -r\`: best (≤ 1.2) / median / best over (\`cp -r\` + \`sync\`) | peak RSS MiB (≤ $(mib "$rss_limit_kib")) | CPU-s (user + sys) per input GB, median | verify |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
[[ -z "$ref_row" ]] || echo "$ref_row"
echo
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "convert-bench: missed: ${failed[*]}" >&2
  exit 1
fi
echo "convert-bench: every target met" >&2
