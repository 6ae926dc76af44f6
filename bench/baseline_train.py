# SPDX-License-Identifier: Apache-2.0
# baseline_train.py: the plain PyTorch-Python model a user would otherwise write
# today (GPT-2 style: tied embedding, learned positions, pre-LayerNorm, causal multi-head
# attention through F.scaled_dot_product_attention, GELU FFN, AdamW), on the same shape
# as bench_train.cpp, timed the same way (forward, backward, optimizer). Runs on the
# torch of the project's venv, the version LibTorch comes from.
# On a GPU (tools/gpu_check.sh): LOCALIST_BENCH_DEVICE=cuda, LOCALIST_BENCH_SHAPE=gpt2,
# LOCALIST_BENCH_BATCH=N, LOCALIST_BENCH_BF16=1, LOCALIST_BENCH_CONTEXT=T with
# LOCALIST_BENCH_TOKENS=N (batch N / T), as bench_train.cpp (gpt2: GPT-2's vocabulary of
# 50,257); prints peak resident memory, on CUDA the peak GPU memory and the SDPA kernel run.
# Usage: python3 baseline_train.py [steps] [warmup] [threads]
import contextlib
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.proj = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(att.transpose(1, 2).reshape(B, T, d))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab=258, d=256, layers=4, heads=4, ctx=256):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads, 4 * d) for _ in range(layers))
        self.lnf = nn.LayerNorm(d)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for b in self.blocks:
            x = b(x)
        return self.lnf(x) @ self.wte.weight.t()


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    torch.manual_seed(1)
    dev = torch.device(os.environ.get("LOCALIST_BENCH_DEVICE", "cpu"))
    bf16 = os.environ.get("LOCALIST_BENCH_BF16") == "1" and dev.type == "cuda"
    B, T, V = 8, 256, 258
    shape = dict(d=256, layers=4, heads=4, ctx=256)
    if os.environ.get("LOCALIST_BENCH_SHAPE") == "gpt2":
        T, V, shape = 1024, 50257, dict(d=768, layers=12, heads=12, ctx=1024)
    B = int(os.environ.get("LOCALIST_BENCH_BATCH", B))
    if os.environ.get("LOCALIST_BENCH_CONTEXT"):
        T = int(os.environ["LOCALIST_BENCH_CONTEXT"])
        shape["ctx"] = T
        B = max(1, int(os.environ.get("LOCALIST_BENCH_TOKENS", "2048")) // T)
    model = GPT(vocab=V, **shape).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    data = torch.randint(V, (B, T + 1)).to(dev)
    x, y = data[:, :-1], data[:, 1:].contiguous()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    cast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    fwd = bwd = optm = 0.0
    for s in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        with cast():
            logits = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1))
        sync()
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        sync()
        t3 = time.perf_counter()
        if s >= warmup:
            fwd, bwd, optm = fwd + t1 - t0, bwd + t2 - t1, optm + t3 - t2
    total = (fwd + bwd + optm) / steps * 1000
    gpu = ""
    if dev.type == "cuda":
        # Which SDPA kernel ran: the kernel names of one profiled forward and backward.
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            with cast():
                loss = F.cross_entropy(model(x).float().reshape(-1, V), y.reshape(-1))
            loss.backward()
            sync()
        names = " ".join(e.key.lower() for e in prof.key_averages())
        kinds = [k for k, pat in (("cudnn", "cudnn"), ("flash", "flash"), ("efficient", "fmha_cutlass"),
                                  ("efficient", "efficient"), ("math", "bmm")) if pat in names]
        gpu = f" peak_gpu_mb {torch.cuda.max_memory_allocated(dev) / 2**20:.0f} sdpa {kinds[0] if kinds else 'unknown'}"
    params = sum(p.numel() for p in model.parameters())
    print(f"pytorch-python ms/step {total:.1f} (forward {fwd / steps * 1000:.1f}, backward {bwd / steps * 1000:.1f}, "
          f"optimizer {optm / steps * 1000:.1f}) tokens/s {B * T / total * 1000:.0f} params {params} "
          f"device {dev}{' bf16' if bf16 else ''} batch {B} context {T} "
          f"vocab {V} peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}{gpu}")


if __name__ == "__main__":
    main()
