"""Writes the pickle-checkpoint fixtures of Tests/Fixtures/pickle (issue 11), checked as it goes.

    python Tests/Interop/make_pickle_fixtures.py [--out Tests/Fixtures/pickle] [--only PART ...]
                                                 [--torchao012 DIR]

PART is one of plain, hf, ao, aqt, adversarial (default: all, then manifest.json). Needs the
reference stack (torch 2.15.0, torchao 0.18.0, transformers 5.24.0, huggingface_hub,
safetensors 0.8.0; see shared/reference/README.md), CPU only. What every file is and what
safeshard must do with it is in OUT/manifest.json (written from MANIFEST below) and OUT/README.md.

Parts:
* plain: torch.save files of plain tensors (plain.pt, module_sd.pt, legacy.pt, proto4.pt,
  py2_strings.pt, many.pt), each with NAME.safetensors beside it: every state-dict entry as its
  own contiguous copy (what `--recipe reshard` on the bare file must write, tensor for tensor).
* hf: tiny Llama checkpoints (tied embeddings, bf16) as transformers < 5 wrote them:
  hf-single/ (torch.save(state_dict) -> pytorch_model.bin), hf-legacy/ (the same model, legacy
  format) and hf-sharded/ (huggingface_hub save_torch_state_dict(safe_serialization=False) ->
  5 shards + pytorch_model.bin.index.json), with safetensors twins (save_pretrained of the same
  model: lm_head.weight dropped).
* ao: torchao 0.18 tensor-subclass pickles of a tiny untied Llama quantized through transformers
  (from_pretrained(raw, quantization_config=TorchAoConfig(cfg))), written as torch.save of the
  state dict -> ao/NAME/pytorch_model.bin + config.json (with quantization_config), and the golden
  ao/NAME/expected.safetensors = flatten_tensor_state_dict(torch.load(pytorch_model.bin)),
  checked equal to what transformers' own save_pretrained writes for the same model.
* aqt: legacy AffineQuantizedTensor pickles made with torchao 0.12.0 (run in a subprocess with the
  0.12 wheel unpacked on PYTHONPATH over torch 2.15: .so files deleted, one inductor import
  stubbed; --torchao012 DIR reuses such a tree, otherwise it is fetched with
  `pip download torchao==0.12.0 --no-deps` into a temporary directory), with NAME.dequantized.
  safetensors = torchao 0.12's own dequantize() of each quantized weight.
* adversarial: hostile files, each with the refusal safeshard must give (manifest.json).

Determinism: seeded; a rerun writes the same bytes (checked) except legacy.pt, hf-legacy/ and
adversarial/legacy_*.pt, whose storage keys are `str(id(storage))` (memory addresses; the tensors
are the same), and adversarial/torchscript.pt (torch.jit.save output varies per run). The
`__metadata__` keys of ao/*/expected.safetensors, which safetensors writes in hash-map order, are
sorted afterwards (sort_metadata) so that those files are reproducible too.
"""

import argparse
import collections
import fnmatch
import glob
import io
import json
import os
import pickle
import pickletools
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile

warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "../.."))
REFERENCE = os.environ.get("SAFESHARD_REFERENCE", os.path.join(REPO, "../shared/reference"))

MANIFEST = {}  # relative path -> entry (see write_manifest)


def note(path, out, **entry):
    MANIFEST[os.path.relpath(path, out)] = entry


def size_of(path):
    return os.path.getsize(path)


# ------------------------------------------------------------------------------------ helpers
def reshard_golden(sd, path):
    """Every entry of a loaded state dict as its own contiguous tensor, in a safetensors file."""
    import torch
    from safetensors.torch import save_file

    plain = {}
    for k, v in sd.items():
        assert type(v) in (torch.Tensor, torch.nn.Parameter), (k, type(v))
        plain[k] = v.detach().clone().contiguous()
    save_file(plain, path)
    return plain


def assert_same_tensors(a, b, what):
    import torch

    assert sorted(a) == sorted(b), (what, sorted(set(a) ^ set(b)))
    for k in a:
        x, y = a[k], b[k]
        assert x.dtype == y.dtype and tuple(x.shape) == tuple(y.shape), (what, k, x.dtype, y.dtype, x.shape, y.shape)
        xb = x.detach().reshape(-1).contiguous().view(torch.uint8)
        yb = y.detach().reshape(-1).contiguous().view(torch.uint8)
        assert torch.equal(xb, yb), (what, k)


def load_st(path):
    from safetensors.torch import load_file

    return load_file(path)


