"""The whole GPU path as users run it: ``graphium-ray train`` on a local Ray cluster, one Ray Train
worker per GPU (``train.accelerator: gpu`` → ``ScalingConfig(use_gpu=True)``, Ray's Lightning
strategy and environment), once per variant, each run in its own process and cluster.

Default variants (on ``sweeps/quickstart.yaml``, one GPU worker): float32, bf16-mixed and
16-mixed with the train split kept in the worker's memory; 16-mixed with the train split streamed
from the cache by Ray Data every epoch (``train.in_memory_mb: 0``); bf16-mixed with static-shape
batches under ``torch.compile``. Per run: exit status, the device every worker reports
(``metrics.json`` ``summary.device_per_worker``), selected epoch, validation loss, test MAE of
the first regression tasks in their units, training graphs/s and wall time. A run passes when it
exits 0, trained on CUDA and its validation loss is finite and within ``--tolerance`` (relative)
of the float32 run's.

    python platform/bench/gpu_ray_train_check.py --output runs/gpu_ray_train --epochs 8
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {
    "fp32": ["train.precision=32"],
    "bf16": ["train.precision=bf16-mixed"],
    "fp16": ["train.precision=16-mixed"],
    "fp16_streamed": ["train.precision=16-mixed", "train.in_memory_mb=0"],
    "bf16_static_compiled": ["train.precision=bf16-mixed", "train.static_shapes={}", "train.compile=true"],
}


def run_variant(name: str, args, out: Path) -> dict:
    run_dir = out / name
    cmd = [sys.executable, "-m", "graphium_ray.cli", "train", args.config, "--output", str(run_dir),
           "--set", f"train.accelerator={args.accelerator}", "--set", f"train.num_workers={args.workers}",
           "--set", f"train.epochs={args.epochs}", *[x for s in args.set for x in ("--set", s)],
           *[x for s in VARIANTS[name] for x in ("--set", s)]]  # fmt: skip
    if args.num_cpus:
        cmd += ["--num-cpus", str(args.num_cpus)]
    started = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    row = {"variant": name, "rc": proc.returncode, "wall_s": round(time.time() - started, 1)}
    metrics_file = run_dir / "metrics.json"
    if proc.returncode != 0 or not metrics_file.is_file():
        row["error_tail"] = (proc.stdout + proc.stderr)[-3000:]
        return row
    m = json.loads(metrics_file.read_text())
    regression = [k for k, v in m["test"].items() if "mae" in v][: args.report_tasks]
    row.update({
        "devices": m["summary"].get("device_per_worker"),
        "selected_epoch": m["selection"]["epoch"],
        "val_loss": m["selection"]["val_loss"],
        "train_loss_first_last": [m["history"][0]["train_loss"], m["history"][-1]["train_loss"]],
        "test_mae": {k: m["test"][k]["mae"] for k in regression},
        "graphs_per_s": m["summary"]["graphs_per_s"],
        "train_wall_s": m["summary"]["train_wall_seconds"],
    })  # fmt: skip
    return row


def judge(rows: list[dict], tolerance: float, accelerator: str) -> list[str]:
    problems = []
    reference = next((r for r in rows if r["variant"] == "fp32" and r["rc"] == 0), None)
    for r in rows:
        if r["rc"] != 0:
            problems.append(f"{r['variant']}: exit {r['rc']}")
            continue
        expected = "cuda" if accelerator == "gpu" else "cpu"
        if not r["devices"] or not all(str(d).startswith(expected) for d in r["devices"]):
            problems.append(f"{r['variant']}: trained on {r['devices']}, not {expected}")
        if not math.isfinite(r["val_loss"]):
            problems.append(f"{r['variant']}: validation loss {r['val_loss']}")
        elif reference and r["val_loss"] > reference["val_loss"] * (1 + tolerance):
            problems.append(f"{r['variant']}: validation loss {r['val_loss']:.4f} > float32's "
                            f"{reference['val_loss']:.4f} by more than {tolerance:.0%}")  # fmt: skip
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="sweeps/quickstart.yaml")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="for every run")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="Ray Train workers, one GPU each")
    ap.add_argument("--num-cpus", type=int, default=None)
    ap.add_argument("--accelerator", default="gpu", choices=["gpu", "cpu"], help="cpu: a dry run of the script")
    ap.add_argument("--tolerance", type=float, default=0.15)
    ap.add_argument("--report-tasks", type=int, default=3)
    ap.add_argument("--output", default="runs/gpu_ray_train")
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.variants:
        rows.append(run_variant(name, args, out))
        print(json.dumps(rows[-1]), flush=True)
    problems = judge(rows, args.tolerance, args.accelerator)
    (out / "summary.json").write_text(json.dumps({"rows": rows, "problems": problems}, indent=2))
    print(f"{'variant':<22}{'rc':>3}{'device':>34}{'epoch':>6}{'val loss':>10}{'graphs/s':>10}{'wall s':>8}  test MAE")
    for r in rows:
        if r["rc"] != 0:
            print(f"{r['variant']:<22}{r['rc']:>3}  (failed; see {r['variant']}.log)")
            continue
        mae = ", ".join(f"{k} {v:.4g}" for k, v in r["test_mae"].items())
        device = ",".join(r["devices"] or ["?"])[:33]
        print(f"{r['variant']:<22}{r['rc']:>3}{device:>34}{r['selected_epoch']:>6}{r['val_loss']:>10.4f}"
              f"{r['graphs_per_s']:>10.0f}{r['wall_s']:>8.1f}  {mae}")  # fmt: skip
    print("PASS" if not problems else "FAIL:\n  " + "\n  ".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
