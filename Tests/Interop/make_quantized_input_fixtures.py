"""Writes the quantized-input fixtures of Tests/Fixtures/quantized-input (issue 12), checked as it goes.

    python Tests/Interop/make_quantized_input_fixtures.py [--out Tests/Fixtures/quantized-input]
                                                          [--only PART ...]

PART is one of fp8-block, compressed-tensors, mxfp4, torchao (default: all, then manifest.json).
Needs the reference stack (torch 2.15.0, torchao 0.18.0, transformers 5.24.0, safetensors 0.8.0;
see shared/reference/README.md), CPU only. Every quantized model directory DIR comes with its
bfloat16 twin DIR-bf16 (the same tensor names minus the scale tensors, config.json without
quantization_config): what `--recipe dequantize` must write, tensor for tensor, and what any other
recipe on DIR must equal when run on the twin. OUT/manifest.json says what each file is.

Rules (shared/research/legacy-inputs.md part B), each golden checked in this script against an
independent computation before it is written:
* fp8-block (DeepSeek-V3 / Qwen3-FP8): W = RNE_bf16(f32(e4m3fn) *_f32 f32(scale_inv[i // 128, j // 128]));
  block from weight_block_size, grid ceil(M/128) x ceil(N/128), edge blocks reuse their block's
  scale. Checked against the torch emulation of DeepSeek's weight_dequant kernel (dequant_check.py:
  fp32 product of the fp8 tensor and the repeat_interleave'd scale, then .to(bfloat16)) and against
  a numpy port of the rule; transformers' Fp8Dequantize is run too and its disagreement recorded.
* compressed-tensors FP8: W = RNE_bf16(f32(e4m3fn) * weight_scale) (per tensor [1] or per channel
  [out, 1]); input_scale dropped. Checked against compressed-tensors' formula (x.to(scale.dtype) *
  scale, then the model dtype) in torch and against numpy; compressed_tensors itself when importable.
* mxfp4 (gpt-oss): `*_blocks` / `*_scales` -> transformers' bf16 GptOss experts [E, in, out];
  the twin is transformers' own convert_moe_packed_tensors (5.24), checked against a numpy port.
* torchao: model.safetensors written by transformers' save_pretrained of a tiny Llama quantized
  with TorchAoConfig, and the twin = every quantized weight's torchao dequantize() (bf16).

Deterministic (seeded numpy / torch generators): a rerun writes the same bytes. The `__metadata__`
keys of the torchao model.safetensors files, which safetensors writes in hash-map order, are sorted
afterwards (make_pickle_fixtures.sort_metadata; nothing else in the file moves).
"""

import argparse
import glob
import json
import math
import os
import shutil
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "../.."))
REFERENCE = os.environ.get("SAFESHARD_REFERENCE", os.path.join(REPO, "../shared/reference"))
MANIFEST = {}


def note(path, out, **entry):
    MANIFEST[os.path.relpath(path, out)] = entry


# ------------------------------------------------------------------------------------ numpy rule ports
def e4m3fn_lut():
    lut = np.zeros(256, np.float32)
    for b in range(256):
        s = -1.0 if b & 0x80 else 1.0
        e, m = (b >> 3) & 0xF, b & 7
        if e == 15 and m == 7:
            lut[b] = np.nan
        elif e == 0:
            lut[b] = s * (m / 8.0) * 2.0**-6
        else:
            lut[b] = s * (1 + m / 8.0) * 2.0 ** (e - 7)
    return lut


E4M3 = e4m3fn_lut()


def f32_to_bf16_bits(x):
    u = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def bits(t):
    """The raw bits of a bf16 tensor as a numpy uint16 array."""
    assert t.dtype == torch.bfloat16
    return t.contiguous().view(torch.int16).numpy().view(np.uint16)


def random_fp8(rng, shape):
    """Random e4m3fn codes over the whole range, NaN codes (0x7F / 0xFF) replaced, zeros and the
    largest finite value (0x7E = 448) included."""
    b = rng.integers(0, 256, size=shape, dtype=np.uint8)
    b[(b & 0x7F) == 0x7F] = 0x7E
    flat = b.reshape(-1)
    flat[:4] = [0x00, 0x80, 0x7E, 0xFE]
    return torch.from_numpy(b).view(torch.float8_e4m3fn)


