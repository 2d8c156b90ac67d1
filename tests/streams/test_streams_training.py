"""Training from a stream: a Redis stream, a NATS JetStream stream or a JSON Lines file feeds
the heart model's data trigger. Messages become labelled rows (payload kept), the trigger fires
once at its threshold and the run's dataset snapshot holds exactly the model's dataset plus
those rows; a redelivered message adds no row and poison messages land in the dead letters with
their reasons. On SQLite and PostgreSQL, against the brokers on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import nats
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from conveyor.installation import Installation
from conveyor.models.service import ModelOps
from conveyor.models.triggers import RowRule
from conveyor.pipelines.heart.data import synthetic_csv, synthetic_rows
from conveyor.settings import ModelSettings
from conveyor.store.models import Item, LabelledRow, utcnow
from conveyor.streams.brokers import open_consumer, open_producer
from conveyor.streams.consumer import ConsumerTuning
from conveyor.streams.metrics import StreamMetrics
from conveyor.streams.row_intake import RowIntake
from conveyor.streams.runner import StreamRunner
from conveyor.streams.sources import SourceConfig, add_source, get_source, source_counts
from conveyor.streams.tables import StreamDeadLetter, StreamMessage
from support.brokers import reachable
from support.polling import wait_for
from support.redis_streams import fresh_stream

THRESHOLD = 20
NATS_PORT = 4222
SOURCE = "heart-readings"
POISON = {
    b"{not json": "bad_json",
    json.dumps({"age": 63, "sex": 1}).encode(): "missing_column",
    b"[1, 2, 3]": "not_an_object",
}


def _message(cells: list[str], names: list[str]) -> bytes:
    values = {
        name: (float(c) if "." in c else int(c)) for name, c in zip(names, cells, strict=True)
    }
    return json.dumps({**values, "device": "w-17"}).encode()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "heart.csv"
    path.write_bytes(synthetic_csv(60, seed=8))
    return path


@pytest.fixture(params=["redis", "nats", "file"])
def source_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh stream on the Redis or NATS JetStream on loopback, or a JSON Lines file."""
    if request.param == "file":
        yield f"file://{tmp_path / 'readings.jsonl'}"
    elif request.param == "redis":
        with fresh_stream() as url:
            yield url
    else:
        if not reachable(NATS_PORT):
            pytest.skip("NATS is not reachable on loopback")
        name = f"conveyor-test-{uuid.uuid4().hex[:12]}"
        yield f"nats://127.0.0.1:{NATS_PORT}/{name}?subject={name}.rows"
        asyncio.run(_delete_nats_stream(name))


async def _delete_nats_stream(name: str) -> None:
    client = await nats.connect(f"nats://127.0.0.1:{NATS_PORT}")
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


def _train_from(installation: Installation, dataset: Path, url: str) -> Installation:
    """The heart model with a data trigger of THRESHOLD rows, fed by a training source."""
    installation.settings.models = {
        "heart": ModelSettings(dataset=str(dataset), retrain_after_rows=THRESHOLD)
    }
    options = {"claim_idle_seconds": "1"} if url.startswith("redis") else {}
    config = SourceConfig(SOURCE, url, "heart", "conveyor-heart", options, model="heart")
    with installation.sessions.begin() as session:
        add_source(session, config)
    return installation


@pytest.fixture
def trained(stream_installation: Installation, dataset: Path, redis_stream: str) -> Installation:
    return _train_from(stream_installation, dataset, redis_stream)


def _count(installation: Installation, model: type) -> int:
    with installation.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _consume_until(installation: Installation, done, what: str) -> CollectorRegistry:  # type: ignore[no-untyped-def]
    """Run the source's consumer until ``done``; the registry of its metrics."""
    registry = CollectorRegistry()  # a registry per runner: this test has two
    metrics = StreamMetrics(registry)
    runner = StreamRunner(
        installation, [SOURCE], ConsumerTuning(batch_size=7), refresh_seconds=0.2, metrics=metrics
    )
    stop = threading.Event()
    thread = runner.start(stop)
    try:
        wait_for(done, 60, what)
    finally:
        stop.set()
        thread.join(timeout=60)
    return registry