# ------------------------------------------------------------------------------------ plain
def make_plain(out):
    import torch

    torch.manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tied = torch.randn(3, 2)
    sd = collections.OrderedDict()
    sd["w_bf16"] = torch.randn(3, 4).to(torch.bfloat16)
    sd["w_fp16"] = torch.randn(2, 3).to(torch.float16)
    sd["w_fp32"] = base  # owns storage S (24 floats)
    sd["view_row"] = base[1]  # shares S, offset 6
    sd["view_t"] = base.t()  # shares S, strides (1, 6)
    sd["view_slice"] = base[:, 2:5]  # shares S, offset 2, strides (6, 1)
    sd["tied_a"] = tied  # the same tensor under two names
    sd["tied_b"] = tied
    sd["f64"] = torch.tensor([1.0, -0.5], dtype=torch.float64)
    sd["i8"] = torch.tensor([[-128, 0, 127]], dtype=torch.int8)
    sd["i16"] = torch.tensor([-32768, 7, 32767], dtype=torch.int16)
    sd["i32"] = torch.tensor([1, -2], dtype=torch.int32)
    sd["i64"] = torch.tensor([1, 2, -3], dtype=torch.int64)
    sd["u8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["b"] = torch.tensor([True, False, True])
    sd["f8_e4m3fn"] = torch.tensor([1.0, -2.0, 448.0, 0.015625], dtype=torch.float8_e4m3fn)  # _rebuild_tensor_v3
    sd["f8_e5m2"] = torch.tensor([1.0, -3.0], dtype=torch.float8_e5m2)  # _rebuild_tensor_v3
    sd["scalar0d"] = torch.tensor(3.5)
    sd["empty"] = torch.empty(0, 5)
    sd["empty_300"] = torch.empty(0, 300, dtype=torch.int8)  # size and stride 300: BININT2
    sd["empty_wide"] = torch.empty(0, 70000, dtype=torch.int8)  # size and stride 70000: BININT
    sd["empty_huge"] = torch.empty(0, 3_000_000_000, dtype=torch.int8)  # size and stride 3e9: LONG1
    sd["param"] = torch.nn.Parameter(torch.ones(2))  # _rebuild_parameter
    p = f"{out}/plain.pt"
    torch.save(sd, p)
    with zipfile.ZipFile(p) as z:
        ops = {op.name for op, _, _ in pickletools.genops(z.read("plain/data.pkl"))}
    assert {"BININT", "LONG1", "BININT2", "LONG_BINPUT"} - ops == {"LONG_BINPUT"}, ops
    check_pickle(p, out, sd, "every plain dtype, views of one storage (row/offset, .t(), [:,2:5]), a tensor under "
                 "two names, float8 via _rebuild_tensor_v3, 0-d, empty (0,5), an nn.Parameter, empty tensors whose "
                 "sizes need BININT2 (300), BININT (70000) and LONG1 (3e9); zip format, protocol 2")

    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    p = f"{out}/module_sd.pt"
    torch.save(m.state_dict(), p)
    check_pickle(p, out, m.state_dict(), "nn.Sequential(Linear, LayerNorm).state_dict(): the OrderedDict is "
                 "followed by BUILD with its _metadata (to be accepted and ignored)")

    w = torch.arange(6, dtype=torch.float16).reshape(2, 3)
    sd = collections.OrderedDict([("w", w), ("v", w[1]), ("bf", torch.randn(2, 2).to(torch.bfloat16))])
    p = f"{out}/legacy.pt"
    torch.save(sd, p, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(p)
    check_pickle(p, out, sd, "legacy (pre-1.6) format: 5 pickles + raw storages "
                 "(_use_new_zipfile_serialization=False); v is a view of w's storage at offset 3. Storage keys are "
                 "str(id(storage)): bytes change per run")

    sd = collections.OrderedDict([("a", torch.ones(2, dtype=torch.bfloat16)),
                                  ("b", torch.arange(3, dtype=torch.int64))])
    p = f"{out}/proto4.pt"
    torch.save(sd, p, pickle_protocol=4)
    with zipfile.ZipFile(p) as z:
        pk = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    assert pk[:2] == b"\x80\x04" and b"\x95" in pk[:3], "expected a protocol-4 pickle with FRAME"
    try:
        torch.load(p, weights_only=True)
        torch_wo = "loads"
    except Exception as e:  # torch refuses FRAME (opcode 149) under weights_only
        torch_wo = f"refuses ({str(e).splitlines()[0][:60]}...)"
    check_pickle(p, out, sd, "pickle_protocol=4 (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL); torch's own "
                 f"weights_only loader {torch_wo}; safeshard may read it (harmless opcodes) or refuse it naming "
                 "the opcode: the manifest's expect says which the tests require",
                 weights_only=False, expect="load-or-refuse")

    # Python-2-era strings: the persistent ids' 'storage', key and location as SHORT_BINSTRING (bytes), which
    # torch decodes as ASCII; made by rewriting the BINUNICODE opcodes of a torch.save pickle
    sd = collections.OrderedDict([("w", torch.arange(4, dtype=torch.float32).reshape(2, 2)),
                                  ("b", torch.tensor([1, 2], dtype=torch.int64))])
    buf = io.BytesIO()
    torch.save(sd, buf)
    with zipfile.ZipFile(buf) as z:
        records = [(n, z.read(n)) for n in z.namelist()]
    pk = dict(records)["archive/data.pkl"]
    for word in [b"storage", b"cpu", b"0", b"1"]:
        pk = pk.replace(b"X" + struct.pack("<I", len(word)) + word, b"U" + bytes([len(word)]) + word)
    assert sum(op.name == "SHORT_BINSTRING" for op, _, _ in pickletools.genops(pk)) == 4  # others are BINGETs
    p = f"{out}/py2_strings.pt"
    write_zip(p, [(n, pk if n == "archive/data.pkl" else b) for n, b in records])
    check_pickle(p, out, sd, "persistent ids written with SHORT_BINSTRING (Python 2 str) instead of BINUNICODE, "
                 "as in py2-era checkpoints (torch decodes them as ASCII); a data.pkl rewritten from torch.save "
                 "output and zipped by Python's zipfile (records not 64-byte aligned)")

    sd = collections.OrderedDict((f"model.layers.{i}.w", torch.full((2,), float(i), dtype=torch.bfloat16))
                                 for i in range(300))
    p = f"{out}/many.pt"
    torch.save(sd, p)
    with zipfile.ZipFile(p) as z:
        pk = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    assert any(op.name == "LONG_BINPUT" for op, _, _ in pickletools.genops(pk))
    check_pickle(p, out, sd, "300 tensors: memo indices past 255 (LONG_BINPUT / LONG_BINGET)")


def check_pickle(path, out, sd, what, weights_only=True, expect="load"):
    """Loads `path` with torch, checks it equals `sd`, writes the reshard golden beside it."""
    import torch

    loaded = torch.load(path, weights_only=weights_only)
    assert_same_tensors(loaded, sd, path)
    golden = os.path.splitext(path)[0] + ".safetensors"
    reshard_golden(loaded, golden)
    assert_same_tensors(load_st(golden), {k: v.detach() for k, v in sd.items()}, golden)
    note(path, out, kind="pickle", expect=expect, golden=os.path.relpath(golden, out), description=what,
         safeshard="--recipe reshard on this bare file writes exactly the golden's tensors (every name kept, "
         "views and shared storages as copies)")
    note(golden, out, kind="golden", description=f"reshard golden of {os.path.basename(path)}: each entry of "
         "torch.load(weights_only=True) as a contiguous copy (safetensors.torch.save_file)")


# ------------------------------------------------------------------------------------ hf
def tiny_llama_config(tied):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                       tie_word_embeddings=tied)


def tiny_llama(seed, tied, layers=2):
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = tiny_llama_config(tied)
    cfg.num_hidden_layers = layers
    m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    # LlamaForCausalLM's init leaves norms at 1 and nothing at 0 except none; draw the norms too so
    # every tensor has distinct values.
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_((1.0 + 0.1 * torch.randn(p.shape)).to(p.dtype))
    return m


def make_hf(out):
    import torch
    from huggingface_hub import save_torch_state_dict

    # single file, tied embeddings: the old transformers layout (torch.save of the state dict)
    m = tiny_llama(seed=1, tied=True)
    sd = m.state_dict()
    assert sd["lm_head.weight"].data_ptr() == sd["model.embed_tokens.weight"].data_ptr()
    d = f"{out}/hf-single"
    os.makedirs(d)
    torch.save(sd, f"{d}/pytorch_model.bin")
    m.config.save_pretrained(d)
    twin = f"{out}/hf-single-safetensors"
    m.save_pretrained(twin)
    check_hf_pair(d, twin, out, "tiny LlamaForCausalLM (2 layers, hidden 32, vocab 64, tie_word_embeddings) saved as "
                  "torch.save(model.state_dict()) -> pytorch_model.bin (lm_head.weight and "
                  "model.embed_tokens.weight share one storage)")
    # the same model in the pre-1.6 legacy format (BERT-era Hub checkpoints): same twin
    d = f"{out}/hf-legacy"
    os.makedirs(d)
    torch.save(sd, f"{d}/pytorch_model.bin", _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(f"{d}/pytorch_model.bin")
    m.config.save_pretrained(d)
    check_hf_pair(d, twin, out, "the model of hf-single saved with torch.save(state_dict, "
                  "_use_new_zipfile_serialization=False): a legacy-format pytorch_model.bin as 2019-2020 Hub "
                  "checkpoints have it (storage keys are str(id(storage)): bytes change per run)", note_twin=False)

    m = tiny_llama(seed=2, tied=True)
    sd = m.state_dict()
    d = f"{out}/hf-sharded"
    os.makedirs(d)
    save_torch_state_dict(sd, d, safe_serialization=False, max_shard_size="12KB")
    m.config.save_pretrained(d)
    twin = f"{out}/hf-sharded-safetensors"
    m.save_pretrained(twin)
    shards = sorted(glob.glob(f"{d}/pytorch_model-*.bin"))
    assert len(shards) >= 3, shards
    check_hf_pair(d, twin, out, f"tiny LlamaForCausalLM (tied) saved by huggingface_hub.save_torch_state_dict("
                  f"safe_serialization=False, max_shard_size='12KB'): {len(shards)} shards + "
                  "pytorch_model.bin.index.json; each shard's top level is a plain dict (EMPTY_DICT)")


def check_hf_pair(d, twin, out, what, note_twin=True):
    import torch
    from transformers import AutoModelForCausalLM

    # the pickle directory loads with transformers (torch.load weights_only) to the same weights as the twin
    a = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16).state_dict()
    b = AutoModelForCausalLM.from_pretrained(twin, dtype=torch.bfloat16).state_dict()
    assert_same_tensors(a, b, d)
    tw = load_st(f"{twin}/model.safetensors")
    assert "lm_head.weight" not in tw
    pickled = {}
    for f in sorted(glob.glob(f"{d}/*.bin")):
        pickled.update(torch.load(f, weights_only=True))
    assert set(pickled) == set(tw) | {"lm_head.weight"}
    assert_same_tensors({k: v for k, v in pickled.items() if k != "lm_head.weight"}, tw, twin)
    rel = os.path.relpath(twin, out)
    note(d, out, kind="pickle-model-dir", expect="load", golden=rel, description=what,
         safeshard=f"--recipe reshard writes {rel}/model.safetensors tensor for tensor (lm_head.weight dropped: "
         "tie_word_embeddings); --recipe R equals R on the twin")
    if note_twin:
        note(twin, out, kind="golden", description=f"save_pretrained of the same model (transformers 5.24): the "
             f"safetensors twin of {os.path.relpath(d, out)}")


# ------------------------------------------------------------------------------------ ao (torchao 0.18)
def ao_configs():
    import torch
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Float8WeightOnlyConfig,
        Int4WeightOnlyConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        IntxWeightOnlyConfig,
        PerRow,
    )
    from torchao.quantization.granularity import PerGroup

    return {
        "int8wo": (Int8WeightOnlyConfig(version=2), "Int8Tensor", ""),
        "int8dq": (Int8DynamicActivationInt8WeightConfig(), "Int8Tensor",
                   "act_quant_kwargs = QuantizeTensorToInt8Kwargs(PerRow, MappingType) inside the pickle"),
        "fp8wo": (Float8WeightOnlyConfig(), "Float8Tensor", "qdata via _rebuild_tensor_v3 (float8_e4m3fn)"),
        "fp8dq": (Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()), "Float8Tensor",
                  "act_quant_kwargs = QuantizeTensorToFloat8Kwargs with mm_config = Float8MMConfig (a NamedTuple) "
                  "inside the pickle. EMULATED: torchao's CUDA-capability check bypassed (aohelpers), the weight is "
                  "quantized by torchao's torch path"),
        "intx4": (IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)), "IntxUnpackedToInt8Tensor",
                  "target_dtype = torch.int4 GLOBAL"),
        "int4": (Int4WeightOnlyConfig(group_size=32), "Int4Tensor",
                 "shape comes from the wrapper args only. EMULATED: mslk's int4_row_quantize_zp/pack_int4 "
                 "re-implemented in torch (aohelpers), run on CPU"),
    }


