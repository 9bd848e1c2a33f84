"""Run a model over batches and compute per-task metrics in real units."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from graphium_ray.batch import GraphBatch
from graphium_ray.outputs import LabelNormalizer, column_slices, to_real_units
from graphium_ray.tasks import TaskSpec, tasks_at
from graphium_ray.train.metrics import task_metrics

LEVELS = ("graph", "node", "edge")


@torch.no_grad()
def collect_batch(model: nn.Module, batch: GraphBatch) -> dict[str, dict[str, np.ndarray]]:
    """{level: {"pred": (rows, W) raw head outputs, "y": (rows, T) labels}} of one batch's real rows
    (plus ``"key"``: the molecule keys of graph rows when the batch carries them)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for level, pred in model(batch).items():
        keep = _real_rows(batch, level)
        out[level] = {"pred": pred[keep].float().cpu().numpy(), "y": batch.y[level][keep].cpu().numpy()}
        if level == "graph" and batch.mol_keys is not None:
            out[level]["key"] = np.asarray(batch.mol_keys, dtype=object)
    return out


@torch.no_grad()
def collect_predictions(
    model: nn.Module, batches: Iterable[GraphBatch], device: torch.device | str = "cpu"
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`collect_batch` over all batches, concatenated."""
    model.eval()
    return merge_predictions([collect_batch(model, batch.to(device)) for batch in batches])


def _real_rows(batch: GraphBatch, level: str) -> torch.Tensor | slice:
    mask = batch.real_rows(level)
    return slice(None) if mask is None else mask


def merge_predictions(parts: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Concatenate the outputs of :func:`collect_predictions` from several workers."""
    merged: dict[str, dict[str, np.ndarray]] = {}
    for level in LEVELS:
        present = [p[level] for p in parts if level in p]
        if present:
            keys = [k for k in ("pred", "y", "key") if all(k in p for p in present)]
            merged[level] = {k: np.concatenate([p[k] for p in present]) for k in keys}
    return merged


def compute_metrics(tasks: list[TaskSpec], normalizer: LabelNormalizer, preds: dict) -> dict[str, dict]:
    """{task name: {metric: value or None, "n": labels}} in real units."""
    result: dict[str, dict] = {}
    for level in LEVELS:
        level_tasks = tasks_at(tasks, level)
        if not level_tasks or level not in preds:
            continue
        real = to_real_units(level_tasks, normalizer, level, preds[level]["pred"])
        y_all = preds[level]["y"]
        for j, (task, cols) in enumerate(zip(level_tasks, column_slices(level_tasks), strict=True)):
            present = ~np.isnan(y_all[:, j])
            result[task.name] = task_metrics(task.kind, task.metrics, y_all[present, j].astype(np.float64),
                                             real[present, cols].astype(np.float64))  # fmt: skip
    return result
