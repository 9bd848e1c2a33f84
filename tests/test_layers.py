"""Our layers against PyG's reference layers with copied weights."""

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv, GINConv, GINEConv

from graphium_ray.nn.gcn import GCNLayer
from graphium_ray.nn.gin import GINLayer
from graphium_ray.nn.gine import GINELayer

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
