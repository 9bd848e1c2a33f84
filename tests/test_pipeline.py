"""prepare on a real local Ray cluster: merge, bad input reporting, cache reuse and invalidation."""

from __future__ import annotations

import csv
import json
import os
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from graphium_ray.config import ConfigError, validate
from graphium_ray.data.builtin import reference_table
from graphium_ray.data.prepare import prepare


def data_cfg(tmp_path, datasets, **extra):
    return validate(
        {"data": {"cache_dir": str(tmp_path / "cache"), "num_shards": 2, "datasets": datasets, **extra}}
    ).data


@pytest.fixture(scope="module")
def zinc_trio(tmp_path_factory):
    """The tiny_ZINC pattern: three one-label files over the same molecules (different spellings)."""
    d = tmp_path_factory.mktemp("trio")
    ref = reference_table().to_pydict()
    for label in ("logp", "tpsa", "mol_wt"):
        rows = {"SMILES": ref["smiles"], label: ref[label]}
        pacsv.write_csv(pa.table(rows), d / f"tiny_{label}.csv")
    return d, ref


def test_merge_three_single_label_files_into_one_table(ray_cluster, tmp_path, zinc_trio):
    d, ref = zinc_trio
    datasets = [{"name": lab, "path": str(d / f"tiny_{lab}.csv"), "smiles_column": "SMILES",
                 "tasks": [{"columns": [lab]}]} for lab in ("logp", "tpsa", "mol_wt")]  # fmt: skip
    prepared = prepare(data_cfg(tmp_path, datasets))
    m = prepared.manifest
    assert m["rows_in"] == {"logp": 43, "tpsa": 43, "mol_wt": 43}
    assert m["molecules"] == 43 and m["featurized"] == 43 and m["skipped"]["total"] == 0
    assert [t["column"] for t in m["tasks"]] == ["logp", "tpsa", "mol_wt"]
    table = pq.read_table(prepared.featurized_dir).to_pydict()
    by_key = dict(zip(table["mol_key"], table["y_graph"], strict=True))
    aspirin = by_key["CC(=O)Oc1ccccc1C(=O)O"]
    i = ref["smiles"].index("CC(=O)Oc1ccccc1C(=O)O")
    assert aspirin == pytest.approx([ref["logp"][i], ref["tpsa"][i], ref["mol_wt"][i]], rel=1e-6)
    # train-split statistics, computed by the Ray Data aggregate, against NumPy
    import numpy as np

    train = np.array([y for y, s in zip(table["y_graph"], table["split"], strict=True) if s == "train"])
    assert m["label_stats"]["graph"]["mean"] == pytest.approx(train.mean(0).tolist(), rel=1e-5)
    assert m["label_stats"]["graph"]["std"] == pytest.approx(train.std(0).tolist(), rel=1e-4)


def test_bad_rows_are_reported_with_file_row_and_field(ray_cluster, tmp_path):
    path = tmp_path / "bad.csv"
    rows = [
        ("CCO", "1.0", "0"),
        ("C1CC(", "2.0", "1"),  # SMILES syntax error
        ("C(C)(C)(C)(C)C", "3.0", "0"),  # valence error
        ("CCN", "abc", "1"),  # not a number
        ("CCC", "inf", "0"),  # infinite
        ("c1ccccc1", "", "1"),  # missing label: kept, NaN
        ("OCC", "5.0", "1"),  # duplicate of CCO in the same file
    ]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["smiles", "y", "active"])
        w.writerows(rows)
    cfg = data_cfg(tmp_path, [{"name": "bad", "path": str(path),
                               "tasks": [{"columns": ["y"]}, {"columns": ["active"], "kind": "binary"}]}])  # fmt: skip
    m = prepare(cfg).manifest
    assert m["skipped"]["total"] == 5 and m["featurized"] == 2
    with open(m["skipped"]["report"]) as fh:
        report = {int(r["src_row"]): r for r in csv.DictReader(fh)}
    assert set(report) == {1, 2, 3, 4, 6}
    assert all(r["src_file"] == str(path) for r in report.values())
    assert "syntax" in report[1]["reason"] and "valence" in report[2]["reason"].lower()
    assert "field 'y'" in report[3]["reason"] and "not a number" in report[3]["reason"]
    assert "infinite" in report[4]["reason"]
    assert "duplicate" in report[6]["reason"] and "row 0" in report[6]["reason"]


def test_missing_column_and_file_fail_before_work(ray_cluster, tmp_path, zinc_trio):
    d, _ = zinc_trio
    with pytest.raises(ConfigError, match=r"label column 'nope' not found"):
        prepare(data_cfg(tmp_path, [{"name": "a", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                                     "tasks": [{"columns": ["nope"]}]}]))  # fmt: skip
    with pytest.raises(ConfigError, match="SMILES column 'smiles' not found"):
        prepare(data_cfg(tmp_path, [{"name": "a", "path": str(d / "tiny_logp.csv"), "tasks": [{"columns": ["logp"]}]}]))
    with pytest.raises(ConfigError, match="file not found"):
        prepare(data_cfg(tmp_path, [{"name": "a", "path": str(tmp_path / "none.csv"), "tasks": [{"columns": ["y"]}]}]))


def test_cache_reused_then_invalidated_by_a_changed_file(ray_cluster, tmp_path, zinc_trio):
    d, ref = zinc_trio
    path = tmp_path / "one.csv"
    pacsv.write_csv(pa.table({"smiles": ref["smiles"], "logp": ref["logp"]}), path)
    cfg = data_cfg(tmp_path, [{"name": "one", "path": str(path), "tasks": [{"columns": ["logp"]}]}])
    first = prepare(cfg)
    manifest_mtime = os.stat(first.root / "manifest.json").st_mtime_ns
    again = prepare(cfg)
    assert again.root == first.root and os.stat(again.root / "manifest.json").st_mtime_ns == manifest_mtime
    time.sleep(0.01)
    pacsv.write_csv(pa.table({"smiles": ref["smiles"][:-1], "logp": ref["logp"][:-1]}), path)
    changed = prepare(cfg)
    assert changed.root != first.root and changed.manifest["molecules"] == 42


def test_split_file_assigns_rows(ray_cluster, tmp_path, zinc_trio):
    d, _ = zinc_trio
    split = tmp_path / "splits.csv"
    split.write_text("train,val,test\n0,10.0,20\n1,11.0,21\n2,,22\n3,,\n")
    cfg = data_cfg(tmp_path, [{"name": "a", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                               "split_file": str(split), "tasks": [{"columns": ["logp"]}]}])  # fmt: skip
    m = prepare(cfg).manifest
    assert m["splits"] == {"train": 4, "val": 2, "test": 3, "unassigned": 34}
    json.dumps(m)  # the manifest is plain JSON
