"""The shipped streams dashboard and stream alerts against a real Prometheus scraping a real
`conveyor streams run` (a Redis source with dead letters, a Redis sink with an outbox): every
expression of conveyor-streams.json returns data, its variable lists the source, and the stream
alert rules load healthy and stay quiet. test_dashboards.py leaves this dashboard to this file
(its `conveyor up` has no streams)."""

from __future__ import annotations

import json
import math
import re
import shutil
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from conveyor.installation import Installation
from conveyor.monitoring.discovery import write_targets
from conveyor.settings import load_settings
from conveyor.streams.sinks import SinkConfig, add_sink
from support.dashboards import DASHBOARD_DIR, as_promql, expressions
from support.monitoring import Prometheus, free_port, get_json, wait_for
from support.sinks import finish_items
from support.streams import StreamsRun, add_test_source, publish_records_and_poison

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = DASHBOARD_DIR / "conveyor-streams.json"
REDIS = "127.0.0.1:6379"


@pytest.fixture
def redis_keys() -> Iterator[tuple[str, str]]:
    client = redis.Redis.from_url(f"redis://{REDIS}")
    client.ping()
    keys = (f"conveyor-test:{uuid.uuid4().hex[:12]}", f"conveyor-test:{uuid.uuid4().hex[:12]}")
    yield keys
    client.delete(*keys)
    client.close()


def prometheus_config(folder: Path, metrics_port: int) -> dict:  # type: ignore[type-arg]
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", folder / "alerts.yml")
    write_targets(
        folder / "targets" / "conveyor.json", [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    )
    write_targets(folder / "targets" / "nodes.json", [])
    write_targets(folder / "targets" / "gpus.json", [])
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    return config


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_streams_dashboard_and_alerts_on_live_data(
    tmp_path: Path, database_url: str, redis_keys: tuple[str, str]
) -> None:
    settings = load_settings(
        tmp_path / "home", database_url=database_url, pipelines=["support.pipelines"]
    )
    installation = Installation(settings)
    source_url, sink_url = (f"redis://{REDIS}/{key}" for key in redis_keys)
    add_test_source(installation, source_url)
    publish_records_and_poison(source_url, 200)  # and 100 poison messages: dead letters
    with installation.sessions.begin() as session:
        add_sink(session, SinkConfig("results", sink_url, "single"))
    finish_items(installation, 100)
    metrics_port, log = free_port(), tmp_path / "streams-run.log"
    run = StreamsRun(installation, "readings", log, "results", "--metrics-port", str(metrics_port))
    prometheus = Prometheus(prometheus_config(tmp_path, metrics_port), tmp_path)
    try:
        seen = "sum(conveyor_stream_messages_total) == 300"
        seen += " and sum(conveyor_stream_sink_published_total) == 100"
        wait_for(lambda: bool(prometheus.query(seen)), 120, "the run's metrics in Prometheus")
        scrapes = 'count_over_time(up{job="conveyor"}[1m])'
        wait_for(lambda: prometheus.value(scrapes) >= 5, 60, "a few scrapes")

        empty = []
        for _, title, expression in expressions([DASHBOARD]):
            values = [float(s["value"][1]) for s in prometheus.query(as_promql(expression))]
            if not any(math.isfinite(value) for value in values):
                empty.append(f"{title}: {expression} -> {values}")
        assert not empty, "expressions without data:\n" + "\n".join(empty)

        [variable] = json.loads(DASHBOARD.read_text())["templating"]["list"]
        selector = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
        assert selector is not None
        query = urllib.parse.urlencode({"match[]": selector[1]})
        values = get_json(f"{prometheus.url}/api/v1/label/{selector[2]}/values?{query}")
        assert values["data"] == ["readings"]

        groups = get_json(f"{prometheus.url}/api/v1/rules")["data"]["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        for name in ("ConveyorStreamLagGrowing", "ConveyorStreamOutboxGrowing"):
            assert rules[name]["health"] == "ok" and rules[name]["state"] == "inactive"
    finally:
        prometheus.stop()
        run.process.terminate()
        run.process.wait(timeout=60)
        installation.close()
