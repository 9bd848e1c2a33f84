"""Does streaming ingest keep the trainer fed? Ray Train + Ray Data vs an in-memory PyG DataLoader.

Same model (the configured GINE), same loss, optimizer, batch size, one training process each,
one torch thread each, side by side in one run:

* ``streaming``: `graphium-ray train`'s path: a 1-worker Ray Train trainer reading the
  featurized Parquet cache through Ray Data and ``GraphCollate``; a train split under
  ``train.in_memory_mb`` is read once into the worker (Arrow, one chunk per column) and permuted
  every epoch; graphs/s per epoch as the run reports it (data loading and validation included),
  epochs after the first. ``streamed_every_epoch``: the same with ``in_memory_mb: 0`` (what a split
  too large for memory does: the worker reads the cache's files again every epoch, in a seeded
  order through a shuffle buffer, on a prefetch thread).
* ``in_memory``: the same molecules as a Python list of PyG ``Data`` objects fed by PyG's
  ``DataLoader(shuffle=True)`` in this process, batches handed to the model as ``GraphBatch``.

* ``lightning``: what Lightning costs per step: a plain PyTorch loop vs the Lightning ``Trainer``
  over the same pre-collated batches and the same ``MultiTaskModule`` (median of 3 alternating runs).

Data (``--source``): QM9 molecules from qm9pack with homo/lumo/gap labels (mean 9 heavy atoms), or
drug-like MOSES molecules (mean ~24 heavy atoms; every k-th training SMILES of the ``molsets``
wheel) with RDKit logP, TPSA and molecular weight.

    python platform/bench/ingest_bench.py --molecules 20000 --epochs 4
    python platform/bench/ingest_bench.py --source moses --molecules 20000 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from graphium_ray.batch import GraphBatch  # noqa: E402
from graphium_ray.config import validate  # noqa: E402
from graphium_ray.data.builtin import qm9_sample  # noqa: E402
from graphium_ray.data.collate import collate_arrays  # noqa: E402
from graphium_ray.nn.build import build_network  # noqa: E402
from graphium_ray.outputs import LabelNormalizer  # noqa: E402
from graphium_ray.tasks import tasks_at  # noqa: E402
from graphium_ray.train.losses import multitask_loss  # noqa: E402
from graphium_ray.train.optim import build_optimizer  # noqa: E402

LABELS = {"qm9": ["homo", "lumo", "gap"], "moses": ["logp", "tpsa", "mol_wt"]}


def write_input(source: str, molecules: int, path: Path) -> None:
    if source == "qm9":
        qm9_sample(molecules, ["SMILES", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au"]).rename_columns(
            ["smiles", *LABELS["qm9"]]).to_pandas().to_parquet(path)  # fmt: skip
        return
    from graphium_ray.data.builtin import descriptor_labels
    from graphium_ray.data.pretrain_data import moses_sample

    smiles = [s for _, chunk in moses_sample(molecules) for s in chunk]
    labels = descriptor_labels(smiles)
    pa.table({k: labels[k] for k in ["smiles", *LABELS["moses"]]}).to_pandas().to_parquet(path)


def config(data_path: Path, cache: Path, epochs: int, batch_size: int, source: str = "qm9") -> dict:
    return {"name": "ingest_bench",
            "data": {"cache_dir": str(cache), "num_shards": 4, "split": {"fractions": [0.9, 0.05, 0.05]},
                     "datasets": [{"name": source, "path": str(data_path), "tasks": [{"columns": LABELS[source]}]}]},
            "model": {"layer": "gine", "hidden_dim": 64, "num_layers": 4},
            "train": {"epochs": epochs, "batch_size": batch_size, "num_workers": 1, "cpus_per_worker": 1}}  # fmt: skip


def in_memory_rate(cfg, prepared, epochs: int) -> list[float]:
    """graphs/s per epoch of the same model fed by PyG's DataLoader from a list of Data objects."""
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader

    data = prepared.manifest
    table = pq.read_table(prepared.featurized_dir, filters=[("split", "=", "train")])
    table = table.filter(table.column("skip_reason").is_null())
    g = collate_arrays(table, data.label_widths, data.bond_dim)
    nodes = np.concatenate([[0], np.cumsum(table.column("num_nodes").to_numpy())])
    edges = np.concatenate([[0], np.cumsum(table.column("num_edges").to_numpy())])
    items = [Data(x=g.x[nodes[i] : nodes[i + 1]], edge_index=g.edge_index[:, edges[i] : edges[i + 1]] - nodes[i],
                  edge_attr=g.edge_attr[edges[i] : edges[i + 1]], y=g.y["graph"][i : i + 1]) for i in range(table.num_rows)]  # fmt: skip
    torch.manual_seed(cfg.train.seed)
    built = build_network(cfg.model, data)
    model = built.model
    optimizer = build_optimizer(model, cfg.train, built.lr_mult)
    tasks = data.task_specs
    level_tasks = {lvl: tasks_at(tasks, lvl) for lvl in ("graph", "node", "edge")}
    normalizer = LabelNormalizer(tasks, data.label_stats)
    rates = []
    for _ in range(epochs):
        model.train()
        start, graphs = time.perf_counter(), 0
        for b in DataLoader(items, batch_size=cfg.train.batch_size, shuffle=True):
            batch = GraphBatch(x=b.x, edge_index=b.edge_index, edge_attr=b.edge_attr, batch=b.batch, num_graphs=b.num_graphs,
                               y={"graph": b.y})  # fmt: skip
            loss, _ = multitask_loss(level_tasks, model(batch), {"graph": normalizer.normalize("graph", batch.y["graph"])},
                                     per_task=False)  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
            graphs += batch.num_graphs
        rates.append(graphs / (time.perf_counter() - start))
    return rates


