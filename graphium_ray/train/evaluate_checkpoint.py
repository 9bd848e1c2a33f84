"""Evaluate a checkpoint on a split of prepared data, in the driver process (Ray Data streaming)."""

from __future__ import annotations

from pathlib import Path

from graphium_ray.checkpoints import load_checkpoint
from graphium_ray.data.cache import PreparedData
from graphium_ray.data.collate_fn import GraphCollate
from graphium_ray.data.reader import read_split
from graphium_ray.outputs import LabelNormalizer
from graphium_ray.train.evaluate import collect_predictions, compute_metrics


def evaluate_checkpoint(checkpoint: str | Path, prepared: PreparedData, split: str, batch_size: int = 256) -> dict:
    cfg, data, model, _ = load_checkpoint(checkpoint)
    if data.cache_key != prepared.manifest.cache_key:
        # same tasks are required; a different cache (e.g. new molecules) is fine for evaluation
        if [t["column"] for t in data.tasks] != [t["column"] for t in prepared.manifest.tasks]:
            raise ValueError("the checkpoint's tasks differ from the config's tasks")
    tasks = data.task_specs
    normalizer = LabelNormalizer(tasks, data.label_stats)
    collate = GraphCollate(data.label_widths, data.bond_dim)
    ds = read_split(prepared.featurized_dir, split)
    preds = collect_predictions(model, ds.iter_torch_batches(batch_size=batch_size, collate_fn=collate))
    return compute_metrics(tasks, normalizer, preds)
