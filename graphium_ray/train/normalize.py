"""Label normalization with train-split statistics: y_norm = (y - mean) / std per task.

Only regression tasks with ``normalize`` are scaled (others: mean 0, std 1). Predictions are
mapped back with ``denormalize`` before any metric, so metrics are in the labels' real units.
"""

from __future__ import annotations

import torch

from graphium_ray.tasks import TaskSpec, tasks_at


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
