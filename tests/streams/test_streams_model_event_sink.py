"""Model events through the outbox: a registration with its promotion and a later rollback,
recorded as the registrar and `conveyor models rollback` record them, become exactly one message
each on a Redis sink of the model, with the event id as key; another model's sink gets none."""

from __future__ import annotations

import json
import threading
import time

from conveyor.installation import Installation
from conveyor.models import history
from conveyor.models.promotion import CHAMPION, PROMOTE, ROLLBACK, AliasChange
from conveyor.streams.event_sinks import MODEL_EVENTS
from conveyor.streams.relay import OutboxRelay
from conveyor.streams.sinks import SinkConfig, add_sink
from support.redis_streams import read_messages
from support.sinks import finish_items, outbox


def test_model_events_are_published_once_each(
    stream_installation: Installation, redis_stream: str
) -> None:
    sessions = stream_installation.sessions
    with sessions.begin() as session:
        add_sink(session, SinkConfig("heart-events", redis_stream, "heart", {}, [MODEL_EVENTS]))
        add_sink(session, SinkConfig("other-events", redis_stream, "other", {}, [MODEL_EVENTS]))
    item_id = next(iter(finish_items(stream_installation, 1)))
    stale = history.stale_cutoff(60)
    assert history.claim_registration(sessions, item_id, "heart", "registrar", stale)
    promotion = AliasChange(CHAMPION, None, 1, PROMOTE)
    with sessions.begin() as session:
        assert history.finish_registration(
            session, item_id, "registrar", 1, "run-1", [(promotion, "first")], "promotion gate"
        )
    with sessions.begin() as session:
        rollback = AliasChange(CHAMPION, 2, 1, ROLLBACK)
        history.record_change(session, "heart", rollback, "alice", "v2 worse")

    stop = threading.Event()
    relay = OutboxRelay(stream_installation, refresh_seconds=0.2)
    thread = relay.start(stop)  # as `conveyor up` runs it: the relay names the key's header
    try:
        deadline = time.monotonic() + 30
        while outbox(stream_installation) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outbox(stream_installation) == 0
    finally:
        stop.set()
        thread.join(30)

    messages = read_messages(redis_stream)
    bodies = [json.loads(message.payload) for message in messages]
    assert [body["event"] for body in bodies] == ["new_version", "promote", "rollback"]
    assert all(body["model"] == "heart" for body in bodies)
    assert bodies[0]["version"] == 1 and bodies[0]["run_id"] == "run-1"
    assert bodies[0]["item_id"] == item_id
    assert (bodies[1]["from_version"], bodies[1]["to_version"]) == (None, 1)
    assert bodies[1]["actor"] == "promotion gate"
    assert (bodies[2]["from_version"], bodies[2]["to_version"]) == (2, 1)
    assert (bodies[2]["actor"], bodies[2]["reason"]) == ("alice", "v2 worse")
    keys = [message.key.decode() for message in messages if message.key]
    assert keys == [body["event_id"] for body in bodies] and len(set(keys)) == 3
    assert [message.headers["conveyor-event-id"] for message in messages] == keys
