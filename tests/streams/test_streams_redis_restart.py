"""A Redis of its own (append-only file, fsync always) restarted mid-stream, while the consumer
process is also SIGKILLed twice: every message still becomes exactly one item or dead letter.
The shared Redis on 6379 is never restarted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conveyor.installation import Installation
from support.brokers import OwnRedis, running
from support.streams import (
    MESSAGES,
    add_test_source,
    assert_exactly_once,
    consume_while_killed_twice,
    publish_records_and_poison,
)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with running(OwnRedis(tmp_path / "redis")) as server:
        yield server


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_redis_restart_mid_stream_loses_and_duplicates_nothing(
    stream_installation: Installation, own_redis: OwnRedis, tmp_path: Path
) -> None:
    installation = stream_installation
    url = f"redis://127.0.0.1:{own_redis.port}/readings"
    add_test_source(installation, url, {"claim_idle_seconds": "1"})
    total = publish_records_and_poison(url, MESSAGES)
    client = redis.Redis("127.0.0.1", own_redis.port)

    def drained() -> bool:
        return client.xinfo_groups("readings")[0]["pending"] == 0

    consume_while_killed_twice(
        installation, total, tmp_path / "streams-run.log", drained, own_redis.crash_and_restart
    )

    assert_exactly_once(installation, MESSAGES)
    assert client.xinfo_groups("readings")[0]["lag"] == 0