def bf16_random(gen, shape, std=0.05):
    return (torch.randn(shape, generator=gen) * std).to(torch.bfloat16)


def norm_weight(gen, n):
    return (1 + 0.1 * torch.randn(n, generator=gen)).to(torch.bfloat16)


def write_dir(d, tensors, config):
    os.makedirs(d)
    save_file(tensors, f"{d}/model.safetensors", metadata={"format": "pt"})
    with open(f"{d}/config.json", "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


# ------------------------------------------------------------------------------------ fp8 block
BLOCK = 128
FP8_BLOCK_QC = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}


def base_config(model_type="qwen3", arch="Qwen3ForCausalLM", hidden=512, vocab=16):
    return {"architectures": [arch], "model_type": model_type, "hidden_size": hidden, "vocab_size": vocab,
            "torch_dtype": "bfloat16", "tie_word_embeddings": False}


def fp8_block_dequant(w, s, block=(BLOCK, BLOCK)):
    """The rule in torch: DeepSeek's weight_dequant kernel emulated (dequant_check.py)."""
    M, N = w.shape
    full = s.float().repeat_interleave(block[0], 0).repeat_interleave(block[1], 1)[:M, :N]
    return (w.float() * full).to(torch.bfloat16)


def fp8_block_numpy(w, s, block=(BLOCK, BLOCK)):
    M, N = w.shape
    assert s.shape == (math.ceil(M / block[0]), math.ceil(N / block[1]))
    sf = s.float().numpy()
    out = np.empty((M, N), np.float32)
    codes = w.view(torch.uint8).numpy()
    for bi in range(s.shape[0]):
        for bj in range(s.shape[1]):
            r, c = slice(bi * block[0], (bi + 1) * block[0]), slice(bj * block[1], (bj + 1) * block[1])
            out[r, c] = E4M3[codes[r, c]] * np.float32(sf[bi, bj])
    return f32_to_bf16_bits(out)


