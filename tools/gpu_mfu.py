#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# gpu_mfu.py: tokens/s, model FLOPs utilisation and the ratio to plain PyTorch from the
# lines bench_train and baseline_train.py print (tools/gpu_check.sh). Training FLOPs per
# token: 6 N (N = weights of the matrix products, tied head included) + 12 L T d for
# attention (the PaLM convention, full T x T scores counted). Peak: the dense bf16 rate of
# the device named by torch (989 TFLOP/s for H100 SXM and H200; others must be added).
# Usage: gpu_mfu.py "LINES"
import re
import sys

PEAKS = {"H100": 989e12, "H200": 989e12}


def main():
    text = sys.argv[1]
    name = ""
    try:
        import torch
        name = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - no torch or no device: no MFU
        pass
    peak = next((v for k, v in PEAKS.items() if k in name), None)
    base = None
    rows = []
    for line in text.splitlines():
        m = re.search(r"tokens/s (\d+)", line)
        if not m:
            continue
        tps = float(m.group(1))
        ctx = int(re.search(r"context (\d+)", line).group(1))
        vocab = int(re.search(r"vocab (\d+)", line).group(1))
        L, d = 12, 768  # the GPT-2-124M shape of both benchmarks
        flops_tok = 6 * (12 * L * d * d + vocab * d) + 12 * L * ctx * d
        mem = re.search(r"peak_gpu_mb (\d+)", line)
        rows.append((line.split(" ms/")[0], tps, flops_tok, mem.group(1) if mem else "?", line))
        if line.startswith("pytorch-python"):
            base = tps
    print(f"device {name or '?'}; peak {'%.0f TFLOP/s dense bf16' % (peak / 1e12) if peak else 'unknown: no MFU'}")
    for label, tps, flops_tok, mem, _ in rows:
        mfu = f"MFU {100 * tps * flops_tok / peak:.1f}%" if peak else "MFU ?"
        ratio = f"{tps / base:.2f}x PyTorch" if base else "no baseline"
        print(f"{label}: {tps:,.0f} tokens/s, {mfu}, {ratio}, peak GPU memory {mem} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
