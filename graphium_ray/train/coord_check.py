"""µP coordinate check: mean |activation| of every block after a few Adam steps, across widths.

Under µP the activation scale of each layer stays (roughly) flat as the hidden width grows; under
standard parametrization the updates grow with width and so do the activations (Yang et al.
2022, Fig. 5). The check runs in-process on real molecules (the built-in reference set with
RDKit-computed labels); no Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from graphium_ray.config import FeaturizerConfig, ModelConfig, RunConfig, TrainConfig
from graphium_ray.data.builtin import reference_table
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch
from graphium_ray.manifest import ModelData
from graphium_ray.nn.build import build_network
from graphium_ray.tasks import TaskSpec
from graphium_ray.train.losses import multitask_loss
from graphium_ray.train.optim import build_optimizer

TASKS = [TaskSpec("ref", "logp", "graph", "regression", "mse", ("mae",), True),
         TaskSpec("ref", "tpsa", "graph", "regression", "mse", ("mae",), True)]  # fmt: skip


def reference_batch():
    """The built-in reference molecules with standardized RDKit logP and TPSA labels."""
    ref = reference_table().to_pydict()
    y = np.array([ref["logp"], ref["tpsa"]], dtype=np.float32).T
    feats = featurize_smiles(ref["smiles"], (y - y.mean(0)) / y.std(0), FeaturizerConfig())
    return rows_to_batch(feats, {"graph": 2, "node": 0, "edge": 0}, bond_dim=13)


def _data_info(atom_dim: int) -> ModelData:
    return ModelData(tasks=[t.to_dict() for t in TASKS], label_widths={"graph": len(TASKS), "node": 0, "edge": 0},
                     atom_dim=atom_dim, bond_dim=13, featurizer=FeaturizerConfig().model_dump(mode="json"))  # fmt: skip


def activation_scales(parametrization: str, width: int, base_width: int, lr: float, steps: int, layer: str,
                      seed: int = 0) -> dict[str, float]:  # fmt: skip
    """Mean |activation| per block output and of the graph head output after ``steps`` Adam steps."""
    torch.manual_seed(seed)
    batch = reference_batch()
    model_cfg = ModelConfig(layer=layer, hidden_dim=width, base_hidden_dim=base_width, num_layers=3, norm="none",
                            parametrization=parametrization, head_hidden_dim=32, pooling=["mean"])  # fmt: skip
    cfg = RunConfig(data={"datasets": [{"name": "ref", "path": "-", "tasks": [{"columns": ["logp"]}]}]},
                    model=model_cfg, train=TrainConfig(lr=lr, grad_clip=None))  # fmt: skip
    built = build_network(cfg.model, _data_info(batch.x.shape[1]))
    model = built.model
    optimizer = build_optimizer(model, cfg.train, built.lr_mult)
    records: dict[str, float] = {}
    hooks = [block.register_forward_hook(_recorder(records, f"block_{i}")) for i, block in enumerate(model.blocks)]
    hooks.append(model.encoder.register_forward_hook(_recorder(records, "encoder")))
    for _ in range(steps):
        out = model(batch)
        loss, _ = multitask_loss({"graph": TASKS}, out, batch.y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        records["output"] = float(model(batch)["graph"].abs().mean())
    for h in hooks:
        h.remove()
    return records


def _recorder(records: dict[str, float], name: str):
    def hook(module, inputs, output):
        tensor = output[0] if isinstance(output, tuple) else output
        records[name] = float(tensor.detach().abs().mean())

    return hook


def coord_check(widths: list[int], lr: float = 0.03, steps: int = 6, layer: str = "gine", base_width: int | None = None,
                seeds: int = 2) -> dict:  # fmt: skip
    """{parametrization: {width: {layer: mean |activation|}}}, averaged over ``seeds``."""
    base = base_width or widths[0]
    result: dict[str, dict[int, dict[str, float]]] = {}
    for param in ("sp", "mup"):
        for width in widths:
            runs = [activation_scales(param, width, base, lr, steps, layer, seed) for seed in range(seeds)]
            result.setdefault(param, {})[width] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    return result


def plot(result: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, param in zip(axes, ("sp", "mup"), strict=True):
        widths = sorted(result[param])
        for layer in result[param][widths[0]]:
            ax.plot(widths, [result[param][w][layer] for w in widths], marker="o", label=layer)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden width")
        ax.set_title({"sp": "standard parametrization", "mup": "µP"}[param])
    axes[0].set_ylabel("mean |activation| after training steps")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(result: dict, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coord_check.json").write_text(json.dumps(result, indent=1))
    plot(result, out / "coord_check.png")
    return out / "coord_check.png"
