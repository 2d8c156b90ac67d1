"""The API's JSON calls as data: what to send and how to read the answer. The sync and the
async client both run these, so each call is written once (sans-I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

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
    Pipeline,
    Predictions,
    Submission,
    Training,
    build,
    prediction_rows,
)
from conveyor.client.scoring import BatchJob

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def segment(value: str | int) -> str:
    """One path segment, escaped: ids and names come from the caller."""
    return quote(str(value), safe="")


def artifact_path(item_id: str, name: str) -> str:
    return f"/items/{segment(item_id)}/artifacts/{quote(name, safe='/')}"


def filters(
    pipeline: str | None = None,
    status: str | None = None,
    q: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> dict[str, Any]:
    """The query parameters of ``GET /items`` and ``GET /results``, without the unset ones."""
    values = {
        "pipeline": pipeline,
        "status": status,
        "q": q,
        "created_after": created_after.isoformat() if created_after else None,
        "created_before": created_before.isoformat() if created_before else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def me() -> Call[Me]:
    return Call("GET", "/auth/me", lambda data: build(Me, data))


def pipelines() -> Call[list[Pipeline]]:
    return Call("GET", "/pipelines", lambda data: [build(Pipeline, p) for p in data])


def submission(data: dict[str, Any]) -> Submission:
    return build(Submission, data)


def submit_record(pipeline: str, record: Any, force: bool) -> Call[Submission]:
    body = {"pipeline": pipeline, "record": record, "force": force}
    return Call("POST", "/items", submission, json=body)


def submit_reference(pipeline: str, url: str, force: bool, name: str | None) -> Call[Submission]:
    body = {"pipeline": pipeline, "url": url, "force": force, "name": name}
    return Call("POST", "/items/references", submission, json=body)


def item(item_id: str) -> Call[ItemDetail]:
    return Call("GET", f"/items/{segment(item_id)}", ItemDetail.from_api)


def items_page(
    query: dict[str, Any], cursor: str | None, limit: int
) -> Call[tuple[list[Item], str | None]]:
    params = query | {"limit": limit} | ({"cursor": cursor} if cursor else {})

    def parse(data: dict[str, Any]) -> tuple[list[Item], str | None]:
        return [build(Item, i) for i in data["items"]], data.get("next_cursor")

    return Call("GET", "/items", parse, params=params)


def result(item_id: str) -> Call[ItemResult]:
    return Call("GET", f"/items/{segment(item_id)}/result", lambda d: build(ItemResult, d))


def cancel(item_id: str) -> Call[Item]:
    return Call("POST", f"/items/{segment(item_id)}/cancel", lambda d: build(Item, d))


def retry(item_id: str) -> Call[Item]:
    return Call("POST", f"/items/{segment(item_id)}/retry", lambda d: build(Item, d))


def retry_failed(pipeline: str | None) -> Call[int]:
    body = {"pipeline": pipeline} if pipeline else {}
    return Call("POST", "/items/retry-failed", lambda d: int(d["queued"]), json=body)


def results(pipeline: str, query: dict[str, Any]) -> Call[ResultSet]:
    params = query | {"pipeline": pipeline, "format": "json"}
    return Call("GET", "/results", lambda rows: ResultSet(pipeline, rows), params=params)


def models() -> Call[list[ModelSummary]]:
    return Call("GET", "/models", lambda d: [build(ModelSummary, m) for m in d["models"]])


def model(name: str) -> Call[Model]:
    return Call("GET", f"/models/{segment(name)}", Model.from_api)


def history(name: str) -> Call[list[AliasChange]]:
    path = f"/models/{segment(name)}/history"
    return Call("GET", path, lambda d: [build(AliasChange, c) for c in d["changes"]])


def train(name: str, params: dict[str, Any] | None) -> Call[Training]:
    path = f"/models/{segment(name)}/train"
    return Call("POST", path, lambda d: Training(name, d["item_id"]), json={"params": params or {}})


def promote(name: str, version: int, reason: str | None) -> Call[AliasChange]:
    body: dict[str, Any] = {"version": version} | ({"reason": reason} if reason else {})
    path = f"/models/{segment(name)}/promote"
    return Call("POST", path, lambda d: build(AliasChange, d), json=body)


def rollback(name: str, reason: str | None) -> Call[AliasChange]:
    body = {"reason": reason} if reason else {}
    path = f"/models/{segment(name)}/rollback"
    return Call("POST", path, lambda d: build(AliasChange, d), json=body)


def add_rows(name: str, csv: str, source: str) -> Call[dict[str, int]]:
    path = f"/models/{segment(name)}/rows"
    return Call("POST", path, dict, json={"csv": csv, "source": source})


def endpoints() -> Call[list[Endpoint]]:
    return Call("GET", "/endpoints", lambda d: [build(Endpoint, e) for e in d["endpoints"]])


def predict(endpoint: str, body: Any, key: str | None) -> Call[Predictions]:
    path = f"/endpoints/{segment(endpoint)}/predict"
    headers = {"X-Request-Key": key} if key is not None else {}

    def parse(answer: dict[str, Any]) -> Predictions:
        return Predictions(endpoint, prediction_rows(answer))

    return Call("POST", path, parse, json=body, headers=headers)


def feedback(prediction_id: str, body: dict[str, Any]) -> Call[dict[str, Any]]:
    path = f"/predictions/{segment(prediction_id)}/feedback"
    return Call("POST", path, dict, json=body)


def routing(endpoint: str) -> Call[Endpoint]:
    path = f"/endpoints/{segment(endpoint)}/routing"
    return Call("GET", path, lambda d: build(Endpoint, d))


def set_routing(endpoint: str, config: dict[str, Any]) -> Call[Endpoint]:
    path = f"/endpoints/{segment(endpoint)}/routing"
    return Call("PUT", path, lambda d: build(Endpoint, d), json=config)


def record_events(endpoint: str, events: list[dict[str, Any]]) -> Call[int]:
    path = f"/endpoints/{segment(endpoint)}/events"
    return Call("POST", path, lambda d: int(d["recorded"]), json={"events": events})


def start_experiment(
    endpoint: str,
    name: str,
    metric: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
) -> Call[Experiment]:
    body: dict[str, Any] = {"endpoint": endpoint, "name": name, "metric": metric}
    body |= {"starts_at": starts_at.isoformat()} if starts_at else {}
    body |= {"ends_at": ends_at.isoformat()} if ends_at else {}
    return Call("POST", "/experiments", Experiment.from_api, json=body)


def experiments(endpoint: str | None) -> Call[list[Experiment]]:
    params = {"endpoint": endpoint} if endpoint else None

    def parse(data: dict[str, Any]) -> list[Experiment]:
        return [Experiment.from_api(e) for e in data["experiments"]]

    return Call("GET", "/experiments", parse, params=params)


def experiment(experiment_id: int) -> Call[Experiment]:
    return Call("GET", f"/experiments/{segment(experiment_id)}", Experiment.from_api)


def end_experiment(experiment_id: int) -> Call[Experiment]:
    path = f"/experiments/{segment(experiment_id)}/end"
    return Call("POST", path, Experiment.from_api)


def start_batch(name: str, body: dict[str, Any]) -> Call[BatchJob]:
    return Call("POST", f"/models/{segment(name)}/batch", BatchJob.from_api, json=body)


def batch(name: str, job_id: str) -> Call[BatchJob]:
    path = f"/models/{segment(name)}/batch/{segment(job_id)}"
    return Call("GET", path, BatchJob.from_api)
