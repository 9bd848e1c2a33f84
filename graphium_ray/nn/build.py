"""The configured network from a model config and the prepared data's manifest, with its µP
learning-rate multipliers returned explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphium_ray.chem.descriptors import check_molecule_features
from graphium_ray.config import ModelConfig
from graphium_ray.manifest import ModelData
from graphium_ray.nn.mup import apply_mup, base_shapes
from graphium_ray.nn.network import MultiTaskGNN
from graphium_ray.tasks import TaskSpec, tasks_at


@dataclass
class BuiltNetwork:
    """``model``; ``lr_mult``: parameter name → learning-rate multiplier (µP: 1/m for matrix-like
    weights; empty under standard parametrization); ``base_shapes``: parameter shapes at the base
    width (µP only; saved with checkpoints so that a reload classifies parameters the same way)."""

    model: MultiTaskGNN
    lr_mult: dict[str, float] = field(default_factory=dict)
    base_shapes: dict[str, list[int]] | None = None


def build_network(model_cfg: ModelConfig, data: ModelData) -> BuiltNetwork:
    """Under µP the model is re-initialised against the shapes of the same model at
    ``base_hidden_dim``."""
    pe = data.positional_encodings
    check_molecule_features(data.molecule_features.get("names", []), data.molecule_features.get("tables"))
    tasks = data.task_specs
    prevalence = binary_prevalence(tasks, data.label_stats)

    def make(cfg: ModelConfig) -> MultiTaskGNN:
        return MultiTaskGNN(cfg, data.atom_dim, data.bond_dim, tasks, pe["laplacian_k"], pe["random_walk_k"],
                            prevalence, data.molecule_features)  # fmt: skip

    model = make(model_cfg)
    if model_cfg.parametrization != "mup":
        return BuiltNetwork(model)
    shapes = mup_base_shapes(model_cfg, data)
    lr_mult = apply_mup(model, shapes, model_cfg.hidden_dim / model_cfg.base_hidden_dim)
    return BuiltNetwork(model, lr_mult, shapes)


def mup_base_shapes(model_cfg: ModelConfig, data: ModelData) -> dict[str, list[int]]:
    """Parameter shapes of the same network at ``base_hidden_dim`` (what µP compares against)."""
    base_cfg = model_cfg.model_copy(update={"hidden_dim": model_cfg.base_hidden_dim, "parametrization": "sp"})
    return base_shapes(build_network(base_cfg, data).model)


def binary_prevalence(tasks: list[TaskSpec], label_stats: dict) -> dict[str, float]:
    """Task name → fraction of positive train labels, for binary tasks that have train labels."""
    out: dict[str, float] = {}
    for level in ("graph", "node", "edge"):
        stats = label_stats.get(level)
        for i, task in enumerate(tasks_at(tasks, level)):
            if task.kind == "binary" and stats and stats["count"][i] > 0:
                out[task.name] = float(stats["mean"][i])
    return out
