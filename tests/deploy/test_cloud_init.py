"""deploy/cloud-init/worker.yaml is valid cloud-config whose files work: the worker's start
script finds the node's address on the route to the head, and its unit passes
``systemd-analyze verify``. (Booting a VM with it is not possible here.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.installs import REPOSITORY

USER_DATA = REPOSITORY / "deploy" / "cloud-init" / "worker.yaml"
START_SCRIPT = "/opt/conveyor/bin/conveyor-worker-start"
UNIT = "/etc/systemd/system/conveyor-worker.service"


@pytest.fixture(scope="module")
def files() -> dict[str, dict[str, Any]]:
    text = USER_DATA.read_text()
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert {"packages", "write_files", "runcmd"} <= set(config)
    return {entry["path"]: entry for entry in config["write_files"]}


def test_the_start_script_finds_the_address_on_the_route_to_the_head(
    files: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    script = files[START_SCRIPT]["content"]
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    # Everything but the final exec of the installed conveyor, then print what it found.
    probe = script.replace("exec /opt/conveyor/venv/bin/conveyor", 'echo "$node_ip" #')
    found = subprocess.run(
        ["sh", "-c", probe],
        env={"CONVEYOR_HEAD": "127.0.0.1:6379", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True,
        text=True,
    )
    assert found.stdout.strip() == "127.0.0.1", found.stderr


def test_the_worker_unit_passes_systemd_analyze_verify(
    files: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    unit = files[UNIT]["content"]
    assert f"ExecStart={START_SCRIPT}\n" in unit
    for path in ("/etc/conveyor/conveyor.env", "/etc/conveyor/head"):
        assert f"EnvironmentFile={path}\n" in unit and path in files
    # verify wants the programs to exist: point ExecStart at one that does.
    checked = tmp_path / "conveyor-worker.service"
    checked.write_text(unit.replace(START_SCRIPT, shutil.which("true") or "/bin/true"))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(checked)], capture_output=True, text=True
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_environment_file_turns_on_ray_token_auth(files: dict[str, dict[str, Any]]) -> None:
    lines = files["/etc/conveyor/conveyor.env"]["content"].splitlines()
    assert "RAY_AUTH_MODE=token" in lines
    assert not any(line.startswith("CONVEYOR_DATABASE_URL") for line in lines)  # workers: none
