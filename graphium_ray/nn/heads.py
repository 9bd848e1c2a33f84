"""Task heads derived from the task list: one MLP per (dataset, level).

Inputs per level: graph (G, P·D) pooled embeddings; node (N, D); edge (E, 3D) built from the
endpoint embeddings and the edge embedding as ``[x_i + x_j ‖ |x_i - x_j| ‖ e_ij]`` (symmetric in
i, j). Output per level: (rows, Σ out_dim) with columns in the level's task order; a multiclass
or ordinal task owns ``num_classes`` consecutive logit columns.

Each head is Linear → [norm → ReLU → dropout → Linear]·(layers-1) (``model.head_norm``, default
``layer`` under standard parametrization: it keeps the hidden scale independent of how large the
sum-pooled input is; measured better on ESOL and FreeSolv validation than none. Under µP there is
no norm: after the readout layer it would cancel µP's 1/m multiplier in the backward pass and
break the width transfer). A fresh model starts at the chance loss whatever the molecule size:
the output layer's weights start at zero and its biases at
the train-split log-odds of each binary task (logit of the prevalence; 0 elsewhere, which is the
mean of a normalized regression label). So the first loss is the prevalence entropy for binary
tasks, ≈ 1 for normalized regression and ln C for C classes. Under µP the output weights keep
their default init (the 1/m readout multiplier already makes the initial output small; zero
weights behind it would slow the first steps in a width-dependent way, which the coordinate check
shows).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from graphium_ray.nn.primitives import MLP
from graphium_ray.tasks import TaskSpec, head_groups, tasks_at

LEVELS = ("graph", "node", "edge")


class TaskHeads(nn.Module):
    """``binary_prevalence``: task name → fraction of positive train labels (initial output bias)."""

    def __init__(self, tasks: list[TaskSpec], in_dims: dict[str, int], hidden_dim: int, layers: int, dropout: float,
                 binary_prevalence: dict[str, float] | None = None, norm: str = "layer",
                 zero_output: bool = True):  # fmt: skip
        super().__init__()
        prevalence = binary_prevalence or {}
        self.heads = nn.ModuleDict()
        self.order: dict[str, list[str]] = {}
        for level in LEVELS:
            level_tasks = tasks_at(tasks, level)
            for dataset, idx in head_groups(tasks, level).items():
                width = sum(level_tasks[i].out_dim for i in idx)
                key = f"{level}__{dataset}"
                head = MLP(in_dims[level], hidden_dim, width, layers=layers, norm=norm, dropout=dropout)
                _init_output(head.net[-1], [level_tasks[i] for i in idx], prevalence, zero_weights=zero_output)
                self.heads[key] = head
                self.order.setdefault(level, []).append(key)

    def forward(self, inputs: dict[str, torch.Tensor],
                masks: dict[str, torch.Tensor | None] | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        """``masks``: per level, the real rows of a static-shape batch (for ``head_norm: batch``)."""
        masks = masks or {}
        return {
            level: torch.cat([self.heads[k](inputs[level], masks.get(level)) for k in keys], dim=-1)
            for level, keys in self.order.items()
        }


def _init_output(linear: nn.Linear, tasks: list[TaskSpec], prevalence: dict[str, float], zero_weights: bool) -> None:
    """Bias = log-odds of the train prevalence for binary tasks, else 0; weights zeroed when asked."""
    bias = []
    for task in tasks:
        p = prevalence.get(task.name)
        if task.kind == "binary" and p is not None:
            p = min(max(p, 1e-3), 1 - 1e-3)
            bias.append(math.log(p / (1 - p)))
        else:
            bias += [0.0] * task.out_dim
    with torch.no_grad():
        if zero_weights:
            linear.weight.zero_()
        linear.bias.copy_(torch.tensor(bias, dtype=linear.bias.dtype))
