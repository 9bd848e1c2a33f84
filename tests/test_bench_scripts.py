"""Every benchmark script runs once on tiny inputs (numbers are not checked: they live in BENCHMARKS.md)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import joined_cluster_env, needs_shared_data

ROOT = Path(__file__).resolve().parents[1]


def test_featurize_bench_runs():
    out = subprocess.run([sys.executable, str(ROOT / "platform/bench/featurize_bench.py"), "--molecules", "60",
                          "--repeats", "1"], capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    result = json.loads(out.stdout)
    assert result["qm9"]["molecules"] == 60 and result["drug_like"]["rdkit_parse_mol_per_s"] > 0


def test_mup_transfer_bench_runs(tmp_path, capsys):
    result = _run_in_process("mup_transfer.py", ["--molecules", "80", "--widths", "16", "32", "--lrs", "1e-3", "1e-2",
                                                 "--steps", "3", "--output", str(tmp_path)], capsys)  # fmt: skip
    assert set(result["best_lr"]) == {"sp", "mup"} and (tmp_path / "mup_transfer.png").stat().st_size > 0


def _run_script_main(script: str, args: list[str]) -> None:
    """Run a benchmark script as ``__main__`` in this process. Its argv and torch's thread count (the
    timing scripts pin it to 1, recipe_search.py to ``--threads``) are restored afterwards, so the
    tests after it run the driver as before."""
    import runpy

    import torch

    argv, threads = sys.argv, torch.get_num_threads()
    sys.argv = [script, *args]
    try:
        runpy.run_path(str(ROOT / "platform/bench" / script), run_name="__main__")
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)


def last_json(stdout: str) -> dict:
    """The script's JSON report: the last top-level ``{`` … ``}`` block, after any log lines that
    Ray forwarded from its workers to the same stdout."""
    start = stdout.rindex("\n{\n") + 1 if "\n{\n" in stdout else stdout.index("{")
    return json.loads(stdout[start:])


def _run_in_process(script: str, args: list[str], capsys) -> dict:
    """Run a benchmark script's main() in this process (on the session's Ray cluster where it uses
    Ray) → its JSON. In-process because a fresh interpreter spends ~3-5 s importing torch before
    the script does anything."""
    _run_script_main(script, args)
    out = capsys.readouterr().out
    return json.loads(out[out.index("{\n") :])


def test_collate_bench_runs(capsys):
    result = _run_in_process("collate_bench.py", ["--molecules", "64", "--batch-size", "16", "--repeats", "1"], capsys)
    assert result["molecules"] == 64 and result["ours_arrow_graphs_per_s"] > 0
    toymix = result["storage"]["toymix_like"]  # int8 features: a smaller table than the same rows in float32
    assert toymix["arrow_bytes_per_molecule_int8"] < toymix["arrow_bytes_per_molecule_float32"]


def test_optimizer_bench_runs(capsys):
    result = _run_in_process("optimizer_bench.py", ["--widths", "16", "--molecules", "64", "--steps", "2", "--rounds", "1"],
                             capsys)["widths"]["16"]  # fmt: skip
    assert result["graphs_per_s"]["fused"]["median"] > 0 and result["step_ms_median"]["per_tensor_loop"] > 0
    assert result["max_rel_param_diff_after"]["1"] < 1e-5  # the same AdamW step from the same weights


WITHOUT_RAY = "import runpy, sys; sys.modules['ray'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def test_gpu_bench_runs_on_cpu_without_ray():
    """The GPU scripts run where Ray is not installed (the lent GPU machine): importing ray fails here."""
    out = subprocess.run([sys.executable, "-c", WITHOUT_RAY, str(ROOT / "platform/bench/gpu_bench.py"), "--molecules",
                          "64", "--batch-sizes", "16", "--steps", "3"], capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    result = json.loads(out.stdout)
    assert result["results"][0]["batch_size"] == 16 and result["results"][0]["fed_fraction"] > 0


def test_gpu_precision_check_runs_on_cpu_without_ray():
    out = subprocess.run([sys.executable, "-c", WITHOUT_RAY, str(ROOT / "platform/bench/gpu_precision_check.py"),
                          "--molecules", "96", "--epochs", "2", "--batch-size", "32"],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    result = last_json(out.stdout)
    assert [r["precision"] for r in result["results"]] == ["32", "bf16-mixed"]
    assert all(r["all_losses_finite"] and r["val_mae"]["mol_wt"] > 0 for r in result["results"])


def test_ingest_bench_runs(ray_cluster, capsys):
    result = _run_in_process("ingest_bench.py", ["--molecules", "120", "--epochs", "1", "--batch-size", "32", "--repeats", "1"],
                             capsys)
    assert result["streaming_graphs_per_s"][0] > 0 and result["in_memory_pyg_graphs_per_s"][0] > 0
    assert result["data_path_only_per_epoch"][0]["first_batch_s"] > 0


def test_memory_bench_runs():
    source = "moses" if importlib.util.find_spec("moses") else "qm9"  # MOSES ships in molsets (make install)
    out = subprocess.run([sys.executable, str(ROOT / "platform/bench/memory_bench.py"), "--sizes", "60",
                          "--num-cpus", "1", "--source", source], capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    result = json.loads(out.stdout)  # one size: each size is a fresh cluster, the loop over sizes is trivial
    runs = result["runs"]
    assert [r["featurized"] for r in runs] == [60] and runs[0]["peak_pss_mb"] > 50
    assert result["peak_ratio_largest_vs_smallest"] == 1.0
    groups = runs[0]["prepare_memory"]["groups"]  # per process group: which part of the cluster holds memory
    assert {"driver", "raylet", "gcs_server"} <= set(groups) and groups["driver"]["peak_mb"] > 50
    assert set(runs[0]["stage_seconds"]) == {"ingest", "merge", "featurize", "reports_and_stats"}


def test_startup_bench_runs(ray_cluster):
    """Joining the session's cluster (``--join``): the same CLI runs and marks as the bench's own-cluster
    runs, without starting two more clusters here."""
    out = subprocess.run([sys.executable, str(ROOT / "platform/bench/startup_bench.py"), "--repeats", "1", "--join"],
                         capture_output=True, text=True, check=True, cwd=ROOT, env=joined_cluster_env(ray_cluster))  # fmt: skip
    result = json.loads(out.stdout)
    assert 0 < result["running_cluster_launch_to_first_step_s"][0] < 300
    phases = list(result["running_cluster_phases_median_s"].values())  # the breakdown adds up to launch → first step
    assert len(phases) == 8 and sum(phases) == pytest.approx(result["running_cluster_launch_to_first_step_s"][0], abs=0.2)
    assert all(v >= 0 for v in phases[2:]), phases  # the worker's own marks come in order


@needs_shared_data
def test_finetune_compare_runs(ray_cluster, trained_run, capsys, tmp_path):
    """On the session's trained checkpoint (pretraining itself is `graphium-ray train`, tested elsewhere)."""
    result = _run_in_process("finetune_compare.py", ["--pretrained", str(trained_run[0] / "checkpoint"), "--epochs", "1",
                                                     "--seeds", "0", "--output", str(tmp_path / "out"),
                                                     "--work", str(tmp_path / "work")], capsys)  # fmt: skip
    assert set(result) >= {"finetune", "scratch", "linear_probe"}
    assert (tmp_path / "out" / "results.md").read_text().count("|") > 10


