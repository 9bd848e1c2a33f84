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

from graphium_ray.tasks import TaskSpec


def column_slices(tasks: list[TaskSpec]) -> list[slice]:
    """The head-output columns of each task of one level."""
    out, start = [], 0
    for t in tasks:
        out.append(slice(start, start + t.out_dim))
        start += t.out_dim
    return out


def task_loss(task: TaskSpec, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred (M, out_dim) and target (M,) of present labels only → scalar."""
    if task.kind == "regression":
        diff = pred[:, 0] - target
        return diff.abs().mean() if task.loss == "mae" else (diff * diff).mean()
    if task.kind == "binary":
        return F.binary_cross_entropy_with_logits(pred[:, 0], target)
    classes = target.long().clamp(0, task.num_classes - 1)
    ce = F.cross_entropy(pred, classes)
    if task.loss != "hybrid_ranked":
        return ce
    levels = torch.arange(task.num_classes, device=pred.device, dtype=pred.dtype)
    expected = (pred.softmax(dim=-1) * levels).sum(dim=-1)
    return task.hybrid_alpha * ce + (1 - task.hybrid_alpha) * ((expected - target) ** 2).mean()


def multitask_loss(
    level_tasks: dict[str, list[TaskSpec]], preds: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted mean over tasks with labels of the per-task masked losses; also per-task values."""
    total, weight_sum, per_task = None, 0.0, {}
    for level, tasks in level_tasks.items():
        if not tasks:
            continue
        for task, cols, j in zip(tasks, column_slices(tasks), range(len(tasks)), strict=True):
            y = targets[level][:, j]
            present = ~torch.isnan(y)
            if not bool(present.any()):
                continue
            loss = task_loss(task, preds[level][present][:, cols], y[present])
            per_task[task.name] = float(loss.detach())
            total = task.weight * loss if total is None else total + task.weight * loss
            weight_sum += task.weight
    # every head stays in the graph (zero gradient when its tasks have no label in this batch),
    # so DDP never sees unused parameters
    connect = sum(p.sum() * 0.0 for p in preds.values())
    if total is None:
        return connect, per_task
    return total / weight_sum + connect, per_task
