"""Masked losses and metrics against scikit-learn / SciPy / torch references."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
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


def _reference_loss(level_tasks, preds, targets):
    """Per task, one at a time: the present rows indexed out, torch's own mean-reduced losses."""
    total, weight_sum, per_task = 0.0, 0.0, {}
    for level, tasks in level_tasks.items():
        start = 0
        for j, t in enumerate(tasks):
            width = t.out_dim
            p, y = preds[level][:, start:start + width], targets[level][:, j]
            start += width
            keep = ~torch.isnan(y)
            if not keep.any():
                continue
            p, y = p[keep], y[keep]
            if t.kind == "regression":
                value = F.l1_loss(p[:, 0], y) if t.loss == "mae" else F.mse_loss(p[:, 0], y)
            elif t.kind == "binary":
                value = F.binary_cross_entropy_with_logits(p[:, 0], y)
            else:
                value = F.cross_entropy(p, y.long())
                if t.loss == "hybrid_ranked":
                    expected = (p.softmax(-1) * torch.arange(width, dtype=p.dtype)).sum(-1)
                    value = t.hybrid_alpha * value + (1 - t.hybrid_alpha) * F.mse_loss(expected, y)
            per_task[t.name] = value
            total, weight_sum = total + t.weight * value, weight_sum + t.weight
    return total / weight_sum, per_task


def test_blocked_loss_matches_task_by_task_reference_in_value_and_gradient():
    """Tasks of every kind, interleaved over two levels, with NaN labels, a task with no label in
    the batch and unequal weights: the loss computed per loss-function block equals torch's losses
    computed task by task on the present rows, and so do the gradients."""
    g = torch.Generator().manual_seed(0)
    graph_tasks = [task("r0"), task("b0", "binary", weight=2.0), task("m0", "multiclass", num_classes=4),
                   task("r1", loss="mae"), task("b1", "binary"), task("o0", "ordinal", num_classes=3, hybrid_alpha=0.3),
                   task("r2"), task("o1", "ordinal", num_classes=3, hybrid_alpha=0.7), task("b_empty", "binary")]  # fmt: skip
    node_tasks = [TaskSpec("n", f"q{i}", "node", "regression", "mse", ("mae",), True, weight=0.5 + i) for i in range(3)]
    level_tasks = {"graph": graph_tasks, "node": node_tasks}
    rows = {"graph": 23, "node": 71}
    preds, targets = {}, {}
    for level, tasks in level_tasks.items():
        n = rows[level]
        preds[level] = torch.randn(n, sum(t.out_dim for t in tasks), generator=g, requires_grad=True)
        cols = []
        for t in tasks:
            if t.kind == "regression":
                col = torch.randn(n, generator=g)
            elif t.kind == "binary":
                col = (torch.rand(n, generator=g) > 0.6).float()
            else:
                col = torch.randint(0, t.num_classes, (n,), generator=g).float()
            col[torch.rand(n, generator=g) < 0.3] = float("nan")
            if t.column == "b_empty":
                col[:] = float("nan")
            cols.append(col)
        targets[level] = torch.stack(cols, 1)
    loss, per_task = multitask_loss(level_tasks, preds, targets)
    ref, ref_per_task = _reference_loss(level_tasks, preds, targets)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert set(per_task) == set(ref_per_task) and "d/b_empty" not in per_task
    for name, value in ref_per_task.items():
        assert per_task[name] == pytest.approx(float(value), rel=1e-6), name
    grads = torch.autograd.grad(loss, [preds["graph"], preds["node"]])
    ref_grads = torch.autograd.grad(ref, [preds["graph"], preds["node"]])
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    # a level with no rows in the batch (e.g. edge labels in a batch of single atoms) adds nothing
    empty = {"graph": preds["graph"], "node": torch.zeros(0, 3, requires_grad=True)}
    no_rows = {"graph": targets["graph"], "node": torch.zeros(0, 3)}
    loss_without, _ = multitask_loss(level_tasks, empty, no_rows)
    ref_without, _ = _reference_loss({"graph": graph_tasks}, preds, targets)
    assert loss_without.item() == pytest.approx(ref_without.item(), rel=1e-6)


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
