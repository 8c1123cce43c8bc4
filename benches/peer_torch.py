#!/usr/bin/env python3
"""PyTorch peer of the benchmark workloads of docs/benchmarks.md, for ratios against
benches/gemm.rs and benches/train.rs measured on the same machine.

- W-GEMM: f32 C = A·B at square sizes and the W-MLP shapes (those of the backward pass
  with transposed operands too), TF32 off; median milliseconds of 5 timed runs of `reps`
  products each (CUDA events on the GPU, a wall clock on the CPU); GFLOP/s = 2·M·N·K / s.
- W-MLP: 784 → Linear 512 → BatchNorm → ReLU → Dropout(0.5) → Linear 512 → BatchNorm →
  ReLU → Dropout(0.5) → Linear 10 on the 54,000-image training split of MNIST (90%,
  a seeded permutation), standardized with its mean and std; softmax cross-entropy; SGD
  momentum 0.9, lr 0.05 (times batch / 128), coupled L2 weight decay 5e-4 on weights only,
  global-norm clipping at 1.0 every step; batch 128 reshuffled every epoch; He-normal
  weights, zero biases. Figure: training samples/s, median of `--runs` epochs, each timed
  from its first step to a synchronization after its last, after 8 warm-up steps.
- W-CNN: Conv 5×5 1→32 (no padding), ReLU, MaxPool 2 → Conv 5×5 32→64, ReLU, MaxPool 2 →
  Flatten (1024) → Linear 512, ReLU, Dropout(0.5) → Linear 10; per-sample augmentation on
  the device every batch (rotation uniform in ±10°, counter-clockwise on screen for
  positive angles, translation uniform in ±2 pixels, bilinear, zero fill:
  affine_grid/grid_sample with align_corners=False), then standardization; the optimizer
  of W-MLP.
- W-STEP: the W-MLP step with hidden width 16 at batch 2 (batch norm refuses one value
  per channel in training, in PyTorch as in shadeprop); microseconds per step over an
  epoch of 2,000 steps.
- W-LSTM: sequential MNIST, each image as 28 time steps of 28 pixels (rows, top to
  bottom; standardized with the split's mean and std) → nn.LSTM(28, 128) → Linear 10 on
  the last step; softmax cross-entropy; Adam lr 1e-3; global-norm clipping at 1.0 every
  step; batch 128 reshuffled every epoch; PyTorch's default initialization. PyTorch has no
  recurrent dropout, so the 0.25 of the workload is left out here (see w_lstm).

The training images live on the device for the whole run (no per-batch upload). With
`--compile`, W-MLP, W-CNN and W-LSTM are measured again with the model wrapped in
torch.compile (the augmentation and the optimizer stay eager), each in a child process
under `--compile-timeout` seconds so that a hung or failing compile is recorded, not fatal.

Writes `<out>/peer_torch.json` and `<out>/peer_torch.md` (again after each workload, so that
a run stopped early keeps what it measured) and prints the Markdown. Without
an importable torch it writes a JSON saying so and exits with status 0.

    python3 benches/peer_torch.py --data data/mnist --out benches/results/torch \\
        [--device auto|cuda|cpu] [--workloads w-gemm,w-mlp,w-cnn,w-step,w-lstm]
        [--sizes 512,1024,2048,4096] [--runs 3] [--steps N] [--cnn-steps N]
        [--lstm-steps N] [--step-steps 2000] [--batch 128] [--compile]
        [--compile-timeout 120]
"""

import argparse
import gzip
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # reported in the JSON, not a failure
    torch = None
    IMPORT_ERROR = str(e)

