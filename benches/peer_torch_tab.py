#!/usr/bin/env python3
"""W-TAB in PyTorch (CPU), the peer of `cargo bench --bench tab` (docs/benchmarks.md).

(a) L2 logistic regression 30 -> 1 (BCEWithLogitsLoss) on the first 455 rows of
scikit-learn's breast cancer table, standardized on themselves, full batch, SGD lr 0.1,
penalty (lambda / 2m)·||w||² with lambda = 1 on the weight only; (b) an MLP 2x64 (ReLU,
dropout 0.2) on Palmer penguins (rows with a missing value dropped, one-hot island and sex,
standardized), batch 32, SGD lr 0.05 momentum 0.9, a seeded permutation per epoch.
Training samples/s and microseconds per step: the median of --runs timed runs after a
3-epoch warm-up, the same protocol as the Rust bench.

  python3 benches/peer_torch_tab.py [--runs 5] [--steps 2000] [--threads 2] [--json FILE]
"""
import argparse
import csv
import json
import math
import statistics
import time

import torch

MISSING = {"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None",
           "<NA>", "#N/A", "#NA"}


def standardize(x):
    mean = x.mean(0, keepdim=True)
    std = x.std(0, unbiased=False, keepdim=True)
    std[std == 0] = 1.0
    return (x - mean) / std


def breast_cancer(root):
    with open(f"{root}/sklearn/breast_cancer.csv") as f:
        rows = list(csv.reader(f))[1:]
    rows = rows[:455]
    x = torch.tensor([[float(v) for v in r[:30]] for r in rows])
    y = torch.tensor([[float(r[30])] for r in rows])
    return standardize(x), y


def penguins(root):
    with open(f"{root}/palmerpenguins/penguins.csv") as f:
        r = csv.DictReader(f)
        rows = [row for row in r]
    cols = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
            "body_mass_g", "sex"]
    rows = [row for row in rows if not any(row[c].strip() in MISSING for c in cols + ["species"])]
    vocab = {c: sorted({row[c] for row in rows}) for c in ("island", "sex")}
    classes = sorted({row["species"] for row in rows})
    feats = []
    for row in rows:
        v = []
        for c in cols:
            if c in vocab:
                v += [1.0 if row[c] == w else 0.0 for w in vocab[c]]
            else:
                v.append(float(row[c]))
        feats.append(v)
    x = torch.tensor(feats)
    y = torch.tensor([classes.index(row["species"]) for row in rows])
    return standardize(x), y


def peak_rss_mib():
    """Peak resident memory of this process in MiB since the last reset (VmHWM; Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(name, a, root):
    reset_peak_rss()
    torch.manual_seed(0)
    if name == "w-tab-logreg":
        x, y = breast_cancer(root)
        model = torch.nn.Linear(x.shape[1], 1)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        batch = x.shape[0]
        lam = 1.0
    else:
        x, y = penguins(root)
        model = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Dropout(0.2),
            torch.nn.Linear(64, 3))
        loss_fn = torch.nn.CrossEntropyLoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        batch = 32
        lam = 0.0
    n = x.shape[0]
    per_epoch = math.ceil(n / batch)
    epochs = max(1, math.ceil(a.steps / per_epoch))
    g = torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(n, generator=g) if batch < n else torch.arange(n)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            if lam > 0:
                w = model.weight
                loss = loss + lam / (2 * xb.shape[0]) * (w * w).sum()
            loss.backward()
            opt.step()

    model.train()
    for _ in range(3):
        epoch()
    rates, us = [], []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        for _ in range(epochs):
            epoch()
        t = time.perf_counter() - t0
        rates.append(epochs * n / t)
        us.append(t / (epochs * per_epoch) * 1e6)
    return {"workload": name, "backend": f"PyTorch {torch.__version__} CPU ({a.threads} threads)",
            "batch": batch, "steps": epochs * per_epoch,
            "samples_per_s": statistics.median(rates), "us_per_step": statistics.median(us),
            "peak_host_mib": peak_rss_mib()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default="data")
    p.add_argument("--json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = [measure(w, a, a.data) for w in ("w-tab-logreg", "w-tab-mlp")]
    print("| workload | backend | batch | steps per run | samples/s | µs per step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['backend']} | {r['batch']} | {r['steps']} | "
              f"{r['samples_per_s']:.0f} | {r['us_per_step']:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
