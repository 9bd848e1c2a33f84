"""Checkpoint I/O and model construction from a config + manifest.

A checkpoint directory holds: ``model.pt`` (state dict), ``optimizer.pt``, ``state.json``
(epoch, history), ``config.yaml`` (the resolved run config), ``data.json`` (tasks, feature
widths, label statistics: everything needed to rebuild the model and read its outputs in
real units) and, under µP, ``mup_base_shapes.json``. Tensors are loaded with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from graphium_ray.chem.descriptors import check_molecule_features
from graphium_ray.config import RunConfig, dump_config, validate
from graphium_ray.nn.mup import apply_mup, base_shapes
from graphium_ray.nn.network import MultiTaskGNN
from graphium_ray.tasks import TaskSpec, tasks_at

DATA_KEYS = ("tasks", "label_widths", "atom_dim", "bond_dim", "label_stats", "featurizer", "cache_key",
             "molecule_features")


def build_model(cfg: RunConfig, data: dict) -> MultiTaskGNN:
    """The configured network; under µP re-initialised against the base-width shapes, with the
    learning-rate multipliers in ``model.lr_mult`` (used by the optimizer builder)."""
    pe = data["featurizer"]["positional_encodings"]
    check_molecule_features(data.get("molecule_features", {}).get("names", []))
    tasks = [TaskSpec.from_dict(t) for t in data["tasks"]]
    prevalence = binary_prevalence(tasks, data.get("label_stats", {}))

    def make(model_cfg):
        return MultiTaskGNN(model_cfg, data["atom_dim"], data["bond_dim"], tasks, pe["laplacian_k"],
                            pe["random_walk_k"], prevalence, data.get("molecule_features"))  # fmt: skip

    model = make(cfg.model)
    model.lr_mult = {}
    if cfg.model.parametrization == "mup":
        base = make(cfg.model.model_copy(update={"hidden_dim": cfg.model.base_hidden_dim}))
        model.base_shapes = base_shapes(base)
        model.lr_mult = apply_mup(model, model.base_shapes, cfg.model.hidden_dim / cfg.model.base_hidden_dim)
    return model


def binary_prevalence(tasks: list[TaskSpec], label_stats: dict) -> dict[str, float]:
    """Task name → fraction of positive train labels, for binary tasks that have train labels."""
    out: dict[str, float] = {}
    for level in ("graph", "node", "edge"):
        stats = label_stats.get(level)
        for i, task in enumerate(tasks_at(tasks, level)):
            if task.kind == "binary" and stats and stats["count"][i] > 0:
                out[task.name] = float(stats["mean"][i])
    return out


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    state: dict, cfg: RunConfig, data: dict) -> None:  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), directory / "optimizer.pt")
    (directory / "state.json").write_text(json.dumps(state, indent=2))
    (directory / "config.yaml").write_text(dump_config(cfg))
    (directory / "data.json").write_text(json.dumps({k: data[k] for k in DATA_KEYS if k in data}, indent=1))
    if getattr(model, "base_shapes", None):  # µP: the base shapes travel with the weights
        (directory / "mup_base_shapes.json").write_text(json.dumps(model.base_shapes))


def report_with_checkpoint(metrics: dict, is_rank_zero: bool, write: Callable[[Path], None]) -> None:
    """``ray.train.report`` from every worker; rank 0 attaches a checkpoint that ``write(dir)`` fills."""
    import tempfile

    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if is_rank_zero:
            write(Path(tmp))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)


def load_checkpoint(directory: str | Path) -> tuple[RunConfig, dict, MultiTaskGNN, dict]:
    """Rebuild (config, data info, model with weights, state) from a checkpoint directory."""
    directory = Path(directory)
    if not (directory / "model.pt").is_file():
        raise FileNotFoundError(f"{directory} is not a graphium-ray checkpoint (no model.pt)")
    cfg = validate(yaml.safe_load((directory / "config.yaml").read_text()), str(directory / "config.yaml"))
    data = json.loads((directory / "data.json").read_text())
    model = build_model(cfg, data)
    saved_shapes = directory / "mup_base_shapes.json"
    if saved_shapes.exists() and json.loads(saved_shapes.read_text()) != model.base_shapes:
        raise ValueError(f"{directory}: the saved µP base shapes differ from those of the config's base width")
    model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
    state = json.loads((directory / "state.json").read_text())
    return cfg, data, model, state
