"""Does the shipped pretrained model help small downstream tasks? Side by side on the same splits.

For BBBP, ESOL, FreeSolv, Lipophilicity (balanced Bemis–Murcko scaffold splits 0.8/0.1/0.1, seeds
0–2: the very split files of ``vs_chemprop.py``, read from its output directory) and Tox21 (the
shared random splits), seed k = split k and training seed k:

* ``finetuned``: ``graphium-ray finetune builtin:<model>`` with the small-data recipe's training
  settings (``sweeps/small_data.yaml``: global batch 32, warm-up + cosine, selection on validation
  loss) for ``--finetune-epochs`` epochs; new task heads, backbone frozen for the first 2 epochs.
* ``scratch``: the same architecture (GINE 128×4, head 128×2, the default featurizer: the
  pretrained model reads no molecule-level descriptors) trained from random weights with the
  small-data recipe as it is (50 epochs, standard parametrization).
* ``probe``: ridge / logistic regression on the frozen pooled embeddings (α chosen on validation).
* ``chemprop``: chemprop v2 defaults, read from (or run into) ``vs_chemprop.py``'s directory.

Runs are cached per (variant, dataset, seed) in ``<output>/<variant>/<dataset>/seed<k>/result.json``,
so several invocations (e.g. one per variant, in parallel) can fill one output directory; the
table is built from every finished run. Test predictions of ``finetuned``, ``scratch`` and ``chemprop`` are scored by the same code on
exactly chemprop's test rows (``vs_chemprop.score``); the probe is scored by graphium-ray's metrics
on its own test split (the same rows, duplicates merged). Results: ``<output>/results.json`` and
``<output>/results.md`` (mean ± std over seeds, the worst seed of the fine-tuned model).

    python platform/bench/pretrain_transfer.py --output runs/pretrain_transfer
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_chemprop as vc  # noqa: E402  (the shared splits, chemprop runner and scorer)

ROOT = vc.ROOT
BUILTIN = "builtin:graphium-ray-moses-qm9"
VARIANTS = ("finetuned", "scratch", "probe", "chemprop")


def downstream_config(name: str, seed: int, splits_dir: Path, work: Path, variant: str, finetune_epochs: int,
                      descriptors: bool = False) -> dict:  # fmt: skip
    """The small-data recipe on one dataset/seed, without its molecule-level descriptor inputs unless
    ``descriptors`` (never for the probe); for the pretrained variants, the ``finetune`` section and
    fine-tuning's epochs."""
    raw = vc.graphium_config(name, seed, splits_dir, None)
    if not descriptors or variant == "probe":
        raw["data"]["featurizer"].pop("molecule", None)
    if not raw["data"]["featurizer"]:
        raw["data"].pop("featurizer")
    raw["data"]["cache_dir"] = str(work.parents[2] / "cache")
    raw["name"] = f"{name}_{variant}_seed{seed}"
    raw["data"]["datasets"][0]["tasks"][0]["metrics"] = ["auroc"] if vc.DATASETS[name]["kind"] == "binary" else ["mae", "rmse"]
    if variant in ("finetuned", "probe"):
        raw["finetune"] = {"freeze_backbone_epochs": 2, "heads": "replace",
                           "mode": "linear_probe" if variant == "probe" else "full"}  # fmt: skip
        raw["train"]["epochs"] = finetune_epochs
    return raw


def run_variant(name: str, seed: int, variant: str, args) -> dict:
    work = Path(args.output) / variant / name / f"seed{seed}"
    result_file = work / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    splits_dir = Path(args.chemprop_dir)
    if variant == "chemprop":
        return vc.run_chemprop(name, seed, splits_dir)
    from graphium_ray.config import apply_overrides, validate
    from graphium_ray.data.prepare import prepare
    from graphium_ray.train.driver import run_training
    from graphium_ray.train.finetune import finetune_loop_config, finetune_run_config, linear_probe

    raw = downstream_config(name, seed, splits_dir, work, variant, args.finetune_epochs, args.descriptors)
    cfg = validate(apply_overrides(raw, args.finetune_set) if variant == "finetuned" else raw, name)
    extra = None
    if variant in ("finetuned", "probe"):
        cfg, state_dict = finetune_run_config(cfg, args.checkpoint)
        extra = finetune_loop_config(cfg, state_dict) if variant == "finetuned" else None
    started = time.time()
    prepared = prepare(cfg.data)
    kind = vc.DATASETS[name]["kind"]
    if variant == "probe":
        metrics = linear_probe(cfg, prepared, work / "run")
        key = "auroc" if kind == "binary" else "mae"
        result = {key: float(np.mean([m[key] for m in metrics["test"].values() if m.get(key) is not None]))}
        if kind == "regression":
            result["rmse"] = float(np.mean([m["rmse"] for m in metrics["test"].values()]))
    else:
        if not (work / "run" / "test_predictions.parquet").exists():
            run_training(cfg, prepared, work / "run", loop_extra=extra)
        y, pred = vc.graphium_test_rows(name, seed, splits_dir, work / "run" / "test_predictions.parquet")
        result = {**vc.score(kind, y, pred), "n_test": len(y)}
    result["seconds"] = round(time.time() - started, 1)
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(result))
    return result