MLP_SHAPES = [
    # (name as in benches/gemm.rs, m, n, k, A transposed, B transposed)
    ("W-MLP fwd 128x784 . 784x512", 128, 512, 784, False, False),
    ("W-MLP fwd 128x512 . 512x512", 128, 512, 512, False, False),
    ("W-MLP dX 128x512 . (784x512)^T", 128, 784, 512, False, True),
    ("W-MLP dW (128x784)^T . 128x512", 784, 512, 128, True, False),
    ("W-MLP dW (128x512)^T . 128x512", 512, 512, 128, True, False),
]
WORKLOADS = ("w-gemm", "w-mlp", "w-cnn", "w-step", "w-lstm")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"],
                   help="auto: CUDA when available, else the CPU")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated subset of " + ",".join(WORKLOADS))
    p.add_argument("--sizes", default="512,1024,2048,4096",
                   help="square W-GEMM sizes (the W-MLP shapes are always measured)")
    p.add_argument("--data", default="data/mnist",
                   help="folder with the MNIST IDX files, plain or .gz")
    p.add_argument("--out", default="benches/results/torch", help="output folder")
    p.add_argument("--runs", type=int, default=3, help="timed epochs per workload (median)")
    p.add_argument("--steps", type=int, default=0,
                   help="batches per W-MLP, W-CNN and W-LSTM epoch (0 = the full epoch)")
    p.add_argument("--cnn-steps", type=int, default=None,
                   help="batches per W-CNN epoch (default: --steps)")
    p.add_argument("--lstm-steps", type=int, default=None,
                   help="batches per W-LSTM epoch (default: --steps)")
    p.add_argument("--step-steps", type=int, default=2000, help="W-STEP steps per epoch")
    p.add_argument("--batch", type=int, default=128, help="W-MLP, W-CNN and W-LSTM batch")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--compile", action="store_true",
                   help="also measure W-MLP, W-CNN and W-LSTM with torch.compile")
    p.add_argument("--compile-timeout", type=float, default=120.0,
                   help="seconds each torch.compile measurement may take, compile included")
    p.add_argument("--compiled-only", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    for w in a.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r} (expected one of {', '.join(WORKLOADS)})")
    a.sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    if a.runs < 1 or a.batch < 2 or a.step_steps < 1:
        p.error("--runs >= 1, --batch >= 2 and --step-steps >= 1")
    return a


# ---------------------------------------------------------------- data

def read_idx(path):
    """An IDX file (plain or gzip) as a uint8 numpy array of its dimensions."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != math.prod(dims):
        raise ValueError(f"{path}: {data.size} bytes for dimensions {dims}")
    return data.reshape(dims)


def find_idx(folder, stem):
    """`stem` in `folder`, or `stem.gz` (as shadeprop's loader looks for them)."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{os.path.join(folder, stem)} (nor .gz): fetch MNIST first "
                            "(bash scripts/fetch-data.sh)")


def load_train_split(folder):
    """The 54,000-image training split (90% of MNIST's training set, a permutation seeded
    with 0) as float32 images in [0, 1] [N, 784] and int64 labels, and the split's pixel
    mean and standard deviation (population std, over every pixel)."""
    x = read_idx(find_idx(folder, "train-images-idx3-ubyte"))
    y = read_idx(find_idx(folder, "train-labels-idx1-ubyte"))
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{folder}: images {x.shape} and labels {y.shape} do not pair")
    n_val = round(0.1 * len(x))
    perm = np.random.default_rng(0).permutation(len(x))[n_val:]
    x = x[perm].reshape(len(perm), -1).astype(np.float32) / 255.0
    y = y[perm].astype(np.int64)
    mean = float(x.mean(dtype=np.float64))
    std = float(x.std(dtype=np.float64))
    return x, y, mean, std


# ---------------------------------------------------------------- models

def he_normal_(model):
    """He-normal weights (std = sqrt(2 / fan_in)), zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def w_mlp(hidden=512):
    return he_normal_(nn.Sequential(
        nn.Linear(784, hidden), nn.BatchNorm1d(hidden, eps=1e-5, momentum=0.1), nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden, eps=1e-5, momentum=0.1), nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(hidden, 10)))


def w_cnn():
    return he_normal_(nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10)))


class WLstm(nn.Module):
    """W-LSTM: [B, 28, 28] (28 steps of 28 pixels, batch_first) → nn.LSTM(28, 128) →
    Linear(128, 10) on the last step's output. A plain nn.LSTM with PyTorch's default
    initialization (uniform in ±1/sqrt(128), no forget-gate bias of 1): PyTorch has no
    recurrent dropout (nn.LSTM's `dropout` acts between stacked layers only), so the
    workload's recurrent dropout of 0.25 is not part of this peer."""

    def __init__(self, steps=28, features=28, hidden=128):
        super().__init__()
        self.steps, self.features = steps, features
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.lstm(x.view(-1, self.steps, self.features))
        return self.fc(out[:, -1])


def w_lstm():
    return WLstm()


def sgd(model, batch):
    """SGD momentum 0.9, lr 0.05 · batch / 128, coupled weight decay 5e-4 on weights
    (tensors of 2 or more dimensions) only."""
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=0.05 * batch / 128, momentum=0.9)


