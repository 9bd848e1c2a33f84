"""Molecule-level input features (``featurizer.molecule: [rdkit2d]``): values against RDKit's own
``CalcMolDescriptors``, train-split statistics against NumPy, the model's standardization, and a
refusal when the model's features are not the ones this RDKit computes."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Descriptors

from graphium_ray.chem.descriptors import check_molecule_features, molecule_feature_names, molecule_features
from graphium_ray.chem.features import bond_feature_dim
from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import REFERENCE_SMILES
from graphium_ray.data.collate import collate_arrays
from graphium_ray.data.featurize import Featurizer
from graphium_ray.data.stats import molecule_feature_stats, partial_stats, reduce_stats
from graphium_ray.nn.encoders import MoleculeFeatures

WIDTHS = {"graph": 1, "node": 0, "edge": 0}
D = len(Descriptors._descList)  # 217 in RDKit 2026.09


def _rows(smiles: list[str], splits: list[str]) -> pa.Table:
    n = len(smiles)
    return pa.table({"mol_key": [f"k{i}" for i in range(n)], "split": splits, "sources": ["t"] * n,
                     "y_graph": [[float(i)] for i in range(n)], "smiles": smiles,
                     "atom_mapped": [False] * n})  # fmt: skip


def test_rdkit2d_is_asinh_of_rdkit_calc_mol_descriptors():
    mols = [Chem.MolFromSmiles(s) for s in REFERENCE_SMILES]
    ours = molecule_features(mols, ["rdkit2d"])
    names = molecule_feature_names(["rdkit2d"])
    assert ours.shape == (len(mols), len(Descriptors._descList)) == (len(mols), len(names))
    for mol, row in zip(mols, ours, strict=True):
        reference = Descriptors.CalcMolDescriptors(mol)  # RDKit's own loop over the same list
        expected = np.arcsinh(np.array([reference[n.split(":", 1)[1]] for n in names], dtype=np.float64))
        expected[~np.isfinite(expected)] = np.nan
        np.testing.assert_allclose(row, expected.astype(np.float32), rtol=1e-5, equal_nan=True)
    logp = names.index("rdkit2d:MolLogP")
    assert ours[REFERENCE_SMILES.index("CCO"), logp] == pytest.approx(np.arcsinh(-0.0014), abs=1e-3)


def test_featurizer_writes_one_feature_row_per_molecule_and_none_for_skipped():
    smiles = ["CCO", "not a smiles", "c1ccccc1O", "CC(=O)N"]
    table = Featurizer(FeaturizerConfig(molecule=["rdkit2d"]), 0, 0)(_rows(smiles, ["train"] * 4))
    lengths = [len(v) for v in table.column("mol_feat").to_pylist()]
    assert lengths == [D, 0, D, D] and table.column("skip_reason").to_pylist()[1] is not None
    ok = table.filter(table["skip_reason"].is_null())
    batch = collate_arrays(ok, WIDTHS, bond_dim=bond_feature_dim(FeaturizerConfig().bond))
    assert batch.mol_feat.shape == (3, D)
    expected = molecule_features([Chem.MolFromSmiles(s) for s in ("CCO", "c1ccccc1O", "CC(=O)N")], ["rdkit2d"])
    np.testing.assert_array_equal(batch.mol_feat.numpy(), expected)
    without = Featurizer(FeaturizerConfig(), 0, 0)(_rows(smiles, ["train"] * 4))
    assert "mol_feat" not in without.column_names


def test_train_split_statistics_match_numpy_and_ignore_undefined_values():
    smiles = REFERENCE_SMILES[:24]
    splits = ["train", "val", "train", "test"] * 6
    table = Featurizer(FeaturizerConfig(molecule=["rdkit2d"]), 0, 0)(_rows(smiles, splits))
    feats = np.array(table.column("mol_feat").to_pylist(), dtype=np.float64)
    feats[0, 5] = np.nan  # an undefined descriptor on a train molecule
    table = table.set_column(table.schema.get_field_index("mol_feat"), "mol_feat",
                             pa.array(feats.astype(np.float32).tolist(), pa.list_(pa.float32())))  # fmt: skip
    stats_fn = functools.partial(partial_stats, widths=WIDTHS, mol_feat_dim=D)
    partials = [stats_fn(table.slice(0, 10)).to_pylist()[0], stats_fn(table.slice(10)).to_pylist()[0]]
    stats = reduce_stats(partials, WIDTHS, D)["mol_feat"]
    train = feats.astype(np.float32).astype(np.float64)[np.array(splits) == "train"]
    np.testing.assert_allclose(stats["mean"], np.nanmean(train, axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats["std"], np.nanstd(train, axis=0), rtol=1e-4, atol=1e-6)
    assert stats["count"][5] == len(train) - 1 and stats["count"][6] == len(train)
    model_stats = molecule_feature_stats(molecule_feature_names(["rdkit2d"]), stats)
    constant = np.flatnonzero(np.nanstd(train, axis=0) < 1e-8)
    assert len(constant) and all(model_stats["std"][i] == 1.0 for i in constant)  # e.g. counts of absent groups


def test_statistics_do_not_depend_on_the_order_partials_arrive_in():
    """Ray's tasks return partials in any order; float sums depend on order, the manifest must not."""
    smiles = REFERENCE_SMILES[:30]
    table = Featurizer(FeaturizerConfig(molecule=["rdkit2d"]), 0, 0)(_rows(smiles, ["train"] * len(smiles)))
    stats_fn = functools.partial(partial_stats, widths=WIDTHS, mol_feat_dim=D)
    partials = [stats_fn(table.slice(i, 3)).to_pylist()[0] for i in range(0, len(smiles), 3)]
    first = reduce_stats(partials, WIDTHS, D)
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(len(partials))
        assert reduce_stats([partials[i] for i in order], WIDTHS, D) == first  # to the last bit