def reuse_scratch(source: Path, out: Path, datasets: list[str], seeds: list[int]) -> None:
    """Copy ``source/<dataset>/seed<k>/result.json`` to ``out/scratch/...`` (noting where from)."""
    for name in datasets:
        for seed in seeds:
            found, target = source / name / f"seed{seed}" / "result.json", out / "scratch" / name / f"seed{seed}" / "result.json"
            if found.exists() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps({**json.loads(found.read_text()), "reused_from": str(found)}))


def summarize(results: dict) -> str:
    """One row per dataset and metric: mean ± std per variant, the fine-tuned model's worst seed and
    whether it beats both from-scratch baselines (the issue's measure)."""
    lines = ["| dataset | metric | " + " | ".join(f"{v} (mean ± std)" for v in VARIANTS)
             + " | fine-tuned worst seed | fine-tuned beats scratch and chemprop |", "|---" * (len(VARIANTS) + 4) + "|"]  # fmt: skip
    for name, by_variant in results.items():
        kind = vc.DATASETS[name]["kind"]
        for metric in ["auroc"] if kind == "binary" else ["mae", "rmse"]:
            means, cells = {}, []
            for variant in VARIANTS:
                values = [r[metric] for r in by_variant.get(variant, {}).values() if metric in r]
                means[variant] = float(np.mean(values)) if values else None
                cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f} (n={len(values)})" if values else "—")
            runs = by_variant.get("finetuned", {})
            worst, verdict = "", ""
            if runs:
                seed = (min if metric == "auroc" else max)(runs, key=lambda s: runs[s][metric])
                worst = f"seed {seed}: {runs[seed][metric]:.3f}"
                others = [means[v] for v in ("scratch", "chemprop") if means[v] is not None]
                better = (lambda a, b: a > b) if metric == "auroc" else (lambda a, b: a < b)
                verdict = "yes" if others and all(better(means["finetuned"], o) for o in others) else "no"
            lines.append(f"| {name} | {metric} | " + " | ".join(cells) + f" | {worst} | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default=str(ROOT / "runs" / "pretrain_transfer"))
    p.add_argument("--checkpoint", default=BUILTIN)
    p.add_argument("--chemprop-dir", default=str(ROOT / "runs" / "vs_chemprop"),
                   help="vs_chemprop.py's output: its split files and chemprop results are reused")  # fmt: skip
    p.add_argument("--datasets", nargs="+", default=["bbbp", "esol", "freesolv", "lipophilicity", "tox21"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--finetune-epochs", type=int, default=30)
    p.add_argument("--finetune-set", action="append", default=[], metavar="KEY=VALUE",
                   help="fine-tuning settings on top of the defaults (chosen with recipe_search.py --checkpoint)")
    p.add_argument("--descriptors", action="store_true",
                   help="fine-tuned and scratch models also read RDKit 2D descriptors (featurizer.molecule: "
                        "[rdkit2d]); scratch is then exactly sweeps/small_data.yaml")  # fmt: skip
    p.add_argument("--reuse-scratch", default=None, metavar="DIR",
                   help="take scratch results already run with the same config (e.g. vs_chemprop.py's "
                        "runs/vs_chemprop/graphium with --descriptors) instead of training them again")  # fmt: skip
    p.add_argument("--num-cpus", type=int, default=None)
    args = p.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.reuse_scratch:
        reuse_scratch(Path(args.reuse_scratch), out, args.datasets, args.seeds)
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    sys.path.insert(0, str(ROOT))
    from graphium_ray.cli import init_ray

    init_ray(args.num_cpus)
    for name in args.datasets:
        for variant in args.variants:
            for seed in args.seeds:
                print(f"{name} {variant} seed {seed}: {run_variant(name, seed, variant, args)}", flush=True)
    # every finished run (also those of another invocation writing to the same --output), chemprop's from its dir
    results: dict = {}
    for name in args.datasets:
        for variant in VARIANTS:
            base = Path(args.chemprop_dir) / "chemprop" if variant == "chemprop" else out / variant
            for seed in args.seeds:
                path = base / name / f"seed{seed}" / "result.json"
                if path.exists():
                    results.setdefault(name, {}).setdefault(variant, {})[str(seed)] = json.loads(path.read_text())
    (out / "results.json").write_text(json.dumps(results, indent=1))
    table = summarize(results)
    settings = (f"fine-tuning epochs: {args.finetune_epochs}; settings on top of the defaults: "
                + (", ".join(args.finetune_set) or "none")
                + f"; descriptor inputs (rdkit2d) for fine-tuned and scratch: {'yes' if args.descriptors else 'no'}")
    (out / "results.md").write_text(settings + "\n\n" + table + "\n")
    print(table)


if __name__ == "__main__":
    main()
