"""Optimizer construction (AdamW). Under µP, parameter groups carry width-scaled learning rates."""

from __future__ import annotations

import torch

from graphium_ray.config import TrainConfig
from graphium_ray.nn.mup import param_groups


def build_optimizer(model: torch.nn.Module, train: TrainConfig, lr_mult: dict[str, float] | None = None) -> torch.optim.Optimizer:
    """AdamW over :func:`~graphium_ray.nn.mup.param_groups`: ``lr_mult`` (µP, from
    :func:`~graphium_ray.nn.build.build_network`) scales matrix-like weights' lr to lr/m; every group
    keeps ``base_lr`` and a ``backbone`` flag."""
    groups = param_groups(model, train.lr, lr_mult or {})
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)
