"""Label statistics of the train split, as a Ray Data map-reduce.

Map: each batch → row counts per split (and skipped), and over the train split's non-NaN labels
per task and level the partial sums (count, Σy, Σy², positives) in float64, and the same
(NaN-aware) sums per column of the molecule-level input features when there are any. Reduce: sum
of partials, in a canonical order (float sums depend on order: the result must not depend on
which of Ray's tasks returned first) → mean and population std per task / feature. Used for label normalization
(regression), input standardization, and reported in the manifest.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LEVELS = ("graph", "node", "edge")
SPLIT_NAMES = ("train", "val", "test", "unassigned")


def _flat_matrix(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    if width == 0:
        return np.zeros((0, 0))
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.float64)  # any number of chunks
    return flat.reshape(-1, width)


def _stat_columns(widths: dict[str, int], mol_feat_dim: int) -> dict[str, tuple[str, int]]:
    """Statistic name → (featurized column, width): a label level each, plus the molecule features."""
    columns = {level: (f"y_{level}", widths[level]) for level in LEVELS}
    if mol_feat_dim:
        columns["mol_feat"] = ("mol_feat", mol_feat_dim)
    return columns


def partial_stats(table: pa.Table, widths: dict[str, int], mol_feat_dim: int = 0) -> pa.Table:
    """Ray Data UDF (a task: stateless, so it runs in Ray's already started worker processes, not in
    a new actor process per ``prepare``): Arrow batch of featurized rows → one row of partial sums."""
    ok = pc.is_null(table.column("skip_reason"))
    splits = table.column("split").to_numpy(zero_copy_only=False)
    ok_np = ok.to_numpy(zero_copy_only=False)
    out = {f"rows_{s}": [np.array([float((ok_np & (splits == s)).sum())])] for s in SPLIT_NAMES}
    out["rows_skipped"] = [np.array([float((~ok_np).sum())])]
    table = table.filter(pc.and_(ok, pc.equal(table.column("split"), "train")))
    for level, (column, width) in _stat_columns(widths, mol_feat_dim).items():
        y = _flat_matrix(table.column(column), width)
        present = ~np.isnan(y)
        y0 = np.where(present, y, 0.0)
        out[f"{level}_count"] = [present.sum(axis=0).astype(np.float64)]
        out[f"{level}_sum"] = [y0.sum(axis=0)]
        out[f"{level}_sumsq"] = [(y0 * y0).sum(axis=0)]
        out[f"{level}_pos"] = [(y0 > 0.5).sum(axis=0).astype(np.float64)]
    return pa.table({k: pa.array([v[0].tolist()], pa.list_(pa.float64())) for k, v in out.items()})


def reduce_stats(partials: list[dict], widths: dict[str, int], mol_feat_dim: int = 0) -> dict:
    """Sum partials into ``{"rows": {split: n}, level: {count, mean, std, positives}}`` (lists per
    task), plus ``mol_feat`` (the same per input feature) when ``mol_feat_dim``."""
    partials = sorted(partials, key=lambda p: [p[k] for k in sorted(p)])  # canonical order
    result: dict = {"rows": {s: int(sum(p[f"rows_{s}"][0] for p in partials)) for s in (*SPLIT_NAMES, "skipped")}}
    for level, (_, w) in _stat_columns(widths, mol_feat_dim).items():
        acc = {k: np.zeros(w) for k in ("count", "sum", "sumsq", "pos")}
        for p in partials:
            for k in acc:
                acc[k] += np.asarray(p[f"{level}_{k}"], dtype=np.float64).reshape(w)
        count = np.maximum(acc["count"], 1.0)
        mean = acc["sum"] / count
        var = np.maximum(acc["sumsq"] / count - mean**2, 0.0)
        result[level] = {
            "count": acc["count"].astype(int).tolist(),
            "mean": mean.tolist(),
            "std": np.sqrt(var).tolist(),
            "positives": acc["pos"].astype(int).tolist(),
        }
    return result


def molecule_feature_stats(names: list[str], stats: dict | None) -> dict:
    """``{"names", "mean", "std"}`` of the molecule-level input features over the train split, as the
    model standardizes them: a feature constant or undefined on train gets std 1 (it then reads as
    0 everywhere, carrying nothing); a set with a fixed reference scale (``rdkit2d_normalized``: mean
    0.5, std 1/√12, the uniform distribution's) keeps it, and ``tables`` records the digest of its table.
    Empty when there are no molecule features."""
    if not names:
        return {}
    from graphium_ray.chem.descriptors import feature_sets_of, molecule_feature_tables, reference_scale

    count = np.asarray(stats["count"], np.float64)
    std = np.asarray(stats["std"], np.float64)
    std = np.where((count > 1) & (std > 1e-8), std, 1.0)
    mean = np.where(count > 0, np.asarray(stats["mean"], np.float64), 0.0)
    for j, name in enumerate(names):  # a set scaled by its reference distribution ignores the train split
        if (fixed := reference_scale(name)) is not None:
            mean[j], std[j] = fixed
    out = {"names": names, "mean": mean.tolist(), "std": std.tolist()}
    if tables := molecule_feature_tables(feature_sets_of(names)):
        out["tables"] = tables  # digests of the fixed tables read (checked when a checkpoint is loaded)
    return out
