"""The compose stack's Alertmanager runs the shipped configuration (deploy/alertmanager) rendered
for the stack: the test takes the render service's command and environment from
`docker-compose config` (no Docker engine needed), runs it here, and checks the result with
amtool. Costs about 10 s."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.alerting import SITE_SETTINGS, amtool, assert_routes, channels, webhook_urls
from support.docker_stack import COMPOSE_FILE

SOURCE = COMPOSE_FILE.parents[1] / "alertmanager"
TOKEN = "cvy_" + "k3" * 20
STACK_SECRETS = {
    "POSTGRES_PASSWORD": "p" * 24,
    "RAY_AUTH_TOKEN": "r" * 24,
    "CONVEYOR_ADMIN_PASSWORD": "a" * 24,
    "CONVEYOR_ALERTS_TOKEN": TOKEN,
}


def compose_config(folder: Path, values: dict[str, str]) -> dict[str, Any]:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must check the compose file, but docker-compose is not installed")
        pytest.skip("docker-compose is not installed (scripts/test-services.sh)")
    env_file = folder / "stack.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    command = ["docker-compose", "-p", "amtest", "-f", str(COMPOSE_FILE)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ALERTMANAGER_")}
    done = subprocess.run(
        [*command, "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def run_render_service(config: dict[str, Any], out: Path) -> Path:
    """The alertmanager-config service's command, here: its mounts mapped to local folders."""
    service = config["services"]["alertmanager-config"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert Path(mounts["/etc/alertmanager-source"]).resolve() == SOURCE.resolve()
    assert mounts["/etc/alertmanager"] == "alertmanager-config"
    script, target, *options = service["command"][1:]
    local = {"/etc/alertmanager-source": str(SOURCE), "/etc/alertmanager": str(out)}
    script = script.replace("/etc/alertmanager-source", local["/etc/alertmanager-source"])
    options = [option for option in options if not option.startswith("--owner")]
    environment = {"PATH": "/usr/bin:/bin", **service["environment"]}
    done = subprocess.run(
        [sys.executable, script, local[target], *options],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return out / "alertmanager.yml"


def test_alertmanager_reads_what_the_render_service_writes(tmp_path: Path) -> None:
    services = compose_config(tmp_path, STACK_SECRETS)["services"]
    alertmanager = services["alertmanager"]
    assert "alertmanager-config:/etc/alertmanager:ro" in alertmanager["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert alertmanager["depends_on"]["alertmanager-config"] == {
        "condition": "service_completed_successfully"
    }
    assert services["init"]["environment"]["CONVEYOR_ALERTS_TOKEN"] == TOKEN


def test_the_stack_without_channels_delivers_to_conveyor_at_the_head(tmp_path: Path) -> None:
    config = compose_config(tmp_path, STACK_SECRETS)
    config_file = run_render_service(config, tmp_path / "rendered")
    folder = config_file.parent
    assert "SUCCESS" in amtool(folder, "check-config", "alertmanager.yml")
    assert_routes(folder)
    assert webhook_urls(config_file) == {"http://head:8000/api/v1/alerts/webhook"}
    found = channels(config_file)
    assert found.pop("conveyor") == {"webhook"} and not any(found.values())
    assert (folder / "secrets" / "conveyor-token").read_text() == TOKEN


def test_the_stacks_channel_settings_reach_the_receivers(tmp_path: Path) -> None:
    values = STACK_SECRETS | SITE_SETTINGS | {"CONVEYOR_PUBLIC_URL": "https://conveyor.example"}
    config_file = run_render_service(compose_config(tmp_path, values), tmp_path / "rendered")
    folder = config_file.parent
    assert "SUCCESS" in amtool(folder, "check-config", "alertmanager.yml")
    assert_routes(folder)
    assert channels(config_file)["oncall"] == {"slack", "email", "webhook"}
    assert "https://pager.example.net/conveyor" in webhook_urls(config_file)
    assert (folder / "secrets" / "smtp-password").read_text() == "smtp password 42"
    template = (folder / "templates" / "conveyor.tmpl").read_text()
    assert "https://conveyor.example{{ end }}" in template


def test_the_stack_refuses_to_start_without_the_alerts_token(tmp_path: Path) -> None:
    values = {k: v for k, v in STACK_SECRETS.items() if k != "CONVEYOR_ALERTS_TOKEN"}
    with pytest.raises(AssertionError, match="CONVEYOR_ALERTS_TOKEN"):
        compose_config(tmp_path, values)
