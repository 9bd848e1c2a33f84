"""Accelerator choices behind one interface: resources per worker, and whether to use a GPU.

* ``cpu``: fractional CPUs per worker so Ray Data's readers always have room.
* ``gpu``: one GPU per worker (Ray Train moves the model and batches).
* ``ipu``: claims the custom ``IPU`` resource; needs PopTorch, which is imported lazily and is not
  on PyPI: selecting ``ipu`` without it fails at once with what to install.
"""

from __future__ import annotations

import importlib.util

from graphium_ray.config import ConfigError, TrainConfig

PADDED_FIELDS = ("x", "edge_index", "edge_attr", "batch", "graph_mask", "node_mask")

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
    resources: dict[str, float] = {"CPU": round(per_worker, 3)}
    if train.accelerator == "gpu":
        if cluster.get("GPU", 0) < train.num_workers:
            raise ConfigError(f"train.accelerator=gpu: the cluster has {cluster.get('GPU', 0):g} GPUs for "
                              f"{train.num_workers} workers")  # fmt: skip
        resources["GPU"] = 1.0
    if train.accelerator == "ipu":
        resources["IPU"] = 1.0
    return resources, train.accelerator == "gpu", max(1, int(per_worker))


def _loss_on_tensors(model, level_tasks, num_graphs: int, pe_keys: list[str], y_keys: list[str]):
    """PopTorch traces functions of tensors, not of our ``GraphBatch`` dataclass: a module whose
    ``forward(*tensors)`` (``PADDED_FIELDS``, then the PE and label tensors in the given key order)
    rebuilds the static-shape batch and returns the multitask loss."""
    import torch

    from graphium_ray.batch import GraphBatch
    from graphium_ray.train.losses import multitask_loss

    class LossOnTensors(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            named = dict(zip([*PADDED_FIELDS, *pe_keys, *y_keys], tensors, strict=True))
            batch = GraphBatch(**{f: named[f] for f in PADDED_FIELDS}, num_graphs=num_graphs,
                               pe={k: named[k] for k in pe_keys}, y={k: named[k] for k in y_keys})  # fmt: skip
            loss, _ = multitask_loss(level_tasks, self.model(batch), batch.y, per_task=False)
            return loss

    return LossOnTensors()


def ipu_training_step(model, optimizer, level_tasks, example_batch):
    """``step(batch, targets) -> loss`` running forward, backward and the optimizer update on the
    IPU (``poptorch.trainingModel``); batches must be static-shape (``train.static_shapes``).
    Imports PopTorch lazily; without it this raises the install hint."""
    poptorch = require_poptorch()
    pe_keys, y_keys = list(example_batch.pe), list(example_batch.y)
    module = _loss_on_tensors(model, level_tasks, example_batch.num_graphs, pe_keys, y_keys)
    ipu_optimizer = poptorch.optim.AdamW(model.parameters(), lr=optimizer.param_groups[0]["lr"])
    trained = poptorch.trainingModel(module, options=poptorch.Options(), optimizer=ipu_optimizer)

    def step(batch, targets):
        tensors = [getattr(batch, f) for f in PADDED_FIELDS] + [batch.pe[k] for k in pe_keys]
        return trained(*tensors, *(targets[k] for k in y_keys))

    step.copy_weights_to_host = trained.copyWeightsToHost  # before host-side evaluation / checkpoints
    return step
