"""The training core without Ray: initial loss, schedules, model selection, the LightningModule in
plain Lightning (fp32 and bf16 on CPU), loggers, run checks, scaffold splits, sweep transfer."""

from __future__ import annotations

import io
import math
import sys

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml
from rdkit import Chem

from graphium_ray.config import ConfigError, FeaturizerConfig, ModelConfig, RunConfig, TrainConfig
from graphium_ray.data.builtin import reference_table
from graphium_ray.data.cache import PreparedData
from graphium_ray.data.in_memory import featurize_smiles, rows_to_batch
from graphium_ray.data.scaffold import scaffold_of, scaffold_split
from graphium_ray.manifest import Manifest, ModelData
from graphium_ray.nn.build import build_network
from graphium_ray.tasks import TaskSpec
from graphium_ray.train.losses import multitask_loss
from graphium_ray.train.module import MultiTaskModule
from graphium_ray.train.schedule import lr_multiplier
from graphium_ray.train.selection import check_selectable, epoch_metrics, improved, metric_value

BINARY = TaskSpec("d", "active", "graph", "binary", "bce", ("auroc",), False)
REGRESSION = TaskSpec("d", "logp", "graph", "regression", "mse", ("mae",), True)
SMALL = ["CCO", "CC(C)=O", "C1CCCC1", "CCNCC", "OCCO", "CC(N)C"]  # 3-5 heavy atoms
# 60+ heavy atoms: long chains, a steroid dimer, a macrocycle-like peptide
LARGE = ["C" * 64, "CCCCCCCCCCCCCCCCCC(=O)OCC(COC(=O)CCCCCCCCCCCCCCCCC)OC(=O)CCCCCCCCCCCCCCCCC",
         "c1ccc(cc1)" * 10 + "C" * 20, "O" + "CCO" * 22]  # fmt: skip


def _data(tasks, label_stats, atom_dim: int) -> ModelData:
    return ModelData(tasks=[t.to_dict() for t in tasks], label_widths={"graph": len(tasks), "node": 0, "edge": 0},
                     atom_dim=atom_dim, bond_dim=13, label_stats=label_stats,
                     featurizer=FeaturizerConfig().model_dump(mode="json"))  # fmt: skip


