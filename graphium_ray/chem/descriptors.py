"""Molecule-level input features: RDKit's 2D descriptors (chemprop's ``rdkit_2d`` molecule featurizer).

``rdkit2d`` is every descriptor in ``rdkit.Chem.Descriptors._descList`` (217 in RDKit 2026.09),
in that order, each passed through ``asinh`` (sign-preserving, ≈ log|x| for large |x|: counts,
weights and areas keep their order, and heavy tails such as ``Ipc`` ~1e20 stay finite). A descriptor
RDKit cannot compute for a molecule is NaN; the model standardizes with train-split statistics and
reads NaN as the train mean (see :class:`graphium_ray.nn.encoders.MoleculeFeatures`).
``rdkit2d_normalized`` is the same descriptors mapped through a fixed reference distribution to
u ∈ [0, 1] (:mod:`graphium_ray.chem.descriptor_reference`); the model centres and scales them by
that reference (u = 0.5, σ = 1/√12), not by the train split.

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


def _to_reference_cdf(values_GD: np.ndarray) -> np.ndarray:
    from graphium_ray.chem.descriptor_reference import shipped_reference

    return shipped_reference().transform(values_GD)


def _reference_digest() -> str:
    from graphium_ray.chem.descriptor_reference import shipped_reference

    return shipped_reference().digest()


class FeatureSet(NamedTuple):
    names: Callable[[], list[str]]  # the feature names, in order
    compute: Callable[[Chem.Mol], list[float]]  # one molecule's values, in that order
    transform: Callable[[np.ndarray], np.ndarray] | None = None  # (G, D) asinh values → what the model reads
    # fixed (mean, std) the model standardizes with, or None: the train split's statistics
    reference_scale: tuple[float, float] | None = None
    table_digest: Callable[[], str] | None = None  # content hash of a fixed table the transform reads


def _descriptor_names() -> list[str]:
    return [name for name, _ in Descriptors._descList]


MOLECULE_FEATURE_SETS = {
    "rdkit2d": FeatureSet(_descriptor_names, _rdkit2d),
    "rdkit2d_normalized": FeatureSet(_descriptor_names, _rdkit2d, _to_reference_cdf, (0.5, 1.0 / np.sqrt(12.0)),
                                     _reference_digest),
}


def molecule_feature_names(sets: list[str]) -> list[str]:
    """The column names of the molecule features of ``sets`` (e.g. ``["rdkit2d"]``), in order."""
    return [f"{s}:{name}" for s in sets for name in MOLECULE_FEATURE_SETS[s].names()]


def feature_sets_of(names: list[str]) -> list[str]:
    """The sets of ``set:descriptor`` column names, in first-seen order."""
    return list(dict.fromkeys(n.split(":", 1)[0] for n in names))


def descriptor_passes(sets: list[str]) -> int:
    """How many RDKit descriptor passes computing ``sets`` costs: sets that share a computation
    (``rdkit2d`` and ``rdkit2d_normalized``) count once, as :func:`molecule_features` runs it once."""
    return len({MOLECULE_FEATURE_SETS[s].compute for s in sets if s in MOLECULE_FEATURE_SETS})


def molecule_feature_tables(sets: list[str]) -> dict[str, str]:
    """``{set: digest}`` of the fixed tables the sets read (``rdkit2d_normalized``: the reference
    CDF table); empty when none does. Recorded in the cache key and the checkpoint."""
    return {s: MOLECULE_FEATURE_SETS[s].table_digest() for s in sets if MOLECULE_FEATURE_SETS[s].table_digest}


def check_molecule_features(names: list[str], tables: dict[str, str] | None = None) -> None:
    """Refuse a model whose molecule features are not the ones this RDKit computes, in order, or
    whose fixed tables (``tables``: ``{set: digest}`` recorded at training) differ from this install's."""
    if not names:
        return
    sets = feature_sets_of(names)
    unknown = [s for s in sets if s not in MOLECULE_FEATURE_SETS]
    if unknown:
        raise ValueError(f"the model reads molecule features {unknown} that this version does not know")
    here = molecule_feature_names(sets)
    if here != names:
        missing = [n for n in names if n not in here][:3]
        raise ValueError(f"the model was trained with {len(names)} molecule features {sets}, this RDKit "
                         f"({rdkit.__version__}) computes {len(here)}" + (f"; it lacks {missing}" if missing else "")
                         + ": use the RDKit the model was trained with")  # fmt: skip
    here_tables = molecule_feature_tables(sets)
    changed = [s for s, digest in (tables or {}).items() if here_tables.get(s) != digest]
    if changed:
        raise ValueError(f"the model was trained with {changed[0]} against reference table {tables[changed[0]]}, "
                         f"this graphium-ray ships table {here_tables.get(changed[0])}: use the graphium-ray "
                         "version the model was trained with")  # fmt: skip


def reference_scale(name: str) -> tuple[float, float] | None:
    """The fixed (mean, std) a molecule feature column is standardized with, or None (train statistics)."""
    return MOLECULE_FEATURE_SETS[name.split(":", 1)[0]].reference_scale


def molecule_features(mols: list[Chem.Mol], sets: list[str]) -> np.ndarray:
    """(G, D) float32: per set, ``asinh`` of each molecule's descriptors (NaN where undefined, inf →
    NaN), then the set's transform (``rdkit2d_normalized``: the reference CDF)."""
    width = len(molecule_feature_names(sets))
    if not mols or not sets:
        return np.zeros((len(mols), width), np.float32)
    computed: dict[Callable, np.ndarray] = {}  # rdkit2d and rdkit2d_normalized share one RDKit pass (~5 ms/molecule)
    blocks = []
    for name in sets:
        feature_set = MOLECULE_FEATURE_SETS[name]
        if feature_set.compute not in computed:
            raw = np.array([feature_set.compute(mol) for mol in mols], dtype=np.float64)
            raw[~np.isfinite(raw)] = np.nan
            computed[feature_set.compute] = np.arcsinh(raw).astype(np.float32)
        values = computed[feature_set.compute]
        blocks.append(feature_set.transform(values) if feature_set.transform else values)
    return np.concatenate(blocks, axis=1)
