"""Reads every safetensors file the Swift tests wrote and checks it against its manifest.

    python check_swift_output.py DIR

For each DIR/NAME.safetensors with DIR/NAME.json: the reference reader (`deserialize`) must
accept the file and find exactly the manifest's tensors (names, dtypes, shapes, bytes) and
metadata; numpy (with ml_dtypes for bfloat16 and float8) must view each tensor's bytes in its
shape. The last line is `N passed, M failed`.
"""

import glob
import os
import sys
import traceback

import ml_dtypes
import numpy as np
from safetensors import deserialize, safe_open

import manifest

NUMPY = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
    "F16": np.float16, "BF16": ml_dtypes.bfloat16, "I32": np.int32, "U32": np.uint32,
    "F32": np.float32, "C64": np.complex64, "F64": np.float64, "I64": np.int64, "U64": np.uint64,
    "F8_E5M2": ml_dtypes.float8_e5m2, "F8_E4M3": ml_dtypes.float8_e4m3fn,
    "F8_E8M0": ml_dtypes.float8_e8m0fnu, "F8_E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
    "F8_E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
}


def check(path):
    expected = manifest.load(path[: -len(".safetensors")] + ".json")
    found = manifest.describe(path)
    assert found["metadata"] == expected["metadata"], f"metadata {found['metadata']} != {expected['metadata']}"
    # Compared by name: zero-byte tensors share an offset, so "data order" does not fix their order.
    names = sorted(t["name"] for t in found["tensors"])
    assert names == sorted(t["name"] for t in expected["tensors"]), f"tensors {names}"
    wanted = {t["name"]: t for t in expected["tensors"]}
    for got in found["tensors"]:
        want = wanted[got["name"]]
        for key in ("dtype", "shape", "data_hex"):
            assert got[key] == want[key], f"{want['name']}: {key} {got[key]!r} != {want[key]!r}"
        if got["dtype"] in NUMPY:
            array = np.frombuffer(bytes.fromhex(got["data_hex"]), dtype=NUMPY[got["dtype"]])
            array.reshape(got["shape"])
    with safe_open(path, framework="np") as f:
        assert (f.metadata() or None) == (expected["metadata"] or None), "safe_open metadata differs"
        assert sorted(f.keys()) == sorted(names), "safe_open keys differ"


# Rules on which safeshard is deliberately stricter than the reference reader, which keeps the
# last of duplicate keys.
STRICTER = {"duplicate-key"}


def check_malformed(path):
    """The reference reader must refuse a file the Swift reader refuses (NAME.RULE.bin)."""
    rule = os.path.basename(path).split(".")[-2]
    with open(path, "rb") as f:
        blob = f.read()
    try:
        deserialize(blob)
    except Exception:
        assert rule not in STRICTER, f"the reference now refuses {rule}: drop it from STRICTER"
        return
    assert rule in STRICTER, f"the reference reader accepts a file safeshard refuses for {rule}"


def main(directory):
    passed = failed = 0
    for path in sorted(glob.glob(os.path.join(directory, "malformed", "*.bin"))):
        try:
            check_malformed(path)
            passed += 1
        except Exception:
            failed += 1
            print(f"FAIL malformed/{os.path.basename(path)}")
            traceback.print_exc()
    paths = sorted(glob.glob(os.path.join(directory, "*.safetensors")))
    for path in paths:
        try:
            check(path)
            passed += 1
            print(f"ok   {os.path.basename(path)}")
        except Exception:
            failed += 1
            print(f"FAIL {os.path.basename(path)}")
            traceback.print_exc()
    if not paths:
        print(f"no .safetensors files in {directory}")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
