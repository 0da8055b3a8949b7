"""Writes a synthetic Llama-shaped (or Qwen3-MoE-shaped) bf16 checkpoint of a given size in Hugging Face layout.

    python Benchmarks/make_synthetic_llama.py OUT_DIR SIZE [--intermediate 11008] [--shard-size 2GB]
    python Benchmarks/make_synthetic_llama.py OUT_DIR SIZE --experts 64 [--intermediate 768]

SIZE is the most the weights may take, in Hugging Face units (`4GB` = 4·10⁹ bytes, `4GiB` =
4·2³⁰; a bare number is GiB). The model has Llama-2-7B's shapes (hidden 4096, 32 heads, no GQA,
intermediate 11008, vocab 32000, untied `lm_head`) and as many decoder layers as fit in SIZE. The
shards (at most `--shard-size` each, split in state_dict order as `save_pretrained` splits them)
come with `model.safetensors.index.json`, `config.json` and `generation_config.json`.

With `--experts E` the model is a Qwen3-MoE instead (`model_type` `qwen3_moe`, Qwen3-30B-A3B's
attention: hidden 2048, 32 heads, 4 KV heads, head dim 128, q/k norms; every layer a MoE block of
E routed experts of intermediate `--intermediate`, default 768, stored per expert as
`mlp.experts.<e>.{gate,up,down}_proj.weight` as the Hub has them, and a router `mlp.gate.weight`).

Values are bf16 of N(0, 0.02²) (norm weights 1 + N(0, 0.02²)), cheap but not degenerate: one
seeded 64 MiB pool of random values is written again and again, each tensor starting at its own
offset in the pool, so no two tensors and no two nearby rows are the same and byte-level
compression finds nothing more than in real weights. The files are written directly (8-byte
header length, JSON header padded to 8 bytes, data), so memory stays at the pool's size and 8 GB
take seconds plus whatever the disk needs. Needs numpy and ml_dtypes.
"""

import argparse
import json
import os
import re
import sys
import time

import ml_dtypes
import numpy as np

HIDDEN, HEADS, KV_HEADS, VOCAB = 4096, 32, 32, 32000
HEAD_DIM = HIDDEN // HEADS
POOL_BYTES = 64 << 20
WRITE_BYTES = 16 << 20


def parse_size(text):
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?B)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 4GiB, 8GB, 4)")
    number, unit = float(match.group(1)), match.group(2) or "GiB"
    power = "KMGT".index(unit[0]) + 1
    return int(number * (1024**power if "i" in unit else 1000**power))


MOE_HIDDEN, MOE_HEADS, MOE_KV_HEADS, MOE_HEAD_DIM = 2048, 32, 4, 128


def moe_config(layers, intermediate, experts):
    return {
        "architectures": ["Qwen3MoeForCausalLM"],
        "attention_bias": False,
        "bos_token_id": 1,
        "decoder_sparse_step": 1,
        "dtype": "bfloat16",
        "eos_token_id": 2,
        "head_dim": MOE_HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": MOE_HIDDEN,
        "intermediate_size": 6144,
        "max_position_embeddings": 4096,
        "mlp_only_layers": [],
        "model_type": "qwen3_moe",
        "moe_intermediate_size": intermediate,
        "norm_topk_prob": True,
        "num_attention_heads": MOE_HEADS,
        "num_experts": experts,
        "num_experts_per_tok": 8,
        "num_hidden_layers": layers,
        "num_key_value_heads": MOE_KV_HEADS,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": False,
        "vocab_size": VOCAB,
    }


def moe_parameters(layers, intermediate, experts):
    """(name, shape) of a Qwen3-MoE checkpoint as the Hub stores it."""
    yield "model.embed_tokens.weight", (VOCAB, MOE_HIDDEN)
    for i in range(layers):
        p = f"model.layers.{i}."
        yield p + "self_attn.q_proj.weight", (MOE_HEADS * MOE_HEAD_DIM, MOE_HIDDEN)
        yield p + "self_attn.k_proj.weight", (MOE_KV_HEADS * MOE_HEAD_DIM, MOE_HIDDEN)
        yield p + "self_attn.v_proj.weight", (MOE_KV_HEADS * MOE_HEAD_DIM, MOE_HIDDEN)
        yield p + "self_attn.o_proj.weight", (MOE_HIDDEN, MOE_HEADS * MOE_HEAD_DIM)
        yield p + "self_attn.q_norm.weight", (MOE_HEAD_DIM,)
        yield p + "self_attn.k_norm.weight", (MOE_HEAD_DIM,)
        for e in range(experts):
            yield p + f"mlp.experts.{e}.gate_proj.weight", (intermediate, MOE_HIDDEN)
            yield p + f"mlp.experts.{e}.up_proj.weight", (intermediate, MOE_HIDDEN)
            yield p + f"mlp.experts.{e}.down_proj.weight", (MOE_HIDDEN, intermediate)
        yield p + "mlp.gate.weight", (experts, MOE_HIDDEN)
        yield p + "input_layernorm.weight", (MOE_HIDDEN,)
        yield p + "post_attention_layernorm.weight", (MOE_HIDDEN,)
    yield "model.norm.weight", (MOE_HIDDEN,)
    yield "lm_head.weight", (VOCAB, MOE_HIDDEN)


