"""Anonymous callers cannot exhaust a running `conveyor up` (issue 13, findings 1 and 4): huge
bodies to the login are cut off at the body limit, parallel logins hash a few at a time, and the
login limits count per address, which a forged X-Forwarded-For cannot change.

Each test calls from its own loopback address (127.0.0.x), so each has its own login buckets on
the one server the module starts."""

from __future__ import annotations

import shutil
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from conveyor.auth.ratelimit import address_key
from conveyor.auth.service import add_user, create_token
from conveyor.installation import Installation
from conveyor.settings import load_settings
from support.up import ConveyorUp

MIB = 1 << 20
PASSWORD = "correct horse battery"
LOGIN = "/api/v1/auth/login"


class Server:
    def __init__(self, up: ConveyorUp, token: str) -> None:
        self.up, self.token = up, token
        self.process = psutil.Process(up.pid)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def client(self, address: str, **options) -> httpx.Client:  # type: ignore[no-untyped-def]
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=self.up.url, transport=transport, timeout=60, **options)


class PeakRss(threading.Thread):
    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server, self.peak, self.done = server, server.rss(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, self.server.rss())

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.join()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ray_cluster: str) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("limits")
    home, database_url = folder / "home", f"sqlite:///{folder / 'conveyor.db'}"
    installation = Installation(load_settings(home, database_url=database_url))
    with installation.sessions.begin() as session:
        add_user(session, "ada", PASSWORD, "admin")
        token = create_token(session, "watcher", "viewer")
    installation.close()
    up = ConveyorUp(
        home, {"CONVEYOR_DATABASE_URL": database_url}, "--no-inbox", "--ray-address", ray_cluster
    )
    try:
        up.wait_until_healthy()
        yield Server(up, token)
    finally:
        up.stop()
        shutil.rmtree(home / "storage", ignore_errors=True)


def _chunks(total: int) -> Iterator[bytes]:
    chunk = b'{"name": "' + b"a" * (MIB - 10)
    for _ in range(total // MIB):
        yield chunk


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_100_mib_login_body_is_refused_and_memory_stays_flat(
    server: Server, declared: bool
) -> None:
    size = 100 * MIB
    headers = {"content-type": "application/json"}
    if declared:
        headers["content-length"] = str(size)
    with server.client("127.0.0.2") as client, PeakRss(server) as memory:
        idle = server.rss()
        response = client.post(LOGIN, content=_chunks(size), headers=headers)
    growth = (memory.peak - idle) / MIB
    print(
        f"100 MiB login body ({'declared' if declared else 'chunked'}): RSS idle "
        f"{idle / MIB:.0f} MiB, peak {memory.peak / MIB:.0f} MiB (+{growth:.0f} MiB)"
    )
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large" and error["details"]["limit_bytes"] == MIB
    assert growth < 30, f"the server grew by {growth:.0f} MiB"
    with server.client("127.0.0.2") as client:  # and it still answers
        assert client.get("/healthz").status_code == 200


def _fail_login(client: httpx.Client, name: str, **headers: str) -> httpx.Response:
    return client.post(LOGIN, json={"name": name, "password": "wrong password"}, headers=headers)


def test_a_forged_x_forwarded_for_does_not_open_a_new_bucket(server: Server) -> None:
    with server.client("127.0.0.3") as client:
        assert [_fail_login(client, "ada").status_code for _ in range(5)] == [401] * 5
        for forged in ("203.0.113.7", "198.51.100.1, 127.0.0.1"):
            refused = _fail_login(client, "ada", **{"X-Forwarded-For": forged})
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "too_many_attempts"


def test_one_address_cannot_try_many_users(server: Server) -> None:
    with server.client("127.0.0.5") as client:
        answers = [_fail_login(client, f"user-{n}").status_code for n in range(31)]
    assert answers[:30] == [401] * 30 and answers[30] == 429


def _items_latency(client: httpx.Client) -> float:
    started = time.perf_counter()
    assert client.get("/api/v1/items").status_code == 200
    return time.perf_counter() - started


def test_30_parallel_logins_hash_a_few_at_a_time(server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    clients = [server.client("127.0.0.7") for _ in range(30)]  # made before: TLS setup costs
    with server.client("127.0.0.6", headers=auth) as watcher, ThreadPoolExecutor(30) as pool:
        idle_latency = statistics.median(_items_latency(watcher) for _ in range(5))
        idle = server.rss()
        with PeakRss(server) as memory:
            logins = [pool.submit(_random_login, client) for client in clients]
            latencies = []
            while not all(f.done() for f in logins):
                latencies.append(_items_latency(watcher))
            answers = [f.result() for f in logins]
    growth = (memory.peak - idle) / MIB
    print(
        f"30 parallel logins: RSS +{growth:.0f} MiB; GET /api/v1/items idle "
        f"{idle_latency * 1000:.0f} ms, during the logins median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"answers {sorted(s for s, _ in answers)}"
    )
    assert {status for status, _ in answers} <= {401, 503}
    assert all(retry == "1" for status, retry in answers if status == 503)
    assert growth < 4 * 64 + 64, f"the server grew by {growth:.0f} MiB"
    # Unbounded (login_concurrency=30): +958 MiB, median 312 ms, max 7.1 s on this machine.
    assert statistics.median(latencies) < max(0.25, 30 * idle_latency), latencies
    assert max(latencies) < 3.0, latencies


def _random_login(client: httpx.Client) -> tuple[int, str | None]:
    with client:
        response = _fail_login(client, uuid.uuid4().hex)
    return response.status_code, response.headers.get("retry-after")


def test_ipv6_clients_are_counted_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1" == address_key("192.0.2.1")
