"""SMILES → graph arrays through NVIDIA's cuik-molmaker: the compiled path (``featurizer.backend: cuik``).

cuik-molmaker (Apache-2.0) parses SMILES and reads atom and bond properties in C++ over RDKit's C++
API, a whole batch per call, with no Python object per atom. It is an optional extra
(``pip install 'graphium-ray[cuik]'``): its wheel pins ``rdkit==2026.3.6``, so it is imported only
here, lazily, with a clear message when absent.

cuik-molmaker returns Graphium-style *raw* values (atomic number / 5, charge, hybridization code,
bond order, a stereo one-hot, ...); this module decodes them into the raw
values of :mod:`graphium_ray.chem.graph` and builds the feature blocks with the *same* lookup tables,
so the two paths give identical arrays (``tests/test_cuik_backend.py`` checks every feature, bit for
bit, in an environment that has cuik-molmaker). Molecules it cannot take are featurized by the
reference path instead: atom-mapped rows, SMILES with isotope labels (masses) or dative bonds (bond
orders), empty entries, and the rows around a SMILES that cuik-molmaker rejects (an unparsable
SMILES fails the whole call: ``Featurizer`` halves the batch until the rejected part is ≤ 16 rows;
the reference path then reports each row's reason).
"""

from __future__ import annotations

import re

import numpy as np
from rdkit import Chem

from graphium_ray.chem.features import ATOM_FLOAT_SOURCE, ATOM_ONEHOT_SOURCE, ATOM_ONEHOT_TABLES, BOND_TYPE_TABLE
from graphium_ray.chem.graph import BOND_ORDER_TO_TYPE, GraphArrays, feature_matrix, may_hold_dative_bonds

# our raw value -> cuik-molmaker's float atom feature holding it. "deg" (explicit neighbours) is
# counted from the edges instead: cuik-molmaker's "degree" includes implicit hydrogens. Not provided:
# "chi" (cuik-molmaker's chirality code is not RDKit's chiral tag: the same tag comes out as 0 in one
# molecule and 1 in another) and "hs".
CUIK_ATOM_FEATURE = {"z": "atomic-number", "chg": "formal-charge", "rad": "radical-electron", "aro": "aromatic",
                     "ring": "in-ring", "mass": "mass", "val": "total-valence", "hyb": "hybridization"}  # fmt: skip
FROM_EDGES = {"deg"}
CUIK_BOND_FEATURE = {"bond-type-onehot": "bond-type-float", "stereo": "stereo", "in-ring": "in-ring",
                     "conjugated": "conjugated"}  # fmt: skip
STEREO_WIDTH = 7  # cuik-molmaker's stereo one-hot: NONE, ANY, Z, E, CIS, TRANS, other (our STEREO_TABLE order)
_ISOTOPE = re.compile(r"\[\d")
_SYNTAX_ONLY = Chem.SmilesParserParams()
_SYNTAX_ONLY.sanitize = False
_SYNTAX_ONLY.removeHs = False
INSTALL_HINT = "pip install 'graphium-ray[cuik]' (cuik-molmaker-pin; it pins rdkit==2026.3.6)"


def installed() -> bool:
    """Whether cuik-molmaker can be imported here (found without importing it)."""
    import importlib.util

    return importlib.util.find_spec("cuik_molmaker") is not None


def unsupported_features(onehot: list[str], floats: list[str], bond: list[str]) -> list[str]:
    """Configured features cuik-molmaker does not provide (those need the reference backend)."""
    provided = CUIK_ATOM_FEATURE.keys() | FROM_EDGES
    atom = [n for n in onehot if ATOM_ONEHOT_SOURCE[n] not in provided]
    atom += [n for n in floats if ATOM_FLOAT_SOURCE[n] not in provided]
    return atom + [n for n in bond if n not in CUIK_BOND_FEATURE]


def takes(smiles: object, atom_mapped: bool) -> bool:
    """Whether this row may go to cuik-molmaker (see the module docstring for the others). The SMILES
    must get through RDKit's parser without sanitization (a fraction of a full parse): cuik-molmaker
    2026.3.6 crashes the process (segmentation fault) on a SMILES syntax error, where a chemistry
    error (valence, kekulization) raises."""
    return (isinstance(smiles, str) and bool(smiles.strip()) and not atom_mapped
            and not may_hold_dative_bonds(smiles) and not _ISOTOPE.search(smiles)
            and Chem.MolFromSmiles(smiles, _SYNTAX_ONLY) is not None)  # fmt: skip


