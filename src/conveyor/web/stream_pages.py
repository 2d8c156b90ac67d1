"""The streams page: every stream source with its items, rate, lag and dead letters, and every
sink with its published and waiting messages, refreshed every few seconds (docs/streams.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.api.routes import streams as streams_api
from conveyor.auth.service import Principal
from conveyor.web.routes import Viewer, _page

router = APIRouter(include_in_schema=False)


@router.get("/streams", name="web_streams")
def streams_page(request: Request, principal: Principal = Viewer) -> Response:
    sources = streams_api.list_sources(request).sources
    sinks = streams_api.list_sinks(request).sinks
    return _page(request, "streams.html", principal, sources=sources, sinks=sinks)
