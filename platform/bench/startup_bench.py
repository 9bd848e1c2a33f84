"""Startup: seconds from launching ``graphium-ray train`` to the first training step.

Runs the real CLI in a fresh process on a small embedded dataset whose cache is already prepared
(so data preparation is not counted), with a local Ray cluster the command starts itself. The
worker records the wall-clock time of its first optimizer step (``summary.first_step_unix`` in
metrics.json). Also reported, each in its own fresh process: importing the CLI module, and
``import ray`` + ``ray.init`` of a local cluster; the rest is Ray Train start-up (worker group,
process group, dataset streaming) and ours.

    python platform/bench/startup_bench.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from graphium_ray.data.builtin import REFERENCE_SMILES, descriptor_labels

CLI = [sys.executable, "-m", "graphium_ray.cli"]


def timed(code: str) -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.time() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num-cpus", type=int, default=2)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="startup_bench_"))
    pq.write_table(pa.table(descriptor_labels(REFERENCE_SMILES * 8)), work / "mols.parquet")
    cfg = {"name": "startup", "data": {"cache_dir": str(work / "cache"), "num_shards": 2, "datasets": [
        {"name": "d", "path": str(work / "mols.parquet"), "tasks": [{"columns": ["logp", "tpsa"]}]}]},
        "model": {"hidden_dim": 32, "num_layers": 2}, "train": {"epochs": 1, "batch_size": 32, "num_workers": 2}}  # fmt: skip
    (work / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cpus = ["--num-cpus", str(args.num_cpus)]
    subprocess.run([*CLI, "prepare", str(work / "cfg.yaml"), *cpus], check=True, capture_output=True)
    first_step = []
    for i in range(args.repeats):
        launched = time.time()
        subprocess.run([*CLI, "train", str(work / "cfg.yaml"), "--output", str(work / f"run{i}"), *cpus], check=True,
                       capture_output=True)  # fmt: skip
        summary = json.loads((work / f"run{i}" / "metrics.json").read_text())["summary"]
        first_step.append(summary["first_step_unix"] - launched)
    result = {
        "launch_to_first_step_s": [round(s, 1) for s in first_step],
        "import_cli_s": round(timed("import graphium_ray.cli"), 2),
        "import_ray_and_init_s": round(timed(f"import ray; ray.init(num_cpus={args.num_cpus}, "
                                              "dashboard_host='127.0.0.1'); ray.shutdown()"), 1),  # fmt: skip
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
