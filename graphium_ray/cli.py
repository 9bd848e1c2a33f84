"""``graphium-ray``: prepare | train | evaluate | predict | fingerprint | finetune | sweep | coord-check | make-data.

The commands over a run config (prepare, train, evaluate, finetune) take the YAML, repeatable
``--set dotted.key=value`` overrides and ``--output``; ``sweep`` takes a sweep YAML, ``predict`` /
``fingerprint`` a checkpoint and input files, ``make-data`` a dataset name. Every command is one
``cmd_*(args)`` in :data:`COMMANDS`. With ``RAY_ADDRESS`` set (e.g. under ``ray job submit``) it joins that cluster; otherwise it starts
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
from graphium_ray.errors import DEBUG_ENV, debug_requested, exit_code, one_line  # noqa: E402


def _common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("config", help="YAML run config (e.g. sweeps/quickstart.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.epochs=3 (repeatable)")  # fmt: skip
    p.add_argument("--output", default=None, help="run directory (default: runs/<name>)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: all)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphium-ray", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of a failure (also: {DEBUG_ENV}=1)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="ingest + featurize into the cache (reused when inputs are unchanged)")
    _common(p)
    p.add_argument("--force", action="store_true", help="rebuild the cache even if it exists")
    p = sub.add_parser("train", help="prepare (if needed) and train; writes metrics.json and a checkpoint")
    _common(p)
    p.add_argument("--from-sweep", default=None, metavar="SWEEP_DIR",
                   help="start from everything a finished sweep fixed (its overrides, parametrization, base "
                        "width) and its best hyperparameters; µP transfer: add --set model.hidden_dim=WIDE. "
                        "--set overrides still win, but one that contradicts the sweep is refused")  # fmt: skip
    p = sub.add_parser("sweep", help="Ray Tune sweep (Optuna + ASHA) over Ray Train trials")
    p.add_argument("sweep", help="sweep YAML (see sweeps/quickstart_sweep.yaml)")
    p.add_argument("--output", default=None, help="sweep directory (default: runs/sweeps/<name>)")
    p.add_argument("--num-cpus", type=int, default=None)
    p = sub.add_parser("coord-check", help="µP coordinate check: activation scale vs width, PNG + JSON")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--output", default="runs/coord_check")
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a split of the config's data")
    _common(p)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (RUN/checkpoint), a run directory or builtin:NAME (a shipped model)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    for name, helptext in (("predict", "batch predictions per task, in real units, for SMILES files"),
                           ("fingerprint", "per-molecule embeddings from a layer of a trained model")):  # fmt: skip
        p = sub.add_parser(name, help=helptext)
        p.add_argument("checkpoint", help="checkpoint directory (RUN/checkpoint), a run directory or builtin:NAME (a shipped model)")
        p.add_argument("inputs", nargs="+", help="CSV/Parquet files, globs or URLs with a SMILES column")
        p.add_argument("--output", required=True, help="OUT.parquet (one file, input order) or a directory")
        p.add_argument("--smiles-column", default="smiles")
        p.add_argument("--keep-column", dest="keep_columns", action="append", default=[],
                       help="input column to copy to the output, e.g. an ID (repeatable)")  # fmt: skip
        p.add_argument("--batch-size", type=int, default=256)
        p.add_argument("--num-cpus", type=int, default=None)
        if name == "fingerprint":
            p.add_argument("--layer", default="graph",
                           help="graph (pooled graph embedding, default) or layer_0 … layer_{L-1} (pooled)")  # fmt: skip
    p = sub.add_parser("finetune", help="fine-tune a pretrained checkpoint on the config's datasets")
    p.add_argument("checkpoint", help="pretrained checkpoint directory (RUN/checkpoint), a run directory or builtin:NAME (a shipped model, e.g. builtin:graphium-ray-moses-qm9)")
    _common(p)
    p = sub.add_parser("make-data", help="write a built-in dataset (quickstart, qm9-charges, pretrain) to disk")
    p.add_argument("name", choices=["quickstart", "qm9-charges", "pretrain"])
    p.add_argument("--output", default=None, help="default: data/generated/<name>")
    p.add_argument("--molecules", type=int, default=None,
                   help="molecules to write (default: 3000; pretrain: 100000 MOSES molecules)")  # fmt: skip
    p.add_argument("--num-cpus", type=int, default=None, help="pretrain: CPUs of the local Ray cluster")
    return parser


# what Ray's dashboard imports before it starts (ray/dashboard/optional_deps.py), top-level names
DASHBOARD_MODULES = ("aiohttp", "aiohttp_cors", "opencensus", "opentelemetry", "prometheus_client")


def local_cluster_options(num_cpus: int | None) -> dict:
    """``ray.init`` options for a local cluster that stays out of the way of any other Ray cluster on
    the machine. The dashboard (state API, needed by Ray Train's placement-group cleaner) listens on
    loopback at a port picked here, and every worker of the job is told that address
    (``RAY_API_SERVER_ADDRESS``): without it, Ray's state clients look for "the" cluster and fail with
    "Found multiple active Ray instances" when another one runs, so placement groups were never
    released and the next training waited forever."""
    import importlib.util
    import socket

    missing = [m for m in DASHBOARD_MODULES if importlib.util.find_spec(m) is None]
    if missing:  # a minimal Ray (e.g. a GPU image's ray[train]): ray.init would refuse to start
        logging.getLogger("graphium_ray").warning(
            "starting the local Ray cluster without its dashboard: %s not installed (pip install 'ray[default]'); "
            "with another Ray cluster on this machine, Ray Train may then fail to release its placement groups",
            ", ".join(missing))
        return {"num_cpus": num_cpus or os.cpu_count(), "include_dashboard": False}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {"num_cpus": num_cpus or os.cpu_count(), "dashboard_host": "127.0.0.1", "dashboard_port": port,
            "include_dashboard": True,
            "runtime_env": {"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}}}  # fmt: skip


def stop_cluster(temp_dir: str) -> None:
    """Kill the processes of the Ray cluster started with ``ray start --temp-dir=temp_dir`` and only
    those (``ray stop`` stops every cluster of the machine, e.g. a test session's own)."""
    import psutil

    victims = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if temp_dir in " ".join(proc.info["cmdline"] or []):
                victims.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in victims:
        for p in [*proc.children(recursive=True), proc]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
    psutil.wait_procs(victims, timeout=10)


def init_ray(num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True)
    else:
        options = local_cluster_options(num_cpus)
        os.environ.update(options.get("runtime_env", {}).get("env_vars", {}))  # the dashboard's address, if any
        ray.init(address="local", **options, log_to_driver=True)  # a new cluster, never another job's


def _run_dir(cfg: RunConfig, output: str | None) -> Path:
    path = (Path(output) if output else Path("runs") / cfg.name).resolve()  # printed: say exactly where
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"--output {path}: not writable ({err.strerror})") from None
    return path


def cmd_prepare(args) -> int:
    cfg = run_config(args)
    from graphium_ray.data.prepare import prepare

    prepared = prepare(cfg.data, force=args.force, start_ray=lambda: init_ray(args.num_cpus))  # none for a small input
    m = prepared.manifest
    print(f"prepared {m.featurized} molecules ({m.splits}) in {prepared.root}")
    print(f"skipped {m.skipped['total']} rows ({m.skipped['by_stage']}); report: {m.skipped['report']}")
    return 0


def cmd_train(args) -> int:
    cfg = run_config(args)
    from graphium_ray.data.prepare import prepare
    from graphium_ray.report import metrics_table
    from graphium_ray.train.driver import run_training

    run_dir = _run_dir(cfg, args.output)
    init_ray(args.num_cpus)
    prepared = prepare(cfg.data)
    skipped = prepared.manifest.skipped
    if skipped["total"]:
        print(f"note: {skipped['total']} input rows were skipped; see {skipped['report']}")
    if getattr(args, "provenance", None):
        (run_dir / "hyperparameters_from.json").write_text(json.dumps(args.provenance, indent=2, default=float))
    metrics = run_training(cfg, prepared, run_dir)
    print(metrics_table(metrics, units={t.name: t.unit for t in prepared.tasks}))
    selection = metrics.get("selection")
    if selection:
        print(f"\nselected epoch {selection['epoch']} by {selection['metric']} ({selection['mode']}); "
              "test scored once with it")
    if "ensemble" in metrics:
        print(f"\nensemble of the {cfg.train.replicates} replicates (mean prediction; test_predictions.parquet):")
        print(metrics_table(metrics["ensemble"], splits=("test",), units={t.name: t.unit for t in prepared.tasks}))
    print(f"run directory: {run_dir}  (metrics.json, epochs.csv, learning_curve.png, test_predictions.parquet, "
          "checkpoint/, splits/)")
    return 0


def cmd_evaluate(args) -> int:
    cfg = run_config(args)
    from graphium_ray.data.prepare import prepare
    from graphium_ray.report import metrics_table
    from graphium_ray.train.evaluate_checkpoint import evaluate_checkpoint

    start_ray = lambda: init_ray(args.num_cpus)  # noqa: E731  (only when a step needs Ray: not for a small set)
    prepared = prepare(cfg.data, start_ray=start_ray)
    metrics = evaluate_checkpoint(args.checkpoint, prepared, args.split, start_ray=start_ray)
    print(metrics_table({args.split: metrics}, (args.split,)))
    if args.output:
        out = _run_dir(cfg, args.output) / f"evaluate_{args.split}.json"
        out.write_text(json.dumps({args.split: metrics}, indent=2))
    return 0


def cmd_sweep(args) -> int:
    from graphium_ray.tune.sweep import run_sweep
    from graphium_ray.tune.sweep_config import load_sweep

    sweep, _, _ = load_sweep(args.sweep)  # validate before starting Ray
    init_ray(args.num_cpus)
    out = Path(args.output or Path("runs") / "sweeps" / sweep.name)
    summary = run_sweep(args.sweep, out)
    print(f"best {summary['metric']} = {summary['value']:.6g} with {summary['params']} ({summary['trials']} trials)")
    print(f"sweep directory: {out}  (trials.csv, best_params.json, best_config.yaml)")
    return 0


def cmd_coord_check(args) -> int:
    from graphium_ray.train.coord_check import coord_check, write

    result = coord_check(sorted(args.widths), lr=args.lr)
    png = write(result, args.output)
    for param in ("sp", "mup"):
        last = {w: round(v["block_2"], 3) for w, v in result[param].items()}
        print(f"{param:>4}: last block mean |activation| by width {last}")
    print(f"plot: {png}")
    return 0


def cmd_infer(args) -> int:
    from graphium_ray.inference.pipeline import run_inference

    mode = "embed" if args.command == "fingerprint" else "predict"
    summary = run_inference(args.checkpoint, args.inputs, args.output, smiles_column=args.smiles_column,
                            keep_columns=tuple(args.keep_columns), mode=mode, layer=getattr(args, "layer", "graph"),
                            batch_size=args.batch_size, start_ray=lambda: init_ray(args.num_cpus))  # fmt: skip
    where = "in this process (a small input)" if summary["where"] == "driver" else "on the Ray cluster"
    print(f"wrote {summary['rows']} rows to {summary['output']}; {summary['errors']} without output "
          f"(reason in the 'error' column); computed {where}")  # fmt: skip
    return 0


def cmd_finetune(args) -> int:
    cfg = run_config(args)
    from graphium_ray.data.prepare import prepare
    from graphium_ray.report import metrics_table
    from graphium_ray.train.driver import run_training
    from graphium_ray.train.finetune import finetune_loop_config, finetune_run_config, linear_probe

    cfg, state_dict = finetune_run_config(cfg, args.checkpoint)
    run_dir = _run_dir(cfg, args.output)
    init_ray(args.num_cpus)
    prepared = prepare(cfg.data)
    (run_dir / "finetuned_from.json").write_text(json.dumps(cfg.finetune.model_dump(), indent=2))
    if cfg.finetune.mode == "linear_probe":
        metrics = linear_probe(cfg, prepared, run_dir)
    else:
        metrics = run_training(cfg, prepared, run_dir, loop_extra=finetune_loop_config(cfg, state_dict))
    print(metrics_table(metrics))
    print(f"\nrun directory: {run_dir}")
    return 0


def sweep_overrides(sweep_dir: str) -> tuple[list[str], dict]:
    """What a finished sweep fixed, as --set overrides (its own overrides, the parametrization and
    base width it ran under, then its best parameters), and where they came from."""
    from graphium_ray.tune.sweep import params_as_overrides

    best = Path(sweep_dir) / "best_params.json"
    if not best.is_file():
        raise ConfigError(f"--from-sweep {sweep_dir}: no best_params.json (has the sweep finished?)")
    summary = json.loads(best.read_text())
    fixed = summary.get("fixed")
    if fixed is None:
        raise ConfigError(f"--from-sweep {sweep_dir}: best_params.json predates 'fixed' (parametrization, width); "
                          "rerun the sweep")  # fmt: skip
    carried = [*fixed["overrides"], f"model.parametrization={fixed['parametrization']}"]
    if fixed["parametrization"] == "mup":
        carried.append(f"model.base_hidden_dim={fixed['base_hidden_dim']}")
    return carried + params_as_overrides(summary["params"]), {"sweep_dir": str(Path(sweep_dir).resolve()), **summary}


def check_sweep_transfer(cfg: RunConfig, provenance: dict) -> None:
    """Refuse a run that contradicts what the sweep's hyperparameters were tuned under."""
    fixed = provenance["fixed"]
    where = f"--from-sweep {provenance['sweep_dir']}"
    if cfg.model.parametrization != fixed["parametrization"]:
        raise ConfigError(f"{where}: the sweep tuned model.parametrization={fixed['parametrization']}; "
                          f"this run sets {cfg.model.parametrization}, so its learning rate would not transfer")  # fmt: skip
    if fixed["parametrization"] == "mup" and cfg.model.base_hidden_dim != fixed["base_hidden_dim"]:
        raise ConfigError(f"{where}: µP transfer needs model.base_hidden_dim={fixed['base_hidden_dim']} (the sweep's "
                          f"base width); got {cfg.model.base_hidden_dim}")  # fmt: skip
    if fixed["parametrization"] == "sp" and cfg.model.hidden_dim != fixed["width"]:
        raise ConfigError(f"{where}: the sweep tuned a standard-parametrization model at width {fixed['width']}; "
                          f"its hyperparameters do not transfer to model.hidden_dim={cfg.model.hidden_dim} "
                          "(sweep with model.parametrization=mup to tune narrow and train wide)")  # fmt: skip


def run_config(args) -> RunConfig:
    """The validated run config of a config command: the YAML, what ``--from-sweep`` carries, then
    ``--set`` overrides (checked against the sweep); ``args.provenance`` records the sweep."""
    provenance = None
    if getattr(args, "from_sweep", None):
        from_sweep, provenance = sweep_overrides(args.from_sweep)
        args.overrides = from_sweep + args.overrides
    cfg = load_config(args.config, args.overrides)
    if provenance is not None:
        check_sweep_transfer(cfg, provenance)
    if cfg.train.accelerator == "ipu" and args.command in ("train", "finetune"):
        from graphium_ray.train.devices import require_poptorch

        require_poptorch()  # before any work: PopTorch is not on PyPI
    args.provenance = provenance
    return cfg


def cmd_make_data(args) -> int:
    from graphium_ray.data.builtin import build_qm9_charges, build_quickstart

    out = args.output or f"data/generated/{args.name.replace('-', '_')}"
    if args.molecules is not None and args.molecules < 1:
        raise ConfigError(f"--molecules {args.molecules}: must be at least 1")
    if args.name == "quickstart":
        print("\n".join(f"{k}: {v}" for k, v in build_quickstart(out, args.molecules or 3000).items()))
    elif args.name == "qm9-charges":
        print(f"charges: {build_qm9_charges(out, args.molecules or 3000)}")
    else:
        from graphium_ray.data.pretrain_data import build_pretrain

        init_ray(args.num_cpus)
        paths = build_pretrain(out, args.molecules or 100_000)
        kept = json.loads(paths["kept"].read_text())
        print("\n".join(f"{k}: {v}" for k, v in paths.items()))
        print(f"{kept['molecules']} MOSES molecules, {len(kept['kept'])} descriptors kept, {len(kept['dropped'])} "
              f"dropped, {kept['skipped']} molecules skipped (reasons in {paths['skipped']})")  # fmt: skip
    return 0


COMMANDS = {"prepare": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate, "finetune": cmd_finetune,
            "sweep": cmd_sweep, "coord-check": cmd_coord_check, "predict": cmd_infer, "fingerprint": cmd_infer,
            "make-data": cmd_make_data}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        if debug_requested(args.debug):
            raise
        print("interrupted: rerun the same command to resume (finished work is kept)", file=sys.stderr)
        return 130
    except Exception as err:  # every failure is one line unless --debug: the cause, not Ray's wrappers
        if debug_requested(args.debug):
            raise
        hint = "" if exit_code(err) == 2 else f" (rerun with --debug or {DEBUG_ENV}=1 for the traceback)"
        print(f"error: {one_line(err)}{hint}", file=sys.stderr)
        return exit_code(err)


if __name__ == "__main__":
    sys.exit(main())