def lightning_overhead(cfg, prepared, epochs: int, repeats: int = 3) -> dict:
    """What Lightning costs: the same pre-collated batches, model, loss, AdamW, clipping and schedule
    trained by a plain PyTorch loop (what the hand-written Ray Train loop did per step) and by the
    Lightning ``Trainer`` fitting :class:`MultiTaskModule`, alternating, ``repeats`` times each."""
    import lightning.pytorch as pl

    from graphium_ray.train.lean_trainer import lean_trainer_kwargs
    from graphium_ray.train.module import MultiTaskModule

    data = prepared.manifest
    table = pq.read_table(prepared.featurized_dir, filters=[("split", "=", "train")])
    table = table.filter(table.column("skip_reason").is_null())
    bs = cfg.train.batch_size
    batches = [collate_arrays(table.slice(i, bs), data.label_widths, data.bond_dim)
               for i in range(0, table.num_rows, bs)]  # fmt: skip
    tasks = data.task_specs
    graphs = sum(b.num_graphs for b in batches) * epochs

    class Batches:
        def __iter__(self):
            return iter(batches)

    def plain() -> float:
        torch.manual_seed(0)
        module = MultiTaskModule(build_network(cfg.model, data).model, tasks, data.label_stats, cfg.train, len(batches))
        optimizer = module.configure_optimizers()
        opt, sched = optimizer["optimizer"], optimizer["lr_scheduler"]["scheduler"]
        start = time.perf_counter()
        for _ in range(epochs):
            for batch in batches:
                loss = module.training_step(batch, 0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.train.grad_clip)
                opt.step()
                sched.step()
        return graphs / (time.perf_counter() - start)

    class TrainingTime(pl.Callback):
        """From the first step's start to the last step's end: Lightning's per-step cost, without
        its one-off set-up (strategy, optimizer, hooks), which the total time includes."""

        def on_train_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.start

    def lightning() -> tuple[float, float]:
        """(graphs/s over the training steps, graphs/s including fit's set-up and teardown)."""
        torch.manual_seed(0)
        module = MultiTaskModule(build_network(cfg.model, data).model, tasks, data.label_stats, cfg.train, len(batches))
        timer = TrainingTime()
        trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, gradient_clip_val=cfg.train.grad_clip,
                             callbacks=[timer], limit_val_batches=0, **lean_trainer_kwargs())  # fmt: skip
        start = time.perf_counter()
        trainer.fit(module, train_dataloaders=Batches())
        return graphs / timer.seconds, graphs / (time.perf_counter() - start)

    rates = {"plain_loop": [], "lightning": [], "lightning_with_setup": []}
    for _ in range(repeats):
        rates["plain_loop"].append(round(plain()))
        steps, total = lightning()
        rates["lightning"].append(round(steps))
        rates["lightning_with_setup"].append(round(total))
    plain_median = np.median(rates["plain_loop"])
    return {**rates, "ratio_lightning_vs_plain_median": round(float(np.median(rates["lightning"]) / plain_median), 3),
            "ratio_with_setup_median": round(float(np.median(rates["lightning_with_setup"]) / plain_median), 3)}


