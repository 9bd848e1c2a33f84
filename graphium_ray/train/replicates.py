"""Replicates (chemprop's ``--num-replicates``): the same run with seeds seed, seed+1, …

``metrics.json`` at the top of a replicated run holds, per split and task, the mean over the
replicates of every metric (``val`` / ``test``, the same shape as a single run's) and their
population standard deviation (``val_std`` / ``test_std``), plus each replicate's own metrics.
``predict`` on such a run averages the replicates' predictions (an ensemble).
"""

from __future__ import annotations

import numpy as np


def _mean_std(per_run: list[dict[str, dict]]) -> tuple[dict, dict]:
    mean: dict[str, dict] = {}
    std: dict[str, dict] = {}
    for task in per_run[0]:
        names = [k for k in per_run[0][task] if k != "n"]
        mean[task], std[task] = {"n": per_run[0][task].get("n", 0)}, {}
        for name in names:
            values = [r[task][name] for r in per_run if r[task].get(name) is not None]
            mean[task][name] = float(np.mean(values)) if values else None
            std[task][name] = float(np.std(values)) if values else None
    return mean, std


def summarize_replicates(runs: list[dict]) -> dict:
    val, val_std = _mean_std([r["val"] for r in runs])
    test, test_std = _mean_std([r["test"] for r in runs])
    return {
        "val": val,
        "val_std": val_std,
        "test": test,
        "test_std": test_std,
        "replicates": [{"seed": r["summary"]["seed"], "dir": f"replicate_{i}", "val": r["val"], "test": r["test"],
                        "selected_epoch": r["selection"]["epoch"]} for i, r in enumerate(runs)],  # fmt: skip
        "summary": {"replicates": len(runs), "wall_seconds": round(sum(r["summary"]["wall_seconds"] for r in runs), 2)},
    }
