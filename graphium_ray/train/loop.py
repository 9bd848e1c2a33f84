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
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from graphium_ray.config import RunConfig
from graphium_ray.data.collate import GraphCollate
from graphium_ray.tasks import TaskSpec, tasks_at
from graphium_ray.train.checkpoint import build_model, save_checkpoint
from graphium_ray.train.evaluate import collect_predictions, compute_metrics, flatten_metrics, merge_predictions
from graphium_ray.train.losses import multitask_loss
from graphium_ray.train.normalize import LabelNormalizer
from graphium_ray.train.optim import build_optimizer


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _gather(obj):
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, obj)
        return parts
    return [obj]


def _evaluate(model, split: str, data: dict, batch_size: int, device, tasks, normalizer) -> dict:
    ctx = ray.train.get_context()
    collate = GraphCollate(data["label_widths"], data["bond_dim"], worker=(ctx.get_world_rank(), ctx.get_world_size()))
    shard = ray.train.get_dataset_shard(split)
    batches = (b for b in shard.iter_torch_batches(batch_size=batch_size, collate_fn=collate) if b is not None)
    preds = merge_predictions(_gather(collect_predictions(_unwrap(model), batches, device)))
    return compute_metrics(tasks, normalizer, preds)


def _train_epoch(model, optimizer, collate, cfg: RunConfig, level_tasks, normalizer, device, epoch) -> dict:
    model.train()
    shard = ray.train.get_dataset_shard("train")
    total_loss, n_batches, n_graphs, started = 0.0, 0, 0, time.time()
    for batch in shard.iter_torch_batches(
        batch_size=cfg.train.batch_size, collate_fn=collate, local_shuffle_buffer_size=4 * cfg.train.batch_size,
        local_shuffle_seed=cfg.train.seed * 1000 + epoch,
    ):  # fmt: skip
        batch = batch.to(device)
        targets = {lvl: normalizer.normalize(lvl, y) for lvl, y in batch.y.items()}
        loss, _ = multitask_loss(level_tasks, model(batch), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        total_loss += float(loss.detach())
        n_batches += 1
        n_graphs += batch.num_graphs
    seconds = time.time() - started
    return {"train_loss": total_loss / max(n_batches, 1), "graphs": n_graphs, "seconds": seconds}


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
    model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device()
    collate = GraphCollate(data["label_widths"], data["bond_dim"])
    run_started = time.time()
    logger = _wandb_run(cfg, config.get("run_dir")) if rank == 0 and cfg.logging.wandb else None
    for epoch in range(state["epoch"], cfg.train.epochs):
        stats = _train_epoch(model, optimizer, collate, cfg, level_tasks, normalizer, device, epoch)
        graphs = sum(_gather(stats["graphs"]))
        val = _evaluate(model, "val", data, cfg.train.batch_size, device, tasks, normalizer)
        last = epoch + 1 == cfg.train.epochs
        test = _evaluate(model, "test", data, cfg.train.batch_size, device, tasks, normalizer) if last else None
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