def test_featurize_profile_runs(capsys):
    result = _run_in_process("featurize_profile.py", ["--molecules", "40", "--repeats", "1"], capsys)
    assert result["molecules"] == 40 and result["mols_to_graphs"] > 0


@needs_shared_data
def test_recipe_search_reports_validation_only(ray_cluster, tmp_path):
    """One tiny variant on FreeSolv's scaffold split 0: a validation metric of the selected epoch,
    written to recipe_search.jsonl; nothing about the test split."""
    _run_script_main("recipe_search.py", ["--output", str(tmp_path), "--datasets", "freesolv", "--seeds", "0",
                                          "--variant", "tiny=train.epochs=2;model.hidden_dim=16"])  # fmt: skip
    (row,) = [json.loads(line) for line in (tmp_path / "recipe_search.jsonl").read_text().splitlines()]
    assert row["variant"] == "tiny" and row["epoch"] in (1, 2) and row["val_mae"] > 0
    assert not any("test" in key for key in row)


@needs_shared_data
def test_recipe_search_chooses_fine_tuning_settings_from_the_builtin_model(ray_cluster, tmp_path):
    """--checkpoint: the variants are fine-tuning settings on the pretrained backbone (validation only)."""
    _run_script_main("recipe_search.py", ["--output", str(tmp_path), "--datasets", "freesolv", "--seeds", "0",
                                          "--checkpoint", "builtin:graphium-ray-moses-qm9", "--finetune-epochs", "2",
                                          "--variant", "slow_backbone=finetune.backbone_lr_ratio=0.1"])  # fmt: skip
    (row,) = [json.loads(line) for line in (tmp_path / "recipe_search.jsonl").read_text().splitlines()]
    assert row["checkpoint"] == "builtin:graphium-ray-moses-qm9" and row["epoch"] in (1, 2)
    assert row["overrides"] == ["finetune.backbone_lr_ratio=0.1"] and 0 < row["val_mae"] < 10
    assert not any("test" in key for key in row)


