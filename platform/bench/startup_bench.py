"""Startup: seconds from launching ``graphium-ray train`` to the first training step.

Runs the real CLI in a fresh process on a small embedded dataset whose cache is already prepared
(so data preparation is not counted), with a local Ray cluster the command starts itself. The
worker records the wall-clock time of its first optimizer step (``summary.first_step_unix`` in
metrics.json). Also reported, each in its own fresh process: importing the CLI module, and
``import ray`` + ``ray.init`` of a local cluster; the rest is Ray Train start-up (worker group,
process group, dataset streaming) and ours.

``--join`` times only runs joining the cluster that ``RAY_ADDRESS`` names (your own running one).
``--running-cluster`` also times the same command joining a cluster that is already up
(``ray start --head`` in a private temp dir, ``RAY_ADDRESS`` pointing at it), the way a user
iterating on a workstation or a Ray cluster runs it: no cluster start-up, prestarted workers.

    python platform/bench/startup_bench.py --repeats 3 --running-cluster
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from graphium_ray.cli import stop_cluster
from graphium_ray.data.builtin import REFERENCE_SMILES, descriptor_labels

CLI = [sys.executable, "-m", "graphium_ray.cli"]
RAY = str(Path(sys.executable).parent / "ray")


def timed(code: str) -> float:
    return timed_env(code, None)


def timed_env(code: str, env: dict | None) -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
    return time.time() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head(num_cpus: int) -> tuple[dict, str]:
    """A head node in its own temp dir and ports; returns (env that points commands at it, temp dir)."""
    temp_dir = tempfile.mkdtemp(prefix="grs_", dir="/tmp")
    gcs, dash = free_port(), free_port()
    # token authentication (Ray >= 2.59): the head writes ~/.ray/auth_token, clients in token mode read it
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_ADDRESS": f"127.0.0.1:{gcs}",
           "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{dash}"}  # fmt: skip
    ports = ["--ray-client-server-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
             "--metrics-export-port", "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port"]  # fmt: skip
    cmd = [RAY, "start", "--head", f"--num-cpus={num_cpus}", f"--port={gcs}", "--dashboard-host=127.0.0.1",
           f"--dashboard-port={dash}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
           *[f"{flag}={free_port()}" for flag in ports]]  # fmt: skip
    clean = {k: v for k, v in env.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    subprocess.run(cmd, env=clean, check=True, capture_output=True, timeout=120)
    return env, temp_dir


def launch_to_first_step(work: Path, run: str, cpus: list[str], env: dict | None = None) -> tuple[float, dict]:
    launched = time.time()
    out = subprocess.run([*CLI, "train", str(work / "cfg.yaml"), "--output", str(work / run), *cpus],
                         capture_output=True, text=True, env=env)  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"graphium-ray train failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    summary = json.loads((work / run / "metrics.json").read_text())["summary"]
    return summary["first_step_unix"] - launched, phases(launched, summary["startup_unix"], summary["first_step_unix"])


PHASES = (  # (name, mark it ends at): each phase runs from the previous mark
    ("driver: interpreter, imports, ray.init, cache check, trainer built", "driver_fit_called"),
    ("Ray Train: controller, worker group scheduled, worker process started", "worker_process_start"),
    ("worker: Ray worker set-up, process group, train function loaded", "worker_loop_entered"),
    ("worker: imports not done during set-up (torch's compiler stack, Lightning, ours)", "worker_imported"),
    ("worker: model built, checkpoint restore", "worker_model_built"),
    ("worker: Lightning trainer, dataset shards", "worker_fit_called"),
    ("first batch: Lightning set-up, first batch read", "first_batch"),
    ("first step: forward, backward, optimizer", "first_step"),
)


def phases(launched: float, marks: dict, first_step: float) -> dict[str, float]:
    """Seconds of each start-up phase from the run's recorded marks (rank 0's for worker marks)."""
    marks = {**marks, "first_step": first_step}
    out, previous = {}, launched
    for name, mark in PHASES:
        out[name] = round(marks[mark] - previous, 2)
        previous = marks[mark]
    return out


def median_phases(runs: list[dict]) -> dict[str, float]:
    return {name: round(float(np.median([r[name] for r in runs])), 2) for name, _ in PHASES}


def joined_runs(work: Path, repeats: int, env: dict | None = None) -> dict:
    """``repeats`` runs joining the running cluster that ``env`` (or this process's environment) names."""
    joined = [launch_to_first_step(work, f"joined{i}", [], env) for i in range(repeats)]
    return {"running_cluster_launch_to_first_step_s": [round(s, 1) for s, _ in joined],
            "running_cluster_phases_median_s": median_phases([p for _, p in joined])}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="Ray Train workers (the small-data recipe uses 1)")
    p.add_argument("--running-cluster", action="store_true", help="also time runs that join an already running cluster")
    p.add_argument("--join", action="store_true",
                   help="time only runs that join the cluster at RAY_ADDRESS (already running, e.g. your own)")  # fmt: skip
    args = p.parse_args()
    if args.join and not os.environ.get("RAY_ADDRESS"):
        p.error("--join times runs on the cluster at RAY_ADDRESS: set it (e.g. 127.0.0.1:6379)")
    work = Path(tempfile.mkdtemp(prefix="startup_bench_"))
    pq.write_table(pa.table(descriptor_labels(REFERENCE_SMILES * 8)), work / "mols.parquet")
    cfg = {"name": "startup", "data": {"cache_dir": str(work / "cache"), "num_shards": 2, "datasets": [
        {"name": "d", "path": str(work / "mols.parquet"), "tasks": [{"columns": ["logp", "tpsa"]}]}]},
        "model": {"hidden_dim": 32, "num_layers": 2}, "train": {"epochs": 1, "batch_size": 32, "num_workers": args.workers}}  # fmt: skip
    (work / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cpus = [] if args.join else ["--num-cpus", str(args.num_cpus)]  # joining: the cluster's own CPUs
    subprocess.run([*CLI, "prepare", str(work / "cfg.yaml"), *cpus], check=True, capture_output=True)
    if args.join:  # the user's running cluster: no cluster start-up of ours, nothing else timed
        print(json.dumps(joined_runs(work, args.repeats), indent=2))
        return
    first_step = [launch_to_first_step(work, f"run{i}", cpus) for i in range(args.repeats)]
    joined = {}
    if args.running_cluster:
        env, temp_dir = start_head(args.num_cpus)
        try:
            launch_to_first_step(work, "warm", [], env)  # the cluster's first job: not counted
            joined = joined_runs(work, args.repeats, env)
            connect = timed_env("import ray; ray.init(); ray.shutdown()", env)
        finally:
            stop_cluster(temp_dir)
    result = {
        "launch_to_first_step_s": [round(s, 1) for s, _ in first_step],
        "phases_median_s": median_phases([p for _, p in first_step]),
        "import_cli_s": round(timed("import graphium_ray.cli"), 2),
        "import_ray_and_init_s": round(timed(f"import ray; ray.init(address='local', num_cpus={args.num_cpus}, "
                                              "dashboard_host='127.0.0.1'); ray.shutdown()"), 1),  # fmt: skip
    }
    if joined:
        result.update(joined)
        result["running_cluster_import_ray_and_connect_s"] = round(connect, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
