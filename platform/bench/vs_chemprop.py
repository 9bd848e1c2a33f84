"""graphium-ray vs chemprop v2, side by side on the same fixed splits, 3 seeds each.

Datasets: Tox21 (12 sparse binary tasks; the shared random splits
``../shared/data/toymix/tox21_splits/seed{0,1,2}.csv``) and BBBP, ESOL, FreeSolv, Lipophilicity
(``../shared/data/downstream/``) with balanced Bemis–Murcko scaffold splits 0.8/0.1/0.1 that this
script writes to ``<output>/splits/<dataset>/seed<k>.csv`` (Graphium's split-file format) and keeps.
Seed k uses split k and training seed k for both tools.

* chemprop: its own virtual environment (``.bench_venvs/chemprop``, created here with the CPU
  torch and ``chemprop`` from PyPI), its CLI defaults; the test split is scored with the
  checkpoint chemprop selects (best validation loss).
* graphium-ray: ``sweeps/small_data.yaml`` (the small-data recipe) through the normal
  ``train`` path; the test split is scored once with the checkpoint selected on validation.
* ``tox21_qm9``: Tox21 multi-task with all 19 ToyMix QM9 properties from qm9pack (``--qm9``
  molecules), same Tox21 splits; QM9 molecules get a random split.

Both tools' test predictions are scored by the same code (scikit-learn AUROC per task, averaged
over tasks; MAE / RMSE), so the numbers compare exactly. Results: ``<output>/results.json`` and a
Markdown table ``<output>/results.md`` (mean ± std over seeds, the worst seed named).

Your own data (``--csv``): one CSV with a SMILES column and one or more label columns (``--kind
binary`` or ``regression``; empty cells are missing labels). Rows that RDKit cannot parse, or whose
label is not a number (or infinite, or a binary label other than 0/1), are left out of both tools'
data and listed with the reason in ``<output>/data/<name>_skipped.csv``; the kept rows are
``<output>/data/<name>.csv``, which both tools read, split by the same scaffold split files (or
by your own, ``--splits DIR`` with ``seed<k>.csv`` files of the CSV's row indices).

    python platform/bench/vs_chemprop.py --output runs/vs_chemprop                 # everything
    python platform/bench/vs_chemprop.py --tools chemprop --datasets esol bbbp     # a part
    python platform/bench/vs_chemprop.py --csv my_assay.csv --smiles-column smiles \
        --targets pIC50 --kind regression --output runs/vs_chemprop_my_assay       # your data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
# the datasets; GRAPHIUM_RAY_SHARED_DATA points elsewhere (a copy carried to another machine)
SHARED = Path(os.environ.get("GRAPHIUM_RAY_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHEMPROP_VENV = ROOT / ".bench_venvs" / "chemprop"
TOX21_TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
               "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]  # fmt: skip
DATASETS = {
    "tox21": {"file": "toymix/tox21.csv", "smiles": "smiles", "targets": TOX21_TASKS, "kind": "binary"},
    "bbbp": {"file": "downstream/bbbp.csv", "smiles": "smiles", "targets": ["p_np"], "kind": "binary"},
    "esol": {"file": "downstream/esol.csv", "smiles": "smiles", "targets": ["measured log solubility in mols per litre"],
             "kind": "regression"},
    "freesolv": {"file": "downstream/freesolv.csv", "smiles": "smiles", "targets": ["expt"], "kind": "regression"},
    "lipophilicity": {"file": "downstream/lipophilicity.csv", "smiles": "smiles", "targets": ["lipo"],
                      "kind": "regression"},
}  # fmt: skip


def source_path(spec: dict) -> Path:
    """A dataset's CSV: under ``../shared/data`` for the built-in ones, an absolute path for ``--csv``."""
    path = Path(spec["file"])
    return path if path.is_absolute() else SHARED / path


