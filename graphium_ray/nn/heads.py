"""Task heads derived from the task list: one MLP per (dataset, level).

Inputs per level: graph (G, P·D) pooled embeddings; node (N, D); edge (E, 3D) built from the
endpoint embeddings and the edge embedding as ``[x_i + x_j ‖ |x_i - x_j| ‖ e_ij]`` (symmetric in
i, j). Output per level: (rows, Σ out_dim) with columns in the level's task order; a multiclass
or ordinal task owns ``num_classes`` consecutive logit columns.
"""

from __future__ import annotations

import torch
from torch import nn

from graphium_ray.nn.linear import MLP
from graphium_ray.tasks import TaskSpec, head_groups, tasks_at

LEVELS = ("graph", "node", "edge")


class TaskHeads(nn.Module):
    def __init__(self, tasks: list[TaskSpec], in_dims: dict[str, int], hidden_dim: int, layers: int, dropout: float):
        super().__init__()
        self.heads = nn.ModuleDict()
        self.order: dict[str, list[str]] = {}
        for level in LEVELS:
            level_tasks = tasks_at(tasks, level)
            for dataset, idx in head_groups(tasks, level).items():
                width = sum(level_tasks[i].out_dim for i in idx)
                key = f"{level}__{dataset}"
                self.heads[key] = MLP(in_dims[level], hidden_dim, width, layers=layers, dropout=dropout)
                self.order.setdefault(level, []).append(key)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            level: torch.cat([self.heads[k](inputs[level]) for k in keys], dim=-1) for level, keys in self.order.items()
        }
