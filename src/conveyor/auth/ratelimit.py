"""A sliding-window limiter for login attempts (per client address and user name)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class SlidingWindowLimiter:
    def __init__(self, attempts: int, window_seconds: float) -> None:
        self.attempts = attempts
        self.window_seconds = window_seconds
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds until ``key`` may try again (0: allowed now). Records the attempt if so."""
        now = time.monotonic() if now is None else now
        with self._lock:
            seen = self._seen[key]
            while seen and seen[0] <= now - self.window_seconds:
                seen.popleft()
            if len(seen) >= self.attempts:
                return seen[0] + self.window_seconds - now
            seen.append(now)
            return 0.0

    def reset(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)
