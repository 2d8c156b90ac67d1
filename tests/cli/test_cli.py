"""The command line, end to end, as a user types it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app


@pytest.fixture
def run(tmp_path: Path, database_url: str, ray_cluster: str, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", database_url)
    monkeypatch.setenv("CONVEYOR_PIPELINES", "support.pipelines")
    home = tmp_path / "home"
    runner = CliRunner()

    def invoke(*arguments: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["--home", str(home), *arguments], catch_exceptions=False)

    return invoke


def test_submit_wait_status_show_and_export(run, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text("\n".join(json.dumps({"n": n}) for n in range(5)) + "\n")
    text = tmp_path / "a note.txt"
    text.write_text("one two three")
    assert run("submit", "--records", str(records), "-p", "noop", "--wait").exit_code == 0
    assert run("submit", str(text), "-p", "text_stats", "--wait").exit_code == 0

    status = json.loads(run("status", "--json").stdout)
    assert status == {"noop": {"succeeded": 5}, "text_stats": {"succeeded": 1}}

    exported = json.loads(run("results", "-p", "text_stats", "-f", "json").stdout)
    [row] = exported
    assert {
        "item_id",
        "input",
        "pipeline",
        "pipeline_version",
        "status",
        "finished_at",
        "result",
    } <= set(row)
    assert row["input"] == "a note.txt" and row["pipeline_version"] == "2"
    assert row["result"]["words"] == 3

    output = tmp_path / "out.csv"
    assert run("results", "-p", "noop", "-f", "csv", "-o", str(output)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert len(rows) == 5 and sorted(int(r["result.n"]) for r in rows) == [0, 1, 2, 3, 4]

    shown = json.loads(run("show", row["item_id"][:8], "--json").stdout)
    assert [s["step"] for s in shown["steps"]] == ["measure", "words", "summary"]
    assert shown["result"]["name"] == "a note.txt"
    listed = json.loads(run("items", "--status", "succeeded", "--json").stdout)
    assert len(listed) == 6


def test_failed_submit_exits_non_zero_and_retry_queues_again(run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"BAD bytes")
    assert run("submit", str(bad), "-p", "text_stats", "--wait").exit_code == 1
    [item] = json.loads(run("items", "--json").stdout)
    assert item["status"] == "failed" and "starts with BAD" in item["error"]
    assert "queued 1 item(s) again" in run("retry", "--failed").stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["show", "doesnotexist"], "no item with id"),
        (["submit", "/no/such/file.wav", "-p", "text_stats"], "not a readable file"),
        (["submit", "-p", "nope", "--records", "/dev/null"], "no pipeline named 'nope'"),
        (["results", "-p", "noop", "-f", "xml"], "--format must be json or csv"),
    ],
)
def test_errors_say_what_went_wrong_with_exit_code_2(run, arguments, message) -> None:
    result = run(*arguments)
    assert result.exit_code == 2
    assert message in result.stderr


def test_bad_jsonl_names_the_line(run, tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"ok": 1}\n{not json}\n')
    result = run("submit", "-p", "noop", "--records", str(records))
    assert result.exit_code == 2 and "r.jsonl:2 is not valid JSON" in result.stderr


def test_demo_runs_the_main_job_and_prints_a_summary(run) -> None:
    result = run("demo")
    assert result.exit_code == 0, result.stdout
    assert "csv_profile results" in result.stdout and "station 00.csv" in result.stdout
    assert "failed empty.csv" in result.stdout
    status = json.loads(run("status", "--json").stdout)
    assert status["noop"] == {"succeeded": 200}
    assert status["csv_profile"] == {"succeeded": 6, "failed": 1}
