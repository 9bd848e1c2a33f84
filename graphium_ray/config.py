"""Typed run configuration: YAML load, dotted ``--set`` overrides, validation.

Every field is validated before any work starts. A bad key, type or value raises
:class:`ConfigError` whose message names the dotted field and the allowed values.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graphium_ray.nn.layer_registry import LAYERS

Level = Literal["graph", "node", "edge"]
TaskKind = Literal["regression", "binary", "multiclass", "ordinal"]
LossName = Literal["mse", "mae", "bce", "ce", "hybrid_ranked"]
MetricName = Literal["mae", "rmse", "pearson", "r2", "auroc", "average_precision", "accuracy"]

DEFAULT_LOSS: dict[str, str] = {
    "regression": "mse",
    "binary": "bce",
    "multiclass": "ce",
    "ordinal": "hybrid_ranked",
}
DEFAULT_METRICS: dict[str, list[str]] = {
    "regression": ["mae", "pearson", "r2"],
    "binary": ["auroc", "average_precision"],
    "multiclass": ["auroc", "accuracy"],
    "ordinal": ["auroc", "accuracy"],
}
ALLOWED_LOSSES: dict[str, set[str]] = {
    "regression": {"mse", "mae"},
    "binary": {"bce"},
    "multiclass": {"ce"},
    "ordinal": {"ce", "hybrid_ranked"},
}


class ConfigError(ValueError):
    """A configuration problem, with a message that names the offending field."""


class StrictModel(BaseModel):
    """Base of every config section (run configs and sweep files): unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TaskGroupConfig(StrictModel):
    """A group of label columns of one dataset that share level, kind, loss and metrics."""

    columns: list[str] = Field(min_length=1, description="names or wildcards like 'assayID-*'")
    level: Level = "graph"
    kind: TaskKind = "regression"
    loss: LossName | None = None
    metrics: list[MetricName] | None = None
    normalize: bool | None = None  # default: True for regression
    num_classes: int = Field(default=2, ge=2)  # multiclass / ordinal only
    hybrid_alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    weight: float = Field(default=1.0, gt=0.0)
    unit: str = ""  # the labels' unit, shown next to metrics (e.g. Ha, bohr^3, log mol/L)

    @model_validator(mode="after")
    def _defaults(self) -> TaskGroupConfig:
        if self.loss is None:
            object.__setattr__(self, "loss", DEFAULT_LOSS[self.kind])
        if self.loss not in ALLOWED_LOSSES[self.kind]:
            raise ValueError(
                f"loss '{self.loss}' does not fit kind '{self.kind}'; allowed: {sorted(ALLOWED_LOSSES[self.kind])}"
            )
        if self.metrics is None:
            object.__setattr__(self, "metrics", list(DEFAULT_METRICS[self.kind]))
        if self.normalize is None:
            object.__setattr__(self, "normalize", self.kind == "regression")
        if self.normalize and self.kind != "regression":
            raise ValueError("normalize: only regression labels can be normalized")
        return self


