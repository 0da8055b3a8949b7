#!/usr/bin/env bash
# Converts the same synthetic Llama-shaped weights once from PyTorch pickles and once from
# safetensors, with the same recipe and memory budget, and prints wall time, CPU and peak RSS of
# each, and whether the outputs hold the same tensors. The inputs are sharded as transformers < 5
# sharded them (`huggingface_hub.save_torch_state_dict`, `pytorch_model-0000k-of-0000N.bin` +
# `pytorch_model.bin.index.json`, and the same with safetensors), in shards of at most SHARD
# (default 2GB); SHARD=none writes one `pytorch_model.bin` (zip64 past 4 GiB) and one
# `model.safetensors`.
#
#   PYTHON=/path/to/venv/bin/python bash Benchmarks/pickle-bench.sh [GiB, default 2] [recipe, default int8-weight-only]
#
# Needs a Python with torch and safetensors (the reference stack, ../shared/reference/README.md)
# and huggingface_hub to write the inputs. Environment: SHARD, BENCH_DIR (default $TMPDIR or /tmp), MEMORY (256MiB),
# ROUNDS (3), SAFESHARD (a built binary; default: build it in release with --scratch-path .build-release).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gib="${1:-2}"
recipe="${2:-int8-weight-only}"
memory="${MEMORY:-256MiB}"
python="${PYTHON:?set PYTHON to a python with torch and safetensors}"
if [[ -z "${SAFESHARD:-}" ]]; then
  swift build -c release --product safeshard --scratch-path .build-release >&2
  SAFESHARD="$(swift build -c release --scratch-path .build-release --show-bin-path)/safeshard"
fi
dir="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/pickle-bench.XXXXXX")"
trap 'rm -rf "$dir"' EXIT

"$python" - "$gib" "$dir" "${SHARD:-2GB}" <<'PY'
import json, os, sys, torch
from huggingface_hub import save_torch_state_dict
from safetensors.torch import save_file
gib, out, shard = float(sys.argv[1]), sys.argv[2], sys.argv[3]
hidden, inter, vocab = 2048, 5632, 32000
per_layer = 4 * hidden * hidden + 3 * hidden * inter
layers = max(1, int((gib * 2**30 / 2 - 2 * vocab * hidden) / per_layer))
torch.manual_seed(0)
sd = {"model.embed_tokens.weight": torch.randn(vocab, hidden, dtype=torch.bfloat16)}
for i in range(layers):
    p = f"model.layers.{i}."
    for n in ["q_proj", "k_proj", "v_proj", "o_proj"]:
        sd[p + f"self_attn.{n}.weight"] = torch.randn(hidden, hidden, dtype=torch.bfloat16)
    sd[p + "mlp.gate_proj.weight"] = torch.randn(inter, hidden, dtype=torch.bfloat16)
    sd[p + "mlp.up_proj.weight"] = torch.randn(inter, hidden, dtype=torch.bfloat16)
    sd[p + "mlp.down_proj.weight"] = torch.randn(hidden, inter, dtype=torch.bfloat16)
    sd[p + "input_layernorm.weight"] = torch.ones(hidden, dtype=torch.bfloat16)
    sd[p + "post_attention_layernorm.weight"] = torch.ones(hidden, dtype=torch.bfloat16)
sd["model.norm.weight"] = torch.ones(hidden, dtype=torch.bfloat16)
sd["lm_head.weight"] = torch.randn(vocab, hidden, dtype=torch.bfloat16)
config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
          "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": 16,
          "num_key_value_heads": 16, "vocab_size": vocab, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
for name in ["pickle", "safetensors"]:
    os.makedirs(f"{out}/{name}")
    with open(f"{out}/{name}/config.json", "w") as f:
        json.dump(config, f)
if shard == "none":
    torch.save(sd, f"{out}/pickle/pytorch_model.bin")
    save_file(sd, f"{out}/safetensors/model.safetensors", metadata={"format": "pt"})
else:
    save_torch_state_dict(sd, f"{out}/pickle", safe_serialization=False, max_shard_size=shard)
    save_torch_state_dict(sd, f"{out}/safetensors", safe_serialization=True, max_shard_size=shard)
PY

echo "$(du -sh "$dir/pickle" | cut -f1) of weights in $(ls "$dir/pickle" | grep -c '\.bin$') .bin file(s), recipe $recipe, --memory $memory, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| input | wall (s) | CPU (s) | peak RSS (MiB) |"
echo "|---|---:|---:|---:|"
rounds="${ROUNDS:-3}"
: >"$dir/walls"
for round in $(seq "$rounds"); do
  for name in pickle safetensors; do
    rm -rf "$dir/out-$name"
    sync
    /usr/bin/time -o "$dir/time" -f "%e %U %S %M" "$SAFESHARD" convert "$dir/$name" "$dir/out-$name" \
      --recipe "$recipe" --memory "$memory" --progress none >/dev/null
    read -r wall user sys rss <"$dir/time"
    echo "$name $wall" >>"$dir/walls"
    echo "| $name (round $round) | $wall | $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') | $((rss / 1024)) |"
  done
done
median() { grep "^$1 " "$dir/walls" | cut -d' ' -f2 | sort -g | sed -n "$(((rounds + 1) / 2))p"; }
echo
echo "median wall: pickle $(median pickle) s, safetensors $(median safetensors) s," \
  "ratio $(awk -v p="$(median pickle)" -v s="$(median safetensors)" 'BEGIN { printf "%.2f", p / s }') (target <= 1.2)"
"$python" "$root/Tests/Interop/compare_to_golden.py" "$dir/out-pickle" "$dir/out-safetensors" --names-as-set && echo "outputs: the same tensors and metadata"
