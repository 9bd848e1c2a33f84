"""Startup: seconds from launching ``graphium-ray train`` to the first training step.

Runs the real CLI in a fresh process on a small embedded dataset whose cache is already prepared
(so data preparation is not counted), with a local Ray cluster the command starts itself. The
worker records the wall-clock time of its first optimizer step (``summary.first_step_unix`` in
metrics.json). Also reported, each in its own fresh process: importing the CLI module, and
``import ray`` + ``ray.init`` of a local cluster; the rest is Ray Train start-up (worker group,
process group, dataset streaming) and ours.

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


def launch_to_first_step(work: Path, run: str, cpus: list[str], env: dict | None = None) -> float:
    launched = time.time()
    out = subprocess.run([*CLI, "train", str(work / "cfg.yaml"), "--output", str(work / run), *cpus],
                         capture_output=True, text=True, env=env)  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"graphium-ray train failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads((work / run / "metrics.json").read_text())["summary"]["first_step_unix"] - launched


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--running-cluster", action="store_true", help="also time runs that join an already running cluster")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="startup_bench_"))
    pq.write_table(pa.table(descriptor_labels(REFERENCE_SMILES * 8)), work / "mols.parquet")
    cfg = {"name": "startup", "data": {"cache_dir": str(work / "cache"), "num_shards": 2, "datasets": [
        {"name": "d", "path": str(work / "mols.parquet"), "tasks": [{"columns": ["logp", "tpsa"]}]}]},
        "model": {"hidden_dim": 32, "num_layers": 2}, "train": {"epochs": 1, "batch_size": 32, "num_workers": 2}}  # fmt: skip
    (work / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cpus = ["--num-cpus", str(args.num_cpus)]
    subprocess.run([*CLI, "prepare", str(work / "cfg.yaml"), *cpus], check=True, capture_output=True)
    first_step = [launch_to_first_step(work, f"run{i}", cpus) for i in range(args.repeats)]
    joined = []
    if args.running_cluster:
        env, temp_dir = start_head(args.num_cpus)
        try:
            launch_to_first_step(work, "warm", [], env)  # the cluster's first job: not counted
            joined = [launch_to_first_step(work, f"joined{i}", [], env) for i in range(args.repeats)]
            connect = timed_env("import ray; ray.init(); ray.shutdown()", env)
        finally:
            stop_cluster(temp_dir)
    result = {
        "launch_to_first_step_s": [round(s, 1) for s in first_step],
        "import_cli_s": round(timed("import graphium_ray.cli"), 2),
        "import_ray_and_init_s": round(timed(f"import ray; ray.init(address='local', num_cpus={args.num_cpus}, "
                                              "dashboard_host='127.0.0.1'); ray.shutdown()"), 1),  # fmt: skip
    }
    if joined:
        result["running_cluster_launch_to_first_step_s"] = [round(s, 1) for s in joined]
        result["running_cluster_import_ray_and_connect_s"] = round(connect, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
