"""RDKit 2D descriptors mapped through a fixed reference distribution (``rdkit2d_normalized``).

The ``rdkit2d`` set is standardized by the model with train-split statistics. A descriptor that is
almost always 0 on a small train set (e.g. the count of aromatic heterocycles on 513 FreeSolv
molecules) then has a tiny σ, and every later molecule that carries it reads at the ±6σ clamp.
``rdkit2d_normalized`` is chemprop v1's ``rdkit_2d_normalized`` idea (descriptastorus): each
descriptor x is replaced by its cumulative distribution value on a fixed reference set of molecules,

.. math::
    u(x) = \\frac{\\#\\{r < x\\} + \\tfrac12 \\#\\{r = x\\}}{N} \\in [0, 1]

(mid-rank: a value shared by many reference molecules maps to the middle of its step), so its scale
comes from chemistry at large, not from the train split. The reference here is offline: drug-like
MOSES molecules (``molsets`` wheel) and small QM9 molecules (``qm9pack``), half and half, so that
both drug-sized and small molecules spread over [0, 1]. The table ships in the package
(``rdkit2d_reference.npz``): for each descriptor, sorted knots (reference values of ``asinh(x)``) and
their mid-rank u; between knots u is interpolated linearly, beyond them it is the end knot's u.
Rebuild it with ``python -m graphium_ray.chem.descriptor_reference --molecules N``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
from pathlib import Path

import numpy as np

REFERENCE_FILE = Path(__file__).with_name("rdkit2d_reference.npz")
KNOTS = 257  # quantile knots per descriptor (fewer where the descriptor takes fewer values)


def reference_knots(values_N: np.ndarray, knots: int = KNOTS) -> tuple[np.ndarray, np.ndarray]:
    """One descriptor's reference sample (N,) (NaN = undefined, ignored) → (knots (K,), u (K,)):
    K ≤ ``knots`` distinct sample values at evenly spaced quantiles, each with its mid-rank u."""
    sample = np.sort(values_N[np.isfinite(values_N)].astype(np.float64))
    if not len(sample):
        return np.zeros(1, np.float64), np.full(1, 0.5)
    picked = np.unique(np.quantile(sample, np.linspace(0.0, 1.0, knots), method="nearest"))
    below = np.searchsorted(sample, picked, side="left")
    at_or_below = np.searchsorted(sample, picked, side="right")
    return picked, (below + 0.5 * (at_or_below - below)) / len(sample)


class DescriptorReference:
    """The reference table: :meth:`transform` maps (G, D) ``asinh`` descriptors to u ∈ [0, 1]."""

    def __init__(self, names: list[str], knots: list[np.ndarray], u: list[np.ndarray], meta: str = ""):
        self.names, self.knots, self.u, self.meta = names, knots, u, meta

    @classmethod
    def build(cls, names: list[str], values_ND: np.ndarray, meta: str = "") -> DescriptorReference:
        pairs = [reference_knots(values_ND[:, j]) for j in range(values_ND.shape[1])]
        return cls(names, [k for k, _ in pairs], [u for _, u in pairs], meta)

    def transform(self, values_GD: np.ndarray) -> np.ndarray:
        """(G, D) → (G, D) float32 u values; NaN stays NaN (undefined for that molecule)."""
        out = np.full(values_GD.shape, np.nan, np.float32)
        for j, (knots, u) in enumerate(zip(self.knots, self.u, strict=True)):
            column = values_GD[:, j].astype(np.float64)
            ok = np.isfinite(column)
            out[ok, j] = np.interp(column[ok], knots, u)
        return out

    def digest(self) -> str:
        """A content hash of the table (names, knots, u values at float32, as saved): a checkpoint and a
        cache entry record it, so that a rebuilt table is never read by a model fitted to the old one."""
        h = hashlib.blake2b(digest_size=8)
        h.update("\n".join(self.names).encode())
        for knots, u in zip(self.knots, self.u, strict=True):
            h.update(np.asarray(knots, np.float32).tobytes())
            h.update(np.asarray(u, np.float32).tobytes())
        return h.hexdigest()

    def save(self, path: Path) -> None:
        lengths = np.array([len(k) for k in self.knots], np.int32)
        np.savez_compressed(path, names=np.array(self.names), lengths=lengths, meta=np.array(self.meta),
                            knots=np.concatenate(self.knots).astype(np.float32),
                            u=np.concatenate(self.u).astype(np.float32))  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> DescriptorReference:
        with np.load(path) as f:
            bounds = np.cumsum(f["lengths"])[:-1]
            knots = [k.astype(np.float64) for k in np.split(f["knots"], bounds)]
            u = [v.astype(np.float64) for v in np.split(f["u"], bounds)]
            return cls([str(n) for n in f["names"]], knots, u, str(f["meta"]))


@functools.cache
def shipped_reference() -> DescriptorReference:
    """The package's reference table, checked against the descriptors this RDKit computes."""
    from rdkit import __version__ as rdkit_version

    from graphium_ray.chem.descriptors import MOLECULE_FEATURE_SETS

    if not REFERENCE_FILE.is_file():
        raise RuntimeError(f"{REFERENCE_FILE} is missing: rebuild it with python -m graphium_ray.chem.descriptor_reference")
    reference = DescriptorReference.load(REFERENCE_FILE)
    here = MOLECULE_FEATURE_SETS["rdkit2d"].names()
    if reference.names != here:
        raise RuntimeError(f"rdkit2d_normalized: the shipped reference table has {len(reference.names)} descriptors, "
                           f"this RDKit ({rdkit_version}) computes {len(here)} others; rebuild it with "
                           "python -m graphium_ray.chem.descriptor_reference")  # fmt: skip
    return reference


def _reference_smiles(n_molecules: int) -> list[str]:
    """n/2 MOSES molecules (evenly spaced over its training set) and n/2 QM9 molecules."""
    from graphium_ray.data.builtin import qm9_sample
    from graphium_ray.data.pretrain_data import moses_sample

    moses = [s for _, chunk in moses_sample(n_molecules // 2) for s in chunk]
    qm9 = qm9_sample(n_molecules - len(moses), ["SMILES"]).column(0).to_pylist()
    return moses + qm9


def main(argv: list[str] | None = None) -> None:
    from rdkit import Chem
    from rdkit import __version__ as rdkit_version

    from graphium_ray.chem.descriptors import MOLECULE_FEATURE_SETS, molecule_features

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", type=int, default=20_000)
    parser.add_argument("--output", type=Path, default=REFERENCE_FILE)
    args = parser.parse_args(argv)
    smiles = _reference_smiles(args.molecules)
    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles) if m is not None]
    values = molecule_features(mols, ["rdkit2d"])
    meta = (f"{len(mols)} molecules ({args.molecules // 2} MOSES train, evenly spaced; the rest QM9 from qm9pack), "
            f"RDKit {rdkit_version}, asinh of each descriptor")  # fmt: skip
    DescriptorReference.build(MOLECULE_FEATURE_SETS["rdkit2d"].names(), values, meta).save(args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e3:.0f} kB): {meta}")


if __name__ == "__main__":
    main()
