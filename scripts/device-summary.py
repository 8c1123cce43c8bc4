#!/usr/bin/env python3
"""The summary of a device check (scripts/device-check.sh run): reads the logs folder
(stages.tsv, params.tsv, manifest.tsv, info.log, tests.tsv, gemm.json, train-*/*.json,
torch/peer_torch.json) and writes device-check.md and device-check.json into --out, then
prints the Markdown. Standard library only; a missing or broken input leaves its section
saying so instead of failing."""

import argparse
import glob
import json
import os
import re
import sys
import time


def read_tsv(path, header=True):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if not header:
        return rows
    if not rows:
        return []
    keys = rows[0]
    return [dict(zip(keys, r)) for r in rows[1:]]


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def num(v, fmt="{:.0f}"):
    return "-" if v is None else fmt.format(v)


def ratio(a, b):
    return a / b if a and b else None


def adapter_block(info_path):
    """The adapter lines of `shadeprop info` (and the name of the first hardware one)."""
    if not os.path.exists(info_path):
        return "(no info log)", None, None
    with open(info_path, encoding="utf-8", errors="replace") as f:
        lines = [ln.rstrip() for ln in f if "XDG_RUNTIME_DIR" not in ln]
    found = []  # (hardware, name, driver) per adapter line
    for i, ln in enumerate(lines):
        m = re.match(r"adapter \d+: (.*) \((\w+), (\w+)\)", ln)
        if m:
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            drv = nxt[len("driver: "):] if nxt.startswith("driver:") else None
            hw = m.group(3) in ("DiscreteGpu", "IntegratedGpu", "VirtualGpu")
            found.append((hw, f"{m.group(1)} ({m.group(2)}, {m.group(3)})", drv))
    best = next((f for f in found if f[0]), found[0] if found else (False, None, None))
    name, driver = best[1], best[2]
    return "\n".join(lines[:60]), name, driver


def gemm_section(gemm, torch_res):
    """Rows per shape: the best f32 GPU variant, the best f16-operand one, the fast CPU,
    PyTorch f32, and the ratio of the first to the last."""
    tg = {r["shape"]: r for r in (torch_res or {}).get("gemm", [])}
    shapes, by = [], {}
    for r in (gemm or {}).get("rows", []):
        base = r["shape"].replace(" f16 operands", "")
        if base not in by:
            shapes.append(base)
            by[base] = {}
        d = by[base]
        if r["backend"].startswith("GPU"):
            key = "gpu16" if r["half"] else "gpu32"
            if key not in d or r["gflops"] > d[key]["gflops"]:
                d[key] = r
        elif r["backend"].startswith("CPU fast") and not r["half"]:
            d["cpu"] = r
        if r.get("mismatch"):
            d["mismatch"] = True
    rows = []
    for s in shapes:
        d = by[s]
        g32 = d.get("gpu32", {}).get("gflops")
        t = tg.get(s, {}).get("gflops")
        rows.append({
            "shape": s,
            "gpu_f32_gflops": g32,
            "gpu_f32_variant": d.get("gpu32", {}).get("backend"),
            "gpu_f16_operands_gflops": d.get("gpu16", {}).get("gflops"),
            "cpu_fast_gflops": d.get("cpu", {}).get("gflops"),
            "torch_f32_gflops": t,
            "ratio_to_torch": ratio(g32, t),
            "mismatch": bool(d.get("mismatch")),
        })
    return rows


