"""Compares a checkpoint with a golden of the pickle / quantized-input fixtures, tensor for tensor.

    python Tests/Interop/compare_to_golden.py OUT GOLDEN [--ignore-format] [--names-as-set]

OUT and GOLDEN are each a .safetensors file or a directory of them (shards are merged by tensor
name). Equal means: the same tensor names, and for each the same dtype, shape and bytes; the same
`__metadata__` once every value is JSON-parsed (`format` left out with --ignore-format, since
transformers writes `format: pt` and torchao's flatten_tensor_state_dict does not); and, when both
are directories with a config.json, the same `quantization_config` (or both without one).
With --names-as-set the order of `tensor_names` is left aside (a state dict's order is free: a
pickle keeps the model's, a safetensors file its sorted names).
Python standard library only. Prints each difference; the last line is
`equal` or `N differences`, and the exit status is 0 only when equal.

Example: `--recipe reshard` of a torchao pickle against its golden:
    safeshard convert Tests/Fixtures/pickle/ao/int8wo /tmp/o --recipe reshard
    python Tests/Interop/compare_to_golden.py /tmp/o Tests/Fixtures/pickle/ao/int8wo/expected.safetensors --ignore-format
"""

import argparse
import glob
import json
import os
import struct
import sys


def files_of(path):
    return sorted(glob.glob(os.path.join(path, "*.safetensors"))) if os.path.isdir(path) else [path]


def read(path):
    """{name: (dtype, shape, bytes)} and the parsed __metadata__ of every file under `path`."""
    tensors, metadata = {}, {}
    for f in files_of(path):
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
            base = 8 + n
            for name, e in header.items():
                if name == "__metadata__":
                    for k, v in (e or {}).items():
                        metadata[k] = v if k == "format" else json.loads(v)
                    continue
                if name in tensors:
                    raise SystemExit(f"{f}: tensor {name} appears in two files")
                start, end = e["data_offsets"]
                fh.seek(base + start)
                tensors[name] = (e["dtype"], e["shape"], fh.read(end - start))
    return tensors, metadata


def quantization_config(path):
    p = os.path.join(path, "config.json")
    if not (os.path.isdir(path) and os.path.exists(p)):
        return None, False
    with open(p) as f:
        return json.load(f).get("quantization_config"), True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("golden")
    ap.add_argument("--ignore-format", action="store_true")
    ap.add_argument("--names-as-set", action="store_true")
    a = ap.parse_args()
    (ot, om), (gt, gm) = read(a.out), read(a.golden)
    if a.names_as_set:
        for m in (om, gm):
            if isinstance(m.get("tensor_names"), list):
                m["tensor_names"] = sorted(m["tensor_names"])
    diffs = []
    for name in sorted(set(ot) | set(gt)):
        if name not in ot:
            diffs.append(f"missing tensor {name}")
        elif name not in gt:
            diffs.append(f"extra tensor {name}")
        elif ot[name][:2] != gt[name][:2]:
            diffs.append(f"{name}: {ot[name][0]} {ot[name][1]} != golden {gt[name][0]} {gt[name][1]}")
        elif ot[name][2] != gt[name][2]:
            diffs.append(f"{name}: bytes differ")
    if a.ignore_format:
        om.pop("format", None)
        gm.pop("format", None)
    for k in sorted(set(om) | set(gm)):
        if om.get(k) != gm.get(k):
            diffs.append(f"metadata {k}: {json.dumps(om.get(k))[:120]} != golden {json.dumps(gm.get(k))[:120]}")
    (oq, oc), (gq, gc) = quantization_config(a.out), quantization_config(a.golden)
    if oc and gc and oq != gq:
        diffs.append(f"quantization_config: {json.dumps(oq)[:200]} != golden {json.dumps(gq)[:200]}")
    for d in diffs:
        print(d)
    print("equal" if not diffs else f"{len(diffs)} differences")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
