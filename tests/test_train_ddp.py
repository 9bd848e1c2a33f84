"""Every layer type trains under DDP with 2 Ray Train workers (no unused parameter anywhere), and
the same config and seed give the same metrics; replicates and their ensemble prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from graphium_ray.config import validate

LAYER_CONFIGS = [  # all seven layers; virtual node, batch norm, PE concat, edge updates (gated_gcn, mpnn) on/off
    {"layer": "gcn"}, {"layer": "gin", "pe_combine": "concat"}, {"layer": "gine", "virtual_node": True, "norm": "batch"},
    {"layer": "gated_gcn", "residual": False}, {"layer": "mpnn"}, {"layer": "dmpnn"}, {"layer": "gps", "virtual_node": True},
]  # fmt: skip


def _wrapper_recorder(seen: list):
    """A callback recording the class of the model the strategy trains (Lightning unwraps DDP when
    ``fit`` ends, so it is read while training)."""
    import lightning.pytorch as pl

    class Recorder(pl.Callback):
        def on_train_start(self, trainer, module):
            seen.append(type(trainer.strategy.model).__name__)

    return Recorder()


def _report_json(outcome: dict, rank: int) -> None:
    """Ray Train worker: report ``outcome`` (rank 0's) as ``outcome.json`` in a checkpoint (Ray Train
    V2 keeps the metrics that come with a checkpoint)."""
    import tempfile
    from pathlib import Path

    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            (Path(tmp) / "outcome.json").write_text(json.dumps(outcome))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({}, checkpoint=checkpoint)


def _run_on_workers(train_fn, prepared, raw: dict, num_workers: int, storage: Path, **config) -> dict:
    """``train_fn`` in a Ray Train group of ``num_workers`` on the prepared data → rank 0's outcome."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from graphium_ray.train.driver import train_split_bytes

    trainer = TorchTrainer(
        train_fn,
        train_loop_config={"run": raw, "data": prepared.manifest, "train_bytes": train_split_bytes(prepared),
                           "featurized_dir": str(prepared.featurized_dir), **config},
        scaling_config=ray.train.ScalingConfig(num_workers=num_workers, resources_per_worker={"CPU": 0.45}),
        run_config=ray.train.RunConfig(name=train_fn.__name__, storage_path=str(storage)),
    )  # fmt: skip
    result = trainer.fit()
    assert result.error is None, result.error
    with result.checkpoint.as_directory() as d:
        return json.loads((Path(d) / "outcome.json").read_text())


