"""Which database errors mean "the store cannot be reached right now" (retry later, 503) and
which are bugs or misconfiguration (500, not retried). The outage tests stop a real server;
these cover the cases a stopped server does not produce."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from conveyor.store.availability import StoreUnavailableError, store_unavailable


class _Refused(Exception):
    sqlstate: str | None = None


def _wrapped(orig: Exception, statement: str | None = "select 1", **kwargs: bool) -> DBAPIError:
    return OperationalError(statement, None, orig, **kwargs)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (_wrapped(_Refused("connection refused"), statement=None), True),
        (_wrapped(_Refused("server closed the connection"), connection_invalidated=True), True),
        (_wrapped(type("AdminShutdown", (_Refused,), {"sqlstate": "57P01"})("bye")), True),
        (_wrapped(type("CannotConnectNow", (_Refused,), {"sqlstate": "57P03"})("up")), True),
        (_wrapped(type("ConnectionFailure", (_Refused,), {"sqlstate": "08006"})("lost")), True),
        (_wrapped(type("Deadlock", (_Refused,), {"sqlstate": "40P01"})("deadlock")), False),
        (IntegrityError("insert", None, _Refused("duplicate key")), False),
        (RuntimeError("not a database error"), False),
    ],
)
def test_what_counts_as_an_unreachable_store(error: Exception, unavailable: bool) -> None:
    assert store_unavailable(error) is unavailable


def test_a_missing_table_is_not_an_outage(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
        connection.execute(text("select * from no_such_table"))
    assert isinstance(raised.value.orig, sqlite3.OperationalError)
    assert not store_unavailable(raised.value)
    engine.dispose()


def test_the_api_answer_of_an_unreachable_store() -> None:
    error = StoreUnavailableError("the store cannot be reached")
    assert error.http_status == 503 and error.http_headers() == {"Retry-After": "5"}
    assert error.http_body()["error"]["code"] == "store_unavailable"
