"""Loads a safeshard output with transformers and compares it with transformers + torchao.

    python check_transformers.py OUTPUT INPUT

OUTPUT must load with `AutoModelForCausalLM.from_pretrained(OUTPUT)` and no other argument. The
reference is `from_pretrained(INPUT, quantization_config=TorchAoConfig(<the same config>))`
saved with `save_pretrained` and loaded back: every saved tensor and the `__metadata__` of the
two saves must be equal (tensor for tensor, bit for bit; metadata as parsed JSON), and so must the
logits of both models on a few tokens. Last line: "N passed, M failed".
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.environ.get("SAFESHARD_REFERENCE", os.path.join(os.path.dirname(__file__), "../../../shared/reference")))
import aohelpers as H  # noqa: E402  (CPU enablers for the float8/MX/NVFP4 kernels)

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from torchao.core.config import config_from_dict  # noqa: E402
from transformers import AutoModelForCausalLM, TorchAoConfig  # noqa: E402

H.enable_all()


def saved(directory):
    """Every tensor of a saved model and its merged metadata."""
    tensors, metadata = {}, {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            with safe_open(os.path.join(directory, name), "pt") as f:
                metadata.update(f.metadata() or {})
                for key in f.keys():
                    tensors[key] = f.get_tensor(key)
    return tensors, metadata


def same(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.is_floating_point and a.element_size() in (2, 4):
        view = torch.int16 if a.element_size() == 2 else torch.int32
        return torch.equal(a.view(view), b.view(view))
    return torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def main(output, input_dir):
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + what)
        passed, failed = passed + bool(ok), failed + (not ok)

    with open(os.path.join(output, "config.json")) as f:
        qconfig = json.load(f).get("quantization_config")
    ours = AutoModelForCausalLM.from_pretrained(output)
    check(True, "from_pretrained(OUTPUT) loads")
    if qconfig is None:
        reference = AutoModelForCausalLM.from_pretrained(input_dir)
    else:
        config = config_from_dict(qconfig["quant_type"]["default"])
        reference = AutoModelForCausalLM.from_pretrained(input_dir, quantization_config=TorchAoConfig(config))
    with tempfile.TemporaryDirectory() as saved_dir:
        reference.save_pretrained(saved_dir, safe_serialization=True)
        their_tensors, their_metadata = saved(saved_dir)
        with open(os.path.join(saved_dir, "config.json")) as f:
            their_qconfig = json.load(f).get("quantization_config")
    our_tensors, our_metadata = saved(output)
    check(sorted(our_tensors) == sorted(their_tensors), f"the same {len(their_tensors)} tensor names")
    for name in sorted(their_tensors):
        if name in our_tensors:
            check(same(our_tensors[name], their_tensors[name]), f"tensor {name}")
    # tensor_names lists the state dict in the model's module order, which only the model class
    # knows; safeshard lists the input's order. Loaders only iterate it, so compare it as a set.
    def parsed(metadata):
        result = {k: (json.loads(v) if k != "format" else v) for k, v in metadata.items()}
        result["tensor_names"] = sorted(result.get("tensor_names", []))
        return result

    check(parsed(our_metadata) == parsed(their_metadata), "__metadata__ equal as parsed JSON (tensor_names as a set)")
    check(qconfig == their_qconfig, "quantization_config equal")
    tokens = torch.tensor([[1, 17, 42, 99, 7, 3]])
    try:
        with torch.no_grad():
            b = reference(tokens).logits
    except Exception as error:  # some formats' matmuls need a GPU (float8 per-tensor, MX, NVFP4)
        print(f"skip logits: torchao cannot run this format's forward on CPU ({type(error).__name__}: {error})")
    else:
        with torch.no_grad():
            a = ours(tokens).logits
        check(torch.equal(a, b) or (torch.isnan(a).any() and torch.isnan(b).any()), "logits equal")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