def test_pretrain_transfer_reuses_scratch_runs_without_overwriting(tmp_path):
    """--reuse-scratch: the small-data recipe's runs stand in for 'scratch + descriptors', marked as
    reused; a scratch result already in the output is kept."""
    import runpy

    reuse_scratch = runpy.run_path(str(ROOT / "platform/bench/pretrain_transfer.py"))["reuse_scratch"]
    for seed, auroc in ((0, 0.9), (1, 0.8)):
        (tmp_path / "src" / "bbbp" / f"seed{seed}").mkdir(parents=True)
        (tmp_path / "src" / "bbbp" / f"seed{seed}" / "result.json").write_text(json.dumps({"auroc": auroc}))
    kept = tmp_path / "out" / "scratch" / "bbbp" / "seed1" / "result.json"
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps({"auroc": 0.7}))
    reuse_scratch(tmp_path / "src", tmp_path / "out", ["bbbp", "esol"], [0, 1, 2])
    copied = json.loads((tmp_path / "out" / "scratch" / "bbbp" / "seed0" / "result.json").read_text())
    assert copied["auroc"] == 0.9 and copied["reused_from"].endswith("bbbp/seed0/result.json")
    assert json.loads(kept.read_text()) == {"auroc": 0.7}
    assert not (tmp_path / "out" / "scratch" / "esol").exists() and not (tmp_path / "out" / "scratch" / "bbbp" / "seed2").exists()


@needs_shared_data
def test_pretrain_transfer_scores_the_builtin_models_probe_on_a_scaffold_split(ray_cluster, tmp_path):
    """The linear probe of builtin:graphium-ray-moses-qm9 on FreeSolv's scaffold split 0 (written into
    --chemprop-dir as vs_chemprop.py does), in kcal/mol; the table names the variant."""
    _run_script_main("pretrain_transfer.py", ["--output", str(tmp_path / "out"), "--chemprop-dir", str(tmp_path / "cp"),
                                              "--datasets", "freesolv", "--seeds", "0", "--variants", "probe"])  # fmt: skip
    result = json.loads((tmp_path / "out" / "probe" / "freesolv" / "seed0" / "result.json").read_text())
    assert 0 < result["mae"] < 4 and result["rmse"] >= result["mae"]
    assert (tmp_path / "cp" / "splits" / "freesolv" / "seed0.csv").exists()
    assert "| freesolv | mae |" in (tmp_path / "out" / "results.md").read_text()


@pytest.mark.skipif(not (ROOT / ".bench_venvs/chemprop/bin/chemprop").exists(),
                    reason="chemprop's own environment is not built (python platform/bench/vs_chemprop.py creates it)")
def test_throughput_vs_chemprop_runs():
    out = subprocess.run([sys.executable, str(ROOT / "platform/bench/throughput_vs_chemprop.py"), "--molecules", "200",
                          "--epochs", "2", "--repeats", "1", "--threads", "1"], capture_output=True, text=True, check=True,
                         cwd=ROOT)  # fmt: skip
    result = last_json(out.stdout)
    assert set(result["median_graphs_per_s"]) == {"chemprop", "graphium_ray"}
    assert 200_000 < result["parameters"]["chemprop"] < 400_000 and 200_000 < result["parameters"]["graphium_ray"] < 400_000


def _your_csv(path: Path) -> Path:
    """The reference molecules' logP under user-style column names, plus four unusable rows."""
    import pandas as pd

    from graphium_ray.data.builtin import reference_table

    table = reference_table().to_pandas()
    good = pd.DataFrame({"SMILES": table["smiles"], "my logP": table["logp"].map(lambda v: f"{v:.3f}")})
    bad = pd.DataFrame({"SMILES": ["C1CC(", "CCO", "CCN", "CCC"], "my logP": ["1.0", "abc", "inf", ""]})
    pd.concat([good, bad]).to_csv(path, index=False)
    return path


