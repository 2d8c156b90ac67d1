"""Fresh stream keys on the Redis that runs on loopback, for the tests of sinks and sources,
and reading back what a sink published."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from conveyor.streams.brokers import open_consumer

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def loopback_redis() -> redis.Redis:
    """A client of the loopback Redis; skips the test (fails it in CI) when none answers."""
    client = redis.Redis(REDIS_HOST, REDIS_PORT, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}")
        pytest.skip("Redis is not reachable on loopback")
    return client


@contextmanager
def fresh_stream(client: redis.Redis | None = None) -> Iterator[str]:
    """The URL of a stream key no other test uses; the key is deleted afterwards."""
    own = client is None
    client = client or loopback_redis()
    key = f"conveyor-test:{uuid.uuid4().hex[:12]}"
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{key}"
    finally:
        client.delete(key)
        if own:
            client.close()


def read_messages(url: str, limit: int = 100) -> list[Any]:
    """What the stream holds (up to ``limit``), read once by a consumer group of its own."""
    consumer = open_consumer(url, "test-reader", "reader", {})
    try:
        return list(consumer.fetch(limit, 1.0))
    finally:
        consumer.close()
