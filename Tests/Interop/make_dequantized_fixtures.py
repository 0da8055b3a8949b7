"""Writes what torchao's dequantize() gives for every quantized weight of the golden fixtures.

    python Tests/Interop/make_dequantized_fixtures.py [FIXTURES_DIR [OUT_DIR]]

FIXTURES_DIR defaults to Tests/Fixtures/torchao and OUT_DIR to Tests/Fixtures/dequantized
(both relative to the repository root). For every fixture directory FIXTURES_DIR/<fixture>/ the
script reads the quantized parts torchao stored in expected.safetensors (never the input: it does
not quantize again) and writes OUT_DIR/<fixture>.safetensors with one tensor per quantized
state-dict entry (`a.weight`, `experts.w`, ...): the high-precision tensor in the weight's dtype
(BF16, F16 or F32) and the weight's logical shape. Plain entries (outcome "Tensor") are left out.

The formulas are the ones of SPEC-torchao.md (torchao 0.18, torch 2.15, CPU); each function
names its section. All arithmetic is IEEE binary32 with round-to-nearest-even (numpy float32
operations are correctly rounded and never fused), then rounded to the weight dtype, as torch's
CPU "opmath" does (SPEC §1).

Needs numpy, ml_dtypes and safetensors (Tests/Interop/requirements.txt); not torch. The output
is deterministic: running it twice gives byte-identical files.

Checked against torchao itself (2026-11-30, torch 2.15.0 + torchao 0.18.0, CPU): the values equal
`unflatten_tensor_state_dict(...)[name].dequantize()` bit for bit for all 172 tensors whose
subclass has a dequantize() (every one but Int4Tensor's 9), NaN compared as NaN.

Self-check: when the reference implementation of the spec (../shared/reference/refimpl.py next
to the repository, absent from a plain clone) can be imported, Int8/Intx/Float8/Int4 results are
also compared bit for bit with refimpl's dequantize functions; otherwise that check is skipped.
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
import safetensors
from safetensors import TensorSpec, safe_open, serialize_file

F32 = np.float32
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = "Tests/Interop/make_dequantized_fixtures.py"

# torch dtype name (as in the metadata) -> short name used below
TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
# safetensors dtype code of a stored part -> short name (for scale / zero_point dtypes)
ST_FLOAT_DTYPES = {"BF16": "bf16", "F16": "fp16", "F32": "fp32"}
# short name -> dtype name of the safetensors writer (stored as BF16 / F16 / F32)
OUT_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


# ------------------------------------------------------------------ rounding (SPEC §1)
def bf16_bits(x):
    """R_bf16 as bits: `(bits + 0x7FFF + ((bits >> 16) & 1)) >> 16`; NaN -> 0x7FC0 (SPEC §1)."""
    x = np.ascontiguousarray(x, dtype=F32)
    b = x.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r)


def round_to(x, dt):
    """R_dt: round binary32 values to dt with RNE and return them as binary32 again (SPEC §1).
    fp16 is IEEE binary16 RNE with subnormals (numpy's cast); fp32 is the identity."""
    x = np.asarray(x, dtype=F32)
    if dt == "fp32":
        return x
    if dt == "bf16":
        return (bf16_bits(x).astype(np.uint32) << 16).view(F32)
    if dt == "fp16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(F32)
    raise ValueError(dt)


def to_storage(x, dt):
    """The binary32 array x, whose values are already dt values, as an array of dt for writing.
    NaN is written as the positive quiet NaN of dt (torch does not pin down NaN payloads)."""
    x = np.where(np.isnan(x), F32(np.nan), np.asarray(x, dtype=F32))
    if dt == "bf16":
        return bf16_bits(x).view(ml_dtypes.bfloat16)
    if dt == "fp16":
        return x.astype(np.float16)
    return x.astype(F32)


# ------------------------------------------------------------------ element decoders
def e4m3fn_to_f32(b):
    """float8_e4m3fn byte -> binary32 (SPEC §1.1): e = (b>>3)&15, m = b&7,
    e ? (1+m/8)·2^(e−7) : m·2⁻⁹; 0x7F/0xFF are NaN; the sign is bit 7."""
    b = np.asarray(b, dtype=np.uint8).astype(np.int32)
    e = (b >> 3) & 0xF
    m = (b & 7).astype(F32)
    mag = np.where(e == 0, m * F32(2.0 ** -9), (F32(1) + m / F32(8)) * np.exp2(e - 7).astype(F32))
    mag = np.where((b & 0x7F) == 0x7F, F32(np.nan), mag).astype(F32)
    return np.where(b & 0x80, -mag, mag).astype(F32)


E2M1_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], F32)


