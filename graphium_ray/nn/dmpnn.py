"""D-MPNN layer: directed bond messages without backflow: :class:`DMPNNLayer`."""

from __future__ import annotations

import torch
from torch import nn

from graphium_ray.nn.layers import MessagePassingLayer
from graphium_ray.nn.scatter import scatter_sum


def reverse_edges(num_edges: int, device: torch.device) -> torch.Tensor:
    """(E,) index of each edge's reverse: k XOR 1 (itself for a trailing unpaired edge)."""
    k = torch.arange(num_edges, device=device)
    rev = torch.bitwise_xor(k, 1)
    return torch.where(rev < num_edges, rev, k)


class DMPNNLayer(MessagePassingLayer):
    """D-MPNN layer: directed bond messages without backflow (Yang et al. 2019, "Analyzing Learned
    Molecular Representations for Property Prediction"; the message passing of chemprop).

    State lives on directed edges. For the edge u → v, the message is what reaches u from every
    neighbour except v (the reverse edge v → u is taken back out, so a message never returns to the
    atom it came from):

    .. math::
        m_{uv} = \\sum_{k \\to u} e_{ku} - e_{vu}

        e'_{uv} = W_e [x_u \\,\\|\\, m_{uv}]

        x'_v = W_n \\Big[x_v \\,\\|\\, \\textstyle\\sum_{u \\to v} e'_{uv}\\Big]

    Chemprop keeps only edge states until a final atom readout; here every block also updates the atoms
    (the network's norm, ReLU, dropout and residual follow, as for the other layers), so D-MPNN stacks,
    pools and feeds node-level heads like every other layer.

    Edges come in bond pairs (bond b is edges 2b and 2b+1, the featurizer's layout, kept by batching),
    so the reverse of edge k is k XOR 1; a trailing unpaired edge (static-shape padding) is its own
    reverse.

    Args:
        dim: width D of nodes and edges.
    Shapes:
        x (N, D), edge_index (2, E), edge_attr (E, D) → x' (N, D), e' (E, D).
    """

    updates_edges = True

    def __init__(self, dim: int):
        super().__init__()
        self.edge_lin = nn.Linear(2 * dim, dim)
        self.node_lin = nn.Linear(2 * dim, dim)

    def forward(self, x_ND, edge_index, edge_attr_ED, batch=None, num_graphs=None):
        src, dst = edge_index
        n = x_ND.shape[0]
        incoming_ND = scatter_sum(edge_attr_ED, dst, n)  # Σ_{k→u} e_ku for every atom u
        message_ED = incoming_ND[src] - edge_attr_ED[reverse_edges(edge_attr_ED.shape[0], edge_attr_ED.device)]
        e_new_ED = self.edge_lin(torch.cat([x_ND[src], message_ED], dim=-1))
        x_new_ND = self.node_lin(torch.cat([x_ND, scatter_sum(e_new_ED, dst, n)], dim=-1))
        return x_new_ND, e_new_ED
