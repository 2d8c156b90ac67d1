"""Batch scoring through the client, sync and async, against the client tests' real
`conveyor up`: a job over a CSV under the server's storage root, waited for, read back; and
the API's refusals as typed exceptions. Runs after test_sync.py (file order), whose training
leaves a heart champion; run alone, it trains one first."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pandas
import pytest

from conveyor.client import (
    AsyncClient,
    BatchJob,
    Client,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_rows

ROWS = 40


def _storage_root(server) -> Path:  # type: ignore[no-untyped-def]
    return server.up.log.parent / "home" / "storage"  # conftest: <tmp>/home, default storage


def _visits(server) -> str:  # type: ignore[no-untyped-def]
    """A CSV of visits with an id column, under the storage root; its relative folder."""
    folder = f"batch-client-{uuid.uuid4().hex[:8]}"
    path = _storage_root(server) / folder / "visits.csv"
    path.parent.mkdir(parents=True)
    rows = [row[:13] for row in synthetic_rows(ROWS, seed=21, missing_rate=0)]
    frame = pandas.DataFrame(rows, columns=HEART_SCHEMA.features)
    frame.insert(0, "id", range(ROWS))
    frame.to_csv(path, index=False)
    return folder


def _champion(client: Client) -> None:
    """A heart champion to score with: test_sync.py's, or one trained here."""
    if "heart" not in {m.name for m in client.models()} or (
        "champion" not in client.model("heart").aliases
    ):
        client.train("heart", wait=True, timeout=240, progress=False)


def test_score_batch_waits_and_reads_back(server) -> None:  # type: ignore[no-untyped-def]
    folder = _visits(server)
    with (
        Client(server.url, server.tokens["operator"], timeout=30) as client,
        Client(server.url, server.tokens["viewer"], timeout=30) as viewer,
    ):
        _champion(client)
        job = client.score_batch(
            "heart", f"{folder}/*.csv", f"{folder}/scored", columns=["id"], wait=True,
            timeout=180, poll_interval=0.2,
        )  # fmt: skip
        assert isinstance(job, BatchJob) and job.succeeded, job
        assert (job.rows_total, job.rows_scored, job.rows_rejected) == (ROWS, ROWS, 0)
        assert job.version == client.model("heart").aliases["champion"]
        assert viewer.batch_job("heart", job.id) == job  # viewers may read a job
        with pytest.raises(PermissionDeniedError):
            viewer.score_batch("heart", f"{folder}/*.csv", f"{folder}/again")
        with pytest.raises(ValidationError):
            client.score_batch("heart", "../outside.csv", f"{folder}/never")
        with pytest.raises(NotFoundError):
            client.batch_job("heart", uuid.uuid4().hex)
    scored = pandas.read_parquet(_storage_root(server) / folder / "scored")
    assert sorted(scored["id"].astype(int)) == list(range(ROWS))  # copied as text
    assert "<table" in job._repr_html_() and "40/40" in str(job)


def test_async_score_batch_resumes_the_same_job(server) -> None:  # type: ignore[no-untyped-def]
    folder = _visits(server)

    async def scenario() -> tuple[BatchJob, BatchJob]:
        async with AsyncClient(server.url, server.tokens["operator"]) as client:
            with Client(server.url, server.tokens["operator"], timeout=30) as sync:
                _champion(sync)
            started = await client.score_batch("heart", [f"{folder}/visits.csv"], f"{folder}/o")
            done = await client.wait_for_batch(started, timeout=180, poll_interval=0.2)
            again = await client.score_batch(
                "heart", [f"{folder}/visits.csv"], f"{folder}/o", wait=True, timeout=60
            )
            return done, again

    done, again = asyncio.run(scenario())
    assert done.succeeded and done.rows_scored == ROWS
    assert again.id == done.id and again.succeeded  # the same output names the same job
