"""``graphium-ray sweep``: Ray Tune over Ray Train trials (the Train V2 pattern).

Each trial is a driver function that builds and fits a Ray Train trainer
(``train/driver.py:build_trainer``) and forwards its reports to Tune with ``TuneReportCallback``. The data are prepared once, before the sweep; every trial
reads the same cache. The objective is a validation metric (see ``sweep_config``). Results:
``trials.csv`` / ``trials.parquet`` (one row per trial: parameters and last metrics),
``best_params.json`` and ``best_config.yaml`` in the sweep directory. Rerunning the same command
resumes an interrupted sweep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from ray import tune

from graphium_ray.config import apply_overrides, validate
from graphium_ray.data.cache import PreparedData
from graphium_ray.data.prepare import prepare
from graphium_ray.tune.release import release_job_placement_groups
from graphium_ray.tune.sweep_config import SweepConfig, load_sweep

TUNE_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"
TRIAL_DRIVER_CPUS = 0.01  # the trial only drives a Ray Train trainer, whose workers reserve their own CPUs


def _space(sweep: SweepConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, d in sweep.search_space.items():
        if d.type == "loguniform":
            out[key] = tune.loguniform(d.low, d.high)
        elif d.type == "uniform":
            out[key] = tune.uniform(d.low, d.high)
        elif d.type == "randint":
            out[key] = tune.randint(int(d.low), int(d.high) + 1)
        elif d.type == "grid":
            out[key] = tune.grid_search(d.values)
        else:
            out[key] = tune.choice(d.values)
    return out


def _search_alg(sweep: SweepConfig):
    if sweep.search.algorithm != "optuna":
        return None  # Tune's basic variant generator: random sampling / grid
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(seed=sweep.search.seed)


def _scheduler(sweep: SweepConfig, max_epochs: int):
    if sweep.scheduler.type == "fifo":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", max_t=max_epochs, grace_period=sweep.scheduler.grace_period,
                         reduction_factor=sweep.scheduler.reduction_factor)  # fmt: skip


def params_as_overrides(params: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in params.items()]


def make_trial(base_raw: dict, prepared_root: str, trials_dir: str):
    """The Tune trainable: one Ray Train run with the sampled parameters."""

    def trial(params: dict[str, Any]) -> None:
        from ray.tune.integration.ray_train import TuneReportCallback

        from graphium_ray.train.driver import build_trainer

        cfg = validate(apply_overrides(base_raw, params_as_overrides(params)), "sweep trial")
        run_dir = Path(trials_dir) / tune.get_context().get_trial_id()
        run_dir.mkdir(parents=True, exist_ok=True)
        trainer = build_trainer(cfg, PreparedData.load(prepared_root), run_dir, callbacks=[TuneReportCallback()])
        trainer.fit()

    return trial


def run_sweep(path: str | Path, output_dir: str | Path) -> dict[str, Any]:
    sweep, base_raw, base = load_sweep(path)
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    prepared = prepare(base.data)
    trainable = tune.with_resources(
        make_trial(base_raw, str(prepared.root), str(out / "trials")), {"CPU": TRIAL_DRIVER_CPUS}
    )
    experiment = out / sweep.name
    if tune.Tuner.can_restore(str(experiment)):
        tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=_space(sweep),
            tune_config=tune.TuneConfig(
                metric=sweep.metric, mode=sweep.mode, num_samples=sweep.num_samples,
                max_concurrent_trials=sweep.max_concurrent_trials, search_alg=_search_alg(sweep),
                scheduler=_scheduler(sweep, base.train.epochs),
            ),
            run_config=tune.RunConfig(name=sweep.name, storage_path=str(out)),
        )  # fmt: skip
    try:
        with interrupt_watch() as interrupted:
            results = tuner.fit()
    except BaseException:  # a second Ctrl-C makes fit() raise instead of returning early
        release_job_placement_groups()
        raise
    if interrupted.is_set() or results.num_terminated + results.num_errors < sweep.num_samples:
        # Ctrl-C: Tune saved its state and returned early; the CLI says "rerun the same command"
        release_job_placement_groups()  # a running cluster gets every CPU of the stopped trials back
        raise KeyboardInterrupt(f"sweep interrupted after {results.num_terminated} of {sweep.num_samples} trials")
    return write_results(results, sweep, base_raw, out, str(path))


@contextlib.contextmanager
def interrupt_watch() -> Iterator[threading.Event]:
    """Know whether Ctrl-C stopped ``Tuner.fit()``. Tune's own SIGINT handler stops the sweep and
    returns normally, and the trials it stopped then read as terminated, so with every trial running
    at once an interrupted sweep looked finished (and its partial results were written as the
    sweep's). Here SIGINT sets the event and asks Tune to stop through SIGUSR1, which Tune handles
    as it does SIGINT; a second Ctrl-C raises ``KeyboardInterrupt`` at once."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield interrupted  # signals can only be caught on the main thread
        return

    def on_sigint(signum, frame):
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        os.kill(os.getpid(), signal.SIGUSR1)

    previous_handler, previous_env = signal.signal(signal.SIGINT, on_sigint), os.environ.get(TUNE_SIGINT_ENV)
    os.environ[TUNE_SIGINT_ENV] = "1"  # Tune leaves SIGINT to on_sigint and keeps its SIGUSR1 handler
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        if previous_env is None:
            os.environ.pop(TUNE_SIGINT_ENV, None)
        else:
            os.environ[TUNE_SIGINT_ENV] = previous_env


def write_results(results, sweep: SweepConfig, base_raw: dict, out: Path, source: str) -> dict[str, Any]:
    frame = results.get_dataframe()
    keep = [c for c in frame.columns if c.startswith("config/") or c.startswith("val/") or c in
            ("trial_id", "training_iteration", "train_loss", "epoch", "time_total_s")]  # fmt: skip
    table = frame[keep].sort_values(sweep.metric, ascending=sweep.mode == "min")
    table.to_csv(out / "trials.csv", index=False)
    table.to_parquet(out / "trials.parquet", index=False)
    best = results.get_best_result(metric=sweep.metric, mode=sweep.mode)
    params = {k: best.config[k] for k in sweep.search_space}
    best_raw = apply_overrides(base_raw, params_as_overrides(params))
    tuned = validate(best_raw, "best sweep config").model
    fixed = {"overrides": list(sweep.overrides), "proxy_overrides": list(sweep.proxy_overrides),
             "parametrization": tuned.parametrization,
             "width": tuned.hidden_dim, "base_hidden_dim": tuned.base_hidden_dim}  # fmt: skip
    summary = {"sweep": source, "metric": sweep.metric, "mode": sweep.mode, "value": best.metrics[sweep.metric],
               "params": params, "fixed": fixed, "trials": len(frame)}  # fmt: skip
    (out / "best_params.json").write_text(json.dumps(summary, indent=2, default=float))
    header = f"# best of sweep {source} on {sweep.metric} ({sweep.mode}) = {best.metrics[sweep.metric]:.6g}\n"
    (out / "best_config.yaml").write_text(header + yaml.safe_dump(best_raw, sort_keys=False))
    return summary