def test_model_standardizes_reads_undefined_as_the_mean_and_clamps():
    mean, std = [1.0, -2.0, 0.0], [2.0, 0.5, 1.0]
    encode = MoleculeFeatures(mean, std, clamp=6.0)
    feat = torch.tensor([[3.0, -2.0, float("nan")], [1.0, 10.0, -100.0]])
    expected = np.clip((feat.numpy() - np.array(mean)) / np.array(std), -6, 6)
    expected[np.isnan(expected)] = 0.0
    np.testing.assert_allclose(encode(feat).numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="molecule features"):
        encode(None)
    assert not list(encode.parameters()) and set(encode.state_dict()) == {"mean", "std"}


def test_a_model_trained_with_other_descriptors_is_refused():
    names = molecule_feature_names(["rdkit2d"])
    check_molecule_features(names)
    check_molecule_features([])
    with pytest.raises(ValueError, match=f"trained with {D + 1} molecule features"):
        check_molecule_features([*names, "rdkit2d:FutureDescriptor"])
    with pytest.raises(ValueError, match="does not know"):
        check_molecule_features(["mordred:ABC"])


def test_train_and_predict_with_molecule_features_through_ray(ray_cluster, tmp_path):
    """The real path: prepare (Ray Data) writes the train-split statistics, Ray Train fits a model
    that reads the features, and ``predict`` computes them again for new molecules."""
    import pyarrow.parquet as pq
    import yaml

    from graphium_ray.checkpoints import load_checkpoint
    from graphium_ray.cli import main
    from graphium_ray.data.builtin import reference_table
    from graphium_ray.data.cache import PreparedData
    from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch

    pq.write_table(reference_table(), tmp_path / "ref.parquet")
    cfg = {"name": "molfeat",
           "data": {"cache_dir": str(tmp_path / "cache"), "num_shards": 1, "featurizer": {"molecule": ["rdkit2d"]},
                    "split": {"fractions": [0.6, 0.2, 0.2]},
                    "datasets": [{"name": "ref", "path": str(tmp_path / "ref.parquet"),
                                  "tasks": [{"columns": ["logp"]}]}]},
           "model": {"layer": "gin", "hidden_dim": 16, "num_layers": 2, "head_hidden_dim": 16},
           "train": {"epochs": 2, "batch_size": 8, "num_workers": 1}}  # fmt: skip
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "cfg.yaml"), "--output", str(tmp_path / "run")]) == 0

    cache = PreparedData.load(next((tmp_path / "cache").glob("*/manifest.json")).parent)  # (beside each entry: its .lock)
    table = pq.read_table(cache.featurized_dir)
    train = np.array(table.filter(pa.compute.equal(table["split"], "train")).column("mol_feat").to_pylist())
    stats = cache.manifest.molecule_features
    assert stats["names"] == molecule_feature_names(["rdkit2d"]) and len(train) == cache.manifest.splits["train"]
    np.testing.assert_allclose(stats["mean"], np.nanmean(train, axis=0), rtol=1e-5, atol=1e-6)

    smiles = ["CCO", "c1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1"]
    pq.write_table(pa.table({"smiles": smiles}), tmp_path / "new.parquet")
    out = tmp_path / "pred.parquet"
    assert main(["predict", str(tmp_path / "run" / "checkpoint"), str(tmp_path / "new.parquet"),
                 "--output", str(out)]) == 0  # fmt: skip
    got = pq.read_table(out).column("ref/logp").to_numpy()
    _, data, model, _ = load_checkpoint(tmp_path / "run" / "checkpoint")
    feats = featurize_smiles(smiles, np.zeros((3, 0)), FeaturizerConfig.model_validate(data.featurizer))
    batch = rows_to_batch(feats, {"graph": 0, "node": 0, "edge": 0}, data.bond_dim)
    assert batch.mol_feat.shape == (3, D)
    np.testing.assert_allclose(model.molecule.mean.numpy(), stats["mean"], rtol=1e-6)
    with torch.no_grad():
        raw = model.eval()(batch)["graph"][:, 0].numpy()
    label = data.label_stats["graph"]
    np.testing.assert_allclose(got, raw * label["std"][0] + label["mean"][0], rtol=1e-5, atol=1e-5)
    batch.mol_feat = batch.mol_feat + 1.0  # the prediction depends on the molecule features
    with torch.no_grad():
        assert not np.allclose(model(batch)["graph"][:, 0].numpy(), raw)


