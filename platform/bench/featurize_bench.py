"""Featurizer speed vs bare RDKit parsing, side by side in one process (one core).

Prints JSON: molecules/s for (a) ``Chem.MolFromSmiles`` only, (b) our featurizer without PEs,
(c) with Laplacian k=8 + random-walk k=16 PEs (batched), and the ratios b/a and c/a, for
drug-like molecules (MOSES from the ``molsets`` wheel when installed, else micro ZINC from
../shared/data, else the built-in reference set) and QM9 molecules (qm9pack).

Timing: ``--repeats`` rounds; each round times (a), (b) and (c) back to back, so each round's
ratios compare runs made under the same machine load. Reported: the median ratio over rounds
and its range (min–max), and the median rates; never the best round alone.

    python platform/bench/featurize_bench.py [--molecules 2000] [--repeats 7]

Where cuik-molmaker is installed (``pip install -e '.[cuik]'`` in an environment of its own: its
wheel pins ``rdkit==2026.3.6``), the same features through ``featurizer.backend: cuik`` are timed
in the same rounds (``ratio_cuik_no_pe`` / ``ratio_cuik_pe``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
from rdkit import Chem, rdBase

from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import REFERENCE_SMILES, qm9_sample
from graphium_ray.data.featurize import Featurizer, molecule_rows

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


def cuik_available() -> bool:
    return importlib.util.find_spec("cuik_molmaker") is not None


def bench(smiles: list[str], repeats: int, batch: int = 512) -> dict:
    pe = {"laplacian_k": 8, "random_walk_k": 16}
    variants = {"no_pe": FeaturizerConfig(), "pe": FeaturizerConfig(positional_encodings=pe)}
    if cuik_available():  # the compiled path, same features (featurizer.backend: cuik)
        variants |= {"cuik_no_pe": FeaturizerConfig(backend="cuik"),
                     "cuik_pe": FeaturizerConfig(backend="cuik", positional_encodings=pe)}  # fmt: skip
    featurizers = {name: Featurizer(cfg, 0, 0) for name, cfg in variants.items()}
    table = molecule_rows(smiles)

    def run(featurizer):
        for start in range(0, len(smiles), batch):
            featurizer(table.slice(start, batch))

    def parse_only():
        for s in smiles:
            Chem.MolFromSmiles(s)

    for featurizer in featurizers.values():  # warm-up: imports, lookup tables, LAPACK workspaces
        run(featurizer)
    rdkit, rates = [], {name: [] for name in featurizers}
    for _ in range(repeats):  # each round: bare parsing, then every featurizer, back to back
        rdkit.append(rate(parse_only, len(smiles)))
        for name, featurizer in featurizers.items():
            rates[name].append(rate(lambda f=featurizer: run(f), len(smiles)))
    rdkit_rates = np.array(rdkit)
    result = {"molecules": len(smiles), "rounds": repeats, "rdkit": rdBase.rdkitVersion,
              "mean_heavy_atoms": round(float(np.mean([Chem.MolFromSmiles(s).GetNumAtoms() for s in smiles[:500]])), 1),
              "rdkit_parse_mol_per_s": round(float(np.median(rdkit_rates)))}  # fmt: skip
    for name, values in rates.items():
        result[f"ours_{name}_mol_per_s"] = round(float(np.median(values)))
        result[f"ratio_{name}"] = spread(list(np.array(values) / rdkit_rates), 3)
    return result


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
