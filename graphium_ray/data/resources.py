"""What each kind of Ray Data work claims of the cluster, in one place (prepare, the training
readers and inference use the same rules)."""

from __future__ import annotations

import ray

# reading / parsing / writing tasks: a small logical share, so RDKit actor pools and training
# workers (which hold most CPUs) never starve them
TASK_CPUS = 0.25


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def actor_pool(max_size: int | None = None, tasks_in_flight: int | None = None) -> dict:
    """``map_batches`` arguments for an RDKit / model actor pool: a fixed pool of one actor per CPU
    (at most ``max_size``), each claiming 1 - ``TASK_CPUS`` of a CPU so that the reading and
    writing tasks of the same job always fit beside them (half a CPU on a 1-CPU cluster).

    Not an autoscaling pool: Ray Data adds an actor only when a whole ``num_cpus`` is free, which
    the small read/write tasks never leave: on 2 CPUs the pool stayed at one actor and ``prepare``
    ran at one core's speed (50k MOSES molecules: 32.5 s on 1 CPU, 33.7 s on 2).

    ``tasks_in_flight``: work queued on one actor at a time (Ray Data's default when None). 1 where
    each input is a small work item and the actor reads its own rows: with more, the first actor to
    start takes every item of a small job and the others stay idle."""
    cpus = cluster_cpus()
    size = max(1, min(max_size or cpus, cpus))
    strategy = ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=tasks_in_flight)
    return {"compute": strategy, "num_cpus": 1.0 - TASK_CPUS if cpus >= 2 else 0.5}