class DatasetConfig(StrictModel):
    """One source dataset: files, SMILES column and label groups."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    path: str | list[str] = Field(description="file, glob, list of shards; local or fsspec URL")
    format: Literal["auto", "csv", "parquet"] = "auto"
    smiles_column: str = "smiles"
    tasks: list[TaskGroupConfig] = Field(min_length=1)
    split_file: str | None = None  # Graphium format: columns train,val,test of row indices
    atom_mapped: bool = False  # SMILES carry atom-map numbers that define the atom order

    @field_validator("name")
    @classmethod
    def _not_a_metric_prefix(cls, v: str) -> str:
        if v in ("mean", "loss"):  # val/mean/<metric> and val/loss name every dataset's tasks
            raise ValueError(f"'{v}' is reserved (validation metrics val/mean/..., val/loss); choose another name")
        return v

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class SplitConfig(StrictModel):
    """How molecules without a split file are assigned: ``random`` (a seeded hash of the molecule
    key) or ``scaffold`` (Bemis–Murcko scaffold groups, balanced as chemprop does: groups larger
    than half the val/test size go to train first, the rest in seeded random order)."""

    kind: Literal["random", "scaffold"] = "random"
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"train/val/test fractions must be >= 0 and sum to 1, got {list(v)}")
        return v


class PositionalEncodingConfig(StrictModel):
    laplacian_k: int = Field(default=0, ge=0, le=64)
    random_walk_k: int = Field(default=0, ge=0, le=64)


class FeaturizerConfig(StrictModel):
    # names defined with their computation in graphium_ray/chem/features.py (checked below)
    atom_onehot: list[str] = ["atomic-number", "group", "period", "total-valence"]
    atom_float: list[str] = ["degree", "formal-charge", "radical-electron", "aromatic", "in-ring"]
    bond: list[str] = ["bond-type-onehot", "stereo", "in-ring"]
    # implicit: hydrogens removed (RDKit default); as_written: hydrogen atoms written in the SMILES
    # are kept, none added; explicit: every hydrogen becomes a node (needed for per-atom labels with H)
    hydrogens: Literal["implicit", "as_written", "explicit"] = "implicit"
    positional_encodings: PositionalEncodingConfig = PositionalEncodingConfig()
    # molecule-level inputs concatenated to the pooled graph embedding before the heads (chemprop's
    # --molecule-featurizers): rdkit2d = RDKit's 217 2D descriptors (~5 ms per molecule to compute),
    # scaled by the train split; rdkit2d_normalized = the same mapped to [0, 1] by a fixed reference
    # distribution (chemprop v1's rdkit_2d_normalized; graphium_ray/chem/descriptor_reference.py)
    molecule: list[Literal["rdkit2d", "rdkit2d_normalized"]] = []
    # rdkit: the reference featurizer (RDKit's Python API; the definition of every feature). cuik:
    # the same features computed by NVIDIA's cuik-molmaker in C++ (optional extra graphium-ray[cuik],
    # which pins rdkit==2026.3.6); identical arrays, so the cache key ignores it.
    backend: Literal["rdkit", "cuik"] = "rdkit"

    @field_validator("atom_onehot", "atom_float", "bond")
    @classmethod
    def _known_features(cls, names: list[str], info) -> list[str]:
        from graphium_ray.chem import features  # RDKit: imported when a featurizer config is checked

        known = {"atom_onehot": features.ATOM_ONEHOT_SOURCE, "atom_float": features.ATOM_FLOAT_SOURCE,
                 "bond": features.BOND_WIDTH}[info.field_name]  # fmt: skip
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; choose from {', '.join(repr(n) for n in known)}")
        return names

    @model_validator(mode="after")
    def _cuik_can_compute(self) -> FeaturizerConfig:
        if self.backend != "cuik":
            return self
        from graphium_ray.chem.cuik_graph import unsupported_features

        problems = []
        missing = unsupported_features(self.atom_onehot, self.atom_float, self.bond)
        problems += [f"feature(s) {missing}"] if missing else []
        problems += [f"hydrogens: {self.hydrogens}"] if self.hydrogens != "implicit" else []
        problems += [f"molecule: {self.molecule} (descriptors need RDKit molecules)"] if self.molecule else []
        if problems:
            raise ValueError(f"backend: cuik does not support {'; '.join(problems)}; use backend: rdkit")
        return self

    def without_backend(self) -> dict:
        """The settings that define the features (what a cache or checkpoint must match)."""
        return self.model_dump(mode="json", exclude={"backend"})


class DataConfig(StrictModel):
    datasets: list[DatasetConfig] = Field(min_length=1)
    cache_dir: str = ".graphium_ray_cache"
    num_shards: int = Field(default=4, ge=1, le=100_000)
    split: SplitConfig = SplitConfig()
    featurizer: FeaturizerConfig = FeaturizerConfig()
    featurize_concurrency: int | None = Field(default=None, ge=1)
    batch_rows: int = Field(default=512, ge=1)
    # where prepare's stages run: auto = in this process when the work is estimated at a few seconds
    # (a small dataset: then the Ray Data jobs' start-up, new pools of RDKit processes, is most of
    # the time; BENCHMARKS.md section 3c), else on the cluster; never / always force one. The cache
    # is the same either way.
    prepare_in_driver: Literal["auto", "always", "never"] = "auto"
    # rows of the same molecule within one dataset are merged label by label; where present labels
    # disagree: drop_label (set it missing), first (the first row's), mean, or error (stop prepare).
    # Every conflict is written to conflicts.csv in the cache directory.
    on_conflict: Literal["drop_label", "first", "mean", "error"] = "drop_label"

    @model_validator(mode="after")
    def _unique_names(self) -> DataConfig:
        names = [d.name for d in self.datasets]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"dataset names must be unique, repeated: {sorted(dup)}")
        return self


class ModelConfig(StrictModel):
    layer: str = "gine"  # a name in graphium_ray/nn/layer_registry.py
    hidden_dim: int = Field(default=64, ge=1)
    num_layers: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    norm: Literal["batch", "layer", "none"] = "layer"
    residual: bool = True
    virtual_node: bool = False
    pooling: list[Literal["sum", "mean", "max"]] = ["sum", "mean"]
    head_hidden_dim: int = Field(default=64, ge=1)
    head_layers: int = Field(default=2, ge=1)
    # norm inside each task head (standard parametrization; under µP none, see nn/heads.py).
    # Measured on ESOL / FreeSolv validation (seed 0): layer 0.562 / 1.25 MAE vs none 0.602 / 1.72
    head_norm: Literal["none", "layer", "batch"] = "layer"
    attention_heads: int = Field(default=4, ge=1)
    pe_dim: int = Field(default=16, ge=1)
    pe_combine: Literal["add", "concat"] = "add"
    parametrization: Literal["sp", "mup"] = "sp"
    base_hidden_dim: int = Field(default=64, ge=1)

    @field_validator("layer")
    @classmethod
    def _registered_layer(cls, name: str) -> str:
        if name not in LAYERS:
            raise ValueError(f"unknown layer {name!r}; choose one of {', '.join(repr(n) for n in LAYERS)}")
        return name


class StaticShapeConfig(StrictModel):
    """Fixed batch shapes for compilers (``torch.compile(dynamic=False)``, PopTorch on IPUs).

    Every batch has ``batch_size + 1`` graph slots, ``batch_size × max_nodes_per_graph`` node rows
    and ``batch_size × max_edges_per_graph`` directed-edge rows (Graphium's IPU options of the same
    names); graphs are packed until one of the budgets is full, the rest is masked padding.
    """

    max_nodes_per_graph: float = Field(default=32.0, gt=0.0)
    max_edges_per_graph: float = Field(default=72.0, gt=0.0)


class SelectConfig(StrictModel):
    """Which epoch's weights are kept: the best on a validation metric (``val/loss`` or e.g.
    ``val/tox21/NR-AR/auroc``, or ``val/mean/auroc``: the mean of a metric over all tasks that have it,
    or one dataset's ``val/tox21/loss`` / ``val/tox21/mean/auroc`` in a mix)."""

    metric: str = "val/loss"
    mode: Literal["min", "max"] = "min"
    # stop when the selected metric has not improved for this many epochs (None: never)
    patience: int | None = Field(default=None, ge=1)

    @field_validator("metric")
    @classmethod
    def _validation_only(cls, v: str) -> str:
        if not v.startswith("val/"):
            raise ValueError(f"model selection uses validation metrics only (val/...), got {v!r}")
        return v


