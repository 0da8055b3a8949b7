"""The manifest that travels beside each interop file: what a reader must find in it.

`NAME.json` beside `NAME.safetensors`:
    {"metadata": {str: str} | null,
     "tensors": [{"name": str, "dtype": "F32", "shape": [int], "data_hex": str}, ...]}
Tensors are listed in data order. Both sides (Swift tests and these scripts) write and read it.
"""

import json
import struct

from safetensors import deserialize


def read_header(path):
    """The parsed JSON header of a safetensors file (no validation beyond JSON)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def describe(path):
    """What the reference reader finds in `path`, in manifest form (data order)."""
    with open(path, "rb") as f:
        blob = f.read()
    tensors = dict(deserialize(blob))  # the reference Rust reader: validates everything
    header = read_header(path)
    order = sorted(tensors, key=lambda name: tuple(header[name]["data_offsets"]))
    return {
        "metadata": header.get("__metadata__"),
        "tensors": [
            {
                "name": name,
                "dtype": tensors[name]["dtype"],
                "shape": list(tensors[name]["shape"]),
                "data_hex": bytes(tensors[name]["data"]).hex(),
            }
            for name in order
        ],
    }


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save(path, manifest):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")
