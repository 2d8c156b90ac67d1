"""A two-node Ray cluster on one machine: the second node runs in a network namespace.

The head binds to the host end of a veth pair and the second node, started with
``conveyor worker`` inside the namespace, to the other end, so the two nodes reach each other
over a real network link. Why each Ray setting is here: see "A second Ray node on this
machine" in the design notes. Everything started here is stopped by PID, and the next run
cleans up after one that crashed (under a machine-wide lock, so never after a live run).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import pytest

NAMESPACE = "conveyor-2node"
HOST_LINK, NODE_LINK = "cv2node-host", "cv2node-ns"  # interface names: at most 15 characters
HOST_IP, NODE_IP = "10.213.0.1", "10.213.0.2"
TEMP_ROOT = Path(tempfile.gettempdir())
STATE_PREFIX = "conveyor-netns-"
LOCK_FILE = TEMP_ROOT / "conveyor-netns.lock"
LEDGER_FILE = "processes.jsonl"
SETUP_SECONDS = 60.0
OBJECT_STORE_MB = 100
BIN = Path(sys.executable).parent

# Connects a driver to the cluster and prints its nodes once every wanted IP has a live node
# that is not excluded (or the deadline passes). A subprocess because the test process may
# already be connected to the session's local Ray, and a process joins one cluster only.
NODES_SCRIPT = """
import json, sys, time
import ray
address, wanted, excluded, seconds = sys.argv[1], *map(json.loads, sys.argv[2:4]), sys.argv[4]
ray.init(address=address, log_to_driver=False, logging_level="ERROR")
deadline = time.monotonic() + float(seconds)
while True:
    nodes = [{"id": n["NodeID"], "ip": n["NodeManagerAddress"], "alive": n["Alive"]}
             for n in ray.nodes()]
    live = {n["ip"] for n in nodes if n["alive"] and n["id"] not in excluded}
    if set(wanted) <= live or time.monotonic() > deadline:
        break
    time.sleep(0.2)