def unpack_e2m1(packed):
    """uint8 [.., K/2] -> binary32 [.., K]: two fp4 e2m1 codes a byte, the EVEN element in the
    LOW nibble, bit 3 the sign, grid {0, 0.5, 1, 1.5, 2, 3, 4, 6} (SPEC §1.2)."""
    u = np.asarray(packed, dtype=np.uint8)
    codes = np.stack([u & 0xF, u >> 4], axis=-1).reshape(*u.shape[:-1], u.shape[-1] * 2)
    return E2M1_VALUES[codes]


def e8m0_to_f32(b):
    """float8_e8m0fnu byte -> 2^(byte−127), 255 = NaN (SPEC §6.1). Exact in binary32:
    byte 0 is 2^-127, a binary32 (and bf16) subnormal."""
    b = np.asarray(b, dtype=np.uint8)
    v = np.ldexp(F32(1), b.astype(np.int32) - 127).astype(F32)
    return np.where(b == 255, F32(np.nan), v).astype(F32)


def signed_nibbles(qdata):
    """Int4Tensor qdata int8 [.., K/2] -> int values [.., K] in [−8, 7]: byte j holds element 2j
    in the LOW nibble and 2j+1 in the high nibble, two's complement (SPEC §5.1)."""
    u = np.asarray(qdata).view(np.uint8)
    lo = (u & 0xF).astype(np.int16)
    hi = (u >> 4).astype(np.int16)
    q = np.stack([lo, hi], axis=-1).reshape(*u.shape[:-1], u.shape[-1] * 2)
    return np.where(q > 7, q - 16, q)


