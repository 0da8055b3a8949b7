#!/usr/bin/env bash
# Converts the same synthetic Llama-shaped weights once from block-scaled FP8 (DeepSeek-V3's
# layout: F8_E4M3 weights, F32 weight_scale_inv in blocks of 128×128, quantization_config
# quant_method fp8) and once from their bfloat16 values (the twin), with the recipes `dequantize`
# and `float8-dynamic` and the same memory budget, and prints wall time, CPU and peak RSS of each,
# and whether each pair of outputs holds the same tensors.
#
#   PYTHON=/path/to/venv/bin/python bash Benchmarks/fp8-bench.sh [GiB of bf16 weights, default 4]
#
# Needs a Python with torch and safetensors (the reference stack, ../shared/reference/README.md)
# to write the inputs. Environment: BENCH_DIR (default $TMPDIR or /tmp), MEMORY (256MiB),
# SAFESHARD (a built binary; default: build it in release with --scratch-path .build-release).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gib="${1:-4}"
memory="${MEMORY:-256MiB}"
python="${PYTHON:?set PYTHON to a python with torch and safetensors}"
if [[ -z "${SAFESHARD:-}" ]]; then
  swift build -c release --product safeshard --scratch-path .build-release >&2
  SAFESHARD="$(swift build -c release --scratch-path .build-release --show-bin-path)/safeshard"
fi
dir="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/fp8-bench.XXXXXX")"
trap 'rm -rf "$dir"' EXIT

"$python" - "$gib" "$dir" <<'PY'
import json, os, sys, torch
from safetensors.torch import save_file
gib, out = float(sys.argv[1]), sys.argv[2]
hidden, inter, vocab, block = 2048, 5632, 32000, 128
per_layer = 4 * hidden * hidden + 3 * hidden * inter
layers = max(1, int((gib * 2**30 / 2 - 2 * vocab * hidden) / per_layer))
torch.manual_seed(0)

def quantize(w):
    """DeepSeek's block quantization: scale = amax / 448 per 128×128 block."""
    m, n = w.shape
    blocks = w.float().reshape(m // block, block, n // block, block)
    scale = (blocks.abs().amax(dim=(1, 3)) / 448).clamp(min=1e-12)
    q = (blocks / scale[:, None, :, None]).reshape(m, n).to(torch.float8_e4m3fn)
    deq = (q.float() * scale.repeat_interleave(block, 0).repeat_interleave(block, 1)).to(torch.bfloat16)
    return q, scale, deq

fp8, bf16 = {}, {}
def plain(name, t):
    fp8[name] = bf16[name] = t
def linear(name, m, n):
    q, scale, deq = quantize(torch.randn(m, n, dtype=torch.bfloat16))
    fp8[name], fp8[name + "_scale_inv"], bf16[name] = q, scale, deq

plain("model.embed_tokens.weight", torch.randn(vocab, hidden, dtype=torch.bfloat16))
for i in range(layers):
    p = f"model.layers.{i}."
    for n in ["q_proj", "k_proj", "v_proj", "o_proj"]:
        linear(p + f"self_attn.{n}.weight", hidden, hidden)
    linear(p + "mlp.gate_proj.weight", inter, hidden)
    linear(p + "mlp.up_proj.weight", inter, hidden)
    linear(p + "mlp.down_proj.weight", hidden, inter)
    plain(p + "input_layernorm.weight", torch.ones(hidden, dtype=torch.bfloat16))
    plain(p + "post_attention_layernorm.weight", torch.ones(hidden, dtype=torch.bfloat16))
plain("model.norm.weight", torch.ones(hidden, dtype=torch.bfloat16))
plain("lm_head.weight", torch.randn(vocab, hidden, dtype=torch.bfloat16))
config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
          "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": 16,
          "num_key_value_heads": 16, "vocab_size": vocab, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
for name, sd in [("fp8", fp8), ("bf16", bf16)]:
    os.makedirs(f"{out}/{name}")
    c = dict(config)
    if name == "fp8":
        c["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                    "weight_block_size": [block, block]}
    with open(f"{out}/{name}/config.json", "w") as f:
        json.dump(c, f)
    save_file(sd, f"{out}/{name}/model.safetensors", metadata={"format": "pt"})
PY

echo "$(du -sh "$dir/fp8/model.safetensors" | cut -f1) FP8 input, $(du -sh "$dir/bf16/model.safetensors" | cut -f1) bf16 twin, --memory $memory, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| recipe | input | wall (s) | CPU (s) | peak RSS (MiB) |"
echo "|---|---|---:|---:|---:|"
for recipe in dequantize float8-dynamic; do
  for round in 1 2; do
    for name in fp8 bf16; do
      rm -rf "$dir/out-$recipe-$name"
      sync
      /usr/bin/time -o "$dir/time" -f "%e %U %S %M" "$SAFESHARD" convert "$dir/$name" "$dir/out-$recipe-$name" \
        --recipe "$recipe" --memory "$memory" --progress none >/dev/null
      read -r wall user sys rss <"$dir/time"
      echo "| $recipe | $name (round $round) | $wall | $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') | $((rss / 1024)) |"
    done
  done
done
echo
for recipe in dequantize float8-dynamic; do
  "$python" "$root/Tests/Interop/compare_to_golden.py" "$dir/out-$recipe-fp8" "$dir/out-$recipe-bf16" --names-as-set \
    && echo "$recipe: the FP8 input and its bf16 twin give the same tensors, metadata and quantization_config"
done
