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

    mol_keys: molecule keys (canonical SMILES) of the G graphs, for per-molecule outputs.
    pe: positional encodings per node, e.g. ``lap_vec`` (N, k), ``lap_val`` (N, k), ``rw`` (N, k).
    y: labels per level: ``graph`` (G, T_g), ``node`` (N, T_n), ``edge`` (E, T_e); NaN = missing.
    mol_feat: (G, D) molecule-level input features (``featurizer.molecule``; NaN = undefined), or None.
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
    mol_keys: list[str] | None = None  # the molecule key of each graph, when the reader kept it
    mol_feat: torch.Tensor | None = None

    def to(self, device: torch.device | str, **_: object) -> GraphBatch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = value.to(device, non_blocking=True)
            elif isinstance(value, dict):
                value = {k: v.to(device, non_blocking=True) for k, v in value.items()}
            moved[f.name] = value
        return GraphBatch(**moved)

    def real_rows(self, level: str) -> torch.Tensor | None:
        """Which rows of ``level`` (``graph``: (G,), ``node``: (N,), ``edge``: (E,), an edge being real
        when its source node is) are real in a static-shape batch; None when nothing is padded."""
        if level == "graph":
            return self.graph_mask
        if self.node_mask is None:
            return None
        return self.node_mask if level == "node" else self.node_mask[self.edge_index[0]]

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    def as_tensors(self) -> dict[str, torch.Tensor]:
        """A flat dict of tensors (``pe/<name>``, ``y/<level>``): what graph compilers such as PopTorch
        accept as a batch. Only for static-shape batches (``graph_mask`` set): ``num_graphs`` is
        its length."""
        if self.graph_mask is None or self.node_mask is None:
            raise ValueError("as_tensors() needs a static-shape batch (train.static_shapes)")
        out = {f: getattr(self, f) for f in ("x", "edge_index", "edge_attr", "batch", "graph_mask", "node_mask")}
        if self.mol_feat is not None:
            out["mol_feat"] = self.mol_feat
        out.update({f"pe/{k}": v for k, v in self.pe.items()})
        out.update({f"y/{k}": v for k, v in self.y.items()})
        return out

    @staticmethod
    def from_tensors(tensors: dict[str, torch.Tensor]) -> GraphBatch:
        """Inverse of :meth:`as_tensors`."""
        plain = {k: v for k, v in tensors.items() if "/" not in k}
        pe = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("pe/")}
        y = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("y/")}
        return GraphBatch(**plain, num_graphs=int(plain["graph_mask"].shape[0]), pe=pe, y=y)
