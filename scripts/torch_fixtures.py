#!/usr/bin/env python3
"""Write the PyTorch interoperability fixtures of tests/interop.rs with real PyTorch:
for three small nn.Sequential models (an MLP with BatchNorm1d and Dropout, a CNN with
Conv2d, BatchNorm2d, MaxPool2d and Flatten, an MLP with LayerNorm and Tanh), a few training steps (so that the batch-norm
running statistics are not their initial values), then

  tests/fixtures/torch_<model>.safetensors   safetensors.torch.save_file(model.state_dict())
  tests/fixtures/torch_<model>.json          fixed inputs and the eval-mode logits

With `--check FILE MODEL`, load a file that shadeprop exported into the same nn.Sequential
with `load_state_dict(strict=True)` and print the largest difference between PyTorch's
eval-mode logits on the fixture's inputs and shadeprop's (FILE's `.json` beside it, written
by the test). Needs torch and safetensors:

  python3 -m venv /tmp/t && /tmp/t/bin/pip install torch safetensors
  /tmp/t/bin/python scripts/torch_fixtures.py            # regenerate the fixtures
  /tmp/t/bin/python scripts/torch_fixtures.py ln         # only the named ones
  (Debian's python3-torch and python3-safetensors packages work too.)
  /tmp/t/bin/python scripts/torch_fixtures.py --check out.safetensors mlp
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
        torch.nn.Dropout(0.3), torch.nn.Linear(16, 3))


def cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(36, 3))


def ln():
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.LayerNorm(16), torch.nn.Tanh(),
        torch.nn.Linear(16, 3))


MODELS = {"mlp": (mlp, (6,)), "cnn": (cnn, (1, 8, 8)), "ln": (ln, (6,))}


def make(name):
    ctor, shape = MODELS[name]
    torch.manual_seed(0)
    model = ctor()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(20):
        x = torch.randn(16, *shape) * 2 + 0.5
        y = torch.randint(0, 3, (16,))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    x = torch.randn(5, *shape)
    with torch.no_grad():
        logits = model(x)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(HERE / f"torch_{name}.safetensors"))
    (HERE / f"torch_{name}.json").write_text(json.dumps({
        "torch": torch.__version__,
        "input_shape": list(shape),
        "inputs": x.reshape(5, -1).tolist(),
        "logits": logits.tolist(),
    }))
    print(f"wrote tests/fixtures/torch_{name}.safetensors and .json")


def check(path, name):
    ctor, shape = MODELS[name]
    model = ctor()
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    fx = json.loads((HERE / f"torch_{name}.json").read_text())
    ours = json.loads(Path(path).with_suffix(".json").read_text())["logits"]
    x = torch.tensor(fx["inputs"]).reshape(-1, *shape)
    with torch.no_grad():
        theirs = model(x)
    diff = (theirs - torch.tensor(ours)).abs().max().item()
    print(f"{path}: loaded with strict=True; largest |PyTorch - shadeprop| logit difference {diff:.3g}")
    return diff


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        d = check(sys.argv[2], sys.argv[3])
        sys.exit(0 if d < 1e-4 else 1)
    HERE.mkdir(parents=True, exist_ok=True)
    # Every model, or those named: `torch_fixtures.py ln`.
    for n in sys.argv[1:] or MODELS:
        make(n)
