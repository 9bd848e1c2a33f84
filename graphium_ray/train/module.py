"""The multi-task, multi-level model as a ``LightningModule``: masked losses on normalized labels,
validation metrics in real units over the whole split, AdamW with µP parameter groups and a
warm-up + decay schedule stepped every optimizer step.

Validation batches are dealt to data-parallel workers by a hash of the molecule key; each worker
keeps its predictions and ``on_validation_epoch_end`` gathers them, so every worker computes the
same metrics (and the same validation loss) on the whole split. No Ray in here: the Ray Train
worker loop (:mod:`graphium_ray.train.loop`) builds the Lightning ``Trainer`` around it.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import numpy as np
import torch
import torch.distributed as dist

from graphium_ray.batch import GraphBatch
from graphium_ray.config import TrainConfig
from graphium_ray.outputs import LabelNormalizer
from graphium_ray.tasks import TaskSpec, tasks_at
from graphium_ray.train.evaluate import collect_batch, compute_metrics, merge_predictions
from graphium_ray.train.lean_trainer import HOOK_NAME_ATTRIBUTE
from graphium_ray.train.losses import MultiTaskLoss, multitask_loss
from graphium_ray.train.optim import build_optimizer
from graphium_ray.train.schedule import lr_multiplier

LEVELS = ("graph", "node", "edge")


def gather_objects(obj) -> list:
    """``obj`` from every data-parallel worker (a one-element list when not distributed)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, obj)
        return parts
    return [obj]


def validation_loss(level_tasks: dict[str, list[TaskSpec]], normalizer: LabelNormalizer,
                    preds: dict) -> tuple[float, dict[str, float]]:  # fmt: skip
    """The training objective (masked, weighted task mean) over a whole gathered split, and per
    dataset the same objective over that dataset's tasks only: L_d = Σ_{t∈d} w_t L_t / Σ_{t∈d} w_t
    over its tasks with labels (what a mix is selected on when one dataset is the goal)."""
    outputs = {lvl: torch.from_numpy(p["pred"]).float() for lvl, p in preds.items()}
    targets = {lvl: normalizer.normalize(lvl, torch.from_numpy(p["y"]).float()) for lvl, p in preds.items()}
    present = {lvl: tasks for lvl, tasks in level_tasks.items() if lvl in preds}
    loss, per_task = multitask_loss(present, outputs, targets, per_task=True)
    sums: dict[str, list[float]] = {}
    for task in (t for tasks in present.values() for t in tasks if t.name in per_task):
        acc = sums.setdefault(task.dataset, [0.0, 0.0])
        acc[0] += task.weight * per_task[task.name]
        acc[1] += task.weight
    return float(loss), {dataset: total / weight for dataset, (total, weight) in sums.items()}


