# Set-up shared by the conversion benchmarks (sourced by convert-bench.sh and rss-bench.sh, which
# have set `root` to the repository and `cd`ed there).
#
# Sets `python` ($PYTHON, or the first of the usual venvs with numpy + ml_dtypes: the synthetic
# model generator needs them) and `safeshard` ($SAFESHARD, or a release build in
# .build-$bench_name with the kernels compiled for this machine's CPU: SAFESHARD_TARGET_CPU, default
# `native`; set it empty for the portable build); defines size_bytes, now and elapsed.

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  for candidate in "$root/.venv-interop/bin/python" /tmp/venv-interop/bin/python /work/venv-bench/bin/python python3; do
    if "$candidate" -c 'import numpy, ml_dtypes' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
fi
if [[ -z "$python" ]]; then
  echo "$bench_name: no Python with numpy and ml_dtypes; set PYTHON (or run scripts/test.sh to make .venv-interop)" >&2
  exit 2
fi

safeshard="${SAFESHARD:-}"
if [[ -z "$safeshard" ]]; then
  export SAFESHARD_TARGET_CPU="${SAFESHARD_TARGET_CPU-native}"
  build=(swift build -c release --product safeshard --scratch-path ".build-$bench_name")
  "${build[@]}" >&2
  safeshard="$("${build[@]}" --show-bin-path)/safeshard"
fi

# size_bytes SIZE: the bytes of a safeshard size (256MiB, 1GiB, 5GB, or a plain number).
size_bytes() {
  "$python" - "$1" <<'PY'
import re, sys
m = re.fullmatch(r"([0-9.]+)([KMGT]i?B)?", sys.argv[1])
n, u = float(m.group(1)), m.group(2)
print(int(n) if not u else int(n * (1024 if "i" in u else 1000) ** ("KMGT".index(u[0]) + 1)))
PY
}

now() { date +%s.%N; }
# elapsed START: seconds since START (from now), with three decimals.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