def make_ao(out):
    import torch
    import torchao  # noqa: F401  (registers torchao's safe globals for torch.load)
    from safetensors.torch import save_file
    from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict
    from transformers import AutoModelForCausalLM, TorchAoConfig

    sys.path.insert(0, REFERENCE)
    import aohelpers as H

    H.enable_cpu_float8_dynamic()
    H.install_mslk_emulation()

    root = f"{out}/ao"
    os.makedirs(root)
    tmp = tempfile.mkdtemp()
    try:
        raw = f"{tmp}/raw"
        tiny_llama(seed=3, tied=False, layers=1).save_pretrained(raw)
        for name, (cfg, cls, extra) in ao_configs().items():
            torch.manual_seed(0)
            m = AutoModelForCausalLM.from_pretrained(raw, dtype=torch.bfloat16, quantization_config=TorchAoConfig(cfg))
            w = m.model.layers[0].self_attn.q_proj.weight
            assert type(w).__name__ == cls, (name, type(w).__name__)
            d = f"{root}/{name}"
            os.makedirs(d)
            torch.save(m.state_dict(), f"{d}/pytorch_model.bin")
            m.config.save_pretrained(d)
            loaded = torch.load(f"{d}/pytorch_model.bin", weights_only=True)
            tensors, md = flatten_tensor_state_dict(loaded)
            golden = f"{d}/expected.safetensors"
            save_file(tensors, golden, metadata=md)
            sort_metadata(golden)
            # transformers' own safetensors save of the same quantized model must be the same thing
            m.save_pretrained(f"{tmp}/{name}")
            ref = f"{tmp}/{name}/model.safetensors"
            assert_same_tensors(load_st(golden), load_st(ref), golden)
            # transformers adds {"format": "pt"}; otherwise the same metadata
            assert parsed_metadata(golden) == {k: v for k, v in parsed_metadata(ref).items() if k != "format"}, name
            qc = json.load(open(f"{d}/config.json"))["quantization_config"]
            assert qc["quant_method"] == "torchao"
            kinds = sorted({type(v).__name__ for v in loaded.values()})
            note(d, out, kind="torchao-pickle-model-dir", expect="load", golden=os.path.relpath(golden, out),
                 description=f"torchao 0.18 {type(cfg).__name__} on a tiny untied Llama (1 layer) through transformers "
                 f"TorchAoConfig; torch.save(model.state_dict()) -> pytorch_model.bin; config.json keeps the "
                 f"quantization_config; weights {cls} (tensor types {kinds}). {extra}".strip(),
                 safeshard="--recipe reshard writes expected.safetensors: same keys, bytes and parsed __metadata__ "
                 "(torchao's flatten_tensor_state_dict of torch.load of the pickle, equal to transformers' "
                 "save_pretrained of the model, which adds only __metadata__ format=pt); config.json's "
                 "quantization_config kept")
            note(golden, out, kind="golden", description="flatten_tensor_state_dict(torch.load(pytorch_model.bin)) "
                 "saved with its metadata (metadata key order varies per run; compare parsed)")
    finally:
        shutil.rmtree(tmp)


