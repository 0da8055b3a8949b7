"""Writes Examples/tiny-llama: a small random Llama checkpoint in Hugging Face layout.

    python Examples/make_tiny_llama.py [OUT_DIR]

bf16 weights (seeded, so the files are the same on every run), split into two shards with
`model.safetensors.index.json` the way `save_pretrained(max_shard_size=...)` splits them, plus
config.json and generation_config.json. Sizes are multiples of 128 so that every torchao scheme
applies. Needs numpy, ml_dtypes and safetensors (Tests/Interop/requirements.txt).
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors import TensorSpec, serialize_file

HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, VOCAB = 128, 256, 2, 4, 2, 512
HEAD_DIM = HIDDEN // HEADS
MAX_SHARD_BYTES = 600_000

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "dtype": "bfloat16",
    "eos_token_id": 2,
    "head_dim": HEAD_DIM,
    "hidden_act": "silu",
    "hidden_size": HIDDEN,
    "initializer_range": 0.02,
    "intermediate_size": INTERMEDIATE,
    "max_position_embeddings": 256,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "num_key_value_heads": KV_HEADS,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "use_cache": True,
    "vocab_size": VOCAB,
}


def parameters():
    """(name, shape) in the order LlamaForCausalLM.state_dict() lists them."""
    yield "model.embed_tokens.weight", (VOCAB, HIDDEN)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        yield p + "self_attn.q_proj.weight", (HEADS * HEAD_DIM, HIDDEN)
        yield p + "self_attn.k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)
        yield p + "self_attn.v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)
        yield p + "self_attn.o_proj.weight", (HIDDEN, HEADS * HEAD_DIM)
        yield p + "mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)
        yield p + "mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)
        yield p + "mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)
        yield p + "input_layernorm.weight", (HIDDEN,)
        yield p + "post_attention_layernorm.weight", (HIDDEN,)
    yield "model.norm.weight", (HIDDEN,)
    yield "lm_head.weight", (VOCAB, HIDDEN)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20261130)
    tensors = {}
    for name, shape in parameters():
        if name.endswith("norm.weight"):
            values = 1.0 + 0.02 * rng.standard_normal(shape)
        else:
            values = 0.02 * rng.standard_normal(shape)
        tensors[name] = np.ascontiguousarray(values.astype(ml_dtypes.bfloat16))

    shards, current, size = [], {}, 0
    for name, array in tensors.items():
        if current and size + array.nbytes > MAX_SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[name] = array
        size += array.nbytes
    shards.append(current)

    weight_map = {}
    for k, shard in enumerate(shards, start=1):
        file_name = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        specs = {
            name: TensorSpec(dtype="bfloat16", shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes)
            for name, a in shard.items()
        }
        serialize_file(specs, os.path.join(out_dir, file_name), metadata={"format": "pt"})
        weight_map.update({name: file_name for name in shard})
    index = {"metadata": {"total_size": sum(a.nbytes for a in tensors.values())}, "weight_map": weight_map}
    for file_name, content in [
        ("model.safetensors.index.json", index),
        ("config.json", CONFIG),
        ("generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "_from_model_config": True}),
    ]:
        with open(os.path.join(out_dir, file_name), "w") as f:
            json.dump(content, f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "tiny-llama"))
