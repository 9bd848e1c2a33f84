"""Per-epoch overhead of Ray Train's reporting: seconds per epoch with Ray's default controller poll
interval (``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=2``) against graphium-ray's (0.2 s), side by side.

Each run is the real ``graphium-ray train`` CLI in a fresh process (its own local cluster) on the
embedded reference molecules (a small dataset: an epoch takes well under a second, as for the
small sets users fine-tune on). Reported: training wall seconds per epoch (``train_wall_seconds``
of metrics.json / epochs), median and spread over alternating repeats, and the ratio.

    python platform/bench/epoch_overhead.py --epochs 20 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from graphium_ray.data.builtin import reference_table

SETTINGS = {"ray_default_2s": "2.0", "graphium_ray_0.2s": None}  # None: the value graphium-ray sets


def run_once(work: Path, name: str, interval: str | None, epochs: int, num_cpus: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"}
    if interval is not None:
        env["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = interval
    out = work / name
    subprocess.run([sys.executable, "-m", "graphium_ray.cli", "train", str(work / "cfg.yaml"), "--output", str(out),
                    "--num-cpus", str(num_cpus)], check=True, capture_output=True, env=env)  # fmt: skip
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    return summary["train_wall_seconds"] / epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num-cpus", type=int, default=2)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="epoch_overhead_"))
    pq.write_table(reference_table(), work / "ref.parquet")
    cfg = {"name": "overhead",
           "data": {"cache_dir": str(work / "cache"), "num_shards": 1,
                    "datasets": [{"name": "ref", "path": str(work / "ref.parquet"), "tasks": [{"columns": ["logp"]}]}]},
           "model": {"layer": "gin", "hidden_dim": 16, "num_layers": 2, "head_hidden_dim": 16},
           "train": {"epochs": args.epochs, "batch_size": 8, "num_workers": 1}}  # fmt: skip
    (work / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    per_epoch: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for i in range(args.repeats):  # alternating, so drift on a noisy machine hits both alike
        for name, interval in SETTINGS.items():
            per_epoch[name].append(round(run_once(work, f"{name}_{i}", interval, args.epochs, args.num_cpus), 3))
    medians = {name: statistics.median(v) for name, v in per_epoch.items()}
    print(json.dumps({"seconds_per_epoch": per_epoch, "median": medians,
                      "ratio_default_over_ours": round(medians["ray_default_2s"] / medians["graphium_ray_0.2s"], 2),
                      "epochs": args.epochs}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
