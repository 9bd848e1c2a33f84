"""What a Ray Train worker feeds Lightning: re-iterable batch streams over its dataset shards.

Training (``train.shard_train``):

* ``hash`` (default): every worker reads the whole train split from the cache's files in the same
  order, seeded by (seed, epoch), cuts it into global batches of ``train.batch_size`` rows and
  keeps the rows whose key hash falls to it. All
  workers thus step once per global batch, and the data order does not depend on timing or on
  the number of workers: runs are reproducible. A worker left with no row of a global batch feeds
  a padding-only batch (zero loss and gradient), so DDP stays in step.
* ``ray``: Ray Data's ``streaming_split`` (each row read by one worker; the way to go on large
  clusters), ``ceil(batch_size / workers)`` rows per worker and step.

A train split that fits ``train.in_memory_mb`` is read once into each worker's memory (Arrow; with
``hash``, from the cache's files by the worker itself, see ``train/entry.py``) and every epoch is a
seeded permutation of it (no Ray Data execution per epoch). A larger one is read again every epoch:
with ``hash``, by the worker from the cache's files in a seeded order through a shuffle buffer, on a
prefetch thread (:func:`~graphium_ray.data.reader.shuffled_split_tables`); with ``ray``, through its
Ray Data shard and a seeded local shuffle buffer.

Static-shape batches are packed per worker; packing gives workers different batch counts, so they
run in lockstep (:func:`lockstep`). Evaluation batches are dealt by key hash, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import torch
import torch.distributed as dist

from graphium_ray.batch import GraphBatch
from graphium_ray.data.collate import deal_rows
from graphium_ray.data.collate_fn import GraphCollate
from graphium_ray.data.static_shapes import StaticBatcher, StaticShape, pe_widths
from graphium_ray.manifest import ModelData
from graphium_ray.train.prefetch import prefetched


def per_worker_batch(global_batch: int, workers: int) -> int:
    return max(1, math.ceil(global_batch / workers))


def idle_batch(data: ModelData, batcher: StaticBatcher | None = None) -> GraphBatch:
    """A padding-only batch (zero loss and gradient) for workers in lockstep: of ``batcher``'s
    static shape, or one padding graph."""
    batcher = batcher or StaticBatcher(StaticShape.for_batch_size(1, 1, 1), data.label_widths, data.bond_dim)
    return batcher.empty(data.atom_dim, pe_widths(data.featurizer), data.mol_feat_dim)


def lockstep(batches: Iterator[GraphBatch], idle: GraphBatch, device: torch.device) -> Iterator[GraphBatch]:
    """Data-parallel workers with different batch counts: a worker that runs out feeds padding-only
    batches (zero loss, zero gradient) until every worker is done; DDP never hangs, nothing is dropped."""
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    for batch in batches:
        if distributed:
            dist.all_reduce(torch.ones(1, device=device), op=dist.ReduceOp.MAX)
        yield batch
    if distributed:
        while True:
            more = torch.zeros(1, device=device)
            dist.all_reduce(more, op=dist.ReduceOp.MAX)
            if not more.item():
                return
            yield idle


class TrainBatches:
    """Re-iterable: each ``iter()`` is one epoch over this worker's train rows.

    ``shard``: the worker's ``get_dataset_shard("train")`` (``ray``; None with ``hash``); ``epoch_fn()``: the 0-based global epoch
    (seeds the shuffle); ``worker``: (rank, world); ``batcher``: a static-shape packer or None;
    ``idle``: the padding-only batch; ``prefetched``: a future of the whole split as one table
    with one chunk per column (fast random ``take``), already being read, for a split the worker
    keeps (``train/entry.py:read_kept_train_split``), else None; ``read_epoch(batch_rows=, seed=)``: the worker reads a split it does not keep itself, one
    epoch of tables in the order ``seed`` fixes (``hash``; None: stream the Ray Data ``shard``)."""

    def __init__(self, shard, global_batch: int, seed: int, epoch_fn: Callable[[], int], worker: tuple[int, int],
                 mode: str, collate: GraphCollate, idle: GraphBatch, device: torch.device, batcher=None,
                 prefetched=None, read_epoch: Callable[..., Iterator[pa.Table]] | None = None):  # fmt: skip
        self.shard, self.seed, self.epoch_fn, self.worker, self.mode = shard, seed, epoch_fn, worker, mode
        self.batch_rows = global_batch if mode == "hash" else per_worker_batch(global_batch, worker[1])
        self.collate, self.idle, self.device, self.batcher = collate, idle, device, batcher
        self.in_memory, self.read_epoch = prefetched is not None, read_epoch
        self.streamed_here = not self.in_memory and read_epoch is not None
        self._prefetched = prefetched  # dropped once read into _table
        self._table: pa.Table | None = None

    def _tables(self) -> Iterator[pa.Table]:
        """This epoch's row batches (``batch_rows`` each), before dealing and collating."""
        if self.streamed_here:
            yield from self.read_epoch(batch_rows=self.batch_rows, seed=[self.seed, self.epoch_fn()])
            return
        if not self.in_memory:
            yield from self.shard.iter_batches(batch_size=self.batch_rows, batch_format="pyarrow", **self._shuffle())
            return
        if self._table is None:
            self._table, self._prefetched = self._prefetched.result(), None
        order = np.random.default_rng([self.seed, self.epoch_fn()]).permutation(self._table.num_rows)
        for start in range(0, len(order), self.batch_rows):
            yield self._table.take(pa.array(order[start:start + self.batch_rows]))

    def _shuffle(self) -> dict:
        return {"local_shuffle_buffer_size": 4 * self.batch_rows,
                "local_shuffle_seed": self.seed * 100_003 + self.epoch_fn()}  # fmt: skip

    def __iter__(self) -> Iterator[GraphBatch]:
        if self.batcher is not None:
            tables = prefetched(self._tables(), name="train-read") if self.streamed_here else self._tables()
            mine = (deal_rows(t, self.worker) if self.mode == "hash" else t for t in tables)
            return lockstep(self.batcher(t for t in mine if t is not None), self.idle, self.device)
        if self.streamed_here:  # read, shuffled and collated on a thread, ahead of the model's step
            batches = prefetched((self.collate(t) for t in self._tables()), name="train-read")
        elif self.in_memory:
            batches = (self.collate(t) for t in self._tables())
        else:
            batches = self.shard.iter_torch_batches(batch_size=self.batch_rows, collate_fn=self.collate,
                                                    **self._shuffle())  # fmt: skip
        if self.mode == "hash":  # every worker sees every global batch: an empty deal becomes padding
            return (self.idle if b is None else b for b in batches)
        return lockstep(iter(batches), self.idle, self.device)


