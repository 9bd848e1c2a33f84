"""Pretrain → fine-tune vs from scratch on a downstream set, over several seeds.

1. Pretrains once on ``sweeps/pretrain_mix.yaml`` (QM9 DFT properties + RDKit descriptors from
   qm9pack, Tox21 and ZINC from ../shared/data/toymix) with `graphium-ray train`'s code path.
2. For each seed: fine-tunes the checkpoint on ``sweeps/finetune_esol.yaml`` (Ray Train, new head,
   frozen-backbone warm-up) and trains the same architecture from scratch with the same data,
   split, epochs and learning rate; once: the linear probe on frozen embeddings.
3. Writes ``<output>/results.json`` and ``<output>/results.md`` (mean ± std over seeds of the test
   metrics; the split is fixed, only the training seed varies) and prints the JSON.

    python platform/bench/finetune_compare.py --molecules 20000 --seeds 0 1 2 --output docs/finetune
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from graphium_ray.cli import init_ray  # noqa: E402
from graphium_ray.config import load_config, validate  # noqa: E402
from graphium_ray.data.builtin import build_quickstart  # noqa: E402
from graphium_ray.data.prepare import prepare  # noqa: E402
from graphium_ray.train.driver import run_training  # noqa: E402
from graphium_ray.train.finetune import finetune_loop_config, finetune_run_config, linear_probe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def summarize(runs: list[dict], task: str) -> dict:
    out = {}
    for metric in ("mae", "rmse", "r2"):
        values = [r["test"][task][metric] for r in runs if r["test"][task].get(metric) is not None]
        out[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=20000, help="QM9 molecules in the pretraining mix")
    p.add_argument("--pretrain-epochs", type=int, default=12)
    p.add_argument("--epochs", type=int, default=40, help="downstream epochs (fine-tune and scratch)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pretrain-config", default=str(ROOT / "sweeps/pretrain_mix.yaml"))
    p.add_argument("--finetune-config", default=str(ROOT / "sweeps/finetune_esol.yaml"))
    p.add_argument("--output", default="runs/finetune_compare", help="results.json / results.md")
    p.add_argument("--work", default="runs/finetune_compare_work", help="data, caches, checkpoints")
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--pretrained", default=None, help="reuse this checkpoint instead of pretraining")
    args = p.parse_args()

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    init_ray(args.num_cpus)
    cache = str(work / "cache")
    pretrain = {"val": None, "summary": {"wall_seconds": None}}
    if args.pretrained:
        checkpoint = Path(args.pretrained)
    else:
        data_dir = work / "data"
        build_quickstart(data_dir, args.molecules)
        pre_cfg = load_config(args.pretrain_config, [
            f"data.datasets.0.path={data_dir / 'qm9_quantum.parquet'}",
            f"data.datasets.1.path={data_dir / 'descriptors.parquet'}",
            f"data.cache_dir={cache}", f"train.epochs={args.pretrain_epochs}",
        ])  # fmt: skip
        pretrain = run_training(pre_cfg, prepare(pre_cfg.data), work / "pretrain")
        checkpoint = work / "pretrain" / "checkpoint"

    runs: dict[str, list[dict]] = {"finetune": [], "scratch": []}
    task = None
    for seed in args.seeds:
        overrides = [f"train.seed={seed}", f"train.epochs={args.epochs}", f"data.cache_dir={cache}"]
        ft_cfg, state_dict = finetune_run_config(load_config(args.finetune_config, overrides), checkpoint)
        prepared = prepare(ft_cfg.data)
        task = prepared.manifest.tasks[0]["dataset"] + "/" + prepared.manifest.tasks[0]["column"]
        runs["finetune"].append(run_training(ft_cfg, prepared, work / f"finetune_seed{seed}",
                                             loop_extra=finetune_loop_config(ft_cfg, state_dict)))  # fmt: skip
        raw = ft_cfg.model_dump(mode="json")
        raw.pop("finetune")
        scratch_cfg = validate(raw, "scratch baseline")  # same data, architecture, epochs, lr, seed
        runs["scratch"].append(run_training(scratch_cfg, prepared, work / f"scratch_seed{seed}"))
    probe_cfg, _ = finetune_run_config(load_config(args.finetune_config, [f"data.cache_dir={cache}",
                                                                          "finetune.mode=linear_probe"]), checkpoint)  # fmt: skip
    probe = linear_probe(probe_cfg, prepare(probe_cfg.data), work / "linear_probe")

    result = {
        "task": task,
        "seeds": args.seeds,
        "pretrain": {"checkpoint": str(checkpoint), "molecules_qm9": args.molecules, "epochs": args.pretrain_epochs,
                     "val": pretrain["val"], "wall_seconds": pretrain["summary"]["wall_seconds"]},  # fmt: skip
        "downstream_epochs": args.epochs,
        "finetune": summarize(runs["finetune"], task),
        "scratch": summarize(runs["scratch"], task),
        "linear_probe": probe["test"][task],
        "configs": {"pretrain": args.pretrain_config, "finetune": args.finetune_config},
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    lines = [f"Test metrics on `{task}` (mean ± std over seeds {args.seeds}; fixed split)", "",
             "| model | MAE | RMSE | R² |", "|---|---|---|---|"]  # fmt: skip
    for name in ("finetune", "scratch"):
        m = result[name]
        lines.append(f"| {name} | " + " | ".join(f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in ("mae", "rmse", "r2"))
                     + " |")  # fmt: skip
    lp = result["linear_probe"]
    lines.append(f"| linear probe | {lp['mae']:.3f} | {lp['rmse']:.3f} | {lp['r2']:.3f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
