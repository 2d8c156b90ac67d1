"""Issue 13: the embedded Ray instance listened on all interfaces, protected only by Ray's
default token. Started by :class:`RayExecutor` without an address, every Ray port (GCS, raylet,
object manager, agents, workers) must listen on loopback only, and a client without the token
must be refused.

The executor runs in a subprocess: this test session already shares one Ray instance
(``ray_cluster``), and a process joins one Ray only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

# Starts the embedded executor, runs a task, then reports every listening socket of the Ray
# processes it started, the node address, and what a client without the token and a connection
# through the machine's routable address got.
EMBEDDED = r"""
import json, os, socket, subprocess, sys
import psutil, ray
from conveyor.engine.contract import WorkerEnvironment
from conveyor.engine.executor import RayExecutor

RayExecutor(WorkerEnvironment(storage_url=os.getcwd()), None, 1)
assert ray.get(ray.remote(lambda: 1).options(num_cpus=0.1).remote()) == 1
gcs = ray.get_runtime_context().gcs_address
me = psutil.Process()
family = {p.pid: p for p in [me, *me.children(recursive=True)]}
listening = []
for connection in psutil.net_connections(kind="inet"):
    if connection.pid in family and connection.status == psutil.CONN_LISTEN:
        argv = family[connection.pid].cmdline()
        name = " ".join([os.path.basename(argv[0]), *argv[1:2]])[:80] if argv else ""
        listening.append([connection.laddr.ip, connection.laddr.port, name])

untrusted = subprocess.run(
    [sys.executable, "-c", sys.argv[1], gcs], capture_output=True, text=True, timeout=120,
    env={"PATH": os.environ["PATH"], "HOME": sys.argv[2]},
)
routable = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family == socket.AF_INET and not a.address.startswith("127.")]
refused = []
for address in routable:
    try:
        socket.create_connection((address, int(gcs.rsplit(":", 1)[1])), timeout=2).close()
        refused.append([address, False])
    except OSError:
        refused.append([address, True])
print(json.dumps({
    "gcs": gcs, "node": ray.nodes()[0]["NodeManagerAddress"], "listening": listening,
    "untrusted": (untrusted.stdout + untrusted.stderr)[-2000:], "routable": refused,
    "auth_mode": os.environ.get("RAY_AUTH_MODE"),
}))
ray.shutdown()
"""

# A local user without the token (no RAY_* variables, a HOME without ~/.ray/auth_token).
UNTRUSTED = r"""
import sys
from ray._raylet import GcsClient
try:
    client = GcsClient(address=sys.argv[1])
    print("CONNECTED", client.internal_kv_keys(b"", namespace=None))
except Exception as error:
    print("REFUSED", type(error).__name__, str(error)[:300])
"""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    home = tmp_path_factory.mktemp("nobody-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    command = [sys.executable, "-c", EMBEDDED, UNTRUSTED, str(home)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_ray_port_of_the_embedded_instance_listens_on_loopback_only(embedded: dict) -> None:  # type: ignore[type-arg]
    listening = embedded["listening"]
    exposed = [entry for entry in listening if entry[0] not in LOOPBACK]
    assert exposed == [], exposed
    names = " ".join(entry[2] for entry in listening)
    for process in ("gcs_server", "raylet", "ray::"):  # GCS; node manager + object manager; workers
        assert process in names, (process, listening)
    assert embedded["node"] == "127.0.0.1" and embedded["gcs"].startswith("127.0.0.1:")


def test_the_embedded_instance_refuses_clients_without_its_token(embedded: dict) -> None:  # type: ignore[type-arg]
    assert embedded["auth_mode"] == "token"
    assert embedded["untrusted"].startswith("REFUSED"), embedded["untrusted"]
    assert "AuthenticationError" in embedded["untrusted"] or "Auth" in embedded["untrusted"]


def test_the_gcs_port_is_closed_on_the_machines_routable_addresses(embedded: dict) -> None:  # type: ignore[type-arg]
    if not embedded["routable"]:
        pytest.skip("this machine has no routable IPv4 address")
    assert all(refused for _address, refused in embedded["routable"]), embedded["routable"]


def test_the_embedded_token_is_not_written_to_the_home_folder(tmp_path: Path) -> None:
    """Nothing of the embedded token outlives the process: no ~/.ray/auth_token is created."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {
        "HOME": str(tmp_path)
    }
    script = "from conveyor.engine.embedded_ray import prepare_embedded_ray as p; p(); import os;"
    script += "print(os.environ['RAY_AUTH_MODE'], len(os.environ['RAY_AUTH_TOKEN']))"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["token", "64"], done.stderr
    assert not (tmp_path / ".ray").exists()


@pytest.mark.parametrize(
    ("value", "cluster"), [("10.0.0.5:6379", "10.0.0.5:6379"), ("local", None), ("", None)]
)
def test_a_ray_address_in_the_environment_counts_as_a_cluster(
    monkeypatch: pytest.MonkeyPatch, value: str, cluster: str | None
) -> None:
    """ray.init joins RAY_ADDRESS when given none: that is a cluster, not the embedded Ray."""
    from conveyor.engine.executor import _ray_address_variable

    monkeypatch.setenv("RAY_ADDRESS", value)
    assert _ray_address_variable() == cluster
