"""`conveyor up` creates the first admin once, even when several start on a fresh store at the
same instant (issue 12): one prints the one-time password, the others find the user."""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path

from sqlalchemy import create_engine, text

from conveyor.auth.service import count_users
from conveyor.cli.run import _ensure_first_admin
from conveyor.installation import Installation
from conveyor.settings import load_settings

ROUNDS = 3
STARTS = 3


def _fresh_store(database_url: str, tmp_path: Path, round_: int) -> str:
    """A new SQLite file, or a new schema inside the test's PostgreSQL schema's database."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / f'round-{round_}.db'}"
    schema = f"{_schema(database_url)}_{round_}"
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return database_url.replace(_schema(database_url), schema)


def _schema(database_url: str) -> str:
    return database_url.rsplit("%3D", 1)[1]


def _drop_rounds(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        return
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for round_ in range(ROUNDS):
            connection.execute(
                text(f'DROP SCHEMA IF EXISTS "{_schema(database_url)}_{round_}" CASCADE')
            )
    engine.dispose()


def _start_together(installations: list[Installation]) -> list[BaseException]:
    barrier, errors = threading.Barrier(len(installations)), []

    def start(installation: Installation) -> None:
        try:
            barrier.wait(30)
            _ensure_first_admin(installation)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(i,)) for i in installations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def test_simultaneous_first_starts_create_one_admin(database_url: str, tmp_path: Path) -> None:
    try:
        for round_ in range(ROUNDS):
            _race_once(database_url, tmp_path, round_)
    finally:
        _drop_rounds(database_url)


def _race_once(database_url: str, tmp_path: Path, round_: int) -> None:
    store = _fresh_store(database_url, tmp_path, round_)
    installations = [
        Installation(load_settings(tmp_path / f"home-{round_}", database_url=store))
        for _ in range(STARTS)
    ]
    for installation in installations:
        installation.engine  # noqa: B018  (migrated before the race: only the admin races)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            errors = _start_together(installations)
        assert errors == []
        assert printed.getvalue().count("created user 'admin'") == 1, printed.getvalue()
        with installations[0].sessions() as session:
            assert count_users(session) == 1
    finally:
        for installation in installations:
            installation.close()
