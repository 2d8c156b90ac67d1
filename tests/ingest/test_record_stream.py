"""`conveyor submit --records`, streamed in batches, as a user runs it on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.installation import Installation
from conveyor.settings import load_settings
from conveyor.store.models import Item

RECORDS = 5_000


@pytest.fixture
def home(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", database_url)
    monkeypatch.setenv("CONVEYOR_PIPELINES", "support.pipelines")
    return tmp_path / "home"


def _submit(home: Path, *arguments: str):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    return runner.invoke(app, ["--home", str(home), "submit", "-p", "noop", *arguments])


def _items(home: Path, database_url: str) -> list[tuple[str, str]]:
    settings = load_settings(home, database_url=database_url, pipelines=["support.pipelines"])
    installation = Installation(settings)
    try:
        with installation.sessions() as session:
            return list(session.execute(select(Item.id, Item.content_hash)).tuples())
    finally:
        installation.close()


def _write(path: Path, records: int, bad_line: int | None = None) -> Path:
    with path.open("w") as out:
        for n in range(1, records + 1):
            out.write("{not json\n" if n == bad_line else json.dumps({"n": n}) + "\n")
    return path


def test_every_record_once_and_a_rerun_adds_nothing(
    home: Path, database_url: str, tmp_path: Path
) -> None:
    records = _write(tmp_path / "r.jsonl", RECORDS)
    ids_file = tmp_path / "ids.txt"
    first = _submit(home, "--records", str(records), "-o", str(ids_file))
    assert first.exit_code == 0, first.output
    assert f"{RECORDS:,} accepted, 0 already known" in first.stderr
    assert first.stdout.count("\n") < 5  # a summary, not an id per record
    ids = ids_file.read_text().split()
    items = _items(home, database_url)
    assert len(ids) == len(set(ids)) == len(items) == RECORDS

    again = _submit(home, "--records", str(records), "--json")
    assert again.exit_code == 0, again.output
    printed = json.loads(again.stdout)
    assert [s["item_id"] for s in printed] == ids and all(s["duplicate"] for s in printed)
    assert len(_items(home, database_url)) == RECORDS


def test_a_bad_line_keeps_what_came_before_it_and_nothing_after(
    home: Path, database_url: str, tmp_path: Path
) -> None:
    records = _write(tmp_path / "r.jsonl", RECORDS, bad_line=3_210)
    result = _submit(home, "--records", str(records))
    assert result.exit_code == 2
    assert "r.jsonl:3210 is not valid JSON" in result.stderr
    assert "The 3,209 record(s) before it were submitted" in " ".join(result.stderr.split())
    assert len(_items(home, database_url)) == 3_209

    fixed = _write(tmp_path / "r.jsonl", RECORDS)
    result = _submit(home, "--records", str(fixed))
    assert result.exit_code == 0
    assert f"{RECORDS - 3_209:,} accepted, 3,209 already known" in result.stderr
    assert len({h for _, h in _items(home, database_url)}) == len(_items(home, database_url))


def test_the_same_record_twice_in_one_file_is_one_item(
    home: Path, database_url: str, tmp_path: Path
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"a": 1, "b": 2}\n\n{"b": 2, "a": 1}\n{"a": 2}\n')
    result = _submit(home, "--records", str(records), "--json")
    printed = json.loads(result.stdout)
    assert [s["duplicate"] for s in printed] == [False, True, False]
    assert printed[0]["item_id"] == printed[1]["item_id"]
    assert len(_items(home, database_url)) == 2


def test_batches_before_a_bad_line_in_a_later_batch_are_kept(
    home: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bad line ends the file where it is, with the earlier batches and the records of
    its own batch before it committed and reported, and none after."""
    monkeypatch.setattr("conveyor.cli.records.FILE_BATCH_RECORDS", 1_000)
    records = _write(tmp_path / "r.jsonl", RECORDS, bad_line=3_210)
    ids_file = tmp_path / "ids.txt"
    result = _submit(home, "--records", str(records), "-o", str(ids_file))
    assert result.exit_code == 2
    assert "r.jsonl:3210 is not valid JSON" in result.stderr
    assert len(ids_file.read_text().split()) == len(_items(home, database_url)) == 3_209
