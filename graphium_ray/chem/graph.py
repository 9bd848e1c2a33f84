"""SMILES → molecular graph arrays. Pure RDKit + NumPy; no torch, no Ray.

The atom order of the graph is the atom order of the SMILES as RDKit parses it, or, for
atom-mapped SMILES (Graphium's ``ordered_smiles``), the order of the atom-map numbers 1..N.
Node and edge labels are given in that order.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from rdkit import Chem, RDLogger

from graphium_ray.chem.atom_contributions import PER_MOLECULE_ATOM_VALUES, atom_values
from graphium_ray.chem.features import (
    ATOM_FLOAT_SOURCE,
    ATOM_ONEHOT_SOURCE,
    ATOM_ONEHOT_TABLES,
    ATOM_RAW_GETTERS,
    BOND_TYPE_TABLE,
    STEREO_TABLE,
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


def may_hold_dative_bonds(smiles: str) -> bool:
    """A SMILES with ``->`` / ``<-``: its bond types cannot be read from bond orders (a dative bond's
    order is 1, like a single bond's)."""
    return ">" in smiles or "<" in smiles


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


class GraphArrays(NamedTuple):
    """Several molecules' graphs as flat arrays (no per-molecule objects).

    x: (ΣN, F_atom) float32; edge_index: (2, ΣE) int64 with *per-molecule* atom indices (bond b of a
    molecule is its edges 2b and 2b+1); edge_attr: (ΣE, F_bond) float32; num_nodes, num_edges: (M,).
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    num_nodes: np.ndarray
    num_edges: np.ndarray


_A, _B = Chem.Atom, Chem.Bond
# Raw per-atom values are read with one C-level ``map`` per property over all atoms of the batch
# (RDKit's Python-level GetAtoms() iterator and a Python loop per atom cost more than the RDKit
# calls themselves). Degree and ring membership come from the bonds (no per-atom call). Which raw
# value each feature reads is defined with the feature, in chem/features.py.
# bond order as a double → BondType value, for bonds read without the (slow) enum getter
BOND_ORDER_TO_TYPE = {1.0: int(Chem.BondType.SINGLE), 1.5: int(Chem.BondType.AROMATIC),
                   2.0: int(Chem.BondType.DOUBLE), 3.0: int(Chem.BondType.TRIPLE),
                   4.0: int(Chem.BondType.QUADRUPLE)}  # fmt: skip
_DOUBLE = int(Chem.BondType.DOUBLE)


def _ints(getter, objects: list) -> np.ndarray:
    return np.fromiter(map(getter, objects), dtype=np.int64, count=len(objects))


def feature_matrix(blocks: list[tuple[np.ndarray | None, np.ndarray]], rows: int) -> np.ndarray:
    """(rows, F) float32 from blocks in order: ``(table, raw ints)`` is a one-hot block through the
    lookup table (out-of-range values → the "other" column), ``(None, values)`` one value column.
    One allocation and one scatter per block for the whole batch."""
    widths = [1 if table is None else int(table.max()) + 1 for table, _ in blocks]
    out = np.zeros((rows, sum(widths)), dtype=np.float32)
    offset, row_index = 0, np.arange(rows)
    for (table, values), width in zip(blocks, widths, strict=True):
        if table is None:
            out[:, offset] = values
        else:
            out[row_index, offset + table[np.clip(values, 0, table.shape[0] - 1)]] = 1.0
        offset += width
    return out


@contextmanager
def no_cyclic_gc():
    """Pause Python's cyclic garbage collector. Featurizing creates ~50 short-lived RDKit wrapper
    objects per molecule (none in reference cycles; reference counting frees them), and each
    allocation burst otherwise triggers collections that scan every live object of the process:
    measured 3× slower ``mols_to_graphs`` (platform/bench/featurize_profile.py)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def mols_to_graphs(mols: list[Chem.Mol], onehot: list[str], floats: list[str], bond_feats: list[str],
                   plain_bond_orders: list[bool] | None = None) -> GraphArrays:  # fmt: skip
    with no_cyclic_gc():
        return _mols_to_graphs(mols, onehot, floats, bond_feats, plain_bond_orders)


def _mols_to_graphs(mols: list[Chem.Mol], onehot: list[str], floats: list[str], bond_feats: list[str],
                    plain_bond_orders: list[bool] | None) -> GraphArrays:  # fmt: skip
    """Featurize many molecules at once: RDKit values are gathered per property over all atoms and
    bonds of all molecules, then every feature block is built with one NumPy scatter for the batch.

    ``plain_bond_orders[i]`` may be True when molecule i can only hold single, aromatic, double,
    triple or quadruple bonds (a SMILES without dative ``->`` / ``<-``): its bond types are then read
    as bond orders (4× cheaper than the enum getter); otherwise, and by default, as BondType.
    """
    atoms: list[Chem.Atom] = []
    bonds: list[Chem.Bond] = []
    num_nodes = np.zeros(len(mols), np.int64)
    num_bonds = np.zeros(len(mols), np.int64)
    for i, mol in enumerate(mols):
        atoms.extend(map(mol.GetAtomWithIdx, range(mol.GetNumAtoms())))
        bonds.extend(map(mol.GetBondWithIdx, range(mol.GetNumBonds())))
        num_nodes[i], num_bonds[i] = mol.GetNumAtoms(), mol.GetNumBonds()
    n_atoms = int(num_nodes.sum())
    node_offset = np.repeat(np.cumsum(num_nodes) - num_nodes, num_bonds)
    begin, end = _ints(_B.GetBeginAtomIdx, bonds), _ints(_B.GetEndAtomIdx, bonds)
    bond_ring = np.fromiter(map(_B.IsInRing, bonds), dtype=bool, count=len(bonds))
    bond_ends = np.concatenate([begin, end]) + np.tile(node_offset, 2)  # batch-wide atom index of both ends
    needed = {ATOM_ONEHOT_SOURCE[n] for n in onehot} | {ATOM_FLOAT_SOURCE[f] for f in floats}
    raw: dict[str, np.ndarray] = atom_values(sorted(needed & PER_MOLECULE_ATOM_VALUES.keys()), mols)
    for key in needed - raw.keys():
        if key == "deg":  # explicit neighbours = incident bonds
            raw[key] = np.bincount(bond_ends, minlength=n_atoms)
        elif key == "ring":  # an atom is in a ring iff one of its bonds is
            raw[key] = np.bincount(bond_ends[np.tile(bond_ring, 2)], minlength=n_atoms) > 0
        elif key == "mass":
            raw[key] = np.fromiter(map(_A.GetMass, atoms), dtype=np.float32, count=n_atoms) / 100.0
        else:
            raw[key] = _ints(ATOM_RAW_GETTERS[key], atoms)
    blocks = [(ATOM_ONEHOT_TABLES[n], raw[ATOM_ONEHOT_SOURCE[n]]) for n in onehot]
    blocks += [(None, raw[ATOM_FLOAT_SOURCE[f]]) for f in floats]
    x = feature_matrix(blocks, n_atoms)
    needs_type = bool({"bond-type-onehot", "stereo"} & set(bond_feats))
    btype = _bond_types(bonds, num_bonds, plain_bond_orders) if needs_type else None
    bond_blocks = {
        "bond-type-onehot": lambda: (BOND_TYPE_TABLE, btype),
        "stereo": lambda: (STEREO_TABLE, _stereo(bonds, btype)),
        "in-ring": lambda: (None, bond_ring),
        "conjugated": lambda: (None, np.fromiter(map(_B.GetIsConjugated, bonds), dtype=bool, count=len(bonds))),
    }
    per_bond = feature_matrix([bond_blocks[n]() for n in bond_feats], len(bonds))
    edge_index = np.empty((2, 2 * len(bonds)), dtype=np.int64)
    edge_index[0, 0::2] = edge_index[1, 1::2] = begin
    edge_index[1, 0::2] = edge_index[0, 1::2] = end
    return GraphArrays(x, edge_index, np.repeat(per_bond, 2, axis=0), num_nodes, 2 * num_bonds)


def _bond_types(bonds: list[Chem.Bond], num_bonds: np.ndarray, plain: list[bool] | None) -> np.ndarray:
    """BondType values of all bonds; bond orders (doubles) stand in for molecules marked plain."""
    if plain is None or not any(plain):
        return _ints(_B.GetBondType, bonds)
    orders = np.fromiter(map(_B.GetBondTypeAsDouble, bonds), dtype=np.float64, count=len(bonds))
    types = np.full(len(bonds), -1, dtype=np.int64)
    for order, value in BOND_ORDER_TO_TYPE.items():
        types[orders == order] = value
    exact = ~np.repeat(np.asarray(plain, dtype=bool), num_bonds) | (types < 0)
    for i in np.flatnonzero(exact):
        types[i] = int(bonds[i].GetBondType())
    return types


def _stereo(bonds: list[Chem.Bond], btype: np.ndarray) -> np.ndarray:
    """BondStereo values; RDKit sets stereo only on double bonds, so only those are asked."""
    stereo = np.full(len(bonds), int(Chem.BondStereo.STEREONONE), dtype=np.int64)
    double = np.flatnonzero(btype == _DOUBLE)
    stereo[double] = [int(bonds[i].GetStereo()) for i in double]
    return stereo


def mol_to_graph(mol: Chem.Mol, onehot: list[str], floats: list[str], bond_feats: list[str]) -> MolGraph:
    g = mols_to_graphs([mol], onehot, floats, bond_feats)
    return MolGraph(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr)