def data_only_rate(cfg, prepared, epochs: int) -> list[dict]:
    """The streaming data path alone in this process (no model): graphs/s per epoch and the
    seconds until each epoch's first batch, with training's shuffle settings."""
    from graphium_ray.data.collate_fn import GraphCollate
    from graphium_ray.data.reader import read_split

    collate = GraphCollate(prepared.manifest.label_widths, prepared.manifest.bond_dim)
    ds = read_split(prepared.featurized_dir, "train")
    out = []
    for _ in range(epochs):
        start, first, graphs = time.perf_counter(), None, 0
        for batch in ds.iter_torch_batches(batch_size=cfg.train.batch_size, collate_fn=collate,
                                           local_shuffle_buffer_size=4 * cfg.train.batch_size):  # fmt: skip
            first = first if first is not None else time.perf_counter() - start
            graphs += batch.num_graphs
        out.append({"graphs_per_s": round(graphs / (time.perf_counter() - start)), "first_batch_s": round(first, 2)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=20000)
    p.add_argument("--source", choices=["qm9", "moses"], default="qm9")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-cpus", type=int, default=2)
    p.add_argument("--only-lightning", action="store_true", help="only the Lightning vs plain loop comparison")
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each loop (Lightning comparison)")
    args = p.parse_args()
    import ray

    from graphium_ray.data.prepare import prepare
    from graphium_ray.train.driver import run_training

    work = Path(tempfile.mkdtemp(prefix="ingest_bench_"))
    write_input(args.source, args.molecules, work / "input.parquet")
    cfg = validate(config(work / "input.parquet", work / "cache", args.epochs, args.batch_size, args.source), "ingest bench")
    started_ray = not ray.is_initialized()
    if started_ray:
        from graphium_ray.cli import init_ray

        init_ray(args.num_cpus)  # its own local cluster, whatever else runs on the machine
    prepared = prepare(cfg.data)
    torch.set_num_threads(1)
    overhead = lightning_overhead(cfg, prepared, args.epochs, args.repeats)
    if args.only_lightning:
        print(json.dumps({"molecules": args.molecules, "batch_size": args.batch_size, "lightning": overhead}, indent=2))
        return
    memory = in_memory_rate(cfg, prepared, args.epochs)
    streamed = [h["graphs_per_s"] for h in run_training(cfg, prepared, work / "run")["history"]]
    forced = cfg.model_copy(update={"train": cfg.train.model_copy(update={"in_memory_mb": 0.0})})
    streamed_every_epoch = [h["graphs_per_s"] for h in run_training(forced, prepared, work / "run_streamed")["history"]]
    data_only = data_only_rate(cfg, prepared, epochs=2)
    if started_ray:
        ray.shutdown()
    steady = slice(1, None) if args.epochs > 1 else slice(None)
    result = {
        "source": args.source,
        "molecules": args.molecules,
        "train_graphs": prepared.manifest.splits["train"],
        "batch_size": args.batch_size,
        "streaming_graphs_per_s": [round(r) for r in streamed],
        "in_memory_pyg_graphs_per_s": [round(r) for r in memory],
        "streamed_every_epoch_graphs_per_s": [round(r) for r in streamed_every_epoch],
        "ratio_streamed_every_epoch_vs_in_memory": round(float(np.mean(streamed_every_epoch[steady]) / np.mean(memory[steady])), 3),
        "data_path_only_per_epoch": data_only,
        "ratio_streaming_vs_in_memory": round(float(np.mean(streamed[steady]) / np.mean(memory[steady])), 3),
        "lightning": overhead,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
