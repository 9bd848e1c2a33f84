"""Featurize a small list of molecules in-process (no Ray) and turn rows into a GraphBatch.

For tools that train in-process (coordinate check, µP transfer benchmark) and for tests.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from graphium_ray.batch import GraphBatch
from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.collate import collate_arrays
from graphium_ray.data.featurize import Featurizer, molecule_rows  # noqa: F401  (molecule_rows: re-exported)


def featurize_smiles(smiles: list[str], y_graph: np.ndarray, cfg: FeaturizerConfig) -> pa.Table:
    """Featurized rows (the cache schema) for ``smiles`` with graph labels ``y_graph`` (M, T)."""
    return Featurizer(cfg, 0, 0)(molecule_rows(smiles, y_graph))


def rows_to_batch(feats: pa.Table, widths: dict[str, int], bond_dim: int) -> GraphBatch:
    """Featurized Arrow rows → one GraphBatch."""
    return collate_arrays(feats, widths, bond_dim=bond_dim)