def test_reference_cdf_is_the_mid_rank_scipy_computes():
    """``rdkit2d_normalized`` built on a reference of the well-known molecules themselves: each value
    maps to its mid-rank u = (rank - ½) / N (scipy's average rank), ties included, NaN kept."""
    from scipy.stats import rankdata

    from graphium_ray.chem.descriptor_reference import DescriptorReference

    values = molecule_features([Chem.MolFromSmiles(s) for s in REFERENCE_SMILES], ["rdkit2d"])
    names = molecule_feature_names(["rdkit2d"])
    reference = DescriptorReference.build(names, values)  # fewer molecules than knots: every value a knot
    ours = reference.transform(values)
    checked = 0
    for j in range(values.shape[1]):
        ok = np.isfinite(values[:, j])
        if ok.sum() < 2:
            continue
        expected = (rankdata(values[ok, j].astype(np.float64), method="average") - 0.5) / ok.sum()
        np.testing.assert_allclose(ours[ok, j], expected, atol=1e-6, err_msg=names[j])
        assert np.isnan(ours[~ok, j]).all()
        checked += 1
    assert checked > 150
    between = reference.transform(np.full((1, values.shape[1]), 1e9, np.float32))  # beyond every knot: u of the top
    assert np.all((between[0] >= 0.5) & (between[0] <= 1.0))


def test_shipped_reference_matches_this_rdkit_and_spreads_small_and_drug_like_molecules():
    from graphium_ray.chem.descriptor_reference import shipped_reference

    reference = shipped_reference()
    assert reference.names == [name for name, _ in Descriptors._descList]
    assert all(np.all(np.diff(k) > 0) and np.all(np.diff(u) > 0) for k, u in zip(reference.knots, reference.u, strict=True))
    names = molecule_feature_names(["rdkit2d_normalized"])
    mols = [Chem.MolFromSmiles(s) for s in ("C", "CCO", "c1ccncc1", "CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1")]
    u = molecule_features(mols, ["rdkit2d_normalized"])
    assert u.shape == (5, D) and np.nanmin(u) >= 0 and np.nanmax(u) <= 1
    heavy = names.index("rdkit2d_normalized:HeavyAtomCount")
    assert list(np.argsort(u[:, heavy])) == [0, 1, 2, 3, 4] and 0 < u[0, heavy] < u[4, heavy] < 1  # 1 to 12 atoms
    rings = names.index("rdkit2d_normalized:NumAromaticHeterocycles")  # pyridine: common in the reference
    assert u[2, rings] > 0.2  # not a ±6σ outlier, as it reads under train statistics on a set without any