def label_problem(value: str, kind: str) -> str | None:
    """Why one label cell cannot be used (None: a number, or empty = a missing label)."""
    if pd.isna(value) or not str(value).strip():
        return None
    try:
        number = float(value)
    except ValueError:
        return f"not a number: {value!r}"
    if not np.isfinite(number):
        return f"not finite: {value!r}"
    if kind == "binary" and number not in (0.0, 1.0):
        return f"a binary label must be 0 or 1: {value!r}"
    return None


def register_csv(path: str, smiles_column: str, targets: list[str], kind: str, name: str | None,
                 out: Path) -> tuple[str, int, list[int]]:  # fmt: skip
    """Check the user's CSV, write its usable rows to ``<out>/data/<name>.csv`` and the others, with
    their reasons, to ``<out>/data/<name>_skipped.csv``; add it to :data:`DATASETS` → (its name,
    the CSV's number of data rows, the data rows kept, in order: row i of the kept file is kept[i]).
    Raises ``SystemExit`` with the file and column for a missing file, column or bad name."""
    import re

    from graphium_ray.chem.graph import ParseError, parse_smiles

    source = Path(path).resolve()
    if not source.is_file():
        raise SystemExit(f"vs_chemprop: --csv {source}: no such file")
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    missing = [c for c in [smiles_column, *targets] if c not in frame.columns]
    if missing:
        raise SystemExit(f"vs_chemprop: {source}: no column {', '.join(map(repr, missing))} "
                         f"(columns: {', '.join(frame.columns)})")  # fmt: skip
    name = name or re.sub(r"[^a-z0-9_]+", "_", source.stem.lower()).strip("_") or "my_data"
    if name in DATASETS or name in ("tox21_qm9", "mean", "loss"):
        raise SystemExit(f"vs_chemprop: --name {name!r} is taken (built-in datasets: {', '.join(DATASETS)}); "
                         "choose another with --name")  # fmt: skip
    skipped = []
    for row, smiles in enumerate(frame[smiles_column]):
        line = row + 2  # the CSV's line: after the header, 1-based
        try:
            parse_smiles(smiles)
        except ParseError as err:
            skipped.append({"line": line, "smiles": smiles, "field": smiles_column, "reason": str(err)})
            continue
        problems = [(t, p) for t in targets if (p := label_problem(frame.at[row, t], kind))]
        if problems:
            skipped.append({"line": line, "smiles": smiles, "field": problems[0][0], "reason": problems[0][1]})
        elif all(not str(frame.at[row, t]).strip() for t in targets):
            skipped.append({"line": line, "smiles": smiles, "field": ",".join(targets), "reason": "no label"})
    dropped = {r["line"] - 2 for r in skipped}
    kept_rows = [row for row in range(len(frame)) if row not in dropped]
    kept = frame.iloc[kept_rows][[smiles_column, *targets]].reset_index(drop=True)
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    report = data_dir / f"{name}_skipped.csv"
    pd.DataFrame(skipped, columns=["line", "smiles", "field", "reason"]).to_csv(report, index=False)
    if len(kept) < 20:
        raise SystemExit(f"vs_chemprop: {source}: {len(kept)} usable rows, too few to split into train, validation "
                         f"and test; why the others were left out: {report}")  # fmt: skip
    cleaned = data_dir / f"{name}.csv"
    text = kept.to_csv(index=False)
    if cleaned.exists() and cleaned.read_text() != text and (out / "splits" / name).exists():
        raise SystemExit(f"vs_chemprop: {out} already holds splits and runs of another version of {name!r} "
                         f"({cleaned}); use a new --output")  # fmt: skip
    cleaned.write_text(text)
    print(f"{name}: {len(kept)} of {len(frame)} rows of {source} kept; {len(skipped)} skipped "
          f"(line, field and reason: {report})", flush=True)  # fmt: skip
    DATASETS[name] = {"file": str(cleaned.resolve()), "smiles": smiles_column, "targets": targets, "kind": kind}
    return name, len(frame), kept_rows


