"""``graphium-ray``: prepare | train | evaluate | make-data.

Every command takes a YAML config, repeatable ``--set dotted.key=value`` overrides and ``--output``.
With ``RAY_ADDRESS`` set (e.g. under ``ray job submit``) it joins that cluster; otherwise it starts
a local Ray cluster in-process with ``--num-cpus`` CPUs (default: all).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("WANDB_MODE", "offline")
if not sys.stderr.isatty():  # logs, CI, job submit: no progress bars (must be set before ray.data is imported)
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from graphium_ray.config import ConfigError, RunConfig, load_config  # noqa: E402


def _common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("config", help="YAML run config (e.g. sweeps/quickstart.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.epochs=3 (repeatable)")  # fmt: skip
    p.add_argument("--output", default=None, help="run directory (default: runs/<name>)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: all)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphium-ray", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="ingest + featurize into the cache (reused when inputs are unchanged)")
    _common(p)
    p.add_argument("--force", action="store_true", help="rebuild the cache even if it exists")
    _common(sub.add_parser("train", help="prepare (if needed) and train; writes metrics.json and a checkpoint"))
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a split of the config's data")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (RUN/checkpoint)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p = sub.add_parser("make-data", help="write a built-in dataset (quickstart) to disk")
    p.add_argument("name", choices=["quickstart", "qm9-charges"])
    p.add_argument("--output", default=None, help="default: data/generated/<name>")
    p.add_argument("--molecules", type=int, default=3000)
    return parser


def _init_ray(num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True)
    else:
        # the dashboard (state API) is needed by Ray Train's cleanup; it listens on loopback only
        ray.init(num_cpus=num_cpus or os.cpu_count(), dashboard_host="127.0.0.1", log_to_driver=True)


def _run_dir(cfg: RunConfig, output: str | None) -> Path:
    path = Path(output) if output else Path("runs") / cfg.name
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"--output {path}: not writable ({err.strerror})") from None
    return path


def cmd_prepare(args, cfg: RunConfig) -> int:
    from graphium_ray.data.prepare import prepare

    _init_ray(args.num_cpus)
    prepared = prepare(cfg.data, force=args.force)
    m = prepared.manifest
    print(f"prepared {m['featurized']} molecules ({m['splits']}) in {prepared.root}")
    print(f"skipped {m['skipped']['total']} rows ({m['skipped']['by_stage']}); report: {m['skipped']['report']}")
    return 0


def cmd_train(args, cfg: RunConfig) -> int:
    from graphium_ray.data.prepare import prepare
    from graphium_ray.report import metrics_table
    from graphium_ray.train.driver import run_training

    run_dir = _run_dir(cfg, args.output)
    _init_ray(args.num_cpus)
    prepared = prepare(cfg.data)
    skipped = prepared.manifest["skipped"]
    if skipped["total"]:
        print(f"note: {skipped['total']} input rows were skipped; see {skipped['report']}")
    metrics = run_training(cfg, prepared, run_dir)
    print(metrics_table(metrics))
    print(f"\nrun directory: {run_dir}  (metrics.json, checkpoint/, splits/)")
    return 0


def cmd_evaluate(args, cfg: RunConfig) -> int:
    from graphium_ray.data.prepare import prepare
    from graphium_ray.report import metrics_table
    from graphium_ray.train.predict import evaluate_checkpoint

    _init_ray(args.num_cpus)
    prepared = prepare(cfg.data)
    metrics = evaluate_checkpoint(args.checkpoint, prepared, args.split)
    print(metrics_table({args.split: metrics}, (args.split,)))
    if args.output:
        out = _run_dir(cfg, args.output) / f"evaluate_{args.split}.json"
        out.write_text(json.dumps({args.split: metrics}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "make-data":
            from graphium_ray.data.builtin import build_qm9_charges, build_quickstart

            out = args.output or f"data/generated/{args.name.replace('-', '_')}"
            if args.name == "quickstart":
                print("\n".join(f"{k}: {v}" for k, v in build_quickstart(out, args.molecules).items()))
            else:
                print(f"charges: {build_qm9_charges(out, args.molecules)}")
            return 0
        cfg = load_config(args.config, args.overrides)
        return {"prepare": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate}[args.command](args, cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
