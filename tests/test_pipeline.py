"""prepare on a real local Ray cluster: merge, bad input reporting, cache reuse and invalidation."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from graphium_ray.config import ConfigError, validate
from graphium_ray.data.builtin import reference_table
from graphium_ray.data.prepare import prepare
from graphium_ray.manifest import Manifest


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
    assert m.rows_in == {"logp": 43, "tpsa": 43, "mol_wt": 43}
    assert m.molecules == 43 and m.featurized == 43 and m.skipped["total"] == 0
    assert [t["column"] for t in m.tasks] == ["logp", "tpsa", "mol_wt"]
    table = pq.read_table(prepared.featurized_dir).to_pydict()
    by_key = dict(zip(table["mol_key"], table["y_graph"], strict=True))
    aspirin = by_key["CC(=O)Oc1ccccc1C(=O)O"]
    i = ref["smiles"].index("CC(=O)Oc1ccccc1C(=O)O")
    assert aspirin == pytest.approx([ref["logp"][i], ref["tpsa"][i], ref["mol_wt"][i]], rel=1e-6)
    # train-split statistics (a small cache: read in the driver) against NumPy, and the same from the
    # Ray Data map-reduce that larger caches use
    import numpy as np

    from graphium_ray.data.ingest import LabelLayout
    from graphium_ray.data.prepare import label_stats

    train = np.array([y for y, s in zip(table["y_graph"], table["split"], strict=True) if s == "train"])
    assert m.label_stats["graph"]["mean"] == pytest.approx(train.mean(0).tolist(), rel=1e-5)
    assert m.label_stats["graph"]["std"] == pytest.approx(train.std(0).tolist(), rel=1e-4)
    layout = LabelLayout.from_tasks(m.task_specs)
    by_ray = label_stats(prepared.featurized_dir, layout, 0, in_driver=False)
    assert by_ray == label_stats(prepared.featurized_dir, layout, 0, in_driver=True)
    assert by_ray["graph"] == m.label_stats["graph"] and by_ray["rows"]["train"] == m.splits["train"]


@pytest.mark.parametrize("where", ["always", "never"])  # in the driver, and as Ray Data jobs on the cluster
def test_bad_rows_are_reported_with_file_row_and_field(ray_cluster, tmp_path, where):
    path = tmp_path / "bad.csv"
    rows = [
        ("CCO", "1.0", "0"),
        ("C1CC(", "2.0", "1"),  # SMILES syntax error
        ("C(C)(C)(C)(C)C", "3.0", "0"),  # valence error
        ("CCN", "abc", "1"),  # not a number
        ("CCC", "inf", "0"),  # infinite
        ("c1ccccc1", "", "1"),  # missing label: kept, NaN
        ("OCC", "5.0", "1"),  # duplicate of CCO in the same file: merged, both labels conflict
        ("CC\nCC", "1.0", "0"),  # a newline inside a quoted SMILES: RDKit would read ethane
        ("CCCl", "1.0", "2"),  # binary label 2
        ("CCBr", "1.0", "0.5"),  # binary label 0.5
        ("CCI", "1.0", "True"),  # true/false are binary labels
    ]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["smiles", "y", "active"])
        w.writerows(rows)
    cfg = data_cfg(tmp_path, [{"name": "bad", "path": str(path),
                               "tasks": [{"columns": ["y"]}, {"columns": ["active"], "kind": "binary"}]}],
                   prepare_in_driver=where)  # fmt: skip
    m = prepare(cfg).manifest
    assert m.skipped["total"] == 7 and m.featurized == 3  # CCO (merged with OCC), benzene, CCI
    with open(m.skipped["report"]) as fh:
        report = {int(r["src_row"]): r for r in csv.DictReader(fh)}
    assert set(report) == {1, 2, 3, 4, 7, 8, 9}  # rows in = rows prepared + rows reported + merged duplicates
    assert all(r["src_file"] == str(path) for r in report.values())
    assert "syntax" in report[1]["reason"] and "valence" in report[2]["reason"].lower()
    assert "field 'y'" in report[3]["reason"] and "not a number" in report[3]["reason"]
    assert "infinite" in report[4]["reason"]
    assert "whitespace" in report[7]["reason"] or "control character" in report[7]["reason"]
    assert "field 'active'" in report[8]["reason"] and "binary label 2" in report[8]["reason"]
    assert "binary label 0.5" in report[9]["reason"]
    assert m.duplicates["duplicate_rows_merged"] == {"bad": 1} and m.duplicates["conflicts"] == {"bad": 2}
    with open(m.duplicates["report"]) as fh:
        conflicts = {r["column"]: r for r in csv.DictReader(fh)}
    assert conflicts["y"]["values"] == "1; 5" and "row 0" in conflicts["y"]["rows"] and "row 6" in conflicts["y"]["rows"]
    assert conflicts["active"]["resolution"] == "drop_label"
    feats = pq.read_table(m.skipped["report"].replace("skipped.csv", "featurized")).to_pydict()
    by_key = dict(zip(feats["mol_key"], feats["y_graph"], strict=True))
    assert all(v != v for v in by_key["CCO"])  # both conflicting labels dropped to missing
    assert by_key["CCI"][1] == 1.0  # "True"


def _rows(path) -> str:
    """A Parquet file's rows as text (NaN, which is not equal to itself, as None)."""
    return repr([{k: None if v != v else v for k, v in r.items()} for r in pq.read_table(path).to_pylist()])


