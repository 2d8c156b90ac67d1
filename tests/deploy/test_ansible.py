"""deploy/ansible/site.yml over SSH turns two hosts into a Conveyor cluster that runs items on
both, and a second run changes nothing.

The hosts are network namespaces with sshd (``support.ssh_hosts``): host-a is head and serve,
host-b a worker and the load balancer (HAProxy, the ``lb`` role, in front of host-a's two
APIs). They have no systemd, so the playbook runs with ``conveyor_service_manager=process``: the
role writes the same unit files and its ``conveyor-unit`` starts each unit's
ExecStartPre/ExecStart from them (HAProxy is started with a PID file); ``systemd-analyze
verify`` checks those files. The hosts share this machine's file system, so each gets a folder
(``conveyor_root``), Conveyor is installed from the wheel of this work tree
(``--no-index --find-links``), the store is SQLite in a shared folder, and the dependencies
come from this environment through ``conveyor_venv_extra_paths`` (see ``support.installs``).
Because that leaves no ``ray`` script in the hosts' venvs, a two-line launcher stands in for it
(``conveyor_ray_command`` and the services' PATH).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from conveyor.cli.deploy import new_secrets
from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.store import queries
from conveyor.store.models import StepRun
from support.haproxy import HAPROXY, read_stats
from support.installs import REPOSITORY, add_setuptools, build_wheel, dependency_view
from support.netns import NODES_SCRIPT, require_netns
from support.ssh_hosts import SshHosts, ssh_hosts, ssh_unavailable

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(900)]
PLAYBOOK = REPOSITORY / "deploy" / "ansible" / "site.yml"
HEAD, WORKER = "host-a", "host-b"
RAY_PORT = 6379
LB_PORT, LB_STATS_PORT = 8080, 8404  # HAProxy on host-b
# `ray` as pip would have installed it: the python3 first on the services' PATH is the venv's.
RAY_LAUNCHER = '#!/bin/sh\nexec python3 -m ray.scripts.scripts "$@"\n'
UNITS = {
    HEAD: ["conveyor-ray-head", "conveyor-up", "conveyor-serve", "conveyor-node-exporter"],
    WORKER: ["conveyor-worker", "conveyor-node-exporter"],
}


class Deployment:
    def __init__(self, hosts: SshHosts) -> None:
        self.hosts = hosts
        self.by_name = {host.name: host for host in hosts.hosts}
        self.shared = hosts.base / "shared"
        self.secrets = new_secrets()
        self.database_url = f"sqlite:///{self.shared / 'conveyor.db'}"

    def prepare(self) -> None:
        """Wheelhouse, dependency view, `ray` launcher, inventory and variables."""
        base = self.hosts.base
        self.shared.mkdir()
        self.wheelhouse = build_wheel(base / "wheel").parent
        add_setuptools(self.wheelhouse)
        view = dependency_view(base / "dependencies")
        launcher = base / "bin" / "ray"
        launcher.parent.mkdir()
        launcher.write_text(RAY_LAUNCHER)
        launcher.chmod(0o755)
        (base / "inventory.ini").write_text(self._inventory())
        (base / "vars.json").write_text(json.dumps(self._variables(view, launcher)))

    def _inventory(self) -> str:
        lines = ["[head]", self._host_line(HEAD), "[workers]", self._host_line(WORKER)]
        stats = f"{self.by_name[WORKER].ssh_ip}:{LB_STATS_PORT}"
        lines += ["[serve]", HEAD, "[lb]", f"{WORKER} lb_bind=:{LB_PORT} lb_stats={stats}"]
        lines += ["[db]", "[monitoring]", "[all:vars]", "ansible_user=root"]
        lines += [
            f"ansible_ssh_private_key_file={self.hosts.private_key}",
            f"ansible_python_interpreter={sys.executable}",
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
        ]
        return "\n".join(lines) + "\n"

    def _host_line(self, name: str) -> str:
        host = self.by_name[name]
        root = self.hosts.host_root(host)
        address = f"ansible_host={host.ssh_ip} conveyor_node_ip={host.cluster_ip}"
        return f"{name} {address} conveyor_root={root}"

    def _variables(self, view: Path, launcher: Path) -> dict[str, object]:
        return {
            "conveyor_service_manager": "process",
            "conveyor_install_packages": False,
            "conveyor_become": False,
            "conveyor_user": "root",
            "conveyor_group": "root",
            "conveyor_python": sys.executable,
            "conveyor_venv_extra_paths": [str(view)],
            "conveyor_pip_extra_args": f"--no-index --find-links {self.wheelhouse}",
            "conveyor_ray_command": str(launcher),
            "conveyor_service_path": "{{ conveyor_venv }}/bin:"
            + f"{launcher.parent}:/usr/bin:/bin",
            "conveyor_ray_auth_token": self.secrets["RAY_AUTH_TOKEN"],
            "conveyor_admin_password": self.secrets["CONVEYOR_ADMIN_PASSWORD"],
            "conveyor_database_url": self.database_url,
            "conveyor_storage_url": str(self.shared / "storage"),
            "conveyor_head_cpus": 1,
            "conveyor_worker_cpus": 1,
            "conveyor_object_store_mb": 100,
            "conveyor_api_host": "0.0.0.0",  # reached from this machine over the SSH link
            "conveyor_serve_host": "0.0.0.0",
            "conveyor_serve_workers": 1,
            "conveyor_node_exporter_address": ":9100",
            "conveyor_no_log": False,
        }

    def run_playbook(self) -> str:
        base = self.hosts.base
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "CONVEYOR_"))}
        env |= {
            "ANSIBLE_CONFIG": str(PLAYBOOK.parent / "ansible.cfg"),
            "ANSIBLE_HOME": str(base / "ansible"),
            "ANSIBLE_LOCAL_TEMP": str(base / "ansible" / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(base / "ansible" / "remote"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(base / "cp"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_NOCOLOR": "1",
            "PYTHONPATH": "",
        }
        command = [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK)]
        command += ["-i", str(base / "inventory.ini"), "-e", f"@{base / 'vars.json'}"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + self.logs()
        return done.stdout

    def unit_files(self, name: str) -> list[Path]:
        folder = self.hosts.host_root(self.by_name[name]) / "etc" / "systemd" / "system"
        return [folder / f"{unit}.service" for unit in UNITS[name]]

    def pids(self) -> dict[str, str]:
        return {
            str(path): path.read_text()
            for path in sorted(self.hosts.base.glob("*/run/conveyor/*.pid"))
        }

    def logs(self, lines: int = 20) -> str:
        texts = []
        for path in sorted(self.hosts.base.glob("*/run/conveyor/*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            texts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(texts)

    def ray_nodes(self, timeout: float) -> list[dict[str, object]]:
        """Ray's nodes once both hosts' are alive, from a driver on the head host."""
        head = self.by_name[HEAD]
        wanted = json.dumps([host.cluster_ip for host in self.hosts.hosts])
        arguments = [f"{head.cluster_ip}:{RAY_PORT}", wanted, "[]", str(timeout)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.secrets["RAY_AUTH_TOKEN"]}
        done = self.hosts.run_in(
            head,
            [sys.executable, "-c", NODES_SCRIPT, *arguments],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout + 60,
        )
        assert done.returncode == 0, done.stderr[-3000:] + self.logs()
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_netns()
    reason = ssh_unavailable()
    if reason:
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    with ssh_hosts() as hosts:
        deployment = Deployment(hosts)
        started = time.monotonic()
        deployment.prepare()
        prepared = time.monotonic()
        deployment.first_run = deployment.run_playbook()
        print(f"prepare {prepared - started:.0f}s, first run {time.monotonic() - prepared:.0f}s")
        yield deployment


def _recap(output: str) -> dict[str, dict[str, int]]:
    recap = output[output.rindex("PLAY RECAP") :]
    hosts = {}
    for line in recap.splitlines()[1:]:
        if ":" in line:
            name, counts = line.split(":", 1)
            hosts[name.strip()] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return hosts


def _get(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_the_cluster_runs_items_on_both_hosts(deployment: Deployment, tmp_path: Path) -> None:
    recap = _recap(deployment.first_run)
    assert set(recap) == {HEAD, WORKER} and all(c["failed"] == 0 for c in recap.values())
    nodes = deployment.ray_nodes(timeout=120)
    node_ips = {node["id"]: node["ip"] for node in nodes if node["alive"]}
    assert sorted(node_ips.values()) == [h.cluster_ip for h in deployment.hosts.hosts]

    settings = load_settings(tmp_path / "home", database_url=deployment.database_url)
    installation = Installation(settings)
    try:
        installation.submitter.submit_records(
            "noop", [{"n": n, "sleep_ms": 200} for n in range(30)]
        )
        statuses = _wait_for_items(installation, count=30, timeout=180)
        with installation.sessions() as session:
            runs = list(session.scalars(select(StepRun)))
    finally:
        installation.close()
    assert statuses == {"succeeded": 30}, deployment.logs()
    assert {node_ips.get(run.node_id or "") for run in runs} == set(node_ips.values())


def _wait_for_items(installation: Installation, count: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        with installation.sessions() as session:
            statuses = queries.counts_by_status(session).get("noop", {})
        done = statuses.get("succeeded", 0) + statuses.get("failed", 0)
        if done >= count or time.monotonic() > deadline:
            return statuses
        time.sleep(0.5)


def test_api_serving_and_node_exporters_answer(deployment: Deployment) -> None:
    head, worker = deployment.hosts.hosts
    assert _get(f"http://{head.ssh_ip}:8321/readyz", timeout=60)
    assert _get(f"http://{head.ssh_ip}:8400/healthz", timeout=180)
    for host in (head, worker):
        assert "node_cpu_seconds_total" in _get(f"http://{host.ssh_ip}:9100/metrics", 30)


def test_the_load_balancer_spreads_requests_over_both_apis(deployment: Deployment) -> None:
    """host-b's HAProxy balances the head's `conveyor up` and host-a's `conveyor serve`: a login
    through it holds on both (sessions are in the store), and both answered requests."""
    head, balancer = deployment.hosts.hosts
    root = deployment.hosts.host_root(balancer)
    config = root / "etc" / "haproxy" / "haproxy.cfg"
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"server {HEAD}-head {head.cluster_ip}:8321" in config.read_text()
    assert f"server {HEAD}-serve {head.cluster_ip}:8400" in config.read_text()
    stats_url = f"http://{balancer.ssh_ip}:{LB_STATS_PORT}"
    servers = [f"{HEAD}-head", f"{HEAD}-serve"]

    def all_up() -> bool:
        rows = read_stats(stats_url)
        return all(rows.get(name, {}).get("status") == "UP" for name in servers)

    deadline = time.monotonic() + 180
    while not all_up():
        assert time.monotonic() < deadline, f"not both UP in HAProxy: {read_stats(stats_url)}"
        time.sleep(1)
    before = read_stats(stats_url)
    password = deployment.secrets["CONVEYOR_ADMIN_PASSWORD"]
    with httpx.Client(base_url=f"http://{balancer.ssh_ip}:{LB_PORT}", timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"name": "admin", "password": password})
        assert login.status_code == 200, login.text
        answers = [client.get("/api/v1/items", params={"limit": 1}) for _ in range(6)]
    assert [answer.status_code for answer in answers] == [200] * 6, answers[-1].text
    after = read_stats(stats_url)
    for name in servers:  # round robin: each API answered part of the seven requests
        assert int(after[name]["stot"]) > int(before[name]["stot"]), (before, after)


def test_a_second_run_changes_nothing(deployment: Deployment) -> None:
    before = deployment.pids()
    recap = _recap(deployment.run_playbook())
    assert {name: counts["changed"] for name, counts in recap.items()} == {HEAD: 0, WORKER: 0}
    assert deployment.pids() == before  # no service was restarted


def test_the_unit_files_pass_systemd_analyze_verify(deployment: Deployment) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    for host in (HEAD, WORKER):
        files = [str(path) for path in deployment.unit_files(host)]
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", *files], capture_output=True, text=True
        )
        assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_playbook_and_every_role_pass_the_syntax_check(tmp_path: Path) -> None:
    """Also the db and monitoring roles, which the deployment above does not run."""
    inventory = PLAYBOOK.parent / "inventory.example.ini"
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check"]
    env = os.environ | {"ANSIBLE_HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path)}
    env |= {"ANSIBLE_CONFIG": str(PLAYBOOK.parent / "ansible.cfg")}
    done = subprocess.run(
        [*command, "-i", str(inventory), str(PLAYBOOK)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
