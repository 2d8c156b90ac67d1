"""Message identities are pruned by `conveyor maintenance` only when old enough and once the
source has taken messages well after them (any redelivery would have come back by then)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select

from conveyor.installation import Installation
from conveyor.retention.maintenance import run_maintenance
from conveyor.retention.policy import RetentionPolicy
from conveyor.streams.pruning import REDELIVERY_MARGIN, prunable_before
from conveyor.streams.sources import SourceConfig, add_source
from conveyor.streams.tables import StreamMessage

NOW = datetime(2026, 11, 29, 12, 0)
DAY = timedelta(days=1)


def test_identities_go_after_the_retention_and_the_redelivery_margin() -> None:
    assert prunable_before(NOW, None, NOW) is None  # kept forever
    assert prunable_before(NOW, 14, None) is None  # nothing taken yet
    assert prunable_before(NOW, 14, NOW) == NOW - 14 * DAY
    stopped = NOW - 20 * DAY  # the source's consumers stopped 20 days ago
    assert prunable_before(NOW, 14, stopped) == stopped - REDELIVERY_MARGIN


def _taken(installation: Installation, source: str, ages: dict[str, timedelta]) -> None:
    rows = [
        {"source": source, "identity": identity, "item_id": None, "received_at": NOW - age}
        for identity, age in ages.items()
    ]
    with installation.sessions.begin() as session:
        session.execute(insert(StreamMessage), rows)


def test_maintenance_prunes_only_identities_no_broker_can_redeliver(
    stream_installation: Installation,
) -> None:
    installation = stream_installation
    with installation.sessions.begin() as session:
        for name in ("busy", "stopped"):
            add_source(session, SourceConfig(name, f"redis://h/{name}", "single", name))
    _taken(installation, "busy", {"b-old": 20 * DAY, "b-15d": 15 * DAY, "b-new": timedelta(0)})
    # Its consumers stopped 15 days ago: what they took within the margin before may still be
    # pending in the broker (taken just before a consumer died), so it stays.
    last = 15 * DAY
    _taken(installation, "stopped", {"s-old": 16 * DAY, "s-late": last + timedelta(minutes=30)})
    _taken(installation, "stopped", {"s-last": last})

    report = run_maintenance(installation.sessions, RetentionPolicy(stream_messages_days=14), NOW)

    with installation.sessions() as session:
        kept = set(session.scalars(select(StreamMessage.identity)))
    assert kept == {"b-new", "s-late", "s-last"}
    assert report.pruned["stream_messages"] == 3
