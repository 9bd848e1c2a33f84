"""Featurizer speed vs bare RDKit parsing, side by side in one process (one core).

Prints JSON: molecules/s for (a) ``Chem.MolFromSmiles`` only, (b) our featurizer without PEs,
(c) with Laplacian k=8 + random-walk k=16 PEs (batched), and the ratios b/a and c/a, for
drug-like molecules (ZINC, from ../shared/data when present, else the built-in reference set)
and QM9 molecules (qm9pack).

    python platform/bench/featurize_bench.py [--molecules 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow.csv as pacsv
from rdkit import Chem

from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import REFERENCE_SMILES, qm9_sample
from graphium_ray.data.featurize import Featurizer
from graphium_ray.data.in_memory import molecule_rows

SHARED_ZINC = Path(__file__).resolve().parents[3] / "shared" / "data" / "toymix" / "micro_zinc.csv"


def drug_like(n: int) -> tuple[list[str], str]:
    if SHARED_ZINC.exists():
        smiles = pacsv.read_csv(SHARED_ZINC).column("SMILES").to_pylist()
        source = "micro ZINC (../shared/data)"
    else:
        smiles, source = list(REFERENCE_SMILES), "built-in reference molecules"
    return (smiles * (n // len(smiles) + 1))[:n], source


def best_rate(fn, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


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

    rdkit = best_rate(parse_only, len(smiles), repeats)
    ours = best_rate(lambda: run(plain), len(smiles), repeats)
    ours_pe = best_rate(lambda: run(with_pe), len(smiles), repeats)
    return {"molecules": len(smiles), "rdkit_parse_mol_per_s": round(rdkit), "ours_no_pe_mol_per_s": round(ours),
            "ours_pe_mol_per_s": round(ours_pe), "ratio_no_pe": round(ours / rdkit, 3), "ratio_pe": round(ours_pe / rdkit, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--molecules", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    zinc, source = drug_like(args.molecules)
    qm9 = qm9_sample(args.molecules, ["SMILES"]).column("SMILES").to_pylist()
    result = {"drug_like": {"source": source, **bench(zinc, args.repeats)},
              "qm9": {"source": "qm9pack", **bench(qm9, args.repeats)}}  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
