"""`ray job submit` against a real head node started with `ray start --head` on loopback with token
auth and a private temp dir; the job trains on real molecules and writes a run directory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from graphium_ray.data.builtin import QM9_PROPERTIES, qm9_sample

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_cluster(temp_dir: str) -> None:
    """Kill only the processes of the cluster that lives in ``temp_dir`` (``ray stop`` would also
    stop the test session's in-process cluster)."""
    victims = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if temp_dir in " ".join(proc.info["cmdline"] or []):
                victims.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in victims:
        for p in [*proc.children(recursive=True), proc]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    psutil.wait_procs(victims, timeout=10)


def wait_for_job_agent(address: str, env: dict, timeout: float = 120.0) -> None:
    """The head accepts jobs only once its dashboard agent is up; probe with a trivial job."""
    deadline = time.time() + timeout
    while True:
        probe = subprocess.run([str(BIN / "ray"), "job", "submit", "--address", address, "--no-wait", "--", "true"],
                               env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        if probe.returncode == 0:
            return
        if time.time() > deadline:
            raise RuntimeError(f"the head never accepted a job: {probe.stderr[-500:]}")
        time.sleep(2)


@pytest.fixture(scope="module")
def head_node(ray_cluster):
    temp_dir = tempfile.mkdtemp(prefix="grh_", dir="/tmp")  # short: Ray's socket paths have a length limit
    dash = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    env["RAY_API_SERVER_ADDRESS"] = f"http://127.0.0.1:{dash}"  # the head's own state API, not the session's
    cmd = [str(BIN / "ray"), "start", "--head", "--num-cpus=2", f"--port={free_port()}", "--dashboard-host=127.0.0.1",
           f"--dashboard-port={dash}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
           f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
           f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
           f"--runtime-env-agent-port={free_port()}", f"--node-manager-port={free_port()}",
           f"--object-manager-port={free_port()}"]  # own ports: the session's cluster holds the defaults  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    address = f"http://127.0.0.1:{dash}"
    try:
        wait_for_job_agent(address, env)
        yield address, env
    finally:
        stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_job_submit_trains_and_writes_the_run_directory(head_node, tmp_path):
    address, env = head_node
    table = qm9_sample(150, ["SMILES", *QM9_PROPERTIES]).rename_columns(["smiles", *QM9_PROPERTIES.values()])
    pq.write_table(table, tmp_path / "qm9.parquet")
    cfg = {"name": "job", "data": {"cache_dir": str(tmp_path / "cache"), "num_shards": 1,
                                   "datasets": [{"name": "qm9", "path": str(tmp_path / "qm9.parquet"),
                                                 "tasks": [{"columns": ["gap", "homo"]}]}]},
           "model": {"hidden_dim": 16, "num_layers": 1, "head_hidden_dim": 16},
           "train": {"epochs": 1, "batch_size": 32, "num_workers": 2}}  # fmt: skip
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    submit = [str(ROOT / "platform" / "submit.sh"), "--address", address, "--",
              "train", str(tmp_path / "job.yaml"), "--output", str(run)]  # fmt: skip
    started = time.time()
    out = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "succeeded" in (out.stdout + out.stderr).lower()
    assert (run / "metrics.json").is_file() and (run / "checkpoint" / "model.pt").is_file()
    assert time.time() - started < 600


def test_submit_without_token_is_refused(head_node):
    address, env = head_node
    no_token = {**env, "RAY_AUTH_MODE": "disabled", "HOME": tempfile.mkdtemp()}
    out = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=no_token,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode != 0
