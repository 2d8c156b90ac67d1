"""/api/v1/models: registered models, versions with metrics, alias history; train, promote,
roll back (admins), and download a version's ONNX file.

Training through the API takes parameters only: the dataset is the model's configured one, never
a path sent by the caller.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from conveyor.api.errors import error_responses
from conveyor.api.security import admin, operator, viewer
from conveyor.api.timestamps import UtcDatetime
from conveyor.auth.service import Principal
from conveyor.delivery.tags import COMMIT_TAG
from conveyor.errors import ConveyorError, InputRejectedError
from conveyor.models.catalog import model_entries, model_entry
from conveyor.models.registry import VersionInfo
from conveyor.models.service import ModelOps
from conveyor.models.submission import DATASET_PARAM

router = APIRouter(prefix="/models", tags=["models"])
ModelName = Annotated[
    str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Model name")
]
MAX_ROWS_CSV = 1 << 20
SHOWN_PARAMS = ("chosen_candidate", "dataset_sha256", "dataset_source", "code_version")


class ModelSummary(BaseModel):
    name: str
    versions: int
    champion: int | None
    challenger: int | None


class ModelList(BaseModel):
    models: list[ModelSummary]


class VersionOut(BaseModel):
    version: int
    aliases: list[str]
    created_at: UtcDatetime
    run_id: str | None
    metrics: dict[str, float]
    params: dict[str, str]
    source_commit: str | None = None  # the model repository's commit of a delivered version


class ModelDetail(BaseModel):
    name: str
    aliases: dict[str, int]
    versions: list[VersionOut]


class AliasChangeOut(BaseModel):
    alias: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    item_id: str | None = None
    created_at: UtcDatetime | None = None


class AliasHistory(BaseModel):
    changes: list[AliasChangeOut]


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)


class TrainingQueued(BaseModel):
    item_id: str


class NewRows(BaseModel):
    model_config = ConfigDict(extra="forbid")

    csv: str = Field(min_length=1, max_length=MAX_ROWS_CSV, description="rows, dataset layout")
    source: str = Field(default="api", max_length=200)


class RowsAdded(BaseModel):
    added: int
    waiting: int  # rows since the data trigger last fired
    total: int


class PublishedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    payload: dict[str, Any] = Field(default_factory=dict)


class EventRecorded(BaseModel):
    event_id: int
    item_id: str | None  # the training run it started, if its type starts runs


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=10**9)
    reason: str = Field(default="promoted through the API", max_length=1000)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="rolled back through the API", max_length=1000)


def _ops(request: Request) -> ModelOps:
    """The app's model operations (built by create_app)."""
    ops: ModelOps = request.app.state.model_ops
    return ops


@router.get("", response_model=ModelList, dependencies=[viewer])
def list_models(request: Request) -> ModelList:
    summaries = [
        ModelSummary(
            name=entry.name,
            versions=len(entry.versions),
            champion=entry.champion,
            challenger=entry.challenger,
        )
        for entry in model_entries(_ops(request))
    ]
    return ModelList(models=summaries)


@router.get(
    "/{name}", response_model=ModelDetail, responses=error_responses(404), dependencies=[viewer]
)
def show_model(request: Request, name: ModelName) -> ModelDetail:
    entry = model_entry(_ops(request), name)
    return ModelDetail(
        name=name, aliases=entry.aliases, versions=[_version(v) for v in entry.versions]
    )


def _version(info: VersionInfo) -> VersionOut:
    return VersionOut(
        version=info.version,
        aliases=list(info.aliases),
        created_at=info.created_at,
        run_id=info.run_id,
        metrics=dict(info.metrics),
        params={k: v for k, v in info.params.items() if k in SHOWN_PARAMS},
        source_commit=info.tags.get(COMMIT_TAG),
    )


@router.get("/{name}/history", response_model=AliasHistory, dependencies=[viewer])
def alias_history(request: Request, name: ModelName) -> AliasHistory:
    changes = [_change(row) for row in _ops(request).history(name)]
    return AliasHistory(changes=changes)


