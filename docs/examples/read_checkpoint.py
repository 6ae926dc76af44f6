#!/usr/bin/env python3
# read_checkpoint.py: loads a localist checkpoint with h5py alone (docs/checkpoint-format.md):
# verifies every file's SHA-256 against the index, gathers the tensors of all rank files,
# and rebuilds each layer's full qkv_weight and out_weight from the per-block pieces.
# Usage: read_checkpoint.py CHECKPOINT_DIR   (prints a summary; exits 1 on a bad file)
import hashlib, json, sys
import h5py
import numpy as np

def main(d):
    idx = h5py.File(f"{d}/index.h5", "r")
    if idx.attrs["format"] != "localist-checkpoint" or int(idx.attrs["format_version"]) > 1:
        sys.exit(f"{d}: not a version-1 localist checkpoint")
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
    k_max = len(idx["block_map/main/active"])
    layers = sorted({k.split("/")[3] for k in tensors if k.startswith("model/main/shared/layer")})
    for layer in layers:
        qkv = np.concatenate([tensors[f"model/main/block/{s}/{layer}/qkv_weight"] for s in range(k_max)], axis=1)
        out = np.concatenate([tensors[f"model/main/block/{s}/{layer}/out_weight"] for s in range(k_max)], axis=1)
        print(f"{layer}: qkv_weight {qkv.reshape(-1, qkv.shape[-1]).shape}, out_weight {out.shape}")
    active = [s for s, a in enumerate(idx["block_map/main/active"][()]) if a]
    print(f"step {int(idx.attrs['step'])}, wte {tensors['model/main/shared/wte'].shape}, "
          f"active blocks {active}, owners {idx['block_map/main/owner'][()].tolist()}, {len(tensors)} tensors")

if __name__ == "__main__":
    main(sys.argv[1])
