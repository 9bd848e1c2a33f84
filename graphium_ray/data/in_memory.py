"""Featurize a small list of molecules in-process (no Ray) and turn rows into a GraphBatch.

For tools that train in-process (coordinate check, µP transfer benchmark) and for tests.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from graphium_ray.batch import GraphBatch
from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.collate import collate_arrays
from graphium_ray.data.featurize import Featurizer


def molecule_rows(smiles: list[str] | pa.Array, y_graph: np.ndarray | None = None) -> pa.Table:
    """Rows of the Featurizer's input schema for plain SMILES (the SMILES is its own key; no
    node/edge labels), with graph labels ``y_graph`` (M, T) if given."""
    smiles = pa.array(smiles, pa.string()) if not isinstance(smiles, (pa.Array, pa.ChunkedArray)) else smiles
    n = len(smiles)
    y = np.zeros((n, 0), np.float32) if y_graph is None else np.asarray(y_graph, np.float32)
    empty = pa.array([[]] * n, pa.list_(pa.float32()))
    return pa.table({"mol_key": smiles, "split": pa.nulls(n, pa.string()), "sources": pa.nulls(n, pa.string()),
                     "smiles": smiles, "atom_mapped": pa.array([False] * n), "y_graph": pa.array(y.tolist(), pa.list_(pa.float32())),
                     "y_node": empty, "y_edge": empty})  # fmt: skip


def featurize_smiles(smiles: list[str], y_graph: np.ndarray, cfg: FeaturizerConfig) -> pa.Table:
    """Featurized rows (the cache schema) for ``smiles`` with graph labels ``y_graph`` (M, T)."""
    return Featurizer(cfg, 0, 0)(molecule_rows(smiles, y_graph))


def rows_to_batch(feats: pa.Table, widths: dict[str, int], bond_dim: int) -> GraphBatch:
    """Featurized Arrow rows → one GraphBatch."""
    return collate_arrays(feats, widths, bond_dim=bond_dim)