def test_prepare_in_the_driver_writes_the_cache_the_cluster_writes(ray_cluster, tmp_path, zinc_trio):
    """`prepare_in_driver: always` vs `never` on three files with duplicates, an unparsable row,
    descriptor inputs (NaN-free and NaN) and a scaffold split: the same molecule and featurized files,
    reports and manifest (timings and paths aside); `auto` chooses by the estimated work."""
    from graphium_ray.data.prepare import in_driver, resolve_sources

    d, _ = zinc_trio
    (d / "tiny_extra.csv").write_text("SMILES,logp\nCCO,0.5\nC1CC(,1.0\nOCC,0.7\n[Co+]CC,2.0\n")
    datasets = [{"name": lab, "path": str(d / f"tiny_{lab}.csv"), "smiles_column": "SMILES",
                 "tasks": [{"columns": ["logp" if lab == "extra" else lab]}]} for lab in ("logp", "tpsa", "extra")]  # fmt: skip
    extra = {"split": {"kind": "scaffold", "seed": 1}, "featurizer": {"molecule": ["rdkit2d"]}}
    roots = {}
    for where in ("always", "never"):
        prepared = prepare(data_cfg(tmp_path / where, datasets, prepare_in_driver=where, **extra))
        roots[where] = prepared.root
    a, b = roots["always"], roots["never"]
    assert a.name == b.name  # the same cache key: where it ran is not part of the data
    for sub in ("molecules", "featurized"):
        files = sorted(str(p.relative_to(a)) for p in (a / sub).rglob("*.parquet"))
        assert files and files == sorted(str(p.relative_to(b)) for p in (b / sub).rglob("*.parquet"))
        assert all(_rows(a / f) == _rows(b / f) for f in files), sub
    for report in ("skipped.csv", "conflicts.csv"):
        assert (a / report).read_text() == (b / report).read_text()
    manifests = [Manifest.read(r / "manifest.json").to_dict() for r in (a, b)]
    for m in manifests:
        for key in ("prepare_seconds", "stage_seconds", "skipped", "duplicates"):
            m.pop(key)
    assert json.dumps(manifests[0], sort_keys=True) == json.dumps(manifests[1], sort_keys=True)
    assert Manifest.read(a / "manifest.json").skipped["total"] == 1  # C1CC(
    cfg = data_cfg(tmp_path, datasets, **extra)
    assert in_driver(resolve_sources(cfg)[0], cfg)  # 133 rows x ~7 ms
    big = tmp_path / "big.csv"
    big.write_text("SMILES,logp\n" + "CCO,1.0\n" * 2000)  # 2,000 rows with descriptors: ~14 s, over the budget
    cfg = data_cfg(tmp_path, [{"name": "big", "path": str(big), "smiles_column": "SMILES", "tasks": [{"columns": ["logp"]}]}],
                   **extra)  # fmt: skip
    assert not in_driver(resolve_sources(cfg)[0], cfg)
    cfg = data_cfg(tmp_path, [{"name": "big", "path": str(big), "smiles_column": "SMILES", "tasks": [{"columns": ["logp"]}]}])
    assert in_driver(resolve_sources(cfg)[0], cfg)  # without descriptors: 2 s


