"""The prepared cache's manifest, typed: written once by ``prepare`` (``manifest.json``), read by
every later stage. :class:`ModelData` is the part a model needs (saved with every checkpoint as
``data.json``); :class:`Manifest` adds what ``prepare`` counted.

This module is the one place that reads or writes these JSON keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from graphium_ray.tasks import TaskSpec


@dataclass(frozen=True, kw_only=True)
class ModelData:
    """What the network, the label normalizer, collate and inference need to know about the data.

    ``tasks``: the task dicts (:meth:`TaskSpec.to_dict`), in head-column order; ``label_widths``:
    label columns per level (graph / node / edge); ``atom_dim`` / ``bond_dim``: feature widths;
    ``label_stats``: per level, train-split ``count`` / ``mean`` / ``std`` per label column;
    ``featurizer``: the featurizer config (dumped); ``molecule_features``: ``{names, mean, std}`` of
    molecule-level inputs, empty without them; ``cache_key``: the cache the model was trained on.
    """

    tasks: list[dict]
    label_widths: dict[str, int]
    atom_dim: int
    bond_dim: int
    label_stats: dict = field(default_factory=dict)
    featurizer: dict
    molecule_features: dict = field(default_factory=dict)
    cache_key: str = ""

    @property
    def task_specs(self) -> list[TaskSpec]:
        return [TaskSpec.from_dict(t) for t in self.tasks]

    @property
    def mol_feat_dim(self) -> int:
        """Width M of the molecule-level inputs (0 without them)."""
        return len(self.molecule_features.get("names", []))

    @property
    def positional_encodings(self) -> dict:
        return self.featurizer["positional_encodings"]

    def model_data(self) -> ModelData:
        """Only the :class:`ModelData` fields (what a checkpoint keeps)."""
        return ModelData(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ModelData)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict):
        """From JSON; keys of other versions that this class does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def read(cls, path: Path):
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True, kw_only=True)
class Manifest(ModelData):
    """A finished ``prepare``: :class:`ModelData` plus ``splits`` (molecules per split),
    ``featurized`` / ``molecules`` (usable / all merged molecules), ``rows_in`` (input rows per
    dataset), ``skipped`` (``total``, ``by_stage``, ``report`` path), ``duplicates`` (conflict report),
    ``sources`` (file fingerprints), ``prepare_seconds`` and ``stage_seconds`` (ingest, merge,
    featurize, reports: where the time went)."""

    splits: dict[str, int]
    featurized: int
    molecules: int
    rows_in: dict[str, int]
    skipped: dict
    duplicates: dict = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    prepare_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
