"""What the heads' output columns mean: each task's columns, label normalization with train-split
statistics, and the way back to real units (to probabilities: ``train/metrics.py``). Shared by
training (losses, metrics, saved predictions) and inference, so both read the model's outputs the
same way.

Normalization: y_norm = (y - mean) / std per task, for regression tasks with ``normalize`` (others:
mean 0, std 1). Predictions are mapped back before any metric, so metrics are in the labels' units.
"""

from __future__ import annotations

import numpy as np
import torch

from graphium_ray.tasks import TaskSpec, tasks_at


def column_slices(tasks: list[TaskSpec]) -> list[slice]:
    """The head-output columns of each task of one level."""
    out, start = [], 0
    for t in tasks:
        out.append(slice(start, start + t.out_dim))
        start += t.out_dim
    return out


class LabelNormalizer:
    def __init__(self, tasks: list[TaskSpec], label_stats: dict):
        self.mean: dict[str, torch.Tensor] = {}
        self.std: dict[str, torch.Tensor] = {}
        for level in ("graph", "node", "edge"):
            level_tasks = tasks_at(tasks, level)
            stats = label_stats.get(level, {})
            mean = [stats["mean"][i] if t.normalize else 0.0 for i, t in enumerate(level_tasks)]
            std = [
                stats["std"][i] if t.normalize and stats["std"][i] > 1e-12 else 1.0 for i, t in enumerate(level_tasks)
            ]
            self.mean[level] = torch.tensor(mean, dtype=torch.float32)
            self.std[level] = torch.tensor(std, dtype=torch.float32)

    def normalize(self, level: str, y: torch.Tensor) -> torch.Tensor:
        return (y - self.mean[level].to(y.device)) / self.std[level].to(y.device)

    def denormalize_task(self, level: str, index: int, values: torch.Tensor) -> torch.Tensor:
        return values * self.std[level][index].to(values.device) + self.mean[level][index].to(values.device)


def to_real_units(tasks: list[TaskSpec], normalizer: LabelNormalizer, level: str, pred: np.ndarray) -> np.ndarray:
    """Head outputs → regression predictions in label units (other kinds unchanged)."""
    out = pred.copy()
    for j, (task, cols) in enumerate(zip(tasks, column_slices(tasks), strict=True)):
        if task.kind == "regression":
            out[:, cols] = normalizer.denormalize_task(level, j, torch.from_numpy(pred[:, cols])).numpy()
    return out
