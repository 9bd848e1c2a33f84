"""The training driver: builds a Ray Train V2 data-parallel trainer over the prepared cache (torch's
process group: ``train/process_group.py``) and writes the run directory: ``metrics.json``
(validation metrics of the selected epoch, test metrics of the selected checkpoint, the history),
``epochs.csv``, ``learning_curve.png``, ``test_predictions.parquet``, ``config.yaml``, ``splits/``
and ``checkpoint/`` (the selected weights). With ``train.replicates: N`` it trains N seeds into ``replicate_<i>/`` and writes the
mean ± std per task at the top.

CPU budget: workers share the cluster's CPUs with the Ray Data tasks that read the cache, so each
worker asks for ``(CPUs - reserve) / num_workers`` (reserve: 1 CPU, or 10 % of a big cluster)
unless ``train.cpus_per_worker`` says otherwise. Computed from ``ray.cluster_resources()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import ray
import ray.train
from ray.data.context import DEFAULT_TARGET_MAX_BLOCK_SIZE
from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

from graphium_ray.config import ConfigError, RunConfig, dump_config, validate
from graphium_ray.data.cache import PreparedData, write_json_atomic
from graphium_ray.data.reader import arrow_bytes, cache_file_metadata, featurized_files, read_split
from graphium_ray.train.curves import write_curves
from graphium_ray.train.devices import worker_resources
from graphium_ray.train.entry import process_start_unix, train_loop_per_worker
from graphium_ray.train.process_group import TorchProcessGroupConfig
from graphium_ray.train.progress_setting import progress_wanted
from graphium_ray.train.replicates import summarize_replicates, write_ensemble
from graphium_ray.train.run_loggers import check_installed
from graphium_ray.train.selection import check_selectable

log = logging.getLogger(__name__)
MIN_STEPS_PER_EPOCH = 10


def check_run(cfg: RunConfig, prepared: PreparedData) -> None:
    """Everything that can be known wrong before any worker starts: a one-line error or a warning."""
    check_installed(cfg)
    check_selectable(cfg.train.select.metric, prepared.tasks)
    if cfg.train.precision == "16-mixed" and cfg.train.accelerator != "gpu":
        raise ConfigError("train.precision=16-mixed needs train.accelerator=gpu; on CPUs use bf16-mixed")
    train_rows = prepared.manifest.splits.get("train", 0)
    if train_rows == 0:
        raise ConfigError(f"the train split of {prepared.root} is empty")
    steps = math.ceil(train_rows / cfg.train.batch_size)
    if steps < MIN_STEPS_PER_EPOCH:
        log.warning("an epoch is only %d optimizer steps (%d train molecules / train.batch_size=%d, the global "
                    "batch): the model sees few updates; consider a smaller train.batch_size or more epochs",
                    steps, train_rows, cfg.train.batch_size)  # fmt: skip


def train_split_bytes(prepared: PreparedData) -> int:
    """Bytes the train rows take in a worker's memory as Arrow arrays, estimated from the cache's
    Parquet footers (no data read; :func:`~graphium_ray.data.reader.arrow_bytes`)."""
    total = sum(arrow_bytes(cache_file_metadata(f)) for f in featurized_files(prepared.featurized_dir))
    rows = prepared.manifest.splits
    return int(total * rows.get("train", 0) / max(sum(rows.values()), 1))


CONTROLLER_POLL_S = 0.2


def skip_preemption_watcher_on_one_node() -> None:
    """Ray Train starts a preemption-watcher actor per run (a new process: ~1.3 s of CPU on 2 cores,
    while the training worker starts) that watches the nodes for drain notices, logs them and marks
    the workers for ``ray.train.get_preemption_info``, which this loop does not read. On a one-node
    cluster a drained node takes the controller down with the workers, so it has nothing to watch
    for: turned off there (``RAY_TRAIN_ENABLE_PREEMPTION_WATCHER``; a user's value wins)."""
    if sum(1 for node in ray.nodes() if node["Alive"]) == 1:
        os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")


def train_ingest_options(cfg: RunConfig):
    """Ray Data options of the train split's reader: Ray Train's defaults (which carry this driver's
    ``preserve_order``) with the object store read-ahead capped at ``train.stream_buffer_mb``."""
    from ray.data import ExecutionResources

    options = ray.train.DataConfig.default_ingest_options()
    if cfg.train.stream_buffer_mb > 0:
        options.resource_limits = ExecutionResources.for_limits(object_store_memory=cfg.train.stream_buffer_mb * 2**20)
    return options


def warm_imports_env(num_workers: int) -> dict:
    """Training workers start importing the loop when their process starts (``train/warm_imports.py``),
    when there are several: their set-up waits on each other (the process group), and the imports
    fill that wait (2 workers on 2 cores: launch -> first step 14.0 s instead of 15.7). One worker's
    set-up hardly waits, and the import thread slowed it down instead (13.35 s vs 12.8 s; BENCHMARKS.md §5).

    Ray applies a ``worker_process_setup_hook`` given in a runtime env only at the job level (every
    worker of the job, Ray Data's included); for the training workers alone it is passed the way Ray
    itself hands a job's hook to its workers, as the variable a new worker process reads at start.
    A job that has a hook of its own keeps it; ``GRAPHIUM_RAY_WARM_IMPORTS=0`` turns this off."""
    from ray._private import ray_constants

    from graphium_ray.train import warm_imports

    if num_workers < 2 or os.environ.get("GRAPHIUM_RAY_WARM_IMPORTS", "1") == "0" or \
            os.environ.get(ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR) or \
            ray.get_runtime_context().runtime_env.get("worker_process_setup_hook"):  # fmt: skip
        return {}
    return {"env_vars": {ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR: warm_imports.HOOK}}


def ray_run_name(cfg: RunConfig, output_dir: Path) -> str:
    """Ray Train restores a run from ``storage_path/name``: "train" under the run directory's own
    ``ray/``; in a shared ``train.storage_path``, a name per run directory, so that two runs never
    resume each other."""
    if not cfg.train.storage_path:
        return "train"
    digest = hashlib.blake2b(str(output_dir.resolve()).encode(), digest_size=4).hexdigest()
    return f"{output_dir.name}-{digest}"


def build_trainer(
    cfg: RunConfig, prepared: PreparedData, output_dir: Path, callbacks: list | None = None,
    loop_extra: dict | None = None,
) -> DataParallelTrainer:
    """``loop_extra``: more train_loop_config entries (fine-tuning: the pretrained weights)."""
    check_run(cfg, prepared)
    # Ray Train V2's controller takes a worker's report only when it polls the workers, every
    # RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (default 2 s), and a worker's next report waits for that:
    # epochs shorter than the interval (the small datasets most users fine-tune on) were stretched
    # to 2 s each. Ray passes this variable from the driver to the controller. A user's value wins.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", str(CONTROLLER_POLL_S))
    skip_preemption_watcher_on_one_node()
    resources, use_gpu, threads = worker_resources(cfg.train, ray.cluster_resources())
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the same data order every run
    # memory for speed (BENCHMARKS.md §3); set every time: the context outlives a run in this process
    block_mb = cfg.train.stream_block_mb
    context.target_max_block_size = int(block_mb * 2**20) if block_mb is not None else DEFAULT_TARGET_MAX_BLOCK_SIZE
    feats = prepared.featurized_dir
    # Every worker reads the val and test splits from the cache's files itself (val collated once and
    # kept when it fits train.in_memory_mb, else read again at every validation pass; test once, at
    # the end), and so the train split with shard_train: hash, kept in memory when it fits, else read
    # again every epoch in a seeded order. Only shard_train: ray's train split goes through Ray Data
    # (streaming_split: each row read by one worker). Reading the files in the worker instead of a
    # Ray Data shard: one streamed epoch over 194k MOSES molecules peaked at 3.4 GB through Ray Data
    # (the worker mapping 0.4 GB of object-store blocks, reading processes 0.5 GB, the executor's
    # scheduling loop on the worker's GIL), BENCHMARKS.md §3.
    train_bytes = train_split_bytes(prepared)  # the cache's Parquet metadata, read once
    by_ray_data = cfg.train.shard_train == "ray"
    datasets = {"train": read_split(feats, "train")} if by_ray_data else {}
    # torch's process group set up as TorchTrainer does, without torch in this process or the
    # controller (train/process_group.py)
    return DataParallelTrainer(
        train_loop_per_worker,
        backend_config=TorchProcessGroupConfig(),
        train_loop_config={
            "run": cfg.model_dump(mode="json"),
            "data": prepared.manifest.to_dict(),
            "train_bytes": train_bytes,
            "featurized_dir": str(feats.resolve()),
            "threads": threads,
            "run_dir": str(output_dir.resolve()),
            "progress_bar": progress_wanted(),
            **(loop_extra or {}),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.train.num_workers, use_gpu=use_gpu, resources_per_worker=resources
        ),
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"] if by_ray_data else [],
                                            execution_options={"train": train_ingest_options(cfg)} if by_ray_data else None),
        run_config=ray.train.RunConfig(
            name=ray_run_name(cfg, output_dir),
            storage_path=cfg.train.storage_path or str((output_dir / "ray").resolve()),
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or None,
            worker_runtime_env=warm_imports_env(cfg.train.num_workers),
        ),
    )


