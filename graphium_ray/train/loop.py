"""The per-worker training loop run by Ray Train (one copy per worker process).

Each epoch: train on this worker's shard of the train split (DDP averages gradients), then
evaluate on the validation split (batches dealt round-robin to workers, predictions gathered so
every worker computes the same metrics on the whole split), report metrics and a checkpoint.
The last epoch also evaluates the test split. A restarted worker group resumes from the last
reported checkpoint.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from graphium_ray.accelerators import ipu_training_step
from graphium_ray.batch import GraphBatch
from graphium_ray.config import RunConfig
from graphium_ray.data.collate import GraphCollate, deal_rows
from graphium_ray.data.static_shapes import StaticBatcher, StaticShape, pe_widths
from graphium_ray.tasks import TaskSpec, tasks_at
from graphium_ray.train.checkpoint import build_model, save_checkpoint
from graphium_ray.train.evaluate import collect_predictions, compute_metrics, flatten_metrics, merge_predictions
from graphium_ray.train.losses import multitask_loss
from graphium_ray.train.normalize import LabelNormalizer
from graphium_ray.train.optim import build_optimizer


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain MultiTaskGNN inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = model.module if hasattr(model, "module") else model._orig_mod
    return model


def _unwrap_ddp(model: torch.nn.Module) -> torch.nn.Module:
    """Without DDP's wrapper but keeping a compiled / PopTorch model (evaluation runs per worker)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def _lockstep(batches: Iterator[GraphBatch], idle: GraphBatch) -> Iterator[GraphBatch]:
    """Static-shape batches in data-parallel lockstep: packing by node budget gives workers slightly
    different batch counts, so a worker that runs out feeds padding-only batches (zero loss, zero
    gradient) until every worker is done; DDP's collectives never hang and no row is dropped."""
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    for batch in batches:
        if distributed:
            dist.all_reduce(torch.ones(1), op=dist.ReduceOp.MAX)
        yield batch
    if distributed:
        while True:
            more = torch.zeros(1)
            dist.all_reduce(more, op=dist.ReduceOp.MAX)
            if not more.item():
                return
            yield idle


def _gather(obj):
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, obj)
        return parts
    return [obj]


def _evaluate(model, split: str, data: dict, batch_size: int, device, tasks, normalizer, batcher=None) -> dict:
    ctx = ray.train.get_context()
    worker = (ctx.get_world_rank(), ctx.get_world_size())
    shard = ray.train.get_dataset_shard(split)
    if batcher is None:
        collate = GraphCollate(data["label_widths"], data["bond_dim"], worker=worker)
        batches = (b for b in shard.iter_torch_batches(batch_size=batch_size, collate_fn=collate) if b is not None)
    else:  # the compiled / IPU model sees only static shapes; padding rows are masked out of the metrics
        rows = (deal_rows(b, worker) for b in shard.iter_batches(batch_size=batch_size, batch_format="pyarrow"))
        batches = batcher(r for r in rows if r is not None)
    preds = merge_predictions(_gather(collect_predictions(model, batches, device)))
    return compute_metrics(tasks, normalizer, preds)


def _train_batches(cfg: RunConfig, collate, batcher, idle, epoch):
    shard = ray.train.get_dataset_shard("train")
    shuffle = {"local_shuffle_buffer_size": 4 * cfg.train.batch_size, "local_shuffle_seed": cfg.train.seed * 1000 + epoch}
    if batcher is None:
        return shard.iter_torch_batches(batch_size=cfg.train.batch_size, collate_fn=collate, **shuffle)
    rows = shard.iter_batches(batch_size=cfg.train.batch_size, batch_format="pyarrow", **shuffle)
    return _lockstep(batcher(rows), idle)


def _set_backbone_frozen(model, optimizer, frozen: bool) -> None:
    """Fine-tuning warm-up: the backbone's learning rate is 0 and its norms/dropout are in eval mode,
    so only the new heads learn (lr = 0 rather than requires_grad=False keeps DDP's buckets intact)."""
    for group in optimizer.param_groups:
        if group.get("backbone"):
            group["lr"] = 0.0 if frozen else group["base_lr"]
    if frozen:
        for name, module in _unwrap(model).named_children():
            if name != "heads":
                module.eval()


def _train_epoch(model, optimizer, collate, cfg: RunConfig, level_tasks, normalizer, device, epoch,
                 batcher=None, idle=None, frozen=False, ipu_step=None) -> dict:  # fmt: skip
    model.train()
    _set_backbone_frozen(model, optimizer, frozen)
    total_loss, n_batches, n_graphs, started, first_step = 0.0, 0, 0, time.time(), None
    for batch in _train_batches(cfg, collate, batcher, idle, epoch):
        real_graphs = batch.num_graphs if batch.graph_mask is None else int(batch.graph_mask.sum())  # on the host
        batch = batch.to(device)
        targets = {lvl: normalizer.normalize(lvl, y) for lvl, y in batch.y.items()}
        if ipu_step is not None:
            loss = ipu_step(batch, targets)
        else:
            loss, _ = multitask_loss(level_tasks, model(batch), targets, per_task=False)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
        total_loss += float(loss.detach())
        n_batches += 1
        first_step = first_step or time.time()
        n_graphs += real_graphs
    if ipu_step is not None:
        ipu_step.copy_weights_to_host()
    seconds = time.time() - started
    return {"train_loss": total_loss / max(n_batches, 1), "graphs": n_graphs, "seconds": seconds, "first_step": first_step}


