"""Multi-level inputs on a real Ray cluster: wrong-length per-atom labels, HTTP sources, QM9 charges."""

from __future__ import annotations

import csv
import functools
import http.server
import threading

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from graphium_ray.config import validate
from graphium_ray.data.builtin import build_qm9_charges, qm9_charge_row
from graphium_ray.data.prepare import prepare


def test_wrong_length_node_labels_are_reported_never_truncated(ray_cluster, tmp_path):
    path = tmp_path / "atoms.csv"
    pacsv.write_csv(pa.table({"smiles": ["CCO", "CCN", "c1ccccc1"],
                              "q": ["[0.1, 0.2, 0.3]", "[0.1, 0.2]", "[1, 2, 3, 4, 5, 6]"]}), path)  # fmt: skip
    cfg = validate({"data": {"cache_dir": str(tmp_path / "c"), "num_shards": 1, "datasets": [
        {"name": "atoms", "path": str(path), "tasks": [{"columns": ["q"], "level": "node"}]}]}})  # fmt: skip
    prepared = prepare(cfg.data)
    with open(prepared.manifest.skipped["report"]) as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["src_row"] == "1" and row["stage"] == "featurize"
    assert "2 entries but the molecule has 3 atoms" in row["reason"]
    feats = pq.read_table(prepared.featurized_dir).to_pandas().set_index("mol_key")
    assert list(feats.loc["c1ccccc1", "y_node"]) == [1, 2, 3, 4, 5, 6]


@pytest.fixture
def loopback_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_source_is_downloaded_once_into_the_cache(ray_cluster, tmp_path, loopback_server):
    served, url = loopback_server
    pacsv.write_csv(pa.table({"smiles": ["CCO", "CCC", "c1ccccc1"], "y": [1.0, 2.0, 3.0]}), served / "remote.csv")
    cfg = validate({"data": {"cache_dir": str(tmp_path / "c"), "num_shards": 1, "datasets": [
        {"name": "remote", "path": f"{url}/remote.csv", "tasks": [{"columns": ["y"]}]}]}})  # fmt: skip
    m = prepare(cfg.data).manifest
    assert m.rows_in == {"remote": 3} and m.featurized == 3
    downloads = list((tmp_path / "c" / "downloads").rglob("remote.csv"))
    assert len(downloads) == 1 and downloads[0].read_bytes() == (served / "remote.csv").read_bytes()


def test_qm9_charges_rows_are_mapped_or_reported(tmp_path):
    path = build_qm9_charges(tmp_path, 120)
    kept = pq.read_table(path).to_pylist()
    skipped = pacsv.read_csv(tmp_path / "qm9_mulliken_skipped.csv").to_pylist()
    assert len(kept) + len(skipped) == 120 and len(kept) > 90
    methane = kept[0]
    assert methane["smiles"] == "[C:1]([H:2])([H:3])([H:4])[H:5]"
    assert methane["charges"] == pytest.approx([-0.535689, 0.133921, 0.133922, 0.133923, 0.133923])
    assert abs(sum(methane["charges"])) < 1e-3  # a neutral molecule's Mulliken charges sum to ~0
    row, reason = qm9_charge_row("C", "['C','H']", "[[0,0,0],[1,0,0]]", "[-7.E-6,1,0.5]")
    assert row is None and reason == "2 elements, 2 coordinates, 3 charges"
