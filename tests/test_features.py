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


ALL_ATOM_ONEHOT = ["atomic-number", "group", "period", "total-valence", "hybridization", "total-hs", "chirality"]
ALL_ATOM_FLOAT = ["degree", "formal-charge", "radical-electron", "aromatic", "in-ring", "mass"]
ALL_BOND = ["in-ring", "bond-type-onehot", "conjugated", "stereo"]  # flags first: order is the config's


def _reference_features(mol):
    """Straightforward per-atom / per-bond reading with RDKit's enum getters (the independent check)."""
    from graphium_ray.chem.features import ATOM_ONEHOT_TABLES, BOND_TYPE_TABLE, STEREO_TABLE

    def onehot(table, value):
        row = np.zeros(int(table.max()) + 1, np.float32)
        row[table[min(max(value, 0), len(table) - 1)]] = 1
        return row

    source = {"atomic-number": "GetAtomicNum", "group": "GetAtomicNum", "period": "GetAtomicNum",
              "total-valence": "GetTotalValence", "hybridization": "GetHybridization", "chirality": "GetChiralTag",
              "total-hs": "GetTotalNumHs"}
    floats = {"degree": lambda a: a.GetDegree(), "formal-charge": lambda a: a.GetFormalCharge(),
              "radical-electron": lambda a: a.GetNumRadicalElectrons(), "aromatic": lambda a: a.GetIsAromatic(),
              "in-ring": lambda a: a.IsInRing(), "mass": lambda a: a.GetMass() / 100}  # fmt: skip
    x = [np.concatenate([onehot(ATOM_ONEHOT_TABLES[n], int(getattr(a, source[n])())) for n in ALL_ATOM_ONEHOT]
                        + [np.array([floats[f](a) for f in ALL_ATOM_FLOAT], np.float32)]) for a in mol.GetAtoms()]
    bond = {"in-ring": lambda b: [b.IsInRing()], "conjugated": lambda b: [b.GetIsConjugated()],
            "bond-type-onehot": lambda b: onehot(BOND_TYPE_TABLE, int(b.GetBondType())),
            "stereo": lambda b: onehot(STEREO_TABLE, int(b.GetStereo()))}  # fmt: skip
    e = [np.concatenate([np.asarray(bond[n](b), np.float32) for n in ALL_BOND]) for b in mol.GetBonds()]
    e = np.array(e, np.float32) if e else np.zeros((0, 1 + 5 + 1 + 7), np.float32)
    return np.array(x, np.float32), np.repeat(e, 2, axis=0)


def test_batched_featurizer_equals_per_atom_reference():
    """Every feature of the batch path (bond orders read as doubles, degree and ring membership
    from bonds, stereo asked of double bonds only) equals a per-atom reading with RDKit's getters."""
    from graphium_ray.chem.graph import mols_to_graphs
    from graphium_ray.data.builtin import REFERENCE_SMILES

    tricky = ["F/C=C/F", "C/C=C\\C", "[O-][N+](=O)c1ccccc1", "C[N+](C)(C)C.[Cl-]", "[CH2]C", "C[NH2]->[Fe]",
              "C1CC1C2CC2", "N#N", "O=C=O", "[2H]C", "C[C@H](N)O", "C=C1CC1", "c1ccc2ccccc2c1"]  # fmt: skip
    smiles = REFERENCE_SMILES + tricky
    mols = [parse_smiles(s) for s in smiles]
    plain = [">" not in s and "<" not in s for s in smiles]
    g = mols_to_graphs(mols, ALL_ATOM_ONEHOT, ALL_ATOM_FLOAT, ALL_BOND, plain_bond_orders=plain)
    x_ref, e_ref = zip(*[_reference_features(m) for m in mols], strict=True)
    np.testing.assert_allclose(g.x, np.concatenate(x_ref), rtol=1e-6)
    np.testing.assert_array_equal(g.edge_attr, np.concatenate(e_ref))
    assert Chem.MolFromSmiles("C[NH2]->[Fe]").GetBondWithIdx(1).GetBondType() == Chem.BondType.DATIVE


