"""A Redis of its own (append-only file, fsync always) restarted mid-stream, while the consumer
process is also SIGKILLed twice: every message still becomes exactly one item or dead letter.
The shared Redis on 6379 is never restarted."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from conveyor.installation import Installation
from support.streams import (
    MESSAGES,
    add_test_source,
    assert_exactly_once,
    consume_while_killed_twice,
    publish_records_and_poison,
)
from support.up import free_port


class OwnRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        ]  # fmt: skip
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis("127.0.0.1", self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, (self.folder / "redis.log").read_text()
                time.sleep(0.05)

    def crash_and_restart(self) -> None:
        assert self.process is not None
        self.process.kill()  # no shutdown save: only what the append-only file holds survives
        self.process.wait()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder)
    server.start()
    yield server
    server.stop()


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
