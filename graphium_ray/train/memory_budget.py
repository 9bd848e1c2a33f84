"""Which splits a Ray Train worker keeps in its memory (``train.in_memory_mb``), decided the same
way by the worker's entry (what to start reading early) and the training loop (how to iterate). Sizes are the train
split's bytes as the Arrow table a worker reads (estimated from the cache's Parquet footers:
``train/driver.py:train_split_bytes``); other splits are estimated at the same bytes per row."""

from __future__ import annotations


def keeps_train_in_memory(train_bytes: int, in_memory_mb: float, shard_train: str, world: int) -> bool:
    """Whether a worker reads its train rows once and keeps them (else: streamed every epoch).
    ``shard_train="hash"``: each worker reads the whole split; ``"ray"``: 1/world of it."""
    return train_bytes <= in_memory_mb * 2**20 * (1 if shard_train == "hash" else world)


def fits_in_memory(train_bytes: int, splits: dict[str, int], split: str, in_memory_mb: float) -> bool:
    """Whether a worker may hold the whole of an evaluation ``split`` at once: the validation split
    is then collated once and kept (else streamed at every validation pass); either split is then
    read from the cache's files in the worker rather than through a Ray Data execution."""
    split_bytes = train_bytes * splits.get(split, 0) / max(1, splits.get("train", 0))
    return split_bytes <= in_memory_mb * 2**20
