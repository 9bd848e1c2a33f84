"""Fine-tuning a pretrained checkpoint on a new dataset, and the linear probe on its embeddings.

``finetune_run_config`` merges the downstream config with the checkpoint: the backbone (everything
but the heads) and the featurizer must be those the weights were trained with, so they are taken
from the checkpoint; head width/depth and dropout may be set by the downstream config. Setting a
backbone field to a different value is an error, not a silent override.

Full fine-tuning trains through the normal Ray Train path (``run_training``) with the pretrained
weights loaded in every worker before the first epoch (a restarted worker resumes from its own
checkpoint instead) and the backbone frozen for the first ``freeze_backbone_epochs``.

The linear probe embeds every molecule once (graph embedding after pooling), standardizes with
train statistics and fits one scikit-learn model per graph-level task on the train split: ridge
regression (regression) or logistic regression (binary), with the regularization strength chosen
on the validation split only; test is scored once with the chosen model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ray
import torch

from graphium_ray.checkpoints import load_checkpoint
from graphium_ray.config import ConfigError, FeaturizerConfig, FinetuneConfig, RunConfig
from graphium_ray.data.cache import PreparedData, write_json_atomic
from graphium_ray.data.collate import collate_arrays
from graphium_ray.data.reader import read_split
from graphium_ray.train.metrics import task_metrics

HEAD_FIELDS = {"dropout", "head_hidden_dim", "head_layers", "head_norm"}
DOWNSTREAM_INPUTS = {"backend", "molecule"}  # featurizer fields a fine-tuning config may set
DOWNSTREAM_MODULES = ("heads.", "molecule.")  # state-dict prefixes the downstream model owns
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def finetune_run_config(cfg: RunConfig, checkpoint: str | Path) -> tuple[RunConfig, dict]:
    """(the downstream config with the checkpoint's backbone and featurizer, the checkpoint's state dict)."""
    if cfg.finetune is None:
        cfg = cfg.model_copy(update={"finetune": FinetuneConfig(checkpoint=str(checkpoint))})
    pre_cfg, pre_data, model, _ = load_checkpoint(checkpoint)
    clashes = [
        f"model.{f}={getattr(cfg.model, f)!r} (pretrained: {getattr(pre_cfg.model, f)!r})"
        for f in sorted(cfg.model.model_fields_set - HEAD_FIELDS)
        if getattr(cfg.model, f) != getattr(pre_cfg.model, f)
    ]
    # the backend (same arrays) and the molecule-level inputs (read next to the pooled embedding, by
    # the new heads) are the downstream config's; every atom/bond input is the checkpoint's
    own = cfg.data.featurizer
    featurizer = FeaturizerConfig.model_validate({**pre_data.featurizer, **own.model_dump(include=DOWNSTREAM_INPUTS)})
    if own.model_fields_set - DOWNSTREAM_INPUTS and own != featurizer:
        clashes.append("data.featurizer differs from the one the checkpoint was trained with")
    if clashes:
        raise ConfigError("finetune: the backbone comes from the checkpoint; remove or align " + "; ".join(clashes))
    model_cfg = pre_cfg.model.model_copy(update={f: getattr(cfg.model, f) for f in cfg.model.model_fields_set & HEAD_FIELDS})
    data_cfg = cfg.data.model_copy(update={"featurizer": featurizer})
    merged = cfg.model_copy(update={"model": model_cfg, "data": data_cfg,
                                    "finetune": cfg.finetune.model_copy(update={"checkpoint": str(checkpoint)})})  # fmt: skip
    return merged, model.state_dict()


def finetune_loop_config(cfg: RunConfig, state_dict: dict) -> dict:
    """What the Ray Train workers need: the pretrained weights travel through the object store."""
    return {"finetune": {"state_dict": ray.put(state_dict), "heads": cfg.finetune.heads,
                         "freeze_backbone_epochs": cfg.finetune.freeze_backbone_epochs,
                         "backbone_lr_ratio": cfg.finetune.backbone_lr_ratio}}  # fmt: skip


def load_pretrained(net: torch.nn.Module, pretrained: dict, keep_heads: bool) -> None:
    """Backbone weights (and, with ``keep_heads``, every head of the same name and shape) from a
    pretrained state dict into ``net``; a backbone weight the checkpoint lacks is an error. The
    molecule-level input standardization (``molecule.*``) is the downstream data's."""
    own = net.state_dict()
    load = {
        k: v for k, v in pretrained.items()
        if k in own and own[k].shape == v.shape and not k.startswith("molecule.")
        and (not k.startswith("heads.") or keep_heads)
    }  # fmt: skip
    missing_backbone = [k for k in own if not k.startswith(DOWNSTREAM_MODULES) and k not in load]
    if missing_backbone:
        raise ValueError(f"the pretrained checkpoint lacks backbone weights {missing_backbone[:5]}")
    net.load_state_dict(load, strict=False)