def test_messages_become_rows_and_train_once_on_exactly_those_rows(
    stream_installation: Installation, source_url: str, dataset: Path
) -> None:
    installation = _train_from(stream_installation, dataset, source_url)
    names = installation.registry.get("heart").schema.names  # type: ignore[attr-defined]
    rows = synthetic_rows(THRESHOLD + 5, seed=3, missing_rate=0)
    producer = open_producer(source_url, {})
    for cells in rows[:THRESHOLD]:
        producer.publish(_message(cells, names))
    for payload in POISON:
        producer.publish(payload)
    out_of_range = dict(zip(names, map(float, rows[0]), strict=True)) | {"sex": 2}
    producer.publish(json.dumps(out_of_range).encode())

    def taken() -> bool:
        return _count(installation, StreamMessage) == THRESHOLD + len(POISON) + 1

    registry = _consume_until(installation, taken, "every message taken")
    counted = {
        outcome: registry.get_sample_value(
            "conveyor_stream_messages_total", {"source": SOURCE, "outcome": outcome}
        )
        for outcome in ("row", "item", "dead_letter")
    }
    assert counted == {"row": THRESHOLD, "item": 0, "dead_letter": 4}
    ops = ModelOps(installation)
    assert ops.triggers.pending_rows("heart") == (THRESHOLD, THRESHOLD)
    with installation.sessions() as session:
        stored = list(session.scalars(select(LabelledRow).order_by(LabelledRow.id)))
        reasons = sorted(session.scalars(select(StreamDeadLetter.reason)))
        counts = source_counts(session, get_source(session, SOURCE))
    assert [row.values for row in stored] == rows[:THRESHOLD]
    assert stored[0].payload["device"] == "w-17"  # the payload is kept with the row
    assert {row.source for row in stored} == {f"stream:{SOURCE}"}
    assert (counts.rows, counts.items, counts.dead_letters) == (THRESHOLD, 0, 4)
    codes = sorted(reason.split(":")[0] for reason in reasons)
    assert codes == sorted([*POISON.values(), "out_of_range"])
    assert any("column 'sex': 2 is not one of 0, 1" in reason for reason in reasons)

    [item_id] = ops.triggers.fire_row_triggers()
    assert ops.triggers.fire_row_triggers() == []  # fired once at the threshold
    with installation.sessions() as session:
        record = session.get(Item, item_id).record  # type: ignore[union-attr]
    assert record["new_rows"] == {"fire": 1, "new": THRESHOLD, "total": THRESHOLD}
    snapshot = installation.storage.local_path(*record["dataset"].rsplit("/", 1))
    assert snapshot is not None
    expected = (
        dataset.read_bytes()
        + ("\n" + "\n".join(",".join(cells) for cells in rows[:THRESHOLD]) + "\n").encode()
    )
    assert snapshot.read_bytes() == expected
    assert record["dataset_sha256"] == hashlib.sha256(expected).hexdigest()

    for cells in rows[THRESHOLD:]:  # fewer than the threshold: they wait
        producer.publish(_message(cells, names))
    _consume_until(installation, lambda: ops.triggers.pending_rows("heart")[0] == 5, "5 rows")
    assert ops.triggers.fire_row_triggers() == []
    assert _count(installation, Item) == 1
    producer.close()


def test_a_redelivered_message_adds_no_row(trained: Installation, redis_stream: str) -> None:
    installation = trained
    names = installation.registry.get("heart").schema.names  # type: ignore[attr-defined]
    producer = open_producer(redis_stream, {})
    for cells in synthetic_rows(3, seed=4, missing_rate=0):
        producer.publish(_message(cells, names))
    producer.close()
    intake, pipeline = RowIntake(installation.sessions), installation.registry.get("heart")
    first = open_consumer(redis_stream, "conveyor-heart", "first", {})
    batch = first.fetch(10, 1.0)
    assert intake.take(SOURCE, pipeline, batch).rows == 3
    first.close()  # committed, never acknowledged: as if killed between commit and ack

    again = open_consumer(redis_stream, "conveyor-heart", "first", {})
    redelivered = again.fetch(10, 1.0)
    assert [m.identity for m in redelivered] == [m.identity for m in batch]
    outcome = intake.take(SOURCE, pipeline, redelivered)
    again.ack(redelivered)
    again.close()
    assert (outcome.rows, outcome.duplicates) == (0, 3)
    assert _count(installation, LabelledRow) == 3


