"""The asyncio (and trio) client: ``AsyncClient(url, token)``, the same calls as
:class:`conveyor.client.Client`, awaited. Errors are the typed exceptions of
:mod:`conveyor.client.errors`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import httpx

from conveyor.client import calls, inputs
from conveyor.client.calls import Call
from conveyor.client.connection import Connection
from conveyor.client.downloads import Download
from conveyor.client.errors import ConveyorConnectionError, WaitTimeoutError, api_error
from conveyor.client.experiments import Experiment
from conveyor.client.frames import ResultSet
from conveyor.client.models import (
    AliasChange,
    Endpoint,
    Item,
    ItemDetail,
    ItemResult,
    Me,
    Model,
    ModelSummary,
    ModelVersion,
    Pipeline,
    Predictions,
    Submission,
    Training,
    VersionComparison,
)
from conveyor.client.progress import WaitProgress, finished_count
from conveyor.client.scoring import BatchJob, batch_body

T = TypeVar("T")
PAGE = 500
EVENTS_PER_REQUEST = 5_000  # the API takes at most 10,000 per request


class AsyncClient:
    """A connection to a Conveyor server.

    ``url`` and ``token`` default to ``CONVEYOR_URL`` and ``CONVEYOR_TOKEN``. Use it as an
    ``async with`` block, or await :meth:`aclose`. Every method is documented on
    :class:`conveyor.client.Client`.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.connection = Connection.resolve(url, token, timeout)
        self.http = httpx.AsyncClient(**self.connection.client_options(transport=transport))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<conveyor.client.AsyncClient {self.connection.url}>"

    # -- transport ------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **options)
        except httpx.TransportError as error:
            raise ConveyorConnectionError(self.connection.url, error) from error
        if response.is_error:
            raise api_error(response)
        return response

    async def _run(self, call: Call[T]) -> T:
        response = await self._request(
            call.method, call.path, params=call.params, json=call.json, headers=call.headers
        )
        return call.parse(response.json())

    async def _download(self, path: str, destination: Download, params: dict[str, Any]) -> Path:
        request = self.http.build_request("GET", path, params=params)
        try:
            response = await self.http.send(request, stream=True)
        except httpx.TransportError as error:
            raise ConveyorConnectionError(self.connection.url, error) from error
        try:
            if response.is_error:
                await response.aread()
                raise api_error(response)
            with destination.writer() as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        finally:
            await response.aclose()
        return destination.path

    # -- who, what ------------------------------------------------------------------------

    async def me(self) -> Me:
        """Who the token is (name, role); a quick check that URL and token work."""
        return await self._run(calls.me())

    async def pipelines(self) -> list[Pipeline]:
        return await self._run(calls.pipelines())

    # -- submitting -----------------------------------------------------------------------

    async def submit_file(
        self,
        pipeline: str,
        file: inputs.FileInput,
        *,
        force: bool = False,
        filename: str | None = None,
    ) -> Submission:
        """Upload a file (a path or an open binary file), streamed in chunks."""
        with inputs.upload(file, filename) as (name, opened):
            files = {"file": (name, opened, "application/octet-stream")}
            data = inputs.upload_form(pipeline, force)
            response = await self._request("POST", "/items", data=data, files=files)
        return calls.submission(response.json())

    async def submit_files(
        self, pipeline: str, files: Iterable[inputs.FileInput], *, force: bool = False
    ) -> list[Submission]:
        return [await self.submit_file(pipeline, file, force=force) for file in files]

    async def submit_record(self, pipeline: str, record: Any, *, force: bool = False) -> Submission:
        """Submit one JSON record (at most 1 MiB)."""
        return await self._run(calls.submit_record(pipeline, record, force))

    async def submit_reference(
        self, pipeline: str, url: str, *, force: bool = False, name: str | None = None
    ) -> Submission:
        """Submit a file by reference: a path on a shared mount or a URL (``s3://...``) under
        the server's ``reference_roots``, read where it lies, never uploaded."""
        return await self._run(calls.submit_reference(pipeline, url, force, name))

    async def submit_records(
        self, pipeline: str, records: Any, *, force: bool = False
    ) -> list[Submission]:
        """Submit each row of a DataFrame, or each dict of an iterable, as one item."""
        rows = inputs.records_of(records)
        return [await self.submit_record(pipeline, row, force=force) for row in rows]

    # -- items ----------------------------------------------------------------------------

    async def item(self, item_id: str) -> ItemDetail:
        """One item (id or a unique prefix of 6+ characters) with its steps and result."""
        return await self._run(calls.item(item_id))

    async def iter_items(
        self,
        pipeline: str | None = None,
        status: str | None = None,
        q: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = PAGE,
    ) -> AsyncIterator[Item]:
        """Every matching item, newest first, fetched page by page as you iterate."""
        query = calls.filters(pipeline, status, q, created_after, created_before)
        cursor: str | None = None
        while True:
            page, cursor = await self._run(calls.items_page(query, cursor, page_size))
            for item in page:
                yield item
            if cursor is None:
                return

    async def items(
        self, pipeline: str | None = None, *, limit: int = 50, **filters: Any
    ) -> list[Item]:
        """The newest ``limit`` matching items (filters: ``status``, ``q``, ``created_after``,
        ``created_before``)."""
        found: list[Item] = []
        async for item in self.iter_items(pipeline, page_size=min(limit, PAGE), **filters):
            if len(found) >= limit:
                break
            found.append(item)
        return found

    async def result(self, item_id: str) -> ItemResult:
        """The item's result; :class:`NotFoundError` (``no_result``) until it succeeded."""
        return await self._run(calls.result(item_id))

    async def logs(self, item_id: str) -> str:
        """Every step attempt's log, in order."""
        return (await self.item(item_id)).logs

    async def artifacts(self, item_id: str) -> list[str]:
        """Names of the files in the item's work folder (its input and what steps saved)."""
        return (await self.item(item_id)).artifacts

    async def download_artifact(
        self, item_id: str, name: str, destination: str | Path | None = None
    ) -> Path:
        """Stream an artifact to ``destination`` (a file or a folder; default: the current
        folder); returns the file's path. Nothing is left behind if the download fails."""
        target = Download.to(destination, name)
        return await self._download(calls.artifact_path(item_id, name), target, {})

    async def read_artifact(self, item_id: str, name: str) -> bytes:
        """An artifact's bytes, for showing a picture or a short clip inline in a notebook
        (use :meth:`download_artifact` for large files)."""
        return (await self._request("GET", calls.artifact_path(item_id, name))).content

    async def cancel(self, item_id: str) -> Item:
        return await self._run(calls.cancel(item_id))

    async def retry(self, item_id: str) -> Item:
        return await self._run(calls.retry(item_id))

    async def retry_failed(self, pipeline: str | None = None) -> int:
        """Queue every failed item (of ``pipeline``) again; returns how many."""
        return await self._run(calls.retry_failed(pipeline))

    async def wait(
        self,
        items: Any,
        *,
        timeout: float | None = None,
        progress: bool = True,
        poll_interval: float = 1.0,
    ) -> list[ItemDetail]:
        """Block until every item (ids, submissions or items) is final, with a progress bar;
        returns them in the same order. :class:`WaitTimeoutError` after ``timeout`` seconds."""
        ids = inputs.item_ids(items)
        details: dict[str, ItemDetail] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        with WaitProgress(len(ids), progress) as bar:
            while True:
                await self._refresh(ids, details)
                statuses = {i: d.status for i, d in details.items()}
                bar.update(statuses)
                if finished_count(statuses) == len(ids):
                    return [details[i] for i in ids]
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeoutError(
                        timeout or 0, [i for i in ids if not details[i].finished]
                    )
                await anyio.sleep(poll_interval)

    async def _refresh(self, ids: list[str], details: dict[str, ItemDetail]) -> None:
        for item_id in ids:
            if item_id not in details or not details[item_id].finished:
                details[item_id] = await self.item(item_id)

    # -- results --------------------------------------------------------------------------

    async def results(
        self,
        pipeline: str,
        *,
        status: str | None = None,
        q: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> ResultSet:
        """A pipeline's rows (one per item) with results: ``.to_pandas()``, ``.to_arrow()``,
        ``.to_polars()``."""
        query = calls.filters(None, status, q, created_after, created_before)
        return await self._run(calls.results(pipeline, query))

    async def download_results(
        self,
        pipeline: str,
        destination: str | Path,
        *,
        format: Literal["parquet", "csv", "json"] = "parquet",
        status: str | None = None,
        q: str | None = None,
    ) -> Path:
        """Stream a pipeline's export to a file, for exports too big for memory."""
        params = calls.filters(pipeline, status, q) | {"format": format}
        return await self._download(
            "/results", Download.to(destination, f"{pipeline}.{format}"), params
        )

    # -- models ---------------------------------------------------------------------------

    async def models(self) -> list[ModelSummary]:
        return await self._run(calls.models())

    async def model(self, name: str) -> Model:
        """A registered model with its aliases and every version (metrics, params)."""
        return await self._run(calls.model(name))

    async def versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, newest first."""
        return (await self.model(name)).versions

    async def compare(self, name: str, versions: Iterable[int] | None = None) -> VersionComparison:
        """Versions side by side (all, or the ones named): ``.to_pandas()``, ``.best(metric)``."""
        found = await self.model(name)
        chosen = found.versions if versions is None else [found.version(v) for v in versions]
        return VersionComparison(name, chosen)

    async def history(self, name: str) -> list[AliasChange]:
        """Every alias change of a model: when, who or what, why."""
        return await self._run(calls.history(name))

    async def train(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        progress: bool = True,
    ) -> Training:
        """Queue a training run on the model's configured dataset; with ``wait``, return once
        its version is registered (``.version``, and the gate's decision)."""
        training = await self._run(calls.train(name, params))
        if not wait:
            return training
        return await self.wait_for_training(training, timeout=timeout, progress=progress)

    async def wait_for_training(
        self, training: Training, *, timeout: float | None = None, progress: bool = True
    ) -> Training:
        started = time.monotonic()
        [item] = await self.wait(training.item_id, timeout=timeout, progress=progress)
        if not item.succeeded:
            return Training(training.model, training.item_id, item)
        while True:
            change = inputs.registration_of(await self.history(training.model), item.item_id)
            if change is not None:
                return Training(training.model, training.item_id, item, change)
            if timeout is not None and time.monotonic() - started >= timeout:
                raise WaitTimeoutError(timeout, [item.item_id])
            await anyio.sleep(0.5)  # `conveyor up` registers the version within a few seconds

    async def promote(self, name: str, version: int, reason: str | None = None) -> AliasChange:
        """Make ``version`` the champion (admins)."""
        return await self._run(calls.promote(name, version, reason))

    async def rollback(self, name: str, reason: str | None = None) -> AliasChange:
        """Give the champion back to the previous one (admins)."""
        return await self._run(calls.rollback(name, reason))

    async def add_rows(self, name: str, rows: Any, source: str = "client") -> dict[str, int]:
        """New labelled rows (CSV text or a DataFrame in the dataset's column order) for the
        model's next training; returns ``added``, ``waiting`` and ``total``."""
        return await self._run(calls.add_rows(name, inputs.rows_csv(rows), source))

    # -- batch scoring --------------------------------------------------------------------

    async def score_batch(
        self,
        name: str,
        inputs: str | list[str],
        output: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        columns: list[str] | None = None,
        format: Literal["parquet", "csv"] = "parquet",
        max_rejects: int | None = None,
        wait: bool = False,
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> BatchJob:
        """Score CSV/JSONL files (paths or globs under the server's storage root) with the
        champion of ``name`` (or ``version``/``alias``) into the folder ``output`` (operators;
        docs/scoring.md). The same ``output`` again resumes an unfinished job. With ``wait``,
        return once it finished; :class:`WaitTimeoutError` after ``timeout`` seconds."""
        body = batch_body(inputs, output, version, alias, columns, format, max_rejects)
        job = await self._run(calls.start_batch(name, body))
        if not wait:
            return job
        return await self.wait_for_batch(job, timeout=timeout, poll_interval=poll_interval)

    async def batch_job(self, name: str, job_id: str) -> BatchJob:
        """A batch scoring job of model ``name``: status, parts and rows done, rejects."""
        return await self._run(calls.batch(name, job_id))

    async def wait_for_batch(
        self, job: BatchJob, *, timeout: float | None = None, poll_interval: float = 1.0
    ) -> BatchJob:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not job.done:
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(timeout or 0, [job.id])
            await anyio.sleep(poll_interval)
            job = await self.batch_job(job.model, job.id)
        return job

    # -- serving --------------------------------------------------------------------------

    async def endpoints(self) -> list[Endpoint]:
        return await self._run(calls.endpoints())

    async def predict(self, endpoint: str, data: Any, *, key: str | None = None) -> Predictions:
        """Predictions for one row (a dict), a list of dicts or a DataFrame (sent in batches
        of 500 rows); one output row per input row, in order."""
        rows: list[dict[str, Any]] = []
        for body in inputs.predict_bodies(data):
            rows += (await self._run(calls.predict(endpoint, body, key))).rows
        return Predictions(endpoint, rows)

    async def feedback(
        self, prediction_id: str, *, label: Any = None, event: str | None = None, value: Any = None
    ) -> dict[str, Any]:
        """The true outcome (``label``) or a watch/click ``event`` for a logged prediction."""
        return await self._run(
            calls.feedback(prediction_id, inputs.feedback_body(label, event, value))
        )

    async def routing(self, endpoint: str) -> Endpoint:
        """An endpoint's routing, and the version this server answers each arm with."""
        return await self._run(calls.routing(endpoint))

    async def set_routing(
        self,
        endpoint: str,
        config: dict[str, Any],
        *,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> Endpoint:
        """Replace an endpoint's routing (docs/serving.md; operators may only move traffic
        toward the champion, admins anything). With ``wait``, return once the server answers
        every arm that has traffic (:class:`WaitTimeoutError` after ``timeout`` seconds)."""
        changed = await self._run(calls.set_routing(endpoint, config))
        deadline = time.monotonic() + timeout
        while wait and not changed.serves_every_arm:
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(timeout, [endpoint])
            await anyio.sleep(0.25)  # replicas reload the routing within about a second
            changed = await self.routing(endpoint)
        return changed

    async def record_events(self, endpoint: str, events: Any) -> int:
        """Watch or click events of users (``user_id``, ``movie_id``, optional ``kind``:
        ``watch`` or ``click``) as dicts or a DataFrame; returns how many were recorded."""
        rows = inputs.records_of(events)
        recorded = 0
        for start in range(0, len(rows), EVENTS_PER_REQUEST):
            batch = rows[start : start + EVENTS_PER_REQUEST]
            recorded += await self._run(calls.record_events(endpoint, batch))
        return recorded

    # -- experiments ----------------------------------------------------------------------

    async def start_experiment(
        self,
        endpoint: str,
        name: str,
        metric: str,
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
    ) -> Experiment:
        """Measure ``metric`` (``accuracy`` from label feedback, ``ctr`` from watch events)
        per arm of ``endpoint`` from ``starts_at`` (default now); it moves no traffic."""
        return await self._run(calls.start_experiment(endpoint, name, metric, starts_at, ends_at))

    async def experiments(self, endpoint: str | None = None) -> list[Experiment]:
        return await self._run(calls.experiments(endpoint))

    async def experiment(self, experiment_id: int) -> Experiment:
        """An experiment with each arm's result so far (95% Wilson intervals)."""
        return await self._run(calls.experiment(experiment_id))

    async def end_experiment(self, experiment_id: int) -> Experiment:
        return await self._run(calls.end_experiment(experiment_id))
