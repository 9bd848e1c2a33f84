"""Per-task metrics in real units, written in NumPy (tests check them against scikit-learn/SciPy).

Every function takes 1-D arrays of the present labels only. A metric that is undefined on the
given labels (fewer than two labels, a single class for AUROC/AP, zero variance for Pearson/R²)
returns ``None``: reported as undefined, never a crash and never a made-up number.
"""

from __future__ import annotations

import numpy as np


def probabilities(kind: str, out: np.ndarray) -> np.ndarray:
    """Head outputs (M, out_dim) → binary: σ(logit); multiclass/ordinal: softmax over the class
    logits; regression: unchanged."""
    if kind == "binary":
        return 1.0 / (1.0 + np.exp(-out))
    if kind in ("multiclass", "ordinal"):
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return out


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (as ``scipy.stats.rankdata``; NumPy only, so
    training workers skip importing scipy.stats)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    first = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(x)))
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = (starts + (counts + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def mae(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(np.mean(np.abs(p - y))) if len(y) else None


def rmse(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(np.sqrt(np.mean((p - y) ** 2))) if len(y) else None


def pearson(y: np.ndarray, p: np.ndarray) -> float | None:
    if len(y) < 2:
        return None
    yc, pc = y - y.mean(), p - p.mean()
    denom = np.sqrt((yc * yc).sum() * (pc * pc).sum())
    return float((yc * pc).sum() / denom) if denom > 0 else None


def r2(y: np.ndarray, p: np.ndarray) -> float | None:
    if len(y) < 2:
        return None
    ss_tot = ((y - y.mean()) ** 2).sum()
    return float(1.0 - ((y - p) ** 2).sum() / ss_tot) if ss_tot > 0 else None


def auroc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Mann-Whitney form with average ranks for ties: P(score_pos > score_neg) + ½P(tie)."""
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float | None:
    """AP = Σ_k (R_k - R_{k-1}) P_k over distinct score thresholds (scikit-learn's definition)."""
    pos = y > 0.5
    n_pos = int(pos.sum())
    if n_pos == 0 or n_pos == len(y):
        return None
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], pos[order].astype(np.float64)
    last_of_threshold = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(t)[last_of_threshold]
    precision = tp / (last_of_threshold + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def accuracy(y: np.ndarray, pred_class: np.ndarray) -> float | None:
    return float(np.mean(pred_class == y)) if len(y) else None


def macro_auroc(y: np.ndarray, probs: np.ndarray) -> float | None:
    """One-vs-rest AUROC averaged over classes present in y (with at least one negative)."""
    scores = [auroc((y == c).astype(float), probs[:, c]) for c in range(probs.shape[1])]
    scores = [s for s in scores if s is not None]
    return float(np.mean(scores)) if scores else None


REGRESSION = {"mae": mae, "rmse": rmse, "pearson": pearson, "r2": r2}
BINARY = {"auroc": auroc, "average_precision": average_precision}


def task_metrics(kind: str, names: tuple[str, ...] | list[str], y: np.ndarray, out: np.ndarray) -> dict:
    """y (M,) present labels in real units; out (M, out_dim): prediction in real units
    (regression), logit (binary) or logits (multiclass/ordinal). Returns {metric: value or None}."""
    return prediction_metrics(kind, names, y, out if kind == "regression" else probabilities(kind, out))


def prediction_metrics(kind: str, names: tuple[str, ...] | list[str], y: np.ndarray, pred: np.ndarray) -> dict:
    """As :func:`task_metrics` on predictions already in the units of ``test_predictions.parquet``:
    pred (M, out_dim) in real units (regression), P(class 1) (binary) or class probabilities
    (multiclass/ordinal); an ensemble's averaged probabilities are scored this way."""
    result: dict[str, float | None] = {"n": int(len(y))}
    if kind == "regression":
        for name in names:
            result[name] = REGRESSION[name](y, pred[:, 0])
    elif kind == "binary":
        prob = pred[:, 0]
        for name in names:
            result[name] = accuracy(y, (prob > 0.5).astype(float)) if name == "accuracy" else BINARY[name](y, prob)
    else:
        for name in names:
            if name == "accuracy":
                result[name] = accuracy(y, pred.argmax(axis=1).astype(float))
            elif name == "auroc":
                result[name] = macro_auroc(y, pred)
            else:
                result[name] = None
    return result
