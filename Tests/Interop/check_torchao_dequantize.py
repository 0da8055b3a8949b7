"""Compares safeshard's `--recipe dequantize` of torchao checkpoints with torchao's own dequantize().

    python Tests/Interop/check_torchao_dequantize.py OUT_DIR INPUT ...

Each INPUT is a torchao safetensors file (Tests/Fixtures/torchao/<fixture>/expected.safetensors);
OUT_DIR/<fixture> is what `safeshard convert INPUT OUT_DIR/<fixture> --recipe dequantize` wrote.
torchao 0.18 loads INPUT (`unflatten_tensor_state_dict`); every tensor subclass must be in the
output, bit for bit `tensor.dequantize()` in the weight's dtype (Int4Tensor has no dequantize() in
torchao 0.18: shared/reference/aohelpers.manual_dequantize, the spec's formula), NaN compared as
NaN; every plain tensor must be stored unchanged. Needs the reference stack (torch, torchao,
safetensors) and SAFESHARD_REFERENCE (default ../shared/reference) for aohelpers. The last line is
`all equal` or the number of differing tensors; the exit status is 0 only when all are equal.
"""

import os
import sys

import torch
from safetensors import safe_open
from torchao.prototype.safetensors.safetensors_support import unflatten_tensor_state_dict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("SAFESHARD_REFERENCE", os.path.join(HERE, "../../../shared/reference")))
import aohelpers as H  # noqa: E402


def load(path):
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def same(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    nan = torch.isnan(a.float())
    if not torch.equal(nan, torch.isnan(b.float())):
        return False
    bits = {torch.bfloat16: torch.int16, torch.float16: torch.int16, torch.float32: torch.int32}[a.dtype]
    return torch.equal(a.view(bits)[~nan], b.view(bits)[~nan])


def main(out_dir, inputs):
    differing = checked = 0
    for path in inputs:
        fixture = os.path.basename(os.path.dirname(path))
        loaded = unflatten_tensor_state_dict(*load(path))[0]
        written = {}
        out = os.path.join(out_dir, fixture)
        for name in sorted(os.listdir(out)):
            if name.endswith(".safetensors"):
                written.update(load(os.path.join(out, name))[0])
        for name, value in loaded.items():
            if type(value) is torch.Tensor:
                expected = value
            elif type(value).__name__ == "Int4Tensor":
                expected = H.manual_dequantize(value)
            else:
                expected = value.dequantize()
            checked += 1
            if name not in written or not same(written[name], expected.contiguous()):
                differing += 1
                got = written.get(name)
                print(f"{fixture} {name}: {type(value).__name__} differs "
                      f"(got {None if got is None else (got.dtype, tuple(got.shape))}, "
                      f"want {expected.dtype, tuple(expected.shape)})")
        extra = set(written) - set(loaded)
        if extra:
            differing += len(extra)
            print(f"{fixture}: tensors torchao does not have: {sorted(extra)}")
    print(f"{checked} tensors of {len(inputs)} checkpoints checked")
    print("all equal" if differing == 0 else f"{differing} tensors differ")
    return 0 if differing == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
