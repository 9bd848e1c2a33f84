"""MPNN++ layer: GPS++-style message passing with edge updates: :class:`MPNNPlusLayer`."""

from __future__ import annotations

import torch

from graphium_ray.nn.layers import MessagePassingLayer
from graphium_ray.nn.primitives import MLP
from graphium_ray.nn.scatter import scatter_sum


class MPNNPlusLayer(MessagePassingLayer):
    """MPNN++ layer: GPS++-style message passing with edge updates (Masters et al. 2022,
    "GPS++: An Optimised Hybrid MPNN/Transformer for Molecular Property Prediction").

    For an edge j → i:

    .. math::
        e'_{ji} = \\mathrm{MLP}_e([x_j \\,\\|\\, x_i \\,\\|\\, e_{ji}])

        x'_i = \\mathrm{MLP}_n\\Big([x_i \\,\\|\\, \\textstyle\\sum_{j \\to i} e'_{ji} \\,\\|\\, \\sum_{i \\to k} e'_{ik}]\\Big)

    i.e. each node sees the updated messages it receives and those it sends.

    Args:
        dim: width D of nodes and edges (MLPs: 3D → D → D, with ReLU).
    Shapes:
        x (N, D), edge_index (2, E), edge_attr (E, D) → x' (N, D), e' (E, D).
    """

    updates_edges = True

    def __init__(self, dim: int):
        super().__init__()
        self.edge_mlp = MLP(3 * dim, dim, dim, layers=2)
        self.node_mlp = MLP(3 * dim, dim, dim, layers=2)

    def forward(self, x_ND, edge_index, edge_attr_ED, batch=None, num_graphs=None):
        src, dst = edge_index
        e_new_ED = self.edge_mlp(torch.cat([x_ND[src], x_ND[dst], edge_attr_ED], dim=-1))
        n = x_ND.shape[0]
        received_ND = scatter_sum(e_new_ED, dst, n)
        sent_ND = scatter_sum(e_new_ED, src, n)
        return self.node_mlp(torch.cat([x_ND, received_ND, sent_ND], dim=-1)), e_new_ED