def test_normalized_descriptors_are_scaled_by_the_reference_not_the_train_split():
    names = molecule_feature_names(["rdkit2d", "rdkit2d_normalized"])
    stats = {"count": [10] * len(names), "mean": [3.0] * len(names), "std": [0.01] * len(names)}
    scaled = molecule_feature_stats(names, stats)
    assert scaled["mean"][:D] == [3.0] * D and scaled["std"][:D] == [0.01] * D
    assert scaled["mean"][D:] == [0.5] * D and scaled["std"][D:] == pytest.approx([1 / np.sqrt(12)] * D)
    model = MoleculeFeatures(scaled["mean"], scaled["std"])
    z = model(torch.full((1, 2 * D), 1.0))[0, D:]  # u = 1: √3 above the reference median, never clamped
    torch.testing.assert_close(z, torch.full((D,), float(np.sqrt(3.0))))


def test_a_model_or_cache_built_against_another_reference_table_is_refused(tmp_path, monkeypatch):
    """The reference table's digest travels in the statistics (so the checkpoint) and the cache key:
    a model fitted to one table is refused by an install shipping another, with both digests named."""
    from graphium_ray.chem.descriptor_reference import DescriptorReference, shipped_reference
    from graphium_ray.config import validate
    from graphium_ray.data.cache import cache_key

    shipped = shipped_reference()
    assert shipped.digest() == DescriptorReference.load(_saved(shipped, tmp_path)).digest()  # survives save/load
    nudged = DescriptorReference(shipped.names, [k.copy() for k in shipped.knots], [u.copy() for u in shipped.u])
    nudged.u[0][1] += 1e-3
    assert nudged.digest() != shipped.digest()

    names = molecule_feature_names(["rdkit2d", "rdkit2d_normalized"])
    stats = molecule_feature_stats(names, {"count": [10] * len(names), "mean": [0.0] * len(names), "std": [1.0] * len(names)})
    assert stats["tables"] == {"rdkit2d_normalized": shipped.digest()}
    assert "tables" not in molecule_feature_stats(names[:D], {"count": [10] * D, "mean": [0.0] * D, "std": [1.0] * D})
    check_molecule_features(names, stats["tables"])
    check_molecule_features(names, None)  # a checkpoint from before digests were recorded
    with pytest.raises(ValueError, match=f"rdkit2d_normalized against reference table {nudged.digest()}, this "
                                         f"graphium-ray ships table {shipped.digest()}"):
        check_molecule_features(names, {"rdkit2d_normalized": nudged.digest()})

    def key(sets):
        cfg = validate({"name": "k", "data": {"featurizer": {"molecule": sets},
                                              "datasets": [{"name": "d", "path": "d.csv", "tasks": [{"columns": ["y"]}]}]}})
        return cache_key(cfg.data, {"d.csv": "abc"}, [])

    shipped_key, plain_key = key(["rdkit2d_normalized"]), key(["rdkit2d"])
    from graphium_ray.chem import descriptor_reference

    monkeypatch.setattr(descriptor_reference, "REFERENCE_FILE", _saved(nudged, tmp_path))  # a rebuilt table, on disk
    shipped_reference.cache_clear()
    try:
        assert key(["rdkit2d_normalized"]) != shipped_key  # a new cache entry for the new table
        assert key(["rdkit2d"]) == plain_key  # sets without a table keep their key
        with pytest.raises(ValueError, match="use the graphium-ray version the model was trained with"):
            check_molecule_features(names, stats["tables"])  # the old model, the new install
    finally:
        monkeypatch.undo()
        shipped_reference.cache_clear()


def _saved(reference, tmp_path):
    path = tmp_path / "table.npz"
    reference.save(path)
    return path


def test_both_descriptor_sets_cost_one_rdkit_pass_in_the_in_driver_estimate(tmp_path):
    """``rdkit2d`` and ``rdkit2d_normalized`` share one RDKit pass, so asking for both must not
    double the estimated work that decides whether a small input is prepared in the driver."""
    from graphium_ray.chem.descriptors import descriptor_passes
    from graphium_ray.data.in_driver import small_enough

    assert descriptor_passes([]) == 0 and descriptor_passes(["rdkit2d"]) == 1
    assert descriptor_passes(["rdkit2d", "rdkit2d_normalized"]) == 1
    csv = tmp_path / "in.csv"
    csv.write_text("smiles\n" + "CCO\n" * 1000)  # 1,000 rows x 7 ms = 7 s of work: in the driver; 13 s: not
    files = [(str(csv), "csv", "smiles")]
    assert small_enough(files, descriptor_passes(["rdkit2d", "rdkit2d_normalized"]))
    assert not small_enough(files, 2)