class EvalBatches:
    """Re-iterable: this worker's rows of an evaluation split (dealt by key hash, none dropped).

    ``read_batches(batch_rows=...)``: reads the split's rows in this process, one cache file at a
    time, cut into tables of ``batch_rows`` (:func:`~graphium_ray.data.reader.iter_split_tables`).
    ``keep``: collate the split once and keep the batches (no read per validation pass), for a split
    that fits the worker's memory; a larger one is read again, on a prefetch thread, at every pass."""

    def __init__(self, batch_rows: int, widths: dict[str, int], bond_dim: int, worker: tuple[int, int],
                 read_batches: Callable[..., Iterator[pa.Table]], keep: bool = False):  # fmt: skip
        self.batch_rows, self.keep, self.read_batches = batch_rows, keep, read_batches
        self.collate = GraphCollate(widths, bond_dim, worker=worker)
        self._kept: list[GraphBatch] | None = None

    def __iter__(self) -> Iterator[GraphBatch]:
        if self._kept is not None:
            return iter(self._kept)
        batches = (self.collate(table) for table in self.read_batches(batch_rows=self.batch_rows))
        if not self.keep:
            return (b for b in prefetched(batches, name="eval-read") if b is not None)
        mine = (b for b in batches if b is not None)
        self._kept = list(mine)
        return iter(self._kept)


class TensorDictBatches:
    """Static-shape batches as flat dicts of tensors (:meth:`GraphBatch.as_tensors`), for PopTorch."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return (b.as_tensors() for b in self.batches)
