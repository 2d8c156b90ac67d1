"""Batch scoring (``conveyor score``): predictions equal the REST endpoint's row for row,
rejects name file and line, the rejects limit fails the job, a job killed with SIGKILL resumes
to exactly one output row per input row, and memory stays flat as the input grows.

Inputs are generated small; ``CONVEYOR_TEST_SCORING_ROWS`` (default 20,000) sets the rows of
the larger files (the kill test and the memory test's large input is 10 times the small one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as arrow_csv
import pyarrow.dataset as arrow_dataset
import pyarrow.parquet as parquet
import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the serving tests' models
from serving_helpers import Serving, register_heart

from conveyor.models.registry import ModelRegistry
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_rows
from conveyor.scoring.service import BatchScoring, ScoreRequest, TooManyRejectsError
from conveyor.scoring.tables import ScoringJob, ScoringPart

ROWS = int(os.environ.get("CONVEYOR_TEST_SCORING_ROWS", "20000"))
NAMES = HEART_SCHEMA.names
FEATURES = HEART_SCHEMA.features


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """heart v1 with an ONNX form (champion) and v2 without one (native scikit-learn)."""
    folder = tmp_path_factory.mktemp("scoring-home")
    tracking = ModelRegistry.for_home(folder, None)
    register_heart(tracking, folder / "work", seed=1)
    register_heart(tracking, folder / "work", seed=2, alias="challenger", onnx=False)
    return folder


@pytest.fixture(scope="module")
def served(home: Path, ray_cluster: str) -> Any:
    """The API app (no logins) on the home's store, which the scoring jobs share."""
    app = Serving(home, f"sqlite:///{home}/c.db")
    yield app
    app.close()


@pytest.fixture(scope="module")
def scoring(served: Any) -> BatchScoring:
    return BatchScoring(served.installation)


def heart_csv(path: Path, rows: int, seed: int = 3, first_id: int = 0) -> list[list[str]]:
    cells = synthetic_rows(rows, seed=seed, missing_rate=0.05)
    lines = [",".join(["id", *NAMES])]
    lines += [",".join([str(first_id + i), *row]) for i, row in enumerate(cells)]
    path.write_text("\n".join(lines) + "\n")
    return cells


def as_record(row: list[str]) -> dict[str, Any]:
    values = dict(zip(NAMES, row, strict=True))
    return {name: None if values[name] == "?" else float(values[name]) for name in FEATURES}


def read_output(folder: Path) -> pa.Table:
    return arrow_dataset.dataset(folder, format="parquet").to_table()