def train_section(train_rows, torch_res):
    tt = {}
    for r in (torch_res or {}).get("train", []):
        tt[(r["workload"], r.get("variant", "eager"))] = r
    out = []
    for w in ("w-mlp", "w-cnn", "w-step"):
        r = next((x for x in train_rows if x.get("workload") == w), None)
        e, c = tt.get((w, "eager")), tt.get((w, "compile"))
        ok = lambda x: x if x and "error" not in x else None  # noqa: E731
        row = {
            "workload": w,
            "samples_per_s": r and r.get("samples_per_s"),
            "us_per_step": r and r.get("us_per_step"),
            "steps_per_run": r and r.get("steps_per_run"),
            "batch": r and r.get("batch"),
            "torch_eager_samples_per_s": ok(e) and e.get("samples_per_s"),
            "torch_eager_us_per_step": ok(e) and e.get("us_per_step"),
            "torch_compile_samples_per_s": ok(c) and c.get("samples_per_s"),
            "torch_compile_error": c.get("error") if c else None,
        }
        row["ratio_to_torch_eager"] = ratio(row["samples_per_s"],
                                            row["torch_eager_samples_per_s"])
        row["ratio_to_torch_compile"] = ratio(row["samples_per_s"],
                                              row["torch_compile_samples_per_s"])
        out.append(row)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", required=True, help="the run's logs folder")
    p.add_argument("--out", required=True, help="where device-check.md and .json go")
    a = p.parse_args()
    L = a.logs
    stages = read_tsv(os.path.join(L, "stages.tsv"))
    params = dict(read_tsv(os.path.join(L, "params.tsv"), header=False))
    manifest = {r[0]: r[1] for r in read_tsv(os.path.join(L, "manifest.tsv"), header=False)
                if len(r) == 2}
    tests = read_tsv(os.path.join(L, "tests.tsv"))
    for t in tests:
        for k in ("passed", "failed", "ignored", "seconds"):
            t[k] = int(t.get(k) or 0)
    totals = {k: sum(t[k] for t in tests) for k in ("passed", "failed", "ignored")}
    totals["binaries"] = len(tests)
    totals["binaries_not_ok"] = sum(1 for t in tests if t["status"] != "ok")
    gemm = read_json(os.path.join(L, "gemm.json"))
    train_rows = []
    for f in sorted(glob.glob(os.path.join(L, "train-*", "*.json"))):
        j = read_json(f)
        if j:
            for r in j.get("rows", []):
                r["adapter"] = j.get("adapter")
                train_rows.append(r)
    torch_res = read_json(os.path.join(L, "torch", "peer_torch.json"))
    info, adapter, driver = adapter_block(os.path.join(L, "info.log"))
    gemm_rows = gemm_section(gemm, torch_res)
    train = train_section(train_rows, torch_res)
    torch_stage = next((s for s in stages if s["stage"] == "torch"), None)

    res = {
        "adapter": adapter, "driver": driver, "mode": params.get("mode"),
        "commit": manifest.get("commit"), "packed": manifest.get("packed"),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": params, "stages": stages,
        "tests": {"totals": totals, "binaries": tests},
        "gemm": gemm_rows, "gemm_raw": gemm, "train": train, "train_raw": train_rows,
        "torch": torch_res,
        "torch_stage": torch_stage,
    }
    g4096 = next((r for r in gemm_rows if r["shape"] == "square 4096"), None)
    res["headline"] = {
        "gemm_4096_gpu_gflops": g4096 and g4096["gpu_f32_gflops"],
        "gemm_4096_torch_gflops": g4096 and g4096["torch_f32_gflops"],
        "gemm_4096_ratio_to_torch": g4096 and g4096["ratio_to_torch"],
        **{f"{r['workload'].replace('-', '_')}_ratio_to_torch_eager": r["ratio_to_torch_eager"]
           for r in train},
        "w_step_us": next((r["us_per_step"] for r in train if r["workload"] == "w-step"),
                          None),
    }

    md = [f"# Device check: {adapter or 'no hardware adapter'}", ""]
    md.append(f"Driver {driver or '-'}; commit {manifest.get('commit', '-')} packed "
              f"{manifest.get('packed', '-')}; mode {params.get('mode', '-')} (GEMM sizes "
              f"{params.get('sizes', '-')}, {params.get('runs', '-')} runs, W-MLP steps "
              f"{params.get('mlp_steps', '-')} (0 = the full epoch), W-CNN steps "
              f"{params.get('cnn_steps', '-')}, W-STEP steps {params.get('step_steps', '-')}); "
              f"{params.get('total_s', '-')} s in all.")
    md += ["", "## Adapter", "", "```text", info, "```", ""]
    md += ["## Stages", "", "| stage | status | s | note |", "|---|---|---|---|"]
    md += [f"| {s['stage']} | {s['status']} | {s['seconds']} | {s.get('note', '')} |"
           for s in stages]
    md += ["", "## Tests (SHADEPROP_REQUIRE_GPU=1)", "",
           "| binary | status | passed | failed | ignored | s |", "|---|---|---|---|---|---|"]
    md += [f"| {t['binary']} | {t['status']} | {t['passed']} | {t['failed']} | "
           f"{t['ignored']} | {t['seconds']} |" for t in tests]
    md.append(f"| **all {totals['binaries']}** | {totals['binaries_not_ok']} not ok | "
              f"**{totals['passed']}** | **{totals['failed']}** | {totals['ignored']} | |")
    tnote = ""
    if torch_res is None:
        tnote = (" PyTorch: not run" + (f" ({torch_stage['status']}: {torch_stage['note']})"
                                         if torch_stage else "") + ".")
    elif "skipped" in torch_res:
        tnote = f" PyTorch: {torch_res['skipped']}."
    else:
        tnote = (f" PyTorch {torch_res.get('torch')} on {torch_res.get('device_name')} "
                 f"({torch_res.get('device')}), TF32 off.")
    md += ["", "## W-GEMM (GFLOP/s, f32 C = A·B)", "",
           "Best shadeprop GPU variant per shape; \"GPU / PyTorch\" compares it with "
           "PyTorch f32." + tnote, "",
           "| shape | shadeprop GPU | variant | GPU f16 operands | CPU fast | PyTorch f32 | "
           "GPU / PyTorch |", "|---|---|---|---|---|---|---|"]
    for r in gemm_rows:
        v = (r["gpu_f32_variant"] or "-").split(" (")[0]
        flag = " (MISMATCH)" if r["mismatch"] else ""
        md.append(f"| {r['shape']}{flag} | {num(r['gpu_f32_gflops'], '{:.1f}')} | {v} | "
                  f"{num(r['gpu_f16_operands_gflops'], '{:.1f}')} | "
                  f"{num(r['cpu_fast_gflops'], '{:.1f}')} | "
                  f"{num(r['torch_f32_gflops'], '{:.1f}')} | "
                  f"{num(r['ratio_to_torch'], '{:.2f}')} |")
    if not gemm_rows:
        md.append("| (no W-GEMM results) | | | | | | |")
    md += ["", "## Training on the GPU (samples/s; W-STEP in µs per step)", "",
           "| workload | batch | steps/run | shadeprop | µs/step | PyTorch eager | "
           "shadeprop / eager | PyTorch compile | shadeprop / compile |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in train:
        comp = num(r["torch_compile_samples_per_s"])
        if r["torch_compile_error"]:
            comp = "failed: " + r["torch_compile_error"][:120].replace("|", "/")
        md.append(f"| {r['workload']} | {num(r['batch'])} | {num(r['steps_per_run'])} | "
                  f"{num(r['samples_per_s'])} | {num(r['us_per_step'])} | "
                  f"{num(r['torch_eager_samples_per_s'])} | "
                  f"{num(r['ratio_to_torch_eager'], '{:.2f}')} | {comp} | "
                  f"{num(r['ratio_to_torch_compile'], '{:.2f}')} |")
    ws = next((r for r in train if r["workload"] == "w-step"), None)
    if ws:
        peer = ws["torch_eager_us_per_step"]
        md += ["", f"W-STEP: shadeprop {num(ws['us_per_step'])} µs per step"
                   + (f", PyTorch eager {num(peer)} µs." if peer else ".")]
    md.append("")
    text = "\n".join(md)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "device-check.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(a.out, "device-check.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
