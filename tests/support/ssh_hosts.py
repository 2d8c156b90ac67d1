"""Two SSH "hosts" on this machine for the Ansible test: network namespaces running sshd.

Each host has a link to this machine (for SSH) and the two share a cluster link (for Ray):

    this machine 10.214.1.1 --- 10.214.1.2 host-a 10.214.3.1 --- 10.214.3.2 host-b
    this machine 10.214.2.1 ------------------------------------- 10.214.2.2 host-b

Only the network is separate: the hosts share the file system, PIDs and users with this
machine (see "SSH hosts for Ansible" in the design notes), so whatever the playbook installs
goes under a per-host folder. Everything that runs inside a namespace is killed when it is
removed; a run that crashed is cleaned up by the next one, under a machine-wide lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from support.netns import ClusterError, _ip, _kill

SSHD = Path("/usr/sbin/sshd")
LOCK_FILE = Path(tempfile.gettempdir()) / "conveyor-ssh-hosts.lock"
STATE_PREFIX = "cvans-"  # short: Ray's socket paths under each host's folder must stay < 108
CLUSTER_LINK = ("cvans-ab-a", "cvans-ab-b")


@dataclass(frozen=True)
class SshHost:
    name: str
    namespace: str
    ssh_ip: str  # reached from this machine
    cluster_ip: str  # reached from the other host
    host_link: str
    node_link: str

    @property
    def host_side_ip(self) -> str:
        return self.ssh_ip.rsplit(".", 1)[0] + ".1"


HOSTS = (
    SshHost("host-a", "cv-ans-a", "10.214.1.2", "10.214.3.1", "cvans-a-h", "cvans-a-n"),
    SshHost("host-b", "cv-ans-b", "10.214.2.2", "10.214.3.2", "cvans-b-h", "cvans-b-n"),
)


def ssh_unavailable() -> str | None:
    if not SSHD.exists():
        return "needs Debian's openssh-server (scripts/test-services.sh installs it)"
    if shutil.which("ssh-keygen") is None:
        return "needs ssh-keygen (openssh-client)"
    return None


@dataclass(frozen=True)
class SshHosts:
    base: Path  # a short folder of this run: keys, sshd files, each host's folder
    private_key: Path
    hosts: tuple[SshHost, ...]

    def host_root(self, host: SshHost) -> Path:
        return self.base / host.name[-1]

    def run_in(self, host: SshHost, command: list[str], **options) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def, type-arg]
        return subprocess.run(["ip", "netns", "exec", host.namespace, *command], **options)


@contextlib.contextmanager
def ssh_hosts() -> Iterator[SshHosts]:
    """Both hosts with sshd answering; removed afterwards with all they ran, even on failure."""
    with _machine_lock(timeout=300):
        remove_leftovers()
        base = Path(tempfile.mkdtemp(prefix=STATE_PREFIX, dir="/tmp"))
        try:
            key = _make_keys(base)
            _create_network()
            for host in HOSTS:
                _start_sshd(host, base)
            yield SshHosts(base, key, HOSTS)
        finally:
            _remove_network()
            shutil.rmtree(base, ignore_errors=True)


def remove_leftovers() -> None:
    _remove_network()
    for state in Path("/tmp").glob(f"{STATE_PREFIX}*"):
        shutil.rmtree(state, ignore_errors=True)


def namespace_processes(host: SshHost) -> list[psutil.Process]:
    processes = []
    for pid in _ip("netns", "pids", host.namespace, check=False).split():
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(int(pid)))
    return processes


def _make_keys(base: Path) -> Path:
    key = base / "id_ed25519"
    for path in (key, base / "host_ed25519"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
            check=True,
            capture_output=True,
        )
    shutil.copy(key.with_suffix(".pub"), base / "authorized_keys")
    return key


def _create_network() -> None:
    for host in HOSTS:
        _ip("netns", "add", host.namespace)
        _ip("-n", host.namespace, "link", "set", "lo", "up")
        _ip("link", "add", host.host_link, "type", "veth", "peer", "name", host.node_link)
        _ip("link", "set", host.node_link, "netns", host.namespace)
        _ip("addr", "add", f"{host.host_side_ip}/24", "dev", host.host_link)
        _ip("link", "set", host.host_link, "up")
        _address(host.namespace, host.node_link, host.ssh_ip)
    _ip("link", "add", CLUSTER_LINK[0], "type", "veth", "peer", "name", CLUSTER_LINK[1])
    for host, link in zip(HOSTS, CLUSTER_LINK, strict=True):
        _ip("link", "set", link, "netns", host.namespace)
        _address(host.namespace, link, host.cluster_ip)


def _address(namespace: str, link: str, ip: str) -> None:
    _ip("-n", namespace, "addr", "add", f"{ip}/24", "dev", link)
    _ip("-n", namespace, "link", "set", link, "up")


def _remove_network() -> None:
    listed = _ip("netns", "list", check=False).split()
    for host in HOSTS:
        if host.namespace in listed:
            _stop_all(host)
            _ip("netns", "delete", host.namespace)  # takes its veth pairs along
        if _ip("link", "show", host.host_link, check=False):
            _ip("link", "delete", host.host_link, check=False)  # may be going already


def _stop_all(host: SshHost) -> None:
    """SIGTERM (Ray nodes and `conveyor up` leave cleanly), then SIGKILL what is left."""
    processes = namespace_processes(host)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _gone, alive = psutil.wait_procs(processes, timeout=15)
    _kill(alive)


def _start_sshd(host: SshHost, base: Path) -> None:
    config = base / f"sshd-{host.name}.conf"
    config.write_text(
        f"ListenAddress {host.ssh_ip}\n"
        f"HostKey {base / 'host_ed25519'}\n"
        f"PidFile {base / f'sshd-{host.name}.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    log = base / f"sshd-{host.name}.log"
    started = subprocess.run(
        ["ip", "netns", "exec", host.namespace, str(SSHD), "-f", str(config), "-E", str(log)],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise ClusterError(f"sshd on {host.name} failed: {started.stderr}")
    _wait_for_port(host.ssh_ip, 22, timeout=30)


def _wait_for_port(ip: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((ip, port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ClusterError(f"nothing answers on {ip}:{port}") from None
            time.sleep(0.2)


@contextlib.contextmanager
def _machine_lock(timeout: float) -> Iterator[None]:
    """One run at a time on this machine: the namespace names and addresses are fixed."""
    deadline = time.monotonic() + timeout
    with LOCK_FILE.open("a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterError(f"another run held {LOCK_FILE} for {timeout:.0f}s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
