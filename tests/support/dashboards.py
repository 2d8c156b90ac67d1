"""The shipped Grafana dashboards' queries as Prometheus would run them: Grafana's built-in
variables and the dashboards' own variables filled in as Grafana fills them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards"
# Grafana's built-in variables, as Grafana would fill them for a short time range.
BUILT_IN_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(paths: list[Path]) -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) for every query of the dashboards, once per
    value of each custom variable (a window such as 1m or 1h) the expression uses."""
    found = []
    for path in paths:
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                for expression in with_custom_values(dashboard, target["expr"]):
                    found.append((path.name, panel["title"], expression))
    return found


def custom_variables(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    variables = dashboard.get("templating", {}).get("list", [])
    return {v["name"]: v["query"].split(",") for v in variables if v["type"] == "custom"}


def with_custom_values(dashboard: dict[str, Any], expression: str) -> list[str]:
    variants = [expression]
    for name, values in custom_variables(dashboard).items():
        pattern = re.compile(rf"\$\{{?{name}\}}?\b")
        if pattern.search(expression):
            variants = [pattern.sub(value, v) for v in variants for value in values]
    return variants


def as_promql(expression: str) -> str:
    for name, value in BUILT_IN_VARIABLES.items():
        expression = expression.replace(name, value)
    return re.sub(r"\$\{?(\w+)\}?", ".*", expression)  # query variables: "All"