def sort_metadata(path):
    """Rewrites a safetensors header with its __metadata__ keys sorted (safetensors writes them in
    hash-map order, which changes per run); nothing else moves: the header is re-serialised byte for
    byte as safetensors writes it (checked), so its length and every data offset stay the same."""
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = f.read(n)
        doc = json.loads(header)
        compact = lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()  # noqa: E731
        assert compact(doc) == header.rstrip(b" "), path
        if "__metadata__" in doc:
            doc["__metadata__"] = dict(sorted(doc["__metadata__"].items()))
        new = compact(doc)
        assert len(new) == len(header.rstrip(b" "))
        f.seek(8)
        f.write(new + b" " * (n - len(new)))


def parsed_metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        md = json.loads(f.read(n)).get("__metadata__") or {}
    return {k: (v if k == "format" else json.loads(v)) for k, v in md.items()}


# ------------------------------------------------------------------------------------ aqt (torchao 0.12)
AQT_CONFIGS = {
    "int8wo": ("Int8WeightOnlyConfig()", "PlainAQTTensorImpl (int8, bf16 scale [N], int64 zero_point [N])", "load"),
    "int8dq": ("Int8DynamicActivationInt8WeightConfig()", "LinearActivationQuantizedTensor wrapping a "
               "PlainAQTTensorImpl AQT; input_quant_func is a GLOBAL function "
               "(_int8_symm_per_token_reduced_range_quant)", "load"),
    "fp8wo": ("Float8WeightOnlyConfig()", "Float8AQTTensorImpl (float8_e4m3fn via v3, fp32 scale [N,1])", "load"),
    "int4wo_cpu": ("Int4WeightOnlyConfig(group_size=32, layout=Int4CPULayout())", "Int4CPUAQTTensorImpl (packed uint8 "
                   "[N,K/2], scale_and_zero bf16 [K/g,N,2]): a packed layout", "refuse"),
}

AQT_WORKER = r'''
import sys, os, torch, torchao, warnings
warnings.filterwarnings("ignore")
from safetensors.torch import save_file
from torchao.quantization import (quantize_, Int8WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig,
                                  Float8WeightOnlyConfig, Int4WeightOnlyConfig)
from torchao.dtypes import Int4CPULayout
assert torchao.__version__.startswith("0.12"), torchao.__version__
out = sys.argv[1]
cfgs = {"int8wo": Int8WeightOnlyConfig(), "int8dq": Int8DynamicActivationInt8WeightConfig(),
        "fp8wo": Float8WeightOnlyConfig(), "int4wo_cpu": Int4WeightOnlyConfig(group_size=32, layout=Int4CPULayout())}
for name, cfg in cfgs.items():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 16, bias=True)).to(torch.bfloat16)
    quantize_(m, cfg)
    w = m[0].weight
    base = w.original_weight_tensor if hasattr(w, "original_weight_tensor") else w
    assert type(base).__name__ == "AffineQuantizedTensor", type(base)
    p = f"{out}/{name}.pt"
    torch.save(m.state_dict(), p)
    deq = {"0.weight": base.dequantize().contiguous(), "0.bias": m[0].bias.detach().clone()}
    assert deq["0.weight"].dtype == torch.bfloat16 and tuple(deq["0.weight"].shape) == (16, 64)
    # the saved pickle reloads (torchao 0.12, full unpickler) to the same dequantized weight
    r = torch.load(p, weights_only=False)["0.weight"]
    r = r.original_weight_tensor if hasattr(r, "original_weight_tensor") else r
    assert torch.equal(r.dequantize().view(torch.int16), deq["0.weight"].view(torch.int16)), name
    # the plain layouts' rule, independently of torchao (legacy-inputs.md 5.3): bf16((q - zp) * scale) in fp32
    impl = base.tensor_impl
    if hasattr(impl, "int_data"):
        zp = impl.zero_point.float() if impl.zero_point is not None else torch.zeros(impl.scale.shape)
        mine = ((impl.int_data.float() - zp[:, None]) * impl.scale.float()[:, None]).to(torch.bfloat16)
        assert torch.equal(mine.view(torch.int16), deq["0.weight"].view(torch.int16)), name
    elif hasattr(impl, "float8_data"):
        mine = (impl.float8_data.float() * impl.scale.float().reshape(-1, 1)).to(torch.bfloat16)
        assert torch.equal(mine.view(torch.int16), deq["0.weight"].view(torch.int16)), name
    save_file(deq, f"{out}/{name}.dequantized.safetensors")
    print(name, type(w).__name__, type(base.tensor_impl).__name__)
'''


def prepare_torchao012(tmp):
    """torchao 0.12.0's wheel unpacked (not installed), .so files deleted, the inductor import stubbed."""
    dl = f"{tmp}/dl"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "torchao==0.12.0", "--no-deps", "-d", dl],
                   check=True)
    (whl,) = glob.glob(f"{dl}/torchao-0.12.0-*.whl")
    site = f"{tmp}/site"
    with zipfile.ZipFile(whl) as z:
        z.extractall(site)
    for so in glob.glob(f"{site}/torchao/**/*.so", recursive=True):
        os.remove(so)
    stub = f"{site}/torchao/prototype/inductor/fx_passes/__init__.py"
    if os.path.exists(stub):
        with open(stub, "w") as f:
            f.write("# stubbed by make_pickle_fixtures.py: its inductor imports fail on torch 2.15\n"
                    "def register_da8w4_concat_linear_cpu_pass(*args, **kwargs):\n    pass\n\n\n"
                    "def _int8_sdpa_init(*args, **kwargs):\n    pass\n")
    return site


