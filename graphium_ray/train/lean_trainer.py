"""The Lightning ``Trainer`` settings every graphium-ray training runs with, kept lean per step.

graphium-ray writes its own loggers, checkpoints, epoch line and progress bar, so Lightning's are
off (``logger``, ``enable_checkpointing``, ``enable_progress_bar``, ``enable_model_summary``, the
sanity-check validation).

Lightning's cost is a fixed amount of Python per optimizer step (its hooks, not the math), so on
small steps it is a visible share (BENCHMARKS.md, "Lightning's cost per step": 6 % of a batch-64
step, 2 % with the two changes below). Two of its per-hook costs are avoidable without touching
Lightning's loop:

* every hook call (~23 a step: module, callback and strategy hooks) is wrapped in
  ``trainer.profiler.profile(name)``; the default ``PassThroughProfiler`` builds a new
  generator-based context manager each time. :class:`NoProfiler` returns one shared no-op context.
* around every hook Lightning sets and restores ``LightningModule._current_fx_name`` (46 times a
  step); ``nn.Module.__setattr__`` checks each assignment against parameters, buffers and
  submodules. :class:`~graphium_ray.train.module.MultiTaskModule` stores that one plain string
  attribute directly (:data:`HOOK_NAME_ATTRIBUTE`).
"""

from __future__ import annotations

import contextlib

from lightning.pytorch.profilers import PassThroughProfiler

# the attribute Lightning sets on the LightningModule around every hook call (trainer/call.py)
HOOK_NAME_ATTRIBUTE = "_current_fx_name"


class NoProfiler(PassThroughProfiler):
    """Lightning's pass-through profiler without a new context manager per hook call."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._nothing


def lean_trainer_kwargs() -> dict:
    """Keyword arguments of ``lightning.pytorch.Trainer`` shared by every graphium-ray trainer
    (the Ray Train worker loop, the benchmarks that stand for it): Lightning's own logging,
    checkpointing, progress bar, summary, sanity check and per-hook profiling off."""
    return {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "num_sanity_val_steps": 0, "profiler": NoProfiler()}  # fmt: skip