def use_split_files(name: str, splits_dir: str, seeds: list[int], n_rows: int, kept_rows: list[int],
                    out: Path) -> None:  # fmt: skip
    """``--splits DIR``: the user's split files ``DIR/seed<k>.csv`` (Graphium's format: row indices
    of the original CSV) in place of the scaffold splits, renumbered to the kept rows (a skipped row
    leaves its split) and written where both tools read their splits. Raises ``SystemExit`` naming
    the file for a missing file, a bad index or an empty split."""
    from graphium_ray.config import ConfigError
    from graphium_ray.data.scaffold import write_split_file
    from graphium_ray.data.split_file import read_split_file

    renumber = {row: i for i, row in enumerate(kept_rows)}  # original data row → row of the kept file
    for seed in seeds:
        source = Path(splits_dir) / f"seed{seed}.csv"
        if not source.is_file():
            raise SystemExit(f"vs_chemprop: --splits {splits_dir}: no split file seed{seed}.csv for seed {seed}")
        try:
            assignment = read_split_file(str(source), "vs_chemprop --splits")
        except ConfigError as err:
            raise SystemExit(f"vs_chemprop: {err}") from None
        outside = sorted(r for r in assignment if r >= n_rows)
        if outside:
            raise SystemExit(f"vs_chemprop: {source}: row index {outside[0]} but the CSV has {n_rows} data rows "
                             "(indices count data rows from 0)")  # fmt: skip
        mapped = {renumber[r]: split for r, split in assignment.items() if r in renumber}
        empty = [split for split in ("train", "val", "test") if split not in mapped.values()]
        if empty:
            raise SystemExit(f"vs_chemprop: {source}: no usable row in {', '.join(empty)}")
        target = out / "splits" / name / f"seed{seed}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        fresh = target.with_suffix(".new")
        write_split_file(mapped, str(fresh))
        if target.exists() and target.read_text() != fresh.read_text():
            fresh.unlink()
            raise SystemExit(f"vs_chemprop: {out} already holds runs on other splits of {name!r} ({target}); "
                             "use a new --output")  # fmt: skip
        fresh.replace(target)
        left_out = len(assignment) - len(mapped)
        print(f"{name} seed {seed}: the splits of {source}" + (f" ({left_out} skipped rows left out)" if left_out else ""),
              flush=True)  # fmt: skip


def split_file(name: str, seed: int, out: Path) -> Path:
    """Tox21: the shared split file; the others: a balanced scaffold split written (once) here."""
    if name in ("tox21", "tox21_qm9"):
        return SHARED / "toymix" / "tox21_splits" / f"seed{seed}.csv"
    path = out / "splits" / name / f"seed{seed}.csv"
    if not path.exists():
        sys.path.insert(0, str(ROOT))
        from graphium_ray.data.scaffold import scaffold_split, write_split_file

        frame = pd.read_csv(source_path(DATASETS[name]))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_split_file(scaffold_split(frame[DATASETS[name]["smiles"]].tolist(), seed, (0.8, 0.1, 0.1)), str(path))
    return path


def read_split(path: Path) -> dict[str, list[int]]:
    frame = pd.read_csv(path)
    return {s: frame[s].dropna().astype(int).tolist() for s in ("train", "val", "test")}


