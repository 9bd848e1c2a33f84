"""The per-worker training function run by Ray Train (one copy per worker process).

It builds the model and its :class:`~graphium_ray.train.module.MultiTaskModule`, a Lightning
``Trainer`` with Ray's DDP strategy and environment (``ray.train.lightning``), and fits it on the
worker's Ray Data shards; :class:`~graphium_ray.train.epoch_report.EpochReport` reports every epoch
with a checkpoint. After the last epoch (or an early stop) the best weights by ``train.select``
score the test split once; the final report's checkpoint holds those weights (what ``predict``
and ``finetune`` use), the test metrics and the test predictions. A restarted worker group resumes
from the last reported checkpoint.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import resource
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import ray.train
import ray.train.lightning
import ray.train.torch
import torch

from graphium_ray.checkpoints import save_checkpoint
from graphium_ray.config import RunConfig
from graphium_ray.data.collate_fn import GraphCollate
from graphium_ray.data.reader import iter_split_tables, shuffled_split_tables
from graphium_ray.data.static_shapes import StaticBatcher, StaticShape
from graphium_ray.manifest import Manifest
from graphium_ray.nn.build import build_network
from graphium_ray.tasks import TaskSpec
from graphium_ray.train import warm_imports
from graphium_ray.train.batches import EvalBatches, TensorDictBatches, TrainBatches, idle_batch, per_worker_batch
from graphium_ray.train.checkpoint import report_with_checkpoint
from graphium_ray.train.devices import device_name, lightning_trainer_kwargs
from graphium_ray.train.entry import process_start_unix, read_kept_train_split
from graphium_ray.train.epoch_report import EpochReport
from graphium_ray.train.evaluate import collect_batch, compute_metrics, merge_predictions
from graphium_ray.train.finetune import load_pretrained
from graphium_ray.train.lean_trainer import lean_trainer_kwargs
from graphium_ray.train.memory_budget import fits_in_memory
from graphium_ray.train.module import MultiTaskModule, gather_objects
from graphium_ray.train.predictions import predictions_table
from graphium_ray.train.progress import StepProgress
from graphium_ray.train.run_loggers import RunLoggers
from graphium_ray.train.selection import flatten_metrics


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def quiet_ray_reports() -> None:
    """Ray Train logs every ``report`` call with all metrics at INFO; one line per epoch is ours.
    Lightning 2.6 builds torch's deprecated ``LeafSpec`` for every batch it moves, and torch 2.13
    warns about it once per worker at the end of every run's output: nothing a user can act on."""
    from ray.train.v2._internal.execution import context

    logging.getLogger(context.__file__).setLevel(logging.WARNING)
    for name in ("lightning.pytorch", "ray.data", "ray.train"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)


def _restore(net: torch.nn.Module) -> tuple[dict, dict | None, dict]:
    """(run state, optimizer state or None, {"weights": best weights[, "ema": averaged weights]}) from
    Ray's last checkpoint."""
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return {"epoch": 0, "global_step": 0, "history": []}, None, {}
    with ckpt.as_directory() as d:
        d = Path(d)
        net.load_state_dict(torch.load(d / "model.pt", map_location="cpu", weights_only=True))
        optimizer = torch.load(d / "optimizer.pt", map_location="cpu", weights_only=True) if (d / "optimizer.pt").exists() else None
        best = {"weights": torch.load(d / "best_model.pt", map_location="cpu", weights_only=True)} if (d / "best_model.pt").exists() else {}
        if (d / "ema_model.pt").exists():  # train.ema_decay: the running average goes on from here
            best["ema"] = torch.load(d / "ema_model.pt", map_location="cpu", weights_only=True)
        state = json.loads((d / "state.json").read_text())
    state["resumed_from_epoch"] = state["epoch"]
    return state, optimizer, best


# rows a streamed train split is shuffled over at least (a few MB of drug-like graphs); the cache's
# rows are in hash order of their keys, and its files are visited in a seeded order every epoch
SHUFFLE_BUFFER_MIN_ROWS = 4096


