#!/usr/bin/env bash
# Creates (once) .venv-interop with the pinned light Python stack of Tests/Interop and prints its
# python's path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-interop
if ! "$venv/bin/python" -c "import safetensors, numpy, ml_dtypes" >/dev/null 2>&1 ||
  ! cmp -s Tests/Interop/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r Tests/Interop/requirements.txt >&2
  cp Tests/Interop/requirements.txt "$venv/requirements.txt"
fi
echo "$PWD/$venv/bin/python"
