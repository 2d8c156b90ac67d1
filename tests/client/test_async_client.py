"""conveyor.client.AsyncClient against the same real `conveyor up`: the calls a notebook or a
service awaits, errors included, run under asyncio."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas
import pytest

from conveyor.client import AsyncClient, AuthenticationError, ConflictError, NotFoundError
from conveyor.pipelines.heart.data import synthetic_rows


async def _records_files_and_results(client: AsyncClient, tmp_path: Path) -> None:
    me = await client.me()
    assert me.role == "operator"
    assert "text_stats" in {p.name for p in await client.pipelines()}
    records = await client.submit_records("noop", [{"async": 1}, {"async": 2}], force=True)
    source = tmp_path / "async notes.txt"
    source.write_text("red green blue")
    [upload] = await client.submit_files("text_stats", [source], force=True)
    done = await client.wait([*records, upload], progress=False, poll_interval=0.3)
    assert [d.status for d in done] == ["succeeded"] * 3
    assert (await client.result(upload.item_id)).result["words"] == 3
    saved = await client.download_artifact(upload.item_id, "words.txt", tmp_path / "w.txt")
    assert saved.read_text() == "red\ngreen\nblue"
    assert "measuring" in await client.logs(upload.item_id)
    assert "words.txt" in await client.artifacts(upload.item_id)
    assert await client.read_artifact(upload.item_id, "words.txt") == b"red\ngreen\nblue"
    results = await client.results("noop", q=records[0].item_id[:12])
    assert results.to_pandas()["result.async"].tolist() == [1]
    listed = await client.items("noop", limit=1)
    assert [i.pipeline for i in listed] == ["noop"]
    export = await client.download_results("noop", tmp_path / "noop.csv", format="csv")
    assert records[0].item_id in export.read_text()


async def _states_and_errors(client: AsyncClient, stranger: AsyncClient) -> None:
    slow = await client.submit_record("noop", {"sleep_ms": 3000, "async": "cancel"}, force=True)
    cancelled = await client.cancel(slow.item_id)  # at once if queued, else when it next looks
    assert cancelled.status == "cancelled" or cancelled.cancel_requested
    await client.wait(slow, progress=False, poll_interval=0.3)
    with pytest.raises(ConflictError):
        await client.cancel(slow.item_id)
    assert (await client.retry(slow.item_id)).status == "queued"
    assert await client.retry_failed("noop") >= 0
    with pytest.raises(NotFoundError):
        await client.item("fedcba9876543210")
    with pytest.raises(AuthenticationError):
        await stranger.me()
    assert isinstance(await client.models(), list)
    assert "heart" in {e.name for e in await client.endpoints()}
    assert (await client.routing("heart")).model == "heart"
    assert isinstance(await client.experiments("heart"), list)
    with pytest.raises(NotFoundError):
        await client.experiment(2**31 - 1)
    with pytest.raises(NotFoundError):
        await client.model("no-such")


async def _model_calls(client: AsyncClient, admin: AsyncClient) -> None:
    rows = pandas.DataFrame([[float(v) for v in row] for row in synthetic_rows(3, 5, 0)])
    added = await client.add_rows("heart", rows, source="async-test")
    assert added["added"] == 3 and added["total"] >= 3
    with pytest.raises(NotFoundError):
        await admin.promote("no-such", 1)
    with pytest.raises(NotFoundError):
        await admin.compare("no-such")
    with pytest.raises(ConflictError):  # the API answers 409, not 404, for an unknown model here
        await admin.rollback("no-such")


def test_async_client_calls(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        async with (
            AsyncClient(server.url, server.tokens["operator"]) as client,
            AsyncClient(server.url, "cvy_wrong") as stranger,
            AsyncClient(server.url, server.tokens["admin"]) as admin,
        ):
            await _records_files_and_results(client, tmp_path)
            await _states_and_errors(client, stranger)
            await _model_calls(client, admin)

    asyncio.run(scenario())
