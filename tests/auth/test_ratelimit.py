"""Login attempts are counted in the store (auth/ratelimit.py): two processes' limiters over one
database count the same attempts, also when they check at the same moment; idle keys are
deleted after their window; user names are not stored in clear."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from conveyor.auth.ratelimit import AttemptStore, WindowLimit, slide
from conveyor.store.database import connect, migrate, session_factory
from conveyor.store.models import LoginAttempts

PER_USER = WindowLimit("user", attempts=5, window_seconds=60)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[AttemptStore, AttemptStore, Clock]]:
    """Two limiters on separate engines, as two API processes have them, with one clock."""
    engines = [connect(database_url), connect(database_url)]
    migrate(engines[0])
    clock = Clock()
    yield (
        AttemptStore(session_factory(engines[0]), clock),
        AttemptStore(session_factory(engines[1]), clock),
        clock,
    )
    for engine in engines:
        engine.dispose()


def test_the_window_slides() -> None:
    kept, wait = slide([100.0, 110.0], now=165.0, attempts=2, window_seconds=60)
    assert (kept, wait) == ([110.0, 165.0], 0.0)  # 100 has left the window
    kept, wait = slide(kept, now=166.0, attempts=2, window_seconds=60)
    assert kept == [110.0, 165.0] and wait == pytest.approx(4.0)  # refused: not recorded


def test_two_processes_count_the_same_attempts(replicas) -> None:  # type: ignore[no-untyped-def]
    first, second, clock = replicas
    answers = []
    for attempt in range(5):
        clock.now += 1
        store = first if attempt % 2 else second
        answers.append(store.retry_after((PER_USER, "10.0.0.1|ada")))
    assert answers == [0.0] * 5
    clock.now += 1
    assert first.retry_after((PER_USER, "10.0.0.1|ada")) == pytest.approx(55.0)
    assert second.retry_after((PER_USER, "10.0.0.1|ada")) == pytest.approx(55.0)
    assert second.retry_after((PER_USER, "10.0.0.1|bob")) == 0.0  # another key
    first.forget(PER_USER, "10.0.0.1|ada")  # a right password
    assert second.retry_after((PER_USER, "10.0.0.1|ada")) == 0.0


def test_attempts_at_the_same_moment_all_count(replicas) -> None:  # type: ignore[no-untyped-def]
    first, second, _ = replicas
    with ThreadPoolExecutor(8) as pool:
        waits = list(
            pool.map(
                lambda n: (first, second)[n % 2].retry_after((PER_USER, "10.0.0.2|ada")),
                range(16),
            )
        )
    assert sum(wait == 0 for wait in waits) == 5, waits


def test_a_refused_check_counts_nothing_further(replicas) -> None:  # type: ignore[no-untyped-def]
    first, _, _ = replicas
    per_address = WindowLimit("address", attempts=1, window_seconds=60)
    assert first.retry_after((per_address, "10.0.0.3"), (PER_USER, "10.0.0.3|ada")) == 0
    assert first.retry_after((per_address, "10.0.0.3"), (PER_USER, "10.0.0.3|ada")) > 0
    for _ in range(4):  # the refused attempt took none of the user's five
        assert first.retry_after((PER_USER, "10.0.0.3|ada")) == 0
    assert first.retry_after((PER_USER, "10.0.0.3|ada")) > 0


def test_idle_keys_are_deleted_and_names_not_kept(replicas) -> None:  # type: ignore[no-untyped-def]
    first, second, clock = replicas
    for n in range(50):
        first.retry_after((PER_USER, f"10.0.{n // 250}.{n % 250}|user-{n}"))
    sessions = first.sessions
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempts)) == 50
        dumped = " ".join(str(row) for row in session.execute(text("select * from login_attempts")))
    assert "user-" not in dumped and "10.0." not in dumped
    clock.now += 61  # every key is idle now; the next check deletes them
    second.retry_after((PER_USER, "late"))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempts)) == 1
