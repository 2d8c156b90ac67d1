"""Request and response bodies of the API."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.api.timestamps import UtcDatetime
from conveyor.store.models import Item, Result, StepRun


class ErrorOut(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """What every error response carries."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorOut


class ProportionOut(BaseModel):
    """An online quality or experiment figure: successes out of trials, with its interval."""

    successes: int
    trials: int
    value: float | None
    low: float | None = Field(description="95% Wilson interval, lower bound")
    high: float | None = Field(description="95% Wilson interval, upper bound")


class ReferenceSubmission(BaseModel):
    """A file processed where it lies (a shared mount path or an fsspec URL), not uploaded."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=2048, description="s3://... or /shared/path")
    name: str | None = Field(None, max_length=1024, description="shown name (default: file's)")
    force: bool = False


class RecordSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(min_length=1, max_length=100)
    record: Any
    force: bool = False

    @field_validator("record")
    @classmethod
    def _finite_numbers_only(cls, record: Any) -> Any:
        """JSON has no Infinity or NaN; a number too large for a float would become one."""
        pending = [record]
        while pending:
            value = pending.pop()
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("numbers must be finite and fit a 64-bit float")
            if isinstance(value, dict):
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
        return record


class SubmissionOut(BaseModel):
    item_id: str
    duplicate: bool
    input: str | None = None
    url: str


class StepRunOut(BaseModel):
    step: str
    attempt: int
    status: str
    worker: str | None
    node_id: str | None
    submitted_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    seconds: float | None
    error: str | None
    logs: str | None

    @classmethod
    def of(cls, run: StepRun) -> StepRunOut:
        seconds = None
        if run.started_at and run.finished_at:
            seconds = (run.finished_at - run.started_at).total_seconds()
        return cls(
            step=run.step,
            attempt=run.attempt,
            status=run.status,
            worker=run.worker,
            node_id=run.node_id,
            submitted_at=run.submitted_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            seconds=seconds,
            error=run.error,
            logs=run.logs,
        )


class ItemOut(BaseModel):
    item_id: str
    pipeline: str
    pipeline_version: str
    kind: str
    input: Any
    input_size: int | None
    content_hash: str
    status: str
    error: str | None
    source: str
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    cancel_requested: bool
    input_url: str | None = None  # a file submitted by reference: where it is read

    @classmethod
    def of(cls, item: Item) -> ItemOut:
        return cls(
            item_id=item.id,
            pipeline=item.pipeline,
            pipeline_version=item.pipeline_version,
            kind=item.kind,
            input=item.input_name if item.kind == "file" else item.record,
            input_size=item.input_size,
            content_hash=item.content_hash,
            status=item.status,
            error=item.error,
            source=item.source,
            created_at=item.created_at,
            started_at=item.started_at,
            finished_at=item.finished_at,
            cancel_requested=item.cancel_requested,
            input_url=item.input_url,
        )


class ItemDetailOut(ItemOut):
    steps: list[StepRunOut]
    dag: dict[str, list[str]]
    result: Any = None
    result_pipeline_version: str | None = None
    artifacts: list[str]

    @classmethod
    def build(
        cls,
        item: Item,
        runs: list[StepRun],
        result: Result | None,
        dag: dict[str, list[str]],
        artifacts: list[str],
    ) -> ItemDetailOut:
        return cls(
            **ItemOut.of(item).model_dump(),
            steps=[StepRunOut.of(r) for r in runs],
            dag=dag,
            result=result.result if result else None,
            result_pipeline_version=result.pipeline_version if result else None,
            artifacts=artifacts,
        )


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class RetryFailed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str | None = None


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    name: str
    role: str
    kind: str
    csrf_token: str | None = None
    must_change_password: bool = False  # until changed, every other route answers 403


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=1, max_length=1000)