@pytest.mark.parametrize("policy, expected", [("first", [1.0, 0.0, 7.0]), ("mean", [2.0, float("nan"), 7.0])])
def test_duplicates_merge_label_by_label_with_the_conflict_policy(ray_cluster, tmp_path, policy, expected):
    """Three rows of ethanol: labels missing in one row are taken from another, disagreements follow
    data.on_conflict (a label present only in the dropped duplicate used to be lost)."""
    path = tmp_path / "dups.csv"
    path.write_text("smiles,y,active,z\nCCO,1.0,0,\nOCC,3.0,1,\nC(O)C,,,7.0\nCCN,2.0,1,1.0\n")
    cfg = data_cfg(tmp_path, [{"name": "d", "path": str(path), "tasks": [{"columns": ["y", "z"]},
                                                                        {"columns": ["active"], "kind": "binary"}]}],
                   on_conflict=policy)  # fmt: skip
    m = prepare(cfg).manifest
    assert m.featurized == 2 and m.skipped["total"] == 0
    assert m.duplicates["duplicate_rows_merged"] == {"d": 2} and m.duplicates["conflicts"] == {"d": 2}
    feats = pq.read_table(m.skipped["report"].replace("skipped.csv", "featurized")).to_pydict()
    ethanol = dict(zip(feats["mol_key"], feats["y_graph"], strict=True))["CCO"]
    assert ethanol == pytest.approx([expected[0], expected[2], expected[1]], nan_ok=True)  # columns: y, z, active


