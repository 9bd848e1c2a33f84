"""Static-shape (padded) batches: same predictions, losses and gradients for the real graphs as the
unpadded batch, every row packed exactly once, and the compiled (dynamic=False) path on CPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from graphium_ray.config import FeaturizerConfig, ModelConfig
from graphium_ray.data.builtin import REFERENCE_SMILES, reference_table
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch
from graphium_ray.data.static_shapes import GraphTooLargeError, StaticBatcher, StaticShape, pad_batch
from graphium_ray.nn.layer_registry import LAYERS
from graphium_ray.nn.network import MultiTaskGNN
from graphium_ray.tasks import TaskSpec
from graphium_ray.train.losses import multitask_loss

WIDTHS = {"graph": 2, "node": 0, "edge": 0}
TASKS = [
    TaskSpec("d", "logp", "graph", "regression", "mse", ("mae",), True),
    TaskSpec("d", "has_ring", "graph", "binary", "bce", ("auroc",), False),
    TaskSpec("n", "charge", "node", "regression", "mse", ("mae",), True),
    TaskSpec("e", "order", "edge", "regression", "mse", ("mae",), True),
]


def _rows(pe: dict):
    ref = reference_table().to_pydict()
    y = np.array([ref["logp"], ref["has_ring"]], dtype=np.float32).T
    y[::4, 0] = np.nan
    return featurize_smiles(ref["smiles"], y, FeaturizerConfig(positional_encodings=pe))


@pytest.fixture(scope="module")
def rows():
    return _rows({"laplacian_k": 3, "random_walk_k": 4})


def _model(layer: str, lap: int = 3, **kw) -> MultiTaskGNN:
    torch.manual_seed(0)
    cfg = ModelConfig(layer=layer, hidden_dim=16, num_layers=2, head_hidden_dim=16, pooling=["sum", "mean", "max"],
                      attention_heads=2, **kw)  # fmt: skip
    return MultiTaskGNN(cfg, 84, 13, TASKS, lap, 4)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_padded_batch_predicts_the_same_for_real_graphs(rows, layer):
    batch = rows_to_batch(rows, WIDTHS, 13)
    shape = StaticShape(graphs=batch.num_graphs + 5, nodes=batch.num_nodes + 17, edges=batch.edge_index.shape[1] + 9)
    padded = pad_batch(batch, shape)
    assert padded.x.shape[0] == shape.nodes and padded.edge_index.shape[1] == shape.edges
    model = _model(layer, norm="batch", virtual_node=True).eval()
    plain, pad = model(batch), model(padded)
    g, n, e = batch.num_graphs, batch.num_nodes, batch.edge_index.shape[1]
    torch.testing.assert_close(pad["graph"][:g], plain["graph"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pad["node"][:n], plain["node"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pad["edge"][:e], plain["edge"], rtol=1e-5, atol=1e-5)
    assert padded.graph_mask.sum() == g and padded.node_mask.sum() == n


@pytest.mark.parametrize("head_norm", ["layer", "batch"])
def test_padded_training_step_has_the_same_loss_and_gradients(head_norm):
    """Training mode with batch norm (masked statistics, in the blocks and, with ``head_norm: batch``,
    in the task heads) and the virtual node: one step's loss, every parameter gradient and the
    running statistics match the unpadded batch's."""
    rows = _rows({"laplacian_k": 0, "random_walk_k": 4})  # (Laplacian signs are random per graph slot)
    batch = rows_to_batch(rows, WIDTHS, 13)
    padded = pad_batch(batch, StaticShape(batch.num_graphs + 3, batch.num_nodes + 11, batch.edge_index.shape[1] + 6))
    graph_tasks = {"graph": TASKS[:2]}
    grads, losses, running = [], [], []
    for b in (_float64(batch), _float64(padded)):  # float64: equal up to summation order
        model = _model("gine", norm="batch", head_norm=head_norm, virtual_node=True, lap=0).double().train()
        out = model(b)
        loss, _ = multitask_loss(graph_tasks, {"graph": out["graph"]}, {"graph": b.y["graph"]})
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
        running.append([m.running_var.clone() for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)])
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-9, atol=1e-12, msg=k)
    assert len(running[0]) == 2 + 3 * (head_norm == "batch")  # 2 blocks (+ 3 heads: d, n, e)
    for padded_var, plain_var in zip(running[1], running[0], strict=True):
        torch.testing.assert_close(padded_var, plain_var)


def _float64(b):
    cast = {k: v.double() if v.is_floating_point() else v for k, v in vars(b).items() if isinstance(v, torch.Tensor)}
    return replace(b, **cast, pe={k: v.double() for k, v in b.pe.items()}, y={k: v.double() for k, v in b.y.items()})


def test_static_batcher_packs_every_row_once_within_budget(rows):
    batcher = StaticBatcher(StaticShape.for_batch_size(8, 12, 26), WIDTHS, 13)
    chunks = [rows.slice(i, 7) for i in range(0, rows.num_rows, 7)]
    batches = list(batcher(chunks))
    assert {(b.num_graphs, b.num_nodes, b.edge_index.shape[1]) for b in batches} == {(9, 97, 208)}
    real_y = torch.cat([b.y["graph"][b.graph_mask] for b in batches])
    expected = rows_to_batch(rows, WIDTHS, 13).y["graph"]
    torch.testing.assert_close(real_y, expected, equal_nan=True)  # all rows, in order, once
    assert sum(int(b.node_mask.sum()) for b in batches) == int(sum(rows.column("num_nodes").to_numpy()))
    assert len(batches) < len(REFERENCE_SMILES) / 3  # packed, not one graph per batch


