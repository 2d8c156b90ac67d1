"""Waiting for a condition instead of sleeping, and counting rows of the store, as the engine's
fault tests do (timeouts are generous: the machine may be loaded)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def count(installation: Any, query: Any) -> int:
    """The scalar ``query`` (a count) on the installation's store."""
    with installation.sessions() as session:
        return int(session.scalar(query) or 0)
