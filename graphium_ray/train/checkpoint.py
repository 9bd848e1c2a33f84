"""Checkpoint I/O and model construction from a config + manifest.

A checkpoint directory holds: ``model.pt`` (state dict), ``optimizer.pt``, ``state.json``
(epoch, history), ``config.yaml`` (the resolved run config) and ``data.json`` (tasks, feature
widths, label statistics: everything needed to rebuild the model and read its outputs in
real units). Tensors are loaded with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from graphium_ray.config import RunConfig, dump_config, validate
from graphium_ray.nn.network import MultiTaskGNN
from graphium_ray.tasks import TaskSpec

DATA_KEYS = ("tasks", "label_widths", "atom_dim", "bond_dim", "label_stats", "featurizer", "cache_key")


def build_model(cfg: RunConfig, data: dict) -> MultiTaskGNN:
    pe = data["featurizer"]["positional_encodings"]
    tasks = [TaskSpec.from_dict(t) for t in data["tasks"]]
    return MultiTaskGNN(cfg.model, data["atom_dim"], data["bond_dim"], tasks, pe["laplacian_k"], pe["random_walk_k"])


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    state: dict, cfg: RunConfig, data: dict) -> None:  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), directory / "optimizer.pt")
    (directory / "state.json").write_text(json.dumps(state, indent=2))
    (directory / "config.yaml").write_text(dump_config(cfg))
    (directory / "data.json").write_text(json.dumps({k: data[k] for k in DATA_KEYS if k in data}, indent=1))


def load_checkpoint(directory: str | Path) -> tuple[RunConfig, dict, MultiTaskGNN, dict]:
    """Rebuild (config, data info, model with weights, state) from a checkpoint directory."""
    directory = Path(directory)
    if not (directory / "model.pt").is_file():
        raise FileNotFoundError(f"{directory} is not a graphium-ray checkpoint (no model.pt)")
    cfg = validate(yaml.safe_load((directory / "config.yaml").read_text()), str(directory / "config.yaml"))
    data = json.loads((directory / "data.json").read_text())
    model = build_model(cfg, data)
    model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
    state = json.loads((directory / "state.json").read_text())
    return cfg, data, model, state