print(json.dumps(nodes))
"""


class ClusterError(RuntimeError):
    pass


def netns_unavailable() -> str | None:
    """Why this machine cannot host the second node, or None if it can."""
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if listed.returncode != 0:
        return f"`ip netns list` failed: {listed.stderr.strip()}"
    return None


def require_netns() -> None:
    """Skip where namespaces are unavailable, but fail in CI, which must run these tests."""
    reason = netns_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the two-node tests {reason}; CI must run them as root with iproute2")
    pytest.skip(f"two-node tests: {reason}")


@contextlib.contextmanager
def two_node_cluster() -> Iterator[TwoNodeCluster]:
    """A running head plus second node; everything is removed afterwards, even on failure."""
    with _machine_lock(timeout=SETUP_SECONDS * 3):
        remove_leftovers()
        base = Path(tempfile.mkdtemp(prefix=STATE_PREFIX, dir=TEMP_ROOT))
        cluster = TwoNodeCluster(base)
        try:
            _create_namespace()
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
            _remove_namespace()
            shutil.rmtree(base, ignore_errors=True)


def remove_leftovers() -> None:
    """Stop what an earlier crashed run left behind: its processes, namespace and folders."""
    for state in TEMP_ROOT.glob(f"{STATE_PREFIX}*"):
        ProcessLedger(state / LEDGER_FILE).kill_all()
        shutil.rmtree(state, ignore_errors=True)
    _remove_namespace()


class TwoNodeCluster:
    """The processes of one two-node cluster and the environment they all share."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ledger = ProcessLedger(base / LEDGER_FILE)
        self.head_address = f"{HOST_IP}:{_free_port()}"
        self.env = _cluster_environment()
        self.node_ips: dict[str, str] = {}  # every node id seen, dead or alive, to its IP
        self._head: subprocess.Popen[bytes] | None = None
        self._second_node: subprocess.Popen[bytes] | None = None
        self._lost_nodes: set[str] = set()

    def start(self) -> None:
        deadline = time.monotonic() + SETUP_SECONDS
        self._head = self._spawn("head", self._head_command())
        self._wait_for_output(self._head, "head", "Ray runtime started", deadline)
        self.ledger.record(_family(self._head.pid))
        self.start_second_node(deadline)

    def start_second_node(self, deadline: float | None = None) -> None:
        """Start (or restart) the second node and wait until the head sees it alive."""
        deadline = deadline or time.monotonic() + SETUP_SECONDS
        _kill(_namespace_processes())
        self._second_node = self._spawn("second-node", self._second_node_command())
        self.wait_for_nodes([HOST_IP, NODE_IP], deadline)

    @property
    def second_node(self) -> subprocess.Popen[bytes] | None:
        """The second node's ``conveyor worker`` process."""
        return self._second_node

    def restart_head(self, down_seconds: float = 0.0) -> None:
        """SIGKILL the head's processes, as a machine losing power would, and start it again
        on the same address after ``down_seconds``; the second node is left to itself."""
        if self._head is not None:
            # Not all of them descend from `ray start`: find the rest by their session folder.
            _kill([*_family(self._head.pid), *_naming(self.base / "head")])
            self._head.wait(timeout=10)
        # `ray start --head` refuses an address that a process on this machine names (here
        # the second node's, another host in real life) when its temp folder records it.
        (self.base / "head" / "ray_current_cluster").unlink(missing_ok=True)
        time.sleep(down_seconds)
        log = self.base / "head.log"
        start = log.stat().st_size if log.exists() else 0
        self._head = self._spawn("head", self._head_command())
        deadline = time.monotonic() + SETUP_SECONDS
        self._wait_for_output(self._head, "head", "Ray runtime started", deadline, start)
        self.ledger.record(_family(self._head.pid))

    def ensure_second_node(self) -> None:
        if self._second_node is None or self._second_node.poll() is not None:
            self.start_second_node()

    def wait_for_nodes(self, ips: Iterable[str], deadline: float) -> dict[str, str]:
        """Node id -> IP of the live nodes, once each of ``ips`` has one (new ones only)."""
        arguments = [json.dumps(list(ips)), json.dumps(sorted(self._lost_nodes))]
        seconds = max(deadline - time.monotonic(), 1.0)
        command = [sys.executable, "-c", NODES_SCRIPT, self.head_address, *arguments]
        command.append(str(seconds))
        try:
            listed = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=seconds + 30
            )
        except subprocess.TimeoutExpired as error:
            raise ClusterError(f"listing nodes timed out\n{self.logs()}") from error
        if listed.returncode != 0:
            raise ClusterError(f"listing nodes failed: {listed.stderr[-2000:]}\n{self.logs()}")
        nodes = json.loads(listed.stdout.strip().splitlines()[-1])
        self.node_ips |= {node["id"]: node["ip"] for node in nodes}
        live = {n["id"]: n["ip"] for n in nodes if n["alive"] and n["id"] not in self._lost_nodes}
        if not set(ips) <= set(live.values()):
            raise ClusterError(f"nodes {sorted(ips)} not all up: {nodes}\n{self.logs()}")
        return live

    def crash_second_node(self, busy_titles: set[str], timeout: float = 60.0) -> str:
        """SIGKILL every process of the second "host" while one of them runs a step.

        The processes are frozen first and killed only if a worker shows one of
        ``busy_titles`` (Ray names a busy worker ``ray::<task name>``), so a step is surely
        lost; returns that title. Killing only the raylet is not enough: its worker notices
        about a second later and a short step still reports back.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            processes = _namespace_processes()
            _signal(processes, signal.SIGSTOP)
            busy = [title for title in map(_title, processes) if title in busy_titles]
            if busy:
                _kill(processes)
                self._lost_nodes |= {i for i, ip in self.node_ips.items() if ip == NODE_IP}
                if self._second_node is not None:
                    self._second_node.wait(timeout=10)
                return busy[0]
            _signal(processes, signal.SIGCONT)
            time.sleep(0.05)
        raise ClusterError(f"no step ran on the second node within {timeout}s\n{self.logs()}")

    @contextlib.contextmanager
    def controller(self, home: Path, database_url: str) -> Iterator[subprocess.Popen[bytes]]:
        """``conveyor up`` on this cluster, stopped with SIGTERM on exit."""
        command = [str(BIN / "conveyor"), "--home", str(home), "up", "--no-inbox", "--no-api"]
        command += ["--metrics-port", str(_free_port())]
        command += ["--ray-address", self.head_address]
        env = self.env | {"CONVEYOR_DATABASE_URL": database_url}
        process = self._spawn(f"controller-{home.parent.name}", command, env)
        self.ledger.record([psutil.Process(process.pid)])
        try:
            yield process
        finally:
            _stop(process, grace=30)

    def stop(self) -> None:
        for process in (self._second_node, self._head):
            if process is not None:
                _stop(process, grace=20)
        _kill(_namespace_processes())
        self.ledger.kill_all()

    def logs(self, lines: int = 15) -> str:
        return "\n".join(_tail(path, lines) for path in sorted(self.base.glob("*.log")))

    # -- private -----------------------------------------------------------------------------

    def _head_command(self) -> list[str]:
        return [
            str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
            f"--node-ip-address={HOST_IP}",
            f"--port={self.head_address.rsplit(':', 1)[1]}",
            "--num-cpus=1",
            f"--object-store-memory={OBJECT_STORE_MB * 1024 * 1024}",
            f"--temp-dir={self.base / 'head'}",
            "--include-dashboard=false",
            # Their defaults (52365, 10001) may be taken by another Ray on this machine.
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}",
        ]  # fmt: skip

    def _second_node_command(self) -> list[str]:
        return [
            "ip", "netns", "exec", NAMESPACE,
            str(BIN / "conveyor"), "worker", "--head", self.head_address,
            "--node-ip-address", NODE_IP, "--num-cpus", "1",
            "--object-store-mb", str(OBJECT_STORE_MB),
            "--temp-dir", str(self.base / "second-node"),
        ]  # fmt: skip

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.base / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                command, env=env or self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def _wait_for_output(
        self,
        process: subprocess.Popen[bytes],
        name: str,
        text: str,
        deadline: float,
        start: int = 0,
    ) -> None:
        """Until ``text`` is in the log after its first ``start`` bytes."""
        log = self.base / f"{name}.log"
        while text not in log.read_bytes()[start:].decode(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                state = "exited" if process.returncode is not None else "timed out"
                raise ClusterError(f"{name} {state} before {text!r}\n{self.logs()}")
            time.sleep(0.1)


class ProcessLedger:
    """PIDs (with start times, so a reused PID is never hit) of what a run started."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, processes: Iterable[psutil.Process]) -> None:
        with self.path.open("a") as ledger:
            for process in processes:
                ledger.write(json.dumps([process.pid, process.create_time()]) + "\n")

    def kill_all(self) -> None:
        if not self.path.exists():
            return
        alive = []
        for line in self.path.read_text().splitlines():
            pid, created = json.loads(line)
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if abs(process.create_time() - created) < 0.01:
                    alive.append(process)
        _kill(alive)