def make_fp8_block(out):
    from transformers.integrations.finegrained_fp8 import Fp8Dequantize

    rng = np.random.default_rng(12)
    gen = torch.Generator().manual_seed(12)
    hidden, vocab = 512, 16
    # (name, shape, scale dtype): rows/columns not multiples of 128 (576 = DeepSeek-V3's kv_a_proj_with_mqa rows);
    # DeepSeek stores fp32 scales, Qwen3-FP8 bf16 ones.
    linears = [
        ("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", (576, 512), torch.float32),
        ("model.layers.0.self_attn.q_proj.weight", (200, 300), torch.float32),
        ("model.layers.0.self_attn.o_proj.weight", (130, 129), torch.float32),
        ("model.layers.0.mlp.down_proj.weight", (256, 384), torch.float32),
        ("model.layers.0.mlp.up_proj.weight", (64, 200), torch.bfloat16),
    ]
    q, twin, hf_notes = {}, {}, {}
    for name, shape, sdt in linears:
        w = random_fp8(rng, shape)
        grid = (math.ceil(shape[0] / BLOCK), math.ceil(shape[1] / BLOCK))
        # scales spanning a realistic range (amax/448 of bf16 weights ~ 1e-5 .. 1e-3), one per block
        s = torch.from_numpy((np.exp(rng.uniform(np.log(1e-5), np.log(2e-3), size=grid))).astype(np.float32)).to(sdt)
        deq = fp8_block_dequant(w, s)
        assert np.array_equal(bits(deq), fp8_block_numpy(w, s)), name
        try:
            hf = Fp8Dequantize(None)._dequantize_one(w, s, output_dtype=torch.bfloat16)
            hf_notes[name] = "transformers Fp8Dequantize agrees" if np.array_equal(bits(hf), bits(deq)) else \
                "transformers Fp8Dequantize DIFFERS (infers the block from the grid)"
        except Exception as e:
            hf_notes[name] = f"transformers Fp8Dequantize raises {type(e).__name__}"
        q[name] = w
        q[name + "_scale_inv"] = s
        twin[name] = deq
    for name, shape in [("model.embed_tokens.weight", (vocab, hidden)), ("lm_head.weight", (vocab, hidden))]:
        q[name] = twin[name] = bf16_random(gen, shape)
    q["model.norm.weight"] = twin["model.norm.weight"] = norm_weight(gen, hidden)
    q["model.layers.0.mlp.gate.e_score_correction_bias"] = twin["model.layers.0.mlp.gate.e_score_correction_bias"] = \
        torch.randn(8, generator=gen, dtype=torch.float32)  # an fp32 tensor without a scale: kept as is
    # both the 200x300 and 130x129 disagreements of transformers are the point of these shapes
    assert "DIFFERS" in hf_notes["model.layers.0.self_attn.q_proj.weight"]
    assert "raises" in hf_notes["model.layers.0.self_attn.kv_a_proj_with_mqa.weight"]

    d = f"{out}/fp8-block"
    write_dir(d, q, {**base_config(), "quantization_config": FP8_BLOCK_QC})
    write_dir(d + "-bf16", twin, base_config())
    note(d, out, kind="fp8-block", expect="load", twin="fp8-block-bf16",
         description="block-scaled FP8 (DeepSeek-V3 / Qwen3-FP8 layout): float8_e4m3fn `weight` + `weight_scale_inv` "
         "[ceil(M/128), ceil(N/128)]; shapes 576x512 (grid 5x4), 200x300 (2x3), 130x129 (2x2), 256x384 (2x3) with fp32 "
         "scales and 64x200 (1x2) with a bf16 scale; embed_tokens, lm_head, norm (bf16) and an fp32 "
         "e_score_correction_bias carry no scale and stay as they are. quantization_config as DeepSeek-V3 writes it. "
         + "; ".join(f"{k.split('.')[-2]}: {v}" for k, v in hf_notes.items()),
         safeshard="--recipe dequantize writes fp8-block-bf16 (model.safetensors tensor for tensor, config.json "
         "without quantization_config); --recipe R equals R on fp8-block-bf16")
    note(d + "-bf16", out, kind="golden", description="the bf16 twin: W = RNE_bf16(f32(fp8) * f32(scale_inv[i//128, "
         "j//128])) (legacy-inputs.md 6.1), equal to the torch emulation of DeepSeek's kernel and a numpy port")

    # malformed variants: one 130x129 weight each
    w = random_fp8(rng, (130, 129))
    good_s = torch.from_numpy(rng.uniform(1e-4, 1e-3, size=(2, 2)).astype(np.float32))
    other = {"model.norm.weight": torch.ones(hidden, dtype=torch.bfloat16)}
    name = "model.layers.0.self_attn.o_proj.weight"
    bad = {
        "fp8-block-bad-grid": ({name: w, name + "_scale_inv": good_s[:1, :]}, FP8_BLOCK_QC,
                               f"{name}_scale_inv is [1, 2]; [130, 129] in blocks of [128, 128] needs [2, 2]"),
        "fp8-block-missing-scale": ({name: w}, FP8_BLOCK_QC,
                                    f"{name} is float8_e4m3fn and has no {name}_scale_inv"),
        "fp8-block-size-mismatch": ({name: w, name + "_scale_inv": good_s},
                                    {**FP8_BLOCK_QC, "weight_block_size": [64, 64]},
                                    f"weight_block_size [64, 64] gives a [3, 3] grid for [130, 129]; "
                                    f"{name}_scale_inv is [2, 2]"),
        "fp8-block-scale-wrong-dtype": ({name: w, name + "_scale_inv": good_s.to(torch.int32)}, FP8_BLOCK_QC,
                                        f"{name}_scale_inv is int32, not a float type"),
    }
    for sub, (tensors, qc, refusal) in bad.items():
        write_dir(f"{out}/{sub}", {**tensors, **other}, {**base_config(), "quantization_config": qc})
        note(f"{out}/{sub}", out, kind="fp8-block-malformed", expect="refuse", refusal=refusal,
             description="malformed block-FP8 input (one 130x129 weight)", safeshard="refuse, naming the tensor")


