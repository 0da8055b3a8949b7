"""Writes safetensors files with the reference implementation, for the Swift tests to read.

    python make_python_fixtures.py OUT_DIR

Each case is NAME.safetensors (written by `safetensors.serialize_file`, the reference writer)
plus NAME.json, its manifest (see manifest.py). The committed copies live in
Tests/Fixtures/python/; CI regenerates them and checks that they still parse equal.
"""

import os
import sys

import ml_dtypes
import numpy as np
from safetensors import TensorSpec, serialize_file

import manifest

# dtype code -> (reference writer's dtype name, numpy dtype for making values, bits per element)
DTYPES = {
    "BOOL": ("bool", np.bool_, 8),
    "U8": ("uint8", np.uint8, 8),
    "I8": ("int8", np.int8, 8),
    "F8_E5M2": ("float8_e5m2", ml_dtypes.float8_e5m2, 8),
    "F8_E4M3": ("float8_e4m3fn", ml_dtypes.float8_e4m3fn, 8),
    "F8_E8M0": ("float8_e8m0fnu", ml_dtypes.float8_e8m0fnu, 8),
    "F8_E4M3FNUZ": ("float8_e4m3fnuz", ml_dtypes.float8_e4m3fnuz, 8),
    "F8_E5M2FNUZ": ("float8_e5m2fnuz", ml_dtypes.float8_e5m2fnuz, 8),
    "I16": ("int16", np.int16, 16),
    "U16": ("uint16", np.uint16, 16),
    "F16": ("float16", np.float16, 16),
    "BF16": ("bfloat16", ml_dtypes.bfloat16, 16),
    "I32": ("int32", np.int32, 32),
    "U32": ("uint32", np.uint32, 32),
    "F32": ("float32", np.float32, 32),
    "C64": ("complex64", np.complex64, 64),
    "F64": ("float64", np.float64, 64),
    "I64": ("int64", np.int64, 64),
    "U64": ("uint64", np.uint64, 64),
}


def values(code, shape, seed):
    """Deterministic, varied values of dtype `code` (bytes for F4: two e2m1 codes a byte)."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape, dtype=np.int64))
    if code == "F4":
        return rng.integers(0, 256, size=count // 2, dtype=np.uint8)
    _, np_type, _ = DTYPES[code]
    if code == "BOOL":
        return rng.integers(0, 2, size=count).astype(np.bool_)
    if np.issubdtype(np.dtype(np_type), np.integer):
        info = np.iinfo(np_type)
        return rng.integers(info.min, info.max, size=count, dtype=np_type, endpoint=True)
    if code == "C64":
        return (rng.standard_normal(count) + 1j * rng.standard_normal(count)).astype(np.complex64)
    if code == "F8_E8M0":
        return (2.0 ** rng.integers(-20, 20, size=count)).astype(np_type)
    return (rng.standard_normal(count) * 3).astype(np_type)


def write(out_dir, name, tensors, metadata=None):
    """tensors: {tensor name: (dtype code, shape, numpy array of the data)}."""
    keep_alive = []
    specs = {}
    for tensor_name, (code, shape, array) in tensors.items():
        array = np.ascontiguousarray(array)
        keep_alive.append(array)
        dtype_name = "float4_e2m1fn_x2" if code == "F4" else DTYPES[code][0]
        # The reference doubles the last dimension of F4 (two values a byte): pass it halved.
        spec_shape = list(shape[:-1]) + [shape[-1] // 2] if code == "F4" else list(shape)
        specs[tensor_name] = TensorSpec(
            dtype=dtype_name, shape=spec_shape, data_ptr=array.ctypes.data, data_len=array.nbytes
        )
    path = os.path.join(out_dir, name + ".safetensors")
    serialize_file(specs, path, metadata=metadata)
    manifest.save(os.path.join(out_dir, name + ".json"), manifest.describe(path))


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    every = {}
    for seed, code in enumerate(DTYPES):
        every["t_" + code.lower()] = (code, (3, 4), values(code, (3, 4), seed))
    every["t_f4"] = ("F4", (3, 4), values("F4", (3, 4), 99))
    write(out_dir, "every_dtype", every, metadata={"format": "np", "source": "reference writer"})
    write(
        out_dir,
        "scalars_and_empty",
        {
            "scalar_f32": ("F32", (), np.array(1.5, dtype=np.float32)),
            "scalar_bf16": ("BF16", (), np.array(-2.25, dtype=ml_dtypes.bfloat16)),
            "empty_f16": ("F16", (0,), np.zeros((0,), dtype=np.float16)),
            "empty_2d_i64": ("I64", (4, 0), np.zeros((4, 0), dtype=np.int64)),
        },
    )
    write(
        out_dir,
        "unicode_metadata",
        {"embed.weight": ("BF16", (8, 16), values("BF16", (8, 16), 7))},
        metadata={"note": "größe ✓ 日本語 \"quoted\" \\ \n\t", "emoji": "🤖", "format": "pt"},
    )
    write(out_dir, "no_metadata", {"w": ("F32", (2, 3), values("F32", (2, 3), 11))})
    write(out_dir, "empty_file", {})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
