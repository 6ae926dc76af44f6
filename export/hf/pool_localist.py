# SPDX-License-Identifier: Apache-2.0
# pool_localist.py: a pool of localist LLMs exported by `localist export --pool` (docs/export.md):
# every LLM is a subdirectory that transformers loads on its own; this class routes a
# text as localist does (DESIGN.md §1 M11 step 6): by its domain tag to the LLM that owns
# the domain, else by code length — argmin over the LLMs of the bits of the first m
# tokens, or the Bayesian mixture with weights ∝ prior · 2^(−code length of the prefix).
# Limits: windows are scored untagged (no domain routes), as `localist eval` scores a pool.
import json
import math
import os

import torch
import torch.nn.functional as F


class LocalistPool:
    def __init__(self, directory, models, pool):
        self.directory = directory
        self.names = [llm["name"] for llm in pool["llms"]]
        self.models = models  # name -> LocalistForCausalLM
        self.owner = {d: llm["name"] for llm in pool["llms"] for d in llm["domains"]}
        self.priors = [float(p) for p in pool["priors"]]
        self.route_prefix = int(pool["route_prefix"])

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        from transformers import AutoModelForCausalLM
        with open(os.path.join(directory, "pool.json")) as f:
            pool = json.load(f)
        models = {llm["name"]: AutoModelForCausalLM.from_pretrained(os.path.join(directory, llm["dir"]),
                                                                   trust_remote_code=True, **kwargs).eval()
                  for llm in pool["llms"]}
        return cls(directory, models, pool)

    @torch.no_grad()
    def token_bits(self, windows, dial=None):
        """windows: (N, T+1) token ids. Returns (L, N, T) float64: each LLM's bits for tokens 1..T."""
        out = []
        for name in self.names:
            logits = self.models[name](windows[:, :-1], dial=dial).logits
            nats = F.cross_entropy(logits.double().transpose(1, 2), windows[:, 1:], reduction="none")
            out.append(nats / math.log(2.0))
        return torch.stack(out)

    def route_argmin(self, bits, m=None):
        """(N): index of the LLM with the shortest code length on the first m positions (ties: the lower index)."""
        m = self.route_prefix if m is None else m
        n = max(1, min(m, bits.size(2)))
        return bits[:, :, :n].sum(2).argmin(0)

    def mixture_bits(self, bits):
        """(N, T): the mixture's bits per position, weights ∝ prior · 2^(−bits of the positions before)."""
        prior = torch.tensor(self.priors, dtype=torch.float64)
        log_prior = torch.log(prior / prior.sum()).view(-1, 1, 1)
        lw = log_prior - math.log(2.0) * (bits.cumsum(2) - bits)
        return -(torch.logsumexp(lw - math.log(2.0) * bits, 0) - torch.logsumexp(lw, 0)) / math.log(2.0)

    def route(self, input_ids, domain=None, dial=None):
        """The LLM that answers a prompt: the owner of its domain, else the shortest code length."""
        if domain is not None:
            return self.owner.get(domain, "main")
        if input_ids.size(1) < 2:
            return "main"
        context = self.models[self.names[0]].config.context
        bits = self.token_bits(input_ids[:, -(context + 1):], dial=dial)
        return self.names[int(bits.sum(2)[:, 0].argmin())]