def test_conflict_policy_error_stops_with_one_line(ray_cluster, tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text("smiles,y\nCCO,1.0\nOCC,3.0\n")
    with pytest.raises(ConfigError, match=r"1 conflicting duplicate labels .*conflicts.csv"):
        prepare(data_cfg(tmp_path, [{"name": "d", "path": str(path), "tasks": [{"columns": ["y"]}]}],
                         on_conflict="error"))  # fmt: skip


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
    assert changed.root != first.root and changed.manifest.molecules == 42


def test_split_file_assigns_rows(ray_cluster, tmp_path, zinc_trio):
    d, _ = zinc_trio
    split = tmp_path / "splits.csv"
    split.write_text("train,val,test\n0,10.0,20\n1,11.0,21\n2,,22\n3,,\n")
    cfg = data_cfg(tmp_path, [{"name": "a", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                               "split_file": str(split), "tasks": [{"columns": ["logp"]}]}])  # fmt: skip
    m = prepare(cfg).manifest
    assert m.splits == {"train": 4, "val": 2, "test": 3, "unassigned": 34}
    assert Manifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m  # plain JSON, read back the same


@pytest.mark.parametrize("body, rows", [("", 0), ("C1CC(,1\nXX,2\nCC CC,3\n", 3)], ids=["header_only", "all_invalid"])
def test_a_file_without_a_valid_molecule_ends_with_reports_and_one_line(ray_cluster, tmp_path, body, rows):
    path = tmp_path / "d.csv"
    path.write_text("smiles,y\n" + body)
    with pytest.raises(ConfigError) as info:
        prepare(data_cfg(tmp_path, [{"name": "d", "path": str(path), "tasks": [{"columns": ["y"]}]}]))
    message = str(info.value)
    assert "\n" not in message and f"no valid molecule in {path}: {rows} rows, {rows} skipped" in message
    report = message.rsplit("see ", 1)[1]
    with open(report) as fh:
        assert len(list(csv.DictReader(fh))) == rows  # every row is in skipped.csv with its reason
    assert (tmp_path / "cache").glob("*/manifest.json")


def test_a_bucket_merged_in_slices_gives_the_same_molecules(tmp_path, monkeypatch):
    """Large buckets are merged in hash slices (bounded memory); the molecules, merged labels,
    conflicts and skipped rows must be those of merging the whole bucket at once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graphium_ray.chem.graph import molecule_key, parse_smiles
    from graphium_ray.data import ingest
    from graphium_ray.data.builtin import REFERENCE_SMILES
    from graphium_ray.tasks import TaskSpec

    smiles = list(REFERENCE_SMILES[:30]) * 2 + ["CCO", "OCC"]  # every molecule twice; ethanol written two ways
    rng = np.random.default_rng(0)
    y = rng.normal(size=len(smiles)).astype(np.float32)
    y[30:40] = y[:10]  # agreeing duplicates; the other duplicates conflict
    keyed = tmp_path / "bucket"
    keyed.mkdir()
    for part in range(2):  # two files, as Ray Data writes them
        rows = range(part * len(smiles) // 2, (part + 1) * len(smiles) // 2)
        pq.write_table(pa.table({
            "dataset": ["d"] * len(rows), "src_file": [f"in-{part}.csv"] * len(rows), "src_row": list(rows),
            "smiles": [smiles[i] for i in rows], "atom_mapped": [False] * len(rows),
            "y_graph": pa.array([[float(y[i])] for i in rows], pa.list_(pa.float32())),
            "y_node": pa.array([[] for _ in rows], pa.list_(pa.float32())),
            "y_edge": pa.array([[] for _ in rows], pa.list_(pa.float32())),
            "file_split": pa.nulls(len(rows), pa.string()), "error": pa.nulls(len(rows), pa.string()),
            "mol_key": [molecule_key(parse_smiles(smiles[i])) for i in rows]}), keyed / f"part-{part}.parquet")  # fmt: skip
    layout = ingest.LabelLayout.from_tasks([TaskSpec("d", "y", "graph", "regression", "mse", ("mae",), True)])

    def merged(slice_rows: int, name: str) -> tuple[pa.Table, pa.Table]:
        monkeypatch.setattr(ingest, "MERGE_SLICE_ROWS", slice_rows)
        out = tmp_path / f"{name}.parquet"
        n = ingest.merge_bucket(keyed, out, tmp_path / f"skipped-{name}.parquet", layout, 0, (0.8, 0.1, 0.1))
        conflicts = pq.read_table(tmp_path / f"conflicts-{name}.parquet").sort_by("mol_key")
        table = pq.read_table(out)
        assert table.num_rows == n
        return table.sort_by("mol_key"), conflicts

    whole, whole_conflicts = merged(10_000, "whole")
    sliced, sliced_conflicts = merged(7, "sliced")  # 62 rows in 9 slices
    distinct = {molecule_key(parse_smiles(s)) for s in smiles}
    assert whole.num_rows == len(distinct)
    assert repr(whole.to_pylist()) == repr(sliced.to_pylist())  # repr: conflicting labels are NaN in both
    assert whole_conflicts.num_rows >= 15 and whole_conflicts.equals(sliced_conflicts)  # the 20 disagreeing pairs


def test_featurize_writes_one_file_per_row_group_and_redoes_only_an_incomplete_shard(ray_cluster, tmp_path, zinc_trio):
    """The featurize actors write their own files (no object-store write stage), one per molecule
    row group, named after it; a shard left incomplete (a file lost, a temporary file left by a
    killed actor) is redone on the next run, and the rewritten file is the same."""
    d, _ = zinc_trio
    datasets = [{"name": "logp", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES", "tasks": [{"columns": ["logp"]}]}]
    first = prepare(data_cfg(tmp_path, datasets, batch_rows=8))

    def files(prepared):
        return sorted(str(f.relative_to(prepared.featurized_dir)) for f in prepared.featurized_dir.rglob("*.parquet"))

    assert files(first) == ["shard=shard-00000/rg-00000.parquet", "shard=shard-00001/rg-00000.parquet"]
    for name in files(first):  # written 8 rows (batch_rows) at a time
        assert pq.ParquetFile(first.featurized_dir / name).metadata.num_row_groups > 1
    lost = first.featurized_dir / files(first)[0]
    table_before = pq.read_table(lost)
    lost.unlink()
    (lost.parent / ".rg-00001.parquet.tmp").write_bytes(b"half a file")
    (first.root / "manifest.json").unlink()  # an unfinished cache: prepare resumes it
    resumed = prepare(data_cfg(tmp_path, datasets, batch_rows=8))
    assert files(resumed) == files(first) and pq.read_table(lost).equals(table_before)
    assert not list(lost.parent.glob(".*.tmp")) and resumed.manifest.featurized == first.manifest.featurized


def test_a_prepare_waits_for_the_one_writing_the_same_cache_entry(ray_cluster, tmp_path, zinc_trio):
    """While another process holds the entry's lock, prepare writes nothing; once it is released, it builds."""
    import fcntl
    import threading

    from graphium_ray.data.cache import entry_root
    from graphium_ray.data.cache_lock import lock_path
    from graphium_ray.data.prepare import resolve_sources

    d, _ = zinc_trio
    cfg = data_cfg(tmp_path, [{"name": "logp", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                               "tasks": [{"columns": ["logp"]}]}])  # fmt: skip
    sources, tasks, fingerprints = resolve_sources(cfg)
    root = entry_root(cfg, fingerprints, tasks)
    root.parent.mkdir(parents=True)
    result = {}
    with open(lock_path(root), "a+") as held:  # another process's lock (a separate open file: flock conflicts)
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: result.update(prepared=prepare(cfg)))
        worker.start()
        worker.join(timeout=5)
        assert worker.is_alive() and not root.exists(), "prepare wrote the entry while another process held it"
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=120)
    assert not worker.is_alive() and result["prepared"].root == root and result["prepared"].manifest.molecules == 43


