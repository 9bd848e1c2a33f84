"""The training driver: builds a Ray Train V2 ``TorchTrainer`` over the prepared cache and writes
the run directory (``metrics.json``, ``config.yaml``, ``splits/``, ``checkpoint/``).

CPU budget: workers share the cluster's CPUs with the Ray Data tasks that read the cache, so each
worker asks for ``(CPUs - reserve) / num_workers`` (reserve: 1 CPU, or 10 % of a big cluster)
unless ``train.cpus_per_worker`` says otherwise. Computed from ``ray.cluster_resources()``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

import ray
import ray.train
from ray.train.torch import TorchTrainer

from graphium_ray.accelerators import worker_resources
from graphium_ray.config import ConfigError, RunConfig, dump_config
from graphium_ray.data.cache import PreparedData, write_json_atomic
from graphium_ray.data.reader import DATA_TASK_CPUS, read_split
from graphium_ray.train.loop import train_loop_per_worker


def build_trainer(
    cfg: RunConfig, prepared: PreparedData, output_dir: Path, callbacks: list | None = None,
    loop_extra: dict | None = None,
) -> TorchTrainer:
    """``loop_extra``: more train_loop_config entries (fine-tuning: the pretrained weights)."""
    if cfg.logging.wandb and importlib.util.find_spec("wandb") is None:
        raise ConfigError("logging.wandb=true needs wandb: pip install 'graphium-ray[wandb]'")
    resources, use_gpu, threads = worker_resources(cfg.train, ray.cluster_resources())
    feats = prepared.featurized_dir
    # train streams from the cache every epoch; val/test are read once into the object store
    # (which spills to disk when they are large) so that evaluating them costs no new Ray Data job
    datasets = {
        "train": read_split(feats, "train", shuffle_files=True),
        "val": read_split(feats, "val").materialize(),
        "test": read_split(feats, "test").materialize(),
    }
    data_info = {**prepared.manifest}
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "run": cfg.model_dump(mode="json"),
            "data": data_info,
            "threads": threads,
            "run_dir": str(output_dir.resolve()),
            **(loop_extra or {}),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.train.num_workers, use_gpu=use_gpu, resources_per_worker=resources
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
        run_config=ray.train.RunConfig(
            name="train",
            storage_path=cfg.train.storage_path or str((output_dir / "ray").resolve()),
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or None,
        ),
    )


def write_splits(prepared: PreparedData, output_dir: Path) -> None:
    """Save the split assignment of every usable molecule (mol_key, split) with the run."""
    out = output_dir / "splits"
    shutil.rmtree(out, ignore_errors=True)
    ds = ray.data.read_parquet(str(prepared.featurized_dir), columns=["mol_key", "split", "skip_reason"],
                               num_cpus=DATA_TASK_CPUS)  # fmt: skip
    ds = ds.filter(expr="split != 'unassigned'").select_columns(["mol_key", "split", "skip_reason"])
    ds.write_parquet(str(out), ray_remote_args={"num_cpus": DATA_TASK_CPUS})


def run_training(cfg: RunConfig, prepared: PreparedData, output_dir: str | Path, loop_extra: dict | None = None) -> dict:
    """Fit, then write the run directory; returns the metrics dict written to metrics.json."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(dump_config(cfg))
    started = time.time()
    result = build_trainer(cfg, prepared, output_dir, loop_extra=loop_extra).fit()
    if result.error is not None:
        raise result.error
    write_splits(prepared, output_dir)  # after training: one Ray Data job less before the first step
    ckpt_dir = output_dir / "checkpoint"
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    with result.checkpoint.as_directory() as d:
        shutil.copytree(d, ckpt_dir)
    state = json.loads((ckpt_dir / "state.json").read_text())
    metrics = {
        "val": state["history"][-1]["val"],
        "test": state["test"],
        "history": state["history"],
        "summary": {
            "wall_seconds": round(time.time() - started, 2),
            "train_wall_seconds": round(state.get("wall_seconds", 0.0), 2),
            "first_step_unix": state.get("first_step_unix"),
            "graphs_per_s": round(sum(h["graphs_per_s"] for h in state["history"]) / len(state["history"]), 1),
            "peak_rss_mb_per_worker": state.get("peak_rss_mb_per_worker"),
            "resumed_from_epoch": state.get("resumed_from_epoch"),
            "epochs": state["epoch"],
            "prepared_data": str(prepared.root),
            "skipped_molecules": prepared.manifest["skipped"]["total"],
        },
    }
    write_json_atomic(output_dir / "metrics.json", metrics)
    return metrics
