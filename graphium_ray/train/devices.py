"""Accelerator choices behind one interface: resources per worker, and whether to use a GPU.

* ``cpu``: fractional CPUs per worker so Ray Data's readers always have room.
* ``gpu``: one GPU per worker (Ray Train moves the model and batches).
* ``ipu``: claims the custom ``IPU`` resource; needs PopTorch (not on PyPI) and
  ``lightning-graphcore``, both imported lazily: selecting ``ipu`` without them fails at once with
  what to install.
"""

from __future__ import annotations

import importlib.util
import math

from graphium_ray.config import ConfigError, TrainConfig
from graphium_ray.data.resources import TASK_CPUS

IPU_HELP = (
    "train.accelerator=ipu needs Graphcore's PopTorch (poptorch), which is not installed. Install the "
    "Poplar SDK and its poptorch wheel on IPU hosts (it is not on PyPI), or choose train.accelerator=cpu|gpu."
)


def require_poptorch():
    if importlib.util.find_spec("poptorch") is None:
        raise ConfigError(IPU_HELP)
    import poptorch  # noqa: F401  (lazy: only IPU runs import it)

    return poptorch


def worker_resources(train: TrainConfig, cluster: dict[str, float]) -> tuple[dict[str, float], bool, int]:
    """(resources_per_worker, use_gpu, torch threads per worker) for this cluster."""
    cpus = float(cluster.get("CPU", 1.0))
    if train.accelerator == "ipu":
        require_poptorch()
    if train.cpus_per_worker is not None:
        per_worker = train.cpus_per_worker
    else:
        # Ray Data's file listing needs one whole CPU; 0.05 more leaves room for a Tune trial's driver
        reserve = max(1.05, 0.1 * cpus)
        per_worker = (cpus - reserve) / train.num_workers
    if per_worker <= 0 or per_worker * train.num_workers > cpus:
        raise ConfigError(
            f"train.num_workers={train.num_workers} does not fit on {cpus:g} CPUs "
            f"(each worker would get {per_worker:.2f}); lower train.num_workers or set train.cpus_per_worker"
        )
    if per_worker * train.num_workers > cpus - TASK_CPUS:  # Ray Data's readers could never start: a silent hang
        most = (cpus - TASK_CPUS) / train.num_workers
        raise ConfigError(
            f"train.cpus_per_worker={per_worker:g} x train.num_workers={train.num_workers} takes all {cpus:g} CPUs "
            f"and leaves none for the Ray Data tasks that read the cache ({TASK_CPUS} CPU each): use at most "
            f"{math.floor(most * 100) / 100:g} per worker"
        )
    resources: dict[str, float] = {"CPU": round(per_worker, 3)}
    if train.accelerator == "gpu":
        if cluster.get("GPU", 0) < train.num_workers:
            raise ConfigError(f"train.accelerator=gpu: the cluster has {cluster.get('GPU', 0):g} GPUs for "
                              f"{train.num_workers} workers")  # fmt: skip
        resources["GPU"] = 1.0
    if train.accelerator == "ipu":
        resources["IPU"] = 1.0
    # whole CPUs only: a streamed split's reader runs beside the model, and torch threads that
    # outnumber the free cores spin against it
    return resources, train.accelerator == "gpu", max(1, int(per_worker))


LIGHTNING_GRAPHCORE_HELP = (
    "train.accelerator=ipu runs through Lightning's Graphcore strategy: pip install lightning-graphcore "
    "(next to the Poplar SDK's poptorch)"
)


def lightning_trainer_kwargs(train: TrainConfig) -> dict:
    """Accelerator, strategy, cluster environment and precision of the Lightning ``Trainer`` that
    runs inside a Ray Train worker. CPU / GPU: Ray's DDP strategy and environment (one device per
    worker; Ray Train set up the process group; no DDP wrapper on a single worker:
    :mod:`graphium_ray.train.strategy`). IPU: ``lightning_graphcore.IPUStrategy`` (PopTorch compiles
    forward, backward and the optimizer step of ``configure_optimizers``: every parameter group,
    weight decay and gradient clipping reach the IPU)."""
    if train.accelerator == "ipu":
        require_poptorch()
        if importlib.util.find_spec("lightning_graphcore") is None:
            raise ConfigError(LIGHTNING_GRAPHCORE_HELP)
        from lightning_graphcore import IPUAccelerator, IPUStrategy

        return {"accelerator": IPUAccelerator(), "devices": 1, "strategy": IPUStrategy(), "precision": train.precision}
    from ray.train.lightning import RayLightningEnvironment

    from graphium_ray.train.strategy import RayDataParallel

    return {
        "accelerator": "gpu" if train.accelerator == "gpu" else "cpu",
        "devices": "auto",
        "strategy": RayDataParallel(find_unused_parameters=False),
        "plugins": [RayLightningEnvironment()],
        "precision": train.precision,
    }


def device_name(device) -> str:
    """What a worker trained on, for ``metrics.json``: ``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
