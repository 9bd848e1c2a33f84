"""``GraphCollate``: the ``collate_fn`` for Ray Data's ``iter_torch_batches``. It takes Arrow
batches (6× faster than NumPy object arrays, see BENCHMARKS.md) and builds a
:class:`~graphium_ray.batch.GraphBatch` with :func:`~graphium_ray.data.collate.collate_arrays`.
"""

from __future__ import annotations

import pyarrow as pa
from ray.data.collate_fn import ArrowBatchCollateFn

from graphium_ray.batch import GraphBatch
from graphium_ray.data.collate import collate_arrays, deal_rows


class GraphCollate(ArrowBatchCollateFn):
    """``collate_fn`` for ``iter_torch_batches``: Arrow batch → GraphBatch.

    With ``worker=(rank, world)`` only that worker's rows are kept (:func:`deal_rows`); a batch
    left with no row collates to None.
    """

    def __init__(self, widths: dict[str, int], bond_dim: int, worker: tuple[int, int] | None = None):
        super().__init__()
        self.widths = dict(widths)
        self.bond_dim = bond_dim
        self.worker = worker

    def __call__(self, batch: pa.Table) -> GraphBatch | None:
        batch = deal_rows(batch, self.worker)
        return None if batch is None else collate_arrays(batch, self.widths, self.bond_dim)
