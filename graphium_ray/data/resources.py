"""What each kind of Ray Data work claims of the cluster, in one place (prepare, the training
readers and inference use the same rules)."""

from __future__ import annotations

import ray

# reading / parsing / writing tasks: a small logical share, so RDKit actor pools and training
# workers (which hold most CPUs) never starve them
TASK_CPUS = 0.25


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def actor_pool(max_size: int | None = None) -> dict:
    """``map_batches`` arguments for an RDKit / model actor pool sized to the cluster (at most
    ``max_size`` actors, default one per CPU). On a 1-CPU cluster each actor claims half a CPU, or
    Ray Data's file listing (1 CPU) could never be scheduled."""
    cpus = cluster_cpus()
    return {
        "compute": ray.data.ActorPoolStrategy(min_size=1, max_size=max_size or cpus),
        "num_cpus": 1.0 if cpus >= 2 else 0.5,
    }
