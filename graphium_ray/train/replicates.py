"""Replicates (chemprop's ``--num-replicates``): the same run with seeds seed, seed+1, …

``metrics.json`` at the top of a replicated run holds, per split and task, the mean over the
replicates of every metric (``val`` / ``test``, the same shape as a single run's) and their
population standard deviation (``val_std`` / ``test_std``), plus each replicate's own metrics.
``predict`` on such a run averages the replicates' predictions (an ensemble); the run's own
``test_predictions.parquet`` is that ensemble on the test split, and ``metrics.json["ensemble"]``
scores it (graph-level tasks: the ones the table holds), as chemprop's ensemble reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from graphium_ray.tasks import TaskSpec, tasks_at
from graphium_ray.train.metrics import prediction_metrics


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


def ensemble_predictions(tables: list[pd.DataFrame], where: list[Path]) -> pd.DataFrame:
    """The replicates' ``test_predictions`` tables (same molecules, same order) → one table whose
    ``pred/<task>`` is the mean over replicates (P(class 1) or class probabilities averaged, as
    ``predict`` does); labels are the replicates' own (identical)."""
    first = tables[0]
    for table, path in zip(tables[1:], where[1:], strict=True):
        if not table["smiles"].equals(first["smiles"]):
            raise ValueError(f"{path}: its test molecules differ from {where[0]}'s; the replicates of one run "
                             "share one split, so this run directory was changed by hand")  # fmt: skip
    out = first.copy()
    for column in (c for c in first.columns if c.startswith("pred/")):
        stacked = np.stack([np.stack(t[column].to_numpy()).astype(np.float64) for t in tables])  # (R, M[, C])
        mean = stacked.mean(axis=0)
        out[column] = mean if mean.ndim == 1 else list(mean)
    return out


def ensemble_metrics(tasks: list[TaskSpec], table: pd.DataFrame) -> dict[str, dict]:
    """{task name: {metric: value, "n": labels}} of an ensemble's predictions, graph-level tasks."""
    result: dict[str, dict] = {}
    for task in tasks_at(tasks, "graph"):
        y = table[f"label/{task.name}"].to_numpy(np.float64)
        pred = np.stack(table[f"pred/{task.name}"].to_numpy()).astype(np.float64).reshape(len(y), -1)
        present = ~np.isnan(y)
        result[task.name] = prediction_metrics(task.kind, task.metrics, y[present], pred[present])
    return result


def write_ensemble(tasks: list[TaskSpec], output_dir: Path, n: int) -> dict[str, dict]:
    """Average ``replicate_<i>/test_predictions.parquet`` into ``output_dir/test_predictions.parquet``;
    returns the ensemble's test metrics."""
    paths = [output_dir / f"replicate_{i}" / "test_predictions.parquet" for i in range(n)]
    table = ensemble_predictions([pd.read_parquet(p) for p in paths], paths)
    table.to_parquet(output_dir / "test_predictions.parquet", index=False)
    return ensemble_metrics(tasks, table)
