"""Integration: prepare + a 2-worker Ray Train run on ~200 real QM9 molecules, then evaluate."""

from __future__ import annotations

import contextlib
import io
import json

import pyarrow.parquet as pq
import pytest
import yaml

from graphium_ray.cli import main
from tests.conftest import SECRET


def test_two_worker_training_writes_a_complete_run_directory(trained_run):
    run, out = trained_run
    assert "qm9/gap" in out and "desc/has_ring" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) == {"qm9/gap", "qm9/homo", "desc/logp", "desc/has_ring"}
    assert len(metrics["history"]) == 2 and metrics["summary"]["epochs"] == 2
    assert metrics["summary"]["device_per_worker"] == ["cpu", "cpu"]  # what each of the 2 workers trained on
    marks = metrics["summary"]["startup_unix"]  # the loop's imports started with the worker process (warm_imports.py)
    assert marks["worker_process_start"] - 1 <= marks["worker_warm_imports_started"] <= marks["worker_loop_entered"]
    # every usable val molecule with a gap label was evaluated exactly once, across both workers
    splits = pq.read_table(run / "splits").to_pandas()
    gap = metrics["val"]["qm9/gap"]
    assert 0 < gap["mae"] < 1.0  # Hartree: the gap spans ~0.1-0.6 Ha, so a real-unit MAE is well below 1
    assert (run / "checkpoint" / "model.pt").is_file() and (run / "config.yaml").is_file()
    assert set(splits["split"]) <= {"train", "val", "test"}


def test_val_rows_are_counted_exactly(small_mix, trained_run):
    """The round-robin-by-hash evaluation covers the split exactly once (no loss, no duplicates)."""
    d, _ = small_mix
    run = json.loads((d / "run" / "metrics.json").read_text())
    manifest_path = next((d / "cache").glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    feats = pq.read_table(manifest_path.parent / "featurized").to_pandas()
    val = feats[(feats["split"] == "val") & feats["skip_reason"].isna()]
    gap_present = sum(1 for y in val["y_graph"] if y[0] == y[0])
    assert run["val"]["qm9/gap"]["n"] == gap_present
    assert manifest["splits"]["val"] == len(val)


def test_evaluate_command_reproduces_test_metrics(ray_cluster, small_mix, trained_run, capsys):
    d, cfg_path = small_mix
    run = d / "run"
    assert main(["evaluate", str(cfg_path), "--checkpoint", str(run / "checkpoint"), "--split", "test",
                 "--output", str(run)]) == 0  # fmt: skip
    ours = json.loads((run / "evaluate_test.json").read_text())["test"]
    trained = json.loads((run / "metrics.json").read_text())["test"]
    assert ours["qm9/gap"]["mae"] == pytest.approx(trained["qm9/gap"]["mae"], rel=1e-4)
    assert ours["desc/has_ring"]["n"] == trained["desc/has_ring"]["n"]
    # that small cache was read in this process; a large one is streamed by Ray Data: the same metrics
    import graphium_ray.data.in_driver as in_driver
    from graphium_ray.data.cache import PreparedData
    from graphium_ray.train.evaluate_checkpoint import evaluate_checkpoint

    prepared = PreparedData.load(next((d / "cache").glob("*/manifest.json")).parent)
    limit, in_driver.CACHE_IN_DRIVER_BYTES = in_driver.CACHE_IN_DRIVER_BYTES, 0
    try:
        streamed = evaluate_checkpoint(run / "checkpoint", prepared, "test")
    finally:
        in_driver.CACHE_IN_DRIVER_BYTES = limit
    assert json.dumps(streamed, sort_keys=True) == json.dumps(ours, sort_keys=True)


def test_bad_config_value_fails_before_any_work(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"datasets": [{"name": "a", "path": "x.csv", "tasks": [{"columns": ["y"]}]}]},
                                   "train": {"lr": -1}}))  # fmt: skip
    assert main(["train", str(cfg), "--output", str(tmp_path / "r")]) == 2
    assert "train.lr" in capsys.readouterr().err


def test_unwritable_output_fails_fast(tmp_path, small_mix, capsys):
    _, cfg_path = small_mix
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    target = locked / "run"
    import os

    if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a regular file instead
        (tmp_path / "file").write_text("")
        target = tmp_path / "file" / "run"
    assert main(["train", str(cfg_path), "--output", str(target)]) == 2
    assert "not writable" in capsys.readouterr().err


def test_no_secret_from_the_environment_lands_in_the_run_directory(small_mix, trained_run):
    d, _ = small_mix
    files = [p for p in (d / "run").rglob("*") if p.is_file()]
    assert len(files) > 5
    assert not [p for p in files if SECRET.encode() in p.read_bytes()]