def _cluster_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return env | {
        # One token for every process: a head started while ~/.ray/auth_token exists turns
        # token auth on, and any process without the token then loops on InvalidAuthToken.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        # Notice a dead node in about 2 s instead of 15 s; safe on a loaded 2-core machine.
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_failure_threshold": "4",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def _create_namespace() -> None:
    _ip("netns", "add", NAMESPACE)
    _ip("link", "add", HOST_LINK, "type", "veth", "peer", "name", NODE_LINK)
    _ip("link", "set", NODE_LINK, "netns", NAMESPACE)
    _ip("addr", "add", f"{HOST_IP}/24", "dev", HOST_LINK)
    _ip("link", "set", HOST_LINK, "up")
    _ip("-n", NAMESPACE, "addr", "add", f"{NODE_IP}/24", "dev", NODE_LINK)
    _ip("-n", NAMESPACE, "link", "set", NODE_LINK, "up")
    _ip("-n", NAMESPACE, "link", "set", "lo", "up")


def _remove_namespace() -> None:
    if NAMESPACE in _ip("netns", "list").split():
        _kill(_namespace_processes())
        _ip("netns", "delete", NAMESPACE)  # takes the veth pair with it
    if _ip("link", "show", HOST_LINK, check=False):  # a run that crashed half-way
        # the kernel may still be removing the pair with the namespace: gone either way
        _ip("link", "delete", HOST_LINK, check=False)


def _namespace_processes() -> list[psutil.Process]:
    processes = []
    for pid in _ip("netns", "pids", NAMESPACE, check=False).split():
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(int(pid)))
    return processes


def _ip(*arguments: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise ClusterError(f"`ip {' '.join(arguments)}` failed: {done.stderr.strip()}")
    return done.stdout if done.returncode == 0 else ""


def _family(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _naming(folder: Path) -> list[psutil.Process]:
    """The processes whose command line names ``folder`` (a node's temp folder)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if str(folder) in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; its descendants go too."""
    if process.poll() is not None:
        return
    family: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        family = _family(process.pid)
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    _kill(family[1:])


def _signal(processes: Iterable[psutil.Process], signum: int) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signum)


def _kill(processes: list[psutil.Process]) -> None:
    _signal(processes, signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


def _title(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline()).strip()
    except psutil.Error:
        return ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- {path.name} ---\n" + "\n".join(text)


@contextlib.contextmanager
def _machine_lock(timeout: float) -> Iterator[None]:
    """One two-node cluster per machine: the namespace, addresses and links are fixed."""
    deadline = time.monotonic() + timeout
    with LOCK_FILE.open("a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"another test run held {LOCK_FILE} for {timeout:.0f}s"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
