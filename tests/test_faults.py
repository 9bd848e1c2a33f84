"""Fault tolerance with real kills: a training worker, a featurization worker, an interrupted prepare."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from graphium_ray.config import validate
from graphium_ray.data.builtin import QM9_PROPERTIES, qm9_sample
from tests.conftest import joined_cluster_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qm9_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("faults")
    table = qm9_sample(3000, ["SMILES", *QM9_PROPERTIES]).rename_columns(["smiles", *QM9_PROPERTIES.values()])
    pq.write_table(table, d / "qm9.parquet")
    pq.write_table(table.slice(0, 800), d / "qm9_small.parquet")  # training: short epochs
    return d / "qm9.parquet"


def run_cfg(path: Path, cache: Path, prepare_in_driver: str = "never", **train) -> dict:
    """``prepare_in_driver: never``: these 3,000 molecules would be prepared in the driver, and the
    tests kill the cluster's featurization actors."""
    return {"name": "ft", "data": {"cache_dir": str(cache), "num_shards": 4, "batch_rows": 64,
                                   "prepare_in_driver": prepare_in_driver,
                                   "datasets": [{"name": "qm9", "path": str(path), "tasks": [{"columns": ["gap"]}]}]},
            "model": {"hidden_dim": 16, "num_layers": 1, "head_hidden_dim": 16},
            "train": {"batch_size": 32, "num_workers": 2, **train}}  # fmt: skip


def alive_actor_pids(class_fragment: str) -> list[int]:
    import ray
    from ray.util.state import list_actors

    # our own cluster's address: another Ray cluster may run on this machine
    address = ray.get_runtime_context().gcs_address
    actors = list_actors(address=address, filters=[("state", "=", "ALIVE")], limit=1000, detail=True)
    # Ray Data's pool actors are all of class _MapWorker; their repr names the function they run
    return [a.pid for a in actors if a.pid and class_fragment in f"{a.class_name} {a.repr_name or ''}"]


def kill_first(class_fragment: str, ready, timeout: float = 240.0) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            pids = alive_actor_pids(class_fragment)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                return pids[0]
        time.sleep(0.1)  # the featurize stage of the fixture's 3,000 molecules lasts a few seconds
    raise AssertionError(f"no {class_fragment} to kill within {timeout}s")


def test_killed_training_worker_resumes_from_last_checkpoint(ray_cluster, qm9_file, tmp_path):
    from graphium_ray.data.prepare import prepare
    from graphium_ray.train.driver import run_training

    # streaming from the cache every epoch (in_memory_mb=0: the path for splits larger than memory),
    # which makes an epoch last long enough (~2 s) for the kill to land mid-training
    cfg = validate(run_cfg(qm9_file.with_name("qm9_small.parquet"), tmp_path / "cache", "auto", epochs=8, max_failures=2,
                           in_memory_mb=0))  # fmt: skip
    prepared = prepare(cfg.data)
    run = tmp_path / "run"
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(metrics=run_training(cfg, prepared, run)))
    thread.start()
    checkpoints = run / "ray" / "train"
    # two checkpoints on disk: the first one is surely registered with the controller by now
    killed = kill_first("RayTrainWorker", lambda: len(list(checkpoints.glob("checkpoint_*"))) >= 2)
    thread.join(timeout=600)
    assert killed and "metrics" in result
    m = result["metrics"]
    assert (m["summary"]["resumed_from_epoch"] or 0) >= 1, m["history"]  # restarted from a checkpoint
    assert [h["epoch"] for h in m["history"]] == list(range(1, 9))  # every epoch accounted for, once
    assert m["test"]["qm9/gap"]["n"] > 0


@pytest.mark.parametrize("stage", ["ingest", "featurize"])
def test_killed_prepare_actor_is_retried_and_rows_are_exact(ray_cluster, qm9_file, tmp_path, stage):
    """An ingest actor (reads and keys a range of source rows, writes them by bucket) or a featurize
    actor (reads, featurizes and writes a row group) is SIGKILLed mid-stage: every source row is
    keyed once and every molecule featurized once."""
    from graphium_ray.data.prepare import prepare

    cfg = validate(run_cfg(qm9_file, tmp_path / "cache"))
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(p=prepare(cfg.data)))
    thread.start()
    keyed = None

    def featurizing() -> bool:
        nonlocal keyed
        keyed = keyed or next((tmp_path / "cache").glob("*/keyed/_SUCCESS"), None)
        return keyed is not None

    if stage == "ingest":  # once this prepare's ingest has begun (its keyed folder exists)
        kill_first("KeySourceRows", lambda: next((tmp_path / "cache").glob("*/keyed"), None) is not None)
    else:
        kill_first("_FeaturizeRowGroups", featurizing)  # a featurize actor, not an ingest one still shutting down
    thread.join(timeout=600)
    m = result["p"].manifest
    assert m.molecules == m.featurized + m.skipped["by_stage"].get("featurize", 0)
    feats = pq.read_table(result["p"].featurized_dir, columns=["mol_key"]).column("mol_key").to_pylist()
    assert len(feats) == len(set(feats)) == m.molecules  # no row lost, none written twice
    assert m.rows_in == {"qm9": 3000}
    keyed_rows = pq.read_table(next((tmp_path / "cache").glob("*/keyed")), columns=["src_row"]).column("src_row")
    assert sorted(keyed_rows.to_pylist()) == list(range(3000))  # every source row keyed exactly once


def test_interrupted_prepare_rerun_keeps_finished_shards(ray_cluster, qm9_file, tmp_path):
    """A `graphium-ray prepare` driver joined to the running cluster is SIGKILLed mid-way; a rerun
    completes without redoing the molecule shards the first run had finished."""
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(run_cfg(qm9_file, tmp_path / "cache")))
    env = {**joined_cluster_env(ray_cluster), "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    cmd = [sys.executable, "-m", "graphium_ray.cli", "prepare", str(cfg_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 300
    while not list((tmp_path / "cache").glob("*/molecules/shard-*.parquet")):
        assert proc.poll() is None and time.time() < deadline, "prepare ended before it could be interrupted"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    root = next((tmp_path / "cache").glob("*/molecules")).parent
    assert not (root / "manifest.json").exists()
    before = {p.name: p.stat().st_mtime_ns for p in (root / "molecules").glob("shard-*.parquet")}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    after = {p.name: p.stat().st_mtime_ns for p in (root / "molecules").glob("shard-*.parquet")}
    assert all(after[name] == mtime for name, mtime in before.items())  # finished shards were not redone
    assert len(after) == 4
    m = json.loads((root / "manifest.json").read_text())
    assert m["rows_in"] == {"qm9": 3000}
    feats = pq.read_table(root / "featurized", columns=["mol_key"]).column("mol_key").to_pylist()
    assert len(feats) == len(set(feats)) == m["molecules"]
