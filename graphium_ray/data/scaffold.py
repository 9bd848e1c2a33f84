"""Bemis–Murcko scaffold splits, balanced as chemprop does.

Molecules are grouped by the canonical SMILES of their Bemis–Murcko scaffold (chirality
ignored; acyclic molecules share the empty scaffold). With target sizes n_val = ⌊f_val·n⌋,
n_train = ⌊f_train·n⌋, n_test = n - n_train - n_val, groups larger than n_val/2 or n_test/2 are
"big" and placed first, the rest follow; both lists are shuffled with ``random.Random(seed)``.
Groups are then dealt greedily: to train while it stays ≤ n_train, else to val while it stays
≤ n_val, else to test. A whole scaffold group always lands in one split, so test molecules have
scaffolds never seen in training.

Unparsable SMILES get no split (they are reported by the pipeline as unparsable).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rdkit import Chem, RDLogger
from rdkit.Chem.Scaffolds import MurckoScaffold

SPLITS = ("train", "val", "test")


def scaffold_of(smiles: str) -> str | None:
    """Canonical Bemis–Murcko scaffold SMILES, or None when the SMILES does not parse."""
    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    if mol is None:
        return None
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split(smiles: Sequence[str], seed: int, fractions: tuple[float, float, float]) -> dict[int, str]:
    """``{row index: split}`` for every parsable SMILES (unparsable rows are left out)."""
    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        scaffold = scaffold_of(smi)
        if scaffold is not None:
            groups.setdefault(scaffold, []).append(i)
    n = sum(len(g) for g in groups.values())
    n_train, n_val = int(fractions[0] * n), int(fractions[1] * n)
    n_test = n - n_train - n_val
    big = [g for g in groups.values() if len(g) > n_val / 2 or len(g) > n_test / 2]
    small = [g for g in groups.values() if not (len(g) > n_val / 2 or len(g) > n_test / 2)]
    rng = random.Random(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    assignment: dict[int, str] = {}
    counts = dict.fromkeys(SPLITS, 0)
    for group in big + small:
        if counts["train"] + len(group) <= n_train:
            split = "train"
        elif counts["val"] + len(group) <= n_val:
            split = "val"
        else:
            split = "test"
        counts[split] += len(group)
        assignment.update(dict.fromkeys(group, split))
    return assignment


def write_split_file(assignment: dict[int, str], path: str) -> None:
    """Graphium's split-file format: columns train, val, test of row indices (padded with blanks)."""
    import pandas as pd

    columns = {s: sorted(i for i, v in assignment.items() if v == s) for s in SPLITS}
    longest = max(len(v) for v in columns.values())
    frame = pd.DataFrame({s: pd.array(v + [None] * (longest - len(v)), dtype="Int64") for s, v in columns.items()})
    frame.to_csv(path, index=False)
