"""The package's own route: every word count, newest first, for callers with the viewer role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from conveyor.api.plugins import installation_of, viewer
from example_pipeline.tables import word_counts

router = APIRouter(prefix="/api/v1/pipelines/example_words", tags=["example_words"])


@router.get("/counts", dependencies=[viewer])
def counts(request: Request) -> list[dict[str, Any]]:
    """The word count of every item the pipeline has finished."""
    with installation_of(request).sessions() as session:
        rows = session.execute(select(word_counts).order_by(word_counts.c.item_id)).all()
    return [row._asdict() for row in rows]