def score(kind: str, y: np.ndarray, pred: np.ndarray) -> dict:
    """Mean over tasks of AUROC (binary) or MAE / RMSE (regression); NaN labels ignored."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

    per_task = []
    for j in range(y.shape[1]):
        present = ~np.isnan(y[:, j]) & ~np.isnan(pred[:, j])  # a row without prediction is counted apart
        yt, pt = y[present, j], pred[present, j]
        if kind == "binary":
            per_task.append({"auroc": roc_auc_score(yt, pt)} if len(set(yt)) == 2 else {})
        else:
            per_task.append({"mae": mean_absolute_error(yt, pt), "rmse": mean_squared_error(yt, pt) ** 0.5})
    keys = ["auroc"] if kind == "binary" else ["mae", "rmse"]
    return {k: float(np.mean([t[k] for t in per_task if k in t])) for k in keys}


# ---------------------------------------------------------------------------------------- chemprop
def ensure_chemprop() -> Path:
    exe = CHEMPROP_VENV / "bin" / "chemprop"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHEMPROP_VENV)], check=True)
        pip = str(CHEMPROP_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "-q", "torch==2.13.0"], check=True)  # the CPU wheel first
        subprocess.run([pip, "install", "-q", "chemprop"], check=True)
    return exe


CHEMPROP_VARIANTS = {  # tool name → extra CLI arguments (on top of chemprop's defaults)
    "chemprop": [],
    "chemprop_rdkit2d": ["--molecule-featurizers", "rdkit_2d"],  # the same RDKit descriptors as featurizer.molecule
    # an ensemble of 3 (seeds seed, seed+1, seed+2; model 0 is the default run), scored on the members' mean
    # prediction, as graphium-ray's train.replicates=3
    "chemprop_ens3": ["--ensemble-size", "3"],
}


def run_chemprop(name: str, seed: int, out: Path, tool: str = "chemprop") -> dict:
    spec = DATASETS[name]
    work = out / tool / name / f"seed{seed}"
    result_file = work / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    work.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(source_path(spec))
    split = read_split(split_file(name, seed, out))
    rows = split["train"] + split["val"] + split["test"]
    frame.iloc[rows][[spec["smiles"], *spec["targets"]]].to_csv(work / "data.csv", index=False)
    n_tr, n_va = len(split["train"]), len(split["val"])
    splits = [{"train": list(range(n_tr)), "val": list(range(n_tr, n_tr + n_va)),
               "test": list(range(n_tr + n_va, len(rows)))}]  # fmt: skip
    (work / "splits.json").write_text(json.dumps(splits))
    cmd = [str(ensure_chemprop()), "train", "--data-path", str(work / "data.csv"), "--smiles-columns", spec["smiles"],
           "--target-columns", *spec["targets"], "--task-type",
           "classification" if spec["kind"] == "binary" else "regression", "--splits-file", str(work / "splits.json"),
           "--output-dir", str(work / "out"), "--pytorch-seed", str(seed), "--data-seed", str(seed),
           "--num-workers", "0", "--accelerator", "cpu", "--devices", "1", *CHEMPROP_VARIANTS[tool]]  # fmt: skip
    started = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("BENCH_THREADS", "2")}
    subprocess.run(cmd, check=True, env=env, stdout=open(work / "log.txt", "w"), stderr=subprocess.STDOUT)
    seconds = time.time() - started
    members = sorted((work / "out").rglob("test_predictions.csv"))  # model_<i>/ each; an ensemble: their mean
    if not members:  # e.g. the chemprop process was stopped: it can exit without an error code
        raise RuntimeError(f"chemprop wrote no test predictions under {work / 'out'} (its log: {work / 'log.txt'})")
    test = frame.iloc[split["test"]]
    y = test[spec["targets"]].to_numpy(np.float64)
    member_preds = [pd.read_csv(m)[spec["targets"]].to_numpy(np.float64) for m in members]
    pred = np.mean(member_preds, axis=0)
    result = {**score(spec["kind"], y, pred), "seconds": round(seconds, 1), "n_test": len(test),
              **({"members": [score(spec["kind"], y, p) for p in member_preds]} if len(members) > 1 else {})}
    result_file.write_text(json.dumps(result))
    return result


# ------------------------------------------------------------------------------------ graphium-ray
def graphium_config(name: str, seed: int, out: Path, qm9_path: Path | None) -> dict:
    import yaml

    spec = DATASETS["tox21" if name == "tox21_qm9" else name]
    raw = yaml.safe_load((ROOT / "sweeps" / "small_data.yaml").read_text())
    task = {"columns": spec["targets"], "kind": spec["kind"]}
    raw["name"] = f"{name}_seed{seed}"
    raw["data"]["datasets"] = [{"name": name if name != "tox21_qm9" else "tox21", "path": str(source_path(spec)),
                                "smiles_column": spec["smiles"], "split_file": str(split_file(name, seed, out)),
                                "tasks": [task]}]  # fmt: skip
    if name == "tox21_qm9":
        from graphium_ray.data.builtin import QM9_TOYMIX_COLUMNS

        raw["data"]["datasets"].append({"name": "qm9", "path": str(qm9_path), "smiles_column": "smiles",
                                        "tasks": [{"columns": list(QM9_TOYMIX_COLUMNS)}]})  # fmt: skip
        raw["train"]["select"] = {"metric": "val/loss", "mode": "min"}
    raw["data"]["cache_dir"] = str(out / "cache")
    raw["data"]["split"] = {"kind": "random", "seed": seed}
    raw["train"]["seed"] = seed
    return raw


def run_graphium(name: str, seed: int, out: Path, qm9_path: Path | None, overrides: list[str],
                 train_only: bool = False) -> dict | None:
    """Train (unless the run directory has its test predictions) and score; ``train_only``: train
    and stop (runs trained on another machine are scored by a later call without it)."""
    work = out / "graphium" / name / f"seed{seed}"
    result_file = work / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    from graphium_ray.config import apply_overrides, validate
    from graphium_ray.data.prepare import prepare
    from graphium_ray.train.driver import run_training

    spec = DATASETS["tox21" if name == "tox21_qm9" else name]
    seconds = None
    if not (work / "run" / "test_predictions.parquet").exists():
        cfg = validate(apply_overrides(graphium_config(name, seed, out, qm9_path), overrides), name)
        started = time.time()
        run_training(cfg, prepare(cfg.data), work / "run")
        seconds = round(time.time() - started, 1)
        (work / "train_seconds.json").write_text(json.dumps({"seconds": seconds}))
    elif (work / "train_seconds.json").exists():
        seconds = json.loads((work / "train_seconds.json").read_text())["seconds"]
    if train_only:
        return None
    y, pred = graphium_test_rows(name, seed, out, work / "run" / "test_predictions.parquet")
    result = {**score(spec["kind"], y, pred), "seconds": seconds, "n_test": len(y),
              "n_without_prediction": int(np.isnan(pred).all(axis=1).sum())}  # fmt: skip
    replicates = sorted((work / "run").glob("replicate_*/test_predictions.parquet"))  # an ensemble's members
    if replicates:
        result["members"] = [score(spec["kind"], *graphium_test_rows(name, seed, out, r)) for r in replicates]
    result_file.write_text(json.dumps(result))
    return result


def graphium_test_rows(name: str, seed: int, out: Path, predictions: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) on exactly chemprop's test rows: every test row of the source file,
    matched to graphium-ray's per-molecule prediction by the canonical molecule key (rows of the
    same molecule share its prediction)."""
    from graphium_ray.chem.graph import ParseError, molecule_key, parse_smiles

    spec = DATASETS["tox21" if name == "tox21_qm9" else name]
    prefix = "tox21" if name == "tox21_qm9" else name
    frame = pd.read_csv(source_path(spec)).iloc[read_split(split_file(name, seed, out))["test"]]
    preds = pd.read_parquet(predictions).set_index("smiles")
    cols = [f"pred/{prefix}/{t}" for t in spec["targets"]]
    rows = []
    for smi in frame[spec["smiles"]]:
        try:
            key = molecule_key(parse_smiles(smi))
        except ParseError:
            key = None
        rows.append(preds.loc[key, cols].to_numpy(np.float64) if key in preds.index else np.full(len(cols), np.nan))
    return frame[spec["targets"]].to_numpy(np.float64), np.vstack(rows)


