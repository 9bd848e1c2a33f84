"""Model selection: the value of ``train.select.metric`` in an epoch record, and which names exist.

Names: ``val/loss`` (the training objective on the whole validation split, normalized units),
``val/<dataset>/<column>/<metric>`` (one task, real units) and ``val/mean/<metric>`` (the mean of
a metric over every task that reports it, e.g. ``val/mean/auroc`` over the 12 Tox21 assays). In a
mix, one dataset's: ``val/<dataset>/loss`` (the objective over that dataset's tasks only) and
``val/<dataset>/mean/<metric>`` (the mean over its tasks), e.g. ``val/tox21/mean/auroc`` next to
QM9 or PCBA. (A task whose column is named ``mean`` keeps its own name.)
"""

from __future__ import annotations

import numpy as np

from graphium_ray.config import ConfigError
from graphium_ray.tasks import TaskSpec


def flatten_metrics(prefix: str, metrics: dict[str, dict]) -> dict[str, float]:
    """{"qm9/gap": {"mae": 0.1}} → {"val/qm9/gap/mae": 0.1}; undefined metrics are left out."""
    return {
        f"{prefix}/{task}/{name}": value
        for task, values in metrics.items()
        for name, value in values.items()
        if value is not None and name != "n"
    }


def selectable_metrics(tasks: list[TaskSpec]) -> list[str]:
    names = ["val/loss"]
    for metric in dict.fromkeys(m for t in tasks for m in t.metrics):
        names.append(f"val/mean/{metric}")
    for dataset in dict.fromkeys(t.dataset for t in tasks):
        names.append(f"val/{dataset}/loss")
        names += [f"val/{dataset}/mean/{m}" for m in dict.fromkeys(m for t in tasks if t.dataset == dataset for m in t.metrics)]
    names += [f"val/{t.name}/{m}" for t in tasks for m in t.metrics]
    return names


def check_selectable(metric: str, tasks: list[TaskSpec], field: str = "train.select.metric") -> None:
    names = selectable_metrics(tasks)
    if metric not in names:
        shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
        raise ConfigError(f"{field}: '{metric}' is not a validation metric of these tasks; choose one of {shown}")


def mean_metrics(metrics: dict[str, dict]) -> dict[str, float]:
    """{metric: mean over tasks where it is defined}."""
    values: dict[str, list[float]] = {}
    for task_values in metrics.values():
        for name, value in task_values.items():
            if name != "n" and value is not None:
                values.setdefault(name, []).append(float(value))
    return {name: float(np.mean(v)) for name, v in values.items()}


def validation_record(val_result: dict | None) -> dict:
    """The validation part of an epoch record (what :func:`validation_metrics` reads) from a
    module's ``val_result`` (``loss``, ``dataset_loss``, ``metrics``); None (no validation ran)
    gives an empty one."""
    val = val_result or {"loss": None, "dataset_loss": {}, "metrics": {}}
    return {"val_loss": val["loss"], "val_dataset_loss": val["dataset_loss"], "val": val["metrics"]}


def validation_metrics(record: dict) -> dict[str, float]:
    """Every selectable name of an epoch record (``val_loss``, ``val_dataset_loss``, ``val``) → its
    value; undefined values are left out. A task's own name wins over a dataset mean spelled the
    same (a column named ``mean``)."""
    out = flatten_metrics("val", record["val"])
    if record.get("val_loss") is not None:
        out["val/loss"] = record["val_loss"]
    out.update({f"val/mean/{k}": v for k, v in mean_metrics(record["val"]).items()})
    for dataset, loss in record.get("val_dataset_loss", {}).items():
        out[f"val/{dataset}/loss"] = loss
    by_dataset: dict[str, dict[str, dict]] = {}  # task names are <dataset>/<column>
    for task, task_values in record["val"].items():
        by_dataset.setdefault(task.split("/", 1)[0], {})[task] = task_values
    for dataset, metrics in by_dataset.items():
        for k, v in mean_metrics(metrics).items():
            out.setdefault(f"val/{dataset}/mean/{k}", v)
    return out


def metric_value(record: dict, metric: str) -> float | None:
    """The value of a selectable metric name in an epoch record, or None."""
    return validation_metrics(record).get(metric)


def improved(value: float | None, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (an undefined value never does; anything beats undefined)."""
    if value is None:
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def epoch_metrics(record: dict) -> dict[str, float]:
    """Flat metrics reported to Ray / Tune / loggers for one epoch record."""
    return {"epoch": record["epoch"], "train_loss": record["train_loss"], "lr": record["lr"],
            "graphs_per_s": record["graphs_per_s"], **validation_metrics(record)}  # fmt: skip
