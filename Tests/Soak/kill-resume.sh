#!/usr/bin/env bash
# Kill-and-resume soak test (outside the unit suite: it depends on timing).
#
# Converts a small Llama-shaped model whose MLP weights are larger than a shard, SIGKILLs the
# conversion at a random moment, runs the same command ONCE more, and checks that this first
# rerun succeeds with the bytes of an uninterrupted run (`diff -r`). Repeats COUNT times.
#
# Usage: Tests/Soak/kill-resume.sh [COUNT] [SEED] [BINARY]
#   COUNT   kills (default 100)
#   SEED    seeds the kill delays (default: random; always printed, so a run can be repeated)
#   BINARY  a safeshard executable (default: build one with `swift build -c release`)
# Environment: SOAK_MODEL (default Examples/tiny-llama), SOAK_ARGS (default
#   "--recipe int8-weight-only --max-shard-size 20KB --memory 1MiB").
#
# The same seed gives the same delays; where they land in the run depends on the machine.
set -uo pipefail

count=${1:-100}
seed=${2:-$(( (RANDOM << 15) | RANDOM ))}
binary=${3:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z "$binary" ]]; then
  (cd "$root" && swift build -c release --product safeshard >&2) || exit 2
  binary=$root/.build/release/safeshard
fi
model=${SOAK_MODEL:-$root/Examples/tiny-llama}
read -r -a args <<< "${SOAK_ARGS:---recipe int8-weight-only --max-shard-size 20KB --memory 1MiB} --progress none"

work=$(mktemp -d "${TMPDIR:-/tmp}/safeshard-soak.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "kill-resume soak: seed $seed, $count kills, $binary convert $model OUT ${args[*]}"

"$binary" convert "$model" "$work/clean" "${args[@]}" > /dev/null || { echo "the uninterrupted run failed"; exit 2; }
# How long a run takes with a warm cache: the kills are spread over that time.
start=$(date +%s%N)
"$binary" convert "$model" "$work/timed" "${args[@]}" > /dev/null || exit 2
span=$(( ($(date +%s%N) - start) / 1000 ))
echo "an uninterrupted run takes ${span} µs"

RANDOM=$seed
passed=0
mid_run=0
for (( round = 0; round < count; round++ )); do
  delay=$(( ((RANDOM << 15) | RANDOM) % (span + 1) ))
  out=$work/run
  "$binary" convert "$model" "$out" "${args[@]}" > /dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%06d' $(( delay / 1000000 )) $(( delay % 1000000 )))"
  kill -KILL "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  [[ $? -eq 137 ]] && mid_run=$(( mid_run + 1 ))
  if ! "$binary" convert "$model" "$out" "${args[@]}" > /dev/null 2> "$work/error"; then
    echo "round $round (kill after ${delay} µs): the first rerun failed: $(cat "$work/error")"
  elif ! diff -r "$work/clean" "$out" > "$work/diff"; then
    echo "round $round (kill after ${delay} µs): the first rerun differs:"
    head -5 "$work/diff"
  else
    passed=$(( passed + 1 ))
  fi
  rm -rf "$out"
done
echo "seed $seed: $passed of $count first reruns byte-identical ($mid_run killed mid-run)"
# A soak whose kills mostly land after the run ended tests nothing: ask for half of them mid-run.
if (( mid_run * 2 < count )); then
  echo "only $mid_run of $count kills landed mid-run; the delays are too long for this machine" >&2
  exit 1
fi
[[ $passed -eq $count ]]
