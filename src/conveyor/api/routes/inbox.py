"""/api/v1/inbox: what waits in the inbox; scan it now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from conveyor.api.security import operator, viewer

router = APIRouter(prefix="/inbox", tags=["inbox"])


@router.get("", dependencies=[viewer])
def list_inbox(request: Request) -> dict[str, Any]:
    inbox = request.app.state.installation.inbox
    return {
        "files": [
            {
                "name": entry.name,
                "bytes": entry.size,
                "pipeline": pipeline,
                "modified_at": entry.modified_at,
            }
            for entry, pipeline in inbox.pending()
        ]
    }


@router.post("/scan", dependencies=[operator])
def scan_inbox(request: Request) -> dict[str, Any]:
    report = request.app.state.installation.inbox.scan(settle_seconds=0)
    return {
        "queued": [s.item_id for s in report.accepted],
        "duplicates": report.duplicates,
        "rejected": report.rejected,
        "waiting": report.waiting,
    }
