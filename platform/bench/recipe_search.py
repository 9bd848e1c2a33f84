"""Choose the small-data recipe's defaults on *validation* splits only (never test).

Trains the same network, loss, normalization, schedule and selection as ``graphium-ray train``
(the :class:`~graphium_ray.train.module.MultiTaskModule` in a one-process Lightning ``Trainer``,
without Ray Train, so one variant on one split takes seconds), on the fixed splits that
``vs_chemprop.py`` writes, and reports the selected epoch's validation metric per dataset and seed.
Ray is used once, to prepare (featurize) each dataset/split through the normal pipeline.

    python platform/bench/recipe_search.py --datasets esol freesolv --seeds 0 1 2 \\
        --variant base= --variant mpnn=model.layer=mpnn --variant wide=model.hidden_dim=300

Each ``--variant NAME=OVERRIDE[;OVERRIDE...]`` is applied on top of ``sweeps/small_data.yaml``.
With ``--checkpoint builtin:NAME`` (or a run directory) the variants are fine-tuning settings instead,
applied on top of ``pretrain_transfer.py``'s fine-tuning config (the pretrained backbone and
featurizer, new heads, ``finetune.*`` as set), so fine-tuning is chosen on validation too:

    python platform/bench/recipe_search.py --checkpoint builtin:graphium-ray-moses-qm9 --datasets lipophilicity \
        --variant base= --variant bb01=finetune.backbone_lr_ratio=0.1
``tox21_qm9`` (Tox21 next to the 19 ToyMix QM9 targets of ``--qm9`` qm9pack molecules, as in
``vs_chemprop.py``) reports Tox21's mean validation AUROC (the QM9 tasks have none).
Results are appended to ``<output>/recipe_search.jsonl`` (one line per variant, dataset, seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pretrain_transfer import downstream_config  # noqa: E402  (the fine-tuning benchmark's config)
from vs_chemprop import DATASETS, graphium_config  # noqa: E402  (same configs as the benchmark)


def val_metric_name(kind: str) -> tuple[str, str]:
    return ("auroc", "max") if kind == "binary" else ("mae", "min")


def train_one(cfg, prepared, threads: int, pretrained: dict | None = None) -> dict:
    """Fit in one process (from ``pretrained`` weights when fine-tuning); returns the selected epoch
    and its validation loss / mean metric."""
    import lightning.pytorch as pl
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import torch

    from graphium_ray.config import ConfigError
    from graphium_ray.data.collate_fn import GraphCollate
    from graphium_ray.nn.build import build_network
    from graphium_ray.train.finetune import load_pretrained
    from graphium_ray.train.lean_trainer import lean_trainer_kwargs
    from graphium_ray.train.loop import seed_everything
    from graphium_ray.train.module import MultiTaskModule
    from graphium_ray.train.selection import check_selectable, metric_value, validation_metrics, validation_record

    try:  # the driver's check: an unknown selection metric stops here, not after training
        check_selectable(cfg.train.select.metric, prepared.tasks)
    except ConfigError as e:
        raise SystemExit(f"recipe_search: {e}") from None
    torch.set_num_threads(threads)
    data = prepared.manifest
    table = pq.read_table(prepared.featurized_dir)
    split = {s: table.filter(pc.equal(table["split"], s)) for s in ("train", "val")}
    collate = GraphCollate(data.label_widths, data.bond_dim)
    batch_size = cfg.train.batch_size
    seed_everything(cfg.train.seed)
    built = build_network(cfg.model, data)
    net = built.model
    finetune = cfg.finetune if pretrained is not None else None
    if finetune is not None:
        load_pretrained(net, pretrained, keep_heads=finetune.heads == "keep_matching")
    tasks = data.task_specs
    steps = -(-split["train"].num_rows // batch_size)
    module = MultiTaskModule(net, tasks, data.label_stats, cfg.train, steps, lr_mult=built.lr_mult,
                             frozen_epochs=finetune.freeze_backbone_epochs if finetune else 0,
                             backbone_lr_ratio=finetune.backbone_lr_ratio if finetune else 1.0)  # fmt: skip

    class Train:
        def __iter__(self):
            order = np.random.default_rng([cfg.train.seed, module.global_epoch]).permutation(split["train"].num_rows)
            for start in range(0, len(order), batch_size):
                yield collate(split["train"].take(pa.array(order[start:start + batch_size])))

    class Val:  # a re-iterable, not a list (Lightning reads a list as several dataloaders)
        batches = [collate(split["val"].slice(i, 256)) for i in range(0, split["val"].num_rows, 256)]

        def __iter__(self):
            return iter(self.batches)

    history = []

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            history.append({"epoch": pl_module.current_epoch + 1, **validation_record(pl_module.val_result)})

    trainer = pl.Trainer(max_epochs=cfg.train.epochs, accelerator="cpu", devices=1, gradient_clip_val=cfg.train.grad_clip,
                         callbacks=[Record()], precision=cfg.train.precision, **lean_trainer_kwargs())  # fmt: skip
    trainer.fit(module, train_dataloaders=Train(), val_dataloaders=Val())
    sel = cfg.train.select
    values = np.array([np.nan if (v := metric_value(h, sel.metric)) is None else v for h in history])
    if np.isnan(values).all():
        raise SystemExit(f"recipe_search: train.select.metric {sel.metric!r} was never reported; "
                         f"this run reports {sorted(validation_metrics(history[-1]))[:8]}…")  # fmt: skip
    best = int(np.nanargmin(values) if sel.mode == "min" else np.nanargmax(values))
    return {**history[best], "last": history[-1], "history": history}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default=str(ROOT / "runs" / "vs_chemprop"))
    p.add_argument("--datasets", nargs="+", default=["bbbp", "esol", "freesolv", "lipophilicity"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variant", action="append", required=True, help="NAME=override[;override...]")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--qm9", type=int, default=20000, help="QM9 molecules for tox21_qm9 (vs_chemprop.py's default)")
    p.add_argument("--checkpoint", default=None, help="search fine-tuning settings from this pretrained checkpoint")
    p.add_argument("--finetune-epochs", type=int, default=30, help="with --checkpoint (pretrain_transfer.py's default)")
    args = p.parse_args()
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    import ray

    from graphium_ray.config import apply_overrides, validate
    from graphium_ray.data.prepare import prepare
    from graphium_ray.train.finetune import finetune_run_config
    from graphium_ray.train.selection import metric_value

    if not ray.is_initialized():  # (a test runs this on its session's cluster)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    out = Path(args.output)
    log = out / "recipe_search.jsonl"
    qm9_path = None
    if "tox21_qm9" in args.datasets:
        from graphium_ray.data.builtin import build_qm9_toymix

        qm9_path = Path(build_qm9_toymix(str(out / "qm9"), args.qm9))
    for variant in args.variant:
        name, _, spec = variant.partition("=")
        overrides = [o for o in spec.split(";") if o]
        for dataset in args.datasets:
            metric, _ = val_metric_name(DATASETS["tox21" if dataset == "tox21_qm9" else dataset]["kind"])
            for seed in args.seeds:
                pretrained = None
                if args.checkpoint:
                    work = out / "finetune_search" / dataset / f"seed{seed}"
                    raw = downstream_config(dataset, seed, out, work, "finetuned", args.finetune_epochs)
                    cfg, pretrained = finetune_run_config(validate(apply_overrides(raw, overrides), dataset), args.checkpoint)
                else:
                    cfg = validate(apply_overrides(graphium_config(dataset, seed, out, qm9_path), overrides), dataset)
                prepared = prepare(cfg.data)
                started = time.time()
                best = train_one(cfg, prepared, args.threads, pretrained)
                mean = f"val/mean/{metric}"  # over the tasks that report it (tox21_qm9: Tox21's 12)
                row = {"variant": name, "overrides": overrides, "checkpoint": args.checkpoint, "dataset": dataset, "seed": seed,
                       "epoch": best["epoch"], "val_loss": best["val_loss"], f"val_{metric}": metric_value(best, mean),
                       f"last_val_{metric}": metric_value(best["last"], mean), "last_val_loss": best["last"]["val_loss"],
                       "seconds": round(time.time() - started, 1),
                       # every epoch's (validation loss, mean metric): other selection rules, read from the same run
                       "curve": [[round(h["val_loss"], 5), round(metric_value(h, mean), 5)] for h in best["history"]]}  # fmt: skip
                with open(log, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
