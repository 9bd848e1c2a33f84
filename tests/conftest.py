"""Shared fixtures: one real local Ray cluster per test session, fixture data written by the tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("WANDB_MODE", "offline")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"needs the real datasets in {SHARED_DATA} (absent on this checkout)"
)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real in-process Ray cluster with 2 CPUs and a private temp dir, shut down at the end."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="gr_ray_")
    ray.init(num_cpus=2, dashboard_host="127.0.0.1", _temp_dir=temp_dir, log_to_driver=False)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session")
