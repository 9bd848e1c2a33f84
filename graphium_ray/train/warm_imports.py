"""Start importing Lightning the moment a Ray Train worker process starts.

A training worker spends its first seconds in Ray's own set-up (core worker, Ray Train's worker
actor, the torch process group), mostly waiting on RPCs, and only then calls the train function,
whose first act is to import Lightning (~4 s on a 2-core machine: torch's compiler stack, and
torchmetrics, which imports ``scipy.signal``). :func:`start` is the workers'
``worker_process_setup_hook``: it imports Lightning on a daemon thread, so that the import runs
while Ray sets the worker up.

Only third-party modules that never import Ray are imported here, so the thread never waits on a
module lock that Ray's set-up holds (no import cycle between the two threads is possible). An
import error is left to the train function's own import, which reports it.
"""

from __future__ import annotations

import os
import threading

ENV_FLAG = "GRAPHIUM_RAY_WARM_IMPORTS"
MODULES = ("torch", "lightning.pytorch")
finished_unix: float | None = None  # when the thread's imports finished (start-up breakdown)


def _import_all() -> None:
    global finished_unix
    import importlib
    import time

    for name in MODULES:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - the train function imports it again and reports
            return
    finished_unix = time.time()


def start() -> None:
    """Ray's setup hook for every worker process of the job: only a process started for a Ray
    Train worker (``ENV_FLAG`` in its runtime environment) starts the import thread."""
    if os.environ.get(ENV_FLAG) == "1":
        threading.Thread(target=_import_all, name="warm-imports", daemon=True).start()


def worker_runtime_env(job_runtime_env: dict) -> dict:
    """Ray Train's ``RunConfig.worker_runtime_env``: the flag, and the hook as the environment
    variable through which Ray's worker process finds its setup hook (Ray accepts the public
    ``worker_process_setup_hook`` field in ``ray.init`` only, where it becomes this variable).

    Nothing when the job already names a setup hook of its own (the worker's variable would replace
    the job's, and the user's hook would not run) or when ``GRAPHIUM_RAY_WARM_IMPORTS=0``."""
    from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR as HOOK_VAR

    job_has_hook = job_runtime_env.get("worker_process_setup_hook") or HOOK_VAR in job_runtime_env.get("env_vars", {})
    if job_has_hook or os.environ.get(ENV_FLAG) == "0":
        return {}
    return {"env_vars": {ENV_FLAG: "1", HOOK_VAR: f"{__name__}.start"}}
