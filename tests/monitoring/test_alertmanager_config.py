"""The shipped Alertmanager configuration: amtool accepts it and its routing tree sends each
severity and component to the receivers docs/monitoring.md promises."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from support.monitoring import require_binary

ALERTMANAGER_DIR = Path(__file__).parents[2] / "deploy" / "alertmanager"
RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"


def _amtool(*arguments: str) -> str:
    completed = subprocess.run(
        [require_binary("amtool"), *arguments],
        cwd=ALERTMANAGER_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_amtool_check_config_passes() -> None:
    output = _amtool("check-config", "alertmanager.yml")
    assert "SUCCESS" in output and "3 inhibit rules" in output and "6 receivers" in output


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "critical", "component": "serving"}, "conveyor,serving-oncall"),
        ({"severity": "critical", "component": "node"}, "conveyor,oncall"),
        ({"severity": "critical", "component": "workers"}, "conveyor,oncall"),
        ({"severity": "critical", "component": "conveyor"}, "conveyor,oncall"),
        ({"severity": "warning", "component": "serving"}, "conveyor,serving-team"),
        ({"severity": "warning", "component": "pipeline"}, "conveyor,pipelines-team"),
        ({"severity": "warning", "component": "workers"}, "conveyor,pipelines-team"),
        ({"severity": "warning", "component": "node"}, "conveyor,ops-email"),
        ({"severity": "info", "component": "serving"}, "conveyor"),
        ({"alertname": "Unlabelled"}, "conveyor"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(value.values()),
)
def test_routing_tree(labels: dict[str, str], receivers: str) -> None:
    pairs = [f"{name}={value}" for name, value in labels.items()]
    output = _amtool("config", "routes", "test", "--config.file=alertmanager.yml", *pairs)
    assert output.strip() == receivers


def test_every_shipped_alert_has_a_routable_severity_and_component() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        labels = rule["labels"]
        assert labels["severity"] in ("critical", "warning"), rule["alert"]
        assert labels["component"] in ("conveyor", "pipeline", "workers", "node", "serving")
