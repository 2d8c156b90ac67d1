"""A store (SQLite or PostgreSQL) with the test pipelines and no Ray, and a fresh Redis stream
per test on the Redis that runs on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conveyor.installation import Installation
from conveyor.settings import load_settings

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@pytest.fixture
def stream_installation(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    settings = load_settings(
        tmp_path / "home", database_url=database_url, pipelines=["support.pipelines"]
    )
    installation = Installation(settings)
    yield installation
    installation.close()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis(REDIS_HOST, REDIS_PORT, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}")
        pytest.skip("Redis is not reachable on loopback")
    yield client
    client.close()


@pytest.fixture
def redis_stream(redis_client: redis.Redis) -> Iterator[str]:
    """The URL of a stream key no other test uses; the key is deleted afterwards."""
    key = f"conveyor-test:{uuid.uuid4().hex[:12]}"
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{key}"
    redis_client.delete(key)