def _init_from_pretrained(model, finetune: dict) -> None:
    """Fine-tuning: backbone weights (and, with heads=keep_matching, every head of the same name and
    shape) from the pretrained state dict the driver put in the object store."""
    pretrained = ray.get(finetune["state_dict"])
    own = model.state_dict()
    keep_heads = finetune["heads"] == "keep_matching"
    load = {
        k: v for k, v in pretrained.items()
        if k in own and own[k].shape == v.shape and (not k.startswith("heads.") or keep_heads)
    }  # fmt: skip
    missing_backbone = [k for k in own if not k.startswith("heads.") and k not in load]
    if missing_backbone:
        raise ValueError(f"the pretrained checkpoint lacks backbone weights {missing_backbone[:5]}")
    model.load_state_dict(load, strict=False)


def _restore(model, optimizer) -> dict:
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return {"epoch": 0, "history": []}
    with ckpt.as_directory() as d:
        model.load_state_dict(torch.load(Path(d) / "model.pt", map_location="cpu", weights_only=True))
        optimizer.load_state_dict(torch.load(Path(d) / "optimizer.pt", map_location="cpu", weights_only=True))
        state = json.loads((Path(d) / "state.json").read_text())
    state["resumed_from_epoch"] = state["epoch"]
    return state


def _wandb_run(cfg: RunConfig, run_dir: str | None):
    """wandb, offline unless WANDB_API_KEY is set in the environment (never read from configs)."""
    import os

    import wandb

    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    return wandb.init(project=cfg.logging.project, name=cfg.name, mode=mode, dir=run_dir,
                      config=cfg.model_dump(mode="json"))  # fmt: skip


def train_loop_per_worker(config: dict) -> None:
    cfg = RunConfig.model_validate(config["run"])
    data: dict = config["data"]
    rank = ray.train.get_context().get_world_rank()
    torch.manual_seed(cfg.train.seed)
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    tasks = [TaskSpec.from_dict(t) for t in data["tasks"]]
    level_tasks = {lvl: tasks_at(tasks, lvl) for lvl in ("graph", "node", "edge")}
    normalizer = LabelNormalizer(tasks, data["label_stats"])
    model = build_model(cfg, data)
    optimizer = build_optimizer(model, cfg)
    state = _restore(model, optimizer)
    finetune = config.get("finetune")
    if finetune and state["epoch"] == 0:
        _init_from_pretrained(model, finetune)
    frozen_epochs = finetune["freeze_backbone_epochs"] if finetune else 0
    batcher = idle = None
    if cfg.train.static_shapes is not None:
        shape = cfg.train.static_shapes
        batcher = StaticBatcher(StaticShape.for_batch_size(cfg.train.batch_size, shape.max_nodes_per_graph,
                                                           shape.max_edges_per_graph), data["label_widths"], data["bond_dim"])  # fmt: skip
        idle = batcher.empty(data["atom_dim"], pe_widths(data["featurizer"]))
    # IPU: forward + backward + update run inside PopTorch (fails with what to install when it is missing)
    ipu_step = ipu_training_step(model, optimizer, level_tasks, idle) if cfg.train.accelerator == "ipu" else None
    if cfg.train.compile:
        model = torch.compile(model, dynamic=False)
    model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device()
    collate = GraphCollate(data["label_widths"], data["bond_dim"])
    run_started = time.time()
    logger = _wandb_run(cfg, config.get("run_dir")) if rank == 0 and cfg.logging.wandb else None
    for epoch in range(state["epoch"], cfg.train.epochs):
        stats = _train_epoch(model, optimizer, collate, cfg, level_tasks, normalizer, device, epoch, batcher, idle,
                             frozen=epoch < frozen_epochs, ipu_step=ipu_step)  # fmt: skip
        state.setdefault("first_step_unix", stats["first_step"])  # startup benchmark: launch → first step
        graphs = sum(_gather(stats["graphs"]))
        eval_model = _unwrap_ddp(model)  # compiled only with static shapes, so static batches reach it
        val = _evaluate(eval_model, "val", data, cfg.train.batch_size, device, tasks, normalizer, batcher)
        last = epoch + 1 == cfg.train.epochs
        test = _evaluate(eval_model, "test", data, cfg.train.batch_size, device, tasks, normalizer, batcher) if last else None
        record = {"epoch": epoch + 1, "train_loss": stats["train_loss"], "graphs_per_s": graphs / max(stats["seconds"], 1e-9),
                  "epoch_seconds": stats["seconds"], "val": val}  # fmt: skip
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if last:
            state["test"] = test
            state["wall_seconds"] = time.time() - run_started
            state["peak_rss_mb_per_worker"] = _gather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        metrics = {"epoch": epoch + 1, "train_loss": stats["train_loss"], "graphs_per_s": record["graphs_per_s"],
                   **flatten_metrics("val", val), **(flatten_metrics("test", test) if test else {})}  # fmt: skip
        if rank == 0:
            remaining = (cfg.train.epochs - epoch - 1) * stats["seconds"]
            print(f"[epoch {epoch + 1}/{cfg.train.epochs}] train_loss={stats['train_loss']:.4f} "
                  f"{record['graphs_per_s']:.0f} graphs/s  ETA {remaining:.0f}s", flush=True)  # fmt: skip
        if logger is not None:
            logger.log(metrics, step=epoch + 1)
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                save_checkpoint(Path(tmp), _unwrap(model), optimizer, state, cfg, data)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)
