"""Featurizer speed vs bare RDKit parsing, side by side in one process (one core).

Prints JSON: molecules/s for (a) ``Chem.MolFromSmiles`` only, (b) our featurizer without PEs,
(c) with Laplacian k=8 + random-walk k=16 PEs (batched), and the ratios b/a and c/a, for
drug-like molecules (MOSES from the ``molsets`` wheel when installed, else micro ZINC from
../shared/data, else the built-in reference set) and QM9 molecules (qm9pack).

Timing: ``--repeats`` rounds; each round times (a), (b) and (c) back to back, so each round's
ratios compare runs made under the same machine load. Reported: the median ratio over rounds
and its range (min–max), and the median rates; never the best round alone.

    python platform/bench/featurize_bench.py [--molecules 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
from rdkit import Chem

from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import REFERENCE_SMILES, qm9_sample
from graphium_ray.data.featurize import Featurizer
from graphium_ray.data.in_memory import molecule_rows

SHARED_ZINC = Path(__file__).resolve().parents[3] / "shared" / "data" / "toymix" / "micro_zinc.csv"


def drug_like(n: int) -> tuple[list[str], str]:
    try:
        from graphium_ray.data.pretrain_data import moses_sample

        return [s for _, chunk in moses_sample(n) for s in chunk], "MOSES training set (molsets)"
    except RuntimeError:  # molsets not installed
        pass
    if SHARED_ZINC.exists():
        smiles = pacsv.read_csv(SHARED_ZINC).column("SMILES").to_pylist()
        source = "micro ZINC (../shared/data)"
    else:
        smiles, source = list(REFERENCE_SMILES), "built-in reference molecules"
    return (smiles * (n // len(smiles) + 1))[:n], source


def rate(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def median_rate(fn, n: int, repeats: int) -> float:
    """Items/s of ``fn`` (which handles ``n`` items): the median over ``repeats`` runs."""
    return float(np.median([rate(fn, n) for _ in range(repeats)]))


def spread(values: list[float], digits: int) -> dict:
    return {"median": round(float(np.median(values)), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}  # fmt: skip


def bench(smiles: list[str], repeats: int, batch: int = 512) -> dict:
    plain = Featurizer(FeaturizerConfig(), 0, 0)
    with_pe = Featurizer(FeaturizerConfig(positional_encodings={"laplacian_k": 8, "random_walk_k": 16}), 0, 0)
    table = molecule_rows(smiles)

    def run(featurizer):
        for start in range(0, len(smiles), batch):
            featurizer(table.slice(start, batch))

    def parse_only():
        for s in smiles:
            Chem.MolFromSmiles(s)

    run(plain), run(with_pe)  # warm-up: imports, lookup tables, LAPACK workspaces
    rounds = []
    for _ in range(repeats):
        rdkit = rate(parse_only, len(smiles))
        rounds.append((rdkit, rate(lambda: run(plain), len(smiles)), rate(lambda: run(with_pe), len(smiles))))
    rdkit, ours, ours_pe = (np.array(col) for col in zip(*rounds, strict=True))
    return {"molecules": len(smiles), "rounds": repeats, "mean_heavy_atoms": round(float(np.mean(
                [Chem.MolFromSmiles(s).GetNumAtoms() for s in smiles[:500]])), 1),
            "rdkit_parse_mol_per_s": round(float(np.median(rdkit))), "ours_no_pe_mol_per_s": round(float(np.median(ours))),
            "ours_pe_mol_per_s": round(float(np.median(ours_pe))),
            "ratio_no_pe": spread(list(ours / rdkit), 3), "ratio_pe": spread(list(ours_pe / rdkit), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7, help="rounds (each times all three back to back)")
    args = parser.parse_args()
    zinc, source = drug_like(args.molecules)
    qm9 = qm9_sample(args.molecules, ["SMILES"]).column("SMILES").to_pylist()
    result = {"drug_like": {"source": source, **bench(zinc, args.repeats)},
              "qm9": {"source": "qm9pack", **bench(qm9, args.repeats)}}  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
