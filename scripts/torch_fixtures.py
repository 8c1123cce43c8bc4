#!/usr/bin/env python3
"""Write the PyTorch interoperability fixtures of tests/interop.rs with real PyTorch:
for six small nn.Sequential models (an MLP with BatchNorm1d and Dropout, a CNN with
Conv2d, BatchNorm2d, MaxPool2d and Flatten, an MLP with LayerNorm and Tanh, a two-layer
nn.LSTM and a two-layer nn.GRU on sequences of 6 steps of 5 features, batch_first, each
followed by the last step's output and a Linear; an nn.Embedding of 12 tokens into 4
values before an nn.LSTM over 6 token ids), a few training steps (so that the batch-norm
running statistics are not their initial values), then

  tests/fixtures/torch_<model>.safetensors   safetensors.torch.save_file(model.state_dict())
  tests/fixtures/torch_<model>.json          fixed inputs and the eval-mode logits (for lstm
                                             and gru also "sequence": the recurrent layer's
                                             output at every step, [5, T·H] row-major)

Also tests/fixtures/torch_rnn_state.json and torch_{lstm,gru}_state.safetensors: a
two-layer nn.LSTM(5, 8) and nn.GRU(5, 8) (batch_first) run from a given initial state
(h0, c0) on fixed inputs, with the output at every step.

With `--check FILE MODEL`, load a file that shadeprop exported into the same nn.Sequential
with `load_state_dict(strict=True)` and print the largest difference between PyTorch's
eval-mode logits on the fixture's inputs and shadeprop's (FILE's `.json` beside it, written
by the test). Needs torch and safetensors:

  python3 -m venv /tmp/t && /tmp/t/bin/pip install torch safetensors
  /tmp/t/bin/python scripts/torch_fixtures.py            # regenerate the fixtures
  /tmp/t/bin/python scripts/torch_fixtures.py ln         # only the named ones
  (Debian's python3-torch works too; bookworm has no python3-safetensors, so take it from
  pip: python3 -m venv --system-site-packages /tmp/t && /tmp/t/bin/pip install safetensors.)
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


class LastStep(torch.nn.Module):
    """out[:, -1] of an nn.LSTM's or nn.GRU's (output, state) tuple (batch_first)."""

    def forward(self, x):
        return x[0][:, -1]


def lstm():
    return torch.nn.Sequential(
        torch.nn.LSTM(5, 8, num_layers=2, batch_first=True), LastStep(),
        torch.nn.Linear(8, 3))


def gru():
    return torch.nn.Sequential(
        torch.nn.GRU(5, 8, num_layers=2, batch_first=True), LastStep(),
        torch.nn.Linear(8, 3))


def emb():
    return torch.nn.Sequential(
        torch.nn.Embedding(12, 4), torch.nn.LSTM(4, 8, batch_first=True), LastStep(),
        torch.nn.Linear(8, 3))


# Inputs of the recurrent models: [T, F] = 6 steps of 5 features; of the embedding model,
# 6 token ids in [0, 12).
MODELS = {"mlp": (mlp, (6,)), "cnn": (cnn, (1, 8, 8)), "ln": (ln, (6,)),
          "lstm": (lstm, (6, 5)), "gru": (gru, (6, 5)), "emb": (emb, (6,))}
RECURRENT = ("lstm", "gru")
TOKENS = {"emb": 12}


def inputs(name, n, shape):
    """n random inputs: token ids for a model that starts with an embedding."""
    if name in TOKENS:
        return torch.randint(0, TOKENS[name], (n, *shape))
    return torch.randn(n, *shape) * 2 + 0.5


def make(name):
    ctor, shape = MODELS[name]
    torch.manual_seed(0)
    model = ctor()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(20):
        x = inputs(name, 16, shape)
        y = torch.randint(0, 3, (16,))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    x = torch.randint(0, TOKENS[name], (5, *shape)) if name in TOKENS else torch.randn(5, *shape)
    with torch.no_grad():
        logits = model(x)
    state = model.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()},
              str(HERE / f"torch_{name}.safetensors"))
    fx = {
        "torch": torch.__version__,
        "input_shape": list(shape),
        "inputs": x.reshape(5, -1).tolist(),
        "logits": logits.tolist(),
    }
    if name in RECURRENT:
        # The recurrent layer's output at every step: [5, T, H] as [5, T·H].
        with torch.no_grad():
            fx["sequence"] = model[0](x)[0].reshape(5, -1).tolist()
        for k, v in state.items():
            print(f"  {k} {list(v.shape)}")
    (HERE / f"torch_{name}.json").write_text(json.dumps(fx))
    print(f"wrote tests/fixtures/torch_{name}.safetensors and .json")


def rnn_state():
    """nn.LSTM / nn.GRU from a given initial state: the weights (keys prefixed "0."), and
    per cell the inputs [5, 6·5], the state [5, layers·S] laid out per layer (h, then c
    for the LSTM) as shadeprop's rnn_with_state takes it, and the output [5, 6·8]."""
    fx = {"torch": torch.__version__}
    for name, ctor in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
        torch.manual_seed(5)
        m = ctor(5, 8, num_layers=2, batch_first=True)
        x = torch.randn(5, 6, 5)
        h0 = torch.randn(2, 5, 8)
        c0 = torch.randn(2, 5, 8)
        with torch.no_grad():
            out = m(x, (h0, c0))[0] if name == "lstm" else m(x, h0)[0]
        parts = []
        for layer in range(2):
            parts.append(h0[layer])
            if name == "lstm":
                parts.append(c0[layer])
        state = torch.cat(parts, dim=1)
        save_file({f"0.{k}": v.contiguous() for k, v in m.state_dict().items()},
                  str(HERE / f"torch_{name}_state.safetensors"))
        fx[name] = {
            "inputs": x.reshape(5, -1).tolist(),
            "state": state.tolist(),
            "sequence": out.reshape(5, -1).tolist(),
        }
    (HERE / "torch_rnn_state.json").write_text(json.dumps(fx))
    print("wrote tests/fixtures/torch_rnn_state.json and torch_{lstm,gru}_state.safetensors")


def check(path, name):
    ctor, shape = MODELS[name]
    model = ctor()
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    fx = json.loads((HERE / f"torch_{name}.json").read_text())
    ours = json.loads(Path(path).with_suffix(".json").read_text())["logits"]
    x = torch.tensor(fx["inputs"]).reshape(-1, *shape)
    if name in TOKENS:
        x = x.long()
    with torch.no_grad():
        theirs = model(x)
    diff = (theirs - torch.tensor(ours)).abs().max().item()
    print(f"{path}: loaded with strict=True; largest |PyTorch - shadeprop| logit difference {diff:.3g}")
    seq = json.loads(Path(path).with_suffix(".json").read_text()).get("sequence")
    if name in RECURRENT and seq is not None:
        # When the test also wrote the recurrent layer's per-step outputs, compare them too.
        with torch.no_grad():
            theirs = model[0](x)[0].reshape(len(x), -1)
        d = (theirs - torch.tensor(seq)).abs().max().item()
        print(f"{path}: largest |PyTorch - shadeprop| per-step output difference {d:.3g}")
        diff = max(diff, d)
    return diff


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        d = check(sys.argv[2], sys.argv[3])
        sys.exit(0 if d < 1e-4 else 1)
    HERE.mkdir(parents=True, exist_ok=True)
    # Every model, or those named: `torch_fixtures.py ln` (`rnn_state`: the initial-state
    # fixture).
    for n in sys.argv[1:] or [*MODELS, "rnn_state"]:
        if n == "rnn_state":
            rnn_state()
        else:
            make(n)
