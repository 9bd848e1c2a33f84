"""Masked losses and metrics against scikit-learn / SciPy / torch references."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import average_precision_score, mean_absolute_error, r2_score, roc_auc_score

from graphium_ray.outputs import LabelNormalizer
from graphium_ray.tasks import TaskSpec
from graphium_ray.train import metrics as M
from graphium_ray.train.evaluate import compute_metrics
from graphium_ray.train.losses import multitask_loss

rng = np.random.default_rng(0)


def test_regression_metrics_match_sklearn_scipy():
    y, p = rng.normal(size=200), rng.normal(size=200)
    assert M.mae(y, p) == pytest.approx(mean_absolute_error(y, p))
    assert M.r2(y, p) == pytest.approx(r2_score(y, p))
    assert M.pearson(y, p) == pytest.approx(pearsonr(y, p).statistic)


@pytest.mark.parametrize("ties", [False, True])
def test_binary_metrics_match_sklearn(ties):
    y = (rng.random(300) > 0.7).astype(float)
    s = rng.random(300)
    if ties:
        s = np.round(s, 1)
    assert M.auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert M.average_precision(y, s) == pytest.approx(average_precision_score(y, s))


def test_single_class_and_tiny_splits_are_undefined():
    assert M.auroc(np.ones(5), rng.random(5)) is None
    assert M.average_precision(np.zeros(5), rng.random(5)) is None
    assert M.r2(np.array([1.0]), np.array([2.0])) is None
    assert M.pearson(np.ones(4), rng.random(4)) is None


def test_macro_auroc_matches_sklearn_ovr():
    y = rng.integers(0, 3, 120).astype(float)
    logits = rng.normal(size=(120, 3))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert M.macro_auroc(y, probs) == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))


def task(name, kind="regression", loss=None, **kw):
    loss = loss or {"regression": "mse", "binary": "bce", "multiclass": "ce", "ordinal": "hybrid_ranked"}[kind]
    return TaskSpec(
        "d", name, "graph", kind, loss, ("mae",) if kind == "regression" else ("auroc",), kind == "regression", **kw
    )


def test_masked_loss_ignores_nan_and_averages_per_task():
    tasks = [task("a"), task("b", "binary")]
    pred = torch.tensor([[1.0, 0.5], [2.0, -1.0], [0.0, 2.0]])
    y = torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, float("nan")]])
    loss, per_task = multitask_loss({"graph": tasks}, {"graph": pred}, {"graph": y})
    mse = ((1.0 - 0.0) ** 2 + (0.0 - 1.0) ** 2) / 2
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([0.5, -1.0]), torch.tensor([1.0, 0.0]))
    assert per_task["d/a"] == pytest.approx(mse) and per_task["d/b"] == pytest.approx(float(bce))
    assert float(loss) == pytest.approx((mse + float(bce)) / 2)


def test_hybrid_ranked_loss():
    t = task("g", "ordinal", num_classes=3, hybrid_alpha=0.3)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([[0.0], [1.0]])
    loss, _ = multitask_loss({"graph": [t]}, {"graph": logits}, {"graph": y})
    ce = torch.nn.functional.cross_entropy(logits, y[:, 0].long())
    expected = (logits.softmax(-1) * torch.arange(3.0)).sum(-1)
    ref = 0.3 * ce + 0.7 * ((expected - y[:, 0]) ** 2).mean()
    assert float(loss) == pytest.approx(float(ref), rel=1e-6)


def test_metrics_reported_in_real_units():
    tasks = [task("energy")]
    stats = {"graph": {"mean": [-400.0], "std": [40.0]}}
    norm = LabelNormalizer(tasks, stats)
    y = np.array([[-380.0], [-420.0], [np.nan], [-400.0]])
    pred_norm = np.array([[0.5], [-0.5], [3.0], [0.25]])  # model output in normalized units
    out = compute_metrics(tasks, norm, {"graph": {"pred": pred_norm, "y": y}})
    real = np.array([-380.0, -420.0, -390.0])
    assert out["d/energy"]["mae"] == pytest.approx(mean_absolute_error([-380, -420, -400], real))
    assert out["d/energy"]["n"] == 3


def test_average_ranks_match_scipy_with_ties():
    from scipy.stats import rankdata

    from graphium_ray.train.metrics import average_ranks

    x = rng.integers(0, 6, 300).astype(float)
    np.testing.assert_allclose(average_ranks(x), rankdata(x))


def test_ensemble_averages_class_probabilities_and_refuses_different_molecules(tmp_path):
    """Multiclass members: the ensemble's probabilities are the members' mean and its macro AUROC
    is scikit-learn's on them; members over different molecules are an error naming the file."""
    import pandas as pd

    from graphium_ray.train.replicates import ensemble_metrics, ensemble_predictions

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=40).astype(float)
    members = []
    for _ in range(3):
        probs = rng.dirichlet(np.ones(3), size=40)
        members.append(pd.DataFrame({"smiles": [f"C{i}" for i in range(40)], "label/d/c": y, "pred/d/c": list(probs)}))
    ens = ensemble_predictions(members, [tmp_path / f"r{i}" for i in range(3)])
    mean = np.mean([np.stack(m["pred/d/c"]) for m in members], axis=0)
    np.testing.assert_allclose(np.stack(ens["pred/d/c"]), mean)
    task = TaskSpec("d", "c", "graph", "multiclass", "ce", ("auroc", "accuracy"), False, num_classes=3)
    got = ensemble_metrics([task], ens)["d/c"]
    assert got["auroc"] == pytest.approx(roc_auc_score(y, mean, multi_class="ovr"))
    assert got["accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == y)) and got["n"] == 40
    other = members[2].assign(smiles=[f"N{i}" for i in range(40)])
    with pytest.raises(ValueError, match="r2: its test molecules differ"):
        ensemble_predictions([members[0], members[1], other], [tmp_path / f"r{i}" for i in range(3)])
