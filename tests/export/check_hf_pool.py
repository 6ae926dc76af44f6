# SPDX-License-Identifier: Apache-2.0
# check_hf_pool.py: holds an exported pool (`localist export --pool`), loaded through its
# pool_localist.py and transformers, to localist: every LLM's bits on the held-out windows
# within 1e-4 relative, the same LLM chosen for every window by argmin code length on the
# first 16 tokens, the mixture's bits within 1e-4 (tests/export/export_reference_main.cpp
# --pool), and the argmin@16 and mixture columns of `localist eval`'s pool.json per domain.
# Usage: check_hf_pool.py POOL_DIR REFERENCE.safetensors DIAL [EVAL_POOL_JSON]
import importlib.util
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

TOL = 1e-4


def main():
    directory, reference, dial = sys.argv[1], sys.argv[2], float(sys.argv[3])
    spec = importlib.util.spec_from_file_location("pool_localist", os.path.join(directory, "pool_localist.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pool = module.LocalistPool.from_pretrained(directory, dtype=torch.float32)
    ref = load_file(reference)
    with safe_open(reference, "pt") as f:
        domains = f.metadata()["domains"].split(",")
    bits = pool.token_bits(ref["windows"], dial=dial)
    failures = []

    def check(name, value, limit):
        ok = value <= limit
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.3e} (limit {limit:.0e})")
        if not ok:
            failures.append(name)

    check("priors", (torch.tensor(pool.priors, dtype=torch.float64) - ref["priors"]).abs().max().item(), 1e-12)
    check("per-token bits, every LLM", ((bits - ref["bits"]).abs() / ref["bits"].abs().clamp_min(1e-3)).max().item(),
          TOL)
    routed = pool.route_argmin(bits, 16)
    check("windows argmin@16 routes elsewhere", float((routed != ref["argmin"]).sum()), 0)
    mixture = pool.mixture_bits(bits)
    check("mixture bits", ((mixture - ref["mixture_bits"]).abs() / ref["mixture_bits"].abs().clamp_min(1e-3)).max().item(),
          TOL)
    if len(sys.argv) > 4:  # localist eval's table: bits per token by domain
        table = json.load(open(sys.argv[4]))
        cols = table["columns"]
        per_window = {"argmin@16": bits.gather(0, routed.view(1, -1, 1).expand(1, -1, bits.size(2)))[0],
                      "mixture": mixture}
        for row in table["domains"]:
            sel = torch.ones(bits.size(1), dtype=torch.bool) if row["domain"] == "all" else \
                ref["domain"] == domains.index(row["domain"])
            for col in ("argmin@16", "mixture"):
                got = per_window[col][sel].sum().item() / per_window[col][sel].numel()
                want = row["bits_per_token"][col]
                check(f"eval's {col} bits/token, {row['domain']}", abs(got - want) / abs(want), TOL)
        assert cols[:len(pool.names)] == pool.names, (cols, pool.names)
    if failures:
        print(f"check_hf_pool: {len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("check_hf_pool: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