def test_run_directory_shows_epochs_selection_and_test_predictions(small_mix, trained_run):
    """epochs.csv and the learning curve for every epoch; the test split was scored once with the
    selected epoch's weights, and test_predictions.parquet holds those predictions in real units."""
    import numpy as np
    import pandas as pd

    run, out = trained_run
    metrics = json.loads((run / "metrics.json").read_text())
    selection = metrics["selection"]
    assert selection["metric"] == "val/loss" and 1 <= selection["epoch"] <= 2
    chosen = metrics["history"][selection["epoch"] - 1]
    assert metrics["val"] == chosen["val"] and selection["value"] == chosen["val_loss"]
    assert selection["value"] == min(h["val_loss"] for h in metrics["history"])
    epochs = pd.read_csv(run / "epochs.csv")
    assert list(epochs["epoch"]) == [1, 2] and {"train_loss", "val_loss", "lr", "val/qm9/gap/mae"} <= set(epochs)
    assert list(epochs["selected"]) == [e == selection["epoch"] for e in (1, 2)]
    assert (run / "learning_curve.png").stat().st_size > 10_000
    preds = pd.read_parquet(run / "test_predictions.parquet")
    gap = preds.dropna(subset=["label/qm9/gap"])
    assert len(gap) == metrics["test"]["qm9/gap"]["n"]
    mae = float(np.mean(np.abs(gap["pred/qm9/gap"] - gap["label/qm9/gap"])))
    assert mae == pytest.approx(metrics["test"]["qm9/gap"]["mae"], rel=1e-5)  # Hartree, like the labels
    ring = preds.dropna(subset=["label/desc/has_ring"])["pred/desc/has_ring"]
    assert ((ring > 0) & (ring < 1)).all()  # binary: a probability
    assert "selected epoch" in out and "Reporting training result" not in out


def test_local_cluster_starts_without_the_dashboard_when_ray_is_minimal(monkeypatch, caplog):
    """A minimal Ray (``ray[train]`` without ``[default]``, as in many GPU images) cannot start the
    dashboard: the local cluster then starts without it and says why, instead of ray.init failing."""
    import graphium_ray.cli as cli

    assert cli.local_cluster_options(2)["include_dashboard"] is True  # this environment has ray[default]
    monkeypatch.setattr(cli, "DASHBOARD_MODULES", ("aiohttp", "no_such_dashboard_dependency"))
    with caplog.at_level("WARNING", logger="graphium_ray"):
        options = cli.local_cluster_options(2)
    assert options == {"num_cpus": 2, "include_dashboard": False}
    assert "no_such_dashboard_dependency not installed" in caplog.text and "ray[default]" in caplog.text


def test_ray_data_sharded_training_scores_every_molecule_once(ray_cluster, small_mix, trained_run, tmp_path):
    """``shard_train: ray``: the train split reaches the 2 workers through Ray Data's streaming_split
    (each row read by one worker); validation and test are still read whole and dealt by key hash, so
    every molecule is scored once, as in the default run on the same cache."""
    d, cfg_path = small_mix
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(cfg_path), "--output", str(tmp_path / "run"),
                     "--set", "train.shard_train=ray", "--set", "train.epochs=1"]) == 0  # fmt: skip
    ours = json.loads((tmp_path / "run" / "metrics.json").read_text())
    default = json.loads((trained_run[0] / "metrics.json").read_text())
    for split in ("val", "test"):
        for task, values in default[split].items():
            assert ours[split][task]["n"] == values["n"] > 0, (split, task)


def test_warm_imports_go_to_runs_of_several_workers_only(ray_cluster, monkeypatch):
    """Measured (BENCHMARKS.md §5): the import thread helps 2 workers, whose set-up waits on each
    other, and slows a single worker down; a user can turn it off."""
    from graphium_ray.train import warm_imports
    from graphium_ray.train.driver import warm_imports_env

    assert warm_imports_env(1) == {}
    assert list(warm_imports_env(2)["env_vars"].values()) == [warm_imports.HOOK]
    monkeypatch.setenv("GRAPHIUM_RAY_WARM_IMPORTS", "0")
    assert warm_imports_env(2) == {}


def test_driver_and_controller_side_do_not_import_torch():
    """Start-up (BENCHMARKS.md §5): the driver, and Ray Train's controller, which unpickles the
    backend config and the train function, never load torch (~1.3 s of CPU each); only the workers do."""
    import subprocess
    import sys

    code = ("import sys, pickle; import graphium_ray.cli, graphium_ray.train.driver as d; "
            "from graphium_ray.train.process_group import TorchProcessGroupConfig as C; "
            "pickle.loads(pickle.dumps((C(), d.train_loop_per_worker))); "
            "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')][:3]")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
