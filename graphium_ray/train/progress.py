"""A terminal progress bar of the optimizer steps of each epoch, for the rank-0 worker.

Training runs in Ray Train worker processes, whose output reaches the user only as forwarded log
lines, where a plain ``tqdm`` bar prints one line per refresh. Ray's distributed tqdm
(``ray.experimental.tqdm_ray``) prints its state as a tagged line that the driver turns back into
one bar in place. The driver enables it only when its own stdout is a terminal
(:func:`~graphium_ray.train.progress_setting.progress_wanted`), so logs, CI and ``ray job submit`` get the one readable line per epoch
and no bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import lightning.pytorch as pl

DESCRIBE_EVERY_S = 1.0


def ray_bar(total: int, desc: str):
    from ray.experimental import tqdm_ray

    return tqdm_ray.tqdm(total=total, desc=desc, unit="step")


class StepProgress(pl.Callback):
    """One bar per epoch: ``steps_per_epoch`` optimizer steps, the description showing the epoch
    and the running mean train loss. ``make_bar(total, desc)`` builds the bar (Ray's by default)."""

    def __init__(self, steps_per_epoch: int, epochs: int, make_bar: Callable = ray_bar):
        self.steps_per_epoch, self.epochs, self.make_bar = steps_per_epoch, epochs, make_bar
        self.bar = None
        self._loss_sum, self._steps, self._described = 0.0, 0, 0.0

    def _desc(self, epoch: int) -> str:
        loss = f" loss {float(self._loss_sum) / self._steps:.4f}" if self._steps else ""
        return f"epoch {epoch}/{self.epochs}{loss}"

    def on_train_epoch_start(self, trainer: pl.Trainer, module) -> None:
        self._loss_sum, self._steps, self._described = 0.0, 0, time.monotonic()
        self.bar = self.make_bar(self.steps_per_epoch, self._desc(module.global_epoch + 1))

    def on_train_batch_end(self, trainer: pl.Trainer, module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._loss_sum = self._loss_sum + loss.detach()  # stays on the device: no sync per step
            self._steps += 1
        self.bar.update(1)
        now = time.monotonic()
        if now - self._described >= DESCRIBE_EVERY_S:  # reading the loss syncs a GPU: once a second
            self._described = now
            self.bar.set_description(self._desc(module.global_epoch + 1))

    def on_train_epoch_end(self, trainer: pl.Trainer, module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
