"""Ray Train's torch process-group set-up without importing torch in the driver or the controller.

Ray's ``TorchTrainer`` / ``TorchConfig`` live in modules that import torch at the top, and Ray
Train's controller unpickles the backend config: so the driver *and* the controller process each
import torch (~1.3 s of CPU each on this project's 2-core machines) before the first worker starts,
although neither ever runs a tensor op. :class:`TorchProcessGroupConfig` does what ``TorchConfig``
does for this project's runs — pick gloo (CPU) or nccl (GPU), point every worker at rank 0's
address, set the torchrun variables (``RANK``, ``LOCAL_RANK``, ...) and call
``torch.distributed.init_process_group`` on each worker — with every torch import inside the
functions that run on the workers. The driver trains through Ray's ``DataParallelTrainer``
(``TorchTrainer`` is that class with ``TorchConfig``). Start-up measured in BENCHMARKS.md §5.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import ray
from ray.train.backend import Backend, BackendConfig
from ray.train.v2._internal.util import TrainingFramework

logger = logging.getLogger(__name__)


class _CudaDeviceContext:
    """Around the train function on a worker: make its GPU (if any) torch's current CUDA device."""

    def __enter__(self):
        import torch

        if torch.cuda.is_available():
            from ray.train.torch import get_device

            device = get_device()
            if device.type == "cuda":
                torch.cuda.set_device(device)

    def __exit__(self, *exc) -> bool:
        return False


@dataclass
class TorchProcessGroupConfig(BackendConfig):
    """``backend``: None = nccl when the workers have GPUs, else gloo; ``timeout_s``: collective
    operations time out after this long (Ray's default)."""

    backend: str | None = None
    timeout_s: int = 1800

    @property
    def backend_cls(self):
        return _TorchProcessGroupBackend

    @property
    def train_func_context(self):
        return _CudaDeviceContext

    @property
    def framework(self):
        return TrainingFramework.TORCH

    def to_dict(self) -> dict:
        return {"backend": self.backend, "init_method": "env", "timeout_s": self.timeout_s}


def _address_and_free_port() -> tuple[str, int]:
    """On rank 0's worker: its node's IP address and a port free there (the rendezvous point)."""
    import socket

    addr = ray.util.get_node_ip_address()
    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET) as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    return addr, port


def _set_rendezvous_env(addr: str, port: int) -> None:
    """On a worker: torchrun's variables, from Ray Train's context (``env://`` rendezvous)."""
    context = ray.train.get_context()
    os.environ.update({
        "MASTER_ADDR": addr, "MASTER_PORT": str(port),
        "RANK": str(context.get_world_rank()), "WORLD_SIZE": str(context.get_world_size()),
        "LOCAL_RANK": str(context.get_local_rank()), "LOCAL_WORLD_SIZE": str(context.get_local_world_size()),
        "NODE_RANK": str(context.get_node_rank()),
    })  # fmt: skip


def _init_process_group(backend: str, world_rank: int, world_size: int, timeout_s: int) -> None:
    """On a worker: join the process group (rank ``world_rank`` of ``world_size``)."""
    import torch.distributed as dist

    nccl_choice = ("TORCH_NCCL_ASYNC_ERROR_HANDLING", "TORCH_NCCL_BLOCKING_WAIT")
    if backend == "nccl" and not any(v in os.environ for v in nccl_choice):
        os.environ["TORCH_NCCL_ASYNC_ERROR_HANDLING"] = "1"  # fail a timed-out collective, not hang (as Ray)
    dist.init_process_group(backend=backend, init_method="env://", rank=world_rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))  # fmt: skip


def _leave_process_group(destroy: bool) -> None:
    """On a worker, at shutdown: leave the process group and release cached GPU memory."""
    import torch
    import torch.distributed as dist

    if destroy and dist.is_initialized():
        dist.destroy_process_group()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _TorchProcessGroupBackend(Backend):
    share_cuda_visible_devices: bool = True

    def on_start(self, worker_group, backend_config: TorchProcessGroupConfig) -> None:
        backend = backend_config.backend
        if backend is None:
            backend = "nccl" if worker_group.get_resources_per_worker().get("GPU", 0) > 0 else "gloo"
        addr, port = worker_group.execute_single(0, _address_and_free_port)
        worker_group.execute(_set_rendezvous_env, addr=addr, port=port)
        size = len(worker_group)
        logger.debug("process group: %s, %d workers, rank 0 at %s:%s", backend, size, addr, port)
        ray.get([
            worker_group.execute_single_async(rank, _init_process_group, backend=backend, world_rank=rank,
                                              world_size=size, timeout_s=backend_config.timeout_s)
            for rank in range(size)
        ])  # fmt: skip

    def on_shutdown(self, worker_group, backend_config) -> None:
        futures = worker_group.execute_async(_leave_process_group, destroy=len(worker_group) > 1)
        try:
            ray.get(futures, timeout=30)
        except ray.exceptions.GetTimeoutError:
            logger.warning("torch process group shutdown timed out after 30 s")
