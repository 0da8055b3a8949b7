"""Writes the Mixture-of-Experts golden fixtures in Tests/Fixtures/moe (deterministic).

    python make_moe_fixtures.py [--out Tests/Fixtures/moe] [--keep DIR] [ARCH ...]

Needs the reference stack (torch 2.15.0, torchao 0.18.0, transformers 5.24.0, safetensors
0.8.0; see shared/reference/README.md), CPU only. For every architecture in ARCHS it

1. builds a tiny random bf16 model from its config (fixed seed, every floating tensor drawn
   from a seeded normal distribution; nothing is left at zero) and saves it with
   `save_pretrained` to OUT/<arch>/raw/ (config.json + model.safetensors): the Hub layout,
   per-expert 2-D experts for the `qwen2_moe`-mapped types and Mixtral, fused 3-D for gpt-oss
   and Llama 4;
2. for every safeshard recipe that applies to it (`recipes(arch)`), quantizes it exactly as a user
   would, `from_pretrained(raw, quantization_config=TorchAoConfig(cfg))` then
   `save_pretrained(tmp)`, and writes the golden manifest OUT/<arch>/<recipe>.json:
       {"arch", "recipe",
        "files":    ["model.safetensors"],
        "tensors":  {file key: {"dtype": "BF16", "shape": [..], "sha256": hex of the raw
                                little-endian data bytes}},
        "metadata": the file's __metadata__, every value JSON-parsed except "format",
        "quantization_config": config.json's "quantization_config"}
   The quantized checkpoints themselves are not kept (size) unless --keep DIR is given;
3. reloads every saved checkpoint with `from_pretrained(tmp)` and no other argument and
   checks that the reloaded parameters equal the in-memory quantized ones part for part and
   that no bias was quantized.

CPU enablers (shared/reference/aohelpers.py, as research/moe.md describes): float8-dynamic
bypasses torchao's hardware check (the weight is then quantized by torchao's torch path, as on
a GPU without mslk); int4 uses a torch re-implementation of mslk's int4 quantize/pack helpers.

PATCH (documented in Tests/Fixtures/moe/README.md): transformers 5.24's
`TorchAoHfQuantizer.param_needs_quantization` selects every parameter of an nn.Linear when an
FqnToConfig has a `_default` key, biases included (research/moe.md 3.2). safeshard applies
`_default` to nn.Linear *weights* only, so for the `*-experts` recipes this script wraps
`param_needs_quantization`: a parameter that is selected only through `_default` (no exact or
`re:` key matches its parameter or module name) must be named `weight`. config.json still
carries the full FqnToConfig with `_default`, and the saved checkpoints reload with plain
`from_pretrained(out)`.
"""

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "../.."))
sys.path.insert(0, os.environ.get("SAFESHARD_REFERENCE", os.path.join(REPO, "../shared/reference")))
import aohelpers as H  # noqa: E402

import torch  # noqa: E402
from torchao.quantization import (  # noqa: E402
    Float8DynamicActivationFloat8WeightConfig,
    Float8WeightOnlyConfig,
    FqnToConfig,
    Int4WeightOnlyConfig,
    Int8WeightOnlyConfig,
    PerRow,
    fqn_matches_fqn_config,
)
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    DeepseekV3Config,
    GptOssConfig,
    Llama4TextConfig,
    MixtralConfig,
    Qwen2MoeConfig,
    Qwen3MoeConfig,
    TorchAoConfig,
)
from transformers.utils import logging as hflog  # noqa: E402

hflog.set_verbosity_error()
hflog.disable_progress_bar()

SEED = 20260
EXPERTS_RE = r"re:.*\.experts\.(gate_up_proj|down_proj)"

