"""`conveyor streams add / list / dead-letters / remove` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app

URL = "redis://:s3cret@127.0.0.1:6379/readings"


@pytest.fixture
def conveyor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONVEYOR_PIPELINES", "support.pipelines")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--home", str(tmp_path / "home"), *args])
        return result.exit_code, result.output

    return run


def test_add_list_and_remove_a_source(conveyor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["pulse"]}))
    code, output = conveyor(
        "streams", "add", "wearables", "--url", URL, "-p", "single", "--max-queued", "50",
        "-o", "ssl_ca_certs=/etc/ca.pem", "--schema", str(schema),
    )  # fmt: skip
    assert code == 0, output
    assert "group conveyor-wearables" in output

    code, output = conveyor("streams", "list", "--json")
    [source] = json.loads(output)
    assert source["url"] == "redis://:***@127.0.0.1:6379/readings"
    assert (source["max_queued"], source["options"], source["has_schema"]) == (
        50,
        ["ssl_ca_certs"],
        True,
    )
    assert (source["items"], source["dead_letters"], source["lag"]) == (0, 0, None)
    code, output = conveyor("streams", "list")
    assert code == 0 and "wearables" in output and "s3cret" not in output

    assert conveyor("streams", "disable", "wearables")[0] == 0
    assert json.loads(conveyor("streams", "list", "--json")[1])[0]["enabled"] is False
    code, output = conveyor("streams", "run", "wearables")
    assert code == 2 and "streams enable wearables" in output
    assert conveyor("streams", "enable", "wearables")[0] == 0
    assert json.loads(conveyor("streams", "list", "--json")[1])[0]["enabled"] is True
    code, output = conveyor("streams", "dead-letters", "wearables")
    assert code == 0
    code, output = conveyor("streams", "remove", "wearables")
    assert code == 0, output
    assert json.loads(conveyor("streams", "list", "--json")[1]) == []


def test_mistakes_are_refused_with_a_reason(conveyor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert conveyor("streams", "add", "a", "--url", URL, "-p", "single")[0] == 0
    mistakes = {
        ("streams", "add", "a", "--url", URL, "-p", "single"): "exists",
        ("streams", "add", "b", "--url", URL, "-p", "no-such"): "no-such",
        ("streams", "add", "c", "--url", "ftp://h/q", "-p", "single"): "redis://",
        ("streams", "add", "t", "--url", URL, "-p", "heart"): "conveyor train heart",
        ("streams", "add", "d", "--url", URL, "-p", "single", "-o", "novalue"): "KEY=VALUE",
        ("streams", "add", "e e", "--url", URL, "-p", "single"): "source name",
        ("streams", "remove", "nothing"): "no stream source named 'nothing'",
        ("streams", "run", "nothing"): "no stream source or sink named 'nothing'",
    }
    for args, expected in mistakes.items():
        code, output = conveyor(*args)
        assert code == 2 and expected in output, (args, output)


def test_sinks_of_model_events_and_predictions(conveyor) -> None:  # type: ignore[no-untyped-def]
    code, output = conveyor("streams", "add-sink", "ev", "--url", URL, "--model-events", "*")
    assert code == 0 and "model_events of *" in output, output
    code, output = conveyor("streams", "add-sink", "cap", "--url", URL, "--predictions", "heart")
    assert code == 0 and "predictions of heart" in output, output
    code, output = conveyor("streams", "sinks", "--json")
    kinds = {sink["name"]: (sink["kind"], sink["pipeline"]) for sink in json.loads(output)}
    assert kinds == {"ev": ("model_events", "*"), "cap": ("predictions", "heart")}
    code, output = conveyor("streams", "sinks")
    assert "model_events" in output and "predictions" in output, output
    code, output = conveyor(
        "streams", "add-sink", "both", "--url", URL, "-p", "single", "--predictions", "heart"
    )
    assert code != 0 and "one of --pipeline, --model-events, --predictions or --alerts" in output
