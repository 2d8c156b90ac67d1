"""Scoring jobs in the store: created with every part, found again by their output, and
advanced one committed part at a time (a part counts once, however often it is recorded)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from conveyor.errors import ConveyorError
from conveyor.scoring.parts import PartResult
from conveyor.scoring.plan import Part
from conveyor.scoring.tables import ScoringJob, ScoringPart
from conveyor.store.models import utcnow

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
INSERT_BATCH = 1_000


class ScoringJobNotFoundError(ConveyorError):
    code = "not_found"
    http_status = 404


@dataclass(frozen=True)
class JobView:
    id: str
    model: str
    version: int
    dataset_sha256: str | None
    output: str
    inputs: list[str]
    options: dict[str, Any]
    status: str
    requested_by: str
    parts_total: int
    parts_done: int
    rows_total: int
    rows_scored: int
    rows_rejected: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        found = dict(self.__dict__)
        for key in ("created_at", "updated_at", "finished_at"):
            found[key] = found[key].isoformat() + "Z" if found[key] else None
        return found


def output_key(output: str) -> str:
    return hashlib.sha256(output.encode()).hexdigest()


def latest_for_output(session: Session, output: str) -> ScoringJob | None:
    found = session.execute(
        select(ScoringJob)
        .where(ScoringJob.output_key == output_key(output))
        .order_by(ScoringJob.created_at.desc())
        .limit(1)
    )
    return found.scalar_one_or_none()


def create_job(session: Session, fields: dict[str, Any], parts: list[Part]) -> str:
    """The job and all its parts, in one transaction."""
    job_id = uuid.uuid4().hex
    now = utcnow()
    session.add(
        ScoringJob(
            id=job_id,
            output_key=output_key(fields["output"]),
            status=RUNNING,
            parts_total=len(parts),
            rows_total=sum(part.expected_rows for part in parts),
            rows_scored=0,
            rows_rejected=0,
            created_at=now,
            updated_at=now,
            **fields,
        )
    )
    session.flush()
    for start in range(0, len(parts), INSERT_BATCH):
        rows = [_part_row(job_id, part) for part in parts[start : start + INSERT_BATCH]]
        session.execute(insert(ScoringPart), rows)
    return job_id


def _part_row(job_id: str, part: Part) -> dict[str, Any]:
    wire = part.to_wire()
    wire["part_index"] = wire.pop("index")
    return {"job_id": job_id, **wire}


def pending_parts(session: Session, job_id: str) -> list[Part]:
    rows = session.execute(
        select(ScoringPart)
        .where(ScoringPart.job_id == job_id, ScoringPart.committed_at.is_(None))
        .order_by(ScoringPart.part_index)
    ).scalars()
    return [
        Part(
            index=row.part_index,
            source=row.source,
            file_format=row.file_format,
            byte_offset=row.byte_offset,
            byte_length=row.byte_length,
            first_line=row.first_line,
            expected_rows=row.expected_rows,
            row_group=row.row_group,
        )
        for row in rows
    ]


def record_part(session: Session, job_id: str, result: PartResult) -> bool:
    """Mark a part committed and add its counts to the job; False if it already was."""
    now = utcnow()
    marked = session.execute(
        update(ScoringPart)
        .where(
            ScoringPart.job_id == job_id,
            ScoringPart.part_index == result.index,
            ScoringPart.committed_at.is_(None),
        )
        .values(
            rows_scored=result.rows_scored, rows_rejected=result.rows_rejected, committed_at=now
        )
    )
    if not marked.rowcount:  # type: ignore[attr-defined]
        return False
    session.execute(
        update(ScoringJob)
        .where(ScoringJob.id == job_id)
        .values(
            rows_scored=ScoringJob.rows_scored + result.rows_scored,
            rows_rejected=ScoringJob.rows_rejected + result.rows_rejected,
            updated_at=now,
        )
    )
    return True


def set_status(session: Session, job_id: str, status: str, error: str | None = None) -> None:
    now = utcnow()
    session.execute(
        update(ScoringJob)
        .where(ScoringJob.id == job_id)
        .values(
            status=status,
            error=error,
            updated_at=now,
            finished_at=None if status == RUNNING else now,
        )
    )


def set_options(session: Session, job_id: str, options: dict[str, Any]) -> None:
    session.execute(update(ScoringJob).where(ScoringJob.id == job_id).values(options=options))


def job_view(session: Session, job_id: str) -> JobView:
    job = session.get(ScoringJob, job_id)
    if job is None:
        raise ScoringJobNotFoundError(f"no scoring job {job_id!r}.")
    done = session.execute(
        select(func.count())
        .select_from(ScoringPart)
        .where(ScoringPart.job_id == job_id, ScoringPart.committed_at.is_not(None))
    ).scalar_one()
    return JobView(
        id=job.id,
        model=job.model,
        version=job.version,
        dataset_sha256=job.dataset_sha256,
        output=job.output,
        inputs=list(job.inputs),
        options=dict(job.options),
        status=job.status,
        requested_by=job.requested_by,
        parts_total=job.parts_total,
        parts_done=done,
        rows_total=job.rows_total,
        rows_scored=job.rows_scored,
        rows_rejected=job.rows_rejected,
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


def touch(session: Session, job_id: str) -> None:
    """The heartbeat of the process scoring a running job (``updated_at`` moves on)."""
    session.execute(
        update(ScoringJob)
        .where(ScoringJob.id == job_id, ScoringJob.status == RUNNING)
        .values(updated_at=utcnow())
    )


def stale_jobs(
    session: Session, requested_prefix: str, stale_seconds: float
) -> list[tuple[str, datetime]]:
    """Running jobs requested by ``requested_prefix...`` with no heartbeat for
    ``stale_seconds``: (id, updated_at) to claim, oldest first."""
    before = utcnow() - timedelta(seconds=stale_seconds)
    found = session.execute(
        select(ScoringJob.id, ScoringJob.updated_at)
        .where(
            ScoringJob.status == RUNNING,
            ScoringJob.requested_by.startswith(requested_prefix),
            ScoringJob.updated_at < before,
        )
        .order_by(ScoringJob.updated_at)
    )
    return [(row.id, row.updated_at) for row in found]


def claim(session: Session, job_id: str, seen_updated_at: datetime) -> bool:
    """Take over a stale job: only one of several processes that saw the same heartbeat wins."""
    claimed = session.execute(
        update(ScoringJob)
        .where(
            ScoringJob.id == job_id,
            ScoringJob.status == RUNNING,
            ScoringJob.updated_at == seen_updated_at,
        )
        .values(updated_at=utcnow())
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]
