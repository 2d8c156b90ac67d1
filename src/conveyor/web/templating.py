"""Jinja2 for the web UI: autoescaped templates, formatting filters, result renderers.

Result renderers are the hook for pipeline-specific views: ``templates/renderers/<pipeline>.html``
is used for that pipeline's items when it exists, ``renderers/generic.html`` (a key/value tree)
otherwise. A renderer gets ``item`` (the API's item detail) and ``result``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from conveyor import __version__
from conveyor.web import views

TEMPLATE_DIR = Path(__file__).parent / "templates"
GENERIC_RENDERER = "renderers/generic.html"
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def value_kind(value: Any) -> str:
    """How the generic renderer shows a value: a table, an inline list, a nested list, a scalar."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list | tuple):
        flat = all(not isinstance(inner, dict | list | tuple) for inner in value)
        return "flat_list" if flat else "list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "text"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,  # every page shows user-provided names, records and results
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters |= {
        "seconds": views.format_seconds,
        "bytes": views.format_bytes,
        "time": views.format_time,
        "kind": value_kind,
    }
    environment.globals |= {"version": __version__, "duration": views.duration}
    return environment


templates = Jinja2Templates(env=_environment())


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def renderer_for(pipeline: str) -> str:
    if (
        SAFE_NAME.fullmatch(pipeline)
        and (TEMPLATE_DIR / "renderers" / f"{pipeline}.html").is_file()
    ):
        return f"renderers/{pipeline}.html"
    return GENERIC_RENDERER
