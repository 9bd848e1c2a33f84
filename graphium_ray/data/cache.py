"""Cache key and manifest of a prepared (featurized) dataset.

The cache key hashes: every source file's content fingerprint (size, mtime and full content
hash; size/ETag for remote files), the resolved task list, the featurizer/split/sharding
config, the digest of any fixed feature table (``rdkit2d_normalized``) and
:data:`PIPELINE_VERSION`. Any change to one of them gives a new cache directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from graphium_ray import __version__
from graphium_ray.config import DataConfig
from graphium_ray.manifest import Manifest
from graphium_ray.tasks import TaskSpec

PIPELINE_VERSION = "2"  # bump when featurized output changes for the same config (2: int8 atom and bond features)


def cache_key(cfg: DataConfig, fingerprints: dict[str, str], tasks: list[TaskSpec]) -> str:
    from graphium_ray.chem.descriptors import molecule_feature_tables  # RDKit: only when a key is computed

    payload = {
        "files": sorted(fingerprints.items()),
        "tasks": [t.to_dict() for t in tasks],
        "datasets": [d.model_dump(mode="json") for d in cfg.datasets],
        "featurizer": cfg.featurizer.without_backend(),
        "split": cfg.split.model_dump(mode="json"),
        "num_shards": cfg.num_shards,
        "on_conflict": cfg.on_conflict,
        "pipeline": PIPELINE_VERSION,
        "code": __version__,
    }
    if tables := molecule_feature_tables(list(cfg.featurizer.molecule)):
        payload["feature_tables"] = tables  # a rebuilt reference table gives a new entry (key unchanged otherwise)
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


def entry_root(cfg: DataConfig, fingerprints: dict[str, str], tasks: list[TaskSpec]) -> Path:
    """The directory of the cache entry of this data: ``<cache_dir>/<key>`` (absolute)."""
    return Path(cfg.cache_dir).resolve() / cache_key(cfg, fingerprints, tasks)


@dataclass(frozen=True)
class PreparedData:
    """Paths and manifest of a finished ``prepare``."""

    root: Path
    manifest: Manifest

    @property
    def featurized_dir(self) -> Path:
        return self.root / "featurized"

    @property
    def tasks(self) -> list[TaskSpec]:
        return self.manifest.task_specs

    @staticmethod
    def load(root: str | Path) -> PreparedData:
        root = Path(root)
        manifest_path = root / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no manifest.json in {root}: run `graphium-ray prepare` first")
        return PreparedData(root, Manifest.read(manifest_path))


def write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=float))
    os.replace(tmp, path)
