"""Inserting many new items at once as plain rows (``submit --records``, stream intake).

No ORM objects and no per-row parameter handling by SQLAlchemy: the values that are the same
for every row of a batch (status, timestamps, flags) are converted once, and each row is a
tuple (SQLite's executemany) or a line of COPY text (PostgreSQL). docs/benchmarks.md
("Record submission") has the profile that led here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import orjson
from sqlalchemy import Connection, Table

from conveyor.core.lifecycle import RETRYABLE_STATUSES, ItemStatus, status_values
from conveyor.store.models import Item, utcnow

if TYPE_CHECKING:
    from conveyor.store.submissions import NewItem

ITEMS = cast(Table, Item.__table__)
NOT_DUPLICATE_STATUSES = status_values(RETRYABLE_STATUSES)  # ended without a result
# Each row lands on a random page of two indexes (the random id, the content hash): with
# SQLite's default 2 MB page cache a bulk insert read and spilled pages for nearly every row
# (200,000 rows: 0.68 million preads and 0.60 million pwrites; 64 MB: 0.06 and 0.18). Only
# batches set it; the connection keeps it, so such a process may hold up to 64 MB more.
SQLITE_BULK_ROWS = 1_000
SQLITE_BULK_CACHE_KIB = 64 << 10
SQLITE_LOOKUP_CHUNK = 900  # content hashes per IN (...): under SQLite's old 999-variable limit
COLUMNS = (
    "id",
    "pipeline",
    "pipeline_version",
    "kind",
    "source",
    "input_name",
    "stored_name",
    "input_size",
    "input_url",
    "record",
    "content_hash",
    "work_dir",
    "status",
    "cancel_requested",
    "created_at",
    "queued_at",
    "updated_at",
    "lease_generation",
)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def new_item_ids(count: int) -> list[str]:
    """``count`` random ids of 32 hex digits (uuid4's 122 random bits and more). Not
    time-ordered, although that appends to the primary-key index instead of hitting random
    pages of it (about 1.3x the insert rate on SQLite at a million items): items submitted
    together would share their leading digits, the part people read, list (``[:12]``) and
    type as a prefix to ``conveyor show``."""
    random = os.urandom(16 * count).hex()
    return [random[start : start + 32] for start in range(0, 32 * count, 32)]


def stored_record_json(record: Any, canonical: str | None = None) -> str:
    """The JSON text stored for a record (key order kept). orjson writes it in a fraction of
    ``json.dumps``'s time; the standard encoder stays for what orjson would not write the
    same: NaN and infinities (orjson writes null) and integers beyond 64 bits. Without the
    record's ``canonical`` JSON (``record_hash_and_json`` has it) there is no cheap way to
    tell, and ``json.dumps`` writes it."""
    if canonical is None or "NaN" in canonical or "Infinity" in canonical:
        return json.dumps(record)  # "NaN" in a string takes this path too: exact, only slower
    try:
        return orjson.dumps(record).decode()
    except orjson.JSONEncodeError:
        return json.dumps(record)


def insert_item_rows(connection: Connection, new_items: Sequence[NewItem]) -> list[str]:
    """Insert ``new_items`` in the connection's transaction; their ids, in order."""
    if not new_items:
        return []
    ids = new_item_ids(len(new_items))
    now = utcnow()
    if connection.dialect.name == "postgresql":
        _copy_rows(connection, new_items, ids, now)
    else:
        _executemany_rows(connection, new_items, ids, now)
    return ids


def _record_json(new: NewItem) -> str:
    return new.record_json if new.record_json is not None else stored_record_json(new.record)


def _executemany_rows(
    connection: Connection, new_items: Sequence[NewItem], ids: list[str], now: datetime
) -> None:
    def bound(column: str, value: Any) -> Any:
        processor = (
            ITEMS.c[column].type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
        )
        return value if processor is None else processor(value)

    status, cancel = bound("status", ItemStatus.QUEUED.value), bound("cancel_requested", False)
    stamp = bound("created_at", now)
    rows = [
        (
            *(item_id, new.pipeline, new.pipeline_version, new.kind, new.source),
            *(new.input_name, new.stored_name, new.input_size, new.input_url),
            _record_json(new),
            *(new.content_hash, new.work_dir, status, cancel, stamp, stamp, stamp, 0),
        )
        for item_id, new in zip(ids, new_items, strict=True)
    ]
    marks = ", ".join("?" for _ in COLUMNS)
    statement = f"INSERT INTO {ITEMS.name} ({', '.join(COLUMNS)}) VALUES ({marks})"
    if len(rows) >= SQLITE_BULK_ROWS:
        connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")
    connection.exec_driver_sql(statement, rows)


def _copy_rows(
    connection: Connection, new_items: Sequence[NewItem], ids: list[str], now: datetime
) -> None:
    """COPY in text format, the lines written here: psycopg's ``write_row`` adapted every
    value on its own and took longer than the server's part."""
    tail = f"\t{ItemStatus.QUEUED.value}\tf\t{now}\t{now}\t{now}\t0\n"
    lines = [
        "\t".join(
            (
                *(item_id, _copy(new.pipeline), _copy(new.pipeline_version), _copy(new.kind)),
                *(_copy(new.source), _copy(new.input_name), _copy(new.stored_name)),
                "\\N" if new.input_size is None else str(new.input_size),
                _copy(new.input_url),
                _copy(_record_json(new)),
                *(_copy(new.content_hash), _copy(new.work_dir)),
            )
        )
        + tail
        for item_id, new in zip(ids, new_items, strict=True)
    ]
    statement = f"COPY {ITEMS.name} ({', '.join(COLUMNS)}) FROM STDIN"
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write("".join(lines).encode())


def _copy(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)  # rare: str.translate is slow for the common case
    return value


def find_duplicates(
    connection: Connection, pipeline: str, version: str, content_hashes: list[str]
) -> dict[str, str]:
    """The earliest item id per content hash, for the hashes that already have an item of
    ``pipeline`` ``version`` that did not fail. PostgreSQL: one query for all the hashes;
    SQLite: one per ``SQLITE_LOOKUP_CHUNK``. Both go through the content index."""
    earliest: dict[str, str] = {}  # rows come latest first: the earliest is written last
    if connection.dialect.name == "postgresql":
        earliest.update(_postgresql_lookup(connection, pipeline, version, content_hashes))
        return earliest
    for start in range(0, len(content_hashes), SQLITE_LOOKUP_CHUNK):
        chunk = content_hashes[start : start + SQLITE_LOOKUP_CHUNK]
        earliest.update(_sqlite_lookup(connection, pipeline, version, chunk))
    return earliest


def _postgresql_lookup(
    connection: Connection, pipeline: str, version: str, content_hashes: list[str]
) -> list[tuple[str, str]]:
    # The hashes (hex digests: no commas) as one text parameter: psycopg adapted a list
    # element by element, and SQLAlchemy compiled an IN (...) of a thousand binds each time.
    statement = (
        f"SELECT content_hash, id FROM {ITEMS.name} WHERE pipeline = %s"
        " AND pipeline_version = %s AND content_hash = ANY(string_to_array(%s, ','))"
        " AND status <> ALL(%s) ORDER BY created_at DESC"
    )
    parameters = (pipeline, version, ",".join(content_hashes), list(NOT_DUPLICATE_STATUSES))
    return [
        (content_hash, item_id)
        for content_hash, item_id in connection.exec_driver_sql(statement, parameters)
    ]


def _sqlite_lookup(
    connection: Connection, pipeline: str, version: str, content_hashes: list[str]
) -> list[tuple[str, str]]:
    statuses = list(NOT_DUPLICATE_STATUSES)
    statement = (
        f"SELECT content_hash, id FROM {ITEMS.name} WHERE pipeline = ?"
        f" AND pipeline_version = ? AND content_hash IN ({', '.join('?' * len(content_hashes))})"
        f" AND status NOT IN ({', '.join('?' * len(statuses))}) ORDER BY created_at DESC"
    )
    parameters = (pipeline, version, *content_hashes, *statuses)
    return [
        (content_hash, item_id)
        for content_hash, item_id in connection.exec_driver_sql(statement, parameters)
    ]
