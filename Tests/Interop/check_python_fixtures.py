"""Regenerates the reference-written fixtures and checks the committed ones still match.

    python check_python_fixtures.py COMMITTED_DIR

The reference writer orders `__metadata__` keys as a hash map does, so files are compared as
parsed headers and tensor bytes, not byte for byte. Last line `N passed, M failed`.
"""

import glob
import os
import sys
import tempfile

import make_python_fixtures
import manifest


def main(committed):
    passed = failed = 0
    with tempfile.TemporaryDirectory() as fresh:
        make_python_fixtures.main(fresh)
        names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(fresh, "*.safetensors")))
        for name in names:
            old, new = os.path.join(committed, name), os.path.join(fresh, name)
            ok = (
                os.path.exists(old)
                and manifest.read_header(old) == manifest.read_header(new)
                and manifest.describe(old) == manifest.describe(new)
                and manifest.describe(old) == manifest.load(old[: -len(".safetensors")] + ".json")
            )
            print(("ok   " if ok else "FAIL ") + name)
            passed, failed = passed + ok, failed + (not ok)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
