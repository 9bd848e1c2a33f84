"""SMILES → molecular graph arrays. Pure RDKit + NumPy; no torch, no Ray.

The atom order of the graph is the atom order of the SMILES as RDKit parses it, or, for
atom-mapped SMILES (Graphium's ``ordered_smiles``), the order of the atom-map numbers 1..N.
Node and edge labels are given in that order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from rdkit import Chem, RDLogger

from graphium_ray.chem.features import (
    ATOM_ONEHOT_TABLES,
    BOND_TYPE_TABLE,
    STEREO_TABLE,
    onehot_block,
)

RDLogger.DisableLog("rdApp.*")  # reasons are captured and reported per row instead


class MolGraph(NamedTuple):
    """One molecule as arrays.

    x: (N, F_atom) float32 atom features.
    edge_index: (2, E) int64, both directions of every bond; bond b is edges 2b and 2b+1.
    edge_attr: (E, F_bond) float32 bond features.
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


class ParseError(ValueError):
    """A SMILES that RDKit cannot turn into a valid molecule; the message is the reason."""


def parse_smiles(smiles: object, hydrogens: str = "implicit", atom_mapped: bool = False) -> Chem.Mol:
    """Parse and sanitize; raise :class:`ParseError` with RDKit's reason on failure.

    hydrogens: ``implicit`` (removed), ``as_written`` (H atoms of the SMILES kept, none added) or
    ``explicit`` (all added). Atom-mapped SMILES are reordered by map number first.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        raise ParseError("empty or missing SMILES")
    keep_h = hydrogens != "implicit" or atom_mapped
    mol = Chem.MolFromSmiles(smiles, sanitize=True) if not keep_h else None
    if mol is None:
        mol = _parse_diagnose(smiles, keep_h)
    if atom_mapped:
        mol = order_by_atom_map(mol)
    if hydrogens == "explicit":
        mol = Chem.AddHs(mol)
    elif hydrogens == "implicit" and atom_mapped:
        mol = Chem.RemoveHs(mol, sanitize=False)
    return mol


def _parse_diagnose(smiles: str, keep_h: bool) -> Chem.Mol:
    params = Chem.SmilesParserParams()
    params.sanitize = False
    params.removeHs = False
    mol = Chem.MolFromSmiles(smiles, params)
    if mol is None:
        raise ParseError("SMILES syntax error")
    try:
        Chem.SanitizeMol(mol)
    except Exception as err:  # RDKit raises several exception types, all with a useful message
        raise ParseError(f"{type(err).__name__}: {err}") from None
    return mol if keep_h else Chem.RemoveHs(mol, sanitize=False)


def order_by_atom_map(mol: Chem.Mol) -> Chem.Mol:
    """Renumber atoms so atom i has map number i+1; every atom must carry a unique map number."""
    maps = [a.GetAtomMapNum() for a in mol.GetAtoms()]
    n = len(maps)
    if sorted(maps) != list(range(1, n + 1)):
        raise ParseError(f"atom-map numbers are not a permutation of 1..{n}")
    order = [0] * n
    for idx, m in enumerate(maps):
        order[m - 1] = idx
    return Chem.RenumberAtoms(mol, order)


def molecule_key(mol: Chem.Mol) -> str:
    """Canonical isomeric SMILES of the heavy-atom molecule, atom maps cleared."""
    if any(a.GetAtomMapNum() for a in mol.GetAtoms()):
        mol = Chem.Mol(mol)
        for a in mol.GetAtoms():
            a.SetAtomMapNum(0)
    if any(a.GetAtomicNum() == 1 for a in mol.GetAtoms()):
        mol = Chem.RemoveHs(mol, sanitize=False)
    return Chem.MolToSmiles(mol)


def atom_features(mol: Chem.Mol, onehot: list[str], floats: list[str]) -> np.ndarray:
    """(N, F_atom) float32: one-hot blocks then float columns, in config order."""
    atoms = mol.GetAtoms()
    raw: dict[str, list] = {k: [] for k in ("z", "val", "deg", "chg", "rad", "aro", "ring", "hyb", "chi", "mass")}
    for a in atoms:
        raw["z"].append(a.GetAtomicNum())
        raw["val"].append(a.GetTotalValence())
        raw["deg"].append(a.GetDegree())
        raw["chg"].append(a.GetFormalCharge())
        raw["rad"].append(a.GetNumRadicalElectrons())
        raw["aro"].append(a.GetIsAromatic())
        raw["ring"].append(a.IsInRing())
        if "hybridization" in onehot:
            raw["hyb"].append(int(a.GetHybridization()))
        if "chirality" in onehot:
            raw["chi"].append(int(a.GetChiralTag()))
        if "mass" in floats:
            raw["mass"].append(a.GetMass() / 100.0)
    source = {"atomic-number": "z", "group": "z", "period": "z", "total-valence": "val",
              "hybridization": "hyb", "chirality": "chi"}  # fmt: skip
    blocks = [onehot_block(ATOM_ONEHOT_TABLES[n], np.asarray(raw[source[n]], dtype=np.int64)) for n in onehot]
    float_source = {"degree": "deg", "formal-charge": "chg", "radical-electron": "rad",
                    "aromatic": "aro", "in-ring": "ring", "mass": "mass"}  # fmt: skip
    if floats:
        blocks.append(np.asarray([raw[float_source[f]] for f in floats], dtype=np.float32).T.reshape(-1, len(floats)))
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((mol.GetNumAtoms(), 0), np.float32)


def bond_arrays(mol: Chem.Mol, bond_feats: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """edge_index (2, 2B) int64 with both directions; edge_attr (2B, F_bond) float32."""
    ends, btype, stereo, ring, conj = [], [], [], [], []
    for b in mol.GetBonds():
        ends.append((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
        btype.append(int(b.GetBondType()))
        stereo.append(int(b.GetStereo()))
        ring.append(b.IsInRing())
        conj.append(b.GetIsConjugated())
    n_bonds = len(ends)
    ends_arr = np.asarray(ends, dtype=np.int64).reshape(n_bonds, 2)
    edge_index = np.empty((2, 2 * n_bonds), dtype=np.int64)
    edge_index[0, 0::2], edge_index[1, 0::2] = ends_arr[:, 0], ends_arr[:, 1]
    edge_index[0, 1::2], edge_index[1, 1::2] = ends_arr[:, 1], ends_arr[:, 0]
    blocks = []
    for name in bond_feats:
        if name == "bond-type-onehot":
            blocks.append(onehot_block(BOND_TYPE_TABLE, np.asarray(btype, dtype=np.int64)))
        elif name == "stereo":
            blocks.append(onehot_block(STEREO_TABLE, np.asarray(stereo, dtype=np.int64)))
        else:
            blocks.append(np.asarray(ring if name == "in-ring" else conj, dtype=np.float32).reshape(-1, 1))
    per_bond = np.concatenate(blocks, axis=1) if blocks else np.zeros((n_bonds, 0), np.float32)
    return edge_index, np.repeat(per_bond, 2, axis=0)


def mol_to_graph(mol: Chem.Mol, onehot: list[str], floats: list[str], bond_feats: list[str]) -> MolGraph:
    x = atom_features(mol, onehot, floats)
    edge_index, edge_attr = bond_arrays(mol, bond_feats)
    return MolGraph(x=x, edge_index=edge_index, edge_attr=edge_attr)
