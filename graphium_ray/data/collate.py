"""Arrow (or NumPy) batch of featurized rows → :class:`~graphium_ray.batch.GraphBatch`.

Built directly from the flattened columns: an Arrow list column's values buffer *is* the
concatenation of its rows, so each tensor is one buffer view (plus one offset computation for
``edge_index``); no per-graph Python objects. No Ray in here: :class:`~graphium_ray.data.collate_fn.GraphCollate`
wraps it as the ``collate_fn`` of Ray's ``iter_torch_batches``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from graphium_ray.batch import GraphBatch

PE_COLUMNS = ("lap_vec", "lap_val", "rw")


def _flat(column, dtype) -> np.ndarray:
    """A list column → its values as one 1-D array. Accepts what Ray hands a NumPy collate (object
    array of arrays, or 2-D when lengths are equal) and Arrow list arrays (flattened without copies)."""
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        values = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        return values if values.flags.writeable else values.copy()  # torch tensors must own writable memory
    if column.dtype != object:
        return np.array(column, dtype=dtype).reshape(-1)  # a copy: Ray's arrays are read-only
    if len(column) == 0:
        return np.zeros(0, dtype)
    return np.concatenate([np.asarray(v, dtype=dtype).reshape(-1) for v in column])


def collate_arrays(batch, widths: dict[str, int], bond_dim: int) -> GraphBatch:
    """``batch``: columns of the featurized schema (a dict of NumPy columns, or an Arrow table);
    ``widths``: label count per level."""
    num_nodes = np.asarray(batch["num_nodes"], dtype=np.int64)
    num_edges = np.asarray(batch["num_edges"], dtype=np.int64)
    n_graphs, n_total, e_total = len(num_nodes), int(num_nodes.sum()), int(num_edges.sum())
    x = _flat(batch["x"], np.float32).reshape(n_total, -1)
    edge_attr = _flat(batch["edge_attr"], np.float32).reshape(e_total, bond_dim)
    edge_index = _edges(batch["edge_index"], num_nodes, num_edges)
    graph_of_node = np.repeat(np.arange(n_graphs, dtype=np.int64), num_nodes)
    names = batch.column_names if isinstance(batch, pa.Table) else batch
    pe = {c: torch.from_numpy(_flat(batch[c], np.float32).reshape(n_total, -1)) for c in PE_COLUMNS if c in names}
    rows = {"graph": n_graphs, "node": n_total, "edge": e_total}
    y = {
        lvl: torch.from_numpy(_flat(batch[f"y_{lvl}"], np.float32).reshape(rows[lvl], w))
        for lvl, w in widths.items()
        if w
    }
    mol_feat = torch.from_numpy(_flat(batch["mol_feat"], np.float32).reshape(n_graphs, -1)) if "mol_feat" in names else None
    keys = batch.column("mol_key").to_pylist() if isinstance(batch, pa.Table) and "mol_key" in names else None
    return GraphBatch(
        mol_keys=keys,
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(edge_index),
        edge_attr=torch.from_numpy(edge_attr),
        batch=torch.from_numpy(graph_of_node),
        num_graphs=n_graphs,
        pe=pe,
        y=y,
        mol_feat=mol_feat,
    )


def _edges(column: np.ndarray, num_nodes: np.ndarray, num_edges: np.ndarray) -> np.ndarray:
    """Per-graph (2, E_g) index blocks, flattened [src..., dst...] → one (2, E) with node offsets."""
    flat = _flat(column, np.int64)
    e_total = int(num_edges.sum())
    if e_total == 0:
        return np.zeros((2, 0), np.int64)
    node_offset = np.concatenate([[0], np.cumsum(num_nodes)[:-1]])
    edge_start = np.concatenate([[0], np.cumsum(2 * num_edges)[:-1]])
    graph_of_edge = np.repeat(np.arange(len(num_edges)), num_edges)
    local = np.arange(e_total) - np.repeat(np.cumsum(num_edges) - num_edges, num_edges)
    src = flat[edge_start[graph_of_edge] + local]
    dst = flat[edge_start[graph_of_edge] + num_edges[graph_of_edge] + local]
    shift = node_offset[graph_of_edge]
    return np.stack([src + shift, dst + shift])


def deal_rows(batch: pa.Table, worker: tuple[int, int] | None) -> pa.Table | None:
    """The rows of ``batch`` that belong to worker ``(rank, world)``: ``part`` ≡ rank (mod world).
    Workers that each read a whole evaluation split thus see disjoint rows covering all of it.
    None when no row is left."""
    if worker is None or worker[1] <= 1:
        return batch
    rank, world = worker
    batch = batch.filter(pa.array(np.asarray(batch.column("part")) % world == rank))
    return batch if batch.num_rows else None
