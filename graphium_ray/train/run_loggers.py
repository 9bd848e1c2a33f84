"""Per-epoch loggers of the rank-0 worker: TensorBoard, MLflow (a local SQLite store, ``logs/mlflow.db``) and W&B
(offline unless ``WANDB_API_KEY`` is set in the environment; keys are never read from configs).
Each is optional and imported only when selected; a missing package is a one-line error."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from graphium_ray.config import ConfigError, RunConfig

PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # importable module names


def selected(cfg: RunConfig) -> list[str]:
    chosen = [name for name in ("tensorboard", "mlflow") if getattr(cfg.logging.loggers, name)]
    return chosen + (["wandb"] if cfg.logging.wandb else [])


def check_installed(cfg: RunConfig) -> None:
    """Before any work: every selected logger's package is importable."""
    for name in selected(cfg):
        if importlib.util.find_spec(PACKAGES[name]) is None:
            field = "logging.wandb" if name == "wandb" else f"logging.loggers.{name}"
            raise ConfigError(f"{field}=true needs the {PACKAGES[name]} package: pip install 'graphium-ray[{name}]'")


class RunLoggers:
    """``log(metrics, epoch)`` to every selected logger; ``close()`` at the end of the run."""

    def __init__(self, cfg: RunConfig, run_dir: str):
        logs = Path(run_dir) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._loggers: list = []
        self._wandb = None
        names = selected(cfg)
        if "tensorboard" in names:
            from lightning.pytorch.loggers import TensorBoardLogger

            self._loggers.append(TensorBoardLogger(save_dir=str(logs), name="tensorboard", version=""))
        if "mlflow" in names:
            from lightning.pytorch.loggers import MLFlowLogger

            # a local SQLite store (MLflow 3 keeps its file store in maintenance mode)
            self._loggers.append(MLFlowLogger(experiment_name=cfg.logging.project, run_name=cfg.name,
                                              tracking_uri=f"sqlite:///{(logs / 'mlflow.db').resolve()}"))  # fmt: skip
        if "wandb" in names:
            import wandb

            mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
            self._wandb = wandb.init(project=cfg.logging.project, name=cfg.name, mode=mode, dir=str(logs),
                                     config=cfg.model_dump(mode="json"))  # fmt: skip

    def log(self, metrics: dict[str, float], epoch: int) -> None:
        for logger in self._loggers:
            logger.log_metrics(metrics, step=epoch)
        if self._wandb is not None:
            self._wandb.log(metrics, step=epoch)

    def close(self) -> None:
        for logger in self._loggers:
            logger.finalize("success")
        if self._wandb is not None:
            self._wandb.finish()
