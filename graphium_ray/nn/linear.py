"""The one Linear layer every module uses, so µP can rescale any of them in one place.

``MuLinear`` is ``nn.Linear`` with an ``output_mult`` (1.0 by default): y = output_mult · (x Wᵀ + b).
Under µP (see :mod:`graphium_ray.nn.mup`) readout layers get ``output_mult = 1 / width_mult``.
"""

from __future__ import annotations

import torch
from torch import nn


class MuLinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.output_mult = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if self.output_mult == 1.0 else out * self.output_mult


def norm_layer(kind: str, dim: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    if kind == "layer":
        return nn.LayerNorm(dim)
    return nn.Identity()


class MLP(nn.Module):
    """Linear → [norm → ReLU → dropout → Linear] × (layers-1). Input (*, in_dim) → (*, out_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, norm: str = "none",
                 dropout: float = 0.0):  # fmt: skip
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks.append(MuLinear(dims[i], dims[i + 1]))
            if i < layers - 1:
                blocks += [norm_layer(norm, dims[i + 1]), nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
