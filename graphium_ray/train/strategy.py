"""The Lightning strategy of a Ray Train worker (imported on the workers only: it imports torch).

:class:`RayDataParallel` is Ray's ``RayDDPStrategy`` (Ray's process group, devices and cluster
environment, accepted by ``ray.train.lightning.prepare_trainer``) that wraps the model in
``DistributedDataParallel`` only when there is something to average: with one worker, DDP's
per-step work (its forward hooks, gradient buckets and an all-reduce over a group of one) changes no
number and costs time on every step. The small-data recipe trains on one worker.
"""

from __future__ import annotations

from ray.train.lightning import RayDDPStrategy


class RayDataParallel(RayDDPStrategy):
    """``RayDDPStrategy`` without the DDP wrapper when the worker group has a single worker."""

    def configure_ddp(self) -> None:
        if self.world_size > 1:
            super().configure_ddp()