def test_every_feature_is_defined_once_and_checked_by_the_config():
    from graphium_ray.chem.features import ATOM_FLOAT_SOURCE, ATOM_ONEHOT_SOURCE, ATOM_RAW_GETTERS
    from graphium_ray.config import ConfigError, validate

    assert set(ATOM_ONEHOT_SOURCE) == set(ATOM_ONEHOT_WIDTH)  # a one-hot feature has its table
    from graphium_ray.chem.atom_contributions import PER_MOLECULE_ATOM_VALUES

    derived = {"deg", "ring", "mass"}  # computed from a batch's bonds / masses in chem/graph.py
    derived |= set(PER_MOLECULE_ATOM_VALUES)  # computed per molecule by RDKit (chem/atom_contributions.py)
    assert {*ATOM_ONEHOT_SOURCE.values(), *ATOM_FLOAT_SOURCE.values()} - derived <= set(ATOM_RAW_GETTERS)
    base = {"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["y"]}]}]}
    ok = validate({"data": {**base, "featurizer": {"atom_onehot": list(ATOM_ONEHOT_SOURCE)}}}, "cfg")
    assert ok.data.featurizer.atom_onehot == list(ATOM_ONEHOT_SOURCE)
    with pytest.raises(ConfigError, match=r"data.featurizer.atom_float: .*unknown feature\(s\) \['charge'\]"):
        validate({"data": {**base, "featurizer": {"atom_float": ["degree", "charge"]}}}, "cfg")


CONTRIBUTIONS = ["crippen-logp", "crippen-mr", "tpsa-contribution", "asa-contribution", "gasteiger-charge"]


def test_atom_contributions_sum_to_rdkit_molecule_descriptors():
    """Each per-atom contribution feature, summed over a molecule's atoms in a batch, equals RDKit's
    molecule-level descriptor computed independently (Crippen logP / MR with the hydrogens, TPSA,
    Labute ASA less the implicit hydrogens' share, and the net charge for Gasteiger charges)."""
    from rdkit.Chem import Crippen, rdMolDescriptors

    from graphium_ray.chem.graph import mols_to_graphs
    from graphium_ray.data.builtin import REFERENCE_SMILES

    smiles = REFERENCE_SMILES + ["C[N+](C)(C)C.[Cl-]", "[Na+].[O-]C(=O)C", "[2H]C", "OC(=O)C[C@H](N)C(=O)O"]
    mols = [parse_smiles(s) for s in smiles]
    g = mols_to_graphs(mols, [], CONTRIBUTIONS, [])
    assert g.x.shape == (int(g.num_nodes.sum()), 5) and np.isfinite(g.x).all()
    sums = np.add.reduceat(g.x.astype(np.float64), np.cumsum(g.num_nodes) - g.num_nodes, axis=0)
    asa = [rdMolDescriptors.CalcLabuteASA(m) - rdMolDescriptors._CalcLabuteASAContribs(m)[1] for m in mols]
    expected = np.array([[Crippen.MolLogP(m), Crippen.MolMR(m) / 10, rdMolDescriptors.CalcTPSA(m) / 10, a / 10,
                          Chem.GetFormalCharge(m)] for m, a in zip(mols, asa, strict=True)])  # fmt: skip
    np.testing.assert_allclose(sums, expected, atol=2e-4 * max(1, max(g.num_nodes)))
    assert np.abs(sums[:, 0]).max() > 1 and np.abs(g.x[:, 4]).max() > 0.1  # not all zeros


def test_gasteiger_charge_per_atom_and_unparametrized_atoms():
    """Acetic acid's values are RDKit's Gasteiger charges read directly (implicit H's charge added to
    its atom); a molecule with an element without Gasteiger parameters (RDKit: NaN on every atom)
    gets 0, not NaN."""
    from rdkit.Chem import rdPartialCharges

    from graphium_ray.chem.graph import mols_to_graphs

    mol = Chem.MolFromSmiles("CC(=O)O")
    rdPartialCharges.ComputeGasteigerCharges(mol)
    direct = [a.GetDoubleProp("_GasteigerCharge") + a.GetDoubleProp("_GasteigerHCharge") for a in mol.GetAtoms()]
    g = mols_to_graphs([parse_smiles("CC(=O)O"), parse_smiles("[Sc]C")], [], ["gasteiger-charge"], [])
    np.testing.assert_allclose(g.x[:4, 0], direct, rtol=1e-5)
    assert g.x[2, 0] < -0.2 and g.x[1, 0] > 0.2  # carbonyl O negative, carbonyl C positive
    assert np.isfinite(g.x).all() and (g.x[4:, 0] == 0).all()


def test_atom_contributions_refused_by_the_compiled_backend():
    from graphium_ray.config import ConfigError, validate

    base = {"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["y"]}]}]}
    with pytest.raises(ConfigError, match="cuik does not support.*crippen-logp"):
        validate({"data": {**base, "featurizer": {"backend": "cuik", "atom_float": ["degree", "crippen-logp"]}}}, "cfg")
