#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""check_tensorboard.py RUN_DIR [RUN_DIR ...]: reads each run's TensorBoard event files
with TensorBoard's own reader (EventAccumulator, nothing sampled away) and checks them
against the run's metrics.jsonl: one event file; every number of every record is a
scalar at its step equal to the value in float32, once; decisions and run-level records
are text events holding the record; no scalar the file does not have. The flattening here is
written from docs/operations.md, not from the C++ writer. Exit 0 when all runs agree."""
import json
import os
import sys

from tensorboard.backend.event_processing import event_accumulator as ea

import numpy as np

METADATA = {"event", "llm", "step", "wall_time", "rank"}


def flatten(tag, v, out):
    if isinstance(v, bool):
        out[tag] = 1.0 if v else 0.0
    elif isinstance(v, (int, float)):
        out[tag] = float(v)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            flatten(f"{tag}/{i}", x, out)
    elif isinstance(v, dict):
        for k, x in v.items():
            flatten(f"{tag}/{k}", x, out)


def expected(metrics):
    """(tag, step) -> value of every scalar, and (tag, step, record) of every text event:
    step and eval records are scalars under LLM/ and LLM/eval/; any other record is a text
    event under LLM/EVENT (/rank_R when it has a rank) with its numbers as scalars below
    it, at its step or, without one, at the last step logged before it."""
    scalars, texts, last = {}, [], 0
    for line in open(metrics):
        r = json.loads(line)
        ev, llm = r.get("event"), r.get("llm", "run")
        step = r["step"] if isinstance(r.get("step"), int) else last
        if ev in ("step", "eval"):
            prefix = f"{llm}/" + ("eval/" if ev == "eval" else "")
        else:
            tag = f"{llm}/{ev}" + (f"/rank_{r['rank']}" if isinstance(r.get("rank"), int) else "")
            texts.append((tag, step, r))
            prefix = tag + "/"
        flat = {}
        for k, v in r.items():
            if k not in METADATA:
                flatten(prefix + k, v, flat)
        for tag, v in flat.items():
            if (tag, step) in scalars:
                raise SystemExit(f"{metrics}: {(tag, step)} twice in metrics.jsonl itself")
            scalars[(tag, step)] = v
        if isinstance(r.get("step"), int):
            last = max(last, r["step"])
    return scalars, texts


def check(run):
    metrics, tb = os.path.join(run, "metrics.jsonl"), os.path.join(run, "tensorboard")
    files = [f for f in os.listdir(tb) if "tfevents" in f]
    if len(files) != 1:
        return [f"{tb}: {len(files)} event files, expected 1: {files}"]
    acc = ea.EventAccumulator(tb, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    scalars, texts = expected(metrics)
    errors, seen = [], {}
    tags = acc.Tags()
    for tag in tags["scalars"]:
        for e in acc.Scalars(tag):
            key = (tag, e.step)
            seen[key] = seen.get(key, 0) + 1
    for key, v in scalars.items():
        if key not in seen:
            errors.append(f"{run}: scalar {key} of metrics.jsonl missing")
            continue
        if seen[key] != 1:
            errors.append(f"{run}: scalar {key} {seen[key]} times")
        got = [e.value for e in acc.Scalars(key[0]) if e.step == key[1]][0]
        if got != np.float32(v):
            errors.append(f"{run}: {key} is {got}, metrics.jsonl has {v}")
    extra = sorted(set(seen) - set(scalars))
    if extra:
        errors.append(f"{run}: {len(extra)} scalars not in metrics.jsonl, e.g. {extra[:3]}")
    for tag, step, r in texts:
        found = [e for e in acc.Tensors(tag) if e.step == step] if tag in tags["tensors"] else []
        if len(found) != 1:
            errors.append(f"{run}: text {tag} at step {step}: {len(found)} events")
            continue
        text = found[0].tensor_proto.string_val[0].decode()
        if json.loads("\n".join(l[4:] for l in text.splitlines())) != {k: v for k, v in r.items() if k != "wall_time"}:
            errors.append(f"{run}: text {tag} at step {step} is not the record")
    print(f"{run}: {len(scalars)} scalars over {len({t for t, _ in scalars})} tags, {len(texts)} text events: "
          + ("ok" if not errors else f"{len(errors)} problems"))
    return errors


def main():
    errors = []
    for run in sys.argv[1:]:
        errors += check(run)
    for e in errors[:20]:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
