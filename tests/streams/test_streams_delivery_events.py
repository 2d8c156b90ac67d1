"""Delivery steps as model events: each step `conveyor models deliver` records (the gate, the
canary, the promotion or rollback) is also an outbox row of the model's model-event sinks,
written in the step's transaction and published in order by the relay; here to a file sink."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conveyor.delivery.audit import AuditTrail, delivery_steps
from conveyor.installation import Installation
from conveyor.store.models import ModelEvent
from conveyor.streams.event_sinks import MODEL_EVENTS
from conveyor.streams.relay import OutboxRelay
from conveyor.streams.sinks import SinkConfig, add_sink
from support.sinks import outbox
from support.streams import wait_for

STEPS = [  # as DeliveryService records them
    ("gate", "passed", "roc_auc 0.91 >= 0.90", 3),
    ("register", "challenger", "", 3),
    ("canary", "started", "10% of heart-api to v3", 3),
    ("done", "rolled-back", "error rate 4% > 1%", 3),
]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_delivery_steps_reach_the_model_event_sinks_in_order(
    stream_installation: Installation, tmp_path: Path
) -> None:
    installation = stream_installation
    heart, other = tmp_path / "heart-events.jsonl", tmp_path / "other-events.jsonl"
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("heart", f"file://{heart}", "heart", {}, [MODEL_EVENTS]))
        add_sink(session, SinkConfig("every", f"file://{other}", "*", {}, [MODEL_EVENTS]))
        add_sink(session, SinkConfig("movies", f"file://{other}.m", "movies", {}, [MODEL_EVENTS]))
    audit = AuditTrail(installation.sessions, "heart", "d-1", "a" * 40)
    for step, outcome, detail, version in STEPS:
        audit.record(step, outcome, detail, version, item_id="item-1" if step == "gate" else None)
    assert outbox(installation) == 2 * len(STEPS)  # the heart sink and the every-model sink

    relay = OutboxRelay(installation, refresh_seconds=0.2)
    stop = threading.Event()
    thread = relay.start(stop)
    try:
        wait_for(lambda: outbox(installation) == 0, 60, "the outbox published", tmp_path / "x")
    finally:
        stop.set()
        thread.join(timeout=60)
    for path in (heart, other):
        events = [json.loads(line) for line in path.read_text().splitlines()]
        assert [(e["step"], e["outcome"], e["detail"], e["version"]) for e in events] == STEPS
        assert {(e["event"], e["model"], e["delivery_id"], e["commit"]) for e in events} == {
            ("delivery", "heart", "d-1", "a" * 40)
        }
        assert events[0]["item_id"] == "item-1" and len({e["event_id"] for e in events}) == 4
    assert not Path(f"{other}.m").exists()  # another model's sink got nothing
    with installation.sessions() as session:
        assert len(delivery_steps(session, "heart")) == len(STEPS)  # the audit trail as before
        assert session.scalar(select(func.count()).select_from(ModelEvent)) == len(STEPS)
