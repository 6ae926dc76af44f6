# SPDX-License-Identifier: Apache-2.0
# check_hf_export.py: holds an exported model directory, loaded by transformers as a user
# would (AutoModelForCausalLM / AutoTokenizer, trust_remote_code, offline), to what
# localist computed (tests/export/export_reference_main.cpp): logits and per-token losses
# at λ ∈ {0, 0.5, 1} with and without rules within 1e-4 relative, and the traced
# attention, π, gates, blocks and fired rules; optionally greedy generation against
# `localist generate`'s text and the tokenizer against localist's byte ids.
# Usage: check_hf_export.py DIR REFERENCE.safetensors [--generate PROMPT EXPECTED DIAL]
import argparse
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

TOL = 1e-4
failures = []


def rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def check(name, value, limit):
    ok = value <= limit
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.3e} (limit {limit:.0e})")
    if not ok:
        failures.append(name)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("reference")
    p.add_argument("--generate", nargs=3, metavar=("PROMPT", "EXPECTED", "DIAL"))
    a = p.parse_args()
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
        for dial in (0, 5, 10):
            for kind in ("none", "route", "point"):
                want = ref[f"logits/{dial}/{kind}"]
                got = model(tokens, dial=dial / 10, rules=rules_of(kind)).logits
                check(f"logits λ={dial / 10} rules={kind}", rel(got, want), TOL)
                # Per-token losses (the next token of the window as the target).
                lw = F.cross_entropy(want[:, :-1].transpose(1, 2).double(), tokens[:, 1:], reduction="none")
                lg = F.cross_entropy(got[:, :-1].transpose(1, 2).double(), tokens[:, 1:], reduction="none")
                check(f"per-token loss λ={dial / 10} rules={kind}", ((lg - lw).abs() / lw.abs()).max().item(), TOL)
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
    if a.generate:
        prompt, expected, dial = a.generate
        if model.config.vocab_size == 258:  # byte-level: the tokenizer gives localist's ids
            check("byte tokenizer ids differing", float(tok(prompt)["input_ids"] != list(prompt.encode())), 0)
        ids = torch.tensor([tok(prompt)["input_ids"]])
        new = len(expected.encode()) - len(prompt.encode()) if model.config.vocab_size == 258 else 16
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=new, do_sample=False, dial=float(dial))
        text = tok.decode(gen[0], skip_special_tokens=True)
        same = text == expected
        print(f"{'ok  ' if same else 'FAIL'} greedy generate at λ={dial}: {text!r}" +
              ("" if same else f" != localist's {expected!r}"))
        if not same:
            failures.append("generate")
    if failures:
        print(f"check_hf_export: {len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("check_hf_export: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
