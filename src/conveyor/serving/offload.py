"""Predictions off the event loop: parsing a body of up to 1 MB, checking its records and
running the model take milliseconds of CPU each, during which an event loop running them
would answer nothing else (``/healthz`` included). They run in worker threads instead, at most
``PREDICT_THREADS`` at once; further requests wait for a thread without holding one, so a burst
of large bodies queues instead of starving the loop of the GIL.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
PREDICT_THREADS = max(1, min(4, os.cpu_count() or 1))


class PredictThreads:
    def __init__(self, threads: int = PREDICT_THREADS) -> None:
        self.threads = threads
        # One limiter per event loop: a test client may run each request on a new one.
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter]
        self._limiters = weakref.WeakKeyDictionary()

    async def run(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
