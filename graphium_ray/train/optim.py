"""Optimizer construction (AdamW). Under µP, parameter groups carry width-scaled learning rates."""

from __future__ import annotations

import torch

from graphium_ray.config import TrainConfig
from graphium_ray.nn.mup import param_groups


def build_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over :func:`~graphium_ray.nn.mup.param_groups`: under µP matrix-like weights get lr/m
    (``model.lr_mult`` from ``build_model``); every group keeps ``base_lr`` and a ``backbone`` flag."""
    groups = param_groups(model, train.lr, getattr(model, "lr_mult", {}))
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)
