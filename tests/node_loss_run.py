"""Run by tests/test_node_loss.py in its own process (a driver joins one Ray cluster per process):
a multi-node cluster on this machine (``ray.cluster_utils.Cluster``: a 1-CPU head and two 1-CPU
worker nodes), then ``prepare`` and then ``train``, each while a whole worker node is removed
mid-run and a fresh one joins. Writes ``result.json`` (one entry per mode) in WORKDIR.

    python tests/node_loss_run.py WORKDIR
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")


def node_of(class_fragment: str, address: str, exclude: str) -> str | None:
    """The node id of a live actor whose class name contains ``class_fragment`` (not on ``exclude``)."""
    from ray.util.state import list_actors

    for actor in list_actors(address=address, filters=[("state", "=", "ALIVE")], limit=1000):
        if class_fragment in (actor.class_name or "") and actor.node_id and actor.node_id != exclude:
            return actor.node_id
    return None


def remove_node_when(cluster, nodes: list, class_fragment: str, ready, head_id: str, timeout: float = 300.0) -> str:
    """Once ``ready()``, remove the worker node that hosts a ``class_fragment`` actor; add a fresh one."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            target = node_of(class_fragment, cluster.gcs_address, head_id)
            victim = next((n for n in nodes if n.node_id == target), None)
            if victim is not None:
                cluster.remove_node(victim, allow_graceful=False)  # the node dies: raylet and its workers
                nodes.remove(victim)
                nodes.append(cluster.add_node(num_cpus=1))
                return target
        time.sleep(0.2)
    raise RuntimeError(f"no {class_fragment} on a worker node within {timeout}s")


def main() -> None:
    work = Path(sys.argv[1])
    import pyarrow.parquet as pq
    import ray
    from ray.cluster_utils import Cluster

    from graphium_ray.cli import local_cluster_options
    from graphium_ray.config import validate
    from graphium_ray.data.builtin import QM9_PROPERTIES, qm9_sample
    from graphium_ray.data.prepare import prepare
    from graphium_ray.train.driver import run_training

    dash = local_cluster_options(1)
    # one head CPU (the per-epoch data streaming of training), two 1-CPU worker nodes that can be lost
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": dash["dashboard_port"],
        # a killed node is declared dead after 4 missed 0.5 s health checks, not Ray's default 5 x 3 s
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}})  # fmt: skip
    os.environ["RAY_API_SERVER_ADDRESS"] = dash["runtime_env"]["env_vars"]["RAY_API_SERVER_ADDRESS"]
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, runtime_env=dash["runtime_env"], log_to_driver=False)
    head_id = ray.get_runtime_context().get_node_id()
    def config(part: Path, rows: int):
        part.mkdir()
        table = qm9_sample(rows, ["SMILES", *QM9_PROPERTIES]).rename_columns(["smiles", *QM9_PROPERTIES.values()])
        pq.write_table(table, part / "qm9.parquet")
        return validate({"name": "nodeloss",
                         # on the cluster even at this size (auto would prepare it in the driver): nodes are lost there
                         "data": {"cache_dir": str(part / "cache"), "num_shards": 4, "batch_rows": 64,
                                  "prepare_in_driver": "never",
                                  "datasets": [{"name": "qm9", "path": str(part / "qm9.parquet"), "tasks": [{"columns": ["gap"]}]}]},
                         "model": {"hidden_dim": 16, "num_layers": 1, "head_hidden_dim": 16},
                         "train": {"batch_size": 32, "num_workers": 2, "cpus_per_worker": 1, "epochs": 8,
                                   "max_failures": 3, "in_memory_mb": 0}})  # fmt: skip

    def prepare_losing_a_node(part: Path) -> dict:
        cfg, out = config(part, 3000), {}
        thread = threading.Thread(target=lambda: out.update(manifest=prepare(cfg.data).manifest.to_dict()))
        thread.start()
        # the first featurization-pipeline actor (keying or featurizing) seen on a worker node
        out["removed_node"] = remove_node_when(cluster, nodes, "MapWorker", lambda: True, head_id)
        thread.join(timeout=600)
        feats = pq.read_table(next((part / "cache").glob("*/featurized")), columns=["mol_key"]).column("mol_key")
        out["featurized_keys"], out["unique_keys"] = len(feats), len(set(feats.to_pylist()))
        return out

    def train_losing_a_node(part: Path) -> dict:
        cfg, out = config(part, 600), {}
        prepared, run = prepare(cfg.data), part / "run"
        thread = threading.Thread(target=lambda: out.update(metrics=run_training(cfg, prepared, run)))
        thread.start()
        checkpoints = run / "ray" / "train"
        out["removed_node"] = remove_node_when(
            cluster, nodes, "RayTrainWorker", lambda: len(list(checkpoints.glob("checkpoint_*"))) >= 2, head_id)
        thread.join(timeout=600)
        return out

    result = {"prepare": prepare_losing_a_node(work / "prepare"), "train": train_losing_a_node(work / "train")}
    (work / "result.json").write_text(json.dumps(result, default=str))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
