"""Jinja2 for the web UI: autoescaped templates, formatting filters, result renderers.

Result renderers are the hook for pipeline-specific views: a pipeline names its template file
in ``PipelineHooks.item_renderer`` and the item page includes it for that pipeline's items;
``renderers/generic.html`` (a key/value tree) shows everything else. A renderer gets ``item``
(the API's item detail) and ``result``, and may import the core's ``macros.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from conveyor import __version__
from conveyor.web import views

if TYPE_CHECKING:
    from conveyor.pipeline.spec import Pipeline

TEMPLATE_DIR = Path(__file__).parent / "templates"
GENERIC_RENDERER = "renderers/generic.html"
RENDERER_PREFIX = "pipeline-renderer:"


class RendererLoader(jinja2.BaseLoader):
    """The renderer files pipelines ship, each under a name made from its path; only files
    registered by :func:`renderer_for` load, so no request can name another file."""

    def __init__(self) -> None:
        self._files: dict[str, Path] = {}

    def register(self, path: Path) -> str:
        name = f"{RENDERER_PREFIX}{path.resolve()}"
        self._files[name] = path.resolve()
        return name

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = self._files.get(template)
        if path is None or not path.is_file():
            raise jinja2.TemplateNotFound(template)
        modified = path.stat().st_mtime
        return path.read_text(encoding="utf-8"), str(path), lambda: _modified(path) == modified


def _modified(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


renderers = RendererLoader()


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
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(TEMPLATE_DIR), renderers]),
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


def renderer_for(pipeline: Pipeline | None) -> str:
    """The template that shows ``pipeline``'s results: its own renderer, else the generic."""
    if pipeline is None or pipeline.hooks.item_renderer is None:
        return GENERIC_RENDERER
    return renderers.register(Path(pipeline.hooks.item_renderer))
