"""Sliding-window limits on login attempts, with bounded memory: a key whose attempts have all
left the window is forgotten, and past ``max_keys`` the least recently seen keys go first (so
a flood of made-up user names or addresses costs a fixed amount of memory)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque

MAX_KEYS = 20_000  # about 15 MB at most per limiter


class SlidingWindowLimiter:
    def __init__(self, attempts: int, window_seconds: float, max_keys: int = MAX_KEYS) -> None:
        self.attempts = attempts
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()  # least recently seen first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds until ``key`` may try again (0: allowed now). Records the attempt if so."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._forget_idle(now)
            seen = self._seen.pop(key, None) or deque(maxlen=self.attempts)
            self._seen[key] = seen  # now the most recently seen
            while seen and seen[0] <= now - self.window_seconds:
                seen.popleft()
            if len(seen) >= self.attempts:
                return seen[0] + self.window_seconds - now
            seen.append(now)
            return 0.0

    def reset(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._seen:
            oldest = next(iter(self._seen.values()))
            if len(self._seen) < self.max_keys and oldest and oldest[-1] > horizon:
                return
            self._seen.popitem(last=False)


def address_key(host: str) -> str:
    """The limit's unit for a client address: the address itself, or for IPv6 its /64 (one
    subscriber commonly holds a whole /64)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))
