"""Runs on the real datasets in ../shared/data (skipped with a reason when absent; CI has them)."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from graphium_ray.cli import main
from graphium_ray.config import validate
from graphium_ray.data.prepare import prepare

from .conftest import ROOT, SHARED_DATA, needs_shared_data

pytestmark = [needs_shared_data, pytest.mark.shared_data]
TOYMIX = SHARED_DATA / "toymix"


def test_tox21_reports_exactly_its_eight_unparsable_smiles(ray_cluster, tmp_path):
    cfg = validate({"data": {"cache_dir": str(tmp_path / "cache"), "num_shards": 4, "datasets": [
        {"name": "tox21", "path": str(TOYMIX / "tox21.csv"), "tasks": [{"columns": ["NR-*", "SR-*"], "kind": "binary"}]}]}})  # fmt: skip
    m = prepare(cfg.data).manifest
    assert m.rows_in == {"tox21": 7831}
    assert len(m.tasks) == 12
    with open(m.skipped["report"]) as fh:
        skipped = list(csv.DictReader(fh))
    unparsable = [r for r in skipped if r["stage"] == "ingest"]
    assert len(unparsable) == 8, unparsable
    assert all(r["reason"].startswith("unparsable SMILES") for r in unparsable)
    assert len(skipped) == 8  # duplicates are merged label by label, not skipped
    merged = m.duplicates["duplicate_rows_merged"].get("tox21", 0)
    assert m.featurized + len(skipped) + merged == 7831  # every row: prepared, reported or merged


def test_toymix_trains_on_the_local_files(ray_cluster, tmp_path, capsys):
    run = tmp_path / "run"
    overrides = [
        f"data.datasets.0.path={TOYMIX / 'micro_qm9.csv'}",
        f"data.datasets.1.path={TOYMIX / 'tox21.csv'}",
        f"data.datasets.2.path={TOYMIX / 'micro_zinc.csv'}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "train.epochs=1", "model.hidden_dim=32", "model.num_layers=2", "train.batch_size=128",
    ]  # fmt: skip
    args = ["train", str(ROOT / "sweeps" / "toymix.yaml"), "--output", str(run)]
    assert main(args + [x for o in overrides for x in ("--set", o)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["test"]) == 19 + 12 + 3
    assert metrics["test"]["tox21/NR-AR"]["auroc"] is None or 0 <= metrics["test"]["tox21/NR-AR"]["auroc"] <= 1
    assert metrics["test"]["qm9/u0"]["mae"] > 0.1  # real units (Hartree, |u0| ~ 400), not normalized


def test_atom_mapped_charges_follow_map_order(ray_cluster, tmp_path):
    cfg = validate({"data": {"cache_dir": str(tmp_path / "cache"), "num_shards": 2, "featurizer": {"hydrogens": "explicit"},
                             "datasets": [{"name": "charges", "path": str(SHARED_DATA / "node_level" / "atomic_charges_500.csv"),
                                           "atom_mapped": True, "tasks": [{"columns": ["charges"], "level": "node"}]}]}})  # fmt: skip
    prepared = prepare(cfg.data)
    m = prepared.manifest
    merged = m.duplicates["duplicate_rows_merged"].get("charges", 0)  # rows of a molecule already seen
    assert m.rows_in == {"charges": 500} and m.featurized + m.skipped["total"] + merged == 500
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    first = pacsv.read_csv(SHARED_DATA / "node_level" / "atomic_charges_500.csv").slice(0, 1).to_pylist()[0]
    charges = [float(t) for t in first["charges"].strip("[]").split(",")]
    feats = pq.read_table(prepared.featurized_dir).to_pandas()
    row = feats[feats["sources"].str.endswith("|0")].iloc[0]
    assert row["num_nodes"] == len(charges)
    assert list(row["y_node"]) == pytest.approx(charges, abs=1e-6)  # map number i+1 ↔ charge i


def test_graph_node_edge_toy_file_all_levels(ray_cluster, tmp_path):
    toy = SHARED_DATA / "node_level" / "mol_atom_bond_toy.csv"
    cfg = validate({"data": {"cache_dir": str(tmp_path / "cache"), "num_shards": 1, "featurizer": {"hydrogens": "as_written"},
                             "datasets": [{"name": "toy", "path": str(toy), "tasks": [
                                 {"columns": ["mol_y*"]}, {"columns": ["atom_y*"], "level": "node"},
                                 {"columns": ["bond_y*"], "level": "edge"}]}]}})  # fmt: skip
    m = prepare(cfg.data).manifest
    assert m.label_widths == {"graph": 2, "node": 2, "edge": 2}
    assert m.featurized == 10  # 11 rows, CN twice: the second is merged into the first
    assert m.duplicates["duplicate_rows_merged"] == {"toy": 1} and m.skipped["total"] == 0
    with open(m.duplicates["report"]) as fh:
        conflicts = list(csv.DictReader(fh))
    assert all("row 2" in c["rows"] or "row 3" in c["rows"] for c in conflicts)  # only CN's rows, if any


def test_largemix_standin_trains_graph_node_and_sparse_binary_tasks(ray_cluster, tmp_path):
    from graphium_ray.data.builtin import build_qm9_charges

    charges = build_qm9_charges(tmp_path / "charges", 400)
    # the first rows of the shared files (ToxCast gzipped as shipped): every one of its 617 assay columns
    # and PCQM4Mv2's extended SMILES, at a fifth of the featurization time of the whole files
    pcqm, toxcast = tmp_path / "pcqm4mv2.csv", tmp_path / "toxcast.csv.gz"
    with open(SHARED_DATA / "largemix_standins" / "pcqm4mv2_2k.csv") as src:  # the header and 600 rows, verbatim
        pcqm.write_text("".join(line for _, line in zip(range(601), src, strict=False)))
    with gzip.open(SHARED_DATA / "largemix_standins" / "toxcast.csv.gz", "rt") as src, gzip.open(toxcast, "wt") as dst:
        dst.writelines(line for _, line in zip(range(1501), src, strict=False))
    run = tmp_path / "run"
    overrides = [f"data.datasets.1.path={charges}", f"data.cache_dir={tmp_path / 'cache'}",
                 f"data.datasets.0.path={pcqm}", f"data.datasets.2.path={toxcast}",
                 "train.epochs=1", "model.hidden_dim=32", "model.num_layers=2", "train.batch_size=128"]  # fmt: skip
    args = ["train", str(ROOT / "sweeps" / "largemix_standin.yaml"), "--output", str(run)]
    assert main(args + [x for o in overrides for x in ("--set", o)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    node = metrics["test"]["qm9_charges/charges"]
    assert node["n"] > 100 and 0 < node["mae"] < 0.5  # per-atom charges in units of e
    assert metrics["test"]["pcqm4m_g1/homo"]["mae"] > 0
    assert sum(1 for k in metrics["test"] if k.startswith("toxcast/")) == 617
