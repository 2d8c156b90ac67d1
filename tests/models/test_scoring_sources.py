"""Batch scoring from and to where big inputs live: an ``s3://`` bucket (a local S3-compatible
server, moto's, started by the test) and a shared mount (a folder outside Conveyor's home that
every node would see, given as a path and as a ``file://`` URL). Both score every row with the
registered model, name bad rows by file and line, and a second run finds the finished job."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as arrow_csv
import pyarrow.dataset as arrow_dataset
import pyarrow.parquet as parquet
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the serving tests' models
from serving_helpers import register_heart

from conveyor.models.registry import ModelRegistry
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_rows
from conveyor.scoring.service import BatchScoring, ScoreRequest

NAMES = HEART_SCHEMA.names
FEATURES = HEART_SCHEMA.features
CSV_ROWS, PARQUET_ROWS = 1500, 300
BAD_LINE = 7  # of the CSV file (the header is line 1)
BUCKET = "scoring"


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory, ray_cluster: str) -> Iterator[BatchScoring]:
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    home = tmp_path_factory.mktemp("sources-home")
    register_heart(ModelRegistry.for_home(home, None), home / "work", seed=1)
    installation = Installation(load_settings(home, database_url=f"sqlite:///{home}/c.db"))
    yield BatchScoring(installation)
    installation.close()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port; the AWS_* variables point s3fs at it (the
    scoring actors get them from the command's environment)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    settings = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "conveyor-test",
        "AWS_SECRET_ACCESS_KEY": "conveyor-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """visits.csv (one bad line) and more.parquet (row groups of 100), ids v0... and p0..."""
    folder = tmp_path_factory.mktemp("shared-mount") / "in"
    folder.mkdir()
    lines = [",".join(["id", *NAMES])]
    lines += [",".join([f"v{n}", *row]) for n, row in enumerate(csv_rows())]
    lines[BAD_LINE - 1] = lines[BAD_LINE - 1].replace(",", ",lots,", 1).rsplit(",", 1)[0]
    (folder / "visits.csv").write_text("\n".join(lines) + "\n")
    records = [{"id": f"p{n}", **as_record(row)} for n, row in enumerate(parquet_rows())]
    parquet.write_table(pa.Table.from_pylist(records), folder / "more.parquet", row_group_size=100)
    return folder


def csv_rows() -> list[list[str]]:
    return synthetic_rows(CSV_ROWS, seed=3, missing_rate=0.05)


def parquet_rows() -> list[list[str]]:
    return synthetic_rows(PARQUET_ROWS, seed=4, missing_rate=0.05)


def as_record(row: list[str]) -> dict[str, Any]:
    values = dict(zip(NAMES, row, strict=True))
    return {name: None if values[name] == "?" else float(values[name]) for name in FEATURES}


def expected_labels(scoring: BatchScoring) -> dict[str, Any]:
    """Each good row's label from the version itself (the loader the REST endpoint uses)."""
    from conveyor.serving.predictors import load_version

    loaded = load_version(scoring.tracking, "heart", 1, frozenset({"ca", "thal"}))
    ids = [f"v{n}" for n in range(CSV_ROWS)] + [f"p{n}" for n in range(PARQUET_ROWS)]
    records = [as_record(row) for row in [*csv_rows(), *parquet_rows()]]
    labels = {i: answer["label"] for i, answer in zip(ids, loaded.predict(records), strict=True)}
    del labels[f"v{BAD_LINE - 2}"]
    return labels


def check_output(table: pa.Table, scoring: BatchScoring) -> None:
    rows = table.to_pylist()
    scored = {row["id"]: row["prediction"] for row in rows}
    assert len(rows) == len(scored) == CSV_ROWS + PARQUET_ROWS - 1
    assert scored == expected_labels(scoring)
    assert {(row["model"], row["model_version"]) for row in rows} == {("heart", 1)}


def test_an_s3_source_is_scored_into_an_s3_output(
    scoring: BatchScoring, s3_endpoint: str, inputs: Path
) -> None:
    import s3fs  # type: ignore[import-untyped]

    bucket = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    bucket.mkdir(BUCKET)
    bucket.put(str(inputs) + "/", f"{BUCKET}/visits/", recursive=True)
    request = ScoreRequest(
        "heart", (f"s3://{BUCKET}/visits/",), f"s3://{BUCKET}/scored", columns=("id",),
        block_size=16 * 1024, parallelism=2,
    )  # fmt: skip
    prepared = scoring.prepare(request)
    assert prepared.view.parts_total > 4  # byte ranges of the CSV, row groups of the Parquet
    view = scoring.run(prepared)
    assert (view.status, view.rows_scored, view.rows_rejected) == (
        "succeeded", CSV_ROWS + PARQUET_ROWS - 1, 1,
    )  # fmt: skip
    output = arrow_dataset.dataset(f"{BUCKET}/scored", format="parquet", filesystem=bucket)
    check_output(output.to_table(), scoring)
    with bucket.open(f"{BUCKET}/scored/_rejects.csv", "rb") as handle:
        rejects = arrow_csv.read_csv(handle).to_pylist()
    assert [(r["file"], r["line"]) for r in rejects] == [
        (f"s3://{BUCKET}/visits/visits.csv", BAD_LINE)
    ]
    again = scoring.prepare(request)
    assert again.resumed and again.view.id == view.id and not again.pending


def test_a_shared_mount_is_scored_by_path_and_by_file_url(
    scoring: BatchScoring, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative output is made absolute: the job is found again
    request = ScoreRequest(
        "heart", (f"file://{inputs}/*.csv", str(inputs / "more.parquet")), "scored",
        columns=("id",), output_format="csv", parallelism=2,
    )  # fmt: skip
    view = scoring.run(scoring.prepare(request))
    assert view.output == str(tmp_path / "scored")
    assert (view.rows_scored, view.rows_rejected) == (CSV_ROWS + PARQUET_ROWS - 1, 1)
    output = arrow_dataset.dataset(
        tmp_path / "scored", format="csv", exclude_invalid_files=True
    ).to_table()
    check_output(output, scoring)
    rejects = arrow_csv.read_csv(tmp_path / "scored" / "_rejects.csv").to_pylist()
    assert [(r["file"], r["line"]) for r in rejects] == [(f"file://{inputs}/visits.csv", 7)]
