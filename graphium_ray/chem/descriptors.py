"""Molecule-level input features: RDKit's 2D descriptors (chemprop's ``rdkit_2d`` molecule featurizer).

``rdkit2d`` is every descriptor in ``rdkit.Chem.Descriptors._descList`` (217 in RDKit 2026.09),
in that order, each passed through ``asinh`` (sign-preserving, ≈ log|x| for large |x|: counts,
weights and areas keep their order, and heavy tails such as ``Ipc`` ~1e20 stay finite). A descriptor
RDKit cannot compute for a molecule is NaN; the model standardizes with train-split statistics and
reads NaN as the train mean (see :class:`graphium_ray.nn.encoders.MoleculeFeatures`).

The names travel in the cache manifest and the checkpoint: a model is only ever fed the features
it was trained with, in the same order (a newer RDKit with more descriptors is refused, not mixed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import rdkit
from rdkit import Chem
from rdkit.Chem import Descriptors


def _rdkit2d(mol: Chem.Mol) -> list[float]:
    values = []
    for _, fn in Descriptors._descList:
        try:
            values.append(float(fn(mol)))
        except Exception:  # RDKit raises assorted errors for a descriptor undefined on a molecule
            values.append(float("nan"))
    return values


class FeatureSet(NamedTuple):
    names: Callable[[], list[str]]  # the feature names, in order
    compute: Callable[[Chem.Mol], list[float]]  # one molecule's values, in that order


MOLECULE_FEATURE_SETS = {"rdkit2d": FeatureSet(lambda: [name for name, _ in Descriptors._descList], _rdkit2d)}


def molecule_feature_names(sets: list[str]) -> list[str]:
    """The column names of the molecule features of ``sets`` (e.g. ``["rdkit2d"]``), in order."""
    return [f"{s}:{name}" for s in sets for name in MOLECULE_FEATURE_SETS[s].names()]


def check_molecule_features(names: list[str]) -> None:
    """Refuse a model whose molecule features are not the ones this RDKit computes, in order."""
    if not names:
        return
    sets = list(dict.fromkeys(n.split(":", 1)[0] for n in names))
    unknown = [s for s in sets if s not in MOLECULE_FEATURE_SETS]
    if unknown:
        raise ValueError(f"the model reads molecule features {unknown} that this version does not know")
    here = molecule_feature_names(sets)
    if here != names:
        missing = [n for n in names if n not in here][:3]
        raise ValueError(f"the model was trained with {len(names)} molecule features {sets}, this RDKit "
                         f"({rdkit.__version__}) computes {len(here)}" + (f"; it lacks {missing}" if missing else "")
                         + ": use the RDKit the model was trained with")  # fmt: skip


def molecule_features(mols: list[Chem.Mol], sets: list[str]) -> np.ndarray:
    """(G, D) float32: ``asinh`` of each molecule's descriptors; NaN where undefined (inf → NaN)."""
    width = len(molecule_feature_names(sets))
    if not mols or not sets:
        return np.zeros((len(mols), width), np.float32)
    raw = np.array([[v for s in sets for v in MOLECULE_FEATURE_SETS[s].compute(mol)] for mol in mols], dtype=np.float64)
    raw[~np.isfinite(raw)] = np.nan
    return np.arcsinh(raw).astype(np.float32)