class MultiTaskModule(pl.LightningModule):
    """``net``: the plain :class:`~graphium_ray.nn.network.MultiTaskGNN` (saved and loaded as is);
    ``steps_per_epoch``: optimizer steps of one epoch (for the schedule); ``epoch_offset`` /
    ``step_offset``: what a resumed run has already done; ``frozen_epochs``: fine-tuning epochs with
    the backbone's learning rate at 0; ``backbone_lr_ratio``: fine-tuning's backbone learning rate as
    a fraction of the heads' (discriminative fine-tuning; 1 = one rate); ``lr_mult``: µP learning-rate multipliers
    (:func:`~graphium_ray.nn.build.build_network`)."""

    def __init__(self, net: torch.nn.Module, tasks: list[TaskSpec], label_stats: dict, train: TrainConfig,
                 steps_per_epoch: int, epoch_offset: int = 0, step_offset: int = 0,
                 frozen_epochs: int = 0, compile_net: bool = False, backbone_lr_ratio: float = 1.0,
                 lr_mult: dict[str, float] | None = None):  # fmt: skip
        super().__init__()
        self.net = net
        self.lr_mult = lr_mult or {}
        self.tasks = tasks
        self.level_tasks = {lvl: tasks_at(tasks, lvl) for lvl in LEVELS}
        self.normalizer = LabelNormalizer(tasks, label_stats)
        self.loss_fn = MultiTaskLoss(self.level_tasks)
        self.train_cfg = train
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.epoch_offset, self.step_offset, self.frozen_epochs = epoch_offset, step_offset, frozen_epochs
        self.backbone_lr_ratio = backbone_lr_ratio
        self.optimizer_state: dict | None = None  # a resumed run's optimizer state, loaded on creation
        # compiled forward (static shapes only); kept out of the module tree so state_dict has plain names
        self._forward_fn: Callable = torch.compile(net, dynamic=False) if compile_net else net
        self._val_parts: list[dict] = []
        self.val_result: dict | None = None
        self._loss_sum = torch.zeros(())
        self._graphs = 0
        self.ema: dict[str, torch.Tensor] | None = None  # averaged weights (train.ema_decay), by state-dict name
        self._raw: dict[str, torch.Tensor] | None = None  # the trained weights while the average is swapped in

    def __setattr__(self, name: str, value) -> None:
        if name == HOOK_NAME_ATTRIBUTE:  # a plain string Lightning sets around every hook: skip nn.Module's checks
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    @property
    def global_epoch(self) -> int:
        """0-based epoch over the whole run, including epochs done before a resume."""
        return self.epoch_offset + self.current_epoch

    def forward(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        return self._forward_fn(batch)

    # ------------------------------------------------------------------------------ training
    def on_train_epoch_start(self) -> None:
        self._loss_sum = torch.zeros((), device=self.device)
        self._graphs = 0
        if self.global_epoch < self.frozen_epochs:  # fine-tuning warm-up: backbone norms/dropout frozen too
            for name, child in self.net.named_children():
                if name != "heads":
                    child.eval()

    def training_step(self, batch: GraphBatch | dict, batch_idx: int) -> torch.Tensor:
        if isinstance(batch, dict):  # IPU: PopTorch hands batches over as flat dicts of tensors
            batch = GraphBatch.from_tensors(batch)
        targets = {lvl: self.normalizer.normalize(lvl, y) for lvl, y in batch.y.items()}
        outputs = {lvl: out.float() for lvl, out in self(batch).items()}  # losses in float32 under mixed precision
        loss, _ = self.loss_fn(outputs, targets, per_task=False)
        real = batch.num_graphs if batch.graph_mask is None else int(batch.graph_mask.sum())
        self._loss_sum = self._loss_sum + loss.detach().float() * real
        self._graphs += real
        return loss

    def on_train_start(self) -> None:
        if self.ema is not None:  # restored from a checkpoint on the CPU
            self.ema = {k: v.to(self.device) for k, v in self.ema.items()}

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        decay = self.train_cfg.ema_decay
        if decay is None:
            return
        state = self.net.state_dict()
        if self.ema is None:
            self.ema = {k: v.detach().clone() for k, v in state.items()}
            return
        floats = [k for k, v in state.items() if v.is_floating_point()]
        torch._foreach_lerp_([self.ema[k] for k in floats], [state[k].detach() for k in floats], 1.0 - decay)
        for k, v in state.items():  # integer buffers (e.g. batch-norm step counts) follow the model
            if not v.is_floating_point():
                self.ema[k].copy_(v)

    def selected_weights(self) -> dict[str, torch.Tensor]:
        """The weights this epoch is judged by (what validation saw): the average under EMA."""
        source = self.ema if self.ema is not None else self.net.state_dict()
        return {k: v.detach().cpu().clone() for k, v in source.items()}

    def train_loss_sum(self) -> tuple[float, int]:
        """(Σ batch loss · real graphs, real graphs) of this worker's current epoch."""
        return float(self._loss_sum), self._graphs

    # ---------------------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val_parts = []
        if self.ema is not None:  # validate the averaged weights; the trained ones come back after
            self._raw = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.net.load_state_dict(self.ema)

    def validation_step(self, batch: GraphBatch, batch_idx: int) -> None:
        self._val_parts.append(collect_batch(self.net, batch))

    def on_validation_epoch_end(self) -> None:
        preds = merge_predictions(self._val_parts)
        gathered = merge_predictions(gather_objects(preds))
        loss, dataset_loss = validation_loss(self.level_tasks, self.normalizer, gathered) if gathered else (None, {})
        self.val_result = {"loss": loss, "dataset_loss": dataset_loss,
                           "metrics": compute_metrics(self.tasks, self.normalizer, gathered)}  # fmt: skip
        self._val_parts = []
        if self._raw is not None:
            self.net.load_state_dict(self._raw)
            self._raw = None

    # ----------------------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        cfg = self.train_cfg
        optimizer = build_optimizer(self.net, cfg, self.lr_mult)
        base_lrs = [g["lr"] for g in optimizer.param_groups]
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                group["initial_lr"] = lr
        warmup = round(cfg.warmup_epochs * self.steps_per_epoch)
        total = cfg.epochs * self.steps_per_epoch

        def schedule(step: int) -> float:
            return lr_multiplier(step + self.step_offset, cfg.lr_schedule, warmup, total, cfg.final_lr_ratio)

        def backbone(step: int) -> float:
            return 0.0 if self.global_epoch < self.frozen_epochs else self.backbone_lr_ratio * schedule(step)

        lambdas = [backbone if g["backbone"] else schedule for g in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def current_lr(trainer: pl.Trainer) -> float:
    """The scheduled learning rate now (of the groups with µP multiplier 1)."""
    groups = trainer.optimizers[0].param_groups
    return float(np.max([g["lr"] for g in groups]))
