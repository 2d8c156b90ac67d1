"""Predictions off the event loop: parsing a body of up to 1 MB, checking its records and
running the model take milliseconds of CPU each, during which an event loop running them
would answer nothing else (``/healthz`` included). They run in worker threads instead, at most
``PREDICT_THREADS`` at once; further requests wait for a thread without holding one, so a burst
of large bodies queues instead of starving the loop of the GIL.

Bodies up to ``INLINE_BODY_BYTES`` (one to a few records, the usual request) are answered on
the loop: they cost 35-60 µs, about what the hop to a thread and back costs (~57 µs), and
about 0.25 ms in the worst case measured (500 one-column records; the signature check stops
after 100 problems), far less than the 5 ms a thread may hold the GIL before switching.

That holds for fast models only. An endpoint whose last small request took longer than
``INLINE_MAX_SECONDS`` (a slow model version: a canary that sleeps, a big native model) runs in
threads until a small request answers fast again; inline, a 0.5 s model would stall the loop
for every other request, ``/metrics`` scrapes included, so its latency alert could never fire.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from conveyor.serving.service import Answer, ServingService

T = TypeVar("T")
PREDICT_THREADS = max(1, min(4, os.cpu_count() or 1))
INLINE_BODY_BYTES = 1024
INLINE_MAX_SECONDS = 0.005  # a small request slower than this moves its endpoint to threads


class PredictThreads:
    def __init__(self, threads: int = PREDICT_THREADS) -> None:
        self.threads = threads
        # One limiter per event loop: a test client may run each request on a new one.
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter]
        self._limiters = weakref.WeakKeyDictionary()
        self._slow_endpoints: set[str] = set()

    async def predict(
        self, service: ServingService, name: str, body: bytes, key: str | None
    ) -> Answer:
        small = len(body) <= INLINE_BODY_BYTES
        if small and name not in self._slow_endpoints:
            return self._timed(service, name, body, key, small)
        return await self.run(self._timed, service, name, body, key, small)

    def _timed(
        self, service: ServingService, name: str, body: bytes, key: str | None, small: bool
    ) -> Answer:
        started = time.perf_counter()
        try:
            return service.predict(name, body, key)
        finally:
            if small and time.perf_counter() - started > INLINE_MAX_SECONDS:
                self._slow_endpoints.add(name)
            elif small:
                self._slow_endpoints.discard(name)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
