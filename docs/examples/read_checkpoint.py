#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# read_checkpoint.py: loads a localist checkpoint with h5py alone (docs/checkpoint-format.md):
# verifies every file's SHA-256 against the index, gathers the tensors of all rank files,
# and rebuilds each layer's full qkv_weight and out_weight from the per-block pieces, for
# every LLM of the pool (format 2; a format-1 checkpoint holds main alone).
# Usage: read_checkpoint.py CHECKPOINT_DIR   (prints a summary; exits 1 on a bad file)
import hashlib, json, sys
import h5py
import numpy as np

def main(d):
    idx = h5py.File(f"{d}/index.h5", "r")
    version = int(idx.attrs["format_version"])
    if idx.attrs["format"] != "localist-checkpoint" or version > 2:
        sys.exit(f"{d}: not a localist checkpoint of format 1 or 2")
    files = json.loads(idx.attrs["files_json"])
    for name, info in files.items():
        with open(f"{d}/{name}", "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != info["sha256"]:
                sys.exit(f"{d}/{name}: fails its SHA-256 check")
    tensors = {}
    for name in files:
        if name.startswith("rank-"):
            with h5py.File(f"{d}/{name}", "r") as f:
                f.visititems(lambda k, v: tensors.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    pool = json.loads(idx.attrs["pool_json"])
    for entry in pool:
        llm = entry["name"]
        prefix = "" if len(pool) == 1 else f"{llm}: "
        k_max = len(idx[f"block_map/{llm}/active"])
        layers = sorted({k.split("/")[3] for k in tensors if k.startswith(f"model/{llm}/shared/layer")})
        for layer in layers:
            qkv = np.concatenate([tensors[f"model/{llm}/block/{s}/{layer}/qkv_weight"] for s in range(k_max)], axis=1)
            out = np.concatenate([tensors[f"model/{llm}/block/{s}/{layer}/out_weight"] for s in range(k_max)], axis=1)
            print(f"{prefix}{layer}: qkv_weight {qkv.reshape(-1, qkv.shape[-1]).shape}, out_weight {out.shape}")
        active = [s for s, a in enumerate(idx[f"block_map/{llm}/active"][()]) if a]
        n = sum(1 for k in tensors if k.split("/")[1] == llm)
        print(f"{prefix}step {int(idx.attrs['step'])}, wte {tensors[f'model/{llm}/shared/wte'].shape}, "
              f"active blocks {active}, owners {idx[f'block_map/{llm}/owner'][()].tolist()}, {n} tensors")
        if len(pool) > 1:
            print(f"{prefix}parent {entry.get('parent') or '-'}, branched at step {entry.get('branch_step', 0)}, "
                  f"domains {entry.get('domains') or '(the rest)'}, batch {entry.get('global_batch')}")

if __name__ == "__main__":
    main(sys.argv[1])
