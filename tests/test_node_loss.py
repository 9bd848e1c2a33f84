"""Node loss on a multi-node cluster (``ray.cluster_utils.Cluster``: a head and two 1-CPU worker
nodes on this machine, in their own driver process): a whole worker node is removed during
``prepare`` and then during ``train`` (one cluster for both); ``prepare`` ends with exact counts,
and training completes from its last checkpoint with every epoch once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_losing_a_worker_node_during_prepare_and_during_train(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "node_loss_run.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    result = json.loads((tmp_path / "result.json").read_text())
    prep, train = result["prepare"], result["train"]
    assert prep["removed_node"] and train["removed_node"]
    m = prep["manifest"]
    assert m["rows_in"] == {"qm9": 3000}
    assert m["molecules"] == m["featurized"] + m["skipped"]["by_stage"].get("featurize", 0)
    assert prep["featurized_keys"] == prep["unique_keys"] == m["featurized"]  # none lost, none twice
    m = train["metrics"]
    assert (m["summary"]["resumed_from_epoch"] or 0) >= 1, m["history"]  # restarted from a checkpoint
    assert [h["epoch"] for h in m["history"]] == list(range(1, 9))  # every epoch once
    assert m["test"]["qm9/gap"]["n"] > 0
