from pathlib import Path

import pytest
import yaml

from graphium_ray.config import ConfigError, apply_overrides, load_config, validate

ROOT = Path(__file__).resolve().parents[1]
BASE = {"data": {"datasets": [{"name": "a", "path": "x.csv", "tasks": [{"columns": ["y"]}]}]}}


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"train\.epoch: unknown key"):
        validate({**BASE, "train": {"epoch": 3}})


def test_stream_block_size_must_be_positive():
    assert validate({**BASE, "train": {"stream_block_mb": 16}}).train.stream_block_mb == 16
    with pytest.raises(ConfigError, match=r"train\.stream_block_mb"):
        validate({**BASE, "train": {"stream_block_mb": 0}})


def test_bad_value_names_field_and_allowed_values():
    with pytest.raises(ConfigError) as err:
        validate({**BASE, "model": {"layer": "transformerx"}})
    assert "model.layer" in str(err.value) and "'gine'" in str(err.value)


def test_loss_must_fit_kind():
    raw = {
        "data": {
            "datasets": [{"name": "a", "path": "x.csv", "tasks": [{"columns": ["y"], "kind": "binary", "loss": "mse"}]}]
        }
    }
    with pytest.raises(ConfigError, match="does not fit kind 'binary'"):
        validate(raw)


def test_split_fractions_validated():
    with pytest.raises(ConfigError, match="sum to 1"):
        validate({**BASE, "data": {**BASE["data"], "split": {"fractions": [0.5, 0.2, 0.2]}}})


def test_overrides_set_nested_and_list_items():
    raw = apply_overrides(BASE, ["train.epochs=3", "data.datasets.0.path=other.csv", "model.pooling=[sum]"])
    cfg = validate(raw)
    assert cfg.train.epochs == 3 and cfg.data.datasets[0].path == "other.csv" and cfg.model.pooling == ["sum"]
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(BASE, ["data.datasets.5.path=x"])


def test_defaults_follow_task_kind():
    cfg = validate(
        {"data": {"datasets": [{"name": "a", "path": "x", "tasks": [{"columns": ["y"], "kind": "binary"}]}]}}
    )
    group = cfg.data.datasets[0].tasks[0]
    assert group.loss == "bce" and group.metrics == ["auroc", "average_precision"] and group.normalize is False


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_validates(path):
    raw = yaml.safe_load(path.read_text())
    if "search_space" in raw:  # a Tune sweep: its base config is a run config
        from graphium_ray.tune.sweep_config import load_sweep

        load_sweep(path)
    else:
        load_config(path)


def test_unknown_keys_list_the_valid_ones_and_chemprop_words_get_a_suggestion():
    raw = {"data": {"datasets": [{"name": "a", "path": "x", "tasks": [{"columns": ["y"], "kind": "classification",
                                                                       "metrics": ["ap"]}]}]},
           "train": {"learning_rate": 0.1, "foo": 1}}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        validate(raw)
    text = str(info.value)
    assert "kind: must be one of 'regression', 'binary'" in text and "did you mean 'binary'?" in text
    assert "did you mean 'average_precision'?" in text
    assert "train.learning_rate: unknown key; did you mean 'lr'?" in text
    assert "train.foo: unknown key (valid keys: epochs, batch_size, lr," in text


def test_workers_that_take_every_cpu_are_refused_before_they_hang():
    """Workers holding all CPUs leave Ray Data's cache readers (0.25 CPU each) unschedulable: the run
    would wait for its first batch forever. Refused with the largest share that works."""
    from graphium_ray.train.devices import worker_resources

    def resources(**train):
        return worker_resources(validate({"data": {"datasets": [{"name": "d", "path": "x.csv", "tasks": [{"columns": ["y"]}]}]},
                                          "train": train}, "test").train, {"CPU": 2.0})  # fmt: skip

    with pytest.raises(ConfigError, match=r"cpus_per_worker=2 .* use at most 1.75 per worker"):
        resources(num_workers=1, cpus_per_worker=2)
    with pytest.raises(ConfigError, match="at most 0.87 per worker"):
        resources(num_workers=2, cpus_per_worker=1)
    assert resources(num_workers=1, cpus_per_worker=1.75) == ({"CPU": 1.75}, False, 1)
    assert resources(num_workers=2) == ({"CPU": 0.475}, False, 1)  # default: one CPU kept for the readers
