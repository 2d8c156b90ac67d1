"""A message that names a file under the storage root becomes a file item of a copy of it; one
that names anything else becomes a dead letter, and the named file is never moved or changed."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from conveyor.installation import Installation
from conveyor.store.models import Item
from conveyor.streams.brokers.base import Message
from conveyor.streams.intake import MessageIntake
from conveyor.streams.metrics import StreamMetrics
from conveyor.streams.tables import StreamDeadLetter, StreamMessage


def _message(number: int, body: dict[str, object]) -> Message:
    return Message(identity=f"test/{number}", payload=json.dumps(body).encode())


def test_messages_naming_stored_files_become_file_items(
    stream_installation: Installation,
) -> None:
    installation = stream_installation
    storage = installation.storage
    storage.write_bytes("incoming", "call-1.txt", b"hello stream world")
    messages = [
        _message(1, {"$file": "incoming/call-1.txt"}),
        _message(2, {"$file": f"{storage.url}/incoming/call-1.txt", "name": "again.txt"}),
        _message(3, {"$file": "../outside.txt"}),
        _message(4, {"$file": "/etc/passwd"}),
        _message(5, {"$file": "incoming/missing.txt"}),
        _message(6, {"n": 1}),  # a record, to a pipeline that takes files only
    ]
    intake = MessageIntake(installation.sessions, installation.submitter)

    outcome = intake.take("uploads", installation.registry.get("text_stats"), messages)

    assert outcome.items == 2
    metrics = StreamMetrics(CollectorRegistry())
    metrics.batch_taken("uploads", outcome, 0.05)
    sample = metrics.registry.get_sample_value
    assert sample("conveyor_stream_messages_total", {"source": "uploads", "outcome": "item"}) == 2
    labels = {"source": "uploads", "reason": "bad_file"}
    assert sample("conveyor_stream_dead_letters_total", labels) == 2
    with installation.sessions() as session:
        items = list(session.scalars(select(Item).order_by(Item.input_name)))
        reasons = sorted(letter.reason for letter in session.scalars(select(StreamDeadLetter)))
    assert [(i.kind, i.input_name, i.input_size) for i in items] == [
        ("file", "again.txt", 18),
        ("file", "call-1.txt", 18),
    ]
    for item in items:
        assert storage.open(item.work_dir, item.stored_name).read() == b"hello stream world"
    assert storage.open("incoming", "call-1.txt").read() == b"hello stream world"
    assert [reason.split(":")[0] for reason in reasons] == [
        "bad_file",
        "bad_file",
        "file_missing",
        "wrong_kind",
    ]


def test_a_message_repeated_within_one_batch_becomes_one_item(
    stream_installation: Installation,
) -> None:
    installation = stream_installation
    batch = [
        Message("t/1", b'{"n": 1}'),
        Message("t/2", b'{"n": 2}'),
        Message("t/1", b'{"n": 1}'),  # the same message twice in one batch
        Message("t/3", b'{"n": 3}'),
    ]
    intake = MessageIntake(installation.sessions, installation.submitter)

    outcome = intake.take("ordered", installation.registry.get("single"), batch)

    assert (outcome.items, outcome.duplicates) == (3, 1)
    with installation.sessions() as session:
        items = session.scalars(select(Item)).all()
        identities = session.execute(
            select(StreamMessage.identity, StreamMessage.item_id).order_by(StreamMessage.identity)
        ).all()
    by_id = {item.id: item.record["n"] for item in items}
    assert [(identity, by_id[item_id]) for identity, item_id in identities] == [
        ("t/1", 1),
        ("t/2", 2),
        ("t/3", 3),
    ]
