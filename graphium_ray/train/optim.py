"""Optimizer construction (Adam). Under µP, parameter groups carry width-scaled learning rates."""

from __future__ import annotations

import torch

from graphium_ray.config import RunConfig
from graphium_ray.nn.mup import param_groups


def build_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """AdamW; under µP matrix-like weights get lr/m (``model.lr_mult`` from ``build_model``)."""
    groups = param_groups(model, cfg.train.lr, getattr(model, "lr_mult", {}))
    return torch.optim.AdamW(groups, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
