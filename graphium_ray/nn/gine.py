"""GINE layer: :class:`GINELayer`."""

from __future__ import annotations

import torch

from graphium_ray.nn.layers import MessagePassingLayer
from graphium_ray.nn.primitives import MLP, MuLinear
from graphium_ray.nn.scatter import scatter_sum


class GINELayer(MessagePassingLayer):
    """GINE layer (Hu et al., ICLR 2020, "Strategies for Pre-training Graph Neural Networks").

    .. math::
        \\mathbf{x}'_i = \\mathrm{MLP}\\Big((1 + \\epsilon)\\,\\mathbf{x}_i + \\sum_{j \\in \\mathcal{N}(i)}
        \\mathrm{ReLU}(\\mathbf{x}_j + \\mathbf{W}_e \\mathbf{e}_{j,i} + \\mathbf{b}_e)\\Big)

    Same as PyG's ``GINEConv(mlp, eps=eps, edge_dim=edge_dim)`` with the MLP Linear→ReLU→Linear.

    Args:
        in_dim, out_dim: node widths. edge_dim: width D_e of edge features. eps: fixed ε (default 0).
    Shapes:
        x (N, D_in), edge_index (2, E), edge_attr (E, D_e) → x' (N, D_out), edge_attr unchanged.
    """

    @classmethod
    def build(cls, dim: int, heads: int, dropout: float) -> GINELayer:
        return cls(dim, dim, edge_dim=dim)

    def __init__(self, in_dim: int, out_dim: int, edge_dim: int, eps: float = 0.0):
        super().__init__()
        self.eps = eps
        self.edge_lin = MuLinear(edge_dim, in_dim)
        self.mlp = MLP(in_dim, out_dim, out_dim, layers=2)

    def forward(self, x_ND: torch.Tensor, edge_index: torch.Tensor, edge_attr_ED: torch.Tensor,
                batch: torch.Tensor | None = None, num_graphs: int | None = None):  # fmt: skip
        msg_ED = torch.relu(x_ND[edge_index[0]] + self.edge_lin(edge_attr_ED))
        agg_ND = scatter_sum(msg_ED, edge_index[1], x_ND.shape[0])
        return self.mlp((1.0 + self.eps) * x_ND + agg_ND), edge_attr_ED
