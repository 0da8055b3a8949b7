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

# read_from_disk DIR: writes back DIR's files, drops them from the page cache (`dd iflag=nocache count=0`: no root
# needed, clean pages only) and reads them back with `cat`, so that the page cache holds them as a read of files from
# the disk leaves them, however they were written. That matters to what a mapping of them costs: a read fills the
# cache with large folios (Linux 6.16+ on ext4, earlier on xfs), which map at a fraction of the cost of the small ones
# that writes of the synthetic model or a program's own mapped reads can leave (Benchmarks/README.md, "What the page
# cache holds"). The benchmarks then read from the cache in that state.
read_from_disk() {
  local file
  for file in "$1"/*; do
    [[ -f "$file" ]] || continue
    sync "$file"
    dd if="$file" iflag=nocache count=0 status=none
    cat "$file" >/dev/null
  done
}
