"""Evaluate a checkpoint on a split of prepared data, in the driver process (a small cache read
here file by file, a larger one streamed by Ray Data)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from graphium_ray.checkpoints import load_checkpoint
from graphium_ray.data.cache import PreparedData
from graphium_ray.data.collate_fn import GraphCollate
from graphium_ray.data.in_driver import cache_small_enough
from graphium_ray.data.reader import featurized_files, iter_split_tables, read_split
from graphium_ray.outputs import LabelNormalizer
from graphium_ray.train.evaluate import collect_predictions, compute_metrics


def evaluate_checkpoint(checkpoint: str | Path, prepared: PreparedData, split: str, batch_size: int = 256,
                        start_ray: Callable[[], None] | None = None) -> dict:  # fmt: skip
    """Metrics (real units) of ``checkpoint`` on ``split``. ``start_ray`` is called before Ray Data
    streams a large cache; a small one (:func:`~graphium_ray.data.in_driver.cache_small_enough`)
    needs no Ray."""
    cfg, data, model, _ = load_checkpoint(checkpoint)
    if data.cache_key != prepared.manifest.cache_key:
        # same tasks are required; a different cache (e.g. new molecules) is fine for evaluation
        if [t["column"] for t in data.tasks] != [t["column"] for t in prepared.manifest.tasks]:
            raise ValueError("the checkpoint's tasks differ from the config's tasks")
    tasks = data.task_specs
    normalizer = LabelNormalizer(tasks, data.label_stats)
    collate = GraphCollate(data.label_widths, data.bond_dim)
    if cache_small_enough(featurized_files(prepared.featurized_dir)):
        batches = (collate(t) for t in iter_split_tables(prepared.featurized_dir, split, batch_rows=batch_size))
    else:
        if start_ray is not None:
            start_ray()
        batches = read_split(prepared.featurized_dir, split).iter_torch_batches(batch_size=batch_size, collate_fn=collate)
    preds = collect_predictions(model, batches)
    return compute_metrics(tasks, normalizer, preds)
