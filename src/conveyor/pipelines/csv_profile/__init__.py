"""``csv_profile``: profile a CSV file (columns, types, ranges, missing values, duplicates).

The DAG: parse -> (columns, quality) -> report. The parsed table is an artifact (JSON lines)
in the item's work folder, so the small step outputs stay small.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.pipeline import Pipeline, PipelineHooks, StepContext, step

MAX_SNIFF_BYTES = 64 * 1024
ROWS_ARTIFACT = "rows.jsonl"
STEP_TIMEOUT_SECONDS = 300.0  # profiling a file as large as uploads allow takes far less
HERE = Path(__file__).parent


@step(retries=1, timeout_seconds=STEP_TIMEOUT_SECONDS)
def parse(context: StepContext) -> dict[str, Any]:
    path = context.input_path()
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PermanentStepError(
            f"{context.input_name!r} is not UTF-8 text ({error}); save it as UTF-8 CSV."
        ) from error
    if not text.strip():
        raise PermanentStepError(f"{context.input_name!r} is empty; there is nothing to profile.")
    dialect = _sniff(text)
    rows = list(csv.reader(io.StringIO(text), dialect))
    header, body = rows[0], [row for row in rows[1:] if row]
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise PermanentStepError(
            f"{context.input_name!r}: the first row must hold unique, non-empty column names."
        )
    lines = "\n".join(json.dumps(dict(zip(header, row, strict=False))) for row in body)
    context.save_artifact(ROWS_ARTIFACT, lines.encode())
    context.log.info("parsed %d rows x %d columns", len(body), len(header))
    return {"columns": header, "rows": len(body), "delimiter": dialect.delimiter}


def _sniff(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:MAX_SNIFF_BYTES], delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _load_rows(context: StepContext) -> list[dict[str, str]]:
    with context.storage.open(context.work_dir, ROWS_ARTIFACT) as stream:
        return [json.loads(line) for line in stream.read().decode().splitlines() if line]


@step(timeout_seconds=STEP_TIMEOUT_SECONDS)
def columns(context: StepContext, parse: dict[str, Any]) -> dict[str, Any]:
    rows = _load_rows(context)
    return {name: _profile_column([row.get(name, "") for row in rows]) for name in parse["columns"]}


def _profile_column(values: list[str]) -> dict[str, Any]:
    present = [v for v in values if v.strip() != ""]
    numbers = [n for n in (_as_number(v) for v in present) if n is not None]
    profile: dict[str, Any] = {"missing": len(values) - len(present)}
    if present and len(numbers) == len(present):
        mean = sum(numbers) / len(numbers)
        spread = math.sqrt(sum((n - mean) ** 2 for n in numbers) / len(numbers))
        return profile | {
            "type": "number",
            "min": min(numbers),
            "max": max(numbers),
            "mean": round(mean, 6),
            "std": round(spread, 6),
        }
    top = Counter(present).most_common(3)
    return profile | {"type": "text", "distinct": len(set(present)), "top": top}


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@step(timeout_seconds=STEP_TIMEOUT_SECONDS)
def quality(context: StepContext, parse: dict[str, Any]) -> dict[str, Any]:
    rows = _load_rows(context)
    keys = [tuple(sorted(row.items())) for row in rows]
    incomplete = sum(1 for row in rows if any(v.strip() == "" for v in row.values()))
    return {"duplicate_rows": len(keys) - len(set(keys)), "incomplete_rows": incomplete}


@step(timeout_seconds=STEP_TIMEOUT_SECONDS)
def report(
    context: StepContext, parse: dict[str, Any], columns: dict[str, Any], quality: dict[str, Any]
) -> dict[str, Any]:
    numeric = [name for name, profile in columns.items() if profile["type"] == "number"]
    return {
        "rows": parse["rows"],
        "columns": len(parse["columns"]),
        "numeric_columns": numeric,
        "duplicate_rows": quality["duplicate_rows"],
        "incomplete_rows": quality["incomplete_rows"],
        "profile": columns,
    }


def check_text_table(path: Path) -> None:
    """Accept only UTF-8 text without NUL bytes (probes the content, not the name)."""
    with path.open("rb") as stream:
        head = stream.read(MAX_SNIFF_BYTES)
    if b"\x00" in head or not _is_utf8_prefix(head):
        raise InputRejectedError(f"{path.name!r} is not a UTF-8 text table; upload a CSV file.")


def _is_utf8_prefix(head: bytes) -> bool:
    for cut in range(4):  # the sample may end inside a multi-byte character
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


csv_profile = Pipeline(
    "csv_profile",
    version="1",
    dag={parse: [], columns: [parse], quality: [parse], report: [parse, columns, quality]},
    description="Profile a CSV file: columns, types, ranges, missing values and duplicates.",
    accepts=("file",),
    check_input=check_text_table,
    hooks=PipelineHooks(
        item_renderer=HERE / "templates" / "item.html",
        cli_summary="conveyor.pipelines.csv_profile.cli:print_summary",
    ),
)
