"""The model and masked loss can fit a tiny multi-task set (no Ray: the plain nn.Module)."""

import numpy as np
import torch

from graphium_ray.config import FeaturizerConfig, ModelConfig
from graphium_ray.data.builtin import reference_table
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch
from graphium_ray.nn.network import MultiTaskGNN
from graphium_ray.tasks import TaskSpec
from graphium_ray.train.losses import multitask_loss


def test_tiny_multitask_set_reaches_low_loss():
    torch.manual_seed(0)
    ref = reference_table().to_pydict()
    y = np.array([ref["logp"], ref["tpsa"], ref["has_ring"]], dtype=np.float32).T
    y[::3, 0] = np.nan  # sparse labels
    y[1::4, 2] = np.nan
    mean, std = np.nanmean(y[:, :2], 0), np.nanstd(y[:, :2], 0)
    y[:, :2] = (y[:, :2] - mean) / std
    fcfg = FeaturizerConfig(positional_encodings={"laplacian_k": 4, "random_walk_k": 4})
    feats = featurize_smiles(ref["smiles"], y, fcfg)
    assert feats.column("skip_reason").null_count == len(y)
    batch = rows_to_batch(feats, {"graph": 3, "node": 0, "edge": 0}, bond_dim=13)
    tasks = [TaskSpec("d", "logp", "graph", "regression", "mse", ("mae",), True),
             TaskSpec("d", "tpsa", "graph", "regression", "mse", ("mae",), True),
             TaskSpec("d", "has_ring", "graph", "binary", "bce", ("auroc",), False)]  # fmt: skip
    model = MultiTaskGNN(ModelConfig(hidden_dim=64, num_layers=3, norm="none"), batch.x.shape[1], 13, tasks, 4, 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss, _ = multitask_loss({"graph": tasks}, model(batch), batch.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.05, float(loss)
