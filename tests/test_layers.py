"""Our layers against PyG's reference layers with copied weights."""

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv, GINConv, GINEConv

from graphium_ray.nn.gcn import GCNLayer
from graphium_ray.nn.gin import GINLayer
from graphium_ray.nn.gine import GINELayer
from graphium_ray.nn.layer_registry import LAYERS, layer_class
from graphium_ray.nn.layers import MessagePassingLayer

torch.manual_seed(0)
N, D, DE = 9, 16, 7
EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 6, 7], [1, 0, 2, 1, 3, 2, 4, 3, 6, 5, 7, 6]])
X = torch.randn(N, D)
E = torch.randn(EDGES.shape[1], DE)


def pyg_mlp(ours):
    lin1, lin2 = ours.net[0], ours.net[-1]
    return nn.Sequential(
        nn.Linear(lin1.in_features, lin1.out_features), nn.ReLU(), nn.Linear(lin2.in_features, lin2.out_features)
    )


def copy_mlp(ours, ref):
    """PyG re-initializes its MLP in the constructor, so weights are copied afterwards."""
    ref[0].load_state_dict(ours.net[0].state_dict())
    ref[2].load_state_dict(ours.net[-1].state_dict())


def test_gcn_matches_pyg():
    ours = GCNLayer(D, D)
    ref = GCNConv(D, D)
    ref.lin.weight.data.copy_(ours.lin.weight.data)
    ref.bias.data.copy_(torch.randn(D))
    ours.bias.data.copy_(ref.bias.data)
    torch.testing.assert_close(ours(X, EDGES, E)[0], ref(X, EDGES), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_gin_matches_pyg(eps):
    ours = GINLayer(D, D, eps=eps)
    ref = GINConv(pyg_mlp(ours.mlp), eps=eps)
    copy_mlp(ours.mlp, ref.nn)
    torch.testing.assert_close(ours(X, EDGES, E)[0], ref(X, EDGES), atol=1e-5, rtol=1e-5)


def test_gine_matches_pyg():
    ours = GINELayer(D, D, edge_dim=DE)
    ref = GINEConv(pyg_mlp(ours.mlp), edge_dim=DE)
    copy_mlp(ours.mlp, ref.nn)
    ref.lin.load_state_dict(ours.edge_lin.state_dict())
    out, edge_out = ours(X, EDGES, E)
    torch.testing.assert_close(out, ref(X, EDGES, E), atol=1e-5, rtol=1e-5)
    assert edge_out is E


def test_gated_gcn_matches_explicit_loops():
    from graphium_ray.nn.gated_gcn import GatedGCNLayer

    layer = GatedGCNLayer(D)
    e = torch.randn(EDGES.shape[1], D)
    out, e_out = layer(X, EDGES, e)
    with torch.no_grad():
        for i in range(N):
            num, den = torch.zeros(D), torch.zeros(D)
            for k in range(EDGES.shape[1]):
                j, t = int(EDGES[0, k]), int(EDGES[1, k])
                if t != i:
                    continue
                e_hat = layer.A(X[i]) + layer.B(X[j]) + layer.C(e[k])
                torch.testing.assert_close(e_out[k], e_hat, atol=1e-5, rtol=1e-5)
                num += torch.sigmoid(e_hat) * layer.V(X[j])
                den += torch.sigmoid(e_hat)
            torch.testing.assert_close(out[i], layer.U(X[i]) + num / (den + 1e-6), atol=1e-5, rtol=1e-5)


def test_mpnn_plus_matches_explicit_loops():
    from graphium_ray.nn.mpnn import MPNNPlusLayer

    layer = MPNNPlusLayer(D)
    e = torch.randn(EDGES.shape[1], D)
    out, e_out = layer(X, EDGES, e)
    with torch.no_grad():
        msgs = [layer.edge_mlp(torch.cat([X[EDGES[0, k]], X[EDGES[1, k]], e[k]])) for k in range(EDGES.shape[1])]
        for i in range(N):
            recv = sum((msgs[k] for k in range(EDGES.shape[1]) if EDGES[1, k] == i), torch.zeros(D))
            sent = sum((msgs[k] for k in range(EDGES.shape[1]) if EDGES[0, k] == i), torch.zeros(D))
            torch.testing.assert_close(out[i], layer.node_mlp(torch.cat([X[i], recv, sent])), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e_out, torch.stack(msgs), atol=1e-5, rtol=1e-5)


def test_dmpnn_matches_explicit_loops_without_backflow():
    """Every edge u→v: the sum of the states of edges into u, except the one coming back from v
    (found by its endpoints, not by the layer's pairing rule)."""
    from graphium_ray.nn.dmpnn import DMPNNLayer

    layer = DMPNNLayer(D)
    e = torch.randn(EDGES.shape[1], D)
    out, e_out = layer(X, EDGES, e)
    pairs = [(int(a), int(b)) for a, b in EDGES.t()]
    with torch.no_grad():
        expected_e = []
        for u, v in pairs:
            message = sum((e[j] for j, (a, b) in enumerate(pairs) if b == u and a != v), torch.zeros(D))
            expected_e.append(layer.edge_lin(torch.cat([X[u], message])))
        torch.testing.assert_close(e_out, torch.stack(expected_e), atol=1e-5, rtol=1e-5)
        for i in range(N):
            into = sum((expected_e[k] for k, (_, b) in enumerate(pairs) if b == i), torch.zeros(D))
            torch.testing.assert_close(out[i], layer.node_lin(torch.cat([X[i], into])), atol=1e-5, rtol=1e-5)


def test_gps_attention_stays_within_each_graph():
    from graphium_ray.nn.gps import GPSLayer

    layer = GPSLayer(D, heads=4).eval()
    batch = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 2])
    out = layer.global_attention(X, batch, 3)
    with torch.no_grad():
        for g in range(3):
            xg = X[batch == g].unsqueeze(0)
            ref, _ = layer.attn(xg, xg, xg, need_weights=False)
            torch.testing.assert_close(out[batch == g], ref[0], atol=1e-5, rtol=1e-5)
    full, _ = layer(X, EDGES, torch.randn(EDGES.shape[1], D), batch=batch, num_graphs=3)
    assert full.shape == (N, D) and torch.isfinite(full).all()


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("virtual_node", [False, True])
def test_every_layer_runs_in_the_network_with_all_levels(kind, virtual_node):
    from graphium_ray.batch import GraphBatch
    from graphium_ray.config import ModelConfig
    from graphium_ray.nn.network import MultiTaskGNN
    from graphium_ray.tasks import TaskSpec

    tasks = [TaskSpec("a", "g", "graph", "regression", "mse", ("mae",), True),
             TaskSpec("a", "n", "node", "regression", "mse", ("mae",), True),
             TaskSpec("b", "c", "graph", "multiclass", "ce", ("accuracy",), False, num_classes=3),
             TaskSpec("b", "e", "edge", "binary", "bce", ("auroc",), False)]  # fmt: skip
    cfg = ModelConfig(layer=kind, hidden_dim=16, num_layers=2, virtual_node=virtual_node, norm="batch")
    batch_vec = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 2])
    gb = GraphBatch(x=X, edge_index=EDGES, edge_attr=E, batch=batch_vec, num_graphs=3,
                    pe={"lap_vec": torch.randn(N, 2), "lap_val": torch.rand(N, 2), "rw": torch.rand(N, 3)})  # fmt: skip
    model = MultiTaskGNN(cfg, D, DE, tasks, laplacian_k=2, random_walk_k=3)
    out = model(gb)
    assert out["graph"].shape == (3, 1 + 3) and out["node"].shape == (N, 1) and out["edge"].shape == (EDGES.shape[1], 1)
    out["graph"].sum().backward()
    layer = model.blocks[0].conv
    assert isinstance(layer, MessagePassingLayer) and type(layer) is layer_class(kind)
    assert "math::" in type(layer).__doc__  # the math is on the class


def test_checkpoints_with_the_old_adapter_names_still_load():
    from graphium_ray.config import ModelConfig
    from graphium_ray.nn.network import MultiTaskGNN
    from graphium_ray.tasks import TaskSpec

    tasks = [TaskSpec("a", "g", "graph", "regression", "mse", ("mae",), True)]
    model = MultiTaskGNN(ModelConfig(layer="gin", hidden_dim=16, num_layers=2), D, DE, tasks)
    old = {k.replace(".conv.", ".conv.layer.", 1): v + 1 for k, v in model.state_dict().items()}
    assert any(".conv.layer." in k for k in old)
    model.load_state_dict(old)  # strict
    w = model.blocks[1].conv.mlp.net[0].weight
    torch.testing.assert_close(w, old["blocks.1.conv.layer.mlp.net.0.weight"])
