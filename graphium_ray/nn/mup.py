"""µP (Yang et al. 2022, "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer"), implemented directly, in one place.

Width multiplier m = hidden_dim / base_hidden_dim. Parameters are classified by comparing their
shapes with those of the same model built at the base width (as ``mup.set_base_shapes`` does):

* matrix-like (two dimensions that scale with width: hidden→hidden weights): initialised
  N(0, 1/fan_in); Adam learning rate η/m.
* readout (weight whose fan_in scales but fan_out does not, e.g. the first layer of every head):
  standard init, learning rate η, and the layer's output is multiplied by 1/m.
* vector-like (everything else: biases, norms, input embeddings whose fan_in is fixed):
  standard init and learning rate η.

At m = 1 this is exactly standard parametrization, so the base model's tuned hyperparameters
carry over to any width.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from graphium_ray.nn.primitives import MuLinear


def base_shapes(model: nn.Module) -> dict[str, list[int]]:
    return {name: list(p.shape) for name, p in model.named_parameters()}


def classify(shape: torch.Size, base: list[int]) -> str:
    """'matrix', 'readout' or 'vector' from which dimensions differ from the base shape."""
    if len(shape) != len(base):
        raise ValueError(f"shape {list(shape)} does not match base shape {base}")
    scaled = [s != b for s, b in zip(shape, base, strict=True)]
    if len(shape) == 2 and all(scaled):
        return "matrix"
    if len(shape) == 2 and scaled[1] and not scaled[0]:
        return "readout"
    return "vector"


def apply_mup(model: nn.Module, shapes: dict[str, list[int]], width_mult: float) -> dict[str, float]:
    """Re-initialise ``model`` for µP in place; returns ``{param name: lr multiplier}``."""
    params = dict(model.named_parameters())
    missing = set(params) - set(shapes)
    if missing:
        raise ValueError(f"no base shape for parameters {sorted(missing)[:5]}")
    lr_mult: dict[str, float] = {}
    for name, p in params.items():
        kind = classify(p.shape, shapes[name])
        if kind == "matrix":
            with torch.no_grad():
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[1]))
        lr_mult[name] = 1.0 / width_mult if kind == "matrix" else 1.0
    for module_name, module in model.named_modules():
        if isinstance(module, MuLinear):
            weight = f"{module_name}.weight" if module_name else "weight"
            module.output_mult = 1.0 / width_mult if classify(module.weight.shape, shapes[weight]) == "readout" else 1.0
    return lr_mult


def param_groups(model: nn.Module, lr: float, lr_mult: dict[str, float]) -> list[dict]:
    """Adam parameter groups: one per (learning-rate multiplier, head or backbone); each group keeps
    its ``base_lr`` and a ``backbone`` flag so fine-tuning can freeze the backbone by setting lr = 0."""
    groups: dict[tuple[float, bool], list] = {}
    for name, p in model.named_parameters():
        groups.setdefault((lr_mult.get(name, 1.0), not name.startswith("heads.")), []).append(p)
    return [
        {"params": ps, "lr": lr * mult, "base_lr": lr * mult, "backbone": backbone}
        for (mult, backbone), ps in sorted(groups.items())
    ]
