"""The batch of graphs every model consumes: plain tensors, no PyG objects, no Ray.

Graphs are concatenated: node rows of graph g are those with ``batch == g``; ``edge_index``
is offset into the concatenated node rows. Labels per level use NaN for "missing".
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch


@dataclass
class GraphBatch:
    """x (N, F_atom); edge_index (2, E) long; edge_attr (E, F_bond); batch (N,) long graph id per node.

    pe: positional encodings per node, e.g. ``lap_vec`` (N, k), ``lap_val`` (N, k), ``rw`` (N, k).
    y: labels per level: ``graph`` (G, T_g), ``node`` (N, T_n), ``edge`` (E, T_e); NaN = missing.
    graph_mask (G,) / node_mask (N,): False for padding in static-shape batches.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    num_graphs: int
    pe: dict[str, torch.Tensor] = field(default_factory=dict)
    y: dict[str, torch.Tensor] = field(default_factory=dict)
    graph_mask: torch.Tensor | None = None
    node_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> GraphBatch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = value.to(device, non_blocking=True)
            elif isinstance(value, dict):
                value = {k: v.to(device, non_blocking=True) for k, v in value.items()}
            moved[f.name] = value
        return GraphBatch(**moved)

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])
