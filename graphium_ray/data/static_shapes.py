"""Static-shape batches: graphs packed into fixed node / edge / graph budgets, the rest padding.

Compilers that specialise on tensor shapes (``torch.compile(dynamic=False)``, CUDA graphs,
PopTorch on IPUs) need every batch to have the same shapes. A padded batch has

* ``graphs`` graph slots: the real graphs first, then one padding graph that owns every padding
  node, then empty slots;
* ``nodes`` node rows: the real nodes, then ≥ 1 padding node (zero features);
* ``edges`` edge rows: the real edges, then self-loops on the first padding node.

Padding never touches a real graph: no padding edge reaches a real node and every padding node
belongs to the padding graph, so message passing, pooling and the virtual node of real graphs are
unchanged. Labels of padding rows are NaN (ignored by the losses) and ``graph_mask`` /
``node_mask`` mark the real rows (metrics and batch norm use them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from graphium_ray.batch import GraphBatch
from graphium_ray.data.collate import collate_arrays


@dataclass(frozen=True)
class StaticShape:
    graphs: int  # graph slots, including the padding graph
    nodes: int  # node rows, including ≥ 1 padding node
    edges: int  # directed-edge rows

    @classmethod
    def for_batch_size(cls, batch_size: int, nodes_per_graph: float, edges_per_graph: float) -> StaticShape:
        """Graphium's IPU convention: budgets are per-graph averages times the batch size."""
        return cls(batch_size + 1, math.ceil(batch_size * nodes_per_graph) + 1, math.ceil(batch_size * edges_per_graph))

    def fits(self, graphs: int, nodes: int, edges: int) -> bool:
        return graphs <= self.graphs - 1 and nodes <= self.nodes - 1 and edges <= self.edges


def pe_widths(featurizer: dict) -> dict[str, int]:
    """Positional-encoding columns and their widths for a featurizer config (as a dict)."""
    pe = featurizer["positional_encodings"]
    lap, rw = pe["laplacian_k"], pe["random_walk_k"]
    return {**({"lap_vec": lap, "lap_val": lap} if lap else {}), **({"rw": rw} if rw else {})}


class GraphTooLargeError(ValueError):
    """One molecule alone exceeds the static batch budget."""


def _pad_rows(t: torch.Tensor, rows: int, value: float = 0.0) -> torch.Tensor:
    return torch.cat([t, t.new_full((rows, *t.shape[1:]), value)]) if rows else t


def pad_batch(batch: GraphBatch, shape: StaticShape) -> GraphBatch:
    """The batch padded to ``shape`` (see the module docstring); raises if it does not fit."""
    g, n, e = batch.num_graphs, batch.num_nodes, int(batch.edge_index.shape[1])
    if not shape.fits(g, n, e):
        raise GraphTooLargeError(f"a batch of {g} graphs, {n} nodes, {e} edges does not fit {shape}")
    pad_n, pad_e = shape.nodes - n, shape.edges - e
    loops = torch.full((2, pad_e), n, dtype=batch.edge_index.dtype)
    y = {}
    for level, t in batch.y.items():
        y[level] = _pad_rows(t, {"graph": shape.graphs - g, "node": pad_n, "edge": pad_e}[level], float("nan"))
    return GraphBatch(
        x=_pad_rows(batch.x, pad_n),
        edge_index=torch.cat([batch.edge_index, loops], dim=1),
        edge_attr=_pad_rows(batch.edge_attr, pad_e),
        batch=torch.cat([batch.batch, torch.full((pad_n,), g, dtype=batch.batch.dtype)]),
        num_graphs=shape.graphs,
        pe={k: _pad_rows(v, pad_n) for k, v in batch.pe.items()},
        y=y,
        mol_feat=None if batch.mol_feat is None else _pad_rows(batch.mol_feat, shape.graphs - g),
        graph_mask=torch.arange(shape.graphs) < g,
        node_mask=torch.arange(shape.nodes) < n,
    )


class StaticBatcher:
    """Re-packs a stream of row batches (Arrow tables of the featurized schema) into padded
    GraphBatches of one shape. Rows are taken in order; a batch closes when the next graph would
    overflow a budget, and the rows that did not fit open the next batch: no row is dropped."""

    def __init__(self, shape: StaticShape, widths: dict[str, int], bond_dim: int):
        self.shape = shape
        self.widths = dict(widths)
        self.bond_dim = bond_dim

    def _cuts(self, nodes: np.ndarray, edges: np.ndarray, keys: np.ndarray | None) -> list[int]:
        """End indices of consecutive row groups that each fit the budget (the last may be partial)."""
        cuts, g, n, e = [], 0, 0, 0
        for i, (ni, ei) in enumerate(zip(nodes.tolist(), edges.tolist(), strict=True)):
            if not self.shape.fits(1, ni, ei):
                key = keys[i] if keys is not None else f"row {i}"
                raise GraphTooLargeError(
                    f"molecule {key} has {ni} atoms and {ei} directed edges, more than one static batch holds "
                    f"({self.shape.nodes - 1} nodes, {self.shape.edges} edges): raise "
                    "train.static_shapes.max_nodes_per_graph / max_edges_per_graph"
                )
            if not self.shape.fits(g + 1, n + ni, e + ei):
                cuts.append(i)
                g, n, e = 0, 0, 0
            g, n, e = g + 1, n + ni, e + ei
        return cuts

    def __call__(self, row_batches: Iterable[pa.Table]) -> Iterator[GraphBatch]:
        carry: pa.Table | None = None
        for rows in row_batches:
            rows = rows if carry is None else pa.concat_tables([carry, rows])
            carry = None
            keys = rows.column("mol_key").to_numpy(zero_copy_only=False) if "mol_key" in rows.column_names else None
            cuts = self._cuts(rows.column("num_nodes").to_numpy(), rows.column("num_edges").to_numpy(), keys)
            start = 0
            for end in cuts:
                yield self._pad(rows.slice(start, end - start))
                start = end
            if start < rows.num_rows:
                carry = rows.slice(start)
        if carry is not None:
            yield self._pad(carry)

    def _pad(self, rows: pa.Table) -> GraphBatch:
        return pad_batch(collate_arrays(rows, self.widths, self.bond_dim), self.shape)

    def empty(self, atom_dim: int, pe_widths: dict[str, int], mol_feat_dim: int = 0) -> GraphBatch:
        """A batch of padding only (no real graph): what a data-parallel worker whose data ran out
        feeds while the others finish, so every worker takes the same number of steps."""
        level_rows = {"graph": 0, "node": 0, "edge": 0}
        empty = GraphBatch(
            x=torch.zeros((0, atom_dim)),
            edge_index=torch.zeros((2, 0), dtype=torch.long),
            edge_attr=torch.zeros((0, self.bond_dim)),
            batch=torch.zeros(0, dtype=torch.long),
            num_graphs=0,
            pe={k: torch.zeros((0, w)) for k, w in pe_widths.items()},
            y={lvl: torch.zeros((level_rows[lvl], w)) for lvl, w in self.widths.items() if w},
            mol_feat=torch.zeros((0, mol_feat_dim)) if mol_feat_dim else None,
        )
        return pad_batch(empty, self.shape)
