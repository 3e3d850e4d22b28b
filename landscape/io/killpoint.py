"""A test-only hook that kills the process at a named moment of a file write.

``LANDSCAPE_TEST_KILL_AT="NAME:N"`` makes the N-th time this process reaches the point ``NAME``
(counted from 1) send itself SIGKILL, so the crash-safety tests can stop a scan *inside* a flush
(``journal-append``: halfway through writing a journal record; ``create-replace`` and
``compact-replace``: a complete temporary file, not yet renamed; ``compact-unlink``: renamed,
journal not yet deleted). Unset (always, outside tests) it does nothing.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "LANDSCAPE_TEST_KILL_AT"
_reached: dict[str, int] = {}


def reached(name: str) -> bool:
    """Count one arrival at ``name``; True when the hook asks to die here (see :func:`kill`)."""
    target = os.environ.get(ENV_VAR)
    if not target or target.rpartition(":")[0] != name:
        return False
    _reached[name] = _reached.get(name, 0) + 1
    return str(_reached[name]) == target.rpartition(":")[2]


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_if_reached(name: str) -> None:
    if reached(name):
        kill()
