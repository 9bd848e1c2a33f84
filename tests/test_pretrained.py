"""The shipped pretrained model (``builtin:graphium-ray-moses-qm9``) and the offline data that makes it.

The checkpoint loads from the package, ``predict`` and ``fingerprint`` name it like any checkpoint
and agree with the model run in-process, ``finetune`` trains from it, and ``make-data pretrain``'s
pieces (MOSES descriptors, QM9 united-atom charges) are checked against RDKit and the raw charges.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Descriptors

from graphium_ray.checkpoints import PRETRAINED_DIR, builtin_models, load_checkpoint
from graphium_ray.chem.graph import molecule_key, parse_smiles
from graphium_ray.cli import main
from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import REFERENCE_SMILES
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch

NAME = "graphium-ray-moses-qm9"
BUILTIN = f"builtin:{NAME}"
SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O",
          "CC(C)NCC(O)COc1cccc2ccccc12", "CC(=O)Nc1ccc(O)cc1"]  # aspirin, caffeine, ibuprofen, propranolol, paracetamol


def _in_process(smiles: list[str]):
    """(graph head outputs, graph embeddings, model data) of the shipped model run directly."""
    _, data, model, _ = load_checkpoint(BUILTIN)
    feats = featurize_smiles(smiles, np.zeros((len(smiles), 0)), FeaturizerConfig.model_validate(data.featurizer))
    batch = rows_to_batch(feats, {"graph": 0, "node": 0, "edge": 0}, data.bond_dim)
    model.eval()
    with torch.no_grad():
        return model(batch)["graph"].numpy(), model.embed(batch)["graph"].numpy(), data


def test_the_shipped_model_is_small_documented_and_multi_level():
    assert NAME in builtin_models()
    files = [p for p in (PRETRAINED_DIR / NAME).iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 10 * 2**20
    assert not (PRETRAINED_DIR / NAME / "optimizer.pt").exists()  # weights only
    cfg, data, model, state = load_checkpoint(BUILTIN)
    levels = {(t.name.split("/")[0], t.level) for t in data.task_specs}
    assert {("moses", "graph"), ("qm9", "graph"), ("qm9_charges", "node")} <= levels
    assert cfg.model.parametrization == "mup" and cfg.model.hidden_dim > cfg.model.base_hidden_dim
    card = (PRETRAINED_DIR.parents[1] / "docs" / "pretrained" / f"{NAME}.md").read_text()
    assert BUILTIN in card and "pretrain_offline" in card


def test_predict_builtin_matches_the_model_in_process(ray_cluster, tmp_path):
    pacsv.write_csv(pa.table({"smiles": SMILES + ["C1CC"]}), tmp_path / "in.csv")
    out = tmp_path / "pred.parquet"
    assert main(["predict", BUILTIN, str(tmp_path / "in.csv"), "--output", str(out)]) == 0
    table = pq.read_table(out).to_pandas()
    assert len(table) == len(SMILES) + 1 and table["error"].iloc[-1]  # the bad row kept, with its reason
    raw, _, data = _in_process(SMILES)
    names = [t.name for t in data.task_specs if t.level == "graph"]
    stats = data.label_stats["graph"]
    for column in ("qm9/gap", "moses/d_MolWt", "moses/d_TPSA"):
        j = names.index(column)
        np.testing.assert_allclose(table[column].iloc[: len(SMILES)], raw[:, j] * stats["std"][j] + stats["mean"][j],
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    # a model that learned its targets: asinh(molecular weight) within 0.25 (~28 %) of RDKit's on drugs
    # (smaller than MOSES's 250-350 Da, measured errors 0.02-0.22)
    weights = np.arcsinh([Descriptors.MolWt(Chem.MolFromSmiles(s)) for s in SMILES])
    assert np.abs(table["moses/d_MolWt"].iloc[: len(SMILES)] - weights).max() < 0.25


def test_fingerprint_builtin_is_deterministic_and_is_the_models_embedding(ray_cluster, tmp_path):
    pacsv.write_csv(pa.table({"smiles": REFERENCE_SMILES[:20]}), tmp_path / "in.csv")
    runs = []
    for k in range(2):
        assert main(["fingerprint", BUILTIN, str(tmp_path / "in.csv"), "--output", str(tmp_path / f"fp{k}.parquet")]) == 0
        runs.append(np.stack(pq.read_table(tmp_path / f"fp{k}.parquet").column("embedding").to_pylist()))
    np.testing.assert_array_equal(runs[0], runs[1])
    _, expected, _ = _in_process(REFERENCE_SMILES[:20])
    np.testing.assert_allclose(runs[0], expected, rtol=1e-5, atol=1e-5)


def test_finetune_builtin_trains_one_epoch_with_descriptor_inputs(ray_cluster, tmp_path):
    """The backbone (atom/bond inputs included) is the checkpoint's; molecule-level descriptor inputs
    are the downstream config's choice (read by the new heads, standardized with its own data)."""
    import yaml

    from graphium_ray.data.builtin import descriptor_labels, qm9_sample

    labels = descriptor_labels(qm9_sample(120, ["SMILES"], offset=7).column("SMILES").to_pylist())
    pq.write_table(pa.table({"smiles": labels["smiles"], "logp": labels["logp"]}), tmp_path / "down.parquet")
    cfg = {"name": "ft_builtin", "data": {"cache_dir": str(tmp_path / "cache"), "num_shards": 2, "datasets": [
        {"name": "down", "path": str(tmp_path / "down.parquet"), "tasks": [{"columns": ["logp"]}]}],
        "featurizer": {"molecule": ["rdkit2d"]}},
        "train": {"epochs": 1, "batch_size": 16, "num_workers": 1}, "finetune": {"freeze_backbone_epochs": 1}}  # fmt: skip
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["finetune", BUILTIN, str(tmp_path / "ft.yaml"), "--output", str(tmp_path / "ft")]) == 0
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert metrics["test"]["down/logp"]["n"] > 0
    assert json.loads((tmp_path / "ft" / "finetuned_from.json").read_text())["checkpoint"] == BUILTIN
    _, _, pre, _ = load_checkpoint(BUILTIN)
    _, _, tuned, _ = load_checkpoint(tmp_path / "ft" / "checkpoint")
    pre_state, tuned_state = pre.state_dict(), tuned.state_dict()
    backbone = [k for k in tuned_state if not k.startswith(("heads.", "molecule."))]
    assert backbone and all(torch.equal(tuned_state[k], pre_state[k]) for k in backbone)  # frozen for its 1 epoch
    assert "molecule.mean" not in pre_state and tuned_state["molecule.mean"].shape == (217,)


