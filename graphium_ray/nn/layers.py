"""Layer registry: config name → message-passing layer of width D → D.

Every layer has ``forward(x (N, D), edge_index (2, E), edge_attr (E, D), batch=, num_graphs=)``
→ ``(x' (N, D), edge_attr' (E, D))``; layers that compute new edge features set
``updates_edges = True``.
"""

from __future__ import annotations

from torch import nn

from graphium_ray.nn.dmpnn import DMPNNLayer
from graphium_ray.nn.gated_gcn import GatedGCNLayer
from graphium_ray.nn.gcn import GCNLayer
from graphium_ray.nn.gin import GINLayer
from graphium_ray.nn.gine import GINELayer
from graphium_ray.nn.gps import GPSLayer
from graphium_ray.nn.mpnn import MPNNPlusLayer


class _IgnoreBatch(nn.Module):
    """Adapts a (x, edge_index, edge_attr) layer to the common signature."""

    updates_edges = False

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x, edge_index, edge_attr, batch=None, num_graphs=None):
        return self.layer(x, edge_index, edge_attr)


def make_layer(kind: str, dim: int, heads: int = 4, dropout: float = 0.0) -> nn.Module:
    if kind == "gcn":
        return _IgnoreBatch(GCNLayer(dim, dim))
    if kind == "gin":
        return _IgnoreBatch(GINLayer(dim, dim))
    if kind == "gine":
        return _IgnoreBatch(GINELayer(dim, dim, edge_dim=dim))
    if kind == "gated_gcn":
        return GatedGCNLayer(dim)
    if kind == "mpnn":
        return MPNNPlusLayer(dim)
    if kind == "dmpnn":
        return DMPNNLayer(dim)
    if kind == "gps":
        return GPSLayer(dim, heads, dropout)
    raise ValueError(f"unknown layer '{kind}'")