def augment(x, mean, std):
    """W-CNN's per-sample augmentation of [B, 1, 28, 28] images in [0, 1], then
    standardization: rotation uniform in ±10° and translation uniform in ±2 pixels,
    bilinear with zero fill."""
    b, _, h, w = x.shape
    dev = x.device
    ang = (torch.rand(b, device=dev) * 2 - 1) * math.radians(10.0)
    # Translation in normalized coordinates (2 / size per pixel, align_corners=False).
    tx = (torch.rand(b, device=dev) * 2 - 1) * (2.0 * 2.0 / w)
    ty = (torch.rand(b, device=dev) * 2 - 1) * (2.0 * 2.0 / h)
    c, s = torch.cos(ang), torch.sin(ang)
    # Forward map p_out = R·p_in + t with R = [[c, s], [-s, c]] (counter-clockwise on
    # screen, y down); affine_grid wants the inverse, p_in = Rᵀ·(p_out − t).
    theta = torch.stack([
        torch.stack([c, -s, -(c * tx - s * ty)], 1),
        torch.stack([s, c, -(s * tx + c * ty)], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (out - mean) / std


# ---------------------------------------------------------------- timing helpers

def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def train_workload(name, a, dev, data, compiled=False):
    """Train `name` (w-mlp, w-cnn, w-step or w-lstm) and return its row."""
    x_np, y_np, mean, std = data
    torch.manual_seed(0)
    if name == "w-step":
        model, batch, full = w_mlp(16), 2, 2000
        steps = min(a.step_steps, full)
    else:
        model = {"w-mlp": w_mlp, "w-cnn": w_cnn, "w-lstm": w_lstm}[name]()
        batch, full = a.batch, math.ceil(len(x_np) / a.batch)
        want = a.steps
        if name == "w-cnn" and a.cnn_steps is not None:
            want = a.cnn_steps
        if name == "w-lstm" and a.lstm_steps is not None:
            want = a.lstm_steps
        steps = min(want, full) if want > 0 else full
    n = min(steps * batch, len(x_np))
    x = torch.from_numpy(x_np[:n]).to(dev)
    y = torch.from_numpy(y_np[:n]).to(dev)
    if name == "w-cnn":
        x = x.view(n, 1, 28, 28)
    elif name == "w-lstm":
        x = ((x - mean) / std).view(n, 28, 28)  # 28 steps (rows) of 28 pixels
    else:
        x = (x - mean) / std
    model = model.to(dev).train()
    if name == "w-lstm":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = sgd(model, batch)
    params = [p for p in model.parameters()]
    fwd = model
    t_compile = None
    if compiled:
        fwd = torch.compile(model)

    def step(xb, yb):
        if name == "w-cnn":
            xb = augment(xb, mean, std)
        opt.zero_grad(set_to_none=True)
        out = fwd(xb)
        loss = F.cross_entropy(out, yb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.detach(), (out.detach().argmax(1) == yb).sum()

    def epoch(xs, ys):
        m = len(xs)
        perm = torch.randperm(m, device=dev)
        nb = math.ceil(m / batch)
        if m % batch == 1:  # batch norm cannot train on one value per channel
            nb -= 1
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        for i in range(nb):
            idx = perm[i * batch:(i + 1) * batch]
            loss, c = step(xs[idx], ys[idx])
            loss_sum += loss * len(idx)
            correct += c
        return nb, min(nb * batch, m), loss_sum, correct

    # Warm-up: 8 steps (and the compilation, when compiled).
    t0 = time.perf_counter()
    w = min(8 * batch, n)
    epoch(x[:w], y[:w])
    sync(dev)
    if compiled:
        t_compile = time.perf_counter() - t0
    rates, secs = [], []
    for _ in range(a.runs):
        sync(dev)
        t0 = time.perf_counter()
        nb, samples, loss_sum, correct = epoch(x, y)
        sync(dev)
        dt = time.perf_counter() - t0
        secs.append(dt)
        rates.append(samples / dt)
    loss = float(loss_sum) / samples
    t = statistics.median(secs)
    return {
        "workload": name, "variant": "compile" if compiled else "eager",
        "batch": batch, "steps_per_run": nb, "runs": a.runs,
        "samples_per_s": statistics.median(rates),
        "seconds_per_epoch": t * full / nb,
        "us_per_step": t / nb * 1e6,
        "last_epoch_loss": loss, "last_epoch_accuracy": int(correct) / samples,
        "warmup_seconds": t_compile,
    }


def peak_rss_mib():
    """Peak resident memory of this process in MiB since the last reset (VmHWM; Linux,
    None elsewhere), as benches/train.rs reports it for shadeprop."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Start a new peak (writing 5 to /proc/self/clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def gemm_rows(a, dev, rows, save):
    """W-GEMM rows, appended to `rows` (and `save` called) shape by shape: median ms and
    GFLOP/s."""
    shapes = [(f"square {s}", s, s, s, False, False) for s in a.sizes] + MLP_SHAPES
    g = torch.Generator(device="cpu").manual_seed(0)
    for name, m, n, k, ta, tb in shapes:
        sa = torch.rand((k, m) if ta else (m, k), generator=g) - 0.5
        sb = torch.rand((n, k) if tb else (k, n), generator=g) - 0.5
        A = sa.to(dev).t() if ta else sa.to(dev)
        B = sb.to(dev).t() if tb else sb.to(dev)
        C = torch.empty(m, n, device=dev)
        flop = 2.0 * m * n * k
        est = flop / (30e12 if dev.type == "cuda" else 30e9)
        reps = max(3, min(200, int(0.1 / est)))
        for _ in range(3):
            torch.matmul(A, B, out=C)
        sync(dev)
        ts = []
        for _ in range(5):
            if dev.type == "cuda":
                e0 = torch.cuda.Event(enable_timing=True)
                e1 = torch.cuda.Event(enable_timing=True)
                e0.record()
                for _ in range(reps):
                    torch.matmul(A, B, out=C)
                e1.record()
                e1.synchronize()
                ts.append(e0.elapsed_time(e1) / 1e3 / reps)
            else:
                t0 = time.perf_counter()
                for _ in range(reps):
                    torch.matmul(A, B, out=C)
                ts.append((time.perf_counter() - t0) / reps)
        # A spot check of the product in f64 (TF32 would fail it at the square sizes).
        i = min(7, m - 1)
        ref = (A[i].double() @ B.double()).cpu()
        err = float((C[i].double().cpu() - ref).abs().max())
        t = statistics.median(ts)
        rows.append({"shape": name, "m": m, "n": n, "k": k, "ta": ta, "tb": tb,
                     "gflops": flop / t / 1e9, "ms": t * 1e3, "reps": reps,
                     "max_abs_err_row": err})
        save()


CHILDREN = set()


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def on_term(signum, _frame):
    """End the compile measurements' process groups with this script."""
    for pid in list(CHILDREN):
        kill_group(pid)
    sys.exit(128 + signum)


def compiled_child(a, name):
    """Run one torch.compile measurement in a child process under --compile-timeout."""
    cmd = [sys.executable, os.path.abspath(__file__), "--compiled-only", name,
           "--device", a.device, "--data", a.data, "--runs", str(a.runs),
           "--steps", str(a.steps), "--batch", str(a.batch), "--threads", str(a.threads),
           "--out", a.out]
    if a.cnn_steps is not None:
        cmd += ["--cnn-steps", str(a.cnn_steps)]
    if a.lstm_steps is not None:
        cmd += ["--lstm-steps", str(a.lstm_steps)]
    t0 = time.perf_counter()
    # A process group of its own, so that a timeout also ends the compiler's workers (which
    # would otherwise keep the pipes open), and a SIGTERM to this script ends all of it.
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    CHILDREN.add(p.pid)
    try:
        out, err = p.communicate(timeout=a.compile_timeout)
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        p.communicate()
        return {"workload": name, "variant": "compile",
                "error": f"timed out after {a.compile_timeout:.0f} s"}
    finally:
        CHILDREN.discard(p.pid)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (err or out).strip().splitlines()[-3:]
        return {"workload": name, "variant": "compile",
                "error": f"exit {p.returncode}: " + " | ".join(tail)[-600:]}
    row = json.loads(lines[-1])
    row["child_seconds"] = time.perf_counter() - t0
    return row


def markdown(res):
    s = [f"# PyTorch peer: {res['device_name']}", "",
         f"torch {res['torch']}, device `{res['device']}`, CUDA {res['cuda']}, "
         f"{res['threads']} CPU threads, TF32 off, {res['python']}.", ""]
    if res["gemm"]:
        s += ["## W-GEMM (f32)", "", "| shape | GFLOP/s | ms |", "|---|---|---|"]
        s += [f"| {r['shape']} | {r['gflops']:.1f} | {r['ms']:.3f} |" for r in res["gemm"]]
        s.append("")
    if res["train"]:
        s += ["## Training", "",
              "| workload | variant | batch | steps/run | samples/s | µs/step | s/epoch | "
              "warm-up s | peak host MiB |", "|---|---|---|---|---|---|---|---|---|"]
        for r in res["train"]:
            if "error" in r:
                s.append(f"| {r['workload']} | {r['variant']} | - | - | failed: "
                         f"{r['error'][:200]} | - | - | - | - |")
                continue
            wu = "-" if r.get("warmup_seconds") is None else f"{r['warmup_seconds']:.1f}"
            pk = "-" if r.get("peak_host_mib") is None else f"{r['peak_host_mib']:.0f}"
            s.append(f"| {r['workload']} | {r['variant']} | {r['batch']} | "
                     f"{r['steps_per_run']} | {r['samples_per_s']:.0f} | "
                     f"{r['us_per_step']:.0f} | {r['seconds_per_epoch']:.2f} | {wu} | {pk} |")
        s.append("")
    return "\n".join(s)


def main():
    a = parse_args()
    signal.signal(signal.SIGTERM, on_term)
    os.makedirs(a.out, exist_ok=True)
    if torch is None:
        res = {"skipped": f"torch is not importable: {IMPORT_ERROR}"}
        with open(os.path.join(a.out, "peer_torch.json"), "w") as f:
            json.dump(res, f, indent=2)
        print(res["skipped"])
        return 0
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    # Full f32: no TF32 in cuBLAS or cuDNN.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    dev = torch.device("cuda" if a.device in ("auto", "cuda") and torch.cuda.is_available()
                       else "cpu")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if a.compiled_only:
        data = load_train_split(a.data)
        print(json.dumps(train_workload(a.compiled_only, a, dev, data, compiled=True)))
        return 0
    res = {
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "device": dev.type,
        "device_name": (torch.cuda.get_device_name(0) if dev.type == "cuda"
                        else platform.processor() or platform.machine()),
        "threads": torch.get_num_threads(), "python": platform.python_version(),
        "tf32": False, "gemm": [], "train": [],
    }
    t_all = time.perf_counter()

    def save():
        """Write what was measured so far (a run stopped early keeps it)."""
        res["seconds"] = time.perf_counter() - t_all
        md = markdown(res)
        with open(os.path.join(a.out, "peer_torch.json"), "w") as f:
            json.dump(res, f, indent=2)
        with open(os.path.join(a.out, "peer_torch.md"), "w") as f:
            f.write(md + "\n")
        return md

    if "w-gemm" in a.workloads:
        print("W-GEMM...", file=sys.stderr, flush=True)
        gemm_rows(a, dev, res["gemm"], save)
    train = [w for w in ("w-mlp", "w-cnn", "w-step", "w-lstm") if w in a.workloads]
    if train:
        data = load_train_split(a.data)
        for w in train:
            print(f"{w} (eager)...", file=sys.stderr, flush=True)
            reset_peak_rss()
            row = train_workload(w, a, dev, data)
            row["peak_host_mib"] = peak_rss_mib()
            res["train"].append(row)
            save()
        if a.compile:
            for w in [w for w in train if w != "w-step"]:
                print(f"{w} (torch.compile, at most {a.compile_timeout:.0f} s)...",
                      file=sys.stderr, flush=True)
                res["train"].append(compiled_child(a, w))
                save()
    print(save())
    return 0


if __name__ == "__main__":
    sys.exit(main())
