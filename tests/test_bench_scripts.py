"""Every benchmark script runs once on tiny inputs (numbers are not checked: they live in BENCHMARKS.md)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_featurize_bench_runs():
    out = subprocess.run([sys.executable, str(ROOT / "platform/bench/featurize_bench.py"), "--molecules", "60",
                          "--repeats", "1"], capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    result = json.loads(out.stdout)
    assert result["qm9"]["molecules"] == 60 and result["drug_like"]["rdkit_parse_mol_per_s"] > 0


def test_mup_transfer_bench_runs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "platform/bench/mup_transfer.py"), "--molecules", "80",
                          "--widths", "16", "32", "--lrs", "1e-3", "1e-2", "--steps", "3", "--output", str(tmp_path)],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    result = json.loads(out.stdout)
    assert set(result["best_lr"]) == {"sp", "mup"} and (tmp_path / "mup_transfer.png").stat().st_size > 0
