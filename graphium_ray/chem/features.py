"""Atom and bond feature tables (Graphium's ToyMix feature names).

Each one-hot feature is a lookup table ``table[raw_value] -> column`` with a final "other"
column, so a whole molecule is featurized with one NumPy fancy-index per feature instead of
Python work per atom. Widths:

========================  ======  =================================================
feature                   width   raw value
========================  ======  =================================================
atomic-number (one-hot)   44      Graphium's 43-element list + other
group (one-hot)           19      periodic group 1..18 + other (f-block, dummy)
period (one-hot)          8       period 1..7 + other
total-valence (one-hot)   8       0..6 + other
hybridization (one-hot)   7       S, SP, SP2, SP3, SP3D, SP3D2 + other
total-hs (one-hot)        6       hydrogens on the atom 0..4 + other
chirality (one-hot)       3       CW, CCW, other
degree, formal-charge,    1 each  raw integer / bool (mass is divided by 100)
radical-electron,
aromatic, in-ring, mass
crippen-logp, crippen-mr,  1 each  RDKit's per-atom contributions (chem/atom_contributions.py;
tpsa-contribution,                 off by default)
asa-contribution,
gasteiger-charge
bond-type-onehot          5       SINGLE, DOUBLE, TRIPLE, AROMATIC + other
stereo                    7       NONE, ANY, Z, E, CIS, TRANS + other
in-ring, conjugated       1 each  bool
========================  ======  =================================================
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem

ATOM_LIST = [
    "C", "N", "O", "S", "F", "Si", "P", "Cl", "Br", "Mg", "Na", "Ca", "Fe", "As", "Al", "I", "B",
    "V", "K", "Tl", "Yb", "Sb", "Sn", "Ag", "Pd", "Co", "Se", "Ti", "Zn", "H", "Li", "Ge", "Cu",
    "Au", "Ni", "Cd", "In", "Mn", "Zr", "Cr", "Pt", "Hg", "Pb",
]  # fmt: skip
_PT = Chem.GetPeriodicTable()
_MAX_Z = 119
_PERIOD_STARTS = [1, 3, 11, 19, 37, 55, 87]  # first atomic number of each period


def _period(z: int) -> int:
    return 0 if z <= 0 else sum(z >= s for s in _PERIOD_STARTS)


def _group(z: int) -> int | None:
    """Periodic-table group 1..18, or None for the f-block and dummy atoms."""
    if z <= 0:
        return None
    if z == 1:
        return 1
    if z == 2:
        return 18
    period = _period(z)
    pos = z - _PERIOD_STARTS[period - 1] + 1
    if period in (2, 3):
        return pos if pos <= 2 else pos + 10
    if period in (4, 5):
        return pos
    if pos <= 2:
        return pos
    if pos <= 17:
        return 3 if pos == 3 else None  # La / Ac in group 3, other f-block elements: other
    return pos - 14


def _onehot_table(values_to_column: dict[int, int], size: int, width: int) -> np.ndarray:
    """``table[v]`` is the column of raw value ``v``; unknown values map to the last column."""
    table = np.full(size, width - 1, dtype=np.int64)
    for v, col in values_to_column.items():
        table[v] = col
    return table


ATOM_ONEHOT_TABLES: dict[str, np.ndarray] = {
    "atomic-number": _onehot_table(
        {_PT.GetAtomicNumber(s): i for i, s in enumerate(ATOM_LIST)}, _MAX_Z, len(ATOM_LIST) + 1
    ),
    "group": _onehot_table({z: g - 1 for z in range(_MAX_Z) if (g := _group(z)) is not None}, _MAX_Z, 19),
    "period": _onehot_table({z: _period(z) - 1 for z in range(1, _MAX_Z)}, _MAX_Z, 8),
    "total-valence": _onehot_table({v: v for v in range(7)}, 64, 8),
    "hybridization": _onehot_table(
        {
            int(h): i
            for i, h in enumerate(
                [
                    Chem.HybridizationType.S,
                    Chem.HybridizationType.SP,
                    Chem.HybridizationType.SP2,
                    Chem.HybridizationType.SP3,
                    Chem.HybridizationType.SP3D,
                    Chem.HybridizationType.SP3D2,
                ]
            )
        },
        64,
        7,
    ),
    "total-hs": _onehot_table({h: h for h in range(5)}, 64, 6),  # hydrogens on the atom, 0-4, other
    "chirality": _onehot_table(
        {int(Chem.ChiralType.CHI_TETRAHEDRAL_CW): 0, int(Chem.ChiralType.CHI_TETRAHEDRAL_CCW): 1},
        64,
        3,
    ),
}
ATOM_ONEHOT_WIDTH = {name: int(t.max()) + 1 for name, t in ATOM_ONEHOT_TABLES.items()}

# Every atom feature is one entry: its config name -> the raw per-atom value it reads. A raw value
# is an RDKit getter (ATOM_RAW_GETTERS) or one of "deg" (explicit neighbours), "ring" (in a ring)
# and "mass" (/100), which chem/graph.py derives from the bonds / masses of a whole batch at once, or
# a per-molecule RDKit computation (chem/atom_contributions.py PER_MOLECULE_ATOM_VALUES).
# A one-hot feature also needs its table in ATOM_ONEHOT_TABLES; config validation reads these keys.
_A = Chem.Atom
ATOM_RAW_GETTERS = {
    "z": _A.GetAtomicNum, "val": _A.GetTotalValence, "chg": _A.GetFormalCharge,
    "rad": _A.GetNumRadicalElectrons, "aro": _A.GetIsAromatic, "hyb": _A.GetHybridization,
    "chi": _A.GetChiralTag, "hs": _A.GetTotalNumHs,
}  # fmt: skip
ATOM_ONEHOT_SOURCE = {"atomic-number": "z", "group": "z", "period": "z", "total-valence": "val",
                      "hybridization": "hyb", "total-hs": "hs", "chirality": "chi"}  # fmt: skip
ATOM_FLOAT_SOURCE = {"degree": "deg", "formal-charge": "chg", "radical-electron": "rad",
                     "aromatic": "aro", "in-ring": "ring", "mass": "mass",
                     "crippen-logp": "logp", "crippen-mr": "mr", "tpsa-contribution": "tpsa",
                     "asa-contribution": "asa", "gasteiger-charge": "gasteiger"}  # fmt: skip

BOND_TYPE_TABLE = _onehot_table(
    {
        int(Chem.BondType.SINGLE): 0,
        int(Chem.BondType.DOUBLE): 1,
        int(Chem.BondType.TRIPLE): 2,
        int(Chem.BondType.AROMATIC): 3,
    },
    64,
    5,
)
STEREO_TABLE = _onehot_table(
    {
        int(Chem.BondStereo.STEREONONE): 0,
        int(Chem.BondStereo.STEREOANY): 1,
        int(Chem.BondStereo.STEREOZ): 2,
        int(Chem.BondStereo.STEREOE): 3,
        int(Chem.BondStereo.STEREOCIS): 4,
        int(Chem.BondStereo.STEREOTRANS): 5,
    },
    64,
    7,
)
BOND_WIDTH = {"bond-type-onehot": 5, "stereo": 7, "in-ring": 1, "conjugated": 1}


# Atom features whose raw values are small integers (counts, charges, booleans). When every atom
# feature is a one-hot or one of these (the default), the cache stores the atom block as int8:
# exact, and 4x smaller in memory than float32 (bond features are all one-hots / booleans: always
# int8). The collate casts both to float32, so a model sees the same numbers either way.
INTEGER_ATOM_FLOATS = frozenset({"degree", "formal-charge", "radical-electron", "aromatic", "in-ring"})


def atom_storage_is_int8(floats: list[str]) -> bool:
    """Whether the atom features ``floats`` (with any one-hots) are stored as int8 in the cache."""
    return set(floats) <= INTEGER_ATOM_FLOATS


def atom_feature_dim(onehot: list[str], floats: list[str]) -> int:
    return sum(ATOM_ONEHOT_WIDTH[n] for n in onehot) + len(floats)


def bond_feature_dim(bond: list[str]) -> int:
    return sum(BOND_WIDTH[n] for n in bond)