def test_scores_match_the_rest_endpoint_row_for_row(
    scoring: BatchScoring, served: Any, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    csv_rows = heart_csv(inputs / "a.csv", 150)
    json_rows = synthetic_rows(100, seed=4, missing_rate=0.05)
    with (inputs / "b.jsonl").open("w") as handle:
        for number, row in enumerate(json_rows):
            handle.write(json.dumps({"id": f"j{number}", **as_record(row)}) + "\n")
    parquet_rows = synthetic_rows(100, seed=5, missing_rate=0.05)
    table = pa.Table.from_pylist(
        [{"id": f"p{n}", **as_record(row)} for n, row in enumerate(parquet_rows)]
    )
    parquet.write_table(table, inputs / "c.parquet", row_group_size=40)
    request = ScoreRequest("heart", (str(inputs),), str(tmp_path / "out"), columns=("id",))
    view = scoring.run(scoring.prepare(request))
    assert (view.status, view.rows_scored, view.rows_rejected) == ("succeeded", 350, 0)

    output = read_output(tmp_path / "out").to_pylist()
    assert output[0].keys() == {"id", *ScoreOutputColumns}
    by_id = {row["id"]: row for row in output}
    expected_ids = [str(n) for n in range(150)]
    expected_ids += [f"j{n}" for n in range(100)] + [f"p{n}" for n in range(100)]
    records = [as_record(row) for row in [*csv_rows, *json_rows, *parquet_rows]]
    answers = served.predict(records).json()
    assert answers["version"] == 1
    for row_id, answer in zip(expected_ids, answers["predictions"], strict=True):
        scored = by_id[row_id]
        assert scored["prediction"] == answer["label"], row_id
        assert scored["probability"] == pytest.approx(answer["probability"], abs=2e-6)
        assert (scored["model"], scored["model_version"]) == ("heart", 1)
        assert scored["dataset_sha256"] == view.dataset_sha256 and view.dataset_sha256


ScoreOutputColumns = ("prediction", "probability", "model", "model_version", "dataset_sha256")


def test_a_version_without_onnx_is_scored_by_its_native_model(
    scoring: BatchScoring, tmp_path: Path
) -> None:
    from conveyor.serving.predictors import load_version

    rows = heart_csv(tmp_path / "in.csv", 80)
    request = ScoreRequest(
        "heart", (str(tmp_path / "in.csv"),), str(tmp_path / "out"), alias="challenger",
        output_format="csv", columns=("id", "age"),
    )  # fmt: skip
    prepared = scoring.prepare(request)
    assert prepared.loaded is not None and prepared.loaded.form == "sklearn"
    scoring.run(prepared)
    output = arrow_csv.read_csv(tmp_path / "out" / "part-000000.csv").to_pylist()
    native = load_version(scoring.tracking, "heart", 2, frozenset({"ca", "thal"}))
    expected = native.predict([as_record(row) for row in rows])
    assert [row["id"] for row in output] == list(range(80))
    assert [row["prediction"] for row in output] == [e["label"] for e in expected]
    assert [row["probability"] for row in output] == pytest.approx(
        [e["probability"] for e in expected], abs=2e-6
    )
    assert {row["model_version"] for row in output} == {2}


def bad_inputs(folder: Path) -> tuple[Path, Path]:
    """A CSV and a JSONL file with bad rows on known lines (a blank line is not one)."""
    folder.mkdir()
    lines = folder / "bad.csv.tmp"
    heart_csv(lines, 60)
    text = lines.read_text().splitlines()
    text[4] = text[4].replace(text[4].split(",")[5], "lots", 1)  # line 5: chol not a number
    text[8] = ",".join(text[8].split(",")[:-2])  # line 9: two fields short
    text[11] = ""  # line 12: blank, skipped
    cells = text[40].split(",")
    cells[1] = ""  # line 41: age missing (only ca and thal may be)
    text[40] = ",".join(cells)
    (folder / "bad.csv").write_text("\n".join(text) + "\n")
    lines.unlink()
    records = [as_record(row) for row in synthetic_rows(6, seed=9, missing_rate=0)]
    json_lines = [json.dumps(record) for record in records]
    json_lines[2] = "{not json"
    json_lines[3] = json.dumps({**records[3], "chol": "high"})
    json_lines[4] = json.dumps({k: v for k, v in records[4].items() if k != "sex"})
    (folder / "bad.jsonl").write_text("\n".join(json_lines) + "\n")
    return folder / "bad.csv", folder / "bad.jsonl"


def test_bad_rows_go_to_the_rejects_file_with_file_and_line(
    scoring: BatchScoring, tmp_path: Path
) -> None:
    csv_file, json_file = bad_inputs(tmp_path / "in")
    request = ScoreRequest(
        "heart", (str(csv_file), str(json_file)), str(tmp_path / "out"), block_size=1024
    )
    prepared = scoring.prepare(request)
    assert prepared.view.parts_total > 3  # the bad lines are spread over several parts
    view = scoring.run(prepared)
    assert (view.rows_scored, view.rows_rejected) == (59 - 3 + 6 - 3, 6)
    rejects = arrow_csv.read_csv(tmp_path / "out" / "_rejects.csv").to_pylist()
    found = [(Path(r["file"]).name, r["line"]) for r in rejects]
    assert found == [
        ("bad.csv", 5), ("bad.csv", 9), ("bad.csv", 41),
        ("bad.jsonl", 3), ("bad.jsonl", 4), ("bad.jsonl", 5),
    ]  # fmt: skip
    problems = [r["problem"] for r in rejects]
    assert "'lots' is not a number" in problems[0]
    assert "13 fields, the header has 15" in problems[1]
    assert "column 'age': missing value" in problems[2]
    assert "not JSON" in problems[3] and "'high' is not a number" in problems[4]
    assert "column 'sex' is missing" in problems[5]


def test_more_rejects_than_the_limit_fail_the_job_and_a_higher_limit_goes_on(
    scoring: BatchScoring, tmp_path: Path
) -> None:
    csv_file, _ = bad_inputs(tmp_path / "in")
    request = ScoreRequest(
        "heart", (str(csv_file),), str(tmp_path / "out"), max_rejects=1, block_size=1024,
        parallelism=1,
    )  # fmt: skip
    with pytest.raises(TooManyRejectsError, match=r"rejected rows, more than --max-rejects 1"):
        scoring.run(scoring.prepare(request))
    failed = scoring.prepare(ScoreRequest("heart", (str(csv_file),), str(tmp_path / "out")))
    assert failed.resumed and failed.view.status == "failed"
    assert "--max-rejects 1" in (failed.view.error or "")
    view = scoring.run(failed)
    assert (view.status, view.rows_scored, view.rows_rejected) == ("succeeded", 56, 3)


def test_a_job_killed_with_sigkill_resumes_to_every_row_exactly_once(
    scoring: BatchScoring, home: Path, tmp_path: Path, ray_cluster: str
) -> None:
    source = tmp_path / "big.csv"
    heart_csv(source, ROWS)
    output = tmp_path / "out"
    command = [
        sys.executable, "-m", "conveyor.cli", "--home", str(home), "score", "heart", str(source),
        "-o", str(output), "--columns", "id", "--block-size", "8KiB", "--parallelism", "1",
    ]  # fmt: skip
    # The command joins the tests' Ray (as it would join a cluster's), so the kill takes the
    # driver alone; Ray then ends the driver's actors, as after a crash.
    environment = {
        **os.environ, "CONVEYOR_DATABASE_URL": f"sqlite:///{home}/c.db", "RAY_ADDRESS": ray_cluster
    }  # fmt: skip
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    sessions = scoring.installation.sessions
    try:
        committed = _wait_for_committed_parts(sessions, process, str(output), at_least=3)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    with sessions() as session:
        total = session.execute(
            select(ScoringJob.parts_total).where(ScoringJob.output == str(output))
        ).scalar_one()
    assert committed < total, "the job finished before it could be killed; raise the rows"

    prepared = scoring.prepare(ScoreRequest("heart", (str(source),), str(output)))
    assert prepared.resumed and 0 < len(prepared.pending) < total
    view = scoring.run(prepared)
    ids = read_output(output).column("id").to_pylist()
    assert (view.rows_scored, len(ids), len(set(ids))) == (ROWS, ROWS, ROWS)
    assert not list(output.glob(".*.tmp"))


def _wait_for_committed_parts(sessions: Any, process: Any, output: str, at_least: int) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        with sessions() as session:
            done = session.execute(
                select(func.count())
                .select_from(ScoringPart)
                .join(ScoringJob, ScoringJob.id == ScoringPart.job_id)
                .where(ScoringJob.output == output, ScoringPart.committed_at.is_not(None))
            ).scalar_one()
        if done >= at_least:
            return int(done)
        time.sleep(0.05)
    raise AssertionError("no part committed within 300 s")


def test_memory_stays_flat_when_the_input_grows_tenfold(
    scoring: BatchScoring, tmp_path: Path
) -> None:
    small = tmp_path / "small.csv"
    heart_csv(small, ROWS)
    large = tmp_path / "large.csv"
    header, *body = small.read_text().splitlines(keepends=True)
    with large.open("w") as handle:
        handle.write(header)
        for _ in range(10):
            handle.writelines(body)
    peaks = {}
    for path in (small, large):
        seen: list[int] = []
        request = ScoreRequest(
            "heart", (str(path),), str(tmp_path / f"out-{path.stem}"), columns=("id",),
            block_size=256 * 1024, parallelism=1,
        )  # fmt: skip
        scoring.run(scoring.prepare(request), _collect_peaks(seen))
        peaks[path.stem] = max(seen)
    assert large.stat().st_size > 10 * 256 * 1024
    assert peaks["large"] < peaks["small"] + 64 * 1024 * 1024, peaks


def _collect_peaks(seen: list[int]) -> Any:
    return lambda result, _: seen.append(result.peak_rss_bytes)


def test_the_api_starts_a_job_under_the_storage_root_and_reports_it(served: Any) -> None:
    root = Path(served.installation.storage.root)
    (root / "batch").mkdir(parents=True, exist_ok=True)
    heart_csv(root / "batch" / "visits.csv", 120)
    refused = served.client.post(
        "/api/v1/models/heart/batch", json={"inputs": ["../etc/x.csv"], "output": "o"}
    )
    assert refused.status_code == 422
    assert "not a path under the storage root" in refused.json()["error"]["message"]
    body = {"inputs": ["batch/*.csv"], "output": "batch/scored", "columns": ["id"]}
    started = served.client.post("/api/v1/models/heart/batch", json=body)
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["model"], job["version"], job["rows_total"]) == ("heart", 1, 120)
    deadline = time.monotonic() + 120
    while job["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        job = served.client.get(f"/api/v1/models/heart/batch/{job['id']}").json()
    assert (job["status"], job["rows_scored"], job["parts_done"]) == ("succeeded", 120, 1)
    assert read_output(root / "batch" / "scored").num_rows == 120
