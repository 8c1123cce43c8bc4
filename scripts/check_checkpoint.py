#!/usr/bin/env python3
"""Evaluate a shadeprop checkpoint or weights file of an MLP on the MNIST test set with
NumPy, reading it exactly as PyTorch's nn.Sequential would: y = x @ W.T + b for each Linear,
batch norm in eval mode from the running statistics.

    pip install safetensors numpy
    python3 scripts/check_checkpoint.py runs/mnist_mlp/checkpoints/best.safetensors [data/mnist]

The layers come from the file's `shadeprop` metadata when it has one (`shadeprop export`
writes the PyTorch modules by index); otherwise every Linear (and the BatchNorm1d right after
it) is read in index order, with ReLU between them — the layout of W-MLP and of
`model.preset = "mlp"`. The input scaling is the file's `standardizer` (global or per
feature; none when absent). Prints the test accuracy; it should match what the trainer
reported for those weights. Convolutional models are not evaluated here (use PyTorch:
`shadeprop export` prints the nn.Sequential to build)."""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

path = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else "data/mnist"
sd = {k: v for k, v in load_file(path).items() if not k.startswith(("optimizer.", "callback."))}
with safe_open(path, "np") as f:
    meta = f.metadata() or {}
info = json.loads(meta.get("shadeprop", "null")) or {}
scaler = json.loads(meta.get("standardizer", "null")) or (info.get("preprocessing") or {}).get("standardizer")

if any(v.ndim == 4 for v in sd.values()):
    sys.exit(f"{path}: a convolutional model; evaluate it in PyTorch (shadeprop export prints the nn.Sequential)")

modules = (info.get("architecture") or {}).get("torch")
if modules is None:
    # Linear layers (2-D weights) in index order, a BatchNorm1d when it follows, ReLU between.
    idx = sorted({int(k.split(".")[0]) for k in sd})
    modules, last = [], -1
    for i in idx:
        kind = "Linear" if sd[f"{i}.weight"].ndim == 2 else "BatchNorm1d"
        if kind == "Linear" and modules:
            modules += ["ReLU()"] * (i - last - 1)
        else:
            modules += ["Identity()"] * (i - last - 1)
        modules.append(kind + "()")
        last = i


def images(name, offset):
    return np.fromfile(f"{data}/{name}", dtype=np.uint8)[offset:]


x = images("t10k-images-idx3-ubyte", 16).reshape(10000, -1).astype(np.float32) / 255.0
y = images("t10k-labels-idx1-ubyte", 8)
if scaler is None:
    h = x
elif scaler["kind"] in ("global", "per_feature"):
    h = (x - np.asarray(scaler["mean"], np.float32)) / np.asarray(scaler["std"], np.float32)
else:
    lo, hi = np.asarray(scaler["min"], np.float32), np.asarray(scaler["max"], np.float32)
    h = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
for i, m in enumerate(modules):
    name = m.split("(")[0].strip()
    if name == "Linear":
        h = h @ sd[f"{i}.weight"].T + sd.get(f"{i}.bias", 0.0)
    elif name == "BatchNorm1d":
        h = (h - sd[f"{i}.running_mean"]) / np.sqrt(sd[f"{i}.running_var"] + 1e-5) * sd[f"{i}.weight"] + sd[f"{i}.bias"]
    elif name == "ReLU":
        h = np.maximum(h, 0.0)
    elif name == "Tanh":
        h = np.tanh(h)
    elif name == "Sigmoid":
        h = 1.0 / (1.0 + np.exp(-h))
    elif name in ("Dropout", "Identity", "Flatten"):
        pass
    else:
        sys.exit(f"{path}: layer {i} is {m}, which this NumPy check does not evaluate")
epoch = meta.get("epoch", "-")
print(f"{path}: epoch {epoch}, test accuracy {np.mean(h.argmax(1) == y):.4f} (NumPy, PyTorch layout)")