def write_splits(prepared: PreparedData, output_dir: Path) -> None:
    """Save the split assignment of every usable molecule (mol_key, split) with the run: one file
    per cache file, three columns read at a time (bounded memory at any size). Read here rather
    than by a Ray Data job, whose start-up (~2 s on 2 cores) was longer than the whole read for the
    small datasets most runs use; 1.94 M molecules take a few seconds either way."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = output_dir / "splits"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for i, path in enumerate(featurized_files(prepared.featurized_dir)):
        table = pq.read_table(path, columns=["mol_key", "split", "skip_reason"])
        table = table.filter(pc.not_equal(table.column("split"), "unassigned"))
        if table.num_rows:
            pq.write_table(table, out / f"part-{i:05d}.parquet")


def _fit_one(cfg: RunConfig, prepared: PreparedData, output_dir: Path, loop_extra: dict | None) -> dict:
    """One Ray Train run into ``output_dir``; returns its metrics (also written to metrics.json)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(dump_config(cfg))
    started = time.time()
    result = build_trainer(cfg, prepared, output_dir, loop_extra=loop_extra).fit()
    if result.error is not None:
        raise result.error
    ckpt_dir = output_dir / "checkpoint"
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    with result.checkpoint.as_directory() as d:
        shutil.copytree(d, ckpt_dir)
    shutil.move(str(ckpt_dir / "test_predictions.parquet"), output_dir / "test_predictions.parquet")
    state = json.loads((ckpt_dir / "state.json").read_text())
    selected = next(r for r in state["history"] if r["epoch"] == state["selected_epoch"])
    metrics = {
        "val": selected["val"],
        "test": state["test"],
        "selection": {"metric": cfg.train.select.metric, "mode": cfg.train.select.mode,
                      "epoch": state["selected_epoch"], "value": state["best"]["value"],
                      "val_loss": selected.get("val_loss"), "stopped_early_at": state.get("stopped_early")},
        "history": state["history"],
        "summary": {
            "wall_seconds": round(time.time() - started, 2),
            "train_wall_seconds": round(state.get("train_wall_seconds", 0.0), 2),
            "first_step_unix": state.get("first_step_unix"),
            "startup_unix": {"driver_process_start": process_start_unix(), "driver_fit_called": started,
                             **state.get("startup_unix", {})},
            "graphs_per_s": round(sum(h["graphs_per_s"] for h in state["history"]) / len(state["history"]), 1),
            "peak_rss_mb_per_worker": state.get("peak_rss_mb_per_worker"),
            "device_per_worker": state.get("device_per_worker"),
            "resumed_from_epoch": state.get("resumed_from_epoch"),
            "epochs": state["epoch"],
            "seed": cfg.train.seed,
            "prepared_data": str(prepared.root),
            "skipped_molecules": prepared.manifest.skipped["total"],
        },
    }  # fmt: skip
    write_curves(state["history"], cfg.train.select.metric, state["selected_epoch"], output_dir)
    write_json_atomic(output_dir / "metrics.json", metrics)
    return metrics


