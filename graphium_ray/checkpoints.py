"""Checkpoint directories: writing and reading them (used by training, inference and fine-tuning).

A checkpoint directory holds: ``model.pt`` (state dict), ``optimizer.pt``, ``state.json``
(epoch, history), ``config.yaml`` (the resolved run config), ``data.json`` (tasks, feature
widths, label statistics: everything needed to rebuild the model and read its outputs in
real units) and, under µP, ``mup_base_shapes.json``. Tensors are loaded with
``torch.load(weights_only=True)``: no pickled code runs.

``builtin:<name>`` names a checkpoint shipped inside the package (``graphium_ray/pretrained/<name>``,
model cards in ``docs/pretrained/``): wherever a checkpoint path is accepted, it needs no download.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from graphium_ray.config import ConfigError, RunConfig, dump_config, validate
from graphium_ray.data.cache import write_json_atomic
from graphium_ray.manifest import ModelData
from graphium_ray.nn.build import build_network, mup_base_shapes
from graphium_ray.nn.network import MultiTaskGNN

BUILTIN_PREFIX = "builtin:"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def builtin_models() -> list[str]:
    """Names of the checkpoints shipped with the package (``builtin:<name>``)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "model.pt").is_file())


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint argument as a directory: ``builtin:<name>`` → the shipped checkpoint, else the path."""
    text = str(path)
    if not text.startswith(BUILTIN_PREFIX):
        return Path(path)
    name = text[len(BUILTIN_PREFIX) :]
    if name not in builtin_models():
        raise ConfigError(f"checkpoint {text}: no such built-in model; available: "
                          + (", ".join(f"{BUILTIN_PREFIX}{n}" for n in builtin_models()) or "none"))  # fmt: skip
    return PRETRAINED_DIR / name


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    state: dict, cfg: RunConfig, data: ModelData) -> None:  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / "model.pt")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), directory / "optimizer.pt")
    (directory / "state.json").write_text(json.dumps(state, indent=2))
    (directory / "config.yaml").write_text(dump_config(cfg))
    write_json_atomic(directory / "data.json", data.model_data().to_dict())
    if cfg.model.parametrization == "mup":  # the base shapes travel with the weights
        shapes = mup_base_shapes(cfg.model, data)
        (directory / "mup_base_shapes.json").write_text(json.dumps(shapes))


def checkpoint_members(path: str | Path) -> list[Path]:
    """The checkpoint directories behind ``path``: a checkpoint itself, a run directory (its
    ``checkpoint/``), a replicated run (every ``replicate_<i>/checkpoint``: an ensemble) or a
    shipped model (``builtin:<name>``)."""
    path = resolve_checkpoint(path)
    if (path / "model.pt").is_file():
        return [path]
    if (path / "checkpoint" / "model.pt").is_file():
        return [path / "checkpoint"]
    members = sorted(path.glob("replicate_*/checkpoint"), key=lambda p: int(p.parent.name.split("_")[1]))
    if members:
        return members
    raise FileNotFoundError(f"{path} is not a graphium-ray checkpoint or run directory (no model.pt)")


def load_checkpoint(directory: str | Path) -> tuple[RunConfig, ModelData, MultiTaskGNN, dict]:
    """Rebuild (config, data info, model with weights, state) from a checkpoint directory, a run
    directory (its ``checkpoint/``) or ``builtin:<name>``; a run of replicates is an error naming one."""
    members = checkpoint_members(directory)
    if len(members) > 1:
        raise FileNotFoundError(f"{resolve_checkpoint(directory)} is a run of {len(members)} replicates: "
                                f"name one model, e.g. {members[0]}")  # fmt: skip
    directory = members[0]
    cfg = validate(yaml.safe_load((directory / "config.yaml").read_text()), str(directory / "config.yaml"))
    data = ModelData.read(directory / "data.json")
    built = build_network(cfg.model, data)
    saved_shapes = directory / "mup_base_shapes.json"
    if saved_shapes.exists() and json.loads(saved_shapes.read_text()) != built.base_shapes:
        raise ValueError(f"{directory}: the saved µP base shapes differ from those of the config's base width")
    built.model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
    state = json.loads((directory / "state.json").read_text())
    return cfg, data, built.model, state
