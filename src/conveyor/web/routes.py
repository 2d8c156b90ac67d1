"""The web UI: server-rendered pages and the fragments they poll, over the API's own data.

Pages read through the same functions the API routes use, so the UI never shows something the
API would not. Everything that changes state goes through the API from the browser (with the
session's CSRF token), so roles and validation live in one place. Every URL is built from the
request's ``root_path``, so the UI works behind a reverse proxy on a sub-path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from conveyor.api import item_views
from conveyor.api.disclosure import disclosure_for
from conveyor.api.errors import ApiError
from conveyor.api.security import PASSWORD_CHANGE_REQUIRED, current_principal
from conveyor.auth.roles import Role, allows
from conveyor.auth.service import Principal
from conveyor.errors import ConveyorError, ItemNotFoundError
from conveyor.monitoring import overview
from conveyor.results.export import export_row, flatten, iter_csv
from conveyor.store import queries
from conveyor.store.models import Item, Result
from conveyor.store.queries import ItemFilter
from conveyor.web import views
from conveyor.web.assets import assets_url
from conveyor.web.templating import render, renderer_for

ITEMS_PER_PAGE = 25
PREVIEW_ROWS = 10

router = APIRouter(include_in_schema=False)


def root_of(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def signed_in(request: Request) -> Principal:
    """The caller, or a redirect to the login page (for htmx polls: an HX-Redirect header)."""
    try:
        return current_principal(request)
    except ApiError as error:
        if error.code == PASSWORD_CHANGE_REQUIRED:
            _redirect_to_password_page(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"{root_of(request)}/login?next={quote(here, safe='')}"
    if request.headers.get("HX-Request"):
        raise HTTPException(401, "your session ended; log in again", {"HX-Redirect": login})
    raise HTTPException(303, "log in first", {"Location": login})


def _redirect_to_password_page(request: Request) -> None:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = f"{root_of(request)}/account/password?next={quote(here, safe='')}"
    if request.headers.get("HX-Request"):
        raise HTTPException(403, "change your password first", {"HX-Redirect": target})
    raise HTTPException(303, "change your password first", {"Location": target})


Viewer = Depends(signed_in)


def _page(
    request: Request, template: str, principal: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        template,
        status_code=status_code,
        root=root_of(request),
        principal=principal,
        can_operate=allows(principal.role, Role.OPERATOR),
        auth_required=request.app.state.auth_required,
        **context,
    )


def safe_next(root: str, target: str) -> str:
    """Only a path of this UI: never another site (``//host``, ``\\host``, a scheme)."""
    if re.fullmatch(rf"{re.escape(root)}/(?![/\\])[^\\\s]*", target or ""):
        return target
    return f"{root}/"


@router.get("/login", name="web_login")
def login_page(request: Request, next: str = "") -> Response:
    root = root_of(request)
    target = safe_next(root, next)
    try:
        current_principal(request)
        return RedirectResponse(target, status_code=303)
    except ApiError:
        return render(request, "login.html", root=root, next=target)


@router.get("/", name="web_dashboard")
def dashboard(request: Request, principal: Principal = Viewer) -> Response:
    return _page(request, "dashboard.html", principal, **_dashboard_data(request))


@router.get("/ui/dashboard", name="web_dashboard_panel")
def dashboard_panel(request: Request, principal: Principal = Viewer) -> Response:
    return _page(request, "_dashboard_panel.html", principal, **_dashboard_data(request))


def _dashboard_data(request: Request) -> dict[str, Any]:
    installation = request.app.state.installation
    stats = overview.item_stats(installation)
    steps = overview.step_duration_stats(installation)["steps"]
    hardware = overview.host_snapshot(installation)
    return {
        "stats": stats,
        "rows": views.count_rows(stats["counts"]),
        "eta": views.drain_eta_text(stats["drain_eta_seconds"], stats["queue"]),
        "finished_last_hour": sum(stats["throughput_per_minute"]),
        "workers": overview.worker_stats(installation),
        "steps": steps,
        "duration_scale": views.duration_scale(steps),
        "hardware": hardware,
        "gauges": views.hardware_gauges(hardware),
    }


@router.get("/upload", name="web_upload")
def upload_page(request: Request, principal: Principal = Viewer) -> Response:
    registry = request.app.state.installation.registry
    pipelines = [p for p in registry if "file" in p.accepts]
    return _page(request, "upload.html", principal, pipelines=pipelines)


@dataclass
class ItemQuery:
    """The items page's filters and page, as query parameters (empty means any)."""

    pipeline: str = ""
    status: str = ""
    q: str = ""
    cursor: str = ""

    def filters(self) -> dict[str, str]:
        chosen = {"pipeline": self.pipeline, "status": self.status, "q": self.q[:200]}
        return {key: value for key, value in chosen.items() if value}


@router.get("/items", name="web_items")
def items_page(
    request: Request, query: ItemQuery = Depends(), principal: Principal = Viewer
) -> Response:
    return _page(
        request,
        "items.html",
        principal,
        filters=query.filters(),
        pipelines=request.app.state.installation.registry.names(),
        statuses=views.ITEM_STATUSES,
        **_item_rows(request, query, principal),
    )


@router.get("/ui/items", name="web_items_rows")
def items_rows(
    request: Request, query: ItemQuery = Depends(), principal: Principal = Viewer
) -> Response:
    rows = _item_rows(request, query, principal)
    return _page(request, "_item_rows.html", principal, **rows)


def _item_rows(request: Request, query: ItemQuery, principal: Principal) -> dict[str, Any]:
    filters = query.filters()
    this_page = urlencode(filters | ({"cursor": query.cursor} if query.cursor else {}))
    item_filter = ItemFilter(filters.get("pipeline"), filters.get("status"), filters.get("q"))
    installation = request.app.state.installation
    try:
        page = item_views.item_page(
            installation, item_filter, query.cursor[:200] or None, ITEMS_PER_PAGE, principal
        )
    except ApiError as error:
        return {
            "items": [],
            "next_query": None,
            "query": this_page,
            "paged": True,
            "error": str(error),
        }
    next_query = urlencode(filters | {"cursor": page.next_cursor}) if page.next_cursor else None
    return {
        "items": page.items,
        "next_query": next_query,
        "query": this_page,
        "paged": bool(query.cursor),
        "error": None,
    }


@router.get("/items/{item_id}", name="web_item")
def item_page(request: Request, item_id: str, principal: Principal = Viewer) -> Response:
    try:
        context = _item_context(request, item_id, principal)
    except ItemNotFoundError as error:
        return _page(request, "missing.html", principal, status_code=404, message=str(error))
    return _page(request, "item.html", principal, **context)


@router.get("/ui/items/{item_id}", name="web_item_panel")
def item_panel(request: Request, item_id: str, principal: Principal = Viewer) -> Response:
    context = _item_context(request, item_id, principal)
    return _page(request, "_item_panel.html", principal, **context)


def _item_context(request: Request, item_id: str, principal: Principal) -> dict[str, Any]:
    item = item_views.item_detail(request.app.state.installation, item_id, principal)
    steps = views.summarize_steps(item.dag, item.steps)
    return {
        "item": item,
        "steps": steps,
        "drawing": views.draw_dag(item.dag, steps),
        "final": views.is_final(item.status),
        "renderer": renderer_for(request.app.state.installation.registry.find(item.pipeline)),
        "assets": assets_url(item.pipeline, root_of(request)),  # its PipelineHooks.static_assets
    }


@router.get("/items/{item_id}/result.csv", name="web_item_csv")
def item_result_csv(request: Request, item_id: str, principal: Principal = Viewer) -> Response:
    """One item's result as a one-row CSV, with the same columns as the bulk export."""
    installation = request.app.state.installation
    with installation.sessions() as session:
        item = queries.get_item(session, item_id)
        result = queries.result_of(session, item.id)
        if result is None:
            raise ApiError(404, "no_result", f"item {item.id} is {item.status} and has no result")
        row = export_row(item, result)
    row["error"] = disclosure_for(principal, installation.storage)(row["error"])
    headers = {"Content-Disposition": f'attachment; filename="{item.id}.csv"'}
    return Response("".join(iter_csv(lambda: [row])), media_type="text/csv", headers=headers)


@router.get("/results", name="web_results")
def results_page(request: Request, principal: Principal = Viewer, pipeline: str = "") -> Response:
    installation = request.app.state.installation
    names = installation.registry.names()
    chosen = pipeline
    if not chosen:
        with installation.sessions() as session:
            latest_pipeline = _latest_result_pipeline(session)
        fallback = names[0] if names else ""
        chosen = latest_pipeline if latest_pipeline in names else fallback
    try:
        found = installation.registry.get(chosen)
    except ConveyorError as error:
        return _page(request, "missing.html", principal, status_code=404, message=str(error))
    with installation.sessions() as session:
        counts = queries.counts_by_status(session).get(chosen, {})
        latest = _latest_results(session, chosen)
    return _page(
        request,
        "results.html",
        principal,
        pipelines=names,
        pipeline=found,
        counts=counts,
        statuses=views.ITEM_STATUSES,
        latest=latest,
        columns=views.preview_columns(row["flat"] for row in latest),
    )


def _latest_result_pipeline(session: Any) -> str | None:
    """The pipeline that produced the newest result: what a visitor most likely came for."""
    return session.scalar(select(Result.pipeline).order_by(Result.created_at.desc()).limit(1))


def _latest_results(session: Any, pipeline: str) -> list[dict[str, Any]]:
    query = (
        ItemFilter(pipeline=pipeline)
        .apply(select(Item, Result).join(Result, Result.item_id == Item.id))
        .order_by(Item.finished_at.desc(), Item.id)
        .limit(PREVIEW_ROWS)
    )
    return [
        {"item": item, "flat": flatten(result.result, "") if result.result is not None else {}}
        for item, result in session.execute(query).all()
    ]
