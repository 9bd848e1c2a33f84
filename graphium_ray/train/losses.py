"""Masked multi-task losses: NaN labels are ignored; each task's loss is averaged over its present
labels, then tasks are averaged with their weights (tasks with no label in the batch are left out).

Per task kind, with ŷ the head output for the task and y its (normalized) label:
* regression: MSE (ŷ - y)² or MAE |ŷ - y|
* binary: BCE-with-logits
* multiclass: cross-entropy over ``num_classes`` logits, y the class index
* ordinal (hybrid ranked, Graphium's L1000 loss): α·CE + (1-α)·(E[class] - y)², where
  E[class] = Σ_c c·softmax(ŷ)_c is the expected bracket.

The tasks of one level that share a loss function (kind, loss, classes, α) are computed together
as one (rows, tasks) block, so a step costs a handful of tensor operations per loss function,
not per task: PCBA's 1,328 binary tasks are one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from graphium_ray.outputs import column_slices
from graphium_ray.tasks import TaskSpec


def elementwise_loss(task: TaskSpec, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss of every label of tasks sharing ``task``'s loss function.

    pred (M, G, out_dim), target (M, G) with no NaN → (M, G)."""
    if task.kind == "regression":
        diff = pred[..., 0] - target
        return diff.abs() if task.loss == "mae" else diff * diff
    if task.kind == "binary":
        return F.binary_cross_entropy_with_logits(pred[..., 0], target, reduction="none")
    rows, groups, classes = pred.shape
    target_class = target.long().clamp(0, task.num_classes - 1)
    ce = F.cross_entropy(pred.reshape(rows * groups, classes), target_class.reshape(-1), reduction="none")
    ce = ce.view(rows, groups)
    if task.loss != "hybrid_ranked":
        return ce
    levels = torch.arange(classes, device=pred.device, dtype=pred.dtype)
    expected = (pred.softmax(dim=-1) * levels).sum(dim=-1)
    return task.hybrid_alpha * ce + (1 - task.hybrid_alpha) * (expected - target) ** 2


def loss_key(task: TaskSpec) -> tuple:
    """Tasks with equal keys share a loss function (and a head-output width)."""
    return task.kind, task.loss, task.out_dim, task.hybrid_alpha if task.loss == "hybrid_ranked" else None


@dataclass
class LossBlock:
    """The tasks of one level that share a loss function: their label columns (G,), head-output
    columns (G·out_dim,) in task order, weights (G,) and names."""

    level: str
    example: TaskSpec
    label_columns: torch.Tensor
    pred_columns: torch.Tensor
    weights: torch.Tensor
    names: list[str]

    def to(self, device: torch.device) -> LossBlock:
        if self.label_columns.device == device:
            return self
        return LossBlock(self.level, self.example, self.label_columns.to(device), self.pred_columns.to(device),
                         self.weights.to(device), self.names)  # fmt: skip


def loss_blocks(level_tasks: dict[str, list[TaskSpec]]) -> list[LossBlock]:
    """Group each level's tasks by :func:`loss_key`, in order of first appearance."""
    blocks = []
    for level, tasks in level_tasks.items():
        members: dict[tuple, list[int]] = {}
        for j, task in enumerate(tasks):
            members.setdefault(loss_key(task), []).append(j)
        slices = column_slices(tasks)
        for indices in members.values():
            pred_cols = [c for j in indices for c in range(slices[j].start, slices[j].stop)]
            blocks.append(LossBlock(
                level, tasks[indices[0]], torch.tensor(indices), torch.tensor(pred_cols),
                torch.tensor([tasks[j].weight for j in indices], dtype=torch.float32),
                [tasks[j].name for j in indices],
            ))  # fmt: skip
    return blocks


class MultiTaskLoss:
    """Weighted mean over the tasks with labels of the per-task masked mean losses.

    With m_i = 1 where task t has a label: L_t = Σ_i m_i ℓ_t(ŷ_i, y_i) / Σ_i m_i and
    L = Σ_t w_t [n_t > 0] L_t / Σ_t w_t [n_t > 0]. Missing labels are masked with ``torch.where``
    (never indexed out), so the shapes never depend on the data: the same code runs in eager
    mode, under ``torch.compile(dynamic=False)`` and on static-shape (padded) batches, where
    padding rows carry NaN labels. Build it once per task list; calling it is a few tensor
    operations per :class:`LossBlock`.
    """

    def __init__(self, level_tasks: dict[str, list[TaskSpec]]):
        self.blocks = loss_blocks(level_tasks)
        self._on_device: dict[torch.device, list[LossBlock]] = {}

    def _blocks_on(self, device: torch.device) -> list[LossBlock]:
        if device not in self._on_device:
            self._on_device[device] = [block.to(device) for block in self.blocks]
        return self._on_device[device]

    def __call__(self, preds: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 per_task: bool = True) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
        """preds[level] (M, Σ out_dim), targets[level] (M, T) → (loss, {task name: L_t} for the
        tasks with labels when ``per_task``; one host sync for all of them, none without)."""
        # every head stays in the graph (zero gradient when its tasks have no label in this batch),
        # so DDP never sees unused parameters
        connect = sum(p.sum() * 0.0 for p in preds.values())
        if not self.blocks:
            return connect, {}
        weighted, weights, per_block = [], [], []
        for block in self._blocks_on(preds[self.blocks[0].level].device):
            pred = preds[block.level].index_select(1, block.pred_columns)
            y = targets[block.level].index_select(1, block.label_columns)  # (M, G)
            present = ~torch.isnan(y)
            rows = present.to(pred.dtype)
            ell = elementwise_loss(block.example, pred.view(len(pred), len(block.names), block.example.out_dim),
                                   torch.where(present, y, torch.zeros_like(y)))  # fmt: skip
            count = rows.sum(dim=0)
            loss = (ell * rows).sum(dim=0) / count.clamp(min=1.0)  # (G,)
            has = (count > 0).to(loss.dtype)
            weighted.append(block.weights * has * loss)
            weights.append(block.weights * has)
            per_block.append((loss, count))
        total = torch.cat(weighted).sum() / torch.cat(weights).sum().clamp(min=1e-12)
        values: dict[str, float] = {}
        if per_task:
            losses = torch.cat([loss.detach() for loss, _ in per_block]).tolist()
            counts = torch.cat([count for _, count in per_block]).tolist()
            names = [name for block in self.blocks for name in block.names]
            values = {name: value for name, value, n in zip(names, losses, counts, strict=True) if n > 0}
        return total + connect, values


def multitask_loss(
    level_tasks: dict[str, list[TaskSpec]], preds: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
    per_task: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:class:`MultiTaskLoss` built and called once (tests, benchmarks, one-off evaluations; a
    training loop builds the loss once and calls it every step)."""
    return MultiTaskLoss(level_tasks)(preds, targets, per_task)
