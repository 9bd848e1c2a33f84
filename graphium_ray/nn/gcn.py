"""GCN layer: :class:`GCNLayer`."""

from __future__ import annotations

import torch
from torch import nn

from graphium_ray.nn.layers import MessagePassingLayer
from graphium_ray.nn.primitives import MuLinear
from graphium_ray.nn.scatter import scatter_count, scatter_sum


class GCNLayer(MessagePassingLayer):
    """GCN layer (Kipf & Welling, ICLR 2017, "Semi-Supervised Classification with Graph Convolutional Networks").

    .. math::
        \\mathbf{x}'_i = \\sum_{j \\in \\mathcal{N}(i) \\cup \\{i\\}} \\frac{1}{\\sqrt{\\hat d_i \\hat d_j}}
        \\mathbf{W} \\mathbf{x}_j + \\mathbf{b},\\qquad \\hat d_i = 1 + |\\mathcal{N}(i)|

    Same as PyG's ``GCNConv(in, out)`` with self-loops and symmetric normalization; edge features
    are not used (returned unchanged).

    Args:
        in_dim: input width D_in. out_dim: output width D_out (default D_in).
    Shapes:
        x (N, D_in), edge_index (2, E), edge_attr (E, D_e) → x' (N, D_out), edge_attr unchanged.
    """

    reads_edges = False

    def __init__(self, in_dim: int, out_dim: int | None = None):
        super().__init__()
        out_dim = out_dim or in_dim
        self.lin = MuLinear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, x_ND: torch.Tensor, edge_index: torch.Tensor, edge_attr_ED: torch.Tensor,
                batch: torch.Tensor | None = None, num_graphs: int | None = None):  # fmt: skip
        n = x_ND.shape[0]
        loops = torch.arange(n, device=x_ND.device)
        src = torch.cat([edge_index[0], loops])
        dst = torch.cat([edge_index[1], loops])
        deg_inv_sqrt = scatter_count(dst, n, x_ND.dtype).pow(-0.5)
        weight_E = deg_inv_sqrt[src] * deg_inv_sqrt[dst]
        h_ND = self.lin(x_ND)
        out_ND = scatter_sum(h_ND[src] * weight_E.unsqueeze(-1), dst, n)
        return out_ND + self.bias, edge_attr_ED
