"""Shared fixtures: one real local Ray cluster per test session, fixture data written by the tests."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("WANDB_MODE", "offline")
# a Ray Data execution stuck on resources fails the test in 5 minutes, not after Ray's default 30 (CI once
# spent 60 minutes on two such waits behind a leaked placement group)
os.environ.setdefault("RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S", "300")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"needs the real datasets in {SHARED_DATA} (absent on this checkout)"
)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real in-process Ray cluster with 2 CPUs and a private temp dir, shut down at the end."""
    import ray

    from graphium_ray.cli import local_cluster_options

    temp_dir = tempfile.mkdtemp(prefix="gr_ray_")
    options = local_cluster_options(2)  # pinned to its own dashboard: another Ray cluster may run here
    os.environ["RAY_API_SERVER_ADDRESS"] = options["runtime_env"]["env_vars"]["RAY_API_SERVER_ADDRESS"]
    ray.init(address="local", **options, _temp_dir=temp_dir, log_to_driver=False)  # never another cluster
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def cpus_come_back(ray, within_s: float = 30.0) -> bool:
    """Whether every CPU of the cluster is free again within ``within_s`` (a leaked placement group
    or actor keeps its CPUs reserved forever, and a later test's Ray Data tasks wait on them)."""
    import time

    deadline = time.monotonic() + within_s
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources()["CPU"]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.fixture(autouse=True, scope="module")
def module_leaves_every_cpu_free(request):
    """After each test module that used the session's cluster: every CPU is free again, or the module
    is named as the one that leaked (CI once saw two later tests wait 30 min each behind a placement
    group that an interrupted sweep left reserved)."""
    yield
    import ray

    if ray.is_initialized() and not cpus_come_back(ray):
        pytest.fail(f"{request.module.__name__} left CPUs of the session's Ray cluster reserved: "
                    f"{ray.available_resources().get('CPU', 0.0)} of {ray.cluster_resources()['CPU']} free")  # fmt: skip


def joined_cluster_env(ray_cluster) -> dict:
    """Environment for a ``graphium-ray`` subprocess that joins the session's cluster (token auth)."""
    return {**os.environ, "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address, "RAY_AUTH_MODE": "token"}


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def small_mix(tmp_path_factory):
    """~200 real QM9 molecules (gap, homo) + RDKit descriptors of a partly overlapping set, and a config."""
    from graphium_ray.data.builtin import QM9_PROPERTIES, descriptor_labels, qm9_sample

    d = tmp_path_factory.mktemp("mix")
    table = qm9_sample(300, ["SMILES", *QM9_PROPERTIES]).rename_columns(["smiles", *QM9_PROPERTIES.values()])
    pq.write_table(table.slice(0, 200), d / "qm9.parquet")
    pq.write_table(pa.table(descriptor_labels(table.column("smiles").to_pylist()[100:])), d / "desc.parquet")
    cfg = {
        "name": "it",
        "data": {"cache_dir": str(d / "cache"), "num_shards": 2, "datasets": [
            {"name": "qm9", "path": str(d / "qm9.parquet"), "tasks": [{"columns": ["gap", "homo"]}]},
            {"name": "desc", "path": str(d / "desc.parquet"),
             "tasks": [{"columns": ["logp"]}, {"columns": ["has_ring"], "kind": "binary"}]},
        ]},
        "model": {"layer": "gine", "hidden_dim": 32, "num_layers": 2, "head_hidden_dim": 32},
        "train": {"epochs": 2, "batch_size": 32, "num_workers": 2},
    }  # fmt: skip
    path = d / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return d, path


SECRET = "planted-wandb-key-5f3a9c1e"


@pytest.fixture(scope="session")
def trained_run(ray_cluster, small_mix) -> tuple[Path, str]:
    """One 2-worker Ray Train run on ``small_mix`` (with a planted WANDB_API_KEY in the environment,
    which must never reach the run directory), shared by the training, evaluation, inference and
    fine-tuning tests. Returns (run directory, what the command printed)."""
    from graphium_ray.cli import main

    d, cfg_path = small_mix
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("WANDB_API_KEY", SECRET)
        assert main(["train", str(cfg_path), "--output", str(d / "run")]) == 0
    return d / "run", out.getvalue()