def config(layers, intermediate):
    return {
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
        "intermediate_size": intermediate,
        "max_position_embeddings": 4096,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": HEADS,
        "num_hidden_layers": layers,
        "num_key_value_heads": KV_HEADS,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def parameters(layers, intermediate):
    """(name, shape) in the order LlamaForCausalLM.state_dict() lists them."""
    yield "model.embed_tokens.weight", (VOCAB, HIDDEN)
    for i in range(layers):
        p = f"model.layers.{i}."
        yield p + "self_attn.q_proj.weight", (HEADS * HEAD_DIM, HIDDEN)
        yield p + "self_attn.k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)
        yield p + "self_attn.v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN)
        yield p + "self_attn.o_proj.weight", (HIDDEN, HEADS * HEAD_DIM)
        yield p + "mlp.gate_proj.weight", (intermediate, HIDDEN)
        yield p + "mlp.up_proj.weight", (intermediate, HIDDEN)
        yield p + "mlp.down_proj.weight", (HIDDEN, intermediate)
        yield p + "input_layernorm.weight", (HIDDEN,)
        yield p + "post_attention_layernorm.weight", (HIDDEN,)
    yield "model.norm.weight", (HIDDEN,)
    yield "lm_head.weight", (VOCAB, HIDDEN)


def nbytes(shape):
    return 2 * int(np.prod(shape))


def model_bytes(shapes):
    return sum(nbytes(s) for _, s in shapes)


def header_bytes(entries):
    """A safetensors header for [(name, shape)] laid out in order, padded to 8 bytes."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in entries:
        size = nbytes(shape)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text


def write_tensor(f, pool, norm_pool, name, shape, seed):
    """Writes the tensor's bytes from the pool, starting at an offset of its own (whole elements)."""
    size = nbytes(shape)
    source = norm_pool if len(shape) == 1 else pool
    position = (seed * 7_919_993 * 2) % len(source)
    view = memoryview(source)
    while size > 0:
        n = min(size, WRITE_BYTES, len(source) - position)
        f.write(view[position : position + n])
        size -= n
        position = (position + n) % len(source)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("size", type=parse_size)
    parser.add_argument("--intermediate", type=int)
    parser.add_argument("--experts", type=int, help="a Qwen3-MoE model with this many routed experts per layer")
    parser.add_argument("--shard-size", type=parse_size, default=parse_size("2GB"))
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args()

    if args.experts:
        intermediate = args.intermediate or 768
        shapes = lambda layers: moe_parameters(layers, intermediate, args.experts)  # noqa: E731
        make_config = lambda layers: moe_config(layers, intermediate, args.experts)  # noqa: E731
    else:
        intermediate = args.intermediate or 11008
        shapes = lambda layers: parameters(layers, intermediate)  # noqa: E731
        make_config = lambda layers: config(layers, intermediate)  # noqa: E731
    fixed = model_bytes(shapes(0))
    layers = (args.size - fixed) // (model_bytes(shapes(1)) - fixed)
    if layers < 1:
        sys.exit(f"make_synthetic_llama: {args.size} bytes do not hold one decoder layer plus embeddings ({fixed} bytes)")

    start = time.monotonic()
    rng = np.random.default_rng(args.seed)
    pool = (0.02 * rng.standard_normal(POOL_BYTES // 2, dtype=np.float32)).astype(ml_dtypes.bfloat16).tobytes()
    norm_pool = (1.0 + 0.02 * rng.standard_normal(1 << 20, dtype=np.float32)).astype(ml_dtypes.bfloat16).tobytes()

    tensors = list(shapes(layers))
    shards, current, size = [], [], 0
    for name, shape in tensors:
        if current and size + nbytes(shape) > args.shard_size:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes(shape)
    shards.append(current)

    os.makedirs(args.out_dir, exist_ok=True)
    weight_map, seed = {}, 0
    for k, shard in enumerate(shards, start=1):
        file_name = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        with open(os.path.join(args.out_dir, file_name), "wb", buffering=0) as f:
            f.write(header_bytes(shard))
            for name, shape in shard:
                seed += 1
                write_tensor(f, pool, norm_pool, name, shape, seed)
                weight_map[name] = file_name
    total = sum(nbytes(s) for _, s in tensors)
    index = {"metadata": {"total_parameters": total // 2, "total_size": total}, "weight_map": weight_map}
    for file_name, content in [
        ("model.safetensors.index.json", index),
        ("config.json", make_config(layers)),
        ("generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "_from_model_config": True}),
    ]:
        with open(os.path.join(args.out_dir, file_name), "w") as f:
            json.dump(content, f, indent=2, sort_keys=True)
            f.write("\n")
    print(
        f"{args.out_dir}: {layers} layers, {total // 2:,} parameters, {total:,} bytes in {len(shards)} shards, "
        f"{time.monotonic() - start:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
