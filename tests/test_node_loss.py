"""Node loss on a multi-node cluster (``ray.cluster_utils.Cluster``: a head and two 1-CPU worker
nodes on this machine, in their own driver process): a whole worker node is removed during
``train`` and during ``prepare``; training completes from its last checkpoint with every epoch
once, and ``prepare`` ends with exact counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_with_node_loss(mode: str, work: Path) -> dict:
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "node_loss_run.py"), str(work), mode],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return json.loads((work / "result.json").read_text())


@pytest.mark.parametrize("mode", ["train", "prepare"])
def test_losing_a_worker_node(tmp_path, mode):
    result = run_with_node_loss(mode, tmp_path)
    assert result["removed_node"]
    if mode == "train":
        m = result["metrics"]
        assert (m["summary"]["resumed_from_epoch"] or 0) >= 1, m["history"]  # restarted from a checkpoint
        assert [h["epoch"] for h in m["history"]] == list(range(1, 9))  # every epoch once
        assert m["test"]["qm9/gap"]["n"] > 0
    else:
        m = result["manifest"]
        assert m["rows_in"] == {"qm9": 3000}
        assert m["molecules"] == m["featurized"] + m["skipped"]["by_stage"].get("featurize", 0)
        assert result["featurized_keys"] == result["unique_keys"] == m["featurized"]  # none lost, none twice
