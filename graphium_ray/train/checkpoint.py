"""Reporting a checkpoint to Ray Train from the workers (the directory format:
:mod:`graphium_ray.checkpoints`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def report_with_checkpoint(metrics: dict, is_rank_zero: bool, write: Callable[[Path], None]) -> None:
    """``ray.train.report`` from every worker; rank 0 attaches a checkpoint that ``write(dir)`` fills."""
    import tempfile

    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if is_rank_zero:
            write(Path(tmp))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)
