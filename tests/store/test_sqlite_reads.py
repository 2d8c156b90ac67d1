"""``conveyor status`` on a SQLite store at its heads reads through sqlite3 and agrees with the
engine; any other store is left to the engine, which migrates it as before."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from conveyor.installation import Installation
from conveyor.pipeline.registry import discover
from conveyor.settings import load_settings
from conveyor.store.actions import cancel_item
from conveyor.store.counts import counts_by_status
from conveyor.store.database import alembic_config, connect, migrate, session_factory
from conveyor.store.revisions import head_revisions, stored_revisions, version_folders
from conveyor.store.sqlite_reads import item_counts_at_heads, sqlite_file
from conveyor.store.submissions import NewItem, insert_items, record_content_hash

ITEM_AT_0017 = text(
    "INSERT INTO items (id, pipeline, pipeline_version, kind, source, content_hash, work_dir,"
    " status, cancel_requested, created_at, queued_at, updated_at, lease_generation) VALUES"
    " (:id, 'noop', '1', 'record', 'cli', :hash, 'w', 'queued', false, CURRENT_TIMESTAMP,"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
)
BUILT_IN = discover().migration_locations()
FOLDERS = version_folders(BUILT_IN)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    engine = connect(url)
    migrate(engine, pipeline_migrations=BUILT_IN)
    yield url, engine
    engine.dispose()


def _insert(engine: Engine, count: int) -> list[str]:
    records = [{"n": n} for n in range(count)]
    news = [NewItem("noop", "1", "record", record_content_hash(r), "w", record=r) for r in records]
    with session_factory(engine).begin() as session:
        return [item.id for item in insert_items(session, news)]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/x/conveyor.db", Path("/var/x/conveyor.db")),
        ("sqlite+pysqlite:///relative.db", Path("relative.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:////x.db?timeout=3", None),
        ("sqlite:////a%20b.db", None),
        ("postgresql+psycopg://postgres@127.0.0.1/conveyor", None),
    ],
)
def test_only_plain_sqlite_urls_name_a_file(url: str, expected: Path | None) -> None:
    assert sqlite_file(url) == expected


def test_counts_agree_with_the_engine_and_do_not_wait_for_a_writer(
    store: tuple[str, Engine],
) -> None:
    url, engine = store
    first, *_ = _insert(engine, 3)
    with session_factory(engine).begin() as session:
        cancel_item(session, first)
    with engine.connect() as connection:
        expected = counts_by_status(connection)
    assert expected == {"noop": {"queued": 2, "cancelled": 1}}
    assert item_counts_at_heads(url, FOLDERS) == expected
    with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock, held
        writer.execute(text("UPDATE items SET status = 'running' WHERE status = 'queued'"))
        started = time.monotonic()
        assert item_counts_at_heads(url, FOLDERS) == expected  # the last committed state
        assert time.monotonic() - started < 5


def test_a_store_not_exactly_at_the_heads_is_left_to_the_engine(
    store: tuple[str, Engine], tmp_path: Path
) -> None:
    url = store[0]
    assert item_counts_at_heads(url, version_folders()) is None  # pipelines' heads unknown
    absent = tmp_path / "absent.db"
    assert item_counts_at_heads(f"sqlite:///{absent}", FOLDERS) is None
    assert not absent.exists()  # first use is the engine's
    sqlite3.connect(tmp_path / "empty.db").close()
    assert item_counts_at_heads(f"sqlite:///{tmp_path / 'empty.db'}", FOLDERS) is None


def test_status_on_a_store_behind_upgrades_it_first(database_url: str, tmp_path: Path) -> None:
    engine = connect(database_url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0017")  # the core as it was, none of the pipelines' tables
        for n in range(2):  # by hand: the models have columns added since
            connection.execute(ITEM_AT_0017, {"id": f"old{n}", "hash": f"h{n}"})
    installation = Installation(load_settings(tmp_path / "home", database_url=database_url))
    try:
        assert item_counts_at_heads(database_url, FOLDERS) is None
        assert installation.item_counts() == {"noop": {"queued": 2}}
        with engine.connect() as connection:
            assert stored_revisions(connection) == head_revisions(FOLDERS)
    finally:
        installation.close()
        engine.dispose()
