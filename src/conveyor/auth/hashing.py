"""A bound on concurrent password checks. Each argon2 hash takes 64 MiB and a core for about a
tenth of a second (also for unknown users, so timing tells nothing), so unbounded parallel
logins could take all memory and CPU. At most ``slots`` checks run at once, in worker
threads; a login that finds no free slot within ``wait_seconds`` is told to retry later.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from conveyor.errors import ConveyorError

T = TypeVar("T")


class HashingBusyError(ConveyorError):
    code = "busy"
    http_status = 503
    retry_after = 1


def default_slots() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class HashingGate:
    def __init__(self, slots: int | None, wait_seconds: float) -> None:
        self.slots = slots or default_slots()
        self.wait_seconds = wait_seconds
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()  # one per event loop (test clients)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` in a worker thread once a slot is free; HashingBusyError if
        none frees up in time. Waiting holds no thread."""
        semaphore = self._semaphore()
        try:
            async with asyncio.timeout(self.wait_seconds):
                await semaphore.acquire()
        except TimeoutError:
            raise HashingBusyError(
                f"the server is checking {self.slots} other logins; try again in a second"
            ) from None
        try:
            return await anyio.to_thread.run_sync(function, *args)
        finally:
            semaphore.release()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.slots)
        return semaphore
