"""Task specifications: the one place a task is defined.

A :class:`TaskSpec` is one label column of one dataset. Its head width, loss and metrics all
follow from it. Label columns named with wildcards (``assayID-*``) are expanded against the
header of the dataset's first file, in header order.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass

from graphium_ray.config import ConfigError, DatasetConfig


@dataclass(frozen=True)
class TaskSpec:
    dataset: str
    column: str
    level: str  # graph | node | edge
    kind: str  # regression | binary | multiclass | ordinal
    loss: str
    metrics: tuple[str, ...]
    normalize: bool
    num_classes: int = 2
    hybrid_alpha: float = 0.5
    weight: float = 1.0
    unit: str = ""

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.column}"

    @property
    def out_dim(self) -> int:
        """Width of this task's slice of the head output (logits for multiclass/ordinal)."""
        return self.num_classes if self.kind in ("multiclass", "ordinal") else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["metrics"] = list(self.metrics)
        return d

    @staticmethod
    def from_dict(d: dict) -> TaskSpec:
        return TaskSpec(**{**d, "metrics": tuple(d["metrics"])})


def expand_columns(patterns: list[str], header: list[str], where: str) -> list[str]:
    """Expand names/wildcards against ``header``; a pattern that matches nothing is an error."""
    out: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            hits = [c for c in header if fnmatch.fnmatchcase(c, pattern)]
        else:
            hits = [pattern] if pattern in header else []
        if not hits:
            raise ConfigError(
                f"{where}: label column '{pattern}' not found; available columns: {header[:20]}"
                + (" ..." if len(header) > 20 else "")
            )
        out.extend(h for h in hits if h not in out)
    return out


def dataset_tasks(ds: DatasetConfig, header: list[str], where: str) -> list[TaskSpec]:
    if ds.smiles_column not in header:
        raise ConfigError(
            f"{where}: SMILES column '{ds.smiles_column}' not found (datasets.{ds.name}.smiles_column);"
            f" available columns: {header[:20]}"
        )
    tasks: list[TaskSpec] = []
    for group in ds.tasks:
        for col in expand_columns(group.columns, header, where):
            tasks.append(
                TaskSpec(
                    dataset=ds.name,
                    column=col,
                    level=group.level,
                    kind=group.kind,
                    loss=str(group.loss),
                    metrics=tuple(group.metrics or ()),
                    normalize=bool(group.normalize),
                    num_classes=group.num_classes,
                    hybrid_alpha=group.hybrid_alpha,
                    weight=group.weight,
                    unit=group.unit,
                )
            )
    return tasks


def tasks_at(tasks: list[TaskSpec], level: str) -> list[TaskSpec]:
    return [t for t in tasks if t.level == level]


def head_groups(tasks: list[TaskSpec], level: str) -> dict[str, list[int]]:
    """Dataset name → indices (into ``tasks_at(tasks, level)``) of its tasks; one head each."""
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(tasks_at(tasks, level)):
        groups.setdefault(t.dataset, []).append(i)
    return groups
