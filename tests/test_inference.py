"""predict / fingerprint: Ray Data batch inference from a trained checkpoint over several input
shards, invalid SMILES kept as rows with a reason, values checked against the model run in-process."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch

from graphium_ray.checkpoints import load_checkpoint
from graphium_ray.cli import main
from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import REFERENCE_SMILES
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch

INVALID = {"C1CC": "unparsable", "not_a_smiles": "unparsable", "": "empty", "c1ccccc1X": "unparsable"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two shards: a CSV with IDs and invalid rows mixed in, and a Parquet file."""
    d = tmp_path_factory.mktemp("predict_in")
    first = REFERENCE_SMILES[:12] + list(INVALID)
    pacsv.write_csv(pa.table({"id": [f"m{i}" for i in range(len(first))], "smiles": first}), d / "a.csv")
    second = REFERENCE_SMILES[12:30]
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(len(second))], "smiles": second}), d / "b.parquet")
    return d, first, second


def _in_process(checkpoint, smiles: list[str]):
    """Head outputs and graph embeddings of the checkpoint's model, run directly on a batch."""
    cfg, data, model, _ = load_checkpoint(checkpoint)
    feats = featurize_smiles(smiles, np.zeros((len(smiles), 0)), FeaturizerConfig.model_validate(data.featurizer))
    batch = rows_to_batch(feats, {"graph": 0, "node": 0, "edge": 0}, data.bond_dim)
    model.eval()
    with torch.no_grad():
        return model(batch)["graph"].numpy(), model.embed(batch), data, model, batch


def test_predict_writes_one_row_per_input_in_real_units(ray_cluster, trained_run, inputs, tmp_path):
    run, _ = trained_run
    d, first, second = inputs
    out = tmp_path / "pred.parquet"
    args = ["predict", str(run / "checkpoint"), str(d / "a.csv"), str(d / "b.parquet"), "--output", str(out),
            "--keep-column", "id", "--batch-size", "8"]  # fmt: skip
    assert main(args) == 0
    table = pq.read_table(out).to_pandas()
    assert len(table) == len(first) + len(second)  # nothing dropped
    assert list(table["smiles"]) == first + second  # input order
    assert list(table["src_row"][: len(first)]) == list(range(len(first)))
    bad = table[table["smiles"].isin(list(INVALID))]
    assert bad["error"].notna().all() and bad["qm9/gap"].isna().all()
    assert all(("empty" in e) or ("SMILES" in e) for e in bad["error"])
    good = table[table["error"].isna()]
    assert len(good) == 30 and good["qm9/gap"].notna().all()
    raw, _, data, _, _ = _in_process(run / "checkpoint", list(good["smiles"]))
    stats = data.label_stats["graph"]
    np.testing.assert_allclose(good["qm9/gap"], raw[:, 0] * stats["std"][0] + stats["mean"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(good["desc/logp"], raw[:, 2] * stats["std"][2] + stats["mean"][2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(good["desc/has_ring"], 1 / (1 + np.exp(-raw[:, 3])), rtol=1e-5, atol=1e-6)
    assert set(good["id"]) == {f"m{i}" for i in range(12)} | {f"p{i}" for i in range(18)}


@pytest.mark.parametrize("layer", ["graph", "layer_0"])
def test_fingerprint_matches_the_models_embedding(ray_cluster, trained_run, inputs, tmp_path, layer):
    run, _ = trained_run
    d, first, _ = inputs
    out = tmp_path / "fp"  # a directory of shards
    assert main(["fingerprint", str(run / "checkpoint"), str(d / "a.csv"), "--output", str(out), "--layer", layer]) == 0
    table = pq.read_table(out).to_pandas().sort_values("src_row")
    assert len(table) == len(first)
    good = table[table["error"].isna()]
    _, emb, _, model, batch = _in_process(run / "checkpoint", list(good["smiles"]))
    expected = emb["graph"] if layer == "graph" else model.pooling(emb[layer], batch.batch, batch.num_graphs)
    got = np.stack(good["embedding"].to_list())
    assert got.shape == (len(good), 64)  # hidden 32 × (sum, mean) pooling
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert table[table["error"].notna()]["embedding"].isna().all()


@pytest.mark.parametrize("mode", ["predict", "embed"])
def test_a_small_input_in_the_driver_gives_what_the_cluster_gives(ray_cluster, trained_run, inputs, tmp_path, mode):
    """The CLI predicts the fixtures above in its own process (a small input), to one output file and
    to a directory of shards; Ray Data's actor pool gives the same table (written as one file for
    predict, as a directory of shards for embed: one cluster run per mode)."""
    from graphium_ray.inference.pipeline import run_inference

    run, _ = trained_run
    d, first, second = inputs
    shards = [str(d / "a.csv"), str(d / "b.parquet")]
    cluster_output = "cluster.parquet" if mode == "predict" else "cluster_dir"
    results, threads = {}, torch.get_num_threads()
    for where, output in (("auto", "auto.parquet"), ("auto", "auto_dir"), ("cluster", cluster_output)):
        summary = run_inference(str(run / "checkpoint"), shards, str(tmp_path / output), keep_columns=("id",),
                                mode=mode, batch_size=8, where=where)  # fmt: skip
        assert summary["rows"] == len(first) + len(second) and summary["errors"] == len(INVALID)
        assert summary["where"] == ("driver" if where == "auto" else "cluster")
        results[output] = pq.read_table(tmp_path / output).sort_by([("src_file", "ascending"), ("src_row", "ascending")])
    assert torch.get_num_threads() == threads  # the driver's own setting, restored after the model ran with one
    for name in ("auto.parquet", "auto_dir"):
        assert results[name].to_pylist() == results[cluster_output].to_pylist(), name


def test_inference_input_errors_name_the_file_and_the_choice(ray_cluster, trained_run, inputs, tmp_path, capsys):
    run, _ = trained_run
    d, _, _ = inputs
    assert main(["predict", str(run / "checkpoint"), str(d / "a.csv"), "--smiles-column", "SMILES",
                 "--output", str(tmp_path / "x.parquet")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "a.csv" in err and "SMILES" in err
    assert main(["fingerprint", str(run / "checkpoint"), str(d / "a.csv"), "--output", str(tmp_path / "y"),
                 "--layer", "layer_9"]) == 2  # fmt: skip
    assert "layer_9" in capsys.readouterr().err
