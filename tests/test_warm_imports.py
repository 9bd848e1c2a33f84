"""The Ray Train workers' warm-import hook: when it acts and when it stays out of the way (that it
runs in real workers is asserted on a real run in test_train.py)."""

from __future__ import annotations

import subprocess
import sys

from graphium_ray.train import warm_imports


def test_runtime_env_names_the_hook_unless_the_job_has_its_own_or_it_is_switched_off(monkeypatch):
    monkeypatch.delenv(warm_imports.ENV_FLAG, raising=False)
    from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR as HOOK_VAR

    env = warm_imports.worker_runtime_env({})
    assert env == {"env_vars": {warm_imports.ENV_FLAG: "1", HOOK_VAR: "graphium_ray.train.warm_imports.start"}}
    assert warm_imports.worker_runtime_env({"worker_process_setup_hook": "users.logging_setup"}) == {}
    assert warm_imports.worker_runtime_env({"env_vars": {HOOK_VAR: "users.logging_setup"}}) == {}
    monkeypatch.setenv(warm_imports.ENV_FLAG, "0")
    assert warm_imports.worker_runtime_env({}) == {}


def test_the_hook_imports_lightning_on_a_thread_only_in_a_flagged_process():
    code = ("import sys, time, threading; from graphium_ray.train import warm_imports as w; w.start(); "
            "[t.join() for t in threading.enumerate() if t.name == 'warm-imports']; "
            "print('lightning.pytorch' in sys.modules, w.finished_unix is not None)")  # fmt: skip
    flagged = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**_env(), warm_imports.ENV_FLAG: "1"})  # fmt: skip
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env())
    assert flagged.stdout.split() == ["True", "True"] and plain.stdout.split() == ["False", "False"]


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != warm_imports.ENV_FLAG}
