#!/usr/bin/env python3
"""Evaluate a shadeprop W-MLP checkpoint with NumPy, reading it exactly as PyTorch's
nn.Sequential(Linear, BatchNorm1d, ReLU, Dropout, Linear, BatchNorm1d, ReLU, Dropout, Linear)
would: y = x @ W.T + b, batch norm in eval mode from running statistics.

    pip install safetensors numpy
    python3 scripts/check_checkpoint.py runs/mnist_mlp/checkpoints/best.safetensors [data/mnist]

Prints the test accuracy; it should match what the trainer reported for those weights."""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

path = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else "data/mnist"
sd = {k: v for k, v in load_file(path).items() if not k.startswith(("optimizer.", "callback."))}
with safe_open(path, "np") as f:
    meta = f.metadata()
scaler = json.loads(meta["standardizer"])
assert scaler["kind"] == "global", scaler


def idx(name, offset):
    return np.fromfile(f"{data}/{name}", dtype=np.uint8)[offset:]


x = idx("t10k-images-idx3-ubyte", 16).reshape(-1, 784).astype(np.float32) / 255.0
y = idx("t10k-labels-idx1-ubyte", 8)
h = (x - scaler["mean"]) / scaler["std"]
for lin, bn in [("0", "1"), ("4", "5")]:
    h = h @ sd[f"{lin}.weight"].T + sd[f"{lin}.bias"]
    h = (h - sd[f"{bn}.running_mean"]) / np.sqrt(sd[f"{bn}.running_var"] + 1e-5) * sd[f"{bn}.weight"] + sd[f"{bn}.bias"]
    h = np.maximum(h, 0.0)
z = h @ sd["8.weight"].T + sd["8.bias"]
print(f"{path}: epoch {meta['epoch']}, test accuracy {np.mean(z.argmax(1) == y):.4f} (NumPy, PyTorch layout)")
