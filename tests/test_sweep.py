"""A real Ray Tune sweep (Optuna + ASHA, 2 concurrent trials, each a Ray Train run) on tiny data, the
validation-only rule, and µP transfer with --from-sweep."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from graphium_ray.cli import main
from graphium_ray.config import ConfigError
from graphium_ray.data.builtin import QM9_PROPERTIES, qm9_sample
from graphium_ray.tune.sweep_config import load_sweep
from tests.conftest import cpus_come_back, joined_cluster_env


@pytest.fixture(scope="module")
def sweep_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    table = qm9_sample(160, ["SMILES", *QM9_PROPERTIES]).rename_columns(["smiles", *QM9_PROPERTIES.values()])
    pq.write_table(table, d / "qm9.parquet")
    base = {"name": "tiny", "data": {"cache_dir": str(d / "cache"), "num_shards": 1, "datasets": [
                {"name": "qm9", "path": str(d / "qm9.parquet"), "tasks": [{"columns": ["gap"]}]}]},
            "model": {"hidden_dim": 16, "base_hidden_dim": 16, "num_layers": 1, "head_hidden_dim": 16,
                      "parametrization": "mup"},
            "train": {"epochs": 2, "batch_size": 32, "num_workers": 1, "cpus_per_worker": 0.4}}  # fmt: skip
    (d / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"name": "tiny_lr", "base": str(d / "base.yaml"),
             "search_space": {"train.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
             "search": {"algorithm": "optuna", "seed": 0},
             "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
             "num_samples": 2, "max_concurrent_trials": 2, "metric": "val/qm9/gap/mae", "mode": "min"}  # fmt: skip
    (d / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    return d


def test_test_split_objective_is_refused(sweep_files, tmp_path):
    raw = yaml.safe_load((sweep_files / "sweep.yaml").read_text())
    raw["metric"] = "test/qm9/gap/mae"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="validation split only"):
        load_sweep(tmp_path / "bad.yaml")


def test_a_sweep_file_error_names_the_key_like_a_run_config_error(sweep_files, tmp_path):
    raw = yaml.safe_load((sweep_files / "sweep.yaml").read_text())
    raw["scheduler"]["grace"] = 1
    raw["search"]["algorithm"] = "bayes"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_sweep(tmp_path / "bad.yaml")
    message = str(err.value)
    assert message.startswith(f"invalid sweep {tmp_path / 'bad.yaml'}:")
    assert "scheduler.grace: unknown key (valid keys: type, grace_period, reduction_factor)" in message
    assert "search.algorithm: must be one of 'optuna', 'random' or 'grid'; got 'bayes'" in message


def test_sweep_runs_two_concurrent_trials_and_writes_results(ray_cluster, sweep_files, capsys):
    out = sweep_files / "out"
    assert main(["sweep", str(sweep_files / "sweep.yaml"), "--output", str(out)]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and "config/train.lr" in trials and "val/qm9/gap/mae" in trials
    best = json.loads((out / "best_params.json").read_text())
    assert best["value"] == pytest.approx(trials["val/qm9/gap/mae"].min())
    best_cfg = yaml.safe_load((out / "best_config.yaml").read_text())
    assert best_cfg["train"]["lr"] == pytest.approx(best["params"]["train.lr"])


def test_interrupted_sweep_exits_non_zero_and_says_rerun(ray_cluster, sweep_files, tmp_path):
    """Ctrl-C (SIGINT) once the first trial runs: Tune saves its state and returns early; the CLI
    must not report success (it used to exit 0 and print Ray's `Tuner.restore(...)` hint). The
    command joins the session's running cluster (``RAY_ADDRESS``), as on a workstation or a Ray
    cluster: its trials end with its job, and every CPU they held is free again."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    env = joined_cluster_env(ray_cluster)
    proc = subprocess.Popen([sys.executable, "-m", "graphium_ray.cli", "sweep", str(sweep_files / "sweep.yaml"),
                             "--output", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 300
    while not list((out / "trials").glob("*/")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert any(ln.startswith("interrupted: rerun the same command") for ln in err.splitlines()), err[-2000:]
    assert not (out / "best_params.json").exists()
    assert cpus_come_back(ray_cluster), f"the interrupted sweep left CPUs reserved: {ray_cluster.available_resources()}"


def test_from_sweep_trains_a_wider_model_with_the_best_hyperparameters(ray_cluster, sweep_files):
    """A plain config (standard parametrization) + --from-sweep of a µP sweep + a 4x width: the run
    carries µP and the base width from the sweep and learns (its predictions are not a constant)."""
    out, run = sweep_files / "out", sweep_files / "wide"
    plain = yaml.safe_load((sweep_files / "base.yaml").read_text())
    plain["model"] = {"hidden_dim": 16, "num_layers": 1, "head_hidden_dim": 16}  # no µP here: the sweep brings it
    (sweep_files / "plain.yaml").write_text(yaml.safe_dump(plain))
    assert main(["train", str(sweep_files / "plain.yaml"), "--from-sweep", str(out), "--set", "model.hidden_dim=64",
                 "--set", "train.epochs=6", "--set", "train.batch_size=16", "--output", str(run)]) == 0  # fmt: skip
    used = yaml.safe_load((run / "config.yaml").read_text())
    best = json.loads((out / "best_params.json").read_text())
    assert used["train"]["lr"] == pytest.approx(best["params"]["train.lr"]) and used["model"]["hidden_dim"] == 64
    assert used["model"]["parametrization"] == "mup" and used["model"]["base_hidden_dim"] == 16
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    preds = pd.read_parquet(run / "test_predictions.parquet")
    assert preds["pred/qm9/gap"].std() > 0.1 * preds["label/qm9/gap"].std()  # not a constant predictor
    assert json.loads((run / "hyperparameters_from.json").read_text())["params"] == best["params"]
    assert (run / "checkpoint" / "mup_base_shapes.json").is_file()


def test_from_sweep_refuses_standard_parametrization_against_a_mup_sweep(ray_cluster, sweep_files, capsys):
    assert main(["train", str(sweep_files / "base.yaml"), "--from-sweep", str(sweep_files / "out"),
                 "--set", "model.parametrization=sp", "--output", str(sweep_files / "bad")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "parametrization=mup" in err and len(err.strip().splitlines()) == 1
