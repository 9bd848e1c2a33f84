"""What the CLI tells a user when a command fails: one line, the innermost cause.

Failures raised inside Ray tasks, actors or Ray Train workers reach the driver wrapped
(``RayTaskError`` → the user's exception, ``WorkerGroupError`` → one exception per worker rank,
``ControllerError`` → the controller's); :func:`root_cause` unwraps them, :func:`one_line` keeps the
first line of the message. Exit codes: 2 for an input or configuration the user can fix (the
exception types in :data:`USER_ERRORS`), 1 for anything else, 130 for an interrupt.
"""

from __future__ import annotations

import os

from graphium_ray.config import ConfigError

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError, ValueError)  # fmt: skip
DEBUG_ENV = "GRAPHIUM_RAY_DEBUG"


def debug_requested(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _inner(err: BaseException) -> BaseException | None:
    """The exception ``err`` wraps, if it is one of Ray's wrappers (or chains one explicitly)."""
    for attr in ("cause", "controller_failure"):  # RayTaskError / RayActorError, ControllerError
        inner = getattr(err, attr, None)
        if isinstance(inner, BaseException):
            return inner
    failures = getattr(err, "worker_failures", None)  # WorkerGroupError: {rank: exception}
    if isinstance(failures, dict) and failures:
        return failures[min(failures)]
    return err.__cause__


def root_cause(err: BaseException) -> BaseException:
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        inner = _inner(err)
        if inner is None:
            return err
        err = inner
    return err


def one_line(err: BaseException) -> str:
    """The cause's message on one line; the exception type is named when it is not a user error."""
    cause = root_cause(err)
    lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
    # a user error may list several problems (one per line): all of them, on one line;
    # anything else: its first line (the rest is usually a traceback or a dump)
    if isinstance(cause, USER_ERRORS) and len(lines) > 1:
        text = lines[0].rstrip(":") + ": " + "; ".join(lines[1:])
    else:
        text = lines[0] if lines else ""
    if isinstance(cause, OSError) and cause.strerror:
        text = f"{cause.filename}: {cause.strerror}" if cause.filename else cause.strerror
    if not isinstance(cause, USER_ERRORS):
        text = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    return text


def exit_code(err: BaseException) -> int:
    return 2 if isinstance(root_cause(err), USER_ERRORS) else 1
