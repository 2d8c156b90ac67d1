"""The Ansible monitoring role installs the shipped Alertmanager configuration
(deploy/alertmanager) rendered for the inventory: its alertmanager tasks run here against a
local host (no SSH, no apt, no systemd) into a temporary folder, and amtool checks the result.
A second run changes nothing. Costs about 15 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conveyor.cli.deploy import new_secrets, write_secrets_file
from support.alerting import SITE_SETTINGS, amtool, assert_routes, channels, webhook_urls
from support.installs import REPOSITORY

ANSIBLE = REPOSITORY / "deploy" / "ansible"
HEAD_IP = "10.0.0.10"
# The role's variables for SITE_SETTINGS, as a site sets them (group_vars or Vault).
SITE_VARIABLES = {
    "monitoring_slack_webhook_url": SITE_SETTINGS["ALERTMANAGER_SLACK_WEBHOOK_URL"],
    "monitoring_webhook_url": SITE_SETTINGS["ALERTMANAGER_WEBHOOK_URL"],
    "monitoring_smtp_smarthost": SITE_SETTINGS["ALERTMANAGER_SMTP_SMARTHOST"],
    "monitoring_smtp_from": SITE_SETTINGS["ALERTMANAGER_SMTP_FROM"],
    "monitoring_smtp_username": SITE_SETTINGS["ALERTMANAGER_SMTP_USERNAME"],
    "monitoring_smtp_password": SITE_SETTINGS["ALERTMANAGER_SMTP_PASSWORD"],
    "monitoring_oncall_email": SITE_SETTINGS["ALERTMANAGER_ONCALL_EMAIL"],
    "monitoring_ops_email": SITE_SETTINGS["ALERTMANAGER_OPS_EMAIL"],
}
PLAY = """
- hosts: monitoring
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: monitoring
        tasks_from: alertmanager
"""


def run_role(folder: Path, variables: dict[str, object]) -> str:
    inventory = folder / "inventory.ini"
    python = f"ansible_python_interpreter={sys.executable}"
    inventory.write_text(
        f"[head]\nhead1 conveyor_node_ip={HEAD_IP}\n"
        f"[monitoring]\nmon1 ansible_connection=local {python}\n"
    )
    (folder / "play.yml").write_text(PLAY)
    (folder / "vars.json").write_text(json.dumps(variables))
    env = os.environ | {
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ANSIBLE / "roles"),
        "ANSIBLE_HOME": str(folder / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(folder / "ansible" / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    command = [str(Path(sys.executable).parent / "ansible-playbook"), str(folder / "play.yml")]
    command += ["-i", str(inventory), "-e", f"@{folder / 'vars.json'}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    folder = tmp_path_factory.mktemp("ansible-alertmanager")
    secrets = new_secrets()
    write_secrets_file(folder / "secrets.env", secrets)
    variables = SITE_VARIABLES | {
        "conveyor_secrets_file": str(folder / "secrets.env"),
        "monitoring_alertmanager_dir": str(folder / "etc" / "conveyor-alertmanager"),
        "monitoring_alertmanager_group": "root",
        "monitoring_manage_services": False,
        "monitoring_link_url": "https://conveyor.example.org",
    }
    first = run_role(folder, variables)
    second = run_role(folder, variables)
    return folder / "etc" / "conveyor-alertmanager", secrets, first + "\n=====\n" + second


def test_the_role_installs_the_rendered_configuration(
    installed: tuple[Path, dict[str, str], str],
) -> None:
    folder, secrets, _ = installed
    assert "SUCCESS" in amtool(folder, "check-config", "alertmanager.yml")
    assert_routes(folder)
    config_file = folder / "alertmanager.yml"
    assert channels(config_file)["oncall"] == {"slack", "email", "webhook"}
    assert webhook_urls(config_file) == {
        f"http://{HEAD_IP}:8321/api/v1/alerts/webhook",
        SITE_SETTINGS["ALERTMANAGER_WEBHOOK_URL"],
    }
    token_file = folder / "secrets" / "conveyor-token"
    assert token_file.read_text() == secrets["CONVEYOR_ALERTS_TOKEN"]
    assert oct(token_file.stat().st_mode & 0o777) == "0o640"
    glob = yaml.safe_load(config_file.read_text())["global"]
    assert glob["slack_api_url_file"] == f"{folder}/secrets/slack-webhook-url"
    assert glob["smtp_auth_password_file"] == f"{folder}/secrets/smtp-password"
    template = (folder / "templates" / "conveyor.tmpl").read_text()
    assert "https://conveyor.example.org{{ end }}" in template


def test_a_second_run_changes_nothing(installed: tuple[Path, dict[str, str], str]) -> None:
    _, _, output = installed
    second = output.split("\n=====\n")[1]
    recap = second[second.rindex("PLAY RECAP") :]
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert SITE_SETTINGS["ALERTMANAGER_SMTP_PASSWORD"] not in output  # no_log on the render


def test_the_role_refuses_without_the_receiver_token(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="CONVEYOR_ALERTS_TOKEN"):
        run_role(tmp_path, {"monitoring_alertmanager_dir": str(tmp_path / "out")})
    assert not (tmp_path / "out").exists()