def _init_from_pretrained(net: torch.nn.Module, finetune: dict) -> None:
    """Fine-tuning: the pretrained weights the driver put in the object store, loaded into ``net``."""
    load_pretrained(net, ray.get(finetune["state_dict"]), keep_heads=finetune["heads"] == "keep_matching")


def _train_batches(cfg: RunConfig, data: Manifest, config: dict, module: MultiTaskModule, worker,
                   device, prefetched=None) -> TrainBatches:  # fmt: skip
    mode = cfg.train.shard_train
    batcher = None
    if cfg.train.static_shapes is not None:
        shape = cfg.train.static_shapes
        rows = per_worker_batch(cfg.train.batch_size, worker[1])
        batcher = StaticBatcher(StaticShape.for_batch_size(rows, shape.max_nodes_per_graph, shape.max_edges_per_graph),
                                data.label_widths, data.bond_dim)  # fmt: skip
    idle = idle_batch(data, batcher)
    collate = GraphCollate(data.label_widths, data.bond_dim, worker=worker if mode == "hash" else None)
    if prefetched is None:  # not started by train/entry.py; still None: read again every epoch
        prefetched = read_kept_train_split(config, cfg.train.in_memory_mb, mode, worker[1])
    shard, read_epoch = None, None
    if mode == "hash":  # every worker reads the whole split: from the cache's files, by itself
        read_epoch = functools.partial(shuffled_split_tables, config["featurized_dir"], "train",
                                       buffer_rows=max(4 * cfg.train.batch_size, SHUFFLE_BUFFER_MIN_ROWS))  # fmt: skip
    else:  # Ray Data's streaming_split
        shard = ray.train.get_dataset_shard("train")
    return TrainBatches(shard, cfg.train.batch_size, cfg.train.seed, lambda: module.global_epoch, worker, mode,
                        collate, idle, device, batcher, prefetched, read_epoch)  # fmt: skip


def _eval_batches(cfg: RunConfig, data: Manifest, config: dict, split: str, worker) -> EvalBatches:
    """This worker's rows of evaluation ``split``, read from the cache's files in this process one
    file at a time (milliseconds for a small split, against a Ray Data execution's ~2 s; bounded
    memory for a large one); kept after the first pass when the split fits ``train.in_memory_mb``."""
    reader = functools.partial(iter_split_tables, config["featurized_dir"], split, keep_key=split == "test")
    keep = split == "val" and fits_in_memory(config["train_bytes"], data.splits, split, cfg.train.in_memory_mb)
    return EvalBatches(cfg.train.batch_size, data.label_widths, data.bond_dim, worker, reader, keep=keep)


def _fit(cfg: RunConfig, data: Manifest, module: MultiTaskModule, state: dict, best: dict, config: dict, worker,
         prefetched=None) -> None:  # fmt: skip
    rank = worker[0]
    loggers = RunLoggers(cfg, config["run_dir"]) if rank == 0 and config.get("run_dir") else None
    callbacks: list[pl.Callback] = [EpochReport(cfg, data, state, best, loggers)]
    if rank == 0 and config.get("progress_bar"):  # closed before EpochReport prints the epoch's line
        callbacks.insert(0, StepProgress(module.steps_per_epoch, cfg.train.epochs))
    trainer = pl.Trainer(
        **lightning_trainer_kwargs(cfg.train), max_epochs=cfg.train.epochs - state["epoch"],
        callbacks=callbacks, gradient_clip_val=cfg.train.grad_clip, **lean_trainer_kwargs(),
        use_distributed_sampler=False, deterministic=False,
    )  # fmt: skip
    if cfg.train.accelerator != "ipu":
        trainer = ray.train.lightning.prepare_trainer(trainer)
    device = ray.train.torch.get_device()
    train = _train_batches(cfg, data, config, module, worker, device, prefetched)
    if cfg.train.accelerator == "ipu":  # PopTorch takes dicts of tensors, not our dataclass
        train = TensorDictBatches(train)
    val = _eval_batches(cfg, data, config, "val", worker)
    state["startup_unix"].setdefault("worker_fit_called", time.time())
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    if loggers is not None:
        loggers.close()


