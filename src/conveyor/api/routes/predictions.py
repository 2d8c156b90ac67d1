"""/api/v1/predictions/{id}/feedback: a label or a click/watch event for a logged prediction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.errors import error_responses
from conveyor.api.routes.endpoints import serving_of
from conveyor.api.security import viewer
from conveyor.auth.service import Principal
from conveyor.serving.feedback import record_feedback

router = APIRouter(prefix="/predictions", tags=["serving"])
PredictionId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="Prediction id")]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: int | float | str | None = Field(None, description="the true outcome")
    event: str | None = Field(None, description="watch or click")
    value: int | str | None = Field(None, description="what the event was about (movie id)")


class FeedbackOut(BaseModel):
    prediction_id: str
    endpoint: str
    kind: str
    value: Any


@router.post(
    "/{prediction_id}/feedback",
    response_model=FeedbackOut,
    status_code=201,
    responses=error_responses(404),
)
def post_feedback(
    prediction_id: PredictionId, feedback: FeedbackIn, request: Request, _: Principal = viewer
) -> FeedbackOut:
    """Join an outcome to a prediction; online accuracy and click-through count it."""
    service = serving_of(request.app)
    service.log.flush()  # a prediction answered a moment ago may still be queued here
    with service.sessions.begin() as session:
        row = record_feedback(
            session, prediction_id, feedback.label, feedback.event, feedback.value
        )
    return FeedbackOut(
        prediction_id=prediction_id, endpoint=row["endpoint"], kind=row["kind"], value=row["value"]
    )