# ------------------------------------------------------------------------------- architectures
# Hidden 128 and expert intermediate 128 (Int4 group 128 needs K % 128 == 0 for gate_up, K=H, and
# down, K=I); every matmul dimension a multiple of 16 (float8-dynamic skips the others), except
# Qwen2-MoE's shared_expert_gate [1, H], which moe.md says float8-dynamic skips (kept on purpose).
# Llama 4 has 16 experts: its router is an nn.Linear [E, H] that every plain recipe quantizes, and
# float8-dynamic would skip it with E=4.
COMMON = dict(
    vocab_size=128,
    hidden_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    tie_word_embeddings=False,
)


def configs():
    return {
        "mixtral": MixtralConfig(
            **COMMON, num_hidden_layers=1, intermediate_size=128, num_local_experts=4, num_experts_per_tok=2
        ),
        "qwen2_moe": Qwen2MoeConfig(
            **COMMON,
            num_hidden_layers=1,
            intermediate_size=128,
            moe_intermediate_size=128,
            shared_expert_intermediate_size=128,
            num_experts=4,
            num_experts_per_tok=2,
        ),
        "qwen3_moe": Qwen3MoeConfig(
            **COMMON,
            num_hidden_layers=1,
            head_dim=32,
            intermediate_size=128,
            moe_intermediate_size=128,
            num_experts=4,
            num_experts_per_tok=2,
        ),
        # layer 0 dense, layer 1 MoE (2 routed experts, to stay small); q/kv LoRA ranks 128 so that Int4 (group 128) reaches q_b/kv_b.
        "deepseek_v3": DeepseekV3Config(
            **{**COMMON, "num_attention_heads": 2, "num_key_value_heads": 2},
            num_hidden_layers=2,
            intermediate_size=128,
            moe_intermediate_size=128,
            n_routed_experts=2,
            n_shared_experts=1,
            num_experts_per_tok=1,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=1,
            q_lora_rank=128,
            kv_lora_rank=128,
            qk_rope_head_dim=16,
            qk_nope_head_dim=32,
            v_head_dim=64,
            num_mtp_layers=0,
        ),
        "gpt_oss": GptOssConfig(
            **COMMON,
            num_hidden_layers=1,
            head_dim=32,
            intermediate_size=128,
            num_local_experts=4,
            num_experts_per_tok=2,
            sliding_window=16,
            rope_parameters={
                "rope_type": "yarn",
                "rope_theta": 150000.0,
                "factor": 32.0,
                "beta_fast": 32.0,
                "beta_slow": 1.0,
                "truncate": False,
                "original_max_position_embeddings": 2,
            },
        ),
        "llama4_text": Llama4TextConfig(
            **COMMON,
            num_hidden_layers=1,
            head_dim=32,
            intermediate_size=128,
            intermediate_size_mlp=128,
            num_local_experts=16,
            num_experts_per_tok=1,
            attention_chunk_size=32,
        ),
    }


ARCHS = list(configs())
TRANSPOSED = {"gpt_oss", "llama4_text"}  # experts stored [E, in, out]


def randomize(model, seed):
    """Every floating parameter and buffer from a seeded normal distribution (in float32, then cast):
    norms around 1, biases and sinks small, weights std 0.05 with a per-row spread, so that every
    quantizer sees non-trivial, row-varying ranges."""
    gen = torch.Generator().manual_seed(seed)
    named = list(model.named_parameters()) + [(n, b) for n, b in model.named_buffers() if b.dtype.is_floating_point]
    with torch.no_grad():
        for name, t in sorted(named, key=lambda x: x[0]):
            if not t.dtype.is_floating_point or "rotary_emb" in name or name.endswith("inv_freq"):
                continue
            x = torch.randn(t.shape, generator=gen, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            if "norm" in name or "layernorm" in name:
                x = 1.0 + 0.1 * x
            elif t.ndim <= 1 or leaf.endswith("bias") or leaf == "sinks":
                x = 0.05 * x
            else:
                rows = torch.exp(0.5 * torch.randn(t.shape[:-1] + (1,), generator=gen))
                x = 0.05 * rows * x
            t.copy_(x.to(t.dtype))


def build_raw(arch, out_dir):
    torch.manual_seed(SEED)
    cfg = configs()[arch]
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    randomize(model, SEED + ARCHS.index(arch))
    shutil.rmtree(out_dir, ignore_errors=True)
    model.save_pretrained(out_dir)
    gen_cfg = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)
    return model