def _every_layer_one_epoch(config: dict) -> None:
    """Ray Train worker: for each model config, one epoch of the real LightningModule with Ray's DDP
    strategy on this worker's shard (DDP with find_unused_parameters=False fails on any parameter
    without a gradient)."""

    import lightning.pytorch as pl
    import ray.train
    import ray.train.lightning
    import torch

    from graphium_ray.config import RunConfig
    from graphium_ray.nn.build import build_network
    from graphium_ray.train.devices import lightning_trainer_kwargs
    from graphium_ray.train.loop import _train_batches
    from graphium_ray.train.module import MultiTaskModule

    data = config["data"]
    tasks = data.task_specs
    ctx = ray.train.get_context()
    worker = (ctx.get_world_rank(), ctx.get_world_size())
    trained, batches = {}, None
    for model in config["models"]:
        cfg = RunConfig.model_validate({**config["run"], "model": {"hidden_dim": 16, "num_layers": 2,
                                                                   "head_hidden_dim": 16, **model}})  # fmt: skip
        torch.manual_seed(0)
        net = build_network(cfg.model, data).model
        module = MultiTaskModule(net, tasks, data.label_stats, cfg.train, 4)
        wrapper = []
        trainer = pl.Trainer(**lightning_trainer_kwargs(cfg.train), max_epochs=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             num_sanity_val_steps=0, use_distributed_sampler=False, limit_val_batches=0,
                             callbacks=[_wrapper_recorder(wrapper)])  # fmt: skip
        trainer = ray.train.lightning.prepare_trainer(trainer)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        batches = batches or _train_batches(cfg, data, config, module, worker, torch.device("cpu"))  # read once, reused
        batches.epoch_fn = lambda module=module: module.global_epoch
        trainer.fit(module, train_dataloaders=batches)
        changed = [k for k, v in net.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
        unchanged = [n for n, p in net.named_parameters() if torch.equal(p.detach(), before[n])]
        trained[json.dumps(model)] = {"steps": trainer.global_step, "changed": len(changed), "frozen": unchanged,
                                      "wrapper": wrapper[0]}  # fmt: skip
    _report_json(trained, worker[0])


@pytest.fixture(scope="module")
def prepared_with_pe(ray_cluster, small_mix):
    from graphium_ray.data.prepare import prepare

    d, cfg_path = small_mix
    raw = yaml.safe_load(cfg_path.read_text())
    raw["data"]["featurizer"] = {"positional_encodings": {"laplacian_k": 3, "random_walk_k": 4}}
    return raw, prepare(validate(raw).data)


def test_every_layer_trains_with_two_ddp_workers(ray_cluster, prepared_with_pe, tmp_path):
    raw, prepared = prepared_with_pe
    trained = _run_on_workers(_every_layer_one_epoch, prepared, raw, 2, tmp_path, models=LAYER_CONFIGS)
    assert len(trained) == len(LAYER_CONFIGS)
    steps = {v["steps"] for v in trained.values()}
    assert len(steps) == 1 and steps.pop() >= 4  # every config: the same number of global steps
    for model, outcome in trained.items():
        assert outcome["frozen"] == [], (model, outcome["frozen"])  # every parameter was updated
        assert outcome["wrapper"] == "DistributedDataParallel", (model, outcome["wrapper"])


def _one_worker_with_and_without_ddp(config: dict) -> None:
    """Ray Train worker (a group of one): the same two epochs fitted with graphium-ray's strategy
    (no DDP wrapper on a single worker) and with Ray's plain ``RayDDPStrategy`` (DDP over a group of
    one); reports each run's wrapper and whether every weight came out identical."""

    import lightning.pytorch as pl
    import ray.train
    import ray.train.lightning
    import torch

    from graphium_ray.config import RunConfig
    from graphium_ray.nn.build import build_network
    from graphium_ray.train.devices import lightning_trainer_kwargs
    from graphium_ray.train.lean_trainer import lean_trainer_kwargs
    from graphium_ray.train.loop import _train_batches
    from graphium_ray.train.module import MultiTaskModule

    data = config["data"]
    cfg = RunConfig.model_validate({**config["run"], "model": {"hidden_dim": 16, "num_layers": 2, "head_hidden_dim": 16}})
    ctx = ray.train.get_context()
    weights, wrappers = [], []
    for plain_ddp in (False, True):
        torch.manual_seed(0)
        module = MultiTaskModule(build_network(cfg.model, data).model, data.task_specs, data.label_stats, cfg.train, 4)
        kwargs = lightning_trainer_kwargs(cfg.train)
        if plain_ddp:
            kwargs["strategy"] = ray.train.lightning.RayDDPStrategy(find_unused_parameters=False)
        trainer = pl.Trainer(**kwargs, **lean_trainer_kwargs(), max_epochs=2, use_distributed_sampler=False,
                             limit_val_batches=0, callbacks=[_wrapper_recorder(wrappers)])  # fmt: skip
        trainer = ray.train.lightning.prepare_trainer(trainer)
        batches = _train_batches(cfg, data, config, module, (ctx.get_world_rank(), ctx.get_world_size()),
                                 torch.device("cpu"))  # fmt: skip
        trainer.fit(module, train_dataloaders=batches)
        weights.append(module.net.state_dict())
    same = all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    _report_json({"wrappers": wrappers, "same_weights": same, "steps": trainer.global_step}, ctx.get_world_rank())


def test_one_worker_trains_without_the_ddp_wrapper_to_the_same_weights(ray_cluster, prepared_with_pe, tmp_path):
    """On a single worker DDP averages nothing: graphium-ray's strategy leaves the model unwrapped
    (DDP's per-step hooks and all-reduce cost ~15 % of a small run's speed, BENCHMARKS.md) and gives
    bit-identical weights to Ray's DDP strategy."""
    raw, prepared = prepared_with_pe
    outcome = _run_on_workers(_one_worker_with_and_without_ddp, prepared, raw, 1, tmp_path)
    assert outcome["wrappers"] == ["MultiTaskModule", "DistributedDataParallel"], outcome
    assert outcome["steps"] >= 4 and outcome["same_weights"] is True, outcome


def _train(cfg_path, out, *extra):
    from graphium_ray.cli import main

    assert main(["train", str(cfg_path), "--output", str(out), *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_same_seed_same_metrics_and_replicates_ensemble(ray_cluster, small_mix, trained_run):
    """A 2-replicate run (seeds 0, 1) of the trained_run config: replicate 0 reproduces trained_run
    to 1e-6; the top-level metrics are the replicates' mean ± std; predict averages the ensemble."""
    from graphium_ray.inference.pipeline import run_inference
    from graphium_ray.inference.predictor import BatchPredictor, read_checkpoint_files

    d, cfg_path = small_mix
    run, _ = trained_run
    first = json.loads((run / "metrics.json").read_text())
    rep = _train(cfg_path, d / "replicated", "--set", "train.replicates=2")
    again = json.loads((d / "replicated" / "replicate_0" / "metrics.json").read_text())
    for split in ("val", "test"):
        for task, values in first[split].items():
            for name, value in values.items():
                assert again[split][task][name] == pytest.approx(value, abs=1e-6, rel=1e-6), (split, task, name)
    assert [h["train_loss"] for h in again["history"]] == pytest.approx([h["train_loss"] for h in first["history"]],
                                                                         abs=1e-6)  # fmt: skip
    other = json.loads((d / "replicated" / "replicate_1" / "metrics.json").read_text())
    assert other["test"]["qm9/gap"]["mae"] != again["test"]["qm9/gap"]["mae"]  # seed 1 is another model
    maes = [again["test"]["qm9/gap"]["mae"], other["test"]["qm9/gap"]["mae"]]
    assert rep["test"]["qm9/gap"]["mae"] == pytest.approx(np.mean(maes))
    assert rep["test_std"]["qm9/gap"]["mae"] == pytest.approx(np.std(maes))
    # the run's test_predictions.parquet is the ensemble (mean of the members), scored independently
    from sklearn.metrics import mean_absolute_error, roc_auc_score

    members = [pd.read_parquet(d / "replicated" / f"replicate_{i}" / "test_predictions.parquet") for i in (0, 1)]
    ens = pd.read_parquet(d / "replicated" / "test_predictions.parquet")
    for column in ("pred/qm9/gap", "pred/desc/has_ring"):
        np.testing.assert_allclose(ens[column], (members[0][column] + members[1][column]) / 2, rtol=1e-12)
    gap = ens.dropna(subset=["label/qm9/gap"])
    assert rep["ensemble"]["test"]["qm9/gap"]["mae"] == pytest.approx(
        mean_absolute_error(gap["label/qm9/gap"], gap["pred/qm9/gap"]), rel=1e-9)
    ring = ens.dropna(subset=["label/desc/has_ring"])
    assert rep["ensemble"]["test"]["desc/has_ring"]["auroc"] == pytest.approx(
        roc_auc_score(ring["label/desc/has_ring"], ring["pred/desc/has_ring"]), rel=1e-9)
    smiles = pd.read_parquet(run / "test_predictions.parquet")["smiles"].head(8).tolist()
    pd.DataFrame({"smiles": smiles}).to_csv(d / "few.csv", index=False)
    run_inference(str(d / "replicated"), [str(d / "few.csv")], str(d / "ensemble.parquet"), where="cluster")  # Ray Data
    outputs = {"ensemble": pd.read_parquet(d / "ensemble.parquet")}
    for name, path in (("r0", d / "replicated" / "replicate_0"), ("r1", d / "replicated" / "replicate_1" / "checkpoint")):
        member = BatchPredictor(read_checkpoint_files(path), "smiles")  # each member alone, in-process
        outputs[name] = member(pa.table({"smiles": smiles})).to_pandas()
    mean = (outputs["r0"]["qm9/gap"] + outputs["r1"]["qm9/gap"]) / 2
    np.testing.assert_allclose(outputs["ensemble"]["qm9/gap"], mean, rtol=1e-5)
    spread = (outputs["r0"]["qm9/gap"] - outputs["r1"]["qm9/gap"]).abs() / 2
    np.testing.assert_allclose(outputs["ensemble"]["qm9/gap/std"], spread, rtol=1e-4, atol=1e-7)