# ------------------------------------------------------------------------------------ compressed-tensors
def ct_args(strategy, dynamic=False, observer="minmax"):
    return {"actorder": None, "block_structure": None, "dynamic": dynamic, "group_size": None, "num_bits": 8,
            "observer": observer, "observer_kwargs": {}, "strategy": strategy, "symmetric": True, "type": "float"}


def ct_config(weight_strategy):
    return {
        "config_groups": {"group_0": {"input_activations": ct_args("tensor"), "output_activations": None,
                                      "targets": ["Linear"], "weights": ct_args(weight_strategy)}},
        "format": "float-quantized", "global_compression_ratio": None, "ignore": ["lm_head"],
        "kv_cache_scheme": None, "quant_method": "compressed-tensors", "quantization_status": "compressed",
    }


def ct_dequant(w, scale):
    """compressed-tensors' dequantize(): x_q.to(scale.dtype) * scale (broadcast), result in the scale's
    dtype; the model dtype (bf16) then rounds it."""
    return (w.to(scale.dtype) * scale).to(torch.bfloat16)


def make_compressed_tensors(out):
    rng = np.random.default_rng(34)
    gen = torch.Generator().manual_seed(34)
    hidden, vocab = 64, 16
    layers = [("model.layers.0.self_attn.q_proj.weight", (64, 64)),
              ("model.layers.0.self_attn.k_proj.weight", (32, 64)),
              ("model.layers.0.mlp.down_proj.weight", (64, 96)),
              ("model.layers.0.mlp.up_proj.weight", (96, 64))]
    try:
        from compressed_tensors.quantization.lifecycle.forward import dequantize as ct_lib
    except Exception:
        ct_lib = None
    # (strategy, scale dtype, model dtype): the last an fp16 model with fp16 scales, whose twin is fp16
    # (`x.to(float16) * scale` rounds the product to fp16, the model keeps it) and named DIR-fp16.
    for strategy, sdt, mdt in [("tensor", torch.float32, torch.bfloat16), ("channel", torch.bfloat16, torch.bfloat16),
                               ("channel", torch.float16, torch.float16)]:
        q, twin = {}, {}
        for name, shape in layers:
            w = random_fp8(rng, shape)
            sshape = (1,) if strategy == "tensor" else (shape[0], 1)
            s = np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), size=sshape)).astype(np.float32)
            s = torch.from_numpy(s).to(sdt)
            if mdt == torch.float16:
                deq = (w.to(sdt) * s).to(mdt)
                ref = (E4M3[w.view(torch.uint8).numpy()] * s.float().numpy()).astype(np.float16).view(np.uint16)
                assert np.array_equal(deq.view(torch.int16).numpy().view(np.uint16), ref), name
                if ct_lib is not None:
                    assert torch.equal(ct_lib(w, s).to(mdt).view(torch.int16), deq.view(torch.int16)), name
            else:
                deq = ct_dequant(w, s)
                ref = f32_to_bf16_bits(E4M3[w.view(torch.uint8).numpy()] * s.float().numpy())
                assert np.array_equal(bits(deq), ref), name
                if ct_lib is not None:
                    assert np.array_equal(bits(ct_lib(w, s).to(torch.bfloat16)), ref), name
            q[name], q[name.replace(".weight", ".weight_scale")] = w, s
            q[name.replace(".weight", ".input_scale")] = torch.tensor([0.02 + 0.001 * len(q)], dtype=sdt)
            twin[name] = deq
        for name, shape in [("model.embed_tokens.weight", (vocab, hidden)), ("lm_head.weight", (vocab, hidden))]:
            q[name] = twin[name] = bf16_random(gen, shape).to(mdt)
        q["model.norm.weight"] = twin["model.norm.weight"] = norm_weight(gen, hidden).to(mdt)
        half = mdt == torch.float16
        d = f"{out}/ct-fp8-{strategy}" + ("-f16" if half else "")
        suffix = "-fp16" if half else "-bf16"
        llama = {**base_config("llama", "LlamaForCausalLM", hidden, vocab),
                 "torch_dtype": "float16" if half else "bfloat16"}
        write_dir(d, q, {**llama, "quantization_config": ct_config(strategy)})
        write_dir(d + suffix, twin, llama)
        sd = {torch.float32: "[1] fp32", torch.bfloat16: "[out, 1] bf16", torch.float16: "[out, 1] fp16"}[sdt]
        note(d, out, kind="compressed-tensors", expect="load", twin=os.path.basename(d) + suffix,
             description=f"compressed-tensors float-quantized FP8, weights strategy '{strategy}' (weight_scale {sd}), "
             "static per-tensor input activations (input_scale [1] present); lm_head ignored "
             f"({'fp16: a float16 model' if half else 'bf16'}). "
             + ("checked with compressed_tensors.dequantize" if ct_lib else "compressed_tensors not installed: checked "
                "with its formula in torch and numpy"),
             safeshard=f"--recipe dequantize writes {os.path.basename(d)}{suffix} (weight_scale and input_scale "
             "dropped); --recipe R equals R on the twin")
        note(d + suffix, out, kind="golden",
             description="the fp16 twin: W = RNE_fp16(f32(fp8) * f32(weight_scale)), compressed-tensors' fp16 product "
             "kept by the float16 model" if half else
             "the bf16 twin: W = RNE_bf16(f32(fp8) * weight_scale) (legacy-inputs.md 6.2)")


