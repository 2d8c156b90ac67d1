"""Stream source tests that every broker shares: publish N records and 100 poison messages,
run `conveyor streams run` as a subprocess, SIGKILL it twice mid-stream, let a third run drain
the source, then check that each record became exactly one item and each poison message one
dead letter with its reason.

A broker's test passes its URL and, where it can, a check that nothing is left unacknowledged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.store.models import Item
from conveyor.streams.brokers import open_producer
from conveyor.streams.sources import SourceConfig, add_source
from conveyor.streams.tables import StreamDeadLetter, StreamMessage

TESTS = Path(__file__).parents[1]
MESSAGES = int(os.environ.get("CONVEYOR_STREAMS_TEST_MESSAGES", "2000"))
RECORD_SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
POISON = {
    "bad_json": [b'{"n": 1', b"n=1"],
    "not_an_object": [b"[1, 2]", b'"text"'],
    "schema": [b'{"n": "seven"}', b'{"m": 1}'],
    "not_utf8": [b"\xff\xfe{}", b'{"n": "\xe9"}'],
}


def add_test_source(
    installation: Installation,
    url: str,
    options: Mapping[str, str] | None = None,
    schema: dict[str, Any] | None = RECORD_SCHEMA,
    name: str = "readings",
) -> None:
    """A source of the `single` test pipeline, with the record schema the poison breaks."""
    config = SourceConfig(
        name=name,
        url=url,
        pipeline="single",
        group=f"conveyor-{name}",
        options=dict(options or {}),
        record_schema=schema,
    )
    with installation.sessions.begin() as session:
        add_source(session, config)


def poison_messages() -> list[tuple[str, bytes]]:
    """100 poison messages, 25 of each kind, each one distinct."""
    found = []
    for code, samples in POISON.items():
        for number in range(25):
            sample = samples[number % len(samples)]
            found.append((code, sample + b" " * (number // len(samples))))
    return found


def publish_records_and_poison(
    url: str, count: int = MESSAGES, options: Mapping[str, str] | None = None
) -> int:
    """``count`` records {"n": 0..count-1} with the poison spread among them; returns the
    number of messages published."""
    producer = open_producer(url, dict(options or {}))
    poison = poison_messages()
    every = max(1, count // len(poison))
    try:
        for n in range(count):
            producer.publish(json.dumps({"n": n}).encode())
            if n % every == 0 and n // every < len(poison):
                producer.publish(poison[n // every][1])
    finally:
        producer.close()
    return count + len(poison)


def taken(installation: Installation) -> int:
    with installation.sessions() as session:
        return session.scalar(select(func.count()).select_from(StreamMessage)) or 0


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            output = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}:\n{output}")
        time.sleep(0.02)


class StreamsRun:
    """`conveyor streams run NAME` as a user starts it, on the test's home and store."""

    def __init__(self, installation: Installation, name: str, log: Path, *extra: str) -> None:
        environment = os.environ | {
            "CONVEYOR_DATABASE_URL": installation.settings.resolved_database_url,
            "CONVEYOR_PIPELINES": "support.pipelines",
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        command = [sys.executable, "-m", "conveyor.cli", "--home", str(installation.settings.home)]
        command += ["streams", "run", name, "--batch-size", "50", *extra]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=environment, stdout=out, stderr=subprocess.STDOUT
            )


def consume_while_killed_twice(
    installation: Installation,
    total: int,
    log: Path,
    drained: Callable[[], bool] = lambda: True,
    restart_broker: Callable[[], None] | None = None,
    name: str = "readings",
    timeout: float = 180,
) -> None:
    """Run the source's consumer, SIGKILL it at a quarter and at half of ``total`` messages
    taken (restarting it each time), then let a third run take everything until ``drained``
    and stop it with SIGTERM. ``restart_broker``, when given, is called at a third, while the
    second run consumes: the consumer reconnects and may then take the rest in one burst (a
    broker holds a session's messages and sends them at once) before the second kill lands, so
    there the restart, not the kill, is the interruption the test must see mid-stream."""
    for number, kill_at in enumerate((total // 4, total // 2)):
        run = StreamsRun(installation, name, log)
        restarted = number == 1 and restart_broker is not None
        if restarted:
            wait_for(lambda: taken(installation) >= total // 3, timeout, "progress", log)
            assert taken(installation) < total, "the stream was drained before the restart"
            restart_broker()
        wait_for(lambda at=kill_at: taken(installation) >= at, timeout, "progress", log)
        run.process.kill()
        run.process.wait()
        assert restarted or taken(installation) < total, "the stream was drained before the kill"
    last = StreamsRun(installation, name, log)
    done = lambda: taken(installation) == total and drained()  # noqa: E731
    wait_for(done, timeout, "every message taken and acknowledged", log)
    last.process.send_signal(signal.SIGTERM)
    assert last.process.wait(timeout=60) == 0, log.read_text(errors="replace")


def assert_exactly_once(installation: Installation, count: int = MESSAGES) -> None:
    """Each record once as an item, none twice; each poison message one dead letter."""
    with installation.sessions() as session:
        records = [item.record["n"] for item in session.scalars(select(Item))]
        letters = list(session.scalars(select(StreamDeadLetter)))
    assert sorted(records) == list(range(count))
    assert Counter(letter.reason.split(":")[0] for letter in letters) == Counter(
        {code: 25 for code in POISON}
    )
    assert sorted(letter.payload for letter in letters) == sorted(p for _, p in poison_messages())