# --------------------------------------------------------------------------------------------- table
def summarize(results: dict) -> str:
    """One row per dataset and metric; a column per tool that has results (chemprop with its
    RDKit-descriptor featurizer only when it was run), then graphium-ray's worst seed."""
    labels = {"chemprop": "chemprop v2", "chemprop_rdkit2d": "chemprop v2 + rdkit_2d",
              "chemprop_ens3": "chemprop v2 ensemble of 3", "graphium": "graphium-ray"}
    tools = [t for t in labels if any(t in by_tool for by_tool in results.values())]
    lines = ["| dataset | metric | " + " | ".join(f"{labels[t]} (mean ± std)" for t in tools)
             + " | graphium-ray worst seed |", "|---" * (len(tools) + 3) + "|"]  # fmt: skip
    for name, by_tool in results.items():
        kind = DATASETS["tox21" if name == "tox21_qm9" else name]["kind"]
        for metric in ["auroc"] if kind == "binary" else ["mae", "rmse"]:
            cells = []
            for tool in tools:
                values = [r[metric] for r in by_tool.get(tool, {}).values()]
                cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f} (n={len(values)})" if values else "—")
            runs = by_tool.get("graphium", {})
            worst = ""
            if runs:
                pick = min if metric == "auroc" else max
                seed = pick(runs, key=lambda s: runs[s][metric])
                worst = f"{seed}: {runs[seed][metric]:.3f}"
            lines.append(f"| {name} | {metric} | " + " | ".join(cells) + f" | {worst} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default=str(ROOT / "runs" / "vs_chemprop"))
    p.add_argument("--datasets", nargs="+", default=None, help="default: every built-in dataset, or --csv's alone")
    p.add_argument("--tools", nargs="+", default=["chemprop", "graphium"], choices=[*CHEMPROP_VARIANTS, "graphium"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--qm9", type=int, default=20000, help="QM9 molecules for tox21_qm9")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="graphium-ray config override")
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--train-only", action="store_true",
                   help="train graphium-ray's runs and stop (e.g. on another machine); a later call scores them")
    p.add_argument("--csv", help="your own data: a CSV with a SMILES column and label columns")
    p.add_argument("--smiles-column", default="smiles", help="with --csv")
    p.add_argument("--targets", nargs="+", help="with --csv: the label columns")
    p.add_argument("--kind", choices=["binary", "regression"], help="with --csv: the labels' kind")
    p.add_argument("--name", help="with --csv: the dataset's name in the results (default: the file's name)")
    p.add_argument("--splits", help="with --csv: a folder of your split files seed<k>.csv (Graphium's format: "
                                    "columns train,val,test of the CSV's data-row indices) instead of scaffold splits")
    args = p.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if args.csv:
        if not args.targets or not args.kind:
            p.error("--csv needs --targets and --kind")
        sys.path.insert(0, str(ROOT))
        name, n_rows, kept_rows = register_csv(args.csv, args.smiles_column, args.targets, args.kind, args.name, out)
        if args.splits:
            use_split_files(name, args.splits, args.seeds, n_rows, kept_rows, out)
        args.datasets = args.datasets or [name]
    elif args.targets or args.kind or args.name or args.splits:
        p.error("--targets, --kind, --name and --splits describe a --csv file")
    args.datasets = args.datasets or [*DATASETS, "tox21_qm9"]
    unknown = [d for d in args.datasets if d not in DATASETS and d != "tox21_qm9"]
    if unknown:
        p.error(f"unknown dataset {', '.join(unknown)} (known: {', '.join([*DATASETS, 'tox21_qm9'])}; "
                "your own data: --csv)")  # fmt: skip
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    qm9_path = None
    if "graphium" in args.tools:
        os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        sys.path.insert(0, str(ROOT))
        from graphium_ray.cli import init_ray

        init_ray(args.num_cpus)
        if "tox21_qm9" in args.datasets:
            from graphium_ray.data.builtin import build_qm9_toymix

            qm9_path = Path(build_qm9_toymix(str(out / "qm9"), args.qm9))
    for name in args.datasets:
        for tool in args.tools:
            if tool in CHEMPROP_VARIANTS and name == "tox21_qm9":
                continue
            for seed in args.seeds:
                run = run_chemprop(name, seed, out, tool) if tool in CHEMPROP_VARIANTS else run_graphium(
                    name, seed, out, qm9_path, args.overrides, args.train_only)  # fmt: skip
                if run is None:
                    continue
                results.setdefault(name, {}).setdefault(tool, {})[str(seed)] = run
                results_path.write_text(json.dumps(results, indent=1))
                print(f"{name} {tool} seed {seed}: {run}", flush=True)
    table = summarize(results)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
