"""A 1 GiB upload through `conveyor up`, streamed by the client, with the server's memory
watched while it arrives."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.settings import load_settings
from support.up import ConveyorUp

GIB = 1 << 30
CHUNK = 1 << 20
MAX_GROWTH = 32 * 1024 * 1024  # docs/api.md: "a 1 GiB upload adds a few MiB to the server"
MIN_SAMPLES = 20
BOUNDARY = "conveyor-large-upload-boundary"


def _chunk(index: int) -> bytes:
    """Distinct, cheap content per MiB, so a lost or repeated chunk changes the hash."""
    return index.to_bytes(8, "big") * (CHUNK // 8)


def _multipart(size: int) -> tuple[Iterator[bytes], int, str]:
    """A multipart body of `pipeline` and a `size`-byte file, generated chunk by chunk."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="pipeline"\r\n\r\nsizes\r\n'
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    digest = hashlib.sha256()
    for index in range(size // CHUNK):
        digest.update(_chunk(index))

    def body() -> Iterator[bytes]:
        yield head
        for index in range(size // CHUNK):
            yield _chunk(index)
        yield tail

    return body(), len(head) + size + len(tail), digest.hexdigest()


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children, sampled until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, self.rss())
            self.samples += 1
            time.sleep(self.interval)

    def rss(self) -> int:
        """The server's RSS plus its children's; raises if the server itself cannot be read."""
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:  # a child that ended between listing and reading
                continue
        return total


@pytest.fixture
def server(tmp_path: Path, ray_cluster: str) -> Iterator[tuple[str, str, int]]:
    """`conveyor up` with a sizes pipeline; yields (base URL, operator token, pid)."""
    home = tmp_path / "home"
    database_url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    installation = Installation(load_settings(home, database_url=database_url))
    with installation.sessions.begin() as session:
        token = create_token(session, "big-upload", "operator")
    installation.close()
    env = {"CONVEYOR_DATABASE_URL": database_url, "CONVEYOR_PIPELINES": "support.upload_pipelines"}
    up = ConveyorUp(home, env, "--no-inbox", "--ray-address", ray_cluster)
    try:
        up.wait_until_healthy()
        yield up.url, token, up.pid
    finally:
        up.stop()
        shutil.rmtree(home / "storage", ignore_errors=True)


@pytest.mark.slow
def test_one_gib_upload_keeps_server_memory_flat(server) -> None:  # type: ignore[no-untyped-def]
    base, token, pid = server
    body, length, expected_sha256 = _multipart(GIB)
    upload_headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(length),
    }
    sampler = RssSampler(pid)
    idle_rss = sampler.rss()
    sampler.start()
    started = time.monotonic()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=600) as client:
        response = client.post("/api/v1/items", content=body, headers=upload_headers)
        seconds = time.monotonic() - started
        sampler.stopped.set()
        sampler.join()
        print(
            f"1 GiB upload: {seconds:.1f} s; server RSS idle {idle_rss / 2**20:.0f} MiB, "
            f"peak {sampler.peak / 2**20:.0f} MiB"
        )
        assert response.status_code == 201, response.text
        item_url = f"/api/v1/items/{response.json()['item_id']}"
        item = client.get(item_url).json()
        assert item["input"] == "big.bin" and item["input_size"] == GIB
        assert item["content_hash"] == expected_sha256
        assert sampler.samples >= MIN_SAMPLES, f"only {sampler.samples} memory samples"
        growth = sampler.peak - idle_rss
        assert growth < MAX_GROWTH, f"RSS grew {growth / 2**20:.0f} MiB over idle"
        assert _wait_for_result(client, item_url) == {"bytes": GIB, "name": "big.bin"}


def _wait_for_result(client: httpx.Client, item_url: str) -> object:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        item = client.get(item_url).json()
        if item["status"] in ("succeeded", "failed", "cancelled"):
            return item["result"] if item["status"] == "succeeded" else item
        time.sleep(0.5)
    raise AssertionError(f"the item did not finish: {item}")
