"""featurizer.backend: cuik (NVIDIA's cuik-molmaker, C++) gives exactly the reference featurizer's arrays.

cuik-molmaker is an optional extra whose wheel pins rdkit==2026.3.6, so it cannot live in the
project's main environment. The equality test runs in-process where cuik-molmaker is importable,
else in ``.bench_venvs/cuik`` (built as BENCHMARKS.md section 1 says) when that exists, else it is
skipped with the reason. The merge of the two paths' outputs and the config checks need neither.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from graphium_ray.chem.cuik_graph import merge_in_row_order
from graphium_ray.chem.graph import mols_to_graphs, parse_smiles
from graphium_ray.cli import main
from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import REFERENCE_SMILES
from graphium_ray.data.featurize import Featurizer, molecule_rows

ROOT = Path(__file__).resolve().parents[1]
CUIK_PYTHON = ROOT / ".bench_venvs" / "cuik" / "bin" / "python"
HAS_CUIK = importlib.util.find_spec("cuik_molmaker") is not None

EVERY_FEATURE = {
    "atom_onehot": ["atomic-number", "group", "period", "total-valence", "hybridization"],
    "atom_float": ["degree", "formal-charge", "radical-electron", "aromatic", "in-ring", "mass"],
    "bond": ["bond-type-onehot", "stereo", "in-ring", "conjugated"],
}
# what the reference featurizer is careful about: charges, radicals, E/Z and tetrahedral stereo,
# aromatic heteroatoms, salts and metals, isotopes and dative bonds (left to the reference path),
# unparsable and empty entries (reported), a SMILES followed by a name
EDGE_CASES = [
    "N[C@@H](C)C(=O)O", "N[C@H](C)C(=O)O", "F/C=C/F", "F/C=C\\F", "C[N+](C)(C)[O-]", "[CH3]", "[CH2]",
    "[Na+].[Cl-]", "[13CH4]", "[2H]OC", "C[NH2+][B-](F)(F)F", "N->[Pt](<-N)(Cl)Cl", "c1ccncc1", "c1cc[nH]c1",
    "O=[N+]([O-])c1ccccc1", "C#N", "C1CC", "c1cccc1", "", "CCO ethanol", "[Fe+2].[O-]C(=O)C", "C=C=C",
    "OB(O)c1ccccc1", "FS(F)(F)(F)(F)F", "C[Si](C)(C)C", "[Se]", "CC(=O)[O-].[K+]", "C1=CC=CC=C1", "[H][H]",
]  # fmt: skip


UNKEKULIZABLE = "c1cccc1"  # valid syntax, fails sanitization: cuik-molmaker raises (and the batch is split)


def _batches() -> list[list[str]]:
    """The reference molecules and the edge cases that parse; those that do not, with a few that do
    (cuik-molmaker rejects that whole batch); real drug-like molecules where molsets is installed."""
    parses = [s for s in EDGE_CASES if parse_ok(s)]
    bad = [s for s in EDGE_CASES if not parse_ok(s)]
    batches = [list(REFERENCE_SMILES) + parses, bad + parses[:3], list(REFERENCE_SMILES) + [UNKEKULIZABLE] + parses]
    try:
        from graphium_ray.data.pretrain_data import moses_sample

        batches += [chunk[i : i + 512] for _, chunk in moses_sample(3000) for i in range(0, len(chunk), 512)]
    except (ImportError, RuntimeError):
        pass
    return batches


def test_graphs_of_row_subsets_merge_back_in_row_order():
    """The two paths' outputs (rows taken by cuik-molmaker, the rest by the reference path) are
    interleaved back: the same arrays as featurizing all rows at once."""
    smiles = list(REFERENCE_SMILES)
    features = (EVERY_FEATURE["atom_onehot"], EVERY_FEATURE["atom_float"], EVERY_FEATURE["bond"])
    every = mols_to_graphs([parse_smiles(s) for s in smiles], *features)
    subset = np.random.default_rng(0).integers(0, 3, len(smiles))  # each row in one of 3 subsets
    parts = []
    for k in range(3):
        rows = np.flatnonzero(subset == k).tolist()
        parts.append((rows, mols_to_graphs([parse_smiles(smiles[i]) for i in rows], *features)))
    rows, merged = merge_in_row_order(parts)
    assert rows == list(range(len(smiles))) and all(len(r) > 1 for r, _ in parts)
    for got, want in zip(merged, every, strict=True):
        np.testing.assert_array_equal(got, want)


def test_cuik_backend_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match=r"total-hs.*hydrogens: explicit.*rdkit2d.*use backend: rdkit"):
        FeaturizerConfig(backend="cuik", atom_onehot=["total-hs"], hydrogens="explicit", molecule=["rdkit2d"])
    # the cache key and a checkpoint's featurizer do not depend on the backend (identical arrays)
    assert FeaturizerConfig(backend="cuik").without_backend() == FeaturizerConfig().without_backend()


@pytest.mark.skipif(HAS_CUIK, reason="cuik-molmaker is installed here")
def test_cuik_backend_without_the_package_says_how_to_install_it(ray_cluster, tmp_path, capsys):
    with pytest.raises(ImportError, match=r"graphium-ray\[cuik\]"):
        Featurizer(FeaturizerConfig(backend="cuik"), 0, 0)
    # through the CLI: one line before any Ray work, not a traceback from every featurize actor
    pq.write_table(pa.table({"smiles": ["CCO", "c1ccccc1"], "y": [1.0, 2.0]}), tmp_path / "m.parquet")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"data": {"cache_dir": str(tmp_path / "cache"), "datasets": [
        {"name": "d", "path": str(tmp_path / "m.parquet"), "tasks": [{"columns": ["y"]}]}],
        "featurizer": {"backend": "cuik"}}}))  # fmt: skip
    assert main(["prepare", str(tmp_path / "c.yaml"), "--num-cpus", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: data.featurizer.backend: cuik needs cuik-molmaker") and "[cuik]" in err[-1]


def _assert_cuik_equals_reference() -> int:
    """Every output column of the featurizer, bit for bit, both backends, default and every feature,
    with and without PEs; returns how many molecules the compiled path featurized itself."""
    from graphium_ray.chem.cuik_graph import CuikGraphs, takes

    batches = _batches()
    for features in ({}, EVERY_FEATURE, {**EVERY_FEATURE, "positional_encodings": {"laplacian_k": 4, "random_walk_k": 8}}):
        reference, compiled = (Featurizer(FeaturizerConfig(backend=b, **features), 0, 0) for b in ("rdkit", "cuik"))
        for k, batch in enumerate(batches):
            want, got = reference(molecule_rows(batch)), compiled(molecule_rows(batch))
            for name in want.schema.names:
                assert got.column(name).equals(want.column(name)), (name, features, k)
    # one molecule that cuik-molmaker rejects among ~80 (a syntax error never reaches it: it would
    # crash the process): all but ≤ 16 rows around it are still featurized by cuik-molmaker
    mixed = batches[2]
    parts = compiled._cuik_parts(list(range(len(mixed))), mixed)
    rejected = sorted(set(range(len(mixed))) - {i for rows, _ in parts for i in rows})
    assert mixed.index(UNKEKULIZABLE) in rejected and len(rejected) <= 16, rejected
    assert not any(takes(s, False) for s in ["C1CC", "C(", "[C", "Xx"])  # syntax errors stay on the reference path
    clean = [s for batch in batches for s in batch if takes(s, False) and parse_ok(s)]
    graphs = CuikGraphs(EVERY_FEATURE["atom_onehot"], EVERY_FEATURE["atom_float"], EVERY_FEATURE["bond"])(clean)
    assert graphs is not None  # a batch of valid SMILES is featurized by cuik-molmaker, not by the fallback
    want = mols_to_graphs([parse_smiles(s) for s in clean], EVERY_FEATURE["atom_onehot"], EVERY_FEATURE["atom_float"],
                          EVERY_FEATURE["bond"])  # fmt: skip
    for got_array, want_array in zip(graphs, want, strict=True):
        np.testing.assert_array_equal(got_array, want_array)
    return len(clean)


def parse_ok(smiles: str) -> bool:
    try:
        parse_smiles(smiles)
        return True
    except ValueError:
        return False


@pytest.mark.skipif(not HAS_CUIK and not CUIK_PYTHON.exists(),
                    reason="cuik-molmaker is not installed (optional extra graphium-ray[cuik]; its wheel pins "
                           "rdkit==2026.3.6): build .bench_venvs/cuik as BENCHMARKS.md section 1 says")  # fmt: skip
def test_cuik_backend_equals_the_reference_featurizer():
    if HAS_CUIK:
        assert _assert_cuik_equals_reference() > 100
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([str(CUIK_PYTHON), "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
                          f"{__file__}::test_cuik_backend_equals_the_reference_featurizer"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)  # fmt: skip
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]
