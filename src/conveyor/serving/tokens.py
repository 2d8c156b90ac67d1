"""A short-lived in-memory cache of verified API tokens, so that the predict path checks a
token in microseconds instead of a store query per request. A revoked token keeps working
for at most ``ttl_seconds`` on a replica that verified it just before.

While the store cannot be reached, a token verified in the last ``outage_seconds`` keeps
working (:meth:`TokenCache.last_known`), so serving goes on answering: nobody can revoke a
token meanwhile, revocations are written to the store."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

Principal = TypeVar("Principal")
TTL_SECONDS = 5.0
OUTAGE_SECONDS = 600.0
MAX_ENTRIES = 10_000


class TokenCache(Generic[Principal]):
    def __init__(
        self,
        ttl_seconds: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        outage_seconds: float = OUTAGE_SECONDS,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.outage_seconds = outage_seconds
        self.clock = clock
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> Principal | None:
        found = self._entries.get(_key(token))
        if found is None or found[1] + self.ttl_seconds < self.clock():
            return None
        return found[0]

    def last_known(self, token: str) -> Principal | None:
        """The principal verified in the last ``outage_seconds``: only for when the store
        cannot be reached to verify the token again."""
        found = self._entries.get(_key(token))
        if found is None or found[1] + self.outage_seconds < self.clock():
            return None
        return found[0]

    def put(self, token: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[_key(token)] = (principal, self.clock())  # when it was verified


def _key(token: str) -> bytes:
    # The cache holds digests, never the tokens themselves.
    return hashlib.blake2b(token.encode(), digest_size=16).digest()