def _score_test(cfg: RunConfig, data: Manifest, net: torch.nn.Module, tasks: list[TaskSpec], worker,
                config: dict) -> tuple[dict, dict]:  # fmt: skip
    """(test metrics, gathered graph-level predictions with keys) of ``net`` on the whole test split."""
    from graphium_ray.outputs import LabelNormalizer

    device = ray.train.torch.get_device()
    net = net.to(device).eval()
    parts = [collect_batch(net, b.to(device)) for b in _eval_batches(cfg, data, config, "test", worker)]
    preds = merge_predictions(gather_objects(merge_predictions(parts)))
    return compute_metrics(tasks, LabelNormalizer(tasks, data.label_stats), preds), preds


def train_loop_per_worker(config: dict, entered: float | None = None, prefetched=None) -> None:
    """The Ray Train worker's run, entered through :mod:`graphium_ray.train.entry`, which records
    ``entered`` before this module's imports and may have started reading the train shard
    (``prefetched``: a future of it as one Arrow table)."""
    imported = time.time()
    entered = entered or imported
    quiet_ray_reports()
    cfg = RunConfig.model_validate(config["run"])
    data = Manifest.from_dict(config["data"])
    ctx = ray.train.get_context()
    worker = (ctx.get_world_rank(), ctx.get_world_size())
    seed_everything(cfg.train.seed)
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    tasks = data.task_specs
    built = build_network(cfg.model, data)
    net = built.model
    state, optimizer_state, best = _restore(net)
    finetune = config.get("finetune")
    if finetune and state["epoch"] == 0:
        _init_from_pretrained(net, finetune)
    seed_everything(cfg.train.seed * 1000 + worker[0] + 7919 * state["epoch"])  # dropout, PE sign flips
    steps = math.ceil(data.splits["train"] / cfg.train.batch_size)
    module = MultiTaskModule(net, tasks, data.label_stats, cfg.train, steps, epoch_offset=state["epoch"],
                             step_offset=state["global_step"], compile_net=cfg.train.compile,
                             frozen_epochs=finetune["freeze_backbone_epochs"] if finetune else 0,
                             backbone_lr_ratio=finetune["backbone_lr_ratio"] if finetune else 1.0,
                             lr_mult=built.lr_mult)  # fmt: skip
    module.optimizer_state = optimizer_state
    module.ema = best.pop("ema", None)
    # start-up breakdown (metrics.json summary.startup_unix; startup_bench.py): the first run only
    state.setdefault("startup_unix", {"worker_process_start": process_start_unix(), **warm_imports.marks,
                                      "worker_loop_entered": entered, "worker_imported": imported,
                                      "worker_model_built": time.time()})  # fmt: skip
    started = time.time()
    if not state.get("final") and state["epoch"] < cfg.train.epochs and not state.get("stopped_early"):
        _fit(cfg, data, module, state, best, config, worker, prefetched)
    if state.get("final"):
        return
    if best.get("weights") is not None:
        net.load_state_dict(best["weights"])
    test, preds = _score_test(cfg, data, net, tasks, worker, config)
    selected = next(r for r in state["history"] if r["epoch"] == state["best"]["epoch"])
    state.update({"final": True, "test": test, "selected_epoch": selected["epoch"],
                  "train_wall_seconds": time.time() - started,
                  "peak_rss_mb_per_worker": gather_objects(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "device_per_worker": gather_objects(device_name(ray.train.torch.get_device()))})  # fmt: skip
    metrics = {"epoch": state["epoch"], **flatten_metrics("val", selected["val"]), **flatten_metrics("test", test)}
    if selected.get("val_loss") is not None:
        metrics["val/loss"] = selected["val_loss"]
    def write(directory: Path) -> None:
        save_checkpoint(directory, net.cpu(), None, state, cfg, data)
        predictions_table(tasks, data, preds).to_parquet(directory / "test_predictions.parquet", index=False)

    report_with_checkpoint(metrics, worker[0] == 0, write)
