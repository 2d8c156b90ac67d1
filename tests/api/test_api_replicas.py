"""Two API replicas (`conveyor serve`) on one PostgreSQL store and one storage folder, behind
HAProxy with the shipped deploy/haproxy/haproxy.cfg (issue 22): a session started on one
replica works on the other, CSRF included; login attempts count across replicas; a replica
that loses its store is taken out by the health check; a replica killed in the middle of an
upload leaves no item, the client can retry, and exactly one item results.

Replica 2 reaches PostgreSQL through a relay the test can cut (support/tcp_relay.py), so the
store goes away for that replica alone. The killed upload is 48 MiB;
CONVEYOR_TEST_REPLICA_UPLOAD_MIB sets another size."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, make_url, text

from conveyor.auth.service import add_user, create_token
from conveyor.ingest.abandoned import abandoned_work_dirs
from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.store.models import utcnow
from support.haproxy import HAPROXY, Balancer
from support.tcp_relay import TcpRelay
from support.up import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "correct horse battery"
MIB = 1 << 20
UPLOAD_MIB = int(os.environ.get("CONVEYOR_TEST_REPLICA_UPLOAD_MIB", "48"))

if not Path(HAPROXY).exists() and not os.environ.get("CI"):  # CI installs it
    pytest.skip("haproxy is not installed (scripts/test-services.sh)", allow_module_level=True)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Replica:
    """`conveyor serve` as an operator runs it behind the load balancer."""

    def __init__(self, folder: Path, name: str, env: dict[str, str]) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"{name}.out"
        command = [sys.executable, "-m", "conveyor.cli", "--home", str(folder / name), "serve"]
        command += ["--port", str(self.port)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )

    def healthy(self) -> bool:
        assert self.process.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
        return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200

    def has_open(self, fragment: str) -> bool:
        try:
            return any(fragment in f.path for f in psutil.Process(self.process.pid).open_files())
        except psutil.Error:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cluster:
    def __init__(self, balancer: Balancer, replicas: list[Replica], relay: TcpRelay, token: str):
        self.balancer, self.replicas, self.relay = balancer, replicas, relay
        self.auth = {"Authorization": f"Bearer {token}"}
        self.installation: Installation  # the store and the shared storage, for checks

    def client(self, url: str | None = None, **options) -> httpx.Client:  # type: ignore[no-untyped-def]
        return httpx.Client(base_url=url or self.balancer.url, timeout=60, **options)


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL on loopback; its URL."""
    name = f"conveyor_replicas_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {error}")
    yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_database: str) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("replicas")
    storage = folder / "shared-storage"
    parsed = make_url(postgres_database)
    relay = TcpRelay((parsed.host or "127.0.0.1", parsed.port or 5432))
    through_relay = parsed.set(port=relay.port).render_as_string(hide_password=False)
    common = {
        "CONVEYOR_STORAGE_URL": str(storage),
        "CONVEYOR_PIPELINES": "support.upload_pipelines",
        "CONVEYOR_FORWARDED_ALLOW_IPS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    started = time.monotonic()
    replicas = [
        Replica(folder, "api1", {**common, "CONVEYOR_DATABASE_URL": postgres_database}),
        Replica(folder, "api2", {**common, "CONVEYOR_DATABASE_URL": through_relay}),
    ]
    balancer = Balancer(folder, replicas)
    try:
        settings = load_settings(
            folder / "setup", database_url=postgres_database, storage_url=str(storage)
        )
        installation = Installation(settings)  # while the replicas start (one migrates)
        with installation.sessions.begin() as session:
            add_user(session, "ada", PASSWORD, "admin")
            token = create_token(session, "uploader", "operator")
        for replica in replicas:
            wait_for(replica.healthy, f"{replica.name} to start", 180)
        wait_for(lambda: set(balancer.states().values()) == {"UP"}, "both replicas UP")
        print(f"two replicas up behind HAProxy in {time.monotonic() - started:.1f} s")
        cluster = Cluster(balancer, replicas, relay, token)
        cluster.installation = installation
        yield cluster
        installation.close()
    finally:
        balancer.stop()
        for replica in replicas:
            replica.stop()
        relay.close()


def _log_in(client: httpx.Client) -> str:
    response = client.post("/api/v1/auth/login", json={"name": "ada", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def _small_upload(client: httpx.Client, name: str, **headers: str) -> httpx.Response:
    files = {"file": (name, name.encode() * 10)}  # each name its own content: no duplicate
    return client.post("/api/v1/items", data={"pipeline": "sizes"}, files=files, headers=headers)


def test_a_session_from_one_replica_works_on_the_other(cluster: Cluster) -> None:
    first, second = (cluster.client(replica.url) for replica in cluster.replicas)
    with first, second:
        csrf = _log_in(first)
        second.cookies = first.cookies
        assert second.get("/api/v1/auth/me").json()["name"] == "ada"
        refused = _small_upload(second, "no-csrf.txt")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        accepted = _small_upload(second, "with-csrf.txt", **{"X-CSRF-Token": csrf})
        assert accepted.status_code == 201, accepted.text
        assert second.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).is_success
        assert first.get("/api/v1/auth/me").status_code == 401  # logged out everywhere
    with cluster.client() as balanced:  # and through the balancer, whichever replica answers
        csrf = _log_in(balanced)
        answers = [balanced.get("/api/v1/auth/me").status_code for _ in range(6)]
        answers += [
            _small_upload(balanced, f"lb-{n}.txt", **{"X-CSRF-Token": csrf}).status_code
            for n in range(4)
        ]
        metrics = balanced.get("/metrics")  # no login needed: refused at HAProxy
    assert answers == [200] * 6 + [201] * 4
    assert metrics.status_code == 404


def _wrong_login(client: httpx.Client) -> httpx.Response:
    body = {"name": "grace", "password": "not her password"}
    return client.post("/api/v1/auth/login", json=body)


def test_login_attempts_count_across_replicas(cluster: Cluster) -> None:
    first, second = (cluster.client(replica.url) for replica in cluster.replicas)
    # Through HAProxy a client's own X-Forwarded-For is dropped: it opens no fresh bucket.
    forged = {"X-Forwarded-For": "203.0.113.9"}
    with first, second, cluster.client(headers=forged) as balanced:
        clients = [first, second, first, second, balanced]
        assert [_wrong_login(c).status_code for c in clients] == [401] * 5
        for client in (first, second, balanced):  # each replica has seen only 2 or 3 of them
            refused = _wrong_login(client)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "too_many_attempts"
            assert 1 <= int(refused.headers["retry-after"]) <= 61


def test_a_replica_without_its_store_is_taken_out(cluster: Cluster) -> None:
    balancer, api2 = cluster.balancer, cluster.replicas[1]
    cluster.relay.cut()
    cut_at = time.monotonic()
    try:
        ready = httpx.get(f"{api2.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["error"]["details"]["store"].startswith("error")
        wait_for(lambda: balancer.states()["api2"].startswith("DOWN"), "api2 DOWN", 20)
        down_after = time.monotonic() - cut_at
        # ... but not for predictions, which it answers from loaded models without its store.
        assert balancer.states("conveyor_predict") == {"api1": "UP", "api2": "UP"}
        with cluster.client(headers=cluster.auth) as balanced:
            answers = [balanced.get("/api/v1/items").status_code for _ in range(10)]
        assert answers == [200] * 10
    finally:
        cluster.relay.restore()
        restored_at = time.monotonic()
    wait_for(lambda: balancer.states()["api2"] == "UP", "api2 UP again", 20)
    print(
        f"api2 taken out {down_after:.1f} s after its store went away, back "
        f"{time.monotonic() - restored_at:.1f} s after it returned"
    )


class StallingUpload:
    """A multipart body that stops after ``stall_after`` bytes of the file until released,
    so the test can kill the replica receiving it half-way."""

    def __init__(self, name: str, size: int, stall_after: int) -> None:
        self.name, self.size, self.stall_after = name, size, stall_after
        self.boundary = uuid.uuid4().hex
        self.release = threading.Event()
        self.head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="pipeline"\r\n\r\n'
            f"sizes\r\n--{self.boundary}\r\nContent-Disposition: form-data; "
            f'name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def headers(self) -> dict[str, str]:
        length = len(self.head) + self.size + len(self.tail)
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(length),
        }

    def body(self, stall: bool) -> Iterator[bytes]:
        yield self.head
        chunk = bytes(range(256)) * (MIB // 256)
        for sent in range(0, self.size, MIB):
            if stall and sent == self.stall_after:
                self.release.wait(30)
            yield chunk[: min(MIB, self.size - sent)]
        yield self.tail


def _items_named(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    return client.get("/api/v1/items", params={"q": name}).json()["items"]


def _kill_the_receiver(cluster: Cluster, upload: StallingUpload) -> tuple[object, list[int]]:
    """Send ``upload`` through HAProxy, SIGKILL the replica receiving it half-way; returns
    what the client got and the item counts seen under its name meanwhile (on the survivor)."""
    outcome: list[object] = []

    def send() -> None:
        with cluster.client(headers=cluster.auth) as client:
            try:
                outcome.append(
                    client.post("/api/v1/items", content=upload.body(True), headers=upload.headers)
                )
            except httpx.TransportError as error:
                outcome.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: any(r.has_open(upload.name) for r in cluster.replicas), "the upload", 30)
    receiving = next(r for r in cluster.replicas if r.has_open(upload.name))
    surviving = next(r for r in cluster.replicas if r is not receiving)
    with cluster.client(surviving.url, headers=cluster.auth) as watcher:
        seen = [len(_items_named(watcher, upload.name))]
        receiving.process.send_signal(signal.SIGKILL)
        receiving.process.wait(10)
        upload.release.set()
        while sender.is_alive():
            seen.append(len(_items_named(watcher, upload.name)))
            time.sleep(0.1)
        sender.join()
        seen.append(len(_items_named(watcher, upload.name)))
    return outcome[0], seen


def test_a_replica_killed_mid_upload_leaves_no_item_and_the_retry_makes_one(
    cluster: Cluster,
) -> None:
    name = f"big-{uuid.uuid4().hex[:8]}.bin"
    upload = StallingUpload(name, UPLOAD_MIB * MIB, stall_after=8 * MIB)
    failed, seen = _kill_the_receiver(cluster, upload)
    print(f"the client saw: {failed!r}")
    if isinstance(failed, httpx.Response):
        assert failed.status_code in (502, 503), failed.text
        assert failed.headers.get("retry-after")
    else:
        assert isinstance(failed, httpx.TransportError)
    assert set(seen) == {0}, "a half-received upload was visible as an item"
    with cluster.client(headers=cluster.auth) as client:
        started = time.monotonic()
        retried = client.post("/api/v1/items", content=upload.body(False), headers=upload.headers)
        took = time.monotonic() - started
        assert retried.status_code == 201, retried.text
        again = client.post("/api/v1/items", content=upload.body(False), headers=upload.headers)
        items = _items_named(client, name)
    print(f"the retry of {UPLOAD_MIB} MiB took {took:.1f} s")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["item_id"] == retried.json()["item_id"]
    assert [(i["item_id"], i["input_size"]) for i in items] == [
        (retried.json()["item_id"], upload.size)
    ]
    # What the killed replica left: a work folder no item names, which maintenance removes
    # once it is a day old.
    storage, sessions = cluster.installation.storage, cluster.installation.sessions
    assert abandoned_work_dirs(storage, sessions) == []  # too young yet
    left = abandoned_work_dirs(storage, sessions, utcnow() + timedelta(days=2))
    assert len(left) == 1 and left[0].endswith(name), left
