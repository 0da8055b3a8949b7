"""Checks safeshard's reading of PyTorch pickles against torch, torchao and transformers.

    python Tests/Interop/check_pickle.py [SAFESHARD]

Development only (not CI): needs the reference stack of ../shared/reference/README.md. For every
pickle fixture of Tests/Fixtures/pickle, converts it with `--recipe reshard` and compares the
output, tensor for tensor and bit for bit, with what the reference stack loads from the same file:
- plain pickles and the sharded/single transformers models: `torch.load(weights_only=True)`, each
  tensor made contiguous (a model directory without its tied `lm_head.weight`);
- the transformers models also with `AutoModelForCausalLM.from_pretrained(INPUT).state_dict()`;
- torchao pickles: `flatten_tensor_state_dict(torch.load(...))`, tensors and metadata.
Last line: "N passed, M failed".
"""

import glob
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from torchao.prototype.safetensors.safetensors_support import flatten_tensor_state_dict
from transformers import AutoModelForCausalLM

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
fixtures = os.path.join(root, "Tests/Fixtures/pickle")
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug/safeshard")
results = {"passed": 0, "failed": 0}


def check(ok, what):
    results["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + what)


def converted(path, out):
    subprocess.run([binary, "convert", path, out, "--recipe", "reshard", "--progress", "none"], check=True,
                   stdout=subprocess.DEVNULL)
    tensors, metadata = {}, {}
    for name in sorted(glob.glob(os.path.join(out, "*.safetensors"))):
        with safe_open(name, "pt") as f:
            metadata.update(f.metadata() or {})
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    return tensors, metadata


def same(a, b):
    def raw(t):
        return t.contiguous().reshape(-1).view(torch.uint8)

    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(raw(a), raw(b))


def compare(label, ours, theirs):
    check(sorted(ours) == sorted(theirs), f"{label}: the same {len(theirs)} names")
    check(all(same(ours[k], theirs[k]) for k in theirs if k in ours), f"{label}: every tensor equal")


def loaded(path):
    files = sorted(glob.glob(os.path.join(path, "pytorch_model*.bin"))) if os.path.isdir(path) else [path]
    state = {}
    for f in files:
        state.update(torch.load(f, weights_only=True, map_location="cpu"))
    return state


with tempfile.TemporaryDirectory() as scratch:
    for name in ["plain", "module_sd", "legacy", "proto4", "py2_strings", "many"]:
        path = os.path.join(fixtures, name + ".pt")
        try:
            theirs = loaded(path)
        except Exception as error:  # torch refuses protocol 4
            print(f"skip {name}.pt: torch.load refuses it ({type(error).__name__})")
            continue
        ours, _ = converted(path, os.path.join(scratch, name))
        compare(f"{name}.pt vs torch.load", ours, theirs)
    for name in ["hf-single", "hf-legacy", "hf-sharded"]:
        path = os.path.join(fixtures, name)
        ours, _ = converted(path, os.path.join(scratch, name))
        theirs = loaded(path)
        theirs.pop("lm_head.weight")  # tied to the embedding: save_pretrained leaves it out
        compare(f"{name} vs torch.load", ours, theirs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
        state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
        compare(f"{name} vs from_pretrained", ours, state)
    for name in sorted(os.listdir(os.path.join(fixtures, "ao"))):
        path = os.path.join(fixtures, "ao", name)
        ours, metadata = converted(path, os.path.join(scratch, "ao-" + name))
        theirs, their_metadata = flatten_tensor_state_dict(
            torch.load(os.path.join(path, "pytorch_model.bin"), weights_only=False, map_location="cpu"))
        compare(f"ao/{name} vs flatten_tensor_state_dict", ours, theirs)
        metadata.pop("format", None)
        check({k: json.loads(v) for k, v in metadata.items()} == {k: json.loads(v) for k, v in their_metadata.items()},
              f"ao/{name}: metadata equal as parsed JSON")

print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
