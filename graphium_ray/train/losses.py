"""Masked multi-task losses: NaN labels are ignored; each task's loss is averaged over its present
labels, then tasks are averaged with their weights (tasks with no label in the batch are left out).

Per task kind, with ŷ the head output for the task and y its (normalized) label:
* regression: MSE (ŷ - y)² or MAE |ŷ - y|
* binary: BCE-with-logits
* multiclass: cross-entropy over ``num_classes`` logits, y the class index
* ordinal (hybrid ranked, Graphium's L1000 loss): α·CE + (1-α)·(E[class] - y)², where
  E[class] = Σ_c c·softmax(ŷ)_c is the expected bracket.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from graphium_ray.outputs import column_slices
from graphium_ray.tasks import TaskSpec


def elementwise_task_loss(task: TaskSpec, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred (M, out_dim), target (M,) with no NaN → per-row loss (M,)."""
    if task.kind == "regression":
        diff = pred[:, 0] - target
        return diff.abs() if task.loss == "mae" else diff * diff
    if task.kind == "binary":
        return F.binary_cross_entropy_with_logits(pred[:, 0], target, reduction="none")
    classes = target.long().clamp(0, task.num_classes - 1)
    ce = F.cross_entropy(pred, classes, reduction="none")
    if task.loss != "hybrid_ranked":
        return ce
    levels = torch.arange(task.num_classes, device=pred.device, dtype=pred.dtype)
    expected = (pred.softmax(dim=-1) * levels).sum(dim=-1)
    return task.hybrid_alpha * ce + (1 - task.hybrid_alpha) * (expected - target) ** 2


def multitask_loss(
    level_tasks: dict[str, list[TaskSpec]], preds: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
    per_task: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted mean over the tasks with labels of the per-task masked mean losses.

    With m_i = 1 where task t has a label: L_t = Σ_i m_i ℓ_t(ŷ_i, y_i) / Σ_i m_i and
    L = Σ_t w_t [n_t > 0] L_t / Σ_t w_t [n_t > 0]. Missing labels are masked with ``torch.where``
    (never indexed out), so the shapes never depend on the data: the same code runs in eager
    mode, under ``torch.compile(dynamic=False)`` and on static-shape (padded) batches, where
    padding rows carry NaN labels. ``per_task=False`` skips the per-task floats (no host sync).
    """
    weighted, weights, values = [], [], {}
    for level, tasks in level_tasks.items():
        if not tasks:
            continue
        for task, cols, j in zip(tasks, column_slices(tasks), range(len(tasks)), strict=True):
            y = targets[level][:, j]
            present = ~torch.isnan(y)
            rows = present.to(preds[level].dtype)
            ell = elementwise_task_loss(task, preds[level][:, cols], torch.where(present, y, torch.zeros_like(y)))
            count = rows.sum()
            loss = (ell * rows).sum() / count.clamp(min=1.0)
            has = (count > 0).to(loss.dtype)
            weighted.append(task.weight * has * loss)
            weights.append(task.weight * has)
            if per_task and bool(count > 0):
                values[task.name] = float(loss.detach())
    # every head stays in the graph (zero gradient when its tasks have no label in this batch),
    # so DDP never sees unused parameters
    connect = sum(p.sum() * 0.0 for p in preds.values())
    if not weighted:
        return connect, values
    total = torch.stack(weighted).sum() / torch.stack(weights).sum().clamp(min=1e-12)
    return total + connect, values