# ------------------------------------------------------------------------------------ mxfp4
FP4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], np.float32)


def mxfp4_numpy(blocks, scales):
    E, O, G, _ = blocks.shape
    lo, hi = FP4[blocks & 0xF], FP4[blocks >> 4]
    vals = np.stack([lo, hi], -1).reshape(E, O, G, 32)
    deq = vals * np.exp2(scales.astype(np.int32) - 127)[..., None].astype(np.float32)
    return f32_to_bf16_bits(deq.reshape(E, O, G * 32).transpose(0, 2, 1).copy())


def make_mxfp4(out):
    from transformers import GptOssConfig, GptOssForCausalLM
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    rng = np.random.default_rng(56)
    E, H, I = 2, 64, 32  # experts, hidden, intermediate
    cfg = GptOssConfig(vocab_size=32, hidden_size=H, intermediate_size=I, num_hidden_layers=1, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, num_local_experts=E, num_experts_per_tok=1,
                       max_position_embeddings=64, sliding_window=16, tie_word_embeddings=False)
    torch.manual_seed(56)
    model = GptOssForCausalLM(cfg).to(torch.bfloat16)
    gen = torch.Generator().manual_seed(56)
    q = {}
    with torch.no_grad():
        for n, p in sorted(model.named_parameters()):
            x = torch.randn(p.shape, generator=gen)
            p.copy_(1 + 0.1 * x if "norm" in n else 0.05 * x)
        ex = model.model.layers[0].mlp.experts
        for part, out_dim, in_dim in [("gate_up_proj", 2 * I, H), ("down_proj", H, I)]:
            blocks = rng.integers(0, 256, size=(E, out_dim, in_dim // 32, 16), dtype=np.uint8)
            scales = rng.integers(119, 128, size=(E, out_dim, in_dim // 32), dtype=np.uint8)
            deq = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales), dtype=torch.bfloat16)
            assert np.array_equal(bits(deq), mxfp4_numpy(blocks, scales)), part
            param = getattr(ex, part)
            assert tuple(param.shape) == tuple(deq.shape), (part, param.shape, deq.shape)
            param.copy_(deq)
            key = f"model.layers.0.mlp.experts.{part}"
            q[key + "_blocks"], q[key + "_scales"] = torch.from_numpy(blocks), torch.from_numpy(scales)
    tmp = tempfile.mkdtemp()
    try:
        model.save_pretrained(tmp)
        twin = load_file(f"{tmp}/model.safetensors")
        twin_cfg = json.load(open(f"{tmp}/config.json"))
    finally:
        shutil.rmtree(tmp)
    for part in ["gate_up_proj", "down_proj"]:
        key = f"model.layers.0.mlp.experts.{part}"
        assert np.array_equal(bits(twin[key]), bits(getattr(model.model.layers[0].mlp.experts, part).detach()))
    for k, v in twin.items():
        if not k.endswith("_proj") or "experts" not in k:
            q[k] = v
    not_converted = ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]
    qcfg = {**twin_cfg, "quantization_config": {"modules_to_not_convert": not_converted, "quant_method": "mxfp4"}}
    d = f"{out}/mxfp4-gpt-oss"
    os.makedirs(d + "-bf16")
    save_file(twin, f"{d}-bf16/model.safetensors", metadata={"format": "pt"})
    with open(f"{d}-bf16/config.json", "w") as f:
        json.dump(twin_cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    write_dir(d, q, qcfg)
    # transformers itself reads the MXFP4 directory back (on CPU it dequantizes) to the twin
    try:
        from transformers import AutoModelForCausalLM

        m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16)
        sd = m.state_dict()
        hf_check = all(np.array_equal(bits(sd[k]), bits(twin[k])) for k in twin)
        hf_note = "transformers from_pretrained of this directory (CPU: dequantized) equals the twin: " + str(hf_check)
        assert hf_check
    except AssertionError:
        raise
    except Exception as e:
        hf_note = f"transformers from_pretrained of this directory not run ({type(e).__name__}: {str(e)[:80]})"
    note(d, out, kind="mxfp4", expect="load", twin="mxfp4-gpt-oss-bf16",
         description=f"tiny gpt-oss (1 layer, {E} experts, hidden {H}, intermediate {I}) with MXFP4 experts: "
         "gate_up_proj_blocks [2,64,2,16] / _scales [2,64,2] and down_proj_blocks [2,64,1,16] / _scales [2,64,1] "
         "(uint8; E8M0 scales 119..127); everything else bf16; quantization_config as openai/gpt-oss writes it. "
         + hf_note,
         safeshard="--recipe dequantize writes mxfp4-gpt-oss-bf16 (gate_up_proj [2,64,64], down_proj [2,32,64], "
         "transformers' [E, in, out] layout); --recipe R equals R on the twin")
    note(d + "-bf16", out, kind="golden", description="the bf16 twin: save_pretrained of the same GptOss model whose "
         "experts are transformers' convert_moe_packed_tensors of the blocks/scales (legacy-inputs.md 6.3; equal to "
         "a numpy port)")


# ------------------------------------------------------------------------------------ torchao
def make_torchao(out):
    import torchao  # noqa: F401
    from transformers import AutoModelForCausalLM, TorchAoConfig
    from torchao.prototype.safetensors.safetensors_support import unflatten_tensor_state_dict

    sys.path.insert(0, os.path.join(HERE))
    sys.path.insert(0, REFERENCE)
    import aohelpers as H
    import make_pickle_fixtures as P

    H.enable_cpu_float8_dynamic()
    H.install_mslk_emulation()
    configs = P.ao_configs()
    try:
        from torchao.prototype.mx_formats import MXDynamicActivationMXWeightConfig, NVFP4WeightOnlyConfig

        configs["mxfp8"] = (MXDynamicActivationMXWeightConfig(activation_dtype=torch.float8_e4m3fn,
                                                              weight_dtype=torch.float8_e4m3fn), "MXTensor", "")
        configs["nvfp4"] = (NVFP4WeightOnlyConfig(), "NVFP4Tensor", "")
    except Exception as e:
        print("mx/nvfp4 configs unavailable:", e)
    tmp = tempfile.mkdtemp()
    try:
        raw = f"{tmp}/raw"
        P.tiny_llama(seed=3, tied=False, layers=1).save_pretrained(raw)
        for name, (cfg, cls, extra) in configs.items():
            torch.manual_seed(0)
            m = AutoModelForCausalLM.from_pretrained(raw, dtype=torch.bfloat16, quantization_config=TorchAoConfig(cfg))
            w = m.model.layers[0].self_attn.q_proj.weight
            if type(w).__name__ != cls:
                print(f"torchao {name}: q_proj is {type(w).__name__}, not {cls}: skipped")
                continue
            d = f"{out}/torchao-{name}"
            m.save_pretrained(d)
            if os.path.exists(f"{d}/generation_config.json"):
                os.remove(f"{d}/generation_config.json")  # not part of the test: config.json + weights only
            files = sorted(os.listdir(d))
            assert files == ["config.json", "model.safetensors"], files
            P.sort_metadata(f"{d}/model.safetensors")
            # twin: each quantized weight's dequantize() (bf16), the rest as stored
            loaded = unflatten_tensor_state_dict(*P_load(f"{d}/model.safetensors"))[0]
            twin, how = {}, set()
            for k, v in loaded.items():
                if type(v) is torch.Tensor:
                    twin[k] = v
                    continue
                if type(v).__name__ == "Int4Tensor":
                    deq = H.manual_dequantize(v, torch.bfloat16)
                    how.add("Int4Tensor has no dequantize() in torchao 0.18: W = bf16(f32(q) * f32(scale) + "
                            "f32(zero)) per group (shared/reference/aohelpers.manual_dequantize, SPEC-torchao 5.1)")
                else:
                    deq = v.dequantize()
                    assert deq.dtype == torch.bfloat16, (k, deq.dtype)
                twin[k] = deq.to(torch.bfloat16).contiguous()
                assert tuple(twin[k].shape) == tuple(v.shape)
            mcfg = json.load(open(f"{d}/config.json"))
            mcfg.pop("quantization_config")
            write_dir(d + "-bf16", twin, mcfg)
            # the directory reloads with transformers to the same subclass tensors
            r = AutoModelForCausalLM.from_pretrained(d).state_dict()
            for k, v in loaded.items():
                rv = r[k]
                assert type(rv) is type(v), k
            note(d, out, kind="torchao-safetensors", expect="load", twin=os.path.basename(d) + "-bf16",
                 description=f"torchao 0.18 {type(cfg).__name__} on the tiny untied Llama of ../pickle/ao (same "
                 f"weights), saved by transformers' save_pretrained (model.safetensors + config.json); weights {cls}. "
                 f"{extra[extra.find('EMULATED'):] if 'EMULATED' in extra else ''}".strip(),
                 safeshard=f"--recipe dequantize writes {os.path.basename(d)}-bf16; --recipe R equals R on the twin")
            note(d + "-bf16", out, kind="golden", description="the bf16 twin: torchao's dequantize() of every "
                 "quantized weight, other tensors as stored. " + " ".join(sorted(how)))
    finally:
        shutil.rmtree(tmp)


def P_load(path):
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        md = f.metadata()
        return {k: f.get_tensor(k) for k in f.keys()}, md


# ------------------------------------------------------------------------------------ manifest
def write_manifest(out):
    import safetensors
    import torchao
    import transformers

    for rel, e in MANIFEST.items():
        p = os.path.join(out, rel)
        e["files"] = sorted(os.listdir(p))
        e["bytes"] = sum(os.path.getsize(os.path.join(p, f)) for f in e["files"])
    old = json.load(open(f"{out}/manifest.json"))["files"] if os.path.exists(f"{out}/manifest.json") else {}
    doc = {"generator": "Tests/Interop/make_quantized_input_fixtures.py",
           "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "torchao": torchao.__version__,
                        "transformers": transformers.__version__, "safetensors": safetensors.__version__},
           "files": dict(sorted({**old, **MANIFEST}.items()))}
    with open(f"{out}/manifest.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


PARTS = {"fp8-block": (make_fp8_block, ["fp8-block*"]), "compressed-tensors": (make_compressed_tensors, ["ct-*"]),
         "mxfp4": (make_mxfp4, ["mxfp4-*"]), "torchao": (make_torchao, ["torchao-*"])}


def main():
    import fnmatch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "Tests/Fixtures/quantized-input"))
    ap.add_argument("--only", nargs="*", choices=list(PARTS), default=list(PARTS))
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    if os.path.exists(f"{out}/manifest.json"):
        doc = json.load(open(f"{out}/manifest.json"))
        doc["files"] = {k: v for k, v in doc["files"].items()
                        if not any(fnmatch.fnmatch(k.split("/")[0], t) for p in a.only for t in PARTS[p][1])}
        with open(f"{out}/manifest.json", "w") as f:
            json.dump(doc, f)
    for part in a.only:
        fn, targets = PARTS[part]
        for t in targets:
            for p in glob.glob(os.path.join(out, t)):
                shutil.rmtree(p)
        print(f"== {part}", flush=True)
        fn(out)
    write_manifest(out)
    print("ok:", len(MANIFEST), "entries written")


if __name__ == "__main__":
    main()