@torch.no_grad()
def embed_split(model, prepared: PreparedData, split: str, bond_dim: int, batch_size: int = 256):
    """(graph embeddings (M, P·D), graph labels (M, T)) of the usable molecules of ``split``."""
    model.eval()
    widths = prepared.manifest.label_widths
    embeddings, labels = [], []
    for table in read_split(prepared.featurized_dir, split).iter_batches(batch_size=batch_size, batch_format="pyarrow"):
        batch = collate_arrays(table, widths, bond_dim)
        embeddings.append(model.embed(batch)["graph"].numpy())
        labels.append(batch.y["graph"].numpy())
    if not embeddings:
        raise ConfigError(f"linear probe: the {split} split is empty")
    return np.concatenate(embeddings).astype(np.float64), np.concatenate(labels).astype(np.float64)


def _fit(kind: str, alpha: float, x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression, Ridge

    if kind == "regression":
        return Ridge(alpha=alpha).fit(x, y)
    return LogisticRegression(C=1.0 / alpha, max_iter=2000).fit(x, y)


def _predict(kind: str, fitted, x: np.ndarray) -> np.ndarray:
    """(M, 1): the prediction in label units (regression) or the logit (binary), as metrics expect."""
    out = fitted.predict(x) if kind == "regression" else fitted.decision_function(x)
    return np.asarray(out, np.float64).reshape(-1, 1)


def linear_probe(cfg: RunConfig, prepared: PreparedData, output_dir: str | Path) -> dict:
    """Fit per-task linear models on frozen embeddings; writes and returns metrics.json."""
    _, pre_data, model, _ = load_checkpoint(cfg.finetune.checkpoint)
    tasks = prepared.tasks
    unsupported = [t.name for t in tasks if t.level != "graph" or t.kind not in ("regression", "binary")]
    if unsupported:
        raise ConfigError(f"finetune.mode=linear_probe handles graph-level regression/binary tasks; not {unsupported}")
    xs, ys = {}, {}
    for split in ("train", "val", "test"):
        xs[split], ys[split] = embed_split(model, prepared, split, pre_data.bond_dim)
    mean, std = xs["train"].mean(0), xs["train"].std(0) + 1e-8
    xs = {k: (v - mean) / std for k, v in xs.items()}
    result: dict = {"val": {}, "test": {}, "alpha": {}}
    for j, task in enumerate(tasks):
        present = {k: ~np.isnan(ys[k][:, j]) for k in xs}
        x_tr, y_tr = xs["train"][present["train"]], ys["train"][present["train"], j]
        x_va, y_va = xs["val"][present["val"]], ys["val"][present["val"], j]
        primary = task.metrics[0]
        scored = []
        for alpha in ALPHAS:
            value = task_metrics(task.kind, [primary], y_va, _predict(task.kind, _fit(task.kind, alpha, x_tr, y_tr), x_va))
            scored.append((value[primary], alpha))
        best = _best(scored, primary)
        fitted = _fit(task.kind, best, x_tr, y_tr)
        for split in ("val", "test"):
            y_s = ys[split][present[split], j]
            result[split][task.name] = task_metrics(task.kind, list(task.metrics), y_s,
                                                    _predict(task.kind, fitted, xs[split][present[split]]))  # fmt: skip
        result["alpha"][task.name] = best
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "metrics.json", {**result, "summary": {"mode": "linear_probe",
                                                                    "checkpoint": str(cfg.finetune.checkpoint)}})  # fmt: skip
    return result


LOWER_IS_BETTER = {"mae", "rmse", "mse"}


def _best(scored: list[tuple[float | None, float]], metric: str) -> float:
    defined = [(v, a) for v, a in scored if v is not None]
    if not defined:
        return 1.0
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    return min(defined, key=lambda va: sign * va[0])[1]