# ------------------------------------------------------------------ blocks and swizzle
def expand_blocks(scale, shape, block):
    """Broadcast one scale per block over the block (SPEC §1.3): the scale has one entry per block
    (shape[i] / block[i] along every axis; a [1,1] PerTensor scale, [N,1] PerRow, [N,K/g]
    PerGroup, [E,N,1] for 3-D PerRow)."""
    assert len(shape) == len(block), (shape, block)
    counts = []
    for size, b in zip(shape, block):
        assert size % b == 0, f"dimension {size} is not a multiple of block {b}"
        counts.append(size // b)
    s = np.asarray(scale).reshape(counts)     # also checks the number of scales
    s = s.reshape([d for c in counts for d in (c, 1)])
    full = np.broadcast_to(s, [d for c, b in zip(counts, block) for d in (c, b)])
    return full.reshape(shape)


def unswizzle(stored, rows, cols):
    """Inverse of torchao to_blocked (SPEC §6.1 "Swizzle"): the stored scale is the [rows, cols]
    matrix zero-padded to R' = 128·⌈rows/128⌉ by C' = 4·⌈cols/4⌉ and laid out in 128×4 tiles;
    element (r, c) is at flat index
        ((r//128)·(C'/4) + c//4)·512 + (r%32)·16 + ((r%128)//32)·4 + c%4.
    For 3-D weights torchao swizzles the flattened E·N rows as one matrix, so the same
    formula with rows = E·N applies (each expert's tiles are contiguous when N % 128 == 0)."""
    flat = np.asarray(stored).reshape(-1)
    rp, cp = -(-rows // 128) * 128, -(-cols // 4) * 4
    assert flat.size == rp * cp, f"swizzled scale has {flat.size} entries, expected {rp}·{cp}"
    r, c = np.indices((rows, cols))
    idx = ((r // 128) * (cp // 4) + c // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4
    return flat[idx]


def block_scales(stored, shape, block, swizzled):
    """The per-block scales of an MX/NVFP4 weight of logical shape [.., N, K] as [.., N, K/block],
    un-swizzling them when the metadata says is_swizzled_scales (SPEC §6.1, §6.2)."""
    lead, n, k = tuple(shape[:-2]), shape[-2], shape[-1]
    assert k % block == 0, (shape, block)
    rows = int(np.prod(lead, dtype=np.int64)) * n
    if swizzled:
        s = unswizzle(stored, rows, k // block)
    else:
        s = np.asarray(stored).reshape(rows, k // block)
    return s.reshape(*lead, n, k // block)


# ------------------------------------------------------------------ the dequantize formulas
def dequantize_affine(q, zp, scale, block, out_dt):
    """torchao dequantize_affine for Int8Tensor (SPEC §2) and IntxUnpackedToInt8Tensor (SPEC §4):
    R_out( R_pout( f32(q − zp) ⊗ f32(s) ) ) with pout = promote(out, scale dtype) (SPEC §1.4),
    scale and zero point broadcast over block_size. pout is either out (scale stored in the
    weight dtype) or fp32 (scale stored fp32), so both cases are one rounding of the binary32
    product to out. q − zp is an exact integer in every out dtype (|q − zp| ≤ 255)."""
    d = (q.astype(np.int32) - expand_blocks(zp.astype(np.int32), q.shape, block)).astype(F32)
    assert np.array_equal(round_to(d, out_dt), d), "q − zero_point is not exact in the weight dtype"
    with np.errstate(invalid="ignore", over="ignore"):   # an inf fp16 scale (0·inf = NaN) is real
        return round_to(d * expand_blocks(scale, q.shape, block), out_dt)


def float8_dequantize(qdata, scale, block, out_dt):
    """Float8Tensor (SPEC §3): dequantize = R_dt( f32(q) ⊗ scale ), scale fp32, one per block.
    An all-zero block has scale 0 and qdata 0xFF (NaN), so it dequantizes to NaN, as torchao does."""
    with np.errstate(invalid="ignore"):
        return round_to(e4m3fn_to_f32(qdata) * expand_blocks(scale, qdata.shape, block), out_dt)


def int4_dequantize(qdata, scale, zero_point, group, out_dt):
    """Int4Tensor (SPEC §5.1): w = R_dt( (q ⊗ s) ⊕ z ) in binary32, q = signed nibble, s and z the
    stored (weight-dtype) scale and FLOAT zero point, stored transposed [.., K/g, N].
    torchao 0.18 has no Int4Tensor.dequantize() (it raises NotImplementedError); this is the
    spec's "Reconstruction" formula, op for op what reference/aohelpers.manual_dequantize does
    (`(q·s + z).to(dtype)`): the product is exact in binary32, the sum is rounded to binary32 and
    then to the weight dtype."""
    q = signed_nibbles(qdata).astype(F32)
    k = q.shape[-1]
    s = np.swapaxes(scale, -1, -2)[..., None]          # [.., N, K/g, 1]
    z = np.swapaxes(zero_point, -1, -2)[..., None]
    qb = q.reshape(*q.shape[:-1], k // group, group)
    return round_to((qb * s + z).reshape(q.shape), out_dt)


def mx_dequantize(elements, scale_bytes, shape, block, swizzled, out_dt):
    """MXTensor (SPEC §6.1): R_dt( decode(q) ⊗ 2^(byte−127) ), one e8m0 scale per 32 elements
    along K. torchao's to_dtype casts both factors to the weight dtype (exactly) and multiplies
    there, i.e. one rounding of the exact product; the binary32 product here is exact too (the
    smallest is 2⁻⁹·2⁻¹²⁷), so a single round_to gives the same value. Byte 255 gives NaN."""
    s = e8m0_to_f32(block_scales(scale_bytes, shape, block, swizzled))
    x = elements.reshape(*shape[:-1], shape[-1] // block, block)
    with np.errstate(over="ignore", invalid="ignore"):
        return round_to((x * s[..., None]).reshape(shape), out_dt)


def nvfp4_dequantize(qdata, scale_bytes, per_tensor_scale, shape, block, swizzled, out_dt):
    """NVFP4Tensor (SPEC §6.2): R_dt( decode(code) ⊗ (pts ⊗ f32(s8)) ), or R_dt( decode(code) ⊗
    f32(s8) ) without a per_tensor_scale; s8 is the e4m3 block scale (one per 16 elements along K),
    pts the fp32 per-tensor scale (0-d for 2-D weights, [E,1,1] per expert for 3-D).

    Order of operations, as the spec writes it: first the scale product pts ⊗ s8 in binary32, then
    its product with the element in binary32, then one rounding to the weight dtype. Only the
    per-tensor-scale case with a bf16/fp16 weight can depend on this order; see
    `nvfp4_torch_variants` for the orders that torchao's source suggests there. For 3-D weights
    pts is [E,1,1], a dimensioned fp32 tensor, so torch forms the scale product in fp32 as well
    and the spec's order is the only candidate."""
    codes = unpack_e2m1(qdata)
    s8 = e4m3fn_to_f32(block_scales(scale_bytes, shape, block, swizzled))
    if per_tensor_scale is not None:
        pts = np.asarray(per_tensor_scale, dtype=F32)
        if pts.ndim == 3:                              # [E,1,1]: one scale per expert
            pts = pts.reshape(-1, 1, 1)
        s8 = (pts * s8).astype(F32)                    # [.., N, K/16], binary32 product
    x = codes.reshape(*shape[:-1], shape[-1] // block, block)
    return round_to((x * s8[..., None]).reshape(shape), out_dt)


def nvfp4_torch_variants(qdata, scale_bytes, per_tensor_scale, shape, block, swizzled, out_dt):
    """Diagnostic only (never written): the two other orders that torchao's source suggests for
    a 2-D bf16/fp16 weight with a 0-d per_tensor_scale. NVFP4Tensor.get_hp_scales() computes
    `per_tensor_scale * scale_e4m3.to(orig_dtype)`; by torch's type promotion that product is a
    bf16/fp16 tensor (a 0-d operand does not promote a dimensioned one of the same category), and
    dequantize() then multiplies the fp32 elements by it and casts to orig_dtype:
      "cpu":  torch's CPU TensorIterator first casts the 0-d fp32 operand to the common dtype,
              giving R_dt( decode ⊗ R_dt( R_dt(pts) ⊗ s8 ) );
      "cuda": the CUDA kernel loads both operands as fp32, giving R_dt( decode ⊗ R_dt(pts ⊗ s8) ).
    This reading of the torch source could not be run here (no torch); the script only counts
    the elements where each would differ from the spec's formula."""
    codes = unpack_e2m1(qdata)
    s8 = e4m3fn_to_f32(block_scales(scale_bytes, shape, block, swizzled))
    pts = np.asarray(per_tensor_scale, dtype=F32)
    x = codes.reshape(*shape[:-1], shape[-1] // block, block)
    variants = {}
    for label, hp in (("cpu", round_to(round_to(pts, out_dt) * s8, out_dt)),
                      ("cuda", round_to(pts * s8, out_dt))):
        variants[label] = round_to((x * hp[..., None]).reshape(shape), out_dt)
    return variants


# ------------------------------------------------------------------ safetensors I/O
def read_parts(path):
    """{name: (safetensors dtype code, numpy array)} and the __metadata__ of a safetensors file.
    safetensors.deserialize gives raw little-endian bytes, so no numpy float8/bf16 type is needed."""
    with open(path, "rb") as fh:
        raw = fh.read()
    raw_dtypes = {"I8": np.int8, "U8": np.uint8, "F32": F32, "F16": np.float16,
                  "BF16": np.uint16, "F8_E4M3": np.uint8, "F8_E8M0": np.uint8}
    parts = {}
    for name, info in safetensors.deserialize(raw):
        code = info["dtype"]
        arr = np.frombuffer(bytes(info["data"]), dtype=np.dtype(raw_dtypes[code]).newbyteorder("<"))
        arr = arr.reshape(info["shape"])
        if code == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(F32)
        elif code == "F16":
            arr = arr.astype(F32)
        elif code == "F32":
            arr = arr.astype(F32)
        parts[name] = (code, arr)
    with safe_open(path, framework="numpy") as fh:
        metadata = fh.metadata() or {}
    return parts, metadata


def write_tensors(path, tensors):
    """tensors: {name: (dt, binary32 array of dt values)}; written with the reference writer."""
    keep_alive, specs = [], {}
    for name, (dt, values) in tensors.items():
        array = np.ascontiguousarray(to_storage(values, dt))
        keep_alive.append(array)
        specs[name] = TensorSpec(dtype=OUT_DTYPES[dt], shape=list(array.shape),
                                 data_ptr=array.ctypes.data, data_len=array.nbytes)
    serialize_file(specs, path, metadata={"source": SOURCE})


# ------------------------------------------------------------------ one state-dict entry
def torch_dtype(entry, key):
    value = entry["_data"][key]
    return TORCH_DTYPES[value["_data"]]


def dequantize_entry(name, entry, parts):
    """(kind, weight dtype, dequantized binary32 array, extra info) for one state-dict name."""
    module, param = name.rsplit(".", 1)
    prefix = f"{module}._{param}_"
    kind = entry["_type"]
    data = entry["_data"]
    part = {dn: parts[prefix + dn] for dn in entry["_tensor_data_names"]}
    extra = {}
    if kind == "Int8Tensor" or kind == "IntxUnpackedToInt8Tensor":
        dt = torch_dtype(entry, "dtype")
        block = data["block_size"]
        q = part["qdata"][1]
        zp = part["zero_point"][1]
        scode, scale = part["scale"]
        out = dequantize_affine(q, zp, scale, block, dt)
        extra = {"block": block, "scale_dt": ST_FLOAT_DTYPES[scode], "q": q, "zp": zp, "scale": scale}
    elif kind == "Float8Tensor":
        dt = torch_dtype(entry, "dtype")
        block = data["block_size"]
        assert part["qdata"][0] == "F8_E4M3", f"{name}: only float8_e4m3fn qdata is covered"
        q = part["qdata"][1]
        out = float8_dequantize(q, part["scale"][1], block, dt)
        extra = {"block": block, "q": q, "scale": part["scale"][1]}
    elif kind == "Int4Tensor":
        scode, scale = part["scale"]
        dt = ST_FLOAT_DTYPES[scode]                    # no dtype key: the scale's dtype (SPEC §5.1)
        group = data["block_size"][-1]
        out = int4_dequantize(part["qdata"][1], scale, part["zero_point"][1], group, dt)
        assert list(out.shape) == data["shape"], (name, out.shape, data["shape"])
        extra = {"group": group, "q": part["qdata"][1], "scale": scale, "zp": part["zero_point"][1]}
    elif kind == "MXTensor":
        dt = torch_dtype(entry, "orig_dtype")
        block = data["block_size"]
        elem = data["elem_dtype"]["_data"]
        q = part["qdata"][1]
        if elem == "float8_e4m3fn":
            elements = e4m3fn_to_f32(q)
        elif elem == "float4_e2m1fn_x2":
            elements = unpack_e2m1(q)
        else:
            raise ValueError(f"{name}: MX element dtype {elem} is not covered")
        out = mx_dequantize(elements, part["scale"][1], list(elements.shape), block,
                            data["is_swizzled_scales"], dt)
    elif kind == "NVFP4Tensor":
        dt = torch_dtype(entry, "orig_dtype")
        block = data["block_size"]
        q = part["qdata"][1]
        pts = part["per_tensor_scale"][1] if "per_tensor_scale" in part else None
        shape = [*q.shape[:-1], q.shape[-1] * 2]
        args = (q, part["scale"][1], pts, shape, block, data["is_swizzled_scales"], dt)
        out = nvfp4_dequantize(*args)
        if pts is not None and np.ndim(pts) == 0 and dt != "fp32":
            extra["nvfp4_order_diffs"] = {
                label: int(np.sum(~bits_equal(alt, out, dt)))
                for label, alt in nvfp4_torch_variants(*args).items()}
    else:
        raise ValueError(f"{name}: subclass {kind} is not covered")
    return kind, dt, out, extra


def bits_equal(a, b, dt):
    """Element-wise: same dt value, NaN equal to NaN (NaN payloads are not pinned down)."""
    a, b = round_to(a, dt), round_to(b, dt)
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


# ------------------------------------------------------------------ optional refimpl cross-check
def load_refimpl():
    path = os.path.join(os.path.dirname(REPO_ROOT), "shared", "reference")
    if not os.path.isfile(os.path.join(path, "refimpl.py")):
        return None
    sys.path.insert(0, path)
    try:
        import refimpl
    except ImportError:
        return None
    finally:
        sys.path.remove(path)
    return refimpl


def refimpl_check(ref, kind, dt, out, extra):
    """None when refimpl is unavailable or has nothing for this kind, else the mismatch count."""
    if ref is None:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        expect = refimpl_expected(ref, kind, dt, extra)
    if expect is None:
        return None
    return int(np.sum(~bits_equal(np.asarray(expect, F32), out, dt)))


def refimpl_expected(ref, kind, dt, extra):
    if kind in ("Int8Tensor", "IntxUnpackedToInt8Tensor"):
        expect = ref.dequantize_affine(extra["q"], extra["block"], extra["scale"], extra["scale_dt"],
                                       extra["zp"].astype(np.int64), dt)
    elif kind == "Float8Tensor":
        expect = ref.float8_dequant(extra["q"].astype(np.uint8), extra["scale"], extra["block"], dt)
    elif kind == "Int4Tensor":
        expect = ref.int4_tensor_dequant(extra["q"], extra["scale"], extra["zp"], extra["group"], dt)
    else:
        return None
    return expect


# ------------------------------------------------------------------ main
def main(fixtures_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    ref = load_refimpl()
    counts, checked, mismatched, order_diffs = {}, 0, [], []
    fixtures = sorted(d for d in os.listdir(fixtures_dir)
                      if os.path.isfile(os.path.join(fixtures_dir, d, "expected.safetensors")))
    for fixture in fixtures:
        fdir = os.path.join(fixtures_dir, fixture)
        with open(os.path.join(fdir, "config.json")) as fh:
            config = json.load(fh)
        parts, metadata = read_parts(os.path.join(fdir, "expected.safetensors"))
        inputs, _ = read_parts(os.path.join(fdir, "input.safetensors"))
        tensors = {}
        for name, outcome in config["outcome"].items():
            if outcome == "Tensor":
                continue
            entry = json.loads(metadata[name])
            assert entry["_type"] == outcome, (fixture, name, entry["_type"], outcome)
            kind, dt, out, extra = dequantize_entry(name, entry, parts)
            # The weight's dtype and shape must be the input's.
            in_code, in_values = inputs[name]
            assert ST_FLOAT_DTYPES[in_code] == dt, (fixture, name, in_code, dt)
            assert out.shape == in_values.shape, (fixture, name, out.shape, in_values.shape)
            tensors[name] = (dt, out)
            counts[kind] = counts.get(kind, 0) + 1
            n = refimpl_check(ref, kind, dt, out, extra)
            if n is not None:
                checked += 1
                if n:
                    mismatched.append(f"{fixture}/{name}: {n} elements differ from refimpl")
            if any(extra.get("nvfp4_order_diffs", {}).values()):
                diffs = ", ".join(f"{k} {v}" for k, v in extra["nvfp4_order_diffs"].items())
                order_diffs.append(f"{fixture}/{name} ({out.size} elements): {diffs}")
        write_tensors(os.path.join(out_dir, fixture + ".safetensors"), tensors)
        print(f"{fixture}: {', '.join(tensors)}")
    print(f"{len(fixtures)} files, " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if ref is None:
        print("refimpl self-check skipped (../shared/reference/refimpl.py not found)")
    else:
        print(f"refimpl self-check: {checked} tensors compared, {len(mismatched)} with mismatches")
        for line in mismatched:
            print("  MISMATCH " + line)
    if order_diffs:
        print("note: NVFP4 elements that differ from the spec's order under the orders torchao's "
              "source suggests (see nvfp4_torch_variants):")
        for line in order_diffs:
            print("  " + line)
    return 1 if mismatched else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    fixtures_dir = args[0] if len(args) > 0 else os.path.join(REPO_ROOT, "Tests", "Fixtures", "torchao")
    out_dir = args[1] if len(args) > 1 else os.path.join(REPO_ROOT, "Tests", "Fixtures", "dequantized")
    sys.exit(main(fixtures_dir, out_dir))