def make_aqt(out, site):
    import torch
    from safetensors.torch import load_file

    d = f"{out}/aqt"
    os.makedirs(d)
    tmp = tempfile.mkdtemp()
    try:
        site = site or prepare_torchao012(tmp)
        worker = f"{tmp}/aqt_worker.py"
        with open(worker, "w") as f:
            f.write(AQT_WORKER)
        env = dict(os.environ, PYTHONPATH=site + os.pathsep + os.environ.get("PYTHONPATH", ""))
        subprocess.run([sys.executable, worker, d], check=True, env=env, cwd=tmp)
    finally:
        shutil.rmtree(tmp)
    import torchao  # noqa: F401  (0.18: cannot load AQT at all)

    for name, (cfg, impl, expect) in AQT_CONFIGS.items():
        p = f"{d}/{name}.pt"
        try:
            torch.load(p, weights_only=True)
            raise AssertionError(f"{p}: torchao 0.18 loaded an AQT pickle")
        except AssertionError:
            raise
        except Exception:
            pass
        golden = f"{d}/{name}.dequantized.safetensors"
        g = load_file(golden)
        assert sorted(g) == ["0.bias", "0.weight"]
        if expect == "load":
            how = ("dequantize the weight bit for bit to the golden's 0.weight (bf16 [16,64]); 0.bias copied; "
                   "--recipe dequantize writes the golden, --recipe R re-quantizes it")
        else:
            how = ("refuse, saying the packed Int4CPU layout is not supported (the golden shows what torchao 0.12 "
                   "would dequantize it to)")
        note(p, out, kind="aqt-pickle", expect=expect, golden=os.path.relpath(golden, out),
             description=f"torchao 0.12 {cfg} on nn.Sequential(Linear(64,16)) bf16: AffineQuantizedTensor with "
             f"{impl}; torch.save(state_dict). torchao 0.18 cannot load it", safeshard=how)
        note(golden, out, kind="golden", description=f"torchao 0.12's own dequantize() of {name}.pt's 0.weight "
             "(bf16) and the plain 0.bias")


# ------------------------------------------------------------------------------------ adversarial
CANARY = "/tmp/safeshard-pickle-canary"
ZDATE = (2020, 1, 1, 0, 0, 0)


def write_zip(path, entries, method=zipfile.ZIP_STORED):
    """A zip with fixed timestamps (deterministic), entries in the given order."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZDATE)
            info.compress_type = method
            z.writestr(info, data)


def torch_zip(path, pkl, storages=(), prefix="archive", byteorder=b"little", extra=()):
    """The records of a torch.save zip, in torch's order, around a crafted data.pkl."""
    entries = [(f"{prefix}/data.pkl", pkl), (f"{prefix}/.format_version", b"1"),
               (f"{prefix}/.storage_alignment", b"64")]
    if byteorder is not None:
        entries.append((f"{prefix}/byteorder", byteorder))
    entries += [(f"{prefix}/data/{k}", b) for k, b in storages]
    entries += [(f"{prefix}/version", b"3\n")] + list(extra)
    write_zip(path, entries)


class _Storage:
    def __init__(self, key, numel, stype):
        self.key, self.numel, self.stype = key, numel, stype


class _Tensor:
    def __init__(self, storage, off, size, stride, meta=None, fn="_rebuild_tensor_v2"):
        import torch

        self.fn = getattr(torch._utils, fn)
        self.args = (storage, off, tuple(size), tuple(stride), False, collections.OrderedDict())
        if meta is not None:
            self.args += (meta,)

    def __reduce__(self):
        return (self.fn, self.args)


class _Pickler(pickle.Pickler):
    def persistent_id(self, o):
        if isinstance(o, _Storage):
            return ("storage", o.stype, o.key, "cpu", o.numel)
        return None


def tensor_pickle(numel=4, off=0, size=(2, 2), stride=(2, 1), meta=None, key="0", stype=None, top=None):
    import torch

    t = _Tensor(_Storage(key, numel, stype or torch.FloatStorage), off, size, stride, meta)
    b = io.BytesIO()
    _Pickler(b, protocol=2).dump(top(t) if top else {"w": t})
    return b.getvalue()


def u32(n):
    return struct.pack("<I", n)


def binunicode(s):
    b = s.encode()
    return b"X" + u32(len(b)) + b


