#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# compare_losses.py: the per-step training losses of two runs' metrics.jsonl over a range
# of steps, side by side, with the largest absolute and relative difference. Used by
# tools/gpu_check.sh (a checkpoint written on one device and resumed on the other).
# Usage: compare_losses.py A/metrics.jsonl B/metrics.jsonl FIRST LAST [LABEL]
# Exit 1 when a step is missing from either run.
import json
import sys


def losses(path):
    out = {}
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("event") == "step" and "loss" in r:
                out[int(r["step"])] = float(r["loss"])  # the last record of a step wins (a resumed run)
    return out


def main():
    a, b = losses(sys.argv[1]), losses(sys.argv[2])
    first, last = int(sys.argv[3]), int(sys.argv[4])
    label = sys.argv[5] if len(sys.argv) > 5 else ""
    missing = [s for s in range(first, last + 1) if s not in a or s not in b]
    if missing:
        print(f"compare_losses {label}: steps {missing} missing in one of the runs")
        return 1
    diff = max(abs(a[s] - b[s]) for s in range(first, last + 1))
    rel = max(abs(a[s] - b[s]) / abs(a[s]) for s in range(first, last + 1))
    print(f"compare_losses {label}: steps {first}-{last}: first {a[first]:.6f} vs {b[first]:.6f}, "
          f"last {a[last]:.6f} vs {b[last]:.6f}; max |diff| {diff:.3e} (relative {rel:.3e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
