"""/api/v1/experiments/{id}/segments: an experiment's arm results per segment of requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from conveyor.api.errors import ApiError, error_responses
from conveyor.api.routes.endpoints import serving_of
from conveyor.api.security import viewer
from conveyor.auth.service import Principal
from conveyor.serving import experiments as logic
from conveyor.serving.segments import InvalidSegmentError, Segmentation, segment_results

router = APIRouter(prefix="/experiments", tags=["serving"])
ExperimentId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="Experiment id")]


class SegmentArmOut(BaseModel):
    arm: str
    successes: int
    trials: int
    value: float | None
    low: float | None = Field(description="95% Wilson interval, lower bound")
    high: float | None = Field(description="95% Wilson interval, upper bound")


class SegmentOut(BaseModel):
    segment: str = Field(description="the field's value, a band such as 40-50, or missing")
    arms: list[SegmentArmOut]


class SegmentsOut(BaseModel):
    experiment: int
    metric: str
    field: str
    bins: list[float]
    segments: list[SegmentOut]


def _bins(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ApiError(422, "invalid_segment", "bins are numbers separated by commas") from None
    if len(values) > 20:
        raise ApiError(422, "invalid_segment", "at most 20 bins")
    return values


@router.get("/{experiment_id}/segments", response_model=SegmentsOut, responses=error_responses(404))
def segments(
    experiment_id: ExperimentId,
    request: Request,
    field: Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]{1,100}$")],
    bins: Annotated[str, Query(max_length=400, description="band edges, e.g. 40,50,60")] = "",
    _: Principal = viewer,
) -> SegmentsOut:
    """Arm results within each segment: the requests' ``field`` value, or its band when
    ``bins`` are given (``field=age&bins=40,50,60``: <40, 40-50, 50-60, >=60)."""
    try:
        segmentation = Segmentation(field, _bins(bins))
    except InvalidSegmentError as error:
        raise ApiError(422, error.code, str(error)) from None
    service = serving_of(request.app)
    service.log.flush()
    with service.sessions() as session:
        experiment = logic.get_experiment(session, experiment_id)
        found = segment_results(session, experiment, segmentation)
    return SegmentsOut(
        experiment=experiment_id,
        metric=experiment.metric,
        field=field,
        bins=list(segmentation.bins),
        segments=[
            SegmentOut(segment=s.segment, arms=[SegmentArmOut(**vars(a)) for a in s.arms])
            for s in found
        ],
    )
