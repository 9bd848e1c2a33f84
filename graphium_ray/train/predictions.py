"""Per-molecule predictions of a split as a table, in real units.

One row per molecule (``smiles``: the canonical SMILES key); for each graph-level task
``label/<task>`` (NaN when missing) and ``pred/<task>``: regression in the label's units, binary
as P(class 1), multiclass / ordinal as the list of class probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graphium_ray.manifest import ModelData
from graphium_ray.outputs import LabelNormalizer, column_slices, to_real_units
from graphium_ray.tasks import TaskSpec, tasks_at
from graphium_ray.train.metrics import probabilities


def predictions_table(tasks: list[TaskSpec], data: ModelData, preds: dict) -> pd.DataFrame:
    graph_tasks = tasks_at(tasks, "graph")
    if "graph" not in preds or not graph_tasks:
        return pd.DataFrame({"smiles": pd.Series([], dtype=str)})
    level = preds["graph"]
    real = to_real_units(graph_tasks, LabelNormalizer(tasks, data.label_stats), "graph", level["pred"])
    columns: dict[str, object] = {"smiles": level.get("key", np.full(len(real), None, dtype=object))}
    for j, (task, cols) in enumerate(zip(graph_tasks, column_slices(graph_tasks), strict=True)):
        values = probabilities(task.kind, real[:, cols].astype(np.float64))
        columns[f"label/{task.name}"] = level["y"][:, j].astype(np.float64)
        columns[f"pred/{task.name}"] = values[:, 0] if values.shape[1] == 1 else list(values)
    return pd.DataFrame(columns).sort_values("smiles", kind="stable").reset_index(drop=True)
