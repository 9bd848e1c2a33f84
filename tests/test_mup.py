"""µP: parameter classification, checkpoint round trip, and the coordinate check."""

import numpy as np
import pytest
import torch

from graphium_ray.config import ModelConfig
from graphium_ray.nn.mup import classify
from graphium_ray.nn.primitives import MuLinear
from graphium_ray.train.coord_check import coord_check, write


def test_classification_by_base_shape():
    assert classify(torch.Size([256, 256]), [64, 64]) == "matrix"
    assert classify(torch.Size([32, 512]), [32, 128]) == "readout"
    assert classify(torch.Size([256, 44]), [64, 44]) == "vector"  # input embedding
    assert classify(torch.Size([256]), [64]) == "vector"  # bias / norm


def test_mup_model_rescales_readouts_and_learning_rates():
    from graphium_ray.config import RunConfig
    from graphium_ray.nn.build import build_network
    from graphium_ray.train.coord_check import TASKS, _data_info
    from graphium_ray.train.optim import build_optimizer

    cfg = RunConfig(data={"datasets": [{"name": "r", "path": "-", "tasks": [{"columns": ["y"]}]}]},
                    model=ModelConfig(hidden_dim=256, base_hidden_dim=64, parametrization="mup", norm="none"),
                    train={"lr": 0.01})  # fmt: skip
    built = build_network(cfg.model, _data_info(79))
    model = built.model
    readouts = [m for m in model.modules() if isinstance(m, MuLinear) and m.output_mult != 1.0]
    assert readouts and all(m.output_mult == pytest.approx(0.25) for m in readouts)
    assert {g["lr"] for g in build_optimizer(model, cfg.train, built.lr_mult).param_groups} == {0.01, 0.0025}
    hidden = model.blocks[0].conv.mlp.net[-1].weight  # 256 x 256: N(0, 1/fan_in)
    assert hidden.std().item() == pytest.approx(1 / np.sqrt(256), rel=0.1)
    assert TASKS


def test_coordinate_check_flat_under_mup_and_growing_under_sp(tmp_path):
    result = coord_check([32, 128, 512], seeds=2)
    png = write(result, tmp_path)
    assert png.stat().st_size > 10_000
    for layer in result["mup"][32]:
        scales = [result["mup"][w][layer] for w in (32, 128, 512)]
        assert max(scales) / min(scales) < 4.0, (layer, scales)  # stated tolerance: within 4x across 16x width
    sp_last = [result["sp"][w]["block_2"] for w in (32, 128, 512)]
    assert sp_last[-1] / sp_last[0] > 20.0, sp_last  # standard parametrization blows up with width


def test_optimizer_is_fused_on_cpu_and_does_reference_adamw_math_per_group():
    """build_optimizer's fused AdamW (µP groups: two learning rates, weight decay) takes the same
    steps as torch's reference per-tensor AdamW over the same groups, up to float32 rounding; an
    IPU run keeps the reference implementation (its strategy converts the optimizer)."""
    from graphium_ray.config import RunConfig
    from graphium_ray.nn.build import build_network
    from graphium_ray.nn.mup import param_groups
    from graphium_ray.train.coord_check import _data_info
    from graphium_ray.train.optim import build_optimizer

    cfg = RunConfig(data={"datasets": [{"name": "r", "path": "-", "tasks": [{"columns": ["y"]}]}]},
                    model=ModelConfig(hidden_dim=64, base_hidden_dim=16, parametrization="mup", norm="none"),
                    train={"lr": 0.01, "weight_decay": 0.1})  # fmt: skip
    built = build_network(cfg.model, _data_info(79))
    models = [built.model, build_network(cfg.model, _data_info(79)).model]
    models[1].load_state_dict(models[0].state_dict())
    initial = {k: v.clone() for k, v in models[0].state_dict().items()}
    fused = build_optimizer(models[0], cfg.train, built.lr_mult)
    assert fused.defaults["fused"] is True
    reference = torch.optim.AdamW(param_groups(models[1], 0.01, built.lr_mult), lr=0.01, weight_decay=0.1,
                                  foreach=False)  # fmt: skip
    assert len({g["lr"] for g in reference.param_groups}) == 2
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=generator) for p in models[0].parameters()]
        for model, optimizer in zip(models, (fused, reference), strict=True):
            for p, g in zip(model.parameters(), grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert all(not torch.equal(p.detach(), initial[k]) for k, p in models[0].named_parameters())  # every tensor stepped
    ipu = cfg.train.model_copy(update={"accelerator": "ipu"})
    assert not build_optimizer(models[0], ipu, built.lr_mult).defaults["fused"]
