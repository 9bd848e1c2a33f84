"""Runs on the real datasets in ../shared/data (skipped with a reason when absent; CI has them)."""

from __future__ import annotations

import csv
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
    assert m["rows_in"] == {"tox21": 7831}
    assert len(m["tasks"]) == 12
    with open(m["skipped"]["report"]) as fh:
        skipped = list(csv.DictReader(fh))
    unparsable = [r for r in skipped if r["stage"] == "ingest"]
    assert len(unparsable) == 8, unparsable
    assert all(r["reason"].startswith("unparsable SMILES") for r in unparsable)
    duplicates = [r for r in skipped if "duplicate" in r["reason"]]
    assert len(skipped) == 8 + len(duplicates)
    assert m["featurized"] + len(skipped) == 7831


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