def _initial_loss(smiles: list[str], prevalence: float, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    y = np.stack([(rng.random(len(smiles)) < prevalence).astype(np.float32), rng.normal(size=len(smiles))], 1)
    feats = featurize_smiles(smiles, y.astype(np.float32), FeaturizerConfig())
    assert feats.column("skip_reason").null_count == len(smiles)
    batch = rows_to_batch(feats, {"graph": 2, "node": 0, "edge": 0}, bond_dim=13)
    stats = {"graph": {"count": [100, 100], "mean": [prevalence, 0.0], "std": [1.0, 1.0]}}
    data = _data([BINARY, REGRESSION], stats, batch.x.shape[1])
    torch.manual_seed(seed)
    cfg = RunConfig(data={"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]},
                    model=ModelConfig(hidden_dim=64, num_layers=4, pooling=["sum", "mean"]))  # fmt: skip
    model = build_network(cfg.model, data).model
    _, per_task = multitask_loss({"graph": [BINARY, REGRESSION]}, model(batch), batch.y)
    return per_task["d/active"], per_task["d/logp"]


@pytest.mark.parametrize("smiles", [SMALL, LARGE], ids=["5_heavy_atoms", "60plus_heavy_atoms"])
def test_a_fresh_model_starts_at_the_chance_loss(smiles):
    assert min(Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in smiles) >= (60 if smiles is LARGE else 3)
    prevalence = 0.2
    entropy = -(prevalence * math.log(prevalence) + (1 - prevalence) * math.log(1 - prevalence))
    for seed in range(3):
        bce, mse = _initial_loss(smiles * 4, prevalence, seed)
        rng = np.random.default_rng(seed)  # the same draws as the labels
        labels, values = rng.random(len(smiles) * 4) < prevalence, rng.normal(size=len(smiles) * 4)
        p = labels.mean()
        expected = -(p * math.log(prevalence) + (1 - p) * math.log(1 - prevalence))  # constant prediction = prevalence
        assert bce == pytest.approx(expected, abs=1e-4), (bce, entropy)
        # regression starts at 0, the normalized train mean: the loss is the mean squared normalized label
        assert mse == pytest.approx(float(np.mean(values.astype(np.float32) ** 2)), abs=1e-4)


def test_schedule_warms_up_then_decays():
    total, warmup = 100, 10
    cosine = [lr_multiplier(s, "cosine", warmup, total, 0.1) for s in range(total)]
    assert cosine[0] == pytest.approx(0.1) and cosine[warmup] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(cosine[:warmup], cosine[1 : warmup + 1], strict=True))  # rising
    assert all(a >= b for a, b in zip(cosine[warmup:], cosine[warmup + 1 :], strict=False))  # then falling
    assert lr_multiplier(total, "cosine", warmup, total, 0.1) == pytest.approx(0.1)
    noam = [lr_multiplier(s, "noam", warmup, total, 0.05) for s in range(warmup, total)]
    assert noam[0] == pytest.approx(1.0) and noam[30] == pytest.approx(math.sqrt(warmup / (warmup + 30)))
    assert lr_multiplier(50, "constant", warmup, total, 0.1) == 1.0
    assert lr_multiplier(0, "constant", 0, total, 0.1) == 1.0  # no warm-up


def test_selection_reads_loss_task_and_mean_metrics():
    record = {"val_loss": 0.4, "val": {"a/x": {"auroc": 0.8, "n": 5}, "a/y": {"auroc": 0.6, "n": 5},
                                        "a/z": {"auroc": None, "n": 5}}}  # fmt: skip
    assert metric_value(record, "val/loss") == 0.4
    assert metric_value(record, "val/a/x/auroc") == 0.8
    assert metric_value(record, "val/mean/auroc") == pytest.approx(0.7)  # undefined tasks left out
    assert improved(0.3, 0.4, "min") and not improved(0.5, 0.4, "min") and improved(0.9, 0.8, "max")
    assert improved(0.1, None, "max") and not improved(None, 0.1, "max")
    check_selectable("val/mean/auroc", [BINARY])
    with pytest.raises(ConfigError, match="val/d/active/auroc"):
        check_selectable("val/d/active/mae", [BINARY])
    with pytest.raises(Exception, match="validation metrics only"):
        TrainConfig(select={"metric": "test/d/active/auroc"})


def test_one_dataset_of_a_mix_is_selectable_by_its_loss_and_mean_metrics():
    """``val/<dataset>/loss`` and ``val/<dataset>/mean/<metric>``: Tox21 next to QM9 selected on Tox21."""
    record = {"val_loss": 0.4, "val_dataset_loss": {"tox21": 0.3, "qm9": 0.5},
              "val": {"tox21/x": {"auroc": 0.8, "n": 5}, "tox21/y": {"auroc": 0.6, "n": 5},
                      "pcba/z": {"auroc": 0.9, "n": 5}, "qm9/mean": {"mae": 0.2, "n": 5}}}  # fmt: skip
    assert metric_value(record, "val/tox21/loss") == 0.3 and metric_value(record, "val/qm9/loss") == 0.5
    assert metric_value(record, "val/tox21/mean/auroc") == pytest.approx(0.7)  # PCBA left out
    assert metric_value(record, "val/mean/auroc") == pytest.approx(0.7667, abs=1e-4)  # every dataset
    assert metric_value(record, "val/qm9/mean/mae") == 0.2  # a task whose column is "mean" keeps its name
    assert metric_value(record, "val/zinc/loss") is None
    flat = epoch_metrics({**record, "epoch": 1, "train_loss": 0.1, "lr": 1e-3, "graphs_per_s": 1.0})
    assert flat["val/tox21/loss"] == 0.3 and flat["val/tox21/mean/auroc"] == pytest.approx(0.7)
    assert flat["val/pcba/mean/auroc"] == 0.9 and flat["val/qm9/mean/mae"] == 0.2
    regression = TaskSpec("qm9", "gap", "graph", "regression", "mse", ("mae",), True)
    for name in ("val/d/loss", "val/d/mean/auroc", "val/qm9/loss", "val/qm9/mean/mae"):
        check_selectable(name, [BINARY, regression])
    with pytest.raises(ConfigError, match="not a validation metric"):
        check_selectable("val/qm9/mean/auroc", [BINARY, regression])
    with pytest.raises(Exception, match="'mean' is reserved"):
        RunConfig(data={"datasets": [{"name": "mean", "path": "-", "tasks": [{"columns": ["x"]}]}]})


def test_validation_loss_per_dataset_is_the_weighted_mean_of_its_tasks_losses():
    """Against NumPy: per task the masked MSE on normalized labels / the BCE; per dataset their
    weighted mean; the total is the weighted mean over every task with labels."""
    from sklearn.metrics import log_loss

    from graphium_ray.outputs import LabelNormalizer
    from graphium_ray.train.module import validation_loss

    tasks = [TaskSpec("a", "r", "graph", "regression", "mse", ("mae",), True, weight=2.0),
             TaskSpec("a", "b", "graph", "binary", "bce", ("auroc",), False, weight=1.0),
             TaskSpec("q", "s", "graph", "regression", "mse", ("mae",), True, weight=0.5)]  # fmt: skip
    rng = np.random.default_rng(0)
    y = np.stack([rng.normal(3, 2, 40), rng.integers(0, 2, 40).astype(float), rng.normal(-1, 0.5, 40)], 1)
    y[:20, 2] = np.nan  # dataset q labels only the last 20 molecules, a the first 30
    y[30:, :2] = np.nan
    pred = rng.normal(0, 1, (40, 3)).astype(np.float32)
    stats = {"graph": {"mean": [3.0, 0.0, -1.0], "std": [2.0, 1.0, 0.5]}}
    total, per_dataset = validation_loss({"graph": tasks}, LabelNormalizer(tasks, stats),
                                         {"graph": {"pred": pred, "y": y.astype(np.float32)}})  # fmt: skip
    p64 = pred.astype(np.float64)
    mse_r = np.mean((p64[:30, 0] - (y[:30, 0] - 3) / 2) ** 2)
    bce_b = log_loss(y[:30, 1], 1 / (1 + np.exp(-p64[:30, 1])), labels=[0, 1])
    mse_s = np.mean((p64[20:, 2] - (y[20:, 2] + 1) / 0.5) ** 2)
    assert per_dataset["a"] == pytest.approx((2 * mse_r + bce_b) / 3, rel=1e-5)
    assert per_dataset["q"] == pytest.approx(mse_s, rel=1e-5)
    assert total == pytest.approx((2 * mse_r + bce_b + 0.5 * mse_s) / 3.5, rel=1e-5)


class Batches:
    """A re-iterable of GraphBatches (what the Ray Train worker hands Lightning, without Ray)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def _module_batches(n_batches: int = 4):
    ref = reference_table().to_pydict()
    y = np.array([ref["logp"], ref["has_ring"]], dtype=np.float32).T
    feats = featurize_smiles(ref["smiles"], y, FeaturizerConfig())
    chunks = [feats.slice(i, len(y) // n_batches) for i in range(0, len(y), len(y) // n_batches)]
    batches = [rows_to_batch(c, {"graph": 2, "node": 0, "edge": 0}, bond_dim=13) for c in chunks if c.num_rows]
    tasks = [TaskSpec("d", "logp", "graph", "regression", "mse", ("mae",), True), BINARY]
    stats = {"graph": {"count": [len(y)] * 2, "mean": [float(y[:, 0].mean()), float(y[:, 1].mean())],
                       "std": [float(y[:, 0].std()), 1.0]}}  # fmt: skip
    return batches, tasks, _data(tasks, stats, batches[0].x.shape[1])


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_lightning_module_trains_and_validates_in_real_units(precision):
    batches, tasks, data = _module_batches()
    torch.manual_seed(0)
    cfg = RunConfig(data={"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]},
                    model=ModelConfig(hidden_dim=32, num_layers=2, head_hidden_dim=32),
                    train=TrainConfig(epochs=30, lr=3e-3, warmup_epochs=1, precision=precision))  # fmt: skip
    module = MultiTaskModule(build_network(cfg.model, data).model, tasks, data.label_stats, cfg.train, len(batches))
    losses = []

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            losses.append(module.train_loss_sum()[0] / module.train_loss_sum()[1])

    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, max_epochs=cfg.train.epochs,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Record()])  # fmt: skip
    loader = Batches(batches)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.5 * losses[0], losses
    lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]
    assert max(lrs) == pytest.approx(cfg.train.lr * 0.1, rel=0.05)  # cosine decayed to final_lr_ratio
    val = module.val_result
    assert val["loss"] is not None and val["metrics"]["d/logp"]["n"] == sum(b.num_graphs for b in batches)
    # real units: the MAE of logP is in logP units, comparable to the label spread, not to 1
    assert 0 < val["metrics"]["d/logp"]["mae"] < np.std([float(b.y["graph"][i, 0]) for b in batches
                                                         for i in range(b.num_graphs)])  # fmt: skip


def test_lean_trainer_trains_exactly_like_lightnings_defaults_and_keeps_hook_names():
    """lean_trainer_kwargs (no per-hook profiling contexts; the module stores Lightning's hook name
    directly): the same weights and validation result as a Trainer with Lightning's default profiler,
    and Lightning still knows which hook runs (``self.log`` in ``training_step`` reaches the trainer)."""
    from graphium_ray.train.lean_trainer import NoProfiler, lean_trainer_kwargs

    batches, tasks, data = _module_batches()
    cfg = RunConfig(data={"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]},
                    model=ModelConfig(hidden_dim=16, num_layers=2, head_hidden_dim=16), train=TrainConfig(epochs=3))
    hook_names = []

    class Logging(MultiTaskModule):
        def training_step(self, batch, batch_idx):
            hook_names.append(self._current_fx_name)
            loss = super().training_step(batch, batch_idx)
            self.log("step_loss", loss, on_step=True, on_epoch=False, batch_size=batch.num_graphs)
            return loss

    def fit(kwargs: dict) -> tuple[dict, dict, pl.Trainer]:
        torch.manual_seed(0)
        module = Logging(build_network(cfg.model, data).model, tasks, data.label_stats, cfg.train, len(batches))
        trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=cfg.train.epochs, **kwargs)
        trainer.fit(module, train_dataloaders=Batches(batches), val_dataloaders=Batches(batches[:1]))
        assert module._current_fx_name is None  # restored after fit, as Lightning leaves it
        return module.net.state_dict(), module.val_result, trainer

    plain_kwargs = {k: v for k, v in lean_trainer_kwargs().items() if k != "profiler"}
    weights, val, trainer = fit(plain_kwargs)
    assert not isinstance(trainer.profiler, NoProfiler)
    lean_weights, lean_val, lean = fit(lean_trainer_kwargs())
    assert isinstance(lean.profiler, NoProfiler)
    assert set(hook_names) == {"training_step"} and len(hook_names) == 2 * cfg.train.epochs * len(batches)
    assert "step_loss" in lean.callback_metrics and torch.isfinite(lean.callback_metrics["step_loss"])
    for name, value in weights.items():
        assert torch.equal(value, lean_weights[name]), name
    assert val["loss"] == lean_val["loss"] and val["metrics"] == lean_val["metrics"]


def test_finetune_backbone_lr_is_zero_while_frozen_then_a_fraction_of_the_heads():
    """finetune.freeze_backbone_epochs / backbone_lr_ratio: every backbone group's lr is 0 in the
    frozen epochs, then ratio × the heads' scheduled lr; the heads follow the schedule throughout."""
    batches, tasks, data = _module_batches()
    cfg = RunConfig(data={"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]},
                    model=ModelConfig(hidden_dim=32, num_layers=2, head_hidden_dim=32),
                    train=TrainConfig(epochs=4, lr=1e-3, warmup_epochs=0, lr_schedule="constant"))  # fmt: skip
    module = MultiTaskModule(build_network(cfg.model, data).model, tasks, data.label_stats, cfg.train, len(batches),
                             frozen_epochs=2, backbone_lr_ratio=0.25)  # fmt: skip
    seen: list[tuple[float, float]] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            groups = trainer.optimizers[0].param_groups
            seen.append((max(g["lr"] for g in groups if g["backbone"]), max(g["lr"] for g in groups if not g["backbone"])))

    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=4, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, callbacks=[Record()])  # fmt: skip
    trainer.fit(module, train_dataloaders=Batches(batches))
    per_epoch = len(batches)
    assert all(b == 0.0 and h == pytest.approx(1e-3) for b, h in seen[: 2 * per_epoch]), seen
    assert all(b == pytest.approx(0.25e-3) and h == pytest.approx(1e-3) for b, h in seen[2 * per_epoch + 1 :]), seen


def test_ema_averages_every_step_and_validation_sees_the_average():
    """train.ema_decay: w̄ ← d·w̄ + (1−d)·w after each optimizer step (checked against the trained
    weights recorded step by step); validation runs on w̄ and training continues from w."""
    batches, tasks, data = _module_batches()
    torch.manual_seed(0)
    decay = 0.8
    cfg = RunConfig(data={"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]},
                    model=ModelConfig(hidden_dim=16, num_layers=1, head_hidden_dim=16),
                    train=TrainConfig(epochs=2, lr=3e-3, ema_decay=decay))  # fmt: skip
    module = MultiTaskModule(build_network(cfg.model, data).model, tasks, data.label_stats, cfg.train, len(batches))
    snapshots, seen_by_validation, after_validation = [], [], []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            snapshots.append({k: v.detach().clone() for k, v in module.net.state_dict().items()})

        def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
            seen_by_validation.append({k: v.detach().clone() for k, v in module.net.state_dict().items()})

        def on_train_epoch_end(self, trainer, module):
            after_validation.append({k: v.detach().clone() for k, v in module.net.state_dict().items()})

    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=cfg.train.epochs, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, callbacks=[Record()])  # fmt: skip
    loader = Batches(batches)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=Batches(batches[:1]))
    expected = dict(snapshots[0])  # the callback runs after the module's hook: the first step starts the average
    for snap in snapshots[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * v if v.is_floating_point() else v for k, v in snap.items()}
    name = next(k for k in expected if k.startswith("heads.") and k.endswith("weight"))
    for k in expected:
        torch.testing.assert_close(module.ema[k], expected[k], atol=1e-6, rtol=1e-5)
    last_val = seen_by_validation[-1]
    torch.testing.assert_close(last_val[name], module.ema[name])  # validation saw the average
    assert not torch.equal(after_validation[-1][name], module.ema[name])  # training weights came back
    torch.testing.assert_close(after_validation[-1][name], snapshots[-1][name])
    assert torch.equal(module.selected_weights()[name], module.ema[name].cpu())