def test_two_prepares_of_the_same_data_at_once_both_get_one_complete_cache(ray_cluster, tmp_path, zinc_trio):
    """Two concurrent prepares (here two driver threads; two commands in practice) of the same data:
    without the lock both wrote the same files and one read the other's half-written Parquet."""
    from concurrent.futures import ThreadPoolExecutor

    d, _ = zinc_trio
    cfg = data_cfg(tmp_path, [{"name": lab, "path": str(d / f"tiny_{lab}.csv"), "smiles_column": "SMILES",
                               "tasks": [{"columns": [lab]}]} for lab in ("logp", "tpsa")])  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: prepare(cfg), range(2))
    assert first.root == second.root
    # one built the entry, the other reused it: the same manifest, timings included (two builds differ there)
    assert first.manifest.to_dict() == second.manifest.to_dict() and first.manifest.featurized == 43
    table = pq.read_table(first.featurized_dir)
    assert table.num_rows == 43 and len(set(table["mol_key"].to_pylist())) == 43


def test_a_cache_dir_that_cannot_be_written_is_one_line_naming_it(ray_cluster, tmp_path, zinc_trio):
    d, _ = zinc_trio
    (tmp_path / "a_file").write_text("not a directory")
    cfg = data_cfg(tmp_path, [{"name": "logp", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                               "tasks": [{"columns": ["logp"]}]}], cache_dir=str(tmp_path / "a_file" / "cache"))  # fmt: skip
    with pytest.raises(ConfigError, match=r"data.cache_dir .*a_file/cache: cannot write in .*Not a directory"):
        prepare(cfg)


def test_scaffold_split_through_prepare_and_only_when_the_cache_is_built(ray_cluster, tmp_path, zinc_trio, monkeypatch):
    """``split.kind: scaffold`` assigns every molecule its scaffold group's split (the same as
    :func:`scaffold_split` on the file's SMILES); reusing the cache does not parse the SMILES again
    (that is one driver process over the whole dataset: minutes at a million molecules)."""
    from rdkit import Chem

    import graphium_ray.data.scaffold as scaffold

    d, ref = zinc_trio
    real, calls = scaffold.scaffold_split, []
    monkeypatch.setattr(scaffold, "scaffold_split", lambda *args: calls.append(args) or real(*args))
    cfg = data_cfg(tmp_path, [{"name": "logp", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                               "tasks": [{"columns": ["logp"]}]}], split={"kind": "scaffold", "seed": 3})  # fmt: skip
    first = prepare(cfg)
    expected = real(ref["smiles"], 3, (0.8, 0.1, 0.1))
    table = pq.read_table(first.featurized_dir, columns=["mol_key", "split"]).to_pydict()
    got = dict(zip(table["mol_key"], table["split"], strict=True))
    assert len(got) == 43 and {s for s in got.values()} == {"train", "val", "test"}
    for row, smiles in enumerate(ref["smiles"]):
        assert got[Chem.MolToSmiles(Chem.MolFromSmiles(smiles))] == expected[row], smiles
    assert len(calls) == 1
    again = prepare(cfg)
    assert again.root == first.root and len(calls) == 1  # reused: no second scaffold split


