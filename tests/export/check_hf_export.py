# SPDX-License-Identifier: Apache-2.0
# check_hf_export.py: holds an exported model directory, loaded by transformers as a user
# would (AutoModelForCausalLM / AutoTokenizer, trust_remote_code, offline), to what
# localist computed (tests/export/export_reference_main.cpp): logits and per-token losses
# at λ ∈ {0, 0.5, 1} with and without rules within 1e-4 relative, and the traced
# attention, π, gates, blocks and fired rules; optionally greedy generation against
# `localist generate`'s text and the tokenizer against localist's byte ids.
# With --checkpoint, every tensor of model.safetensors must equal the checkpoint's, read
# with h5py from its rank files, bit for bit (fp32) or as its bf16 rounding (bf16).
# Usage: check_hf_export.py DIR REFERENCE.safetensors [--generate PROMPT EXPECTED_FILE DIAL TOKENS]
#        [--checkpoint CKPT_DIR LLM] [--tolerance T] [--gpt2 SOURCE_DIR]
#        check_hf_export.py --batch FILE   (one such argument list per line)
import argparse
import glob
import json
import os
import shlex
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

TOL = 1e-4
failures = []
label = ""  # the directory being checked (a batch checks several)


def rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def check(name, value, limit):
    ok = value <= limit  # NaN fails
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.3e} (limit {limit:.0e})")
    if not ok:
        failures.append(f"{label}: {name}")


def checkpoint_tensors(ckpt, llm, config):
    """The checkpoint's parameters of `llm` under the exported names (h5py, every rank file)."""
    import h5py
    import numpy as np
    shared, blocks = {}, {}
    for path in sorted(glob.glob(os.path.join(ckpt, "rank-*.h5"))):
        with h5py.File(path, "r") as f:
            if f"model/{llm}" not in f:
                continue
            g = f[f"model/{llm}"]
            if "shared" in g:
                g["shared"].visititems(lambda n, d: shared.__setitem__(n, np.array(d)) if hasattr(d, "shape") else None)
            if "block" in g:
                g["block"].visititems(lambda n, d: blocks.__setitem__(n, np.array(d)) if hasattr(d, "shape") else None)
    names = {"wte": "model.wte.weight", "wpe": "model.wpe.weight", "lnf_weight": "model.lnf.weight",
             "lnf_bias": "model.lnf.bias"}
    per_layer = {"ln1_weight": "ln1.weight", "ln1_bias": "ln1.bias", "router_weight": "router.weight",
                 "out_bias": "attention.out.bias", "ln2_weight": "ln2.weight", "ln2_bias": "ln2.bias",
                 "fc_weight": "fc.weight", "fc_bias": "fc.bias", "proj_weight": "proj.weight", "proj_bias": "proj.bias"}
    out = {}
    for name, value in shared.items():
        if name in names:
            out[names[name]] = torch.from_numpy(value)
        else:
            layer, param = name.split("/")
            out[f"model.layers.{layer[5:]}.{per_layer[param]}"] = torch.from_numpy(value)
    for l in range(config["n_layers"]):  # the slots' rows, in slot order, q | k | v
        slots = [f"{k}/layer{l}" for k in range(config["k_max"])]
        qkv_w = np.stack([blocks[f"{s}/qkv_weight"] for s in slots], 1)  # (3, k_max, hb*dh, d)
        qkv_b = np.stack([blocks[f"{s}/qkv_bias"] for s in slots], 1)
        out[f"model.layers.{l}.attention.qkv.weight"] = torch.from_numpy(qkv_w.reshape(-1, qkv_w.shape[-1]))
        out[f"model.layers.{l}.attention.qkv.bias"] = torch.from_numpy(qkv_b.reshape(-1))
        out[f"model.layers.{l}.attention.out.weight"] = torch.from_numpy(
            np.concatenate([blocks[f"{s}/out_weight"] for s in slots], 1))
    return out


def check_round_trip(directory, ckpt, llm):
    config = json.load(open(os.path.join(directory, "config.json")))
    exported = load_file(os.path.join(directory, "model.safetensors"))
    want = checkpoint_tensors(ckpt, llm, config)
    check("tensors missing or extra", float(len(set(exported) ^ set(want))), 0)
    bf16 = config.get("dtype") == "bfloat16"
    differing = [n for n in want if n in exported and not torch.equal(
        exported[n], want[n].to(torch.bfloat16) if bf16 else want[n])]
    check(f"round trip: tensors not equal bit for bit ({'bf16' if bf16 else 'fp32'})", float(len(differing)), 0)
    if differing:
        print("  differing:", ", ".join(differing[:8]))


