"""Optimizer construction (AdamW). Under µP, parameter groups carry width-scaled learning rates."""

from __future__ import annotations

import torch

from graphium_ray.config import TrainConfig
from graphium_ray.nn.mup import param_groups

FUSED_DEVICES = ("cpu", "cuda")  # where torch's fused AdamW kernel runs


def build_optimizer(model: torch.nn.Module, train: TrainConfig, lr_mult: dict[str, float] | None = None) -> torch.optim.Optimizer:
    """AdamW over :func:`~graphium_ray.nn.mup.param_groups`: ``lr_mult`` (µP, from
    :func:`~graphium_ray.nn.build.build_network`) scales matrix-like weights' lr to lr/m; every group
    keeps ``base_lr`` and a ``backbone`` flag.

    The update runs as torch's fused kernel (one call for all tensors of a group) when every
    parameter is a float32/bf16/fp16 tensor on the CPU or a CUDA device; otherwise (the IPU, whose
    strategy converts the optimizer to PopTorch's) as the reference per-tensor loop. The same
    AdamW math either way; on the CPU torch's default is the per-tensor loop, whose ~10 small ops
    per tensor cost 1.2–6.2 ms a step for GINE models of width 64–300, against 0.31–1.72 ms fused
    (``platform/bench/optimizer_bench.py``, BENCHMARKS.md 4d)."""
    groups = param_groups(model, train.lr, lr_mult or {})
    params = [p for g in groups for p in g["params"]]
    fused = train.accelerator != "ipu" and bool(params) and all(
        p.device.type in FUSED_DEVICES and p.dtype in (torch.float32, torch.bfloat16, torch.float16) for p in params
    )
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay, fused=fused or None)