class CuikGraphs:
    """``__call__(smiles) -> GraphArrays`` (or None when cuik-molmaker rejects the batch) for the
    configured features, in the layout of :func:`graphium_ray.chem.graph.mols_to_graphs`."""

    def __init__(self, onehot: list[str], floats: list[str], bond: list[str]):
        try:
            import cuik_molmaker
        except ImportError as err:
            raise ImportError(f"featurizer.backend: cuik needs cuik-molmaker: {INSTALL_HINT}") from err
        missing = unsupported_features(onehot, floats, bond)
        if missing:
            raise ValueError(f"featurizer.backend: cuik does not provide {missing}; use backend: rdkit")
        self._cuik = cuik_molmaker
        self.onehot, self.bond = onehot, bond
        raw = ["z"] + [ATOM_ONEHOT_SOURCE[n] for n in onehot] + [ATOM_FLOAT_SOURCE[n] for n in floats]
        # the raw values to ask for, each once, in this column order (always one: the atoms are counted)
        self.atom_raw = [key for key in dict.fromkeys(raw) if key not in FROM_EDGES]
        self.float_raw = [ATOM_FLOAT_SOURCE[n] for n in floats]
        self._no_onehots = cuik_molmaker.atom_onehot_feature_names_to_array([])
        self._atom = cuik_molmaker.atom_float_feature_names_to_array([CUIK_ATOM_FEATURE[k] for k in self.atom_raw])
        bond_names = list(dict.fromkeys(["bond-type-float", *(CUIK_BOND_FEATURE[n] for n in bond)]))
        self._bond = cuik_molmaker.bond_feature_names_to_array(bond_names)
        widths = [STEREO_WIDTH if name == "stereo" else 1 for name in bond_names]
        starts = np.cumsum([0, *widths[:-1]]).tolist()
        self._bond_column = {name: slice(a, a + w) for name, a, w in zip(bond_names, starts, widths, strict=True)}

    def __call__(self, smiles: list[str]) -> GraphArrays | None:
        try:
            atom, bond, edge_index, _, atom_mol = self._cuik.batch_mol_featurizer(
                smiles, self._no_onehots, self._atom, self._bond, False, False, True, False)  # fmt: skip
        except RuntimeError:  # one unparsable SMILES fails the whole call
            return None
        num_nodes = np.bincount(atom_mol, minlength=len(smiles)).astype(np.int64)
        if not num_nodes.all():  # a molecule without atoms: leave it to the reference path's checks
            return None
        raw = {key: self._decode_atom(key, atom[:, j]) for j, key in enumerate(self.atom_raw)}
        raw["deg"] = np.bincount(edge_index[0], minlength=atom.shape[0]).astype(np.int64)
        blocks = [(ATOM_ONEHOT_TABLES[n], raw[ATOM_ONEHOT_SOURCE[n]]) for n in self.onehot]
        blocks += [(None, raw[key]) for key in self.float_raw]
        x = feature_matrix(blocks, atom.shape[0])
        per_edge = self._bond_blocks(bond)
        node_start = np.cumsum(num_nodes) - num_nodes
        edge_mol = np.repeat(np.arange(len(smiles)), num_nodes)[edge_index[0]]
        num_edges = np.bincount(edge_mol, minlength=len(smiles)).astype(np.int64)
        local = (edge_index - node_start[edge_mol]).astype(np.int64)
        return GraphArrays(x, local, per_edge, num_nodes, num_edges)

    @staticmethod
    def _decode_atom(key: str, values: np.ndarray) -> np.ndarray:
        if key == "mass":
            return values.astype(np.float32)
        if key == "z":
            return np.rint(values * 5.0).astype(np.int64)  # Graphium's float atomic number is Z / 5
        if key in ("aro", "ring"):
            return values.astype(bool)
        return values.astype(np.int64)

    def _bond_blocks(self, bond: np.ndarray) -> np.ndarray:
        """(E, F_bond) in our column layout from cuik-molmaker's columns (``self._bond_column``)."""
        column = self._bond_column
        orders = bond[:, column["bond-type-float"]][:, 0]
        btype = np.full(len(bond), -1, dtype=np.int64)
        for order, value in BOND_ORDER_TO_TYPE.items():
            btype[orders == order] = value
        blocks = []
        for name in self.bond:
            if name == "bond-type-onehot":
                blocks.append((BOND_TYPE_TABLE, btype))
            elif name == "stereo":  # already our one-hot (same order); argmax keeps feature_matrix's layout
                blocks.append((np.arange(STEREO_WIDTH), np.argmax(bond[:, column["stereo"]], axis=1)))
            else:
                blocks.append((None, bond[:, column[CUIK_BOND_FEATURE[name]]][:, 0] != 0))
        return feature_matrix(blocks, len(bond))


def merge_in_row_order(parts: list[tuple[list[int], GraphArrays]]) -> tuple[list[int], GraphArrays]:
    """Graphs of several row subsets → one :class:`GraphArrays` in increasing row order."""
    parts = [(rows, g) for rows, g in parts if len(rows)]
    if len(parts) == 1:
        return parts[0]
    rows = np.concatenate([np.asarray(r, np.int64) for r, _ in parts])
    order = np.argsort(rows, kind="stable")
    num_nodes = np.concatenate([g.num_nodes for _, g in parts])
    num_edges = np.concatenate([g.num_edges for _, g in parts])
    nodes, edges = _segment_order(num_nodes, order), _segment_order(num_edges, order)
    merged = GraphArrays(np.concatenate([g.x for _, g in parts])[nodes],
                         np.concatenate([g.edge_index for _, g in parts], axis=1)[:, edges],
                         np.concatenate([g.edge_attr for _, g in parts])[edges],
                         num_nodes[order], num_edges[order])  # fmt: skip
    return rows[order].tolist(), merged


def _segment_order(lengths: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Item indices that lay out the segments (of ``lengths``) in ``order``."""
    starts = np.cumsum(lengths) - lengths
    new_lengths = lengths[order]
    new_starts = np.cumsum(new_lengths) - new_lengths
    return np.repeat(starts[order] - new_starts, new_lengths) + np.arange(int(new_lengths.sum()))
