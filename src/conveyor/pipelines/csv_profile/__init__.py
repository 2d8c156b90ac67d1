"""``csv_profile``: profile a CSV file (columns, types, ranges, missing values, duplicates).

The DAG: parse -> (columns, quality) -> report. ``parse`` streams the file once, a block at a
time, in bounded memory whatever its size (``scan``), and keeps the profile as a small JSON
artifact in the item's work folder, which ``columns`` and ``quality`` read.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.pipeline import Pipeline, PipelineHooks, StepContext, step

MAX_SNIFF_BYTES = 64 * 1024
PROFILE_ARTIFACT = "profile.json"
BLOCK_SIZE_ENVIRONMENT = "CONVEYOR_CSV_PROFILE_BLOCK_SIZE"  # bytes a block (default 1 MiB)
STEP_TIMEOUT_SECONDS = 3600.0  # a 10 GB file takes minutes (docs/batch.md)
HERE = Path(__file__).parent


@step(retries=1, timeout_seconds=STEP_TIMEOUT_SECONDS)
def parse(context: StepContext) -> dict[str, Any]:
    profile = _profile_input(context)
    context.save_artifact(PROFILE_ARTIFACT, json.dumps(profile).encode())
    header = list(profile["columns"])
    context.log.info("parsed %d rows x %d columns", profile["rows"], len(header))
    return {"columns": header, "rows": profile["rows"], "delimiter": profile["delimiter"]}


def _profile_input(context: StepContext) -> dict[str, Any]:
    import pyarrow as pa  # type: ignore[import-untyped]

    from conveyor.pipelines.csv_profile.scan import profile_csv

    path = context.input_path()
    layout = _layout(path, context.input_name or path.name)
    try:
        with tempfile.TemporaryDirectory(prefix="conveyor-csv-profile-") as spill:
            profile = profile_csv(path, layout, Path(spill), block_size())
    except pa.ArrowInvalid as error:
        raise PermanentStepError(f"{context.input_name!r} cannot be read as CSV: {error}") from None
    return profile | {"delimiter": layout.dialect.delimiter}


def block_size() -> int:
    import os

    from conveyor.pipelines.csv_profile.scan import DEFAULT_BLOCK_SIZE

    return int(os.environ.get(BLOCK_SIZE_ENVIRONMENT) or DEFAULT_BLOCK_SIZE)


def _layout(path: Path, name: str) -> Any:
    from conveyor.pipelines.csv_profile.scan import CsvLayout

    text = _head_text(path, name)
    if not text.strip():
        raise PermanentStepError(f"{name!r} is empty; there is nothing to profile.")
    dialect = _sniff(text)
    header = next(csv.reader(io.StringIO(text), dialect), [])
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise PermanentStepError(
            f"{name!r}: the first row must hold unique, non-empty column names."
        )
    return CsvLayout(header, dialect)


def _head_text(path: Path, name: str) -> str:
    """The first ``MAX_SNIFF_BYTES`` as text (a character cut at the end is dropped); the
    rest of the file is checked as it is read."""
    with path.open("rb") as stream:
        head = stream.read(MAX_SNIFF_BYTES)
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8-sig")
        except UnicodeDecodeError as error:
            problem = error
    raise PermanentStepError(f"{name!r} is not UTF-8 text ({problem}); save it as UTF-8 CSV.")


def _sniff(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:MAX_SNIFF_BYTES], delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _load_profile(context: StepContext) -> dict[str, Any]:
    """The profile ``parse`` kept (profiled again for an item parsed by an older version)."""
    try:
        with context.storage.open(context.work_dir, PROFILE_ARTIFACT) as stream:
            loaded: dict[str, Any] = json.loads(stream.read())
            return loaded
    except FileNotFoundError:
        return _profile_input(context)


@step(timeout_seconds=STEP_TIMEOUT_SECONDS)
def columns(context: StepContext, parse: dict[str, Any]) -> dict[str, Any]:
    profiled: dict[str, Any] = _load_profile(context)["columns"]
    return profiled


@step(timeout_seconds=STEP_TIMEOUT_SECONDS)
def quality(context: StepContext, parse: dict[str, Any]) -> dict[str, Any]:
    counted: dict[str, Any] = _load_profile(context)["quality"]
    return counted


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
