"""Graph readout: concatenation of sum / mean / max pooling over each graph's nodes.

x (N, D), batch (N,) → (G, len(kinds) · D).
"""

from __future__ import annotations

import torch
from torch import nn

from graphium_ray.nn.scatter import scatter_max, scatter_mean, scatter_sum

_POOLS = {"sum": scatter_sum, "mean": scatter_mean, "max": scatter_max}


class GraphPooling(nn.Module):
    def __init__(self, kinds: list[str]):
        super().__init__()
        self.kinds = list(kinds)

    def forward(self, x_ND: torch.Tensor, batch_N: torch.Tensor, num_graphs: int) -> torch.Tensor:
        return torch.cat([_POOLS[k](x_ND, batch_N, num_graphs) for k in self.kinds], dim=-1)
