"""A store (SQLite or PostgreSQL) with the test pipelines and no Ray, and a fresh Redis stream
per test on the Redis that runs on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conveyor.installation import Installation
from conveyor.settings import load_settings
from support.redis_streams import fresh_stream, loopback_redis


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
    client = loopback_redis()
    yield client
    client.close()


@pytest.fixture
def redis_stream(redis_client: redis.Redis) -> Iterator[str]:
    with fresh_stream(redis_client) as url:
        yield url
