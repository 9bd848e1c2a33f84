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

import pytest

from graphium_ray.cli import stop_cluster

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def test_readme_job_submit_makes_data_and_trains_inside_the_job(head_node, tmp_path):
    """What README "Running on a cluster" shows for the quickstart: the data is made inside the job
    (``--then``; the uploaded working directory excludes ``data/generated``, so training finds the data
    only because the job made it), the run directory is the absolute ``--output`` and the job says
    where it is."""
    address, env = head_node
    run = tmp_path / "run"
    submit = [str(ROOT / "platform" / "submit.sh"), "--address", address, "--",
              "make-data", "quickstart", "--molecules", "200", "--then",
              "train", "sweeps/quickstart.yaml", "--set", "train.epochs=1", "--set", "model.hidden_dim=16",
              "--output", str(run)]  # fmt: skip
    out = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "succeeded" in log.lower() and f"run directory: {run}" in log
    assert (run / "metrics.json").is_file() and (run / "checkpoint" / "model.pt").is_file()


def test_submit_without_token_is_refused(head_node):
    address, env = head_node
    no_token = {**env, "RAY_AUTH_MODE": "disabled", "HOME": tempfile.mkdtemp()}
    out = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=no_token,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode != 0
