"""The pieces every layer is built of: the one Linear layer (so µP can rescale any of them in one
place), the MLP, and the node/edge norms (batch norm that skips static-shape padding, layer norm).

``MuLinear`` is ``nn.Linear`` with an ``output_mult`` (1.0 by default): y = output_mult · (x Wᵀ + b).
Under µP (see :mod:`graphium_ray.nn.mup`) readout layers get ``output_mult = 1 / width_mult``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MuLinear(nn.Linear):
    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.output_mult = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if self.output_mult == 1.0 else out * self.output_mult


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over the real rows of a padded (static-shape) batch.

    x (M, D), mask (M,) bool or None. In training, with a mask, the statistics are those of the
    rows where mask is True: μ = Σ m_i x_i / Σ m_i, σ² = Σ m_i (x_i - μ)² / Σ m_i (biased, as
    BatchNorm normalizes), and the running variance is updated with the unbiased estimate, exactly
    as ``nn.BatchNorm1d`` does on the real rows alone. All reductions are masked sums, so the
    shapes never depend on the data. Without a mask, or in eval mode, it is ``nn.BatchNorm1d``.
    A training batch of at most one (real) row (one molecule of one heavy atom, e.g. methane, left
    alone in an epoch's last batch, padded or not) has no batch statistics: it is normalized with
    the running ones, which it leaves unchanged (PyG's ``allow_single_element``); ``nn.BatchNorm1d``
    raises.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None and self.training and x.shape[0] <= 1 and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        if mask is None or not self.training:
            return super().forward(x)
        m = mask.to(x.dtype).unsqueeze(-1)
        rows = m.sum()
        n = rows.clamp(min=1.0)
        mean = (x * m).sum(0) / n
        var = (((x - mean) ** 2) * m).sum(0) / n
        if self.track_running_stats and self.running_mean is not None:
            # ≤ 1 real row (lockstep padding, or methane alone) has no statistics: the running ones
            # normalize it and stay as they are (torch.where: no data-dependent branch, static shapes)
            has_stats = rows > 1
            with torch.no_grad():
                update = has_stats.to(x.dtype)
                self.num_batches_tracked.add_(update.long())
                tracked = self.num_batches_tracked.clamp(min=1).to(x.dtype)
                momentum = (self.momentum if self.momentum is not None else 1.0 / tracked) * update
                unbiased = var * n / (n - 1).clamp(min=1.0)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased.detach())
            mean = torch.where(has_stats, mean, self.running_mean)
            var = torch.where(has_stats, var, self.running_var)
        out = (x - mean) / torch.sqrt(var + self.eps)
        return out * self.weight + self.bias if self.affine else out


def apply_norm(norm: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``norm(x)``; batch norm gets the padding mask too, so its statistics see only the real rows
    (any other module, e.g. an MLP's Linear or ReLU, is applied to x as it is)."""
    return norm(x, mask) if isinstance(norm, MaskedBatchNorm1d) else norm(x)


def norm_layer(kind: str, dim: int) -> nn.Module:
    if kind == "batch":
        return MaskedBatchNorm1d(dim)
    if kind == "layer":
        return nn.LayerNorm(dim)
    return nn.Identity()


class MLP(nn.Module):
    """Linear → [norm → ReLU → dropout → Linear] × (layers-1). Input (M, in_dim) → (M, out_dim);
    ``mask`` (M,) bool marks the real rows of a static-shape batch, the only ones batch norm's
    statistics see (a task head's rows are graphs, nodes or edges, padding included)."""

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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return self.net(x)
        for module in self.net:
            x = apply_norm(module, x, mask)  # batch norm gets the mask; every other module just x
        return x
