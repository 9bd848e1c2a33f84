"""A Ray Train worker process starts importing the training loop as soon as it exists.

Ray runs :func:`start` when a training worker process of a run with several workers starts: the
driver names it as the worker's process setup hook in ``RunConfig(worker_runtime_env=...)``
(``train/driver.py:warm_imports_env``).
The loop's imports (torch's compiler stack, Lightning, torchmetrics: ~2.5 s on 2 cores) then run on
a thread while Ray sets the worker up (its actor, the process group, the train context), which is
mostly waiting on the controller, instead of after it. The loop imports the same modules again
when it starts: a no-op if this thread finished, a wait on the module's import lock if not, and the
error raised where it is seen if the import failed here.
"""

from __future__ import annotations

import threading
import time

HOOK = "graphium_ray.train.warm_imports.start"
# (started, finished) wall-clock times of this process's warm imports, for the start-up breakdown
# (metrics.json summary.startup_unix); empty where the hook did not run
marks: dict[str, float] = {}


def _import_training_loop() -> None:
    try:
        import graphium_ray.train.loop  # noqa: F401
    except BaseException:  # the loop's own import raises it again, in the training function
        return
    marks["worker_warm_imports_done"] = time.time()


def start() -> None:
    marks["worker_warm_imports_started"] = time.time()
    threading.Thread(target=_import_training_loop, name="warm-imports", daemon=True).start()
