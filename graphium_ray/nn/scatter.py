"""Scatter reductions over an index (sum, mean, max), in plain torch."""

from __future__ import annotations

import torch


def scatter_sum(src_MD: torch.Tensor, index_M: torch.Tensor, size: int) -> torch.Tensor:
    out = src_MD.new_zeros((size, *src_MD.shape[1:]))
    return out.index_add_(0, index_M, src_MD)


def scatter_count(index_M: torch.Tensor, size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(size,) number of entries per group; unlike ``bincount`` its shape never depends on the data,
    so compilers that need static shapes (``torch.compile(dynamic=False)``, PopTorch) accept it."""
    ones = torch.ones(index_M.shape[0], dtype=dtype, device=index_M.device)
    return torch.zeros(size, dtype=dtype, device=index_M.device).index_add_(0, index_M, ones)


def scatter_mean(src_MD: torch.Tensor, index_M: torch.Tensor, size: int) -> torch.Tensor:
    total = scatter_sum(src_MD, index_M, size)
    count = scatter_count(index_M, size, src_MD.dtype).clamp(min=1)
    return total / count.view(-1, *([1] * (src_MD.dim() - 1)))


def scatter_max(src_MD: torch.Tensor, index_M: torch.Tensor, size: int) -> torch.Tensor:
    """Max per group; empty groups give 0."""
    out = src_MD.new_zeros((size, *src_MD.shape[1:]))
    idx = index_M.view(-1, *([1] * (src_MD.dim() - 1))).expand_as(src_MD)
    return out.scatter_reduce(0, idx, src_MD, reduce="amax", include_self=False)
