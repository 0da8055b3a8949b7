"""Dev check of MoE conversions against the goldens in Tests/Fixtures/moe (needs the reference stack).

    python check_moe.py SAFESHARD [--fixtures DIR] [--archs A ...] [--recipes R ...]
    python check_moe.py CONVERTED_DIR [...]

SAFESHARD is a safeshard executable: every raw fixture Tests/Fixtures/moe/<arch>/raw is converted
with `SAFESHARD convert RAW OUT --recipe R` for every golden <arch>/<R>.json. CONVERTED_DIR instead
holds finished outputs as CONVERTED_DIR/<arch>/<R>/ (what `make_moe_fixtures.py --keep DIR`
writes with transformers itself, which is how this check checks itself). Per case:

 (i)  OUT's tensors (dtype, shape, sha256 of the data bytes), `__metadata__` (values parsed as
      JSON; `tensor_names` compared as a set, its order is free) and config.json's
      `quantization_config` equal the golden manifest;
 (ii) `AutoModelForCausalLM.from_pretrained(OUT)` (no other argument) loads, and its logits on a
      fixed input equal (torch.equal) those of the raw model quantized in memory by transformers +
      torchao (same recipe, same `_default` patch and CPU enablers as make_moe_fixtures.py), both run
      with `experts_implementation="eager"`, and its parameters equal the in-memory ones part for
      part (bf16 logits can hide a one-code difference in an expert). Where no CPU forward exists
      (Int4; quantized Llama 4 experts; research/moe.md 4.7) only the parameters are compared.

One line per case, last line "N passed, M failed".
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_moe_fixtures as F  # noqa: E402  (recipes, the _default patch, enablers, manifest)

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, TorchAoConfig  # noqa: E402


def compare_manifest(got, want):
    """A list of differences between two manifests (empty when equal)."""
    diffs = []
    gt, wt = got["tensors"], want["tensors"]
    for k in sorted(set(wt) - set(gt)):
        diffs.append(f"missing tensor {k}")
    for k in sorted(set(gt) - set(wt)):
        diffs.append(f"extra tensor {k}")
    for k in sorted(set(gt) & set(wt)):
        for field in ("dtype", "shape", "sha256"):
            if gt[k][field] != wt[k][field]:
                diffs.append(f"tensor {k}: {field} {gt[k][field]} != {wt[k][field]}")
                break

    def norm(meta):
        m = dict(meta)
        if "tensor_names" in m:
            m["tensor_names"] = sorted(m["tensor_names"])
        return m

    gm, wm = norm(got["metadata"]), norm(want["metadata"])
    for k in sorted(set(gm) | set(wm)):
        if gm.get(k) != wm.get(k):
            diffs.append(f"metadata {k}: {json.dumps(gm.get(k))[:120]} != {json.dumps(wm.get(k))[:120]}")
    if got["quantization_config"] != want["quantization_config"]:
        diffs.append("quantization_config differs")
    return diffs


def eager(model):
    try:
        model.set_experts_implementation("eager")
        return "eager"
    except (ValueError, AttributeError):
        return "its only experts forward"  # Llama 4 has one forward and no switch


def forward(model, tokens):
    how = eager(model)
    with torch.no_grad():
        return model(tokens).logits.float(), how


def compare_model(raw, out, cfg, enabler):
    """(ii): the reloaded OUT against the in-memory transformers quantization. Returns (ok, how)."""
    if enabler == "f8dyn":
        F.H.enable_cpu_float8_dynamic()
    elif enabler == "mslk":
        F.H.install_mslk_emulation()
    reference = AutoModelForCausalLM.from_pretrained(raw, quantization_config=TorchAoConfig(cfg))
    ours = AutoModelForCausalLM.from_pretrained(out)
    tokens = torch.randint(0, reference.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(1))
    sd1, sd2 = reference.state_dict(), ours.state_dict()
    if set(sd1) != set(sd2):
        return False, f"reloaded parameter names differ: {sorted(set(sd1) ^ set(sd2))[:3]}"
    bad = [k for k in sd1 if not F.same_param(sd1[k], sd2[k])]
    params = "parameters equal" if not bad else f"parameters differ: {bad[:3]}"
    try:
        want, how = forward(reference, tokens)
    except Exception as e:  # no CPU forward for this weight type: the parameters must do
        return not bad, f"{params}; no CPU forward ({type(e).__name__})"
    got, _ = forward(ours, tokens)
    if torch.equal(got, want):
        return not bad, f"{params}; logits equal ({how})"
    return False, f"{params}; logits differ, max |d| = {(got - want).abs().max().item():.3g}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source", help="a safeshard executable, or a directory of converted outputs <arch>/<recipe>/")
    ap.add_argument("--fixtures", default=os.path.join(F.REPO, "Tests/Fixtures/moe"))
    ap.add_argument("--archs", nargs="*")
    ap.add_argument("--recipes", nargs="*")
    args = ap.parse_args()
    F.patch_default_weights_only()
    binary = not os.path.isdir(args.source)
    passed = failed = 0

    def report(ok, arch, recipe, what):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} {arch:12s} {recipe:28s} {what}", flush=True)
        passed, failed = passed + bool(ok), failed + (not ok)

    for arch in args.archs or F.ARCHS:
        raw = os.path.join(args.fixtures, arch, "raw")
        for recipe, (cfg, enabler) in F.recipes(arch).items():
            if args.recipes and recipe not in args.recipes:
                continue
            golden = os.path.join(args.fixtures, arch, f"{recipe}.json")
            if not os.path.exists(golden):
                report(False, arch, recipe, f"no golden {golden}")
                continue
            with open(golden) as f:
                want = json.load(f)
            tmp = tempfile.mkdtemp()
            try:
                if binary:
                    out = os.path.join(tmp, "out")
                    run = subprocess.run(
                        [args.source, "convert", raw, out, "--recipe", recipe], capture_output=True, text=True
                    )
                    if run.returncode != 0:
                        report(False, arch, recipe, f"convert exited {run.returncode}: {run.stderr.strip()[-200:]}")
                        continue
                else:
                    out = os.path.join(args.source, arch, recipe)
                diffs = compare_manifest(F.manifest(out, arch, recipe), want)
                report(not diffs, arch, recipe, "files equal the golden" if not diffs else "; ".join(diffs[:3]))
                try:
                    ok, how = compare_model(raw, out, cfg, enabler)
                except Exception as e:
                    ok, how = False, f"load/forward failed: {type(e).__name__}: {str(e)[:200]}"
                report(ok, arch, recipe, how)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