# ------------------------------------------------------------------------------------- recipes
def i8():
    return Int8WeightOnlyConfig(version=2)


def f8d():
    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())


def f8w():
    return Float8WeightOnlyConfig()


def i4():
    return Int4WeightOnlyConfig(group_size=128)


def experts(default, expert):
    return FqnToConfig({"_default": default, EXPERTS_RE: expert})


def recipes(arch):
    """safeshard recipe name -> (torchao config, CPU enabler) for `arch` (the issue 10 table)."""
    r = {
        "int8-weight-only": (i8(), None),
        "float8-dynamic": (f8d(), "f8dyn"),
        "float8-weight-only": (f8w(), None),
        "int4-weight-only": (i4(), "mslk"),
    }
    if arch in TRANSPOSED:
        # [E, in, out]: scale along the output channels (torchao's own Llama 4 recipe); int8/int4
        # expert recipes are refused by safeshard on these layouts.
        r["float8-dynamic-experts"] = (
            experts(f8d(), Float8DynamicActivationFloat8WeightConfig(granularity=[PerRow(), PerRow(1)])),
            "f8dyn",
        )
        r["float8-weight-only-experts"] = (experts(f8w(), Float8WeightOnlyConfig(granularity=PerRow(1))), None)
    else:
        r["int8-weight-only-experts"] = (experts(i8(), i8()), None)
        r["float8-dynamic-experts"] = (experts(f8d(), f8d()), "f8dyn")
        r["float8-weight-only-experts"] = (experts(f8w(), f8w()), None)
        r["int4-weight-only-experts"] = (experts(i4(), i4()), "mslk")
    return r


# --------------------------------------------------------------------- the _default-bias patch
def patch_default_weights_only():
    """Make transformers' `_default` select nn.Linear weights only (see the module docstring)."""
    from transformers.quantizers.quantizer_torchao import TorchAoHfQuantizer

    original = TorchAoHfQuantizer.param_needs_quantization
    if getattr(original, "_safeshard_patched", False):
        return

    def param_needs_quantization(self, model, param_name, **kwargs):
        selected = original(self, model, param_name, **kwargs)
        quant_type = self.quantization_config.quant_type
        if not selected or not isinstance(quant_type, FqnToConfig):
            return selected
        # the same tests as transformers' own, minus the `_default` branch
        module_fqn, _, leaf = param_name.rpartition(".")
        if fqn_matches_fqn_config(module_fqn, quant_type) or fqn_matches_fqn_config(param_name, quant_type):
            return True
        return leaf == "weight"  # selected only through `_default`: nn.Linear weights only

    param_needs_quantization._safeshard_patched = True
    TorchAoHfQuantizer.param_needs_quantization = param_needs_quantization


# ------------------------------------------------------------------------------------ manifest
DTYPE_SIZE = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I8": 1, "U8": 1, "I16": 2, "I32": 4, "I64": 8, "F8_E4M3": 1}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        meta = header.pop("__metadata__", None) or {}
        tensors = {}
        for key, info in header.items():
            start, end = info["data_offsets"]
            f.seek(base + start)
            data = f.read(end - start)
            tensors[key] = {"dtype": info["dtype"], "shape": info["shape"], "sha256": hashlib.sha256(data).hexdigest()}
    return tensors, meta


