"""Sliding-window limits on login attempts, counted in the store: every API process (replicas
behind a load balancer, the workers of ``conveyor serve``) sees the same attempts, so running
more of them does not multiply what a guesser may try.

One row per key holds the key's attempts still in the window, at most ``attempts`` of them. A
check locks the row for its transaction (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
write lock serialises every writer anyway), so two processes checking one key at once both
count. Times are Unix seconds from each process's clock: replicas need synchronised clocks
(NTP), as they do for sessions' expiry. Rows whose attempts have all left the window are
deleted, at most once a minute per process, so a flood of made-up user names or addresses costs
rows for one window only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from conveyor.store.models import LoginAttempts

PRUNE_EVERY_SECONDS = 60.0
LOCK_TRIES = 3  # a row deleted between our insert and our lock is made again


def slide(
    attempted_at: Sequence[float], now: float, attempts: int, window_seconds: float
) -> tuple[list[float], float]:
    """(the attempts still in the window, with this one added if allowed; the seconds to wait
    before the next is allowed, 0 when this one is)."""
    recent = [moment for moment in attempted_at if moment > now - window_seconds][-attempts:]
    if len(recent) >= attempts:
        return recent, recent[0] + window_seconds - now
    return [*recent, now], 0.0


@dataclass(frozen=True)
class WindowLimit:
    """At most ``attempts`` per key in any ``window_seconds``; ``scope`` keeps two limits'
    keys apart in the one table."""

    scope: str
    attempts: int
    window_seconds: float

    def key_hash(self, key: str) -> str:
        return hashlib.sha256(f"{self.scope}|{key}".encode()).hexdigest()

    def take(self, session: Session, key: str, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now, and then the attempt is
        recorded (in ``session``'s transaction, which holds the key's row until it ends)."""
        row = _locked_row(session, self.key_hash(key), now)
        kept, wait = slide(row.attempted_at, now, self.attempts, self.window_seconds)
        row.attempted_at = kept
        row.expires_at = _utc(kept[-1] + self.window_seconds)
        return wait

    def forget(self, session: Session, key: str) -> None:
        session.execute(delete(LoginAttempts).where(LoginAttempts.key_hash == self.key_hash(key)))


class AttemptStore:
    """Checks of several limits in one transaction of the store."""

    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self._next_prune = 0.0
        self._prune_lock = threading.Lock()

    def retry_after(self, *checks: tuple[WindowLimit, str]) -> float:
        """Seconds until the caller may try again (0: allowed, and counted). The checks run in
        order and stop at the first that refuses, which then counts nothing further. Blocking:
        call it from a worker thread."""
        now = self.clock()
        self._prune_if_due(now)
        with self.sessions.begin() as session:
            for limit, key in checks:
                wait = limit.take(session, key, now)
                if wait > 0:
                    return wait
        return 0.0

    def forget(self, limit: WindowLimit, key: str) -> None:
        with self.sessions.begin() as session:
            limit.forget(session, key)

    def _prune_if_due(self, now: float) -> None:
        """Delete idle keys, in a transaction of its own that skips rows a check holds: it
        never waits for a check, so it can be in no lock cycle with one."""
        with self._prune_lock:
            if now < self._next_prune:
                return
            self._next_prune = now + PRUNE_EVERY_SECONDS
        idle = (
            select(LoginAttempts.key_hash)
            .where(LoginAttempts.expires_at < _utc(now))
            .with_for_update(skip_locked=True)
        )
        with self.sessions.begin() as session:
            session.execute(delete(LoginAttempts).where(LoginAttempts.key_hash.in_(idle)))


def _locked_row(session: Session, key_hash: str, now: float) -> LoginAttempts:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    missing = insert(LoginAttempts).values(key_hash=key_hash, attempted_at=[], expires_at=_utc(now))
    query = (
        select(LoginAttempts)
        .where(LoginAttempts.key_hash == key_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    for _ in range(LOCK_TRIES):
        session.execute(missing.on_conflict_do_nothing(index_elements=["key_hash"]))
        row = session.scalars(query).one_or_none()
        if row is not None:
            return row
    raise RuntimeError(f"login attempts of one key were deleted {LOCK_TRIES} times in a row")


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC).replace(tzinfo=None)


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