def test_an_unknown_builtin_name_lists_the_shipped_ones(tmp_path, capsys):
    pacsv.write_csv(pa.table({"smiles": ["CCO"]}), tmp_path / "in.csv")
    assert main(["predict", "builtin:nope", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.parquet")]) == 2
    err = capsys.readouterr().err
    assert "builtin:nope" in err and BUILTIN in err


needs_molsets = pytest.mark.skipif(importlib.util.find_spec("moses") is None,
                                   reason="molsets not installed (make test installs it: pip install --no-deps molsets)")  # fmt: skip


@needs_molsets
def test_moses_descriptors_are_rdkits_with_constant_ones_dropped(ray_cluster, tmp_path):
    from graphium_ray.data.pretrain_data import MOSES_TRAIN_ROWS, build_moses_descriptors

    paths = build_moses_descriptors(tmp_path, 40, max_in_flight=2)
    table = pq.read_table(paths["moses"]).to_pandas()
    kept = json.loads(paths["kept"].read_text())
    assert len(table) == kept["molecules"] == 40 and kept["skipped"] == 0
    assert list(table["moses_row"]) == [k * (MOSES_TRAIN_ROWS // 40) for k in range(40)]  # spread over the file
    assert "d_NumRadicalElectrons" not in table and "NumRadicalElectrons" in kept["dropped"]  # constant: 0
    columns = [c for c in table if c.startswith("d_")]
    assert columns == kept["kept"] and len(columns) > 100
    assert (table[columns].std() > 0).all()
    for row in table.head(3).itertuples():
        mol = Chem.MolFromSmiles(row.smiles)
        assert row.d_MolWt == pytest.approx(np.arcsinh(Descriptors.MolWt(mol)), rel=1e-6)
        assert row.d_TPSA == pytest.approx(np.arcsinh(Descriptors.TPSA(mol)), rel=1e-6)


def test_an_unparsable_molecule_is_reported_not_dropped():
    from graphium_ray.data.pretrain_data import descriptor_chunk

    table, skipped = descriptor_chunk(np.array([3, 8]), ["CCO", "C1CC"])
    assert table.column("moses_row").to_pylist() == [3]
    assert skipped == [{"moses_row": 8, "smiles": "C1CC", "reason": "RDKit could not parse the SMILES"}]


def test_united_atom_charges_conserve_the_total_and_fit_the_heavy_atoms(tmp_path):
    from graphium_ray.data.builtin import build_qm9_charges
    from graphium_ray.data.pretrain_data import build_group_charges

    raw = pq.read_table(build_qm9_charges(tmp_path, 30)).to_pydict()
    grouped = pq.read_table(build_group_charges(tmp_path, 30)).to_pydict()
    assert len(grouped["smiles"]) == len(raw["smiles"]) > 20
    for smi_h, q_h, smi, q in zip(raw["smiles"], raw["charges"], grouped["smiles"], grouped["charges"], strict=True):
        mol = parse_smiles(smi, atom_mapped=True)  # what prepare does with `atom_mapped: true`
        assert mol.GetNumAtoms() == len(q) and all(a.GetAtomicNum() != 1 for a in mol.GetAtoms())
        assert sum(q) == pytest.approx(sum(q_h), abs=1e-9)
        with_h = parse_smiles(smi_h, hydrogens="as_written", atom_mapped=True)
        assert molecule_key(mol) == molecule_key(Chem.RemoveHs(with_h))  # the same molecule
        heavy_sources = [a for a in with_h.GetAtoms() if a.GetAtomicNum() > 1]  # raw (XYZ) order = map order
        for atom in mol.GetAtoms():  # heavy atom k: the k-th heavy atom's charge plus its hydrogens'
            source = heavy_sources[atom.GetIdx()]
            assert source.GetSymbol() == atom.GetSymbol()
            expected = q_h[source.GetIdx()] + sum(q_h[n.GetIdx()] for n in source.GetNeighbors() if n.GetAtomicNum() == 1)
            assert q[atom.GetIdx()] == pytest.approx(expected, abs=1e-12)


@needs_molsets
def test_evaluate_builtin_on_fresh_molecules_of_its_own_tasks(ray_cluster, tmp_path):
    """`evaluate` takes builtin:… too: the recipe's own tasks on 60 molecules of MOSES's *test* set
    (never in the training sample) and 60 QM9 molecules (every 2,180th row; about a third of them in
    the pretraining sample), with metrics in real units that show it learned them."""
    import gzip

    import yaml

    from graphium_ray.config import load_raw
    from graphium_ray.data.builtin import build_qm9_toymix
    from graphium_ray.data.pretrain_data import build_group_charges, descriptor_chunk, moses_train_file

    _, data, _, _ = load_checkpoint(BUILTIN)
    kept = [t.name.split("/", 1)[1] for t in data.task_specs if t.name.startswith("moses/")]
    with gzip.open(moses_train_file().with_name("test.csv.gz"), "rt") as f:
        assert next(f).strip() == "SMILES"
        smiles = [next(f).strip() for _ in range(60)]
    table, skipped = descriptor_chunk(np.arange(len(smiles)), smiles)
    assert not skipped
    pq.write_table(table.rename_columns([c if c in ("moses_row", "smiles") else f"d_{c}" for c in table.column_names])
                   .select(["smiles", *kept]), tmp_path / "moses.parquet")  # fmt: skip
    raw = load_raw("sweeps/pretrain_offline.yaml")
    for i, path in enumerate([tmp_path / "moses.parquet", build_qm9_toymix(tmp_path, 60), build_group_charges(tmp_path, 60)]):
        raw["data"]["datasets"][i]["path"] = str(path)
    raw["data"].update(cache_dir=str(tmp_path / "cache"), num_shards=2, split={"kind": "random", "fractions": [0.0, 1.0, 0.0]})
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path / "eval"
    assert main(["evaluate", str(tmp_path / "eval.yaml"), "--checkpoint", BUILTIN, "--split", "val", "--output", str(out)]) == 0
    metrics = json.loads((out / "evaluate_val.json").read_text())["val"]
    assert metrics["moses/d_MolWt"]["r2"] > 0.8 and metrics["moses/d_TPSA"]["r2"] > 0.8
    assert metrics["qm9/gap"]["r2"] > 0.8
    assert metrics["qm9_charges/charges"]["mae"] < 0.05  # e per heavy atom


def test_a_run_directory_loads_as_its_checkpoint_and_a_replicated_run_names_its_members(tmp_path):
    """``finetune``/``evaluate`` take a run directory as ``predict`` does (its ``checkpoint/``); a run
    of replicates has no single model, and the error names one to pick."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(PRETRAINED_DIR / NAME, run / "checkpoint")
    _, _, model, _ = load_checkpoint(run)
    _, _, shipped, _ = load_checkpoint(BUILTIN)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values(), strict=True))
    replicated = tmp_path / "replicated"
    for i in range(2):
        shutil.copytree(PRETRAINED_DIR / NAME, replicated / f"replicate_{i}" / "checkpoint")
    with pytest.raises(FileNotFoundError, match="run of 2 replicates: name one model, e.g. .*replicate_0/checkpoint"):
        load_checkpoint(replicated)
    with pytest.raises(FileNotFoundError, match="not a graphium-ray checkpoint or run directory"):
        load_checkpoint(tmp_path)