def _change(row: Any) -> AliasChangeOut:
    return AliasChangeOut(
        alias=row.alias,
        action=row.action,
        from_version=row.from_version,
        to_version=row.to_version,
        actor=getattr(row, "actor", ""),
        reason=getattr(row, "reason", ""),
        item_id=getattr(row, "item_id", None),
        created_at=getattr(row, "created_at", None),
    )


@router.post(
    "/{name}/train",
    status_code=202,
    response_model=TrainingQueued,
    responses=error_responses(404, 422),
)
def train(
    request: Request, name: ModelName, body: TrainRequest, principal: Principal = operator
) -> TrainingQueued:
    if DATASET_PARAM in body.params:
        raise InputRejectedError(
            "the API trains on the model's configured dataset; it takes no file paths. Set "
            f"models.{name}.dataset in the settings, or add rows with conveyor models add-rows.",
        )
    submission = _ops(request).train(
        name, body.params, trigger="api", requested_by=f"api:{principal.name}"
    )
    return TrainingQueued(item_id=submission.item_id)


@router.post(
    "/{name}/rows",
    status_code=201,
    response_model=RowsAdded,
    responses=error_responses(404, 422),
    dependencies=[operator],
)
def add_rows(request: Request, name: ModelName, body: NewRows) -> RowsAdded:
    """New labelled rows for the model's next training (its data trigger counts them)."""
    triggers = _ops(request).triggers
    added = triggers.add_rows(name, body.csv.encode(), f"api:{body.source}")
    waiting, total = triggers.pending_rows(name)
    return RowsAdded(added=added, waiting=waiting, total=total)


@router.post(
    "/{name}/events",
    status_code=202,
    response_model=EventRecorded,
    responses=error_responses(404, 422),
)
def publish_event(
    request: Request, name: ModelName, body: PublishedEvent, principal: Principal = operator
) -> EventRecorded:
    """Record an event; when ``models.NAME.retrain_on_events`` lists its type, a run starts
    (once per event, also if this process stops before starting it: ``conveyor up`` does)."""
    triggers = _ops(request).triggers
    event_id = triggers.publish_event(name, body.type, body.payload, f"api:{principal.name}")
    triggers.fire_event_triggers(name)
    event = triggers.event(event_id)
    return EventRecorded(event_id=event_id, item_id=event.item_id if event else None)


@router.post("/{name}/promote", response_model=AliasChangeOut, responses=error_responses(404, 409))
def promote(
    request: Request, name: ModelName, body: PromoteRequest, principal: Principal = admin
) -> AliasChangeOut:
    change = _ops(request).promote(name, body.version, f"api:{principal.name}", body.reason)
    return _with_actor(change, principal, body.reason)


@router.post("/{name}/rollback", response_model=AliasChangeOut, responses=error_responses(404, 409))
def rollback(
    request: Request, name: ModelName, body: RollbackRequest, principal: Principal = admin
) -> AliasChangeOut:
    change = _ops(request).rollback(name, f"api:{principal.name}", body.reason)
    return _with_actor(change, principal, body.reason)


def _with_actor(change: Any, principal: Principal, reason: str) -> AliasChangeOut:
    return _change(change).model_copy(update={"actor": f"api:{principal.name}", "reason": reason})


@router.get(
    "/{name}/onnx",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the ONNX file"},
        **error_responses(404),
    },
    dependencies=[viewer],
)
def export_onnx(
    request: Request,
    name: ModelName,
    version: Annotated[int | None, Query(ge=1, le=10**9)] = None,
) -> FileResponse:
    """The champion's ONNX file, or ``?version=N``'s."""
    folder = Path(tempfile.mkdtemp(prefix="conveyor-onnx-"))
    target = folder / f"{name}.onnx"
    try:
        chosen = _ops(request).export_onnx(name, target, version)
    except ConveyorError:
        _remove(folder)
        raise
    return FileResponse(
        target,
        media_type="application/octet-stream",
        filename=f"{name}-v{chosen}.onnx",
        background=BackgroundTask(_remove, folder),
    )


def _remove(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    folder.rmdir()