def test_too_large_molecule_names_the_molecule_and_the_setting(rows):
    with pytest.raises(GraphTooLargeError, match=r"molecule .* atoms.*max_nodes_per_graph"):
        list(StaticBatcher(StaticShape(3, 5, 8), WIDTHS, 13)([rows]))


def test_compiled_model_on_static_batches_matches_eager_without_recompiling(rows):
    batcher = StaticBatcher(StaticShape.for_batch_size(10, 12, 26), WIDTHS, 13)
    first, second = list(batcher([rows]))[:2]
    model = _model("gine", norm="batch", virtual_node=True).eval()
    compiled = torch.compile(model, dynamic=False)
    with torch.no_grad():
        torch.testing.assert_close(compiled(first)["graph"], model(first)["graph"], rtol=1e-4, atol=1e-5)
        with torch._dynamo.config.patch(error_on_recompile=True):  # same shapes: no new graph
            torch.testing.assert_close(compiled(second)["graph"], model(second)["graph"], rtol=1e-4, atol=1e-5)


def test_ipu_fails_at_once_naming_poptorch(tmp_path, capsys):
    """`train.accelerator=ipu` turns on static shapes and, without PopTorch, stops before any work."""
    import yaml

    from graphium_ray.cli import main
    from graphium_ray.config import load_config

    cfg = tmp_path / "ipu.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"datasets": [{"name": "d", "path": "nowhere.csv", "tasks": [{"columns": ["y"]}]}]},
                                   "train": {"accelerator": "ipu"}}))  # fmt: skip
    assert load_config(cfg).train.static_shapes is not None
    assert main(["train", str(cfg), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "poptorch" in err.lower() and "PyPI" in err
    assert not (tmp_path / "run").exists()


def test_compile_requires_static_shapes(tmp_path):
    from graphium_ray.config import ConfigError, validate

    with pytest.raises(ConfigError, match="static_shapes"):
        validate({"data": {"datasets": [{"name": "d", "path": "x.csv", "tasks": [{"columns": ["y"]}]}]},
                  "train": {"compile": True}})  # fmt: skip


def test_lightning_ipu_strategy_needs_poptorch():
    from graphium_ray.config import ConfigError, TrainConfig
    from graphium_ray.train.devices import lightning_trainer_kwargs

    with pytest.raises(ConfigError, match="poptorch"):
        lightning_trainer_kwargs(TrainConfig(accelerator="ipu"))


def test_static_batches_round_trip_through_a_dict_of_tensors():
    """What PopTorch receives on IPUs: a flat dict of tensors that rebuilds the same batch."""
    from graphium_ray.batch import GraphBatch
    from graphium_ray.data.static_shapes import StaticShape, pad_batch

    ref = reference_table().to_pydict()
    y = np.array([ref["logp"], ref["has_ring"]], dtype=np.float32).T
    feats = featurize_smiles(ref["smiles"][:8], y[:8], FeaturizerConfig(positional_encodings={"random_walk_k": 3}))
    batch = pad_batch(rows_to_batch(feats, {"graph": 2, "node": 0, "edge": 0}, 13), StaticShape(10, 200, 400))
    again = GraphBatch.from_tensors(batch.as_tensors())
    assert again.num_graphs == batch.num_graphs == 10
    for name in ("x", "edge_index", "edge_attr", "batch", "graph_mask", "node_mask"):
        assert torch.equal(getattr(again, name), getattr(batch, name))
    assert torch.equal(again.pe["rw"], batch.pe["rw"])
    torch.testing.assert_close(again.y["graph"], batch.y["graph"], equal_nan=True)  # padding rows are NaN


def test_batch_norm_trains_on_a_batch_of_one_single_atom_molecule():
    """An epoch's last batch can be one molecule of one heavy atom (methane in FreeSolv): one node
    row, no batch statistics. It trains, normalized with the running statistics (left unchanged),
    like PyG's BatchNorm(allow_single_element=True); nn.BatchNorm1d raised here."""
    from torch_geometric.nn.norm import BatchNorm

    from graphium_ray.nn.primitives import MaskedBatchNorm1d

    torch.manual_seed(0)
    ours, pyg = MaskedBatchNorm1d(4), BatchNorm(4, allow_single_element=True)
    warm = torch.randn(16, 4) * 3 + 1
    ours.train()(warm), pyg.train()(warm)  # same running statistics after one ordinary batch
    one = torch.randn(1, 4)
    before = ours.running_mean.clone()
    torch.testing.assert_close(ours(one), pyg(one))
    torch.testing.assert_close(ours.running_mean, before)
    padded, mask = torch.cat([one, torch.zeros(3, 4)]), torch.tensor([True, False, False, False])
    torch.testing.assert_close(ours(padded, mask)[:1], pyg(one))  # the same row padded: the same rule
    torch.testing.assert_close(ours.running_mean, before)
    feats = featurize_smiles(["C"], np.array([[0.5, 0.0]], np.float32), FeaturizerConfig(positional_encodings={"random_walk_k": 4}))
    model = _model("gine", lap=0, norm="batch").train()
    batch = rows_to_batch(feats, WIDTHS, 13)
    assert batch.num_nodes == 1
    out = model(batch)["graph"]
    out.sum().backward()
    assert torch.isfinite(out).all()