def test_a_split_read_in_the_worker_is_the_streamed_split_row_for_row(ray_cluster, tmp_path, zinc_trio):
    """What a training worker reads from the cache's files itself (a split it keeps in memory) is
    what Ray Data streams for that split: the same rows, columns, values and order."""
    import ray

    from graphium_ray.data.reader import iter_split_tables, read_split, read_split_table

    d, _ = zinc_trio
    prepared = prepare(data_cfg(tmp_path, [{"name": "logp", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                                            "tasks": [{"columns": ["logp"]}]}], num_shards=3))  # fmt: skip
    context = ray.data.DataContext.get_current()
    order = context.execution_options.preserve_order
    context.execution_options.preserve_order = True  # as the training driver sets it
    try:
        for split, keep_key in (("train", False), ("val", False), ("test", True)):
            ours = read_split_table(prepared.featurized_dir, split, keep_key)
            streamed = pa.concat_tables(read_split(prepared.featurized_dir, split, keep_key)
                                        .iter_batches(batch_size=None, batch_format="pyarrow"))  # fmt: skip
            assert ours.num_rows == prepared.manifest.splits[split] > 0
            assert ours.column_names == streamed.column_names
            assert all(column.num_chunks == 1 for column in ours.columns)  # 3 files, read into one chunk each
            for name in ours.column_names:  # str(): NaN labels compare equal
                assert str(ours.column(name).to_pylist()) == str(streamed.column(name).to_pylist()), (split, name)
            # cut into batches as an evaluation pass reads them: the same batches as Ray Data's
            ray_batches = list(read_split(prepared.featurized_dir, split, keep_key)
                               .iter_batches(batch_size=4, batch_format="pyarrow"))  # fmt: skip
            our_batches = list(iter_split_tables(prepared.featurized_dir, split, keep_key, batch_rows=4))
            assert [b.num_rows for b in our_batches] == [b.num_rows for b in ray_batches]
            assert all(str(a.to_pylist()) == str(b.to_pylist()) for a, b in zip(our_batches, ray_batches, strict=True))
    finally:
        context.execution_options.preserve_order = order


def test_the_train_split_size_that_in_memory_mb_is_checked_against_is_its_size_in_memory(tmp_path, zinc_trio):
    """``train.in_memory_mb`` bounds what a worker keeps: the size it is compared with, estimated
    from the cache's Parquet footers, is the split's size as the Arrow table the worker reads (within
    10 %), not Parquet's encoded size (one-hot features shrink ~10x under dictionary encoding)."""
    from graphium_ray.data.reader import featurized_files, read_split_table
    from graphium_ray.train.driver import train_split_bytes

    d, _ = zinc_trio
    datasets = [{"name": lab, "path": str(d / f"tiny_{lab}.csv"), "smiles_column": "SMILES",
                 "tasks": [{"columns": [lab]}]} for lab in ("logp", "tpsa")]  # fmt: skip
    featurizer = {"positional_encodings": {"laplacian_k": 4, "random_walk_k": 8}}
    prepared = prepare(data_cfg(tmp_path, datasets, featurizer=featurizer))
    in_memory = read_split_table(prepared.featurized_dir, "train").nbytes
    assert 0.9 < train_split_bytes(prepared) / in_memory < 1.1
    encoded = sum(pq.read_metadata(f).row_group(i).total_byte_size for f in featurized_files(prepared.featurized_dir)
                  for i in range(pq.read_metadata(f).num_row_groups))  # fmt: skip
    assert encoded * prepared.manifest.splits["train"] / prepared.manifest.molecules < 0.5 * in_memory