class LoggersConfig(StrictModel):
    """Optional loggers of the rank-0 worker, written under ``<run dir>/logs/``. ``epochs.csv``
    and ``learning_curve.png`` are always written into the run directory."""

    tensorboard: bool = False  # logs/tensorboard (needs the tensorboard package)
    mlflow: bool = False  # local SQLite store logs/mlflow.db (needs mlflow or mlflow-skinny)


class TrainConfig(StrictModel):
    epochs: int = Field(default=10, ge=1)
    # the global batch (all workers together), as in Graphium and chemprop; each of the
    # num_workers workers gets ceil(batch_size / num_workers) molecules per step
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    # linear warm-up from lr/10 over warmup_epochs, then cosine to final_lr_ratio·lr, Noam
    # (lr·sqrt(warmup/step)) or constant
    lr_schedule: Literal["cosine", "noam", "constant"] = "cosine"
    warmup_epochs: float = Field(default=2.0, ge=0.0)
    final_lr_ratio: float = Field(default=0.1, ge=0.0, le=1.0)
    # exponential moving average of the weights, updated every optimizer step (w̄ ← d·w̄ + (1−d)·w);
    # validation, model selection, test and the checkpoint use the averaged weights. None: off
    ema_decay: float | None = Field(default=None, gt=0.0, lt=1.0)
    select: SelectConfig = SelectConfig()
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    # train N models with seeds seed, seed+1, …; metrics as mean ± std, predict averages them
    replicates: int = Field(default=1, ge=1, le=100)
    # hash: every worker reads the train split and keeps its rows by a hash of the molecule key
    # (the same data order for any number of workers: reproducible); ray: Ray Data's
    # streaming_split (each row read once; faster on large clusters, not bit-reproducible)
    shard_train: Literal["hash", "ray"] = "hash"
    # a train split up to this size (uncompressed, per worker) is read once into each worker's
    # memory and reshuffled there every epoch; a larger one is read from the cache every epoch
    # (shard_train hash: by each worker from the cache's files, through a shuffle buffer; ray:
    # through Ray Data)
    in_memory_mb: float = Field(default=2048.0, ge=0.0)
    # shard_train ray, a streamed train split: at most this much read-ahead in Ray's object store
    # (Ray Data's own bound is a fraction of the whole store, GBs on a big machine, that the reader
    # fills while the model trains); 0 = Ray Data's default
    stream_buffer_mb: float = Field(default=512.0, ge=0.0)
    # shard_train ray, a streamed split's block size: each reading task buffers this much before a
    # block enters the object store. None: Ray Data's default (128 MiB, ~12,000 drug-like graphs),
    # the worker maps ~0.4-0.7 GB of such blocks; 16-64 MiB map less, at a speed cost
    # (BENCHMARKS.md §3)
    stream_block_mb: float | None = Field(default=None, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    num_workers: int = Field(default=2, ge=1)
    cpus_per_worker: float | None = Field(default=None, gt=0.0)
    accelerator: Literal["cpu", "gpu", "ipu"] = "cpu"
    max_failures: int = Field(default=0, ge=-1)
    seed: int = 0
    grad_clip: float | None = Field(default=5.0, gt=0.0)
    # static-shape (padded) batches; required and defaulted for accelerator=ipu
    static_shapes: StaticShapeConfig | None = None
    # torch.compile(dynamic=False) the model (needs static_shapes: one compiled graph for all batches)
    compile: bool = False
    # where Ray Train keeps checkpoints: shared storage (s3://, gs://, NFS) on a multi-node cluster;
    # default: <run dir>/ray
    storage_path: str | None = None

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v

    @model_validator(mode="after")
    def _static_shapes_when_needed(self) -> TrainConfig:
        if self.accelerator == "ipu" and self.static_shapes is None:
            self.static_shapes = StaticShapeConfig()
        if self.compile and self.static_shapes is None:
            raise ValueError("train.compile=true needs train.static_shapes (e.g. --set train.static_shapes={}), "
                             "otherwise every batch shape recompiles")  # fmt: skip
        return self


class LoggingConfig(StrictModel):
    wandb: bool = False
    project: str = "graphium-ray"
    loggers: LoggersConfig = LoggersConfig()


class FinetuneConfig(StrictModel):
    """Start from a pretrained checkpoint (``graphium-ray finetune CHECKPOINT CONFIG``).

    The backbone architecture and the featurizer come from the checkpoint; the config's tasks get
    new heads (``heads: replace``), or heads of the same dataset/level and shape keep their
    pretrained weights (``keep_matching``: continue a pretraining task next to new ones).
    ``mode: linear_probe`` fits scikit-learn linear models on frozen graph embeddings instead.
    """

    checkpoint: str | None = None  # the CLI's CHECKPOINT argument fills or overrides it
    freeze_backbone_epochs: int = Field(default=0, ge=0)
    backbone_lr_ratio: float = Field(default=1.0, gt=0.0, le=1.0)  # backbone lr / heads' lr after the frozen epochs
    heads: Literal["replace", "keep_matching"] = "replace"
    mode: Literal["full", "linear_probe"] = "full"


class RunConfig(StrictModel):
    """The whole run: data, model, training, logging (and, for fine-tuning, where to start from)."""

    name: str = "run"
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    logging: LoggingConfig = LoggingConfig()
    finetune: FinetuneConfig | None = None


# words users bring from chemprop / Graphium, and what they are called here
SYNONYMS = {"classification": "binary", "multilabel": "binary", "ap": "average_precision", "prc": "average_precision",
            "roc": "auroc", "auc": "auroc", "rmse_loss": "mse", "bce_loss": "bce", "epoch": "epochs",
            "batch": "batch_size", "learning_rate": "lr", "hidden": "hidden_dim", "depth": "num_layers"}  # fmt: skip


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The config class under ``root`` that owns the last key of ``loc`` (list indices skipped), for
    listing its keys."""
    import typing

    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        candidates += [a for c in candidates for a in typing.get_args(c)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return model


def format_validation_error(err: ValidationError, source: str, root: type[BaseModel] | None = None,
                            what: str = "config") -> str:  # fmt: skip
    """One line per problem: the dotted key, what is wrong (unknown keys list the valid ones and a
    synonym users bring from chemprop / Graphium), and the value given."""
    root = root or RunConfig
    lines = [f"invalid {what} {source}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            owner = _model_at(root, tuple(e["loc"]))
            key = str(e["loc"][-1])
            hint = f"; did you mean '{SYNONYMS[key]}'?" if key in SYNONYMS else ""
            valid = f" (valid keys: {', '.join(owner.model_fields)})" if owner is not None else ""
            msg = f"unknown key{hint}{valid}"
        ctx = e.get("ctx") or {}
        if "expected" in ctx:
            value = e.get("input")
            hint = f"; did you mean '{SYNONYMS[value]}'?" if isinstance(value, str) and value in SYNONYMS else ""
            msg = f"must be one of {ctx['expected']}{hint}"
        lines.append(f"  {where}: {msg}; got {e.get('input')!r}")
    return "\n".join(lines)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (so ``3``, ``true``, ``[1,2]`` work)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like dotted.key=value")
    key, raw = item.split("=", 1)
    if not key:
        raise ConfigError(f"override '{item}' has an empty key")
    return key.split("."), yaml.safe_load(raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each dotted override set; list items are addressed by index."""
    out = copy.deepcopy(raw)
    for item in overrides:
        keys, value = parse_override(item)
        node: Any = out
        for i, k in enumerate(keys[:-1]):
            node = _descend(node, k, ".".join(keys[: i + 1]))
        last = keys[-1]
        if isinstance(node, list):
            node[_list_index(node, last, item)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"override '{item}': '{'.'.join(keys[:-1])}' is not a mapping")
    return out


def _descend(node: Any, key: str, where: str) -> Any:
    if isinstance(node, list):
        return node[_list_index(node, key, where)]
    if not isinstance(node, dict):
        raise ConfigError(f"override: '{where}' is not a mapping")
    return node.setdefault(key, {})


def _list_index(node: list, key: str, where: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(f"override '{where}': '{key}' is not an index of a list of {len(node)}")
    return int(key)


def validate(raw: dict[str, Any], source: str = "<dict>") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_raw(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    raw = apply_overrides(load_raw(path), overrides or [])
    return validate(raw, str(path))


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
