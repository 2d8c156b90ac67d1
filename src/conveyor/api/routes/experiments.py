"""/api/v1/experiments: A/B experiments on serving endpoints and their per-arm results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.errors import error_responses
from conveyor.api.params import utc_naive
from conveyor.api.routes.endpoints import serving_of
from conveyor.api.security import operator, viewer
from conveyor.api.serving_views import ExperimentOut, experiment_out
from conveyor.auth.service import Principal
from conveyor.serving import experiments as logic
from conveyor.serving.endpoints import read_endpoint

router = APIRouter(prefix="/experiments", tags=["serving"])
ExperimentId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Experiment id")]


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    name: str = Field(min_length=1, max_length=200)
    metric: str = Field(description="accuracy (label feedback) or ctr (watch events)")
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class ExperimentList(BaseModel):
    experiments: list[ExperimentOut]


@router.post("", response_model=ExperimentOut, status_code=201, responses=error_responses(404))
def create(body: ExperimentIn, request: Request, principal: Principal = operator) -> ExperimentOut:
    service = serving_of(request.app)
    with service.sessions.begin() as session:
        read_endpoint(session, body.endpoint)
        experiment = logic.create_experiment(
            session,
            body.endpoint,
            body.name,
            body.metric,
            utc_naive(body.starts_at, "starts_at"),
            utc_naive(body.ends_at, "ends_at"),
            f"{principal.kind}:{principal.name}",
        )
        return experiment_out(experiment)


@router.get("", response_model=ExperimentList)
def list_all(
    request: Request, endpoint: str | None = None, _: Principal = viewer
) -> ExperimentList:
    service = serving_of(request.app)
    with service.sessions() as session:
        found = logic.list_experiments(session, endpoint)
        return ExperimentList(experiments=[experiment_out(e) for e in found])


@router.get("/{experiment_id}", response_model=ExperimentOut, responses=error_responses(404))
def show(experiment_id: ExperimentId, request: Request, _: Principal = viewer) -> ExperimentOut:
    """The experiment with its results per arm (95% Wilson intervals)."""
    service = serving_of(request.app)
    service.log.flush()
    with service.sessions() as session:
        experiment = logic.get_experiment(session, experiment_id)
        return experiment_out(experiment, logic.experiment_results(session, experiment))


@router.post("/{experiment_id}/end", response_model=ExperimentOut, responses=error_responses(404))
def end(experiment_id: ExperimentId, request: Request, _: Principal = operator) -> ExperimentOut:
    service = serving_of(request.app)
    with service.sessions.begin() as session:
        return experiment_out(logic.end_experiment(session, experiment_id))


@router.delete("/{experiment_id}", status_code=204, responses=error_responses(404))
def delete(experiment_id: ExperimentId, request: Request, _: Principal = operator) -> None:
    service = serving_of(request.app)
    with service.sessions.begin() as session:
        session.delete(logic.get_experiment(session, experiment_id))
