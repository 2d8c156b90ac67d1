"""While the store cannot be reached, a background loop logs one warning for the outage and
one info line when it is back, not a traceback per attempt; any other error keeps its
traceback on every attempt. The loops are driven against a PostgreSQL cluster of the test's
own, stopped and started again (the shared one is never stopped)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conveyor.errors import ConveyorError
from conveyor.store.outage_log import OutageLog
from support.polling import wait_for
from support.throwaway_postgres import new_database, throwaway_postgres
from support.up import free_port

LOGGER = "tests.outage_logging"
TEST_PIPELINES = "support.pipelines"
UNREACHABLE = "store unreachable, "
BACK = "store reachable again, "


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    refusing = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    outage = OutageLog("test loop", 2.0, logging.getLogger(LOGGER))
    for _ in range(3):
        with outage.attempt("the round failed"), refusing.connect():
            pass
    assert outage.store_down
    with outage.attempt("the round failed"):
        pass  # the store answered
    with outage.attempt("the round failed"):
        pass
    records = lines(caplog, LOGGER)
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    warning, info = (r.getMessage() for r in records)
    assert warning.startswith("store unreachable, test loop paused: OperationalError: ")
    assert "Connection refused" in warning and "\n" not in warning
    assert warning.endswith("; retrying every 2 s")
    assert info.startswith("store reachable again, test loop resumed")
    assert all(r.exc_info is None for r in records)


def test_an_error_raised_from_an_unreachable_store_counts_as_the_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    refusing = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    outage = OutageLog("test loop", 0.5, logging.getLogger(LOGGER))
    for _ in range(2):
        with outage.attempt("the round failed"):
            try:
                refusing.connect()
            except Exception as error:
                raise ConveyorError("could not list the jobs") from error
    [record] = lines(caplog, LOGGER)
    assert record.levelname == "WARNING" and record.exc_info is None
    assert record.getMessage().endswith("; retrying every 0.5 s")


def test_other_errors_keep_their_traceback_every_round(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    store = create_engine(f"sqlite:///{tmp_path}/store.db")
    outage = OutageLog("test loop", 2.0, logging.getLogger(LOGGER))
    for _ in range(3):
        with outage.attempt("the round failed"), store.connect() as connection:
            connection.execute(text("select * from no_such_table"))
    records = lines(caplog, LOGGER)
    assert [r.getMessage() for r in records] == ["the round failed"] * 3
    assert all(r.levelname == "ERROR" and r.exc_info for r in records)
    assert not outage.store_down


# Refused at connect (OperationalError), or a pooled connection the shutdown ended (psycopg's
# AdminShutdown, SQLSTATE 57P01): whichever a loop meets first.
REASONS = ("OperationalError: ", "AdminShutdown: ")


def test_up_loops_log_a_store_outage_in_one_line_each(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from conveyor.installation import Installation
    from conveyor.models.service import ModelOps
    from conveyor.scoring.worker import ScoringWorker
    from conveyor.settings import load_settings
    from conveyor.streams.relay import OutboxRelay, RelayTuning
    from conveyor.streams.runner import StreamRunner
    from conveyor.streams.sinks import SinkConfig, add_sink
    from conveyor.streams.sources import SourceConfig, add_source

    caplog.set_level(logging.INFO, logger="conveyor")
    with throwaway_postgres() as cluster:
        settings = load_settings(
            tmp_path / "home", database_url=new_database(cluster), pipelines=[TEST_PIPELINES]
        )
        installation = Installation(settings)
        with installation.sessions.begin() as session:  # a consumer and a sink relay run too
            add_source(session, SourceConfig("local", f"file://{tmp_path}/in.jsonl", "single", "g"))
            add_sink(session, SinkConfig("out", f"file://{tmp_path}/out.jsonl", "single"))
        ops = ModelOps(installation)
        worker = ScoringWorker(installation, poll_seconds=0.1)
        runner = StreamRunner(installation, refresh_seconds=0.1)
        relay = OutboxRelay(installation, tuning=RelayTuning(idle_seconds=0.1), refresh_seconds=0.1)
        loops = (worker, runner, relay)
        stop = threading.Event()
        threads = [loop.start(stop) for loop in loops]
        try:
            wait_for(lambda: "local" in runner.running and "out" in relay.running, 60, "threads")
            ops.tick()
            cluster.stop()
            wait_for(lambda: all(x.outage.store_down for x in loops), 60, "the outage seen")
            for _ in range(3):
                ops.tick()
            consumer = runner.statuses()["local"]
            wait_for(lambda: "OperationalError" in str(consumer.error), 60, "the consumer's")
            time.sleep(1.0)  # about ten more rounds of each loop while the store is away
            cluster.start()
            wait_for(lambda: not any(x.outage.store_down for x in loops), 60, "the return seen")
            ops.tick()
            time.sleep(2.5)  # the consumer and the sink relay try again (a 1-2 s back-off)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            installation.close()
    for logger, loop in (
        ("conveyor.models.service", "model operations"),
        ("conveyor.scoring.worker", "scoring worker"),
        ("conveyor.streams.runner", "stream sources runner"),
        ("conveyor.streams.relay", "stream sinks relay"),
    ):
        records = lines(caplog, logger)
        messages = [r.getMessage() for r in records]
        assert [r.levelname for r in records] == ["WARNING", "INFO"], (logger, messages)
        assert messages[0].startswith(tuple(f"{UNREACHABLE}{loop} paused: {r}" for r in REASONS))
        assert messages[1].startswith(f"{BACK}{loop} resumed")
        assert all(r.exc_info is None for r in records)