def test_rows_older_than_the_time_limit_start_a_run(
    stream_installation: Installation, dataset: Path
) -> None:
    installation = stream_installation
    installation.settings.models = {
        "heart": ModelSettings(
            dataset=str(dataset), retrain_after_rows=1000, retrain_after_minutes=10
        )
    }
    ops = ModelOps(installation)
    csv_rows = "\n".join(",".join(r) for r in synthetic_rows(2, seed=5, missing_rate=0))
    ops.triggers.add_rows("heart", csv_rows.encode(), "wearable")
    assert ops.triggers.fire_row_triggers(utcnow() + timedelta(minutes=9)) == []
    [item_id] = ops.triggers.fire_row_triggers(utcnow() + timedelta(minutes=11))
    assert ops.triggers.fire_row_triggers(utcnow() + timedelta(minutes=30)) == []
    with installation.sessions() as session:
        assert session.get(Item, item_id).record["new_rows"]["new"] == 2  # type: ignore[union-attr]


def test_row_rule() -> None:
    now = utcnow()
    old, fresh = now - timedelta(minutes=6), now - timedelta(minutes=1)
    assert RowRule(after_rows=3).due(3, fresh, now)
    assert not RowRule(after_rows=3).due(2, old, now)
    assert RowRule(after_rows=3, after_minutes=5).due(1, old, now)
    assert not RowRule(after_rows=3, after_minutes=5).due(1, fresh, now)
    assert not RowRule(after_minutes=5).due(0, None, now)
    assert not RowRule().configured


def test_a_row_committed_after_a_fire_waits_for_the_next_one(
    stream_installation: Installation, dataset: Path, database_url: str
) -> None:
    """A slower transaction's row (a smaller id, committed after the fire) is neither lost nor
    counted in the run that did not see it: each run's rows are exactly those it marked."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one writer at a time: no row can commit during a fire")
    installation = stream_installation
    installation.settings.models = {
        "heart": ModelSettings(dataset=str(dataset), retrain_after_rows=2)
    }
    ops = ModelOps(installation)
    lines = [",".join(r).encode() for r in synthetic_rows(4, seed=6, missing_rate=0)]
    slow = installation.sessions()
    slow.add(LabelledRow(model="heart", values=lines[0].decode().split(","), source="slow"))
    slow.flush()  # its id is taken, its transaction still open
    ops.triggers.add_rows("heart", b"\n".join(lines[1:3]), "fast")
    [first] = ops.triggers.fire_row_triggers()
    slow.commit()
    slow.close()
    assert ops.triggers.pending_rows("heart") == (1, 3)
    ops.triggers.add_rows("heart", lines[3], "fast")
    [second] = ops.triggers.fire_row_triggers()
    with installation.sessions() as session:
        records = [session.get(Item, i).record for i in (first, second)]  # type: ignore[union-attr]
    assert [r["new_rows"] for r in records] == [
        {"fire": 1, "new": 2, "total": 2},
        {"fire": 2, "new": 2, "total": 4},
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_training_source_through_the_api(stream_installation: Installation) -> None:
    from fastapi.testclient import TestClient

    from conveyor.api.app import create_app

    client = TestClient(create_app(stream_installation, auth_required=False))
    body = {"name": "rows", "url": "file:///var/data/heart.jsonl", "model": "heart"}
    added = client.post("/api/v1/streams", json=body)
    assert added.status_code == 201, added.text
    assert (added.json()["model"], added.json()["pipeline"], added.json()["rows"]) == (
        "heart",
        "heart",
        0,
    )
    both = client.post("/api/v1/streams", json={**body, "name": "b", "pipeline": "single"})
    assert both.status_code == 422 and "not both" in both.json()["error"]["message"]
    untrainable = client.post("/api/v1/streams", json={**body, "name": "c", "model": "single"})
    assert untrainable.status_code == 422, untrainable.text
    listed = client.get("/api/v1/streams").json()["sources"]
    assert [source["name"] for source in listed] == ["rows"]
    page = client.get("/streams")
    assert page.status_code == 200, page.text
    assert "training rows of heart" in page.text and "0 rows" in page.text