def test_progress_bar_counts_every_step_and_shows_the_running_loss(monkeypatch):
    """One Ray tqdm bar per epoch (driver mode here: Ray renders it with tqdm), advanced once per
    optimizer step, closed before the epoch's line; its description ends at the epoch's mean loss."""
    from graphium_ray.train import progress

    monkeypatch.setattr(progress, "DESCRIBE_EVERY_S", 0.0)
    batches, tasks, data = _module_batches()
    cfg = RunConfig(data={"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]},
                    model=ModelConfig(hidden_dim=16, num_layers=1, head_hidden_dim=16), train=TrainConfig(epochs=2))
    module = MultiTaskModule(build_network(cfg.model, data).model, tasks, data.label_stats, cfg.train, len(batches))
    bars, step_losses = [], []

    def recording_bar(total, desc):  # Ray's real bar, its calls recorded
        bar = progress.ray_bar(total, desc)
        bars.append({"total": total, "updates": 0, "descs": [desc], "bar": bar})
        update, describe = bar.update, bar.set_description
        bar.update = lambda n=1: (bars[-1].__setitem__("updates", bars[-1]["updates"] + n), update(n))
        bar.set_description = lambda d: (bars[-1]["descs"].append(d), describe(d))
        return bar

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            step_losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[progress.StepProgress(len(batches), 2, recording_bar), Record()])  # fmt: skip
    trainer.fit(module, train_dataloaders=Batches(batches), val_dataloaders=Batches(batches[:1]))
    assert [(b["total"], b["updates"]) for b in bars] == [(len(batches), len(batches))] * 2
    assert all(b["bar"]._closed for b in bars)
    assert bars[0]["descs"][0] == "epoch 1/2" and bars[1]["descs"][0] == "epoch 2/2"
    last_epoch_mean = np.mean(step_losses[len(batches):])
    assert bars[1]["descs"][-1] == f"epoch 2/2 loss {last_epoch_mean:.4f}"


