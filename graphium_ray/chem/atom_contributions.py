"""Per-atom physico-chemical contributions as atom features (off by default).

Each is RDKit's atom-additive decomposition of a molecular property, so the values of a molecule's
atoms sum to the property (a test checks each sum against RDKit's molecule-level descriptor):

======================  ==================================================  ==================
feature                 value per atom                                      sums to
======================  ==================================================  ==================
crippen-logp            Wildman–Crippen logP contribution, the implicit     ``Crippen.MolLogP``
                        hydrogens' added to their heavy atom
crippen-mr              Wildman–Crippen molar refractivity / 10 (idem)      ``Crippen.MolMR`` / 10
tpsa-contribution       Ertl topological polar surface area / 10 (Å²)       ``CalcTPSA`` / 10
asa-contribution        Labute approximate surface area / 10 (Å²; the       ``CalcLabuteASA`` / 10
                        implicit H's share not included)                    minus the H share
gasteiger-charge        Gasteiger–Marsili partial charge (e) of the atom    the net charge
                        with its implicit hydrogens; 0 for every atom of a
                        molecule holding an element RDKit has no
                        parameters for (e.g. Se, Sc: its iteration gives
                        NaN for the whole molecule)
======================  ==================================================  ==================

The scales (/10) keep every value within a few units, like the other float features. These are
computed per molecule (RDKit has no batch call): the two Crippen columns ~0.35 ms a drug-like
molecule (the hydrogens are typed on an explicit copy), the others 20–100 µs; in ``prepare`` only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdMolDescriptors, rdPartialCharges


def crippen(mol: Chem.Mol) -> np.ndarray:
    """(num_atoms, 2): logP and MR / 10 contributions; each implicit hydrogen's contribution (its
    Crippen type depends on its heavy atom) is computed on an explicit copy and added to its atom."""
    with_hs = Chem.AddHs(mol)  # keeps atoms 0..n-1, appends the hydrogens
    contribs = np.asarray(rdMolDescriptors._CalcCrippenContribs(with_hs), dtype=np.float64).reshape(-1, 2)
    n = mol.GetNumAtoms()
    out = contribs[:n].copy()
    for h in range(n, with_hs.GetNumAtoms()):
        out[with_hs.GetAtomWithIdx(h).GetNeighbors()[0].GetIdx()] += contribs[h]
    return out / np.array([1.0, 10.0])


def tpsa_contribution(mol: Chem.Mol) -> np.ndarray:
    return np.asarray(rdMolDescriptors._CalcTPSAContribs(mol), dtype=np.float64)[:, None] / 10.0


def asa_contribution(mol: Chem.Mol) -> np.ndarray:
    atom_contribs, _implicit_h_share = rdMolDescriptors._CalcLabuteASAContribs(mol)
    return np.asarray(atom_contribs, dtype=np.float64)[:, None] / 10.0


def gasteiger_charge(mol: Chem.Mol) -> np.ndarray:
    """(num_atoms, 1): the charge of each atom with its implicit hydrogens (a molecule's values sum
    to its net charge). Computed on a copy: RDKit stores the charges as properties of the molecule."""
    copy = Chem.Mol(mol)
    rdPartialCharges.ComputeGasteigerCharges(copy, throwOnParamFailure=False)
    charges = np.array([a.GetDoubleProp("_GasteigerCharge") + a.GetDoubleProp("_GasteigerHCharge")
                        for a in copy.GetAtoms()])  # fmt: skip
    return np.where(np.isfinite(charges), charges, 0.0)[:, None]


# raw value key (chem/features.py ATOM_FLOAT_SOURCE) -> (per-molecule function returning
# (num_atoms, k) values, its column): keys sharing a function (logP and MR) compute it once
PER_MOLECULE_ATOM_VALUES: dict[str, tuple[Callable[[Chem.Mol], np.ndarray], int]] = {
    "logp": (crippen, 0), "mr": (crippen, 1), "tpsa": (tpsa_contribution, 0), "asa": (asa_contribution, 0),
    "gasteiger": (gasteiger_charge, 0),
}  # fmt: skip


def atom_values(keys: list[str], mols: list[Chem.Mol]) -> dict[str, np.ndarray]:
    """``key -> (Σ atoms,) float32``: the per-atom values of each key for all molecules, in atom order."""
    if not mols:
        return {k: np.zeros(0, np.float32) for k in keys}
    out = {}
    for compute in dict.fromkeys(PER_MOLECULE_ATOM_VALUES[k][0] for k in keys):
        values = np.concatenate([compute(m) for m in mols])
        for k in keys:
            if PER_MOLECULE_ATOM_VALUES[k][0] is compute:
                out[k] = values[:, PER_MOLECULE_ATOM_VALUES[k][1]].astype(np.float32)
    return out
