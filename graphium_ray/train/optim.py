"""Optimizer construction (Adam). Under µP, parameter groups carry width-scaled learning rates."""

from __future__ import annotations

import torch

from graphium_ray.config import RunConfig


def build_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    groups = getattr(model, "mup_param_groups", None)
    params = groups(cfg.train.lr) if callable(groups) else [{"params": list(model.parameters()), "lr": cfg.train.lr}]
    return torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