def test_progress_bar_only_in_a_terminal_unless_asked(monkeypatch):
    from graphium_ray.train.progress_setting import ENV, progress_wanted

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a log file, CI, ray job submit
    assert progress_wanted() is False
    monkeypatch.setenv(ENV, "1")
    assert progress_wanted() is True
    monkeypatch.setenv(ENV, "0")
    assert progress_wanted() is False


def test_run_checks_refuse_bad_selection_and_warn_on_few_steps(tmp_path, caplog):
    from graphium_ray.train.driver import check_run

    splits = {"train": 200, "val": 20, "test": 20}
    manifest = Manifest(**vars(_data([BINARY], {}, 10)), splits=splits, featurized=240, molecules=240,
                        rows_in={"d": 240}, skipped={"total": 0})  # fmt: skip
    prepared = PreparedData(tmp_path, manifest)
    base = {"data": {"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["active"]}]}]}}
    check_run(RunConfig.model_validate({**base, "train": {"batch_size": 16}}), prepared)
    assert "optimizer steps" not in caplog.text
    check_run(RunConfig.model_validate({**base, "train": {"batch_size": 128}}), prepared)
    assert "only 2 optimizer steps" in caplog.text and "global" in caplog.text
    with pytest.raises(ConfigError, match="train.select.metric"):
        check_run(RunConfig.model_validate({**base, "train": {"select": {"metric": "val/d/active/mae"}}}), prepared)
    with pytest.raises(ConfigError, match="bf16-mixed"):
        check_run(RunConfig.model_validate({**base, "train": {"precision": "16-mixed"}}), prepared)


def test_loggers_write_their_files(tmp_path):
    from graphium_ray.train.run_loggers import RunLoggers

    cfg = RunConfig.model_validate({"data": {"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["y"]}]}]},
                                    "logging": {"loggers": {"tensorboard": True, "mlflow": True}}})  # fmt: skip
    loggers = RunLoggers(cfg, str(tmp_path))
    loggers.log({"train_loss": 0.5, "val/loss": 0.4}, 1)
    loggers.close()
    assert list((tmp_path / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    import sqlite3

    rows = sqlite3.connect(tmp_path / "logs" / "mlflow.db").execute("select key, value from metrics").fetchall()
    assert ("train_loss", 0.5) in rows and ("val/loss", 0.4) in rows


def test_scaffold_split_keeps_scaffolds_together_and_is_balanced():
    ref = reference_table().to_pydict()["smiles"]
    smiles = ref * 3 + ["not a smiles"]
    a = scaffold_split(smiles, 0, (0.8, 0.1, 0.1))
    assert a == scaffold_split(smiles, 0, (0.8, 0.1, 0.1))  # deterministic
    assert len(smiles) - 1 not in a and len(a) == len(smiles) - 1  # the unparsable row gets no split
    by_scaffold: dict[str, set] = {}
    for i, split in a.items():
        by_scaffold.setdefault(scaffold_of(smiles[i]), set()).add(split)
    assert all(len(s) == 1 for s in by_scaffold.values())  # a scaffold never straddles two splits
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
    assert counts["train"] <= int(0.8 * len(a)) and counts["test"] > 0
    assert scaffold_of("CCO") == "" and scaffold_of("Cc1ccccc1O") == "c1ccccc1"


def test_from_sweep_refuses_a_contradicting_parametrization_or_width():
    from graphium_ray.cli import check_sweep_transfer

    base = {"data": {"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["y"]}]}]}}
    mup = {"sweep_dir": "s", "fixed": {"parametrization": "mup", "width": 64, "base_hidden_dim": 64, "overrides": []}}
    wide = RunConfig.model_validate({**base, "model": {"parametrization": "mup", "base_hidden_dim": 64,
                                                       "hidden_dim": 256}})  # fmt: skip
    check_sweep_transfer(wide, mup)
    with pytest.raises(ConfigError, match="parametrization=mup"):
        check_sweep_transfer(RunConfig.model_validate({**base, "model": {"hidden_dim": 256}}), mup)
    with pytest.raises(ConfigError, match="base_hidden_dim=64"):
        check_sweep_transfer(wide.model_copy(update={"model": wide.model.model_copy(update={"base_hidden_dim": 32})}),
                             mup)  # fmt: skip
    sp = {"sweep_dir": "s", "fixed": {"parametrization": "sp", "width": 64, "base_hidden_dim": 64, "overrides": []}}
    with pytest.raises(ConfigError, match="do not transfer"):
        check_sweep_transfer(RunConfig.model_validate({**base, "model": {"hidden_dim": 256}}), sp)


def test_from_sweep_carries_overrides_but_not_the_proxy_settings_of_cheap_trials(tmp_path):
    """A narrow sweep on a data subset: the full run keeps its own width, epochs and data."""
    import json

    from graphium_ray.cli import sweep_overrides

    fixed = {"parametrization": "mup", "width": 32, "base_hidden_dim": 32, "overrides": ["model.dropout=0.1"],
             "proxy_overrides": ["model.hidden_dim=32", "train.epochs=3", "data.datasets.0.path=subset.parquet"]}
    (tmp_path / "best_params.json").write_text(json.dumps({"params": {"train.lr": 0.004}, "fixed": fixed}))
    carried, provenance = sweep_overrides(str(tmp_path))
    assert carried == ["model.dropout=0.1", "model.parametrization=mup", "model.base_hidden_dim=32", "train.lr=0.004"]
    assert provenance["fixed"]["proxy_overrides"] == fixed["proxy_overrides"]  # recorded, not applied


def test_a_run_directory_holding_another_configs_run_is_refused(tmp_path):
    """Ray would resume the old run's checkpoint and report it under the new config."""
    from graphium_ray.config import dump_config
    from graphium_ray.train.driver import check_run_dir, ray_run_name

    data = {"datasets": [{"name": "d", "path": "-", "tasks": [{"columns": ["x"]}]}]}
    old = RunConfig(data=data, train=TrainConfig(epochs=8))
    (tmp_path / "config.yaml").write_text(dump_config(old))
    check_run_dir(RunConfig(data=data, train=TrainConfig(epochs=2)), tmp_path)  # no Ray run there yet
    (tmp_path / "ray" / "train").mkdir(parents=True)
    check_run_dir(old, tmp_path)  # the same config resumes
    with pytest.raises(ConfigError, match=r"train.epochs: 8 -> 2.*use a new --output"):
        check_run_dir(RunConfig(data=data, train=TrainConfig(epochs=2)), tmp_path)
    # a run written before a config key existed resumes (the key compares at its default), and
    # where the work runs is not part of what the run computes
    written = yaml.safe_load(dump_config(old))
    del written["data"]["prepare_in_driver"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(written))
    check_run_dir(old, tmp_path)
    check_run_dir(RunConfig(data={**data, "prepare_in_driver": "never"}, train=TrainConfig(epochs=8)), tmp_path)
    shared = RunConfig(data=data, train=TrainConfig(storage_path="s3://bucket/runs"))
    assert ray_run_name(old, tmp_path) == "train"
    assert ray_run_name(shared, tmp_path / "a") != ray_run_name(shared, tmp_path / "b")
