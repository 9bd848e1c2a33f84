"""What an interrupted sweep must give back to a running Ray cluster before its driver exits.

On Ctrl-C, Tune stops the trial actors and returns early; each trial's Ray Train controller dies
with its trial. A controller that was (re)starting its worker group at that moment can still have
its placement-group request reach the GCS after the job has begun to end, and that placement group
then outlives the job: on a long-lived cluster (``ray start --head``, a shared workstation) its CPUs
stay reserved and the next job's Ray Data tasks wait forever for them (seen in CI: a Ctrl-C'd sweep
left 0.4 of 2 CPUs reserved and a later ``prepare`` made no progress for 30 minutes). So the driver
waits for its controllers to be gone, then removes the placement groups its job still holds.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)

LIVE_PLACEMENT_GROUP_STATES = ("PENDING", "PREPARED", "CREATED", "RESCHEDULING")


def release_job_placement_groups(timeout_s: float = 60.0, poll_s: float = 0.5) -> list[str]:
    """Wait (≤ ``timeout_s``) until no Ray Train controller of this job is alive, then remove every
    placement group this job created that is not removed yet. Returns the removed groups' ids.

    Needs Ray's state API (the dashboard); without it, says so in the log and removes nothing."""
    import ray
    from ray.util.placement_group import PlacementGroup, remove_placement_group
    from ray.util.state import list_actors, list_placement_groups

    job = ray.get_runtime_context().get_job_id()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            controllers = list_actors(filters=[("job_id", "=", job), ("class_name", "=", "TrainController"),
                                               ("state", "!=", "DEAD")], raise_on_missing_output=False)  # fmt: skip
            if not controllers:
                break
            time.sleep(poll_s)
        else:
            logger.warning("%d Ray Train controller(s) of this sweep still alive after %.0f s", len(controllers),
                           timeout_s)  # fmt: skip
        time.sleep(poll_s)  # a request the last controller sent just before dying reaches the GCS
        held = [pg for pg in list_placement_groups(filters=[("creator_job_id", "=", job)], detail=True,
                                                   raise_on_missing_output=False)
                if pg.state in LIVE_PLACEMENT_GROUP_STATES]  # fmt: skip
    except Exception as err:  # the state API is an aid here, never a reason to fail the command
        logger.warning("could not check this sweep's placement groups (Ray state API: %s)", err)
        return []
    removed = []
    for pg in held:
        try:
            remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg.placement_group_id))))
            removed.append(pg.placement_group_id)
        except Exception as err:
            logger.warning("could not remove placement group %s: %s", pg.placement_group_id, err)
    if removed:
        logger.info("released %d placement group(s) left by this sweep's interrupted trials", len(removed))
    return removed
