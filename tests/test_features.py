"""Feature bits checked against RDKit's own accessors on known molecules."""

import numpy as np
import pytest
from rdkit import Chem

from graphium_ray.chem.features import ATOM_LIST, ATOM_ONEHOT_WIDTH, atom_feature_dim, bond_feature_dim
from graphium_ray.chem.graph import ParseError, mol_to_graph, molecule_key, parse_smiles
from graphium_ray.config import FeaturizerConfig

CFG = FeaturizerConfig()
ONEHOT, FLOATS, BONDS = list(CFG.atom_onehot), list(CFG.atom_float), list(CFG.bond)


def featurize(smiles):
    return mol_to_graph(parse_smiles(smiles), ONEHOT, FLOATS, BONDS)


def test_widths_match_config():
    g = featurize("CC(=O)O")
    assert g.x.shape == (4, atom_feature_dim(ONEHOT, FLOATS)) == (4, 44 + 19 + 8 + 8 + 5)
    assert g.edge_attr.shape == (6, bond_feature_dim(BONDS)) == (6, 13)
    assert (g.x[:, :44].sum(1) == 1).all()  # exactly one atomic-number bit per atom


@pytest.mark.parametrize(
    "smiles", ["CC(=O)Oc1ccccc1C(=O)O", "[NH4+]", "[O-][N+](=O)c1ccccc1", "C[Si](C)(C)C", "[He]", "F/C=C/F"]
)
def test_atom_bits_against_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles)
    g = featurize(smiles)
    w = ATOM_ONEHOT_WIDTH
    offset_group = w["atomic-number"]
    offset_period = offset_group + w["group"]
    offset_val = offset_period + w["period"]
    offset_float = offset_val + w["total-valence"]
    for atom, row in zip(mol.GetAtoms(), g.x, strict=True):
        sym = atom.GetSymbol()
        expected_z = ATOM_LIST.index(sym) if sym in ATOM_LIST else len(ATOM_LIST)
        assert row[expected_z] == 1
        period = (
            Chem.GetPeriodicTable().GetRow(atom.GetAtomicNum()) if hasattr(Chem.GetPeriodicTable(), "GetRow") else None
        )
        if period is not None:
            assert row[offset_period + period - 1] == 1
        assert row[offset_val + min(atom.GetTotalValence(), 7)] == 1
        floats = row[offset_float:]
        assert floats.tolist() == [
            atom.GetDegree(),
            atom.GetFormalCharge(),
            atom.GetNumRadicalElectrons(),
            float(atom.GetIsAromatic()),
            float(atom.IsInRing()),
        ]


def test_groups_of_known_elements():
    w = ATOM_ONEHOT_WIDTH["atomic-number"]
    group_of = {"C": 14, "N": 15, "O": 16, "Cl": 17, "Na": 1, "Fe": 8, "Br": 17}
    for sym, group in group_of.items():
        g = featurize(f"[{sym}]")
        assert g.x[0, w + group - 1] == 1, sym


def test_bonds_both_directions_with_rdkit_types():
    mol = Chem.MolFromSmiles("C=CC#N")
    g = featurize("C=CC#N")
    assert g.edge_index.tolist() == [[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]
    types = [b.GetBondType() for b in mol.GetBonds()]
    assert types == [Chem.BondType.DOUBLE, Chem.BondType.SINGLE, Chem.BondType.TRIPLE]
    assert (
        np.argmax(g.edge_attr[0, :5]) == 1 and np.argmax(g.edge_attr[2, :5]) == 0 and np.argmax(g.edge_attr[4, :5]) == 2
    )
    assert (g.edge_attr[0::2] == g.edge_attr[1::2]).all()


def test_aromatic_and_stereo_bits():
    g = featurize("F/C=C/F")
    stereo = g.edge_attr[:, 5:12]
    assert stereo[2].argmax() in (3, 5)  # E or TRANS on the double bond
    benz = featurize("c1ccccc1")
    assert (benz.edge_attr[:, 3] == 1).all() and (benz.edge_attr[:, 12] == 1).all()


def test_parse_errors_carry_rdkit_reason():
    with pytest.raises(ParseError, match="syntax"):
        parse_smiles("C1CC(")
    with pytest.raises(ParseError, match="valence"):
        parse_smiles("C(C)(C)(C)(C)C")
    with pytest.raises(ParseError, match="empty"):
        parse_smiles("")


def test_atom_mapped_smiles_ordered_by_map_number():
    mol = parse_smiles("[O:2]([H:3])[C:1]([H:4])([H:5])[H:6]", atom_mapped=True, hydrogens="explicit")
    assert [a.GetSymbol() for a in mol.GetAtoms()] == ["C", "O", "H", "H", "H", "H"]
    assert [a.GetAtomMapNum() for a in mol.GetAtoms()] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ParseError, match="permutation"):
        parse_smiles("[C:1][O:3]", atom_mapped=True)


def test_molecule_key_is_canonical_and_ignores_maps_and_hydrogens():
    assert molecule_key(parse_smiles("OCC")) == molecule_key(parse_smiles("CCO")) == "CCO"
    mapped = parse_smiles("[O:2]([H:3])[C:1]([H:4])([H:5])[H:6]", atom_mapped=True, hydrogens="explicit")
    assert molecule_key(mapped) == "CO"
