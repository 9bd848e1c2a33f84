"""Sweep files: a base run config + a search space over dotted keys + search/scheduler settings.

```yaml
name: quickstart_lr
base: sweeps/quickstart.yaml          # a run config file (relative to the working directory)
overrides: ["train.epochs=3"]         # applied to the base before sampling; carried by --from-sweep
proxy_overrides: ["model.hidden_dim=32"]  # what makes trials cheap (width, epochs, a data subset):
                                      # applied to trials too, NOT carried by train --from-sweep
search_space:
  train.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
  model.hidden_dim: {type: choice, values: [32, 64]}
search: {algorithm: optuna, seed: 0}  # optuna (TPE) | random | grid
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}   # asha | fifo
num_samples: 8
max_concurrent_trials: 1
metric: val/qm9/gap/mae               # validation only: test metrics are refused
mode: min
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from graphium_ray.config import (
    ConfigError,
    RunConfig,
    StrictModel,
    apply_overrides,
    format_validation_error,
    load_raw,
    validate,
)


class Dimension(StrictModel):
    type: Literal["loguniform", "uniform", "choice", "randint", "grid"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Dimension:
        if self.type in ("choice", "grid"):
            if not self.values:
                raise ValueError(f"'{self.type}' needs a non-empty 'values' list")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"'{self.type}' needs low < high")
        elif self.type == "loguniform" and self.low <= 0:
            raise ValueError("'loguniform' needs low > 0")
        return self


class SearchConfig(StrictModel):
    algorithm: Literal["optuna", "random", "grid"] = "optuna"
    seed: int = 0


class SchedulerConfig(StrictModel):
    type: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: int = Field(default=2, ge=2)


class SweepConfig(StrictModel):
    name: str = "sweep"
    base: str
    overrides: list[str] = []
    # settings that only make the trials cheap (a narrow µP width, fewer epochs, a data subset): the
    # trials run with them, but `train --from-sweep` leaves them out, so the full run keeps its own
    proxy_overrides: list[str] = []
    search_space: dict[str, Dimension] = Field(min_length=1)
    search: SearchConfig = SearchConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    num_samples: int = Field(default=8, ge=1)
    max_concurrent_trials: int = Field(default=1, ge=1)
    metric: str
    mode: Literal["min", "max"] = "min"

    @model_validator(mode="after")
    def _validation_only(self) -> SweepConfig:
        if not (self.metric.startswith("val/") or self.metric == "train_loss"):
            raise ValueError(
                f"metric '{self.metric}': sweeps tune on the validation split only; use a 'val/...' metric"
                " (test metrics are for the final report, never for choosing hyperparameters)"
            )
        data_keys = [k for k in self.search_space if k.startswith("data.")]
        if data_keys:
            raise ValueError(
                f"search_space: data.* keys cannot be tuned (all trials share one prepared dataset): {data_keys}"
            )
        return self


def load_sweep(path: str | Path) -> tuple[SweepConfig, dict[str, Any], RunConfig]:
    """(sweep settings, base raw config with overrides, validated base run config)."""
    raw = load_raw(path)
    try:
        sweep = SweepConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path), SweepConfig, "sweep")) from None
    base_raw = apply_overrides(load_raw(sweep.base), [*sweep.overrides, *sweep.proxy_overrides])
    base = validate(base_raw, sweep.base)
    for key, dim in sweep.search_space.items():  # every sampled value must give a valid run config
        for value in dim.values or [dim.low, dim.high]:
            sample = int(value) if dim.type == "randint" else value
            validate(apply_overrides(base_raw, [f"{key}={sample}"]), f"{path} search_space.{key}={sample}")
    return sweep, base_raw, base
