"""The broker-less stream of the one-machine default: a JSON Lines file (file:///PATH). The
shared conformance checks that fit a file (no keys or headers, one reader per group); a writer
caught mid-line, a second consumer that takes over, a file that was truncated; and, end to end,
records and poison lines appended to the file become exactly one item or dead letter each while
`conveyor streams run` is SIGKILLed twice, on SQLite and PostgreSQL; `conveyor streams publish`
and `--train` with a file source."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.errors import ConfigurationError, InputRejectedError
from conveyor.installation import Installation
from conveyor.streams.brokers import check_url, open_consumer, open_producer
from conveyor.streams.brokers import file as file_broker
from conveyor.streams.brokers.base import Outgoing
from conveyor.streams.relay import OutboxRelay
from conveyor.streams.sinks import SinkConfig, add_sink
from support import broker_conformance as conformance
from support.sinks import finish_items, outbox
from support.streams import (
    add_test_source,
    assert_exactly_once,
    consume_while_killed_twice,
    publish_records_and_poison,
    wait_for,
)

RECORDS = 600


@pytest.fixture
def stream_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'readings.jsonl'}"


def test_conformance(tmp_path: Path) -> None:
    conformance.check_publish_fetch_unique(f"file://{tmp_path / 'a.jsonl'}", "g", {})
    conformance.check_unacked_redelivered_acked_not(f"file://{tmp_path / 'b.jsonl'}", "g", {})
    conformance.check_lag_decreases(f"file://{tmp_path / 'c.jsonl'}", "g", {})


def test_a_line_is_taken_once_its_newline_is_written(stream_url: str, tmp_path: Path) -> None:
    path = tmp_path / "readings.jsonl"
    consumer = open_consumer(stream_url, "g", "one", {})
    try:
        assert consumer.fetch(10, 0.1) == []  # no file yet: nothing, no error
        path.write_bytes(b'{"n": 1}\n\n{"n": 2')  # a blank line, then a writer mid-line
        [first] = consumer.fetch(10, 0.2)
        assert first.payload == b'{"n": 1}'
        assert consumer.fetch(10, 0.2) == []
        assert consumer.lag() == 2  # complete lines not acknowledged (the blank one too)
        with path.open("ab") as out:
            out.write(b"}\n")
        assert consumer.lag() == 3
        [second] = consumer.fetch(10, 1.0)
        assert second.payload == b'{"n": 2}'
        consumer.ack([first, second])
        assert consumer.lag() == 0
    finally:
        consumer.close()


def test_one_consumer_of_a_group_reads_and_another_takes_over(stream_url: str) -> None:
    conformance.publish(stream_url, 6, {})
    one = open_consumer(stream_url, "g", "one", {})
    two = open_consumer(stream_url, "g", "two", {})
    try:
        taken = one.fetch(3, 1.0)
        assert len(taken) == 3
        assert two.fetch(10, 0.2) == []  # waits while `one` holds the group
        one.ack(taken[:2])
        one.close()  # as if it died: the third line was never acknowledged
        rest = conformance.fetch_all(two, 4)
        assert conformance.payload_numbers(rest) == [2, 3, 4, 5]
        assert rest[0].identity == taken[2].identity
    finally:
        two.close()


def test_long_lines_json_over_lines_and_a_truncated_file(
    stream_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_broker, "READ_CHUNK", 16)
    producer = open_producer(stream_url, {})
    long = json.dumps({"text": "x" * 100}).encode()
    producer.publish_batch([Outgoing(long), Outgoing(b'{\n  "n": 1\n}')])
    with pytest.raises(InputRejectedError, match="line breaks and is not JSON"):
        producer.publish(b"two\nlines")
    consumer = open_consumer(stream_url, "g", "one", {})
    messages = conformance.fetch_all(consumer, 2)
    assert [m.payload for m in messages] == [long, b'{"n":1}']
    assert consumer.lag() == 2  # counted across chunks shorter than a line
    consumer.ack(messages[:1])
    assert consumer.lag() == 1
    consumer.ack(messages[1:])
    assert consumer.lag() == 0
    consumer.close()
    (tmp_path / "readings.jsonl").write_bytes(b'{"n": 9}\n')  # rewritten shorter in place
    again = open_consumer(stream_url, "g", "one", {})
    try:
        with pytest.raises(ConfigurationError, match=r"shrank .* remove .*\.readings\.jsonl\.g"):
            again.fetch(10, 0.2)
    finally:
        again.close()


def test_file_urls_are_checked() -> None:
    check_url("file:///var/data/readings.jsonl")
    for bad in ("file:readings.jsonl", "file://host/readings.jsonl"):
        with pytest.raises(InputRejectedError, match="absolute path with three slashes"):
            check_url(bad)
    with pytest.raises(ConfigurationError, match="start='soon'"):
        file_broker.parse_url("file:///tmp/x.jsonl?start=soon")


def test_appended_lines_become_exactly_one_item_each_while_the_consumer_is_killed_twice(
    stream_installation: Installation, stream_url: str, tmp_path: Path
) -> None:
    installation = stream_installation
    add_test_source(installation, stream_url)
    total = publish_records_and_poison(stream_url, RECORDS)
    consume_while_killed_twice(installation, total, tmp_path / "streams-run.log")
    assert_exactly_once(installation, RECORDS)
    consumer = open_consumer(stream_url, "conveyor-readings", "check", {})
    try:
        assert consumer.fetch(10, 0.2) == []  # everything was acknowledged
        assert consumer.lag() == 0
    finally:
        consumer.close()


def test_streams_publish_appends_to_a_file_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_PIPELINES", "support.pipelines")
    path = tmp_path / "readings.jsonl"
    home = str(tmp_path / "home")
    runner = CliRunner()

    def conveyor(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--home", home, *args])
        return result.exit_code, result.output

    code, output = conveyor("streams", "add", "local", "--url", f"file://{path}", "-p", "single")
    assert code == 0, output
    code, output = conveyor("streams", "publish", "local", '{"n": 1}', '{"n": 2}')
    assert code == 0 and "published 2 message(s)" in output, output
    lines = tmp_path / "more.jsonl"
    lines.write_text('{"n": 3}\n\n{"n": 4}\n')
    code, output = conveyor("streams", "publish", "local", "--file", str(lines))
    assert code == 0 and "published 2 message(s)" in output, output
    assert path.read_text().splitlines() == ['{"n": 1}', '{"n": 2}', '{"n": 3}', '{"n": 4}']
    code, output = conveyor("streams", "add", "rel", "--url", "file:x.jsonl", "-p", "single")
    assert code == 2 and "absolute path with three slashes" in output
    rows = f"file://{tmp_path / 'rows.jsonl'}"
    code, output = conveyor("streams", "add", "rows", "--url", rows, "--train", "heart")
    assert code == 0 and "training rows of model heart" in output, output
    assert "set models.heart.retrain_after_rows" in output
    code, output = conveyor("streams", "add", "both", "--url", rows, "--train", "heart", "-p", "x")
    assert code == 2 and "not both" in output
    code, output = conveyor("streams", "add", "none", "--url", rows, "--train", "single")
    assert code == 2 and "not a training pipeline" in output, output
    code, output = conveyor("streams", "list", "--json")
    listed = {source["name"]: source for source in json.loads(output)}
    assert (listed["rows"]["model"], listed["rows"]["rows"]) == ("heart", 0)
    assert listed["local"]["model"] is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_file_sink_receives_a_line_per_finished_item(
    stream_installation: Installation, tmp_path: Path
) -> None:
    installation = stream_installation
    path = tmp_path / "results.jsonl"
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("results", f"file://{path}", "single"))
    finished = finish_items(installation, 50)
    relay = OutboxRelay(installation, ["results"], refresh_seconds=0.2)
    stop = threading.Event()
    thread = relay.start(stop)
    try:
        wait_for(lambda: outbox(installation) == 0, 60, "the outbox published", tmp_path / "x")
    finally:
        stop.set()
        thread.join(timeout=60)
    bodies = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(body["item_id"] for body in bodies) == sorted(finished)
