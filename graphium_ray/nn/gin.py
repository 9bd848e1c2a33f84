"""GIN layer: :class:`GINLayer`."""

from __future__ import annotations

import torch

from graphium_ray.nn.layers import MessagePassingLayer
from graphium_ray.nn.primitives import MLP
from graphium_ray.nn.scatter import scatter_sum


class GINLayer(MessagePassingLayer):
    """GIN layer (Xu et al., ICLR 2019, "How Powerful are Graph Neural Networks?").

    .. math::
        \\mathbf{x}'_i = \\mathrm{MLP}\\Big((1 + \\epsilon)\\,\\mathbf{x}_i + \\sum_{j \\in \\mathcal{N}(i)} \\mathbf{x}_j\\Big)

    Same as PyG's ``GINConv(mlp, eps=eps, train_eps=False)`` with the MLP Linear→ReLU→Linear.

    Args:
        in_dim, out_dim: widths (out_dim defaults to in_dim). eps: the fixed ε (default 0).
    Shapes:
        x (N, D_in), edge_index (2, E), edge_attr (E, D_e) → x' (N, D_out), edge_attr unchanged.
    """

    reads_edges = False

    def __init__(self, in_dim: int, out_dim: int | None = None, eps: float = 0.0):
        super().__init__()
        out_dim = out_dim or in_dim
        self.eps = eps
        self.mlp = MLP(in_dim, out_dim, out_dim, layers=2)

    def forward(self, x_ND: torch.Tensor, edge_index: torch.Tensor, edge_attr_ED: torch.Tensor,
                batch: torch.Tensor | None = None, num_graphs: int | None = None):  # fmt: skip
        agg_ND = scatter_sum(x_ND[edge_index[0]], edge_index[1], x_ND.shape[0])
        return self.mlp((1.0 + self.eps) * x_ND + agg_ND), edge_attr_ED