def make_adversarial(out):
    import torch

    import torchao  # noqa: F401  (torch.load below then sees torchao's classes as allowed, as a user would)

    d = f"{out}/adversarial"
    os.makedirs(d)
    cases = []  # (file name, description, expected refusal, torch check?)
    cmd = f"touch {CANARY}"
    F16 = b"\0" * 16

    def case(name, desc, refusal, run_torch=True):
        cases.append((name, desc, refusal, run_torch))
        return f"{d}/{name}"

    # --- a control: the crafted-file machinery makes a valid file
    torch_zip(case("control_good.pt", "CONTROL (must load): crafted zip + pickle of one fp32 [2,2] tensor 'w' = 0",
                   None), tensor_pickle(), [("0", F16)])

    # --- code execution attempts (canary file if anything ran them)
    torch_zip(case("global_posix_system.pt", f"GLOBAL posix.system + REDUCE('{cmd}')",
                   "GLOBAL posix.system is not allowed (byte offset of the GLOBAL)"),
              b"\x80\x02cposix\nsystem\n" + binunicode(cmd) + b"\x85R.")
    torch_zip(case("global_os_system_in_dict.pt", f"a dict whose value is os.system('{cmd}') (the value, not the top)",
                   "GLOBAL os.system is not allowed"),
              b"\x80\x02}" + binunicode("w") + b"cos\nsystem\n" + binunicode(cmd) + b"\x85Rs.")
    torch_zip(case("global_builtins_eval.pt", "GLOBAL builtins.eval + REDUCE(\"__import__('os').system(...)\")",
                   "GLOBAL builtins.eval is not allowed"),
              b"\x80\x02cbuiltins\neval\n" + binunicode(f"__import__('os').system('{cmd}')") + b"\x85R.")
    torch_zip(case("global_via_memo.pt", "subprocess.check_call stored under a harmless key ('x'), then fetched from "
                   "the memo (BINGET) and called for key 'w' (the picklescan memo-bypass shape)",
                   "GLOBAL subprocess.check_call is not allowed (refused at the GLOBAL, whatever the memo does)"),
              b"\x80\x02}(" + binunicode("x") + b"csubprocess\ncheck_call\nq\x07" + binunicode("w") + b"h\x07" +
              binunicode("sh") + binunicode("-c") + binunicode(cmd) + b"\x87\x85Ru.")
    torch_zip(case("stack_global_os_system.pt", "protocol 4 STACK_GLOBAL('os', 'system') + REDUCE",
                   "STACK_GLOBAL os.system is not allowed (or opcode STACK_GLOBAL refused)"),
              b"\x80\x04\x8c\x02os\x8c\x06system\x93" + binunicode(cmd) + b"\x85R.")
    torch_zip(case("inst_os_system.pt", "protocol 0 INST opcode 'i os\\nsystem\\n' with MARK + argument",
                   "opcode INST ('i') is not allowed"),
              b"\x80\x02(" + binunicode(cmd) + b"ios\nsystem\n.")
    torch_zip(case("obj_opcode.pt", "OBJ opcode building posix.system", "opcode OBJ ('o') is not allowed"),
              b"\x80\x02(cposix\nsystem\n" + binunicode(cmd) + b"o.")
    torch_zip(case("newobj_unlisted_class.pt", "NEWOBJ of builtins.type (would create a class)",
                   "GLOBAL builtins.type is not allowed"),
              b"\x80\x02cbuiltins\ntype\n" + binunicode("X") + b")}\x87\x81.")
    torch_zip(case("torch_unlisted_function.pt", "GLOBAL torch.serialization.load (a torch name that is not a rebuild "
                   "function) + REDUCE", "GLOBAL torch.serialization.load is not allowed"),
              b"\x80\x02ctorch.serialization\nload\n" + binunicode("/etc/passwd") + b"\x85R.")
    torch_zip(case("reduce_callable_from_rebuild_args.pt", "_rebuild_tensor_v2 whose storage argument is a nested "
                   "REDUCE of os.system", "GLOBAL os.system is not allowed"),
              b"\x80\x02}" + binunicode("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(cos\nsystem\n" +
              binunicode(cmd) + b"\x85RK\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.")
    # a torchao-looking subclass whose state carries a dunder key (pytorch PR #195615 shape)
    st = (b"ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_wrapper_subclass\n"
          b"ctorchao.quantization\nInt8Tensor\nq\x01(h\x01ctorch\nbfloat16\nK\x02K\x02\x86"
          b"K\x02K\x01\x86K\x00ctorch.serialization\n_get_layout\n" + binunicode("torch.strided") + b"\x85R"
          b"ctorch\ndevice\n" + binunicode("cpu") + b"\x85R\x89t}" + binunicode("__class__") +
          b"ctorch\nTensor\nstR")
    torch_zip(case("subclass_dunder_state.pt", "torchao Int8Tensor rebuilt with state {'__class__': torch.Tensor} "
                   "(setattr of a dunder key, pytorch PR #195615)", "state key '__class__' is not an Int8Tensor field"),
              b"\x80\x02}" + binunicode("w") + st + b"s.")
    torch_zip(case("subclass_unlisted_class.pt", "_rebuild_from_type_v2 of a class outside the allowlist "
                   "(torch.nn.modules.linear.Linear)", "GLOBAL torch.nn.modules.linear.Linear is not allowed"),
              b"\x80\x02}" + binunicode("w") +
              st.replace(b"torchao.quantization\nInt8Tensor", b"torch.nn.modules.linear\nLinear") + b"s.")

    # --- CVE shapes, lying sizes, out-of-bounds views
    torch_zip(case("setitem_on_tensor.pt", "SETITEM applied to a tensor during load (CVE-2026-24747, part 1)",
                   "SETITEM on a tensor (only a dict may take SETITEM)"),
              tensor_pickle(size=(4,), stride=(1,))[:-2] + b"K\x00K\x05ss.", [("0", F16)])
    torch_zip(case("setitems_on_list.pt", "MARK ... SETITEMS applied to a list", "SETITEMS on a list"),
              b"\x80\x02}" + binunicode("w") + b"](K\x00K\x01u" + b"s.")
    torch_zip(case("append_on_dict.pt", "APPEND applied to a dict", "APPEND on a dict"),
              b"\x80\x02}K\x01a.")
    torch_zip(case("storage_numel_mismatch.pt", "storage numel 1000 in the pickle, 16-byte record (CVE-2026-24747, "
                   "part 2)", "storage 0: 1000 float32 elements = 4000 bytes, record has 16"),
              tensor_pickle(numel=1000, size=(10, 100), stride=(100, 1)), [("0", F16)])
    torch_zip(case("storage_numel_overflow.pt", "storage numel 2^62+1 float32 (numel x 4 overflows int64 to 4 bytes, "
                   "PR #181310 shape)", "storage 0 size overflows"),
              tensor_pickle(numel=(1 << 62) + 1, size=(1,), stride=(1,)), [("0", b"\0" * 4)])
    torch_zip(case("storage_missing_record.pt", "the pickle names storage '7', the archive has no data/7",
                   "storage record data/7 is missing"), tensor_pickle(key="7"), [("0", F16)])
    torch_zip(case("view_out_of_bounds.pt", "view offset 3, size [2,2] on a 4-element storage",
                   "tensor w: view needs 7 elements, storage has 4"),
              tensor_pickle(off=3), [("0", F16)])
    torch_zip(case("view_huge_stride.pt", "stride 2^30 on a 4-element storage", "tensor w: view exceeds storage"),
              tensor_pickle(stride=(1 << 30, 1)), [("0", F16)])
    torch_zip(case("view_negative_size.pt", "size [-1, 2]", "tensor w: negative size"),
              tensor_pickle(size=(-1, 2)), [("0", F16)])
    torch_zip(case("view_negative_stride.pt", "stride [-2, 1] with offset 2", "tensor w: negative stride"),
              tensor_pickle(off=2, stride=(-2, 1)), [("0", F16)])
    torch_zip(case("view_negative_offset.pt", "storage offset -2", "tensor w: negative storage offset"),
              tensor_pickle(off=-2), [("0", F16)])
    torch_zip(case("view_numel_overflow_zero_stride.pt", "size [2^32, 2^32] with strides [0, 0] on a 1-element "
                   "storage: in bounds but 2^64 elements (the prototype's hole)", "tensor w: element count overflows"),
              tensor_pickle(numel=1, size=(1 << 32, 1 << 32), stride=(0, 0)), [("0", b"\0" * 4)])
    torch_zip(case("conj_metadata.pt", "_rebuild_tensor_v2 with metadata {'neg': True} (the neg bit)",
                   "tensor w: conj/neg metadata is refused"),
              tensor_pickle(meta={"neg": True}), [("0", F16)])
    torch_zip(case("persid_not_storage.pt", "BINPERSID with ('module', ...) instead of ('storage', ...)",
                   "persistent id is not a ('storage', ...) tuple"),
              b"\x80\x02}" + binunicode("w") + b"(" + binunicode("module") + binunicode("x") + b"tQs.")
    torch_zip(case("rebuild_wrong_arity.pt", "_rebuild_tensor_v2 called with 2 arguments",
                   "_rebuild_tensor_v2 takes 6 or 7 arguments, got 2"),
              b"\x80\x02}" + binunicode("w") + b"ctorch._utils\n_rebuild_tensor_v2\nK\x00K\x01\x86Rs.")
    torch_zip(case("top_level_list.pt", "the pickle's top level is a list of tensors, not a dict",
                   "the top-level object is a list, not a dict of tensors"),
              tensor_pickle(top=lambda t: [t]), [("0", F16)])
    torch_zip(case("non_string_key.pt", "a dict with an int key", "key 1 is not a string"),
              b"\x80\x02}K\x01K\x02s.")

    # --- malformed pickle streams
    torch_zip(case("undefined_memo.pt", "BINGET 5 with an empty memo", "BINGET 5: undefined memo entry"),
              b"\x80\x02}" + binunicode("w") + b"h\x05s.")
    torch_zip(case("truncated_pickle.pt", "data.pkl cut after 40 bytes, no STOP",
                   "data.pkl is truncated (ends before STOP)"),
              tensor_pickle()[:40], [("0", F16)])
    torch_zip(case("string_length_lie.pt", "BINUNICODE claiming 2^31-1 bytes in a 30-byte pickle (must not allocate)",
                   "BINUNICODE length 2147483647 exceeds the remaining bytes"),
              b"\x80\x02}X\xff\xff\xff\x7fabc" + b"N" * 16 + b"s.")
    torch_zip(case("trailing_after_stop.pt", "valid tensor pickle followed by bytes after STOP",
                   "bytes after STOP in data.pkl"), tensor_pickle() + b"cos\nsystem\n", [("0", F16)])
    torch_zip(case("mark_left_open.pt", "STOP with an open MARK on the stack", "STOP with an open MARK"),
              b"\x80\x02(}.")
    torch_zip(case("stack_leftover.pt", "STOP with two objects on the stack", "STOP with 2 objects on the stack"),
              b"\x80\x02}}.")
    torch_zip(case("long1_huge_int.pt", "a tensor size written as a 200-byte LONG1", "integer wider than 64 bits"),
              tensor_pickle()[:-2].replace(b"K\x02K\x02\x86", b"\x8a\xc8" + b"\x01" * 200 + b"K\x02\x86", 1) + b"s.",
              [("0", F16)])
    depth = 50000
    torch_zip(case("deep_nesting.pt", f"a value nested {depth} lists deep (EMPTY_LIST x N, APPEND x N-1); torch loads "
                   "it (no canary), a recursive reader overflows its stack", "nesting deeper than the limit / value "
                   "is not a tensor"),
              b"\x80\x02}" + binunicode("w") + b"]" * depth + b"a" * (depth - 1) + b"s.")
    bomb = b"N" + b"q\x00" + b"h\x00\x86q\x00" * 60  # t = (t, t): one object on the stack, one in the memo
    torch_zip(case("memo_bomb_value.pt", "memo bomb: t=(t,t) 60 times, 2^60 leaves if copied (torch loads it: shared "
                   "references)", "value of 'a' is a tuple, not a tensor (in O(n): memo entries are shared)"),
              b"\x80\x02}" + binunicode("a") + bomb + b"s.")
    torch_zip(case("memo_bomb_key.pt", "memo bomb used as a dict key: hashing it takes 2^60 steps (torch hangs)",
                   "key is not a string (refused before any hashing)", run_torch=False),
              b"\x80\x02}" + bomb + b"K\x01s.")

    # --- archive-level
    torch_zip(case("big_endian.pt", "byteorder record says 'big' (torch byteswaps and loads it)",
                   "byteorder 'big' is not supported"), tensor_pickle(), [("0", F16)], byteorder=b"big")
    write_zip(case("zip_path_traversal.pt", "entry names with '..' (archive/../../tmp/evil, archive/data/../../x)",
                   "zip entry name contains '..'"),
              [("archive/data.pkl", tensor_pickle()), ("archive/byteorder", b"little"), ("archive/data/0", F16),
               ("archive/../../tmp/safeshard-evil", b"x"), ("archive/version", b"3\n")])
    write_zip(case("zip_absolute_path.pt", "an entry named /tmp/safeshard-evil", "zip entry name is absolute"),
              [("archive/data.pkl", tensor_pickle()), ("archive/data/0", F16), ("/tmp/safeshard-evil", b"x"),
               ("archive/version", b"3\n")])
    write_zip(case("zip_duplicate_entry.pt", "two entries named archive/data/0 with different bytes",
                   "duplicate zip entry archive/data/0"),
              [("archive/data.pkl", tensor_pickle()), ("archive/data/0", F16), ("archive/data/0", b"\1" * 16),
               ("archive/version", b"3\n")])
    write_zip(case("zip_two_prefixes.pt", "records under two top-level folders (a/data.pkl, b/data/0)",
                   "zip entries under more than one top-level folder"),
              [("a/data.pkl", tensor_pickle()), ("b/data/0", F16), ("a/version", b"3\n")])
    write_zip(case("zip_deflated.pt", "entries compressed with DEFLATE (torch never compresses)",
                   "zip entry archive/data.pkl is compressed (method 8)"),
              [("archive/data.pkl", tensor_pickle()), ("archive/data/0", F16), ("archive/version", b"3\n")],
              method=zipfile.ZIP_DEFLATED)
    write_zip(case("zip_no_data_pkl.pt", "a zip without data.pkl", "no data.pkl in the archive"),
              [("archive/data/0", F16), ("archive/version", b"3\n")])
    good = open(f"{d}/control_good.pt", "rb").read()
    with open(case("zip_truncated.pt", "control_good.pt cut to half its length (no central directory)",
                   "no end of central directory (truncated or not a zip)"), "wb") as f:
        f.write(good[: len(good) // 2])
    eocd = good.rfind(b"PK\x05\x06")
    cd_off = struct.unpack("<I", good[eocd + 16: eocd + 20])[0]
    lie = bytearray(good)
    # make the central directory claim data/0 is 1 MB long (the file is 1 KB)
    p = cd_off
    while p < eocd:
        sig, = struct.unpack("<I", lie[p:p + 4])
        if sig != 0x02014B50:
            break
        nlen, xlen, clen = struct.unpack("<HHH", lie[p + 28:p + 34])
        name = bytes(lie[p + 46:p + 46 + nlen])
        if name.endswith(b"data/0"):
            lie[p + 20:p + 28] = struct.pack("<II", 1 << 20, 1 << 20)
        p += 46 + nlen + xlen + clen
    with open(case("zip_entry_size_lie.pt", "central directory says data/0 is 1 MiB; the file is far shorter",
                   "zip entry archive/data/0 extends past the end of the file"), "wb") as f:
        f.write(bytes(lie))

    # --- tensor kinds to refuse, made by torch itself
    torch.save({"q": torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 0.1, 0, torch.quint8)},
               case("quantized_tensor.pt", "torch.save of a quint8 per-tensor quantized tensor (_rebuild_qtensor, "
                    "QUInt8Storage); torch loads it", "quantized tensors are refused (_rebuild_qtensor)"))
    torch.save({"s": torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse()},
               case("sparse_tensor.pt", "torch.save of a sparse COO tensor (_rebuild_sparse_tensor); torch loads it",
                    "sparse tensors are refused (_rebuild_sparse_tensor)"))
    torch.save({"m": torch.empty(2, 3, device="meta")},
               case("meta_tensor.pt", "torch.save of a meta tensor (_rebuild_meta_tensor_no_storage); torch loads it",
                    "meta tensors (no data) are refused"))
    sm = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(sm, case("torchscript.pt", "torch.jit.save of a scripted Linear (constants.pkl, code/)",
                            "TorchScript archives are refused"))
    # the pre-1.0 tar format (refused by torch since CVE-2025-32434's fix)
    import tarfile

    with tarfile.open(case("tar_format.pt", "the pre-1.0 torch tar format (members sys_info, pickle, tensors, "
                           "storages); CVE-2025-32434's path", "the tar checkpoint format is refused"),
                      "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in [("sys_info", pickle.dumps({"protocol_version": 1000, "little_endian": True}, protocol=2)),
                           ("pickle", b"\x80\x02}."), ("tensors", b"\x80\x02K\x00."), ("storages", b"\x80\x02K\x00.")]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tf.addfile(info, io.BytesIO(data))
    assert tarfile.is_tarfile(f"{d}/tar_format.pt")
    # the legacy format with a big-endian sys_info
    legacy = io.BytesIO()
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    raw = legacy.getvalue()
    le = raw.find(b"little_endian")
    j = raw.find(b"\x88", le)  # NEWTRUE after the key (BINPUT in between)
    assert 0 < j - le < 20, (le, j)
    with open(case("legacy_big_endian.pt", "legacy-format file whose sys_info says little_endian False",
                   "legacy checkpoint is big-endian"), "wb") as f:
        f.write(raw[:j] + b"\x89" + raw[j + 1:])
    with open(case("legacy_storage_truncated.pt", "legacy-format file cut inside its storage data",
                   "storage data ends early (truncated)"), "wb") as f:
        f.write(raw[:-3])
    with open(case("not_a_checkpoint.bin", "32 bytes of text", "neither a zip, a legacy pickle nor safetensors"),
              "wb") as f:
        f.write(b"this is not a checkpoint at all\n")

    # --- run torch's weights_only loader over all of them: nothing may create the canary
    if os.path.exists(CANARY):
        os.remove(CANARY)
    for name, desc, refusal, run_torch in cases:
        p = f"{d}/{name}"
        if run_torch:
            try:
                torch.load(p, weights_only=True)
                tw = "loads"
            except Exception as e:
                paras = [x.strip() for x in str(e).split("\n\n") if x.strip()]
                k = next((i for i, x in enumerate(paras) if x.startswith("Check the documentation")), None)
                msg = paras[k - 1] if k else (paras[0] if paras else "")
                g = re.search(r"Unsupported global: GLOBAL [\w.]+", str(e))
                msg = g.group(0) if g else msg
                tw = f"refuses: {type(e).__name__}: " + " ".join(msg.split())[:160]
        else:
            tw = "not run (hangs)"
        assert not os.path.exists(CANARY), name
        if refusal is None:
            assert tw == "loads", (name, tw)
            note(p, out, kind="adversarial-control", expect="load", description=desc,
                 safeshard="load: one fp32 [2,2] tensor 'w' of zeros", torch_weights_only=tw)
        else:
            note(p, out, kind="adversarial", expect="refuse", description=desc, refusal=refusal,
                 safeshard=f"refuse within a second, naming the file (and byte offset / entry / tensor where it "
                 f"applies), no canary at {CANARY}", torch_weights_only=tw)
    assert len([c for c in cases if c[2]]) >= 20


# ------------------------------------------------------------------------------------ manifest
def write_manifest(out):
    """manifest.json: {"generator", "versions", "canary", "files": {relative path: entry}} where entry has
    kind, description, expect ("load" | "refuse" | "load-or-refuse"), and where they apply golden (relative
    path), safeshard (what it must do), refusal (the refusal expected), torch_weights_only (what torch 2.15's
    weights_only loader does with the file), bytes (file size, or total for a directory)."""
    import huggingface_hub
    import safetensors
    import torch
    import torchao
    import transformers

    for rel, e in MANIFEST.items():
        p = os.path.join(out, rel)
        if os.path.isdir(p):
            e["files"] = sorted(os.listdir(p))
            e["bytes"] = sum(size_of(os.path.join(p, f)) for f in e["files"])
        else:
            e["bytes"] = size_of(p)
    old = {}
    if os.path.exists(f"{out}/manifest.json"):
        old = json.load(open(f"{out}/manifest.json"))["files"]
    files = {**old, **MANIFEST}
    doc = {
        "generator": "Tests/Interop/make_pickle_fixtures.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "torchao": torchao.__version__,
                     "transformers": transformers.__version__, "huggingface_hub": huggingface_hub.__version__,
                     "safetensors": safetensors.__version__, "aqt": "torchao 0.12.0 (unpacked wheel, see the script)"},
        "canary": CANARY,
        "files": dict(sorted(files.items())),
    }
    with open(f"{out}/manifest.json", "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


PARTS = ["plain", "hf", "ao", "aqt", "adversarial"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "Tests/Fixtures/pickle"))
    ap.add_argument("--only", nargs="*", choices=PARTS, default=PARTS)
    ap.add_argument("--torchao012", help="an unpacked torchao 0.12.0 tree to put on PYTHONPATH (default: fetch)")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    targets = {"plain": ["plain.*", "module_sd.*", "legacy.*", "proto4.*", "py2_strings.*", "many.*"],
               "hf": ["hf-*"], "ao": ["ao"], "aqt": ["aqt"], "adversarial": ["adversarial"]}
    if os.path.exists(f"{out}/manifest.json"):
        # keep the entries of the parts not rebuilt now
        doc = json.load(open(f"{out}/manifest.json"))
        for rel in list(doc["files"]):
            if any(fnmatch.fnmatch(rel.split("/")[0], t) for part in a.only for t in targets[part]):
                del doc["files"][rel]
        with open(f"{out}/manifest.json", "w") as f:
            json.dump(doc, f)
    for part in a.only:
        for t in targets[part]:
            for p in glob.glob(os.path.join(out, t)):
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
        print(f"== {part}", flush=True)
        {"plain": make_plain, "hf": make_hf, "ao": make_ao, "adversarial": make_adversarial,
         "aqt": lambda o: make_aqt(o, a.torchao012)}[part](out)
    write_manifest(out)
    print("ok:", len(MANIFEST), "entries written")


if __name__ == "__main__":
    main()