def manifest(directory, arch, recipe):
    files = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
    tensors, metadata = {}, {}
    for name in files:
        t, m = read_safetensors(os.path.join(directory, name))
        tensors.update(t)
        metadata.update({k: (v if k == "format" else json.loads(v)) for k, v in m.items()})
    with open(os.path.join(directory, "config.json")) as f:
        qc = json.load(f).get("quantization_config")
    return {
        "arch": arch,
        "recipe": recipe,
        "files": files,
        "tensors": dict(sorted(tensors.items())),
        "metadata": dict(sorted(metadata.items())),
        "quantization_config": qc,
    }


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


# --------------------------------------------------------------------------------------- checks
def same_param(a, b):
    from torchao.utils import TorchAOBaseTensor

    if type(a) is not type(b):
        return False
    if isinstance(a, TorchAOBaseTensor):
        for n in list(a.tensor_data_names) + list(getattr(a, "optional_tensor_data_names", [])):
            x, y = getattr(a, n, None), getattr(b, n, None)
            if (x is None) != (y is None):
                return False
            if x is not None and not torch.equal(x.view(torch.uint8), y.view(torch.uint8)):
                return False
        return True
    return a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def quantize_and_save(raw_dir, cfg, enabler, out_dir):
    if enabler == "f8dyn":
        H.enable_cpu_float8_dynamic()
    elif enabler == "mslk":
        H.install_mslk_emulation()
    q = AutoModelForCausalLM.from_pretrained(raw_dir, quantization_config=TorchAoConfig(cfg))
    assert q.dtype == torch.bfloat16, q.dtype
    q.save_pretrained(out_dir)
    return q


def check_saved(q, out_dir):
    """Reload with no other argument; parameters equal part for part; no quantized bias."""
    from torchao.utils import TorchAOBaseTensor

    q2 = AutoModelForCausalLM.from_pretrained(out_dir)
    sd1, sd2 = q.state_dict(), q2.state_dict()
    problems = []
    if set(sd1) != set(sd2):
        problems.append(f"reload keys differ: {sorted(set(sd1) ^ set(sd2))[:4]}")
    problems += [f"reload differs: {k}" for k in sorted(sd1) if k in sd2 and not same_param(sd1[k], sd2[k])]
    problems += [
        f"quantized bias: {k}" for k, v in sd2.items() if isinstance(v, TorchAOBaseTensor) and "bias" in k.rsplit(".", 1)[-1]
    ]
    quantized = sorted(k for k, v in sd2.items() if isinstance(v, TorchAOBaseTensor))
    return problems, quantized


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "Tests/Fixtures/moe"))
    ap.add_argument("--keep", help="also keep the quantized checkpoints under KEEP/<arch>/<recipe>/")
    ap.add_argument("--recipes", nargs="*", help="only these recipes")
    ap.add_argument("archs", nargs="*")
    args = ap.parse_args()
    patch_default_weights_only()
    failures = 0
    for arch in args.archs or ARCHS:
        raw_dir = os.path.join(args.out, arch, "raw")
        build_raw(arch, raw_dir)
        print(f"{arch:12s} raw {os.path.getsize(os.path.join(raw_dir, 'model.safetensors'))} bytes", flush=True)
        for recipe, (cfg, enabler) in recipes(arch).items():
            if args.recipes and recipe not in args.recipes:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                out_dir = os.path.join(args.keep, arch, recipe) if args.keep else tmp
                shutil.rmtree(out_dir, ignore_errors=True)
                try:
                    q = quantize_and_save(raw_dir, cfg, enabler, out_dir)
                    problems, quantized = check_saved(q, out_dir)
                    m = manifest(out_dir, arch, recipe)
                except Exception as e:  # report and go on with the next case
                    failures += 1
                    print(f"{arch:12s} {recipe:28s} FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
                    continue
                write_json(os.path.join(args.out, arch, f"{recipe}.json"), m)
                failures += bool(problems)
                status = "ok" if not problems else "PROBLEMS " + "; ".join(problems[:4])
                print(f"{arch:12s} {recipe:28s} {len(m['tensors']):3d} tensors, {len(quantized):2d} quantized  {status}", flush=True)
    print(f"{failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
