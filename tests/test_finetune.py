"""Fine-tuning from the session's trained checkpoint: Ray Train with a frozen backbone on
static-shape batches, the linear probe checked against scikit-learn on embeddings computed
in-process, and the backbone/featurizer guard."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from graphium_ray.checkpoints import load_checkpoint
from graphium_ray.cli import main
from graphium_ray.config import FeaturizerConfig
from graphium_ray.data.builtin import descriptor_labels, qm9_sample
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch


@pytest.fixture(scope="module")
def downstream(tmp_path_factory):
    """A small downstream set of molecules the pretraining never saw, with a new task (TPSA)."""
    d = tmp_path_factory.mktemp("downstream")
    smiles = qm9_sample(180, ["SMILES"], offset=5000).column("SMILES").to_pylist()
    labels = descriptor_labels(smiles)
    pq.write_table(pa.table({"smiles": labels["smiles"], "tpsa": labels["tpsa"]}), d / "down.parquet")

    def config(name: str, **extra) -> str:
        cfg = {"name": name, "data": {"cache_dir": str(d / "cache"), "num_shards": 2, "datasets": [
            {"name": "down", "path": str(d / "down.parquet"), "tasks": [{"columns": ["tpsa"]}]}]}, **extra}  # fmt: skip
        path = d / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return str(path)

    return d, config


def test_finetune_frozen_backbone_on_static_batches(ray_cluster, trained_run, downstream):
    run, _ = trained_run
    d, config = downstream
    cfg = config("ft", train={"epochs": 1, "batch_size": 16, "num_workers": 2, "static_shapes": {}},
                 finetune={"freeze_backbone_epochs": 1})  # fmt: skip
    assert main(["finetune", str(run / "checkpoint"), cfg, "--output", str(d / "ft")]) == 0
    metrics = json.loads((d / "ft" / "metrics.json").read_text())
    assert set(metrics["test"]) == {"down/tpsa"} and metrics["test"]["down/tpsa"]["n"] > 0
    _, _, pre, _ = load_checkpoint(run / "checkpoint")
    _, data, tuned, _ = load_checkpoint(d / "ft" / "checkpoint")
    pre_state, tuned_state = pre.state_dict(), tuned.state_dict()
    backbone = [k for k in tuned_state if not k.startswith("heads.")]
    assert backbone and all(torch.equal(tuned_state[k], pre_state[k]) for k in backbone)  # frozen: unchanged
    assert list(tuned.heads.heads) == ["graph__down"]  # heads replaced
    assert data.featurizer == json.loads((run / "checkpoint" / "data.json").read_text())["featurizer"]


def test_linear_probe_matches_sklearn_on_embeddings(ray_cluster, trained_run, downstream):
    from sklearn.linear_model import Ridge

    run, _ = trained_run
    d, config = downstream
    cfg = config("probe", finetune={"mode": "linear_probe"})
    assert main(["finetune", str(run / "checkpoint"), cfg, "--output", str(d / "probe")]) == 0
    result = json.loads((d / "probe" / "metrics.json").read_text())
    alpha = result["alpha"]["down/tpsa"]
    # independent recomputation: split assignment from the cache, embeddings from the model in-process
    feats = pq.read_table(next((d / "cache").glob("*/featurized"))).to_pandas()
    feats = feats[feats["skip_reason"].isna()]
    _, data, model, _ = load_checkpoint(run / "checkpoint")
    model.eval()
    xy = {}
    for split in ("train", "test"):
        part = feats[feats["split"] == split]
        rows = featurize_smiles(list(part["mol_key"]), np.stack(part["y_graph"]),
                                FeaturizerConfig.model_validate(data.featurizer))  # fmt: skip
        with torch.no_grad():
            emb = model.embed(rows_to_batch(rows, {"graph": 1, "node": 0, "edge": 0}, 13))["graph"].double().numpy()
        xy[split] = (emb, np.stack(part["y_graph"])[:, 0].astype(np.float64))
    mean, std = xy["train"][0].mean(0), xy["train"][0].std(0) + 1e-8
    fitted = Ridge(alpha=alpha).fit((xy["train"][0] - mean) / std, xy["train"][1])
    mae = np.abs(fitted.predict((xy["test"][0] - mean) / std) - xy["test"][1]).mean()
    assert result["test"]["down/tpsa"]["n"] == len(xy["test"][1])
    assert result["test"]["down/tpsa"]["mae"] == pytest.approx(mae, rel=1e-4)


def test_finetune_refuses_a_different_backbone(trained_run, downstream, capsys):
    run, _ = trained_run
    _, config = downstream
    cfg = config("clash", model={"hidden_dim": 128, "head_layers": 3})
    assert main(["finetune", str(run / "checkpoint"), cfg]) == 2
    err = capsys.readouterr().err
    assert "model.hidden_dim=128" in err and "head_layers" not in err