def check_directory(argv):
    """One exported directory against its reference (the arguments of one check)."""
    global TOL
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("reference")
    p.add_argument("--generate", nargs=4, metavar=("PROMPT", "EXPECTED_FILE", "DIAL", "TOKENS"),
                   help="EXPECTED_FILE: the bytes `localist generate` printed (without the final newline)")
    p.add_argument("--checkpoint", nargs=2, metavar=("CKPT_DIR", "LLM"))
    p.add_argument("--tolerance", type=float, default=TOL)
    p.add_argument("--gpt2", metavar="SOURCE_DIR", help="an imported GPT-2: its logits in transformers at λ = 0")
    a = p.parse_args(argv)
    global label
    label = a.dir
    print(f"== {a.dir}")
    TOL = a.tolerance
    if a.checkpoint:
        check_round_trip(a.dir, *a.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(a.dir, trust_remote_code=True, dtype=torch.float32).eval()
    ref = load_file(a.reference)
    Rules = sys.modules[type(model).__module__].Rules
    tokens = ref["tokens"]

    def rules_of(kind):
        if kind == "none":
            return None
        get = lambda k: ref.get(f"rules/{kind}/{k}")  # noqa: E731
        pt = get("point_targets")
        return Rules(route_block=get("route_block"), point_targets=None if pt is None else pt.bool(),
                     point_block=get("point_block"))

    with torch.no_grad():
        if a.gpt2:  # a GPT-2 directory (a source imported, or --format gpt2) in transformers' own code
            from transformers import GPT2LMHeadModel
            source = GPT2LMHeadModel.from_pretrained(a.gpt2, dtype=torch.float32).eval()
            want = source(tokens).logits
            check("GPT-2: localist's logits at λ=0 against transformers' GPT2LMHeadModel",
                  rel(ref["logits/0/none"], want), TOL)
            check("GPT-2: the exported model's logits at λ=0 against GPT2LMHeadModel",
                  rel(model(tokens, dial=0.0).logits, want), TOL)
        for dial in (0, 5, 10):
            for kind in ("none", "route", "point"):
                want = ref[f"logits/{dial}/{kind}"]
                got = model(tokens, dial=dial / 10, rules=rules_of(kind)).logits
                check(f"logits λ={dial / 10} rules={kind}", rel(got, want), TOL)
                # Per-token losses (the next token of the window as the target).
                lw = F.cross_entropy(want[:, :-1].transpose(1, 2).double(), tokens[:, 1:], reduction="none")
                lg = F.cross_entropy(got[:, :-1].transpose(1, 2).double(), tokens[:, 1:], reduction="none")
                check(f"per-token loss λ={dial / 10} rules={kind}", ((lg - lw).abs() / lw.abs()).max().item(), TOL)
        for key in [k for k in ref if k.startswith("domain/")]:
            domain = key.split("/", 1)[1]
            got = model(tokens, dial=0.5, domain=domain).logits
            check(f"logits λ=0.5 domain={domain} (its recruited block)", rel(got, ref[key]), TOL)
        out = model(tokens, dial=0.5, rules=rules_of("both"), output_attentions=True, output_routing=True)
        check("traced logits λ=0.5 route+point", rel(out.logits, ref["trace/logits"]), TOL)
        for l, (alpha, routing) in enumerate(zip(out.attentions, out.routing)):
            check(f"layer {l} attention", (alpha - ref[f"trace/{l}/alpha"]).abs().max().item(), TOL)
            check(f"layer {l} pi", (routing.pi - ref[f"trace/{l}/pi"]).abs().max().item(), TOL)
            check(f"layer {l} gate", (routing.gate - ref[f"trace/{l}/gate"]).abs().max().item(), TOL)
            check(f"layer {l} blocks differing", float((routing.block != ref[f"trace/{l}/block"]).sum()), 0)
            check(f"layer {l} fired rules differing",
                  float((routing.rule_fired != ref[f"trace/{l}/rule_fired"].bool()).sum()), 0)

    tok = AutoTokenizer.from_pretrained(a.dir, trust_remote_code=True)
    with safe_open(a.reference, "pt") as f:
        sample = f.metadata()["sample_text"]
    sample_ids = tok(sample, add_special_tokens=False)["input_ids"]
    check("tokenizer: ids differing from localist's on the sample text",
          float(sample_ids != ref["tokenizer/sample_ids"].tolist()), 0)
    check("tokenizer: decode(encode(sample)) differs", float(tok.decode(sample_ids) != sample), 0)
    if a.gpt2 and os.path.exists(os.path.join(a.gpt2, "tokenizer_config.json")):
        plain = AutoTokenizer.from_pretrained(a.gpt2)  # no remote code: transformers' own tokenizer classes
        check("GPT-2 directory's tokenizer: ids differing from localist's on the sample text",
              float(plain(sample, add_special_tokens=False)["input_ids"] != ref["tokenizer/sample_ids"].tolist()), 0)
    if a.generate:
        prompt, expected_file, dial, new = a.generate
        expected_bytes = open(expected_file, "rb").read()
        expected = expected_bytes.decode("utf-8", "replace")
        ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            # localist generates through document boundaries: no end-of-sequence stop here either.
            gen = model.generate(ids, max_new_tokens=int(new), do_sample=False, dial=float(dial), eos_token_id=None)
        text = tok.decode(gen[0], skip_special_tokens=True)
        if model.config.vocab_size == 258:  # bytes, which need not be UTF-8: compare them as bytes
            same = bytes(i for i in gen[0].tolist() if i < 256) == expected_bytes
        else:
            same = text == expected
        print(f"{'ok  ' if same else 'FAIL'} greedy generate at λ={dial}: {text!r}" +
              ("" if same else f" != localist's {expected!r}"))
        if not same:
            failures.append(f"{label}: generate")


def main():
    # --batch FILE: one check per line (its arguments, shell-quoted), in one process: the
    # imports of torch and transformers cost ~4 s a process.
    if len(sys.argv) == 3 and sys.argv[1] == "--batch":
        for line in open(sys.argv[2]):
            if line.strip():
                check_directory(shlex.split(line))
    else:
        check_directory(sys.argv[1:])
    if failures:
        print(f"check_hf_export: {len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("check_hf_export: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
