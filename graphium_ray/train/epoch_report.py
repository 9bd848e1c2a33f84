"""The Lightning callback that closes every epoch inside a Ray Train worker.

After training and validation of an epoch it: gathers the train loss and throughput of all
workers; builds the epoch record (train/val loss, val metrics in real units, learning rate,
graphs/s); keeps the best weights so far by ``train.select`` (in memory on every worker, and in
each checkpoint as ``best_model.pt``); stops early after ``patience`` epochs without improvement;
prints one line (rank 0); writes it to the loggers; and reports metrics + a checkpoint to Ray
Train (``model.pt`` = the latest weights for resuming, ``optimizer.pt``, ``state.json``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from graphium_ray.checkpoints import save_checkpoint
from graphium_ray.config import RunConfig
from graphium_ray.manifest import ModelData
from graphium_ray.train.checkpoint import report_with_checkpoint
from graphium_ray.train.module import MultiTaskModule, current_lr, gather_objects
from graphium_ray.train.run_loggers import RunLoggers
from graphium_ray.train.selection import epoch_metrics, improved, metric_value, validation_record


class EpochReport(pl.Callback):
    """``state``: the run state (epoch, global_step, history, best) shared with the worker loop;
    ``best_state``: dict holding the best weights (key ``"weights"``), filled here."""

    def __init__(self, cfg: RunConfig, data: ModelData, state: dict, best_state: dict, loggers: RunLoggers | None):
        self.cfg, self.data, self.state, self.best_state, self.loggers = cfg, data, state, best_state, loggers
        self._started = time.time()

    def on_train_epoch_start(self, trainer, module) -> None:
        self._started = time.time()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.state.setdefault("startup_unix", {}).setdefault("first_batch", time.time())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.state.setdefault("first_step_unix", time.time())  # startup benchmark: launch → first step

    def on_train_epoch_end(self, trainer: pl.Trainer, module: MultiTaskModule) -> None:
        seconds = time.time() - self._started
        parts = gather_objects(module.train_loss_sum())
        loss_sum, graphs = sum(p[0] for p in parts), sum(p[1] for p in parts)
        record = {"epoch": module.global_epoch + 1, "train_loss": loss_sum / max(graphs, 1),
                  **validation_record(module.val_result), "lr": current_lr(trainer),
                  "graphs_per_s": graphs / max(seconds, 1e-9), "epoch_seconds": seconds}  # fmt: skip
        self._select(record, module)
        self.state["history"].append(record)
        self.state["epoch"] = record["epoch"]
        self.state["global_step"] = module.step_offset + trainer.global_step
        patience = self.cfg.train.select.patience
        if patience and record["epoch"] - self.state["best"]["epoch"] >= patience:
            trainer.should_stop = True
            self.state["stopped_early"] = record["epoch"]
        metrics = epoch_metrics(record)
        if trainer.global_rank == 0:
            sys.stdout.write(self._line(record) + "\n")  # not print(): Ray Train copies print() to stderr too
            sys.stdout.flush()
            if self.loggers is not None:
                self.loggers.log(metrics, record["epoch"])
        self._report(metrics, trainer, module)

    def _select(self, record: dict, module: MultiTaskModule) -> None:
        select = self.cfg.train.select
        value = metric_value(record, select.metric)
        best = self.state.setdefault("best", {"epoch": None, "value": None})
        if best["epoch"] is None or improved(value, best["value"], select.mode):
            self.state["best"] = {"epoch": record["epoch"], "value": value, "metric": select.metric}
            self.best_state["weights"] = module.selected_weights()
        record["best_so_far"] = self.state["best"]["epoch"] == record["epoch"]

    def _line(self, record: dict) -> str:
        select = self.cfg.train.select
        value = metric_value(record, select.metric)
        shown = "undef" if value is None else f"{value:.4g}"
        eta = (self.cfg.train.epochs - record["epoch"]) * record["epoch_seconds"]
        mark = "  *best*" if record["best_so_far"] else f"  (best: epoch {self.state['best']['epoch']})"
        val_loss = "undef" if record["val_loss"] is None else f"{record['val_loss']:.4f}"
        return (f"[epoch {record['epoch']}/{self.cfg.train.epochs}] train_loss {record['train_loss']:.4f}  "
                f"val_loss {val_loss}  {select.metric} {shown}{mark}  lr {record['lr']:.2e}  "
                f"{record['graphs_per_s']:.0f} graphs/s  ETA {eta:.0f}s")  # fmt: skip

    def _report(self, metrics: dict, trainer: pl.Trainer, module: MultiTaskModule) -> None:
        def write(directory: Path) -> None:
            optimizer = trainer.optimizers[0] if trainer.optimizers else None
            save_checkpoint(directory, module.net, optimizer, self.state, self.cfg, self.data)
            torch.save(self.best_state["weights"], directory / "best_model.pt")
            if module.ema is not None:
                torch.save(module.ema, directory / "ema_model.pt")

        report_with_checkpoint(metrics, trainer.global_rank == 0, write)
