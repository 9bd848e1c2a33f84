"""GatedGCN layer: :class:`GatedGCNLayer`."""

from __future__ import annotations

import torch

from graphium_ray.nn.layers import MessagePassingLayer
from graphium_ray.nn.primitives import MuLinear
from graphium_ray.nn.scatter import scatter_sum


class GatedGCNLayer(MessagePassingLayer):
    """GatedGCN layer (Bresson & Laurent 2017, "Residual Gated Graph ConvNets"; edge-feature form of
    Dwivedi et al. 2020, "Benchmarking Graph Neural Networks").

    For an edge j → i with features e_ji:

    .. math::
        \\hat e_{ji} = A x_i + B x_j + C e_{ji},\\qquad \\sigma_{ji} = \\mathrm{sigmoid}(\\hat e_{ji})

        x'_i = U x_i + \\frac{\\sum_{j \\to i} \\sigma_{ji} \\odot V x_j}{\\sum_{j \\to i} \\sigma_{ji} + \\epsilon},
        \\qquad e'_{ji} = \\hat e_{ji}

    Args:
        dim: width D of nodes and edges. eps: ε in the gate normalization (default 1e-6).
    Shapes:
        x (N, D), edge_index (2, E) [sources; targets], edge_attr (E, D) → x' (N, D), e' (E, D).
    """

    updates_edges = True

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.A, self.B, self.C = MuLinear(dim, dim), MuLinear(dim, dim), MuLinear(dim, dim)
        self.U, self.V = MuLinear(dim, dim), MuLinear(dim, dim)
        self.eps = eps

    def forward(self, x_ND, edge_index, edge_attr_ED, batch=None, num_graphs=None):
        src, dst = edge_index
        e_hat_ED = self.A(x_ND)[dst] + self.B(x_ND)[src] + self.C(edge_attr_ED)
        gate_ED = torch.sigmoid(e_hat_ED)
        n = x_ND.shape[0]
        num_ND = scatter_sum(gate_ED * self.V(x_ND)[src], dst, n)
        den_ND = scatter_sum(gate_ED, dst, n)
        return self.U(x_ND) + num_ND / (den_ND + self.eps), e_hat_ED
