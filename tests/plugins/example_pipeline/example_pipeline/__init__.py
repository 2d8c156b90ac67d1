"""``example_words``: counts the words of a record's ``text`` and keeps every count in the
package's own table, which its own route lists and its own renderer shows (with its own
stylesheet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from conveyor.errors import PermanentStepError
from conveyor.pipeline import Pipeline, PipelineHooks, StepContext, step
from example_pipeline.tables import word_counts

HERE = Path(__file__).parent


@step(retries=0, timeout_seconds=30)
def count(context: StepContext) -> dict[str, Any]:
    record = context.record
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise PermanentStepError('send a record like {"text": "some words"}')
    words = record["text"].split()
    return {"words": len(words), "longest": max(words, key=len, default="")}


def store_result(session: Session, item_id: str, result: dict[str, Any]) -> None:
    row = {"item_id": item_id, "words": result["words"], "longest": result["longest"]}
    session.execute(insert(word_counts).values(**row))


example_words = Pipeline(
    "example_words",
    version="1",
    dag={count: []},
    description="Counts the words of a record (an example plug-in).",
    accepts=("record",),
    store_result=store_result,
    hooks=PipelineHooks(
        migrations=HERE / "migrations",
        tables="example_pipeline.tables:metadata",
        api_routes="example_pipeline.api:router",
        item_renderer=HERE / "templates" / "item.html",
        static_assets=HERE / "static",
    ),
)
