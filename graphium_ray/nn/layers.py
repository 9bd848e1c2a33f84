"""The contract of a message-passing layer, and building one by its config name."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from graphium_ray.nn.layer_registry import layer_class


class MessagePassingLayer(nn.Module):
    """One message-passing layer of the network's blocks.

    ``forward(x (N, D), edge_index (2, E), edge_attr (E, D), batch (N,) or None, num_graphs or None)``
    → ``(x' (N, D), edge_attr' (E, D))``; ``batch`` / ``num_graphs`` are for layers that act per
    graph (GPS attention), the others ignore them.

    ``reads_edges``: the layer uses edge features (without it and without edge heads the network
    creates no bond encoder). ``updates_edges``: it returns new edge features (the network norms
    them and feeds them to the next block); otherwise ``edge_attr`` comes back unchanged.
    ``build(dim, heads, dropout)`` makes the layer of width D → D from the model config.
    """

    reads_edges: ClassVar[bool] = True
    updates_edges: ClassVar[bool] = False

    @classmethod
    def build(cls, dim: int, heads: int, dropout: float) -> MessagePassingLayer:
        return cls(dim)

    def forward(self, x_ND: torch.Tensor, edge_index: torch.Tensor, edge_attr_ED: torch.Tensor,
                batch: torch.Tensor | None = None, num_graphs: int | None = None):  # fmt: skip
        raise NotImplementedError


def make_layer(kind: str, dim: int, heads: int = 4, dropout: float = 0.0) -> MessagePassingLayer:
    return layer_class(kind).build(dim, heads, dropout)
