"""The shipped Alertmanager configuration: amtool accepts it and its routing tree sends each
severity and component to the receivers docs/monitoring.md promises; render.py keeps that tree
while it sets a deployment's addresses, channels and secrets."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.alerting import (
    EXPECTED_ROUTES,
    RENDER_SCRIPT,
    SITE_SETTINGS,
    amtool,
    assert_routes,
    channels,
    render_alertmanager,
    routes,
    webhook_urls,
)

ALERTMANAGER_DIR = Path(__file__).parents[2] / "deploy" / "alertmanager"
RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"
TOKEN = "cvy_" + "t0" * 20


def test_amtool_check_config_passes() -> None:
    output = amtool(ALERTMANAGER_DIR, "check-config", "alertmanager.yml")
    assert "SUCCESS" in output and "3 inhibit rules" in output and "6 receivers" in output


@pytest.mark.parametrize(
    ("labels", "receivers"),
    EXPECTED_ROUTES,
    ids=lambda value: value if isinstance(value, str) else "-".join(value.values()),
)
def test_routing_tree(labels: dict[str, str], receivers: str) -> None:
    assert routes(ALERTMANAGER_DIR, **labels) == receivers


def test_every_shipped_alert_has_a_routable_severity_and_component() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        labels = rule["labels"]
        assert labels["severity"] in ("critical", "warning"), rule["alert"]
        assert labels["component"] in ("conveyor", "pipeline", "workers", "node", "serving")


def test_render_sets_a_sites_addresses_and_secrets(tmp_path: Path) -> None:
    settings = SITE_SETTINGS | {
        "CONVEYOR_ALERTS_TOKEN": TOKEN,
        "ALERTMANAGER_CONVEYOR_URL": "http://conveyor-api:8000/",
        "ALERTMANAGER_LINK_URL": "https://conveyor.example.net",
    }
    config_file = render_alertmanager(tmp_path, settings)
    assert "SUCCESS" in amtool(tmp_path, "check-config", "alertmanager.yml")
    assert_routes(tmp_path)
    config = yaml.safe_load(config_file.read_text())
    assert config["global"]["smtp_smarthost"] == "smtp.example.net:587"
    # Alertmanager reads these two from its working directory, not the config's folder.
    assert config["global"]["smtp_auth_password_file"] == f"{tmp_path}/secrets/smtp-password"
    assert config["global"]["slack_api_url_file"] == f"{tmp_path}/secrets/slack-webhook-url"
    assert webhook_urls(config_file) == {
        "http://conveyor-api:8000/api/v1/alerts/webhook",
        "https://pager.example.net/conveyor",
    }
    emails = {e["to"] for r in config["receivers"] for e in r.get("email_configs", [])}
    assert emails == {"oncall@example.net", "ops@example.net"}
    secrets = tmp_path / "secrets"
    assert (secrets / "conveyor-token").read_text() == TOKEN
    assert (secrets / "slack-webhook-url").read_text() == SITE_SETTINGS[
        "ALERTMANAGER_SLACK_WEBHOOK_URL"
    ]
    assert stat.S_IMODE((secrets / "smtp-password").stat().st_mode) == 0o600
    template = (tmp_path / "templates" / "conveyor.tmpl").read_text()
    assert '{{ define "conveyor.url" }}https://conveyor.example.net{{ end }}' in template


def test_render_switches_off_channels_not_set(tmp_path: Path) -> None:
    """A site without Slack, SMTP or a pager: Conveyor's receiver only, routes unchanged."""
    settings = {"CONVEYOR_ALERTS_TOKEN": TOKEN, "ALERTMANAGER_SLACK_WEBHOOK_URL": ""}
    config_file = render_alertmanager(tmp_path, settings)
    assert "SUCCESS" in amtool(tmp_path, "check-config", "alertmanager.yml")
    assert_routes(tmp_path)
    found = channels(config_file)
    assert found.pop("conveyor") == {"webhook"}
    assert all(kinds == set() for kinds in found.values()), found
    assert not any(
        key.startswith(("smtp_", "slack"))
        for key in yaml.safe_load(config_file.read_text())["global"]
    )


def test_render_refuses_without_the_receiver_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(RENDER_SCRIPT), str(tmp_path)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "CONVEYOR_ALERTS_TOKEN" in done.stderr
    assert list(tmp_path.iterdir()) == []