def _flat(tree, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


# settings that decide where or how fast work runs, not what a run computes: a resumed run may change them
RESULT_NEUTRAL_KEYS = frozenset({"data.prepare_in_driver", "data.featurize_concurrency"})


def check_run_dir(cfg: RunConfig, output_dir: Path) -> None:
    """A run directory that already holds a Ray Train run is resumed from its last checkpoint (what
    makes a restarted driver go on): refuse that when the config differs, since the result would
    be the old run's under the new config's name."""
    old_config = output_dir / "config.yaml"
    has_ray_run = (output_dir / "ray").is_dir() or any(output_dir.glob("replicate_*/ray"))
    if not old_config.is_file() or not has_ray_run:
        return
    import yaml

    saved = yaml.safe_load(old_config.read_text())
    try:  # through today's schema: a key added since the run started compares at its default
        saved = validate(saved, str(old_config)).model_dump(mode="json")
    except ConfigError:  # a key this version no longer has: compare as written
        pass
    before, now = _flat(saved), _flat(cfg.model_dump(mode="json"))
    changed = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(before.keys() | now.keys())
               if before.get(k) != now.get(k) and k not in RESULT_NEUTRAL_KEYS]  # fmt: skip
    if changed:
        raise ConfigError(f"{output_dir} already holds a run with another config ({'; '.join(changed[:3])}"
                          f"{'; ...' if len(changed) > 3 else ''}); Ray would resume that run: use a new --output, "
                          "or delete the directory")  # fmt: skip


def run_training(cfg: RunConfig, prepared: PreparedData, output_dir: str | Path, loop_extra: dict | None = None) -> dict:
    """Fit (``train.replicates`` times), then write the run directory; returns the metrics dict
    written to ``metrics.json``. A directory holding an unfinished run of the same config resumes it."""
    output_dir = Path(output_dir)
    check_run_dir(cfg, output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config.yaml").write_text(dump_config(cfg))
    n = cfg.train.replicates
    if n == 1:
        metrics = _fit_one(cfg, prepared, output_dir, loop_extra)
    else:
        runs = []
        for i in range(n):
            seed = cfg.train.seed + i
            replicate = cfg.model_copy(update={"train": cfg.train.model_copy(update={"seed": seed, "replicates": 1})})
            print(f"replicate {i + 1}/{n} (seed {seed})", flush=True)
            runs.append(_fit_one(replicate, prepared, output_dir / f"replicate_{i}", loop_extra))
        metrics = summarize_replicates(runs)
        metrics["ensemble"] = {"test": write_ensemble(prepared.tasks, output_dir, n)}
        write_json_atomic(output_dir / "metrics.json", metrics)
    write_splits(prepared, output_dir)  # after training: one Ray Data job less before the first step
    return metrics