def test_a_streamed_epoch_read_in_the_worker_has_every_row_once_in_a_seeded_order(tmp_path, zinc_trio):
    """A train split too large to keep is read by each worker from the cache's files every epoch
    (``shard_train: hash``): every usable row exactly once, in batches of the global batch size, the
    same order in every process for a seed, another order for another epoch."""
    from graphium_ray.data.reader import read_split_table, shuffled_split_tables

    d, _ = zinc_trio
    prepared = prepare(data_cfg(tmp_path, [{"name": "logp", "path": str(d / "tiny_logp.csv"), "smiles_column": "SMILES",
                                            "tasks": [{"columns": ["logp"]}]}], num_shards=3))  # fmt: skip
    whole = read_split_table(prepared.featurized_dir, "train")
    by_key = {row["part"]: row for row in whole.to_pylist()}
    assert len(by_key) == whole.num_rows > 10  # the hash column identifies a row here

    def epoch(seed, buffer_rows=8):
        return list(shuffled_split_tables(prepared.featurized_dir, "train", batch_rows=4, seed=seed, buffer_rows=buffer_rows))

    first = epoch([0, 0])
    assert [b.num_rows for b in first[:-1]] == [4] * (len(first) - 1) and 1 <= first[-1].num_rows <= 4
    rows = [row for b in first for row in b.to_pylist()]
    assert sorted(r["part"] for r in rows) == sorted(by_key)  # every row once
    assert all(str(r) == str(by_key[r["part"]]) for r in rows)  # with all its values (str: NaN == NaN)
    assert first[0].column_names == whole.column_names
    keys = [r["part"] for r in rows]
    assert keys == [r["part"] for b in epoch([0, 0]) for r in b.to_pylist()]  # reproducible
    assert keys != [r["part"] for b in epoch([0, 1]) for r in b.to_pylist()]  # the next epoch: another order
    assert keys != whole.column("part").to_pylist()  # shuffled, not the cache's order
    one_buffer = [r["part"] for b in epoch([0, 0], buffer_rows=10**6) for r in b.to_pylist()]
    assert sorted(one_buffer) == sorted(keys)  # the whole split in one buffer: the same rows

    # a cache file damaged after `prepare` (truncated here): an error naming it, from either reader
    from graphium_ray.data.reader import CacheFileError, featurized_files, iter_split_tables

    damaged = Path(featurized_files(prepared.featurized_dir)[1])
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    for read in (lambda: epoch([0, 0]), lambda: list(iter_split_tables(prepared.featurized_dir, "val"))):
        with pytest.raises(CacheFileError, match=rf"{damaged.name}: unreadable featurized cache file .*--force"):
            read()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_row_ranges_of_a_source_file_read_every_row_once(tmp_path, fmt):
    """Ingest units share a source file by row ranges: ranges that tile the file give back every row
    once, with its own row number, whatever the batch, block (CSV: > 1 MiB, several blocks) and row
    group (Parquet: 5,000 rows) boundaries; ranges past the end give nothing."""
    from graphium_ray.data.in_driver import rows_of
    from graphium_ray.data.ingest import ingest_units
    from graphium_ray.data.sources import iter_batches

    n = 120_000
    table = pa.table({"smiles": [f"C{'C' * (i % 7)}O" for i in range(n)], "y": [str(i) for i in range(n)]})
    path = tmp_path / f"rows.{fmt}"
    if fmt == "csv":
        pacsv.write_csv(table, path)
        assert path.stat().st_size > 1 << 20
    else:
        pq.write_table(table, path, row_group_size=5_000)
    assert rows_of(str(path), fmt, "smiles") == n
    for per_unit in (7_777, 50_000, n):
        units = ingest_units([n], per_unit)
        got = []
        for u in units:
            for first, batch in iter_batches(str(path), fmt, ["y"], 3_000, range(u.first_row, u.first_row + u.num_rows)):
                values = [int(v) for v in batch.column("y").to_pylist()]
                assert values == list(range(first, first + batch.num_rows))  # each row keeps its number
                got += values
        assert got == list(range(n))
    assert list(iter_batches(str(path), fmt, ["y"], 3_000, range(n, n + 10))) == []
    spans = [(u.unit, u.source, u.first_row, u.num_rows) for u in ingest_units([5, 0, 3], 2)]
    assert spans == [(0, 0, 0, 2), (1, 0, 2, 2), (2, 0, 4, 1), (3, 2, 0, 2), (4, 2, 2, 1)]  # an empty file: no unit


def test_a_malformed_csv_row_past_the_header_is_one_error_naming_file_and_row(tmp_path):
    from graphium_ray.data.sources import iter_batches

    lines = ["smiles,y", *[f"C{'C' * (i % 7)}O,{i}" for i in range(120_000)]]
    lines[100_001] = "CCO,1,2"  # the 100,001st data row has a field too many
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=rf"{path}: not a readable csv file \(CSV parse error: Row #100002: Expected 2"):
        list(iter_batches(str(path), "csv", ["smiles"], 4096))