def test_vs_chemprop_compares_on_your_own_csv(ray_cluster, tmp_path):
    """--csv: the usable rows go to both tools through one scaffold split; every unusable row is
    listed with its CSV line, field and reason; graphium-ray is scored on the split's test rows."""
    import pandas as pd

    csv = _your_csv(tmp_path / "my assay.csv")
    out = tmp_path / "out"
    _run_script_main("vs_chemprop.py", ["--csv", str(csv), "--smiles-column", "SMILES", "--targets", "my logP",
                                        "--kind", "regression", "--tools", "graphium", "--seeds", "0",
                                        "--set", "train.epochs=2", "--output", str(out)])  # fmt: skip
    skipped = pd.read_csv(out / "data" / "my_assay_skipped.csv")
    n_good = len(pd.read_csv(csv)) - 4
    assert skipped["line"].tolist() == [n_good + 2, n_good + 3, n_good + 4, n_good + 5]
    assert skipped["field"].tolist() == ["SMILES", "my logP", "my logP", "my logP"]
    assert [r.split(":")[0] for r in skipped["reason"]] == ["SMILES syntax error", "not a number", "not finite", "no label"]
    assert len(pd.read_csv(out / "data" / "my_assay.csv")) == n_good
    split = pd.read_csv(out / "splits" / "my_assay" / "seed0.csv")
    result = json.loads((out / "results.json").read_text())["my_assay"]["graphium"]["0"]
    assert result["n_test"] == split["test"].notna().sum() and result["n_without_prediction"] == 0
    assert 0 < result["mae"] <= result["rmse"]
    assert "| my_assay | mae |" in (out / "results.md").read_text()


def test_vs_chemprop_refuses_a_csv_it_cannot_use(tmp_path):
    """A missing column names the file, the column and the columns there are; a name that would
    replace a built-in dataset is refused (no Ray, no training)."""
    import runpy

    register_csv = runpy.run_path(str(ROOT / "platform/bench/vs_chemprop.py"))["register_csv"]
    csv = _your_csv(tmp_path / "my assay.csv")
    with pytest.raises(SystemExit, match=r"my assay\.csv: no column 'logp' \(columns: SMILES, my logP\)"):
        register_csv(str(csv), "SMILES", ["logp"], "regression", None, tmp_path)
    with pytest.raises(SystemExit, match="'esol' is taken"):
        register_csv(str(csv), "SMILES", ["my logP"], "regression", "esol", tmp_path)
    with pytest.raises(SystemExit, match=r"\d+ usable rows, too few"):  # logP values are not binary labels
        register_csv(str(csv), "SMILES", ["my logP"], "binary", "as_binary", tmp_path)


def test_vs_chemprop_takes_your_split_files_renumbered_to_the_kept_rows(tmp_path):
    """--splits: the user's split file (indices of the original CSV's data rows) is renumbered to the
    kept rows, a skipped row leaves its split, and an index past the end is refused by file name."""
    import runpy

    import pandas as pd

    from graphium_ray.data.split_file import read_split_file

    script = runpy.run_path(str(ROOT / "platform/bench/vs_chemprop.py"))
    csv = _your_csv(tmp_path / "my assay.csv")
    name, n_rows, kept = script["register_csv"](str(csv), "SMILES", ["my logP"], "regression", None, tmp_path)
    assert kept == list(range(n_rows - 4))  # the last four data rows are the unusable ones
    splits = tmp_path / "mine"
    splits.mkdir()
    last_good, first_bad = n_rows - 5, n_rows - 4  # data rows
    pd.DataFrame({"train": list(range(0, 30)), "val": list(range(30, 36)) + [None] * 24,
                  "test": [3 + 33, last_good, first_bad] + [None] * 27}, dtype="Int64").to_csv(splits / "seed0.csv", index=False)  # fmt: skip
    pd.DataFrame({"train": [0], "val": [1], "test": [n_rows + 5]}).to_csv(splits / "seed1.csv", index=False)
    script["use_split_files"](name, str(splits), [0], n_rows, kept, tmp_path)
    written = read_split_file(str(tmp_path / "splits" / name / "seed0.csv"), "test")
    assert sorted(r for r, s in written.items() if s == "test") == [36, last_good]  # the skipped row is gone
    assert sorted(r for r, s in written.items() if s == "train") == list(range(30))
    with pytest.raises(SystemExit, match=rf"seed1\.csv: row index {n_rows + 5} but the CSV has {n_rows} data rows"):
        script["use_split_files"](name, str(splits), [1], n_rows, kept, tmp_path)
    with pytest.raises(SystemExit, match="no split file seed2.csv"):
        script["use_split_files"](name, str(splits), [2], n_rows, kept, tmp_path)
