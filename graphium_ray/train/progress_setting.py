"""Driver side: whether the workers draw a progress bar (no Lightning import: the driver stays light)."""

from __future__ import annotations

import os
import sys

ENV = "GRAPHIUM_RAY_PROGRESS"  # 1: always, 0: never, unset: when stdout is a terminal


def progress_wanted() -> bool:
    """Driver side: draw a bar? ``GRAPHIUM_RAY_PROGRESS=0/1`` wins over the terminal check."""
    setting = os.environ.get(ENV)
    if setting is not None:
        return setting.strip() not in ("", "0", "false", "no")
    return sys.stdout.isatty()
