"""Learning-rate schedules, as a multiplier of the base rate per optimizer step.

With w warm-up steps and T total steps, step s (0-based):

* warm-up (s < w): linear from 0.1 to 1, f(s) = 0.1 + 0.9 · s / w
* ``cosine``: f(s) = r + (1 - r) · ½ (1 + cos(π · (s - w) / (T - w))), r = ``final_lr_ratio``
* ``noam`` (Vaswani et al. 2017, as chemprop): f(s) = max(r, sqrt(w / s)) after warm-up
* ``constant``: f(s) = 1 after warm-up

The multiplier applies to every parameter group (µP groups keep their relative rates).
"""

from __future__ import annotations

import math

WARMUP_START = 0.1


def lr_multiplier(step: int, kind: str, warmup_steps: int, total_steps: int, final_ratio: float) -> float:
    if warmup_steps > 0 and step < warmup_steps:
        return WARMUP_START + (1.0 - WARMUP_START) * step / warmup_steps
    if kind == "constant":
        return 1.0
    if kind == "noam":
        return max(final_ratio, math.sqrt(max(warmup_steps, 1) / max(step, 1)))
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
